#include "controller/cli/report.h"

#include "common/yaml_proto.h"

#include <fmt/format.h>

#include <ctime>

namespace faultline::cli {
namespace {

std::string Upper(std::string s) {
  for (auto& c : s) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  return s;
}

std::string Figure(double ms, double err) { return fmt::format("{:.0f} ms ± {:.0f} ms", ms, err); }

}  // namespace

std::string FormatUtc(int64_t unix_ns) {
  if (unix_ns == 0) return "-";
  const time_t secs = static_cast<time_t>(unix_ns / 1000000000);
  tm utc{};
  gmtime_r(&secs, &utc);
  return fmt::format("{:04}-{:02}-{:02} {:02}:{:02}:{:02}", utc.tm_year + 1900, utc.tm_mon + 1,
                     utc.tm_mday, utc.tm_hour, utc.tm_min, utc.tm_sec);
}

std::string TextReport(const v1::RunReport& r) {
  std::string out = fmt::format("run {}  {}  {}\n", r.run_id(), r.experiment(), Upper(r.verdict()));
  if (!r.reason().empty()) out += fmt::format("  {}\n", r.reason());
  const bool measured = r.verdict() == "pass" || r.verdict() == "fail" ||
                        ((r.verdict() == "aborted" || r.verdict() == "stopped") &&
                         r.faults_size() > 0);
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
  if (!r.faults().empty()) {
    out += "## Faults\n\n| agent | kind | id | target |\n|---|---|---|---|\n";
    for (const auto& f : r.faults()) {
      out += fmt::format("| {} | {} | {} | {} |\n", f.agent(), f.kind(), f.fault_id(), f.target());
    }
    out += "\n";
  }
  out += "## Timeline\n\n| ms since start | event | agent | detail |\n|---:|---|---|---|\n";
  for (const auto& e : r.timeline()) {
    out += fmt::format("| {:.1f} | {} | {} | {}{} |\n", e.at_ms(), e.kind(), e.agent(), e.detail(),
                       e.error_ms() > 0 ? fmt::format(" (± {:.1f} ms)", e.error_ms()) : "");
  }
  return out;
}

}  // namespace faultline::cli
