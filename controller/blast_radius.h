// Blast radius (DESIGN.md, "Fleet runs"): the experiment's `limits`, the
// controller's caps (--max-fleet-percent, --protected-label,
// --max-concurrent-runs), and which agents running experiments hold, so that
// two runs never hold the same agent.
#ifndef FAULTLINE_CONTROLLER_BLAST_RADIUS_H_
#define FAULTLINE_CONTROLLER_BLAST_RADIUS_H_

#include <map>
#include <string>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"
#include "controller/targets.h"
#include "faultline/v1/experiment.pb.h"

namespace faultline::controller {

// The controller's own caps.
struct FleetLimits {
  double max_fleet_percent = 50;  // of the registered agents a run may take out
  std::vector<std::pair<std::string, std::string>> protected_labels;  // never given a fault
  int max_concurrent_runs = 4;    // 0 = no cap
};

// "KEY=VALUE" as a label pair; INVALID_ARGUMENT naming `flag`.
absl::StatusOr<std::pair<std::string, std::string>> ParseLabelFlag(const std::string& flag,
                                                                   const std::string& text);

// What a run would do: the agents its faults take out (`affected`: its targets'
// agents, a zone outage's zone) and every agent it gives a fault (`held`), out
// of `registered` agents.
struct RunFootprint {
  std::vector<AgentRef> affected;
  std::vector<AgentRef> held;
  size_t registered = 0;
};

// Checks a run against its experiment's `limits` and `fleet`:
// FAILED_PRECONDITION naming the limit and the agents.
absl::Status CheckBlastRadius(const v1::Limits& limits, const FleetLimits& fleet,
                              const RunFootprint& run);

// The agents running experiments hold. Owned by the controller service and
// shared by its runs; thread-safe.
class FleetGuard {
 public:
  explicit FleetGuard(FleetLimits limits) : limits_(std::move(limits)) {}

  const FleetLimits& limits() const { return limits_; }

  // CheckBlastRadius, then: RESOURCE_EXHAUSTED when --max-concurrent-runs runs
  // hold agents already, FAILED_PRECONDITION naming the agents another run
  // holds; else holds `run.held` for `run_id` until Release.
  absl::Status Admit(const std::string& run_id, const v1::Limits& limits, const RunFootprint& run);
  void Release(const std::string& run_id);

 private:
  const FleetLimits limits_;
  absl::Mutex mu_;
  std::map<std::string, std::string> holder_ ABSL_GUARDED_BY(mu_);  // agent name -> run id
  std::map<std::string, int> runs_ ABSL_GUARDED_BY(mu_);            // run id -> agents held
};

}  // namespace faultline::controller

#endif  // FAULTLINE_CONTROLLER_BLAST_RADIUS_H_
