#include "web/gameday_report.h"

#include <fmt/format.h>

#include <map>

#include "common/text.h"
#include "common/units.h"
#include "web/html.h"

namespace faultline::web {
namespace {

// User text for a terminal or a Markdown cell: escaped, whole (notes and
// prompts are at most 4 KiB).
std::string Term(const std::string& s) { return Printable(s, 4096); }

// "+1m02s" from the game day's start.
std::string Offset(const v1::GameDayStatus& gd, int64_t at_unix_ns) {
  if (at_unix_ns == 0 || gd.started_unix_ns() == 0) return "";
  int64_t s = (at_unix_ns - gd.started_unix_ns()) / 1000000000;
  if (s < 0) s = 0;
  if (s < 60) return fmt::format("+{}s", s);
  if (s < 3600) return fmt::format("+{}m{:02}s", s / 60, s % 60);
  return fmt::format("+{}h{:02}m{:02}s", s / 3600, s / 60 % 60, s % 60);
}

std::string Took(int64_t from, int64_t to) {
  if (from == 0 || to == 0) return "";
  return FormatDuration(std::chrono::nanoseconds((to - from) / 1000000 * 1000000));
}

std::string Clock(int64_t unix_ns) {
  const std::string utc = FormatUtc(unix_ns);
  return utc.size() > 11 ? utc.substr(11) : utc;
}

std::string Header(const v1::GameDayStatus& gd) {
  std::string state = gd.state();
  if (!gd.result().empty()) state += ", result " + gd.result();
  return fmt::format("game day {} ({}): {}", gd.id(), gd.name(), state);
}


// Markdown table cells: no line breaks, pipes escaped.
std::string Cell(const std::string& s) {
  std::string out;
  for (char c : Term(s)) {
    if (c == '|') out += "\\|";
    else out += c;
  }
  return out;
}

}  // namespace

std::string GameDayEventLine(const v1::GameDayStatus& gd, const v1::GameDayEvent& ev) {
  std::string who = ev.actor() == "controller" ? "" : ev.actor() + ": ";
  return fmt::format("{} {:>9}  {:<8} {:<12} {}{}{}", Clock(ev.at_unix_ns()),
                     Offset(gd, ev.at_unix_ns()), ev.step().empty() ? "" : "step " + ev.step(),
                     ev.kind(), Term(who), ev.outcome().empty() ? "" : "[" + ev.outcome() + "] ",
                     Term(ev.text()));
}

std::string GameDayText(const v1::GameDayStatus& gd) {
  std::string out = Header(gd) + "\n";
  if (!gd.description().empty()) out += "  " + Term(gd.description()) + "\n";
  out += fmt::format("  started {} UTC by {}", FormatUtc(gd.started_unix_ns()),
                     Term(gd.started_by()));
  if (gd.ended_unix_ns() != 0) out += fmt::format("; ended {} UTC", FormatUtc(gd.ended_unix_ns()));
  out += "\n";
  if (gd.state() == "waiting") {
    out += fmt::format("  WAITING at step {}: {}\n  approve: faultline gameday approve {} "
                       "[--note TEXT] (times out {} UTC)\n",
                       gd.current_step(), Term(gd.gate_prompt()), gd.id(),
                       FormatUtc(gd.gate_deadline_unix_ns()));
  }
  for (const auto& s : gd.steps()) {
    const bool branch = s.step().find('.') != std::string::npos;
    out += fmt::format("  {}{:<5} {:<10} {:<11} {:>9} {:>8}  {}{}\n", branch ? "  " : "", s.step(),
                       s.kind(), s.state(), Offset(gd, s.started_unix_ns()),
                       Took(s.started_unix_ns(), s.ended_unix_ns()), Term(s.title()),
                       s.detail().empty() ? "" : " — " + Term(s.detail()));
  }
  return out;
}

std::string GameDayMarkdown(const v1::GameDayStatus& gd) {
  std::string out = fmt::format("# Game day {}\n\n", gd.name());
  if (!gd.description().empty()) out += Term(gd.description()) + "\n\n";
  out += fmt::format("- **id**: {}\n- **state**: {}\n- **result**: {}\n- **file**: {}\n"
                     "- **started**: {} UTC by {}\n- **ended**: {} UTC\n\n",
                     gd.id(), gd.state(), gd.result().empty() ? "-" : gd.result(),
                     Cell(gd.file()), FormatUtc(gd.started_unix_ns()), Cell(gd.started_by()),
                     FormatUtc(gd.ended_unix_ns()));
  out += "## Steps\n\n| step | kind | what | state | started | took | by | outcome |\n"
         "|---|---|---|---|---|---|---|---|\n";
  for (const auto& s : gd.steps()) {
    out += fmt::format("| {} | {} | {} | {} | {} {} | {} | {} | {} |\n", s.step(), s.kind(),
                       Cell(s.title()), s.state(), Clock(s.started_unix_ns()),
                       Offset(gd, s.started_unix_ns()), Took(s.started_unix_ns(), s.ended_unix_ns()),
                       Cell(s.actor()), Cell(s.detail()));
  }
  out += "\n## Timeline (UTC)\n\n| time | since start | step | event | who | text |\n"
         "|---|---|---|---|---|---|\n";
  for (const auto& ev : gd.events()) {
    out += fmt::format("| {} | {} | {} | {}{} | {} | {} |\n", Clock(ev.at_unix_ns()),
                       Offset(gd, ev.at_unix_ns()), ev.step(), ev.kind(),
                       ev.outcome().empty() ? "" : " (" + ev.outcome() + ")", Cell(ev.actor()),
                       Cell(ev.text()));
  }
  if (!gd.runs().empty()) {
    out += "\n## Runs\n\n| run | experiment | verdict | time to recover (ms) | reason |\n"
           "|---|---|---|---|---|\n";
    for (const auto& r : gd.runs()) {
      out += fmt::format("| {} | {} | {} | {} | {} |\n", r.run_id(), Cell(r.experiment()),
                         r.verdict(),
                         r.outage_observed()
                             ? fmt::format("{:.1f} ± {:.1f}", r.time_to_recover_ms(), r.error_ms())
                             : "-",
                         Cell(r.reason()));
    }
  }
  return out;
}

std::string GameDayHtml(const v1::GameDayStatus& gd) {
  return Page("Game day " + gd.name(), GameDayHtmlBody(gd));
}

std::string GameDayHtmlBody(const v1::GameDayStatus& gd) {
  std::string out = fmt::format("<h1>Game day {}</h1>\n", Html(gd.name()));
  if (!gd.description().empty()) out += "<p>" + Html(gd.description()) + "</p>\n";
  out += fmt::format(
      "<p id=\"state\" class=\"{}\">{} &middot; result <b id=\"result\">{}</b></p>\n"
      "<p>id {} &middot; started {} UTC by {} &middot; ended {} UTC</p>\n",
      Html(gd.state()), Html(gd.state()), Html(gd.result().empty() ? "-" : gd.result()),
      Html(gd.id()), FormatUtc(gd.started_unix_ns()), Html(gd.started_by()),
      FormatUtc(gd.ended_unix_ns()));
  out += "<h2>Steps</h2>\n<table id=\"steps\"><tr><th>step</th><th>kind</th><th>what</th>"
         "<th>state</th><th>started</th><th>took</th><th>by</th><th>outcome</th></tr>\n";
  for (const auto& s : gd.steps()) {
    out += fmt::format(
        "<tr data-step=\"{}\"><td>{}</td><td>{}</td><td>{}</td><td class=\"{}\">{}</td>"
        "<td>{} {}</td><td>{}</td><td>{}</td><td>{}</td></tr>\n",
        Html(s.step()), Html(s.step()), Html(s.kind()), Html(s.title()), Html(s.state()),
        Html(s.state()), Clock(s.started_unix_ns()), Offset(gd, s.started_unix_ns()),
        Took(s.started_unix_ns(), s.ended_unix_ns()), Html(s.actor()), Html(s.detail()));
  }
  out += "</table>\n<h2>Timeline (UTC)</h2>\n<table id=\"timeline\"><tr><th>time</th>"
         "<th>since start</th><th>step</th><th>event</th><th>who</th><th>text</th></tr>\n";
  for (const auto& ev : gd.events()) {
    out += fmt::format("<tr><td>{}</td><td>{}</td><td>{}</td><td>{}{}</td><td>{}</td><td>{}</td>"
                       "</tr>\n",
                       Clock(ev.at_unix_ns()), Offset(gd, ev.at_unix_ns()), Html(ev.step()),
                       Html(ev.kind()), ev.outcome().empty() ? "" : " (" + Html(ev.outcome()) + ")",
                       Html(ev.actor()), Html(ev.text()));
  }
  out += "</table>\n";
  if (!gd.runs().empty()) {
    out += "<h2>Runs</h2>\n<table id=\"runs\"><tr><th>run</th><th>experiment</th>"
           "<th>verdict</th><th>time to recover (ms)</th><th>reason</th></tr>\n";
    for (const auto& r : gd.runs()) {
      out += fmt::format(
          "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>\n", Html(r.run_id()),
          Html(r.experiment()), Html(r.verdict()),
          r.outage_observed() ? fmt::format("{:.1f} ± {:.1f}", r.time_to_recover_ms(), r.error_ms())
                              : "-",
          Html(r.reason()));
    }
    out += "</table>\n";
  }
  return out;
}

}  // namespace faultline::web
