// `faultline gameday start|status|approve|note|abort|report` (docs/gamedays.md).
#include <fmt/format.h>
#include <grpcpp/client_context.h>

#include <chrono>
#include <cstdio>
#include <string>
#include <thread>

#include "common/yaml_proto.h"
#include "controller/cli/cli.h"
#include "web/gameday_report.h"
#include "controller/cli/report.h"
#include "controller/gameday.h"

namespace faultline::cli {
namespace {

// `--follow` asks the controller this often.
constexpr std::chrono::milliseconds kFollowEvery{1000};

bool Ended(const v1::GameDayStatus& gd) {
  return gd.state() == "completed" || gd.state() == "aborted";
}

void CmdStart(CliContext& ctx, const std::string& file) {
  auto req = controller::ReadGameDayFiles(file);
  if (!req.ok()) return ctx.Fail(req.status());
  v1::GameDayStatus resp;
  if (!Call(ctx, &v1::Controller::Stub::StartGameDay, *req, &resp)) return;
  if (ctx.Json()) return (void)std::printf("%s\n", ToJson(resp).c_str());
  std::printf("%s", web::GameDayText(resp).c_str());
  std::printf("follow it: faultline gameday status %s --follow\n", resp.id().c_str());
}

void CmdList(CliContext& ctx) {
  v1::ListGameDaysResponse resp;
  if (!Call(ctx, &v1::Controller::Stub::ListGameDays, v1::ListGameDaysRequest(), &resp)) return;
  if (ctx.Json()) return (void)std::printf("%s\n", ToJson(resp).c_str());
  if (resp.gamedays().empty()) return (void)std::printf("no game days\n");
  std::printf("%-40s %-10s %-7s %-5s %-20s %s\n", "ID", "STATE", "RESULT", "STEP", "STARTED (UTC)",
              "BY");
  for (const auto& g : resp.gamedays()) {
    std::printf("%-40s %-10s %-7s %-5s %-20s %s\n", Printable(g.id()).c_str(),
                g.state().c_str(), g.result().empty() ? "-" : g.result().c_str(),
                g.current_step().empty() ? "-" : g.current_step().c_str(),
                FormatUtc(g.started_unix_ns()).c_str(), Printable(g.started_by()).c_str());
  }
}

void CmdStatus(CliContext& ctx, const std::string& id, bool follow) {
  if (id.empty()) return CmdList(ctx);
  v1::GetGameDayRequest req;
  req.set_id(id);
  v1::GameDayStatus gd;
  if (!Call(ctx, &v1::Controller::Stub::GetGameDay, req, &gd)) return;
  if (!follow) {
    if (ctx.Json()) return (void)std::printf("%s\n", ToJson(gd).c_str());
    std::printf("%s\ntimeline (UTC)\n", web::GameDayText(gd).c_str());
    for (const auto& ev : gd.events()) std::printf("  %s\n", web::GameDayEventLine(gd, ev).c_str());
    return;
  }
  // The timeline as it grows: each new event once, until the game day ends.
  int shown = 0;
  std::string last_state;
  for (;;) {
    for (; shown < gd.events_size(); ++shown) {
      if (ctx.Json()) {
        std::printf("%s\n", ToJson(gd.events(shown)).c_str());
      } else {
        std::printf("%s\n", web::GameDayEventLine(gd, gd.events(shown)).c_str());
      }
    }
    if (!ctx.Json() && gd.state() == "waiting" && last_state != "waiting") {
      std::printf(">> waiting at step %s: %s\n>> faultline gameday approve %s [--note TEXT]\n",
                  gd.current_step().c_str(), Printable(gd.gate_prompt()).c_str(), gd.id().c_str());
    }
    last_state = gd.state();
    std::fflush(stdout);
    if (Ended(gd)) break;
    std::this_thread::sleep_for(kFollowEvery);
    if (!Call(ctx, &v1::Controller::Stub::GetGameDay, req, &gd)) return;
  }
  if (!ctx.Json()) std::printf("%s", web::GameDayText(gd).c_str());
}

void CmdAction(CliContext& ctx, const std::string& action, const std::string& id,
               const std::string& text) {
  v1::GameDayActionRequest req;
  req.set_id(id);
  req.set_text(text);
  v1::GameDayStatus resp;
  auto method = action == "approve" ? &v1::Controller::Stub::ApproveGameDay
                : action == "note"  ? &v1::Controller::Stub::NoteGameDay
                                    : &v1::Controller::Stub::AbortGameDay;
  if (!Call(ctx, method, req, &resp)) return;
  if (ctx.Json()) return (void)std::printf("%s\n", ToJson(resp).c_str());
  std::printf("%s", web::GameDayText(resp).c_str());
}

void CmdReport(CliContext& ctx, const std::string& id, const std::string& format) {
  if (format != "md" && format != "html" && format != "json") {
    return ctx.Fail(absl::InvalidArgumentError(
        fmt::format("--format: md, html or json, got \"{}\"", Printable(format))));
  }
  v1::GetGameDayRequest req;
  req.set_id(id);
  v1::GameDayStatus gd;
  if (!Call(ctx, &v1::Controller::Stub::GetGameDay, req, &gd)) return;
  const std::string out = format == "md"     ? web::GameDayMarkdown(gd)
                          : format == "html" ? web::GameDayHtml(gd)
                                             : ToJson(gd) + "\n";
  std::fwrite(out.data(), 1, out.size(), stdout);
}

}  // namespace

void AddGameDayCommands(CLI::App& app, CliContext& ctx) {
  static std::string file, id, text, format = "md";
  static bool follow = false;
  auto* gd = app.add_subcommand("gameday", "game days: runbooks with gates (docs/gamedays.md)");
  gd->require_subcommand(1);
  auto* start = gd->add_subcommand("start", "start a game day from its runbook file");
  start->add_option("file", file, "runbook (YAML); its experiment files are sent with it")
      ->required();
  start->callback([&ctx] { CmdStart(ctx, file); });
  auto* status = gd->add_subcommand("status", "one game day's steps and timeline, or the list");
  status->add_option("id", id, "game day id (none: the recent game days)");
  status->add_flag("--follow", follow, "print the timeline as it grows, until the game day ends");
  status->callback([&ctx] { CmdStatus(ctx, id, follow); });
  auto* approve = gd->add_subcommand("approve", "approve the gate the game day waits at");
  approve->add_option("id", id, "game day id")->required();
  approve->add_option("--note", text, "a note kept with the approval");
  approve->callback([&ctx] { CmdAction(ctx, "approve", id, text); });
  auto* note = gd->add_subcommand("note", "add a note to the game day's timeline");
  note->add_option("id", id, "game day id")->required();
  note->add_option("text", text, "the note")->required();
  note->callback([&ctx] { CmdAction(ctx, "note", id, text); });
  auto* abort = gd->add_subcommand("abort", "abort the game day: its runs' faults are reverted");
  abort->add_option("id", id, "game day id")->required();
  abort->add_option("--reason", text, "why (kept on the timeline)");
  abort->callback([&ctx] { CmdAction(ctx, "abort", id, text); });
  auto* report = gd->add_subcommand("report", "the game day's report, every step with times");
  report->add_option("id", id, "game day id")->required();
  report->add_option("--format", format, "md (default), html or json");
  report->callback([&ctx] { CmdReport(ctx, id, format); });
}

}  // namespace faultline::cli
