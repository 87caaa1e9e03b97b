#ifndef FAULTLINE_CONTROLLER_CONTROLLER_METRICS_H_
#define FAULTLINE_CONTROLLER_CONTROLLER_METRICS_H_

#include <map>
#include <string>
#include <utility>

#include "metrics/registry.h"
#include "faultline/v1/controller.pb.h"

namespace faultline::controller {

// The controller's Prometheus families (docs/metrics.md). Labels are
// experiment, verdict, schedule, reason, zone, health and kind: never a run id
// or a time. Owned by the controller's main (or a test) beside its registry;
// the service feeds it at each run's end and sets the gauges at each scrape.
// Thread-safe (the registry's lock).
class ControllerMetrics {
 public:
  explicit ControllerMetrics(metrics::Registry* registry);

  // A run's report at its end: runs, recovery time and RPO histograms, lost
  // writes, the stop condition that fired, reverts that failed.
  void RunEnded(const v1::RunReport& report);
  void ScheduleSkipped(const std::string& schedule, const std::string& reason);
  // Gauges, replaced whole at each scrape: agents by (zone, health), and the
  // faults of runs in flight by kind.
  void SetAgents(const std::map<std::pair<std::string, std::string>, int>& by_zone_health);
  void SetFaultsActive(const std::map<std::string, int>& by_kind);

  metrics::Registry* registry() const { return registry_; }

 private:
  metrics::Registry* const registry_;
  metrics::Family* const runs_;
  metrics::Family* const time_to_recover_;
  metrics::Family* const rpo_;
  metrics::Family* const writes_lost_;
  metrics::Family* const schedule_skipped_;
  metrics::Family* const agents_;
  metrics::Family* const faults_active_;
  metrics::Family* const stop_conditions_;
  metrics::Family* const revert_failures_;
};

}  // namespace faultline::controller

#endif  // FAULTLINE_CONTROLLER_CONTROLLER_METRICS_H_
