#include "controller/controller_metrics.h"

namespace faultline::controller {

ControllerMetrics::ControllerMetrics(metrics::Registry* registry)
    : registry_(registry),
      runs_(registry->AddCounter("faultline_runs_total", "Runs ended, by experiment and verdict.",
                                 {"experiment", "verdict"})),
      time_to_recover_(registry->AddHistogram(
          "faultline_time_to_recover_seconds",
          "Measured time to recover (first failed probe sample to the service's recovery) of "
          "runs that recovered.",
          {"experiment"}, metrics::SecondsBuckets())),
      rpo_(registry->AddHistogram(
          "faultline_rpo_seconds",
          "Measured RPO of each data workload (span of acknowledged writes lost).",
          {"experiment"}, metrics::SecondsBuckets())),
      writes_lost_(registry->AddCounter("faultline_writes_lost_total",
                                        "Acknowledged writes never read back, by experiment.",
                                        {"experiment"})),
      schedule_skipped_(registry->AddCounter(
          "faultline_schedule_skipped_total",
          "Scheduled ticks not run, by schedule and reason (forbid, deadline, blackout, "
          "suspended, limit).",
          {"schedule", "reason"})),
      agents_(registry->AddGauge("faultline_agents", "Registered agents by zone label and health.",
                                 {"zone", "health"})),
      faults_active_(registry->AddGauge("faultline_faults_active",
                                        "Faults of runs in flight, injected and not yet reverted, "
                                        "by kind.",
                                        {"kind"})),
      stop_conditions_(registry->AddCounter("faultline_stop_conditions_total",
                                            "Runs ended by a stop condition (stop_when).")),
      revert_failures_(registry->AddCounter(
          "faultline_revert_failures_total",
          "Agent reverts that failed at a run's end (the agent keeps retrying; its lease "
          "ends the fault).")) {}

void ControllerMetrics::RunEnded(const v1::RunReport& report) {
  if (report.dry_run()) return;
  const std::string& experiment = report.experiment();
  runs_->Add({experiment, report.verdict()});
  if (report.recovered() && report.outage_observed()) {
    time_to_recover_->Observe({experiment}, report.time_to_recover_ms() / 1000);
  }
  int64_t lost = 0;
  for (const auto& d : report.data()) {
    if (!d.error().empty() && d.writes_acked() == 0) continue;  // no figures
    rpo_->Observe({experiment}, d.rpo_ms() / 1000);
    lost += d.writes_lost();
  }
  writes_lost_->Add({experiment}, static_cast<double>(lost));
  if (report.verdict() == "stopped") stop_conditions_->Add({});
  int failed = 0;
  for (const auto& e : report.timeline()) failed += e.kind() == "revert_failed";
  if (failed > 0) revert_failures_->Add({}, failed);
}

void ControllerMetrics::ScheduleSkipped(const std::string& schedule, const std::string& reason) {
  schedule_skipped_->Add({schedule, reason});
}

void ControllerMetrics::SetAgents(
    const std::map<std::pair<std::string, std::string>, int>& by_zone_health) {
  agents_->Clear();
  for (const auto& [key, n] : by_zone_health) agents_->Set({key.first, key.second}, n);
}

void ControllerMetrics::SetFaultsActive(const std::map<std::string, int>& by_kind) {
  faults_active_->Clear();
  for (const auto& [kind, n] : by_kind) faults_active_->Set({kind}, n);
}

}  // namespace faultline::controller
