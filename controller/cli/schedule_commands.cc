// `faultline schedule add|update|show|suspend|resume|delete`, `schedules`,
// `blackout add|delete`, `blackouts` (docs/schedules.md).
#include <fmt/format.h>
#include <grpcpp/client_context.h>

#include <algorithm>
#include <cstdio>
#include <functional>
#include <string>

#include "absl/strings/match.h"
#include "absl/time/time.h"
#include "common/clock.h"
#include "common/files.h"
#include "common/grpc_status.h"
#include "common/units.h"
#include "controller/cli/cli.h"
#include "common/yaml_proto.h"
#include "controller/cli/report.h"

namespace faultline::cli {
namespace {

// The flags of `schedule add` and `schedule update`.
struct ScheduleFlags {
  std::string name, experiment, cron, every, timezone, window, jitter, concurrency,
      starting_deadline, catch_up;
  int history = 0;
  bool dry_run = false;
};

std::string Ms(bool has, double ms, double err) {
  return has ? fmt::format("{:.0f}±{:.0f}", ms, err) : "-";
}

std::string LastVerdicts(const v1::ScheduleStatus& s) {
  std::string out;
  for (const auto& t : s.ticks()) {
    if (!out.empty()) out += ",";
    out += t.outcome() == "skipped" ? "skip:" + t.reason()
                                    : (t.verdict().empty() ? "running" : t.verdict());
  }
  return out.empty() ? "-" : out;
}

std::string Timing(const v1::ScheduleSpec& s) {
  std::string out = s.cron().empty() ? "every " + s.every() : "cron \"" + s.cron() + "\"";
  if (!s.timezone().empty()) out += " " + s.timezone();
  if (!s.window().empty()) out += " window " + s.window();
  if (!s.jitter().empty()) out += " jitter " + s.jitter();
  return out;
}

void PrintSchedule(const v1::ScheduleStatus& s) {
  const v1::ScheduleSpec& spec = s.spec();
  std::printf("schedule %s (%s)\n", Printable(spec.name()).c_str(), Printable(s.state()).c_str());
  std::printf("  experiment  %s (%s)\n", Printable(s.experiment()).c_str(),
              Printable(spec.experiment_file()).c_str());
  std::printf("  when        %s\n", Printable(Timing(spec)).c_str());
  std::printf("  concurrency %s; starting deadline %s; history %d%s\n",
              spec.concurrency().empty() ? "forbid" : Printable(spec.concurrency()).c_str(),
              spec.starting_deadline().empty() ? "5m"
                                               : Printable(spec.starting_deadline()).c_str(),
              spec.history() > 0 ? spec.history() : 20,
              spec.catch_up().empty() ? "" : "; catch-up latest");
  if (!s.created_by().empty()) {
    std::printf("  created     %s by %s\n", FormatUtc(s.created_unix_ns()).c_str(),
                Printable(s.created_by()).c_str());
  }
  std::printf("  next start  %s\n",
              s.next_start_unix_ns() == 0 ? "none" : FormatUtc(s.next_start_unix_ns()).c_str());
  for (int64_t t : s.upcoming_start_unix_ns()) std::printf("              %s\n", FormatUtc(t).c_str());
  if (!s.running_run_id().empty()) {
    std::printf("  running     %s\n", Printable(s.running_run_id()).c_str());
  }
  if (s.ticks().empty()) return;
  // The trend of the last runs: recovery time and RPO, newest first.
  std::printf("\n  %-20s %-26s %-10s %-14s %s\n", "TICK (UTC)", "RUN", "VERDICT", "RECOVER (ms)",
              "RPO (ms)");
  for (const auto& t : s.ticks()) {
    const std::string verdict = t.outcome() == "skipped"
                                    ? "skipped: " + t.reason() +
                                          (t.detail().empty() ? "" : " (" + t.detail() + ")")
                                    : (t.verdict().empty() ? "running" : t.verdict());
    std::printf("  %-20s %-26s %-10s %-14s %s\n", FormatUtc(t.scheduled_unix_ns()).c_str(),
                t.run_id().empty() ? "-" : Printable(t.run_id()).c_str(),
                Printable(verdict).c_str(),
                Ms(t.outcome() == "started" && t.outage_observed(), t.time_to_recover_ms(),
                   t.error_ms())
                    .c_str(),
                t.rpo_measured() ? fmt::format("{:.0f}", t.rpo_ms()).c_str() : "-");
  }
}

// The request of `schedule add`/`update`: the flags given over `base`.
absl::StatusOr<v1::AddScheduleRequest> ScheduleRequest(const ScheduleFlags& f, CLI::App* cmd,
                                                       v1::ScheduleSpec base) {
  v1::AddScheduleRequest req;
  v1::ScheduleSpec& spec = *req.mutable_spec();
  spec = std::move(base);
  spec.set_name(f.name);
  auto given = [cmd](const char* flag) { return cmd->count(flag) > 0; };
  if (given("--experiment")) {
    auto text = ReadFileToString(f.experiment);
    if (!text.ok()) {
      return absl::InvalidArgumentError(
          fmt::format("--experiment: {}", std::string(text.status().message())));
    }
    spec.set_experiment_yaml(*text);
    spec.set_experiment_file(f.experiment);
  }
  if (given("--cron") && given("--every")) {
    return absl::InvalidArgumentError("--cron, --every: give one of them");
  }
  if (given("--cron")) {
    spec.set_cron(f.cron);
    spec.clear_every();
  }
  if (given("--every")) {
    spec.set_every(f.every);
    spec.clear_cron();
  }
  if (given("--timezone")) spec.set_timezone(f.timezone);
  if (given("--window")) spec.set_window(f.window);
  if (given("--jitter")) spec.set_jitter(f.jitter);
  if (given("--concurrency")) spec.set_concurrency(f.concurrency);
  if (given("--starting-deadline")) spec.set_starting_deadline(f.starting_deadline);
  if (given("--history")) spec.set_history(f.history);
  if (given("--catch-up")) spec.set_catch_up(f.catch_up == "none" ? "" : f.catch_up);
  req.set_dry_run(f.dry_run);
  return req;
}

void CmdScheduleAdd(CliContext& ctx, const ScheduleFlags& f, CLI::App* cmd, bool update) {
  v1::ScheduleSpec base;
  if (update) {
    v1::GetScheduleRequest get;
    get.set_name(f.name);
    v1::ScheduleStatus current;
    if (!Call(ctx, &v1::Controller::Stub::GetSchedule, get, &current)) return;
    base = current.spec();
  } else if (cmd->count("--experiment") == 0) {
    return ctx.Fail(absl::InvalidArgumentError("--experiment: required (the experiment file)"));
  }
  auto req = ScheduleRequest(f, cmd, std::move(base));
  if (!req.ok()) return ctx.Fail(req.status());
  v1::ScheduleStatus resp;
  if (!Call(ctx, update ? &v1::Controller::Stub::UpdateSchedule : &v1::Controller::Stub::AddSchedule,
            *req, &resp)) {
    return;
  }
  if (ctx.Json()) return (void)std::printf("%s\n", ToJson(resp).c_str());
  if (f.dry_run) std::printf("dry run: nothing stored\n");
  PrintSchedule(resp);
}

void CmdSchedules(CliContext& ctx) {
  v1::ListSchedulesResponse resp;
  if (!Call(ctx, &v1::Controller::Stub::ListSchedules, v1::ListSchedulesRequest(), &resp)) return;
  if (ctx.Json()) return (void)std::printf("%s\n", ToJson(resp).c_str());
  if (resp.schedules().empty()) return (void)std::printf("no schedules\n");
  std::printf("%-20s %-24s %-20s %-10s %s\n", "NAME", "EXPERIMENT", "NEXT RUN (UTC)", "STATE",
              "LAST VERDICTS (newest first)");
  for (const auto& s : resp.schedules()) {
    std::printf("%-20s %-24s %-20s %-10s %s\n", Printable(s.spec().name()).c_str(),
                Printable(s.experiment()).c_str(),
                s.next_start_unix_ns() == 0 ? "-" : FormatUtc(s.next_start_unix_ns()).c_str(),
                Printable(s.state()).c_str(), Printable(LastVerdicts(s)).c_str());
  }
}

void CmdScheduleShow(CliContext& ctx, const std::string& name) {
  v1::GetScheduleRequest req;
  req.set_name(name);
  v1::ScheduleStatus resp;
  if (!Call(ctx, &v1::Controller::Stub::GetSchedule, req, &resp)) return;
  if (ctx.Json()) return (void)std::printf("%s\n", ToJson(resp).c_str());
  PrintSchedule(resp);
}

void CmdScheduleState(CliContext& ctx, const std::string& name, const std::string& state) {
  v1::SetScheduleStateRequest req;
  req.set_name(name);
  req.set_state(state);
  v1::ScheduleStatus resp;
  if (!Call(ctx, &v1::Controller::Stub::SetScheduleState, req, &resp)) return;
  if (ctx.Json()) return (void)std::printf("%s\n", ToJson(resp).c_str());
  std::printf("schedule %s: %s\n", Printable(name).c_str(), Printable(resp.state()).c_str());
}

void CmdScheduleDelete(CliContext& ctx, const std::string& name) {
  v1::DeleteScheduleRequest req;
  req.set_name(name);
  v1::DeleteScheduleResponse resp;
  if (!Call(ctx, &v1::Controller::Stub::DeleteSchedule, req, &resp)) return;
  if (ctx.Json()) return (void)std::printf("{\"deleted\":%s}\n", JsonQuote(name).c_str());
  std::printf("schedule %s deleted\n", Printable(name).c_str());
}

void CmdBlackoutAdd(CliContext& ctx, const std::string& name, const std::string& from,
                    const std::string& to) {
  const int64_t now = NowRealtimeNs();
  auto from_ns = ParseTimeArg("--from", from, now);
  if (!from_ns.ok()) return ctx.Fail(from_ns.status());
  auto to_ns = ParseTimeArg("--to", to, now);
  if (!to_ns.ok()) return ctx.Fail(to_ns.status());
  v1::Blackout req;
  req.set_name(name);
  req.set_from_unix_ns(*from_ns);
  req.set_to_unix_ns(*to_ns);
  v1::AddBlackoutResponse resp;
  if (!Call(ctx, &v1::Controller::Stub::AddBlackout, req, &resp)) return;
  if (ctx.Json()) return (void)std::printf("%s\n", ToJson(resp).c_str());
  std::printf("blackout %s: %s to %s\n", Printable(name).c_str(), FormatUtc(*from_ns).c_str(),
              FormatUtc(*to_ns).c_str());
  for (const auto& id : resp.runs_halted()) {
    std::printf("  halted scheduled run %s (faults reverted)\n", Printable(id).c_str());
  }
}

void CmdBlackouts(CliContext& ctx) {
  v1::ListBlackoutsResponse resp;
  if (!Call(ctx, &v1::Controller::Stub::ListBlackouts, v1::ListBlackoutsRequest(), &resp)) return;
  if (ctx.Json()) return (void)std::printf("%s\n", ToJson(resp).c_str());
  if (resp.blackouts().empty()) return (void)std::printf("no blackouts\n");
  const int64_t now = NowRealtimeNs();
  std::printf("%-20s %-20s %-20s %-8s %s\n", "NAME", "FROM (UTC)", "TO (UTC)", "STATE", "BY");
  for (const auto& b : resp.blackouts()) {
    const char* state = now < b.from_unix_ns() ? "ahead" : now < b.to_unix_ns() ? "active" : "past";
    std::printf("%-20s %-20s %-20s %-8s %s\n", Printable(b.name()).c_str(),
                FormatUtc(b.from_unix_ns()).c_str(), FormatUtc(b.to_unix_ns()).c_str(), state,
                Printable(b.created_by()).c_str());
  }
}

void CmdBlackoutDelete(CliContext& ctx, const std::string& name) {
  v1::DeleteBlackoutRequest req;
  req.set_name(name);
  v1::DeleteBlackoutResponse resp;
  if (!Call(ctx, &v1::Controller::Stub::DeleteBlackout, req, &resp)) return;
  if (ctx.Json()) return (void)std::printf("{\"deleted\":%s}\n", JsonQuote(name).c_str());
  std::printf("blackout %s deleted\n", Printable(name).c_str());
}

void AddScheduleFlags(CLI::App* cmd, ScheduleFlags& f) {
  cmd->add_option("--experiment", f.experiment, "experiment file (its content is stored)");
  cmd->add_option("--cron", f.cron, "cron expression, e.g. \"0 10 * * 1-5\"");
  cmd->add_option("--every", f.every, "a fixed period, e.g. 30m (from the time of adding)");
  cmd->add_option("--timezone", f.timezone, "IANA time zone of --cron and --window (UTC)");
  cmd->add_option("--window", f.window, "HH:MM-HH:MM: start only inside it (may cross midnight)");
  cmd->add_option("--jitter", f.jitter, "start at a random offset up to this after each tick");
  cmd->add_option("--concurrency", f.concurrency, "forbid (default), allow or replace");
  cmd->add_option("--starting-deadline", f.starting_deadline,
                  "skip a tick started later than this (5m)");
  cmd->add_option("--history", f.history, "ticks and runs kept (20)");
  cmd->add_option("--catch-up", f.catch_up,
                  "latest: after a stop, run the newest missed tick (default: skip them all)");
  cmd->add_flag("--dry-run", f.dry_run, "check and show the next starts; store nothing");
}

}  // namespace

absl::StatusOr<int64_t> ParseTimeArg(const std::string& field, const std::string& text,
                                     int64_t now_unix_ns) {
  if (text == "now") return now_unix_ns;
  if (absl::StartsWith(text, "now+")) {
    auto d = ParseDuration(field, text.substr(4));
    if (!d.ok()) return d.status();
    return now_unix_ns + d->count();
  }
  absl::Time t;
  std::string err;
  if (!absl::ParseTime(absl::RFC3339_full, text, &t, &err)) {
    return absl::InvalidArgumentError(fmt::format(
        "{}: \"{}\" is not a time (RFC 3339 such as 2026-12-24T00:00:00Z, now, or now+2h)",
        field, Printable(text)));
  }
  return absl::ToUnixNanos(t);
}

void AddScheduleCommands(CLI::App& app, CliContext& ctx) {
  static ScheduleFlags add_flags, update_flags;
  static std::string name;
  auto* schedule = app.add_subcommand("schedule", "scheduled experiments (docs/schedules.md)");
  schedule->require_subcommand(1);
  auto* add = schedule->add_subcommand("add", "add a schedule");
  add->add_option("name", add_flags.name, "schedule name")->required();
  AddScheduleFlags(add, add_flags);
  add->callback([&ctx, add] { CmdScheduleAdd(ctx, add_flags, add, false); });
  auto* update = schedule->add_subcommand(
      "update", "change a schedule: the flags given replace theirs (--experiment re-reads the file)");
  update->add_option("name", update_flags.name, "schedule name")->required();
  AddScheduleFlags(update, update_flags);
  update->callback([&ctx, update] { CmdScheduleAdd(ctx, update_flags, update, true); });
  struct Simple {
    const char* cmd;
    const char* help;
    std::function<void()> run;
  };
  for (const Simple& s : {
           Simple{"show", "one schedule, its next start and its last runs' RTO/RPO trend",
                  [&ctx] { CmdScheduleShow(ctx, name); }},
           Simple{"suspend", "stop starting runs (ticks are recorded as skipped: suspended)",
                  [&ctx] { CmdScheduleState(ctx, name, "suspended"); }},
           Simple{"resume", "start runs again from the next tick",
                  [&ctx] { CmdScheduleState(ctx, name, "active"); }},
           Simple{"delete", "remove a schedule (its runs stay in `faultline runs`)",
                  [&ctx] { CmdScheduleDelete(ctx, name); }},
       }) {
    auto* cmd = schedule->add_subcommand(s.cmd, s.help);
    cmd->add_option("name", name, "schedule name")->required();
    cmd->callback(s.run);
  }
  app.add_subcommand("schedules", "schedules: name, experiment, next run, last verdicts, state")
      ->callback([&ctx] { CmdSchedules(ctx); });

  static std::string from, to;
  auto* blackout = app.add_subcommand("blackout", "times when no scheduled run starts or runs");
  blackout->require_subcommand(1);
  auto* badd = blackout->add_subcommand("add", "add a blackout; halts running scheduled runs");
  badd->add_option("name", name, "blackout name")->required();
  badd->add_option("--from", from, "start: RFC 3339, now, or now+DURATION")->required();
  badd->add_option("--to", to, "end: RFC 3339 or now+DURATION")->required();
  badd->callback([&ctx] { CmdBlackoutAdd(ctx, name, from, to); });
  auto* bdel = blackout->add_subcommand("delete", "remove a blackout");
  bdel->add_option("name", name, "blackout name")->required();
  bdel->callback([&ctx] { CmdBlackoutDelete(ctx, name); });
  app.add_subcommand("blackouts", "blackouts: name, from, to, state")
      ->callback([&ctx] { CmdBlackouts(ctx); });
}

}  // namespace faultline::cli
