#include "controller/cli/report.h"

#include "common/yaml_proto.h"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <ctime>

namespace faultline::cli {
namespace {

std::string Upper(std::string s) {
  for (auto& c : s) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  return s;
}

std::string Figure(double ms, double err) { return fmt::format("{:.0f} ms ± {:.0f} ms", ms, err); }

}  // namespace


// "12, 13, 14 (+17 more)": the first lost sequence numbers.
std::string FirstLost(const v1::DataResult& d) {
  std::string out = fmt::format("{}", fmt::join(d.first_lost(), ", "));
  if (d.writes_lost() > d.first_lost_size()) {
    out += fmt::format(" (+{} more)", d.writes_lost() - d.first_lost_size());
  }
  return out;
}

std::string Unexpected(const v1::DataResult& d) {
  return d.writes_unexpected() < 0 ? "n/a" : std::to_string(d.writes_unexpected());
}

// The data workloads' figures, one block each.
std::string TextData(const v1::RunReport& r) {
  std::string out;
  for (const v1::DataResult& d : r.data()) {
    out += fmt::format("data {} ({}, from {}, {:g}/s)\n", d.name(), d.driver(), d.from(),
                       d.rate_per_s());
    out += fmt::format("  writes: {} attempted, {} acked, {} lost, {} recovered, {} unexpected\n",
                       d.writes_attempted(), d.writes_acked(), d.writes_lost(),
                       d.writes_recovered(), Unexpected(d));
    out += fmt::format("  RPO               {}{}\n", Figure(d.rpo_ms(), d.rpo_error_ms()),
                       r.rpo_target_ms() > 0
                           ? fmt::format("   (RPO target {:.0f} ms)", r.rpo_target_ms())
                           : "");
    if (d.writes_lost() > 0) out += fmt::format("  first lost: {}\n", FirstLost(d));
    if (!d.error().empty()) out += fmt::format("  note: {}\n", d.error());
  }
  return out;
}

std::string MarkdownData(const v1::RunReport& r) {
  if (r.data().empty()) return "";
  std::string out =
      "## Data\n\n| workload | attempted | acked | lost | recovered | unexpected | RPO | first "
      "lost |\n|---|---:|---:|---:|---:|---:|---:|---|\n";
  for (const v1::DataResult& d : r.data()) {
    out += fmt::format("| {} ({}, from {}, {:g}/s) | {} | {} | {} | {} | {} | {:.0f} ms ± {:.0f} ms "
                       "| {} |\n",
                       d.name(), d.driver(), d.from(), d.rate_per_s(), d.writes_attempted(),
                       d.writes_acked(), d.writes_lost(), d.writes_recovered(), Unexpected(d),
                       d.rpo_ms(), d.rpo_error_ms(), FirstLost(d));
  }
  out += "\nLost = acknowledged, never read back; RPO = last lost ack - first lost ack, "
         "± the writer's period.";
  if (r.rpo_target_ms() > 0) out += fmt::format(" RPO target: {:.0f} ms.", r.rpo_target_ms());
  out += "\n";
  for (const v1::DataResult& d : r.data()) {
    if (!d.error().empty()) out += fmt::format("\n- {}: {}", d.name(), d.error());
  }
  return out + "\n";
}

// "exit 0", "exit 1", "signal 9": how a step ended.
std::string StepExit(const v1::DrillStepResult& s) {
  if (s.state() == "skipped" || s.state() == "refused" || s.state() == "error") return "-";
  return s.signal() != 0 ? fmt::format("signal {}", s.signal()) : fmt::format("exit {}", s.exit_code());
}

// The last `lines` lines of a step's output tail, indented.
std::string TailLines(const std::string& tail, int lines, const std::string& indent) {
  std::string text = tail;
  while (!text.empty() && text.back() == '\n') text.pop_back();
  size_t from = text.size();
  for (int i = 0; i < lines && from != std::string::npos && from > 0; ++i) {
    from = text.rfind('\n', from - 1);
  }
  text = from == std::string::npos ? text : text.substr(from + 1);
  std::string out;
  size_t start = 0;
  while (!text.empty() && start <= text.size()) {
    const size_t nl = text.find('\n', start);
    out += indent + text.substr(start, nl == std::string::npos ? std::string::npos : nl - start) + "\n";
    if (nl == std::string::npos) break;
    start = nl + 1;
  }
  return out;
}

// A restore drill's steps and figures.
std::string TextDrill(const v1::RunReport& r) {
  if (!r.has_drill()) return "";
  const v1::DrillResult& d = r.drill();
  std::string out = "drill steps:\n";
  for (const v1::DrillStepResult& s : d.steps()) {
    out += fmt::format("  {:<8} {:<10} {:<10} {:>10.0f} ms  on {}{}\n", s.step(), s.state(),
                       StepExit(s), s.duration_ms(), s.agent().empty() ? "-" : s.agent(),
                       s.error().empty() ? "" : "  (" + s.error() + ")");
    if (s.state() != "ok") out += TailLines(s.output_tail(), 3, "      | ");
  }
  out += fmt::format("  restore RTO       {}   (restore + verify; RTO target {:.0f} ms)\n",
                     Figure(d.restore_rto_ms(), d.restore_rto_error_ms()), r.rto_target_ms());
  if (d.rpo_measured()) {
    out += fmt::format("  restore RPO       {}   (restore end - newest recovered marker{})\n",
                       Figure(d.restore_rpo_ms(), d.restore_rpo_error_ms()),
                       r.rpo_target_ms() > 0
                           ? fmt::format("; RPO target {:.0f} ms", r.rpo_target_ms())
                           : "");
  }
  if (d.markers_written() > 0) out += fmt::format("  markers written: {}\n", d.markers_written());
  if (!d.marker_error().empty()) out += fmt::format("  marker note: {}\n", d.marker_error());
  return out;
}

std::string MarkdownTimeline(const v1::RunReport& r) {
  std::string out =
      "## Timeline\n\n| ms since start | event | agent | detail |\n|---:|---|---|---|\n";
  for (const auto& e : r.timeline()) {
    out += fmt::format("| {:.1f} | {} | {} | {}{} |\n", e.at_ms(), e.kind(), e.agent(), e.detail(),
                       e.error_ms() > 0 ? fmt::format(" (± {:.1f} ms)", e.error_ms()) : "");
  }
  return out;
}

std::string MarkdownDrill(const v1::RunReport& r) {
  const v1::DrillResult& d = r.drill();
  std::string out =
      "## Restore drill\n\n| step | state | exit | duration | agent | note |\n"
      "|---|---|---|---:|---|---|\n";
  for (const v1::DrillStepResult& s : d.steps()) {
    out += fmt::format("| {} | {} | {} | {:.0f} ms | {} | {} |\n", s.step(), s.state(),
                       StepExit(s), s.duration_ms(), s.agent(), s.error());
  }
  out += "\n| figure | value | error |\n|---|---:|---:|\n";
  out += fmt::format("| restore_rto_ms (restore + verify) | {:.0f} ms | ± {:.0f} ms |\n",
                     d.restore_rto_ms(), d.restore_rto_error_ms());
  if (d.rpo_measured()) {
    out += fmt::format("| restore_rpo_ms (age of the restored data) | {:.0f} ms | ± {:.0f} ms |\n",
                       d.restore_rpo_ms(), d.restore_rpo_error_ms());
  }
  out += fmt::format("\nRTO target: {:.0f} ms.", r.rto_target_ms());
  if (r.rpo_target_ms() > 0) out += fmt::format(" RPO target: {:.0f} ms.", r.rpo_target_ms());
  if (!d.marker_error().empty()) out += fmt::format(" Marker: {}.", d.marker_error());
  out += "\n\n";
  for (const v1::DrillStepResult& s : d.steps()) {
    if (s.output_tail().empty()) continue;
    out += fmt::format("### {} output (last lines)\n\n```\n{}```\n\n", s.step(),
                       TailLines(s.output_tail(), 10, ""));
  }
  return out;
}

std::string TextReport(const v1::RunReport& r) {
  std::string out = fmt::format("run {}  {}  {}\n", r.run_id(), r.experiment(), Upper(r.verdict()));
  if (!r.reason().empty()) out += fmt::format("  {}\n", r.reason());
  const bool measured = !r.has_drill() &&
                        (r.verdict() == "pass" || r.verdict() == "fail" ||
                         ((r.verdict() == "aborted" || r.verdict() == "stopped") &&
                          r.faults_size() > 0));
  if (measured) {
    out += fmt::format("  time to detect    {}\n", Figure(r.time_to_detect_ms(), r.error_ms()));
    out += fmt::format("  outage            {}\n", Figure(r.outage_ms(), r.error_ms()));
    out += fmt::format("  time to recover   {}   (RTO target {:.0f} ms)\n",
                       Figure(r.time_to_recover_ms(), r.error_ms()), r.rto_target_ms());
    out += fmt::format("  recovered during the fault: {}   steady after the revert: {}\n",
                       r.recovered_during_fault() ? "yes" : "no", r.steady_after() ? "yes" : "no");
    out += fmt::format("  error = probe interval {:.0f} ms + clock error {:.2f} ms\n",
                       r.probe_interval_ms(), r.clock_error_ms());
  }
  out += TextData(r);
  out += TextDrill(r);
  if (r.faults_size() > 1 && r.verdict() != "dry_run") {
    out += fmt::format("  {} agent faults started within {:.1f} ms and ended within {:.1f} ms "
                       "(± {:.2f} ms)\n",
                       r.faults_size(), r.start_skew_ms(), r.end_skew_ms(), r.clock_error_ms());
  }
  if (!r.faults().empty()) {
    out += "faults:\n";
    for (const auto& f : r.faults()) {
      out += fmt::format("  {:<14} {:<10} {:<12} {}\n", f.agent(), f.kind(),
                         f.fault_id().empty() ? "-" : f.fault_id(), f.target());
      for (const auto& c : f.changes()) out += fmt::format("      - {}\n", c);
    }
  }
  if (!r.timeline().empty()) {
    out += "timeline (ms since start, controller clock):\n";
    for (const auto& e : r.timeline()) {
      out += fmt::format("  {:>10.1f}  {:<16} {:<12} {}{}\n", e.at_ms(), e.kind(),
                         e.agent().empty() ? "-" : e.agent(), e.detail(),
                         e.error_ms() > 0 ? fmt::format("  (±{:.1f} ms)", e.error_ms()) : "");
    }
  }
  return out;
}

std::string MarkdownReport(const v1::RunReport& r) {
  std::string out = fmt::format("# {} — {}\n\n", r.experiment(), Upper(r.verdict()));
  if (!r.description().empty()) out += r.description() + "\n\n";
  out += fmt::format("- Run: `{}`, started {} UTC\n", r.run_id(), FormatUtc(r.started_unix_ns()));
  out += fmt::format("- Verdict: **{}** — {}\n", r.verdict(), r.reason());
  if (r.has_drill()) return out + "\n" + MarkdownDrill(r) + MarkdownTimeline(r);
  out += fmt::format("- RTO target: {:.0f} ms; experiment duration {:.0f} ms\n\n", r.rto_target_ms(),
                     r.duration_ms());
  out += "| figure | value | error |\n|---|---:|---:|\n";
  out += fmt::format("| time to detect | {:.0f} ms | ± {:.0f} ms |\n", r.time_to_detect_ms(),
                     r.error_ms());
  out += fmt::format("| outage | {:.0f} ms | ± {:.0f} ms |\n", r.outage_ms(), r.error_ms());
  out += fmt::format("| time to recover (measured RTO) | {:.0f} ms | ± {:.0f} ms |\n",
                     r.time_to_recover_ms(), r.error_ms());
  out += fmt::format("| recovered during the fault | {} | |\n",
                     r.recovered_during_fault() ? "yes" : "no");
  out += fmt::format("| steady after the revert | {} | |\n", r.steady_after() ? "yes" : "no");
  out += fmt::format("| start skew across agents | {:.1f} ms | ± {:.2f} ms |\n", r.start_skew_ms(),
                     r.clock_error_ms());
  out += fmt::format("| end skew across agents | {:.1f} ms | ± {:.2f} ms |\n\n", r.end_skew_ms(),
                     r.clock_error_ms());
  out += fmt::format("Error = largest probe interval ({:.0f} ms) + clock-mapping error "
                     "({:.2f} ms, NTP-style offsets of each agent).\n\n",
                     r.probe_interval_ms(), r.clock_error_ms());
  out += MarkdownData(r);
  if (!r.faults().empty()) {
    out += "## Faults\n\n| agent | kind | id | target |\n|---|---|---|---|\n";
    for (const auto& f : r.faults()) {
      out += fmt::format("| {} | {} | {} | {} |\n", f.agent(), f.kind(), f.fault_id(), f.target());
    }
    out += "\n";
  }
  return out + MarkdownTimeline(r);
}

}  // namespace faultline::cli
