// An experiment's stop conditions (`stop_when`, DESIGN.md "Fleet runs"),
// evaluated without any I/O: the run feeds it probe samples (controller clock)
// and the outcome of each agent's lease renewal, and it answers which
// condition fired, in words. Armed once the steady state is reached; samples
// stamped before that do not count. Not thread-safe (the run guards it).
#ifndef FAULTLINE_CONTROLLER_STOP_CONDITIONS_H_
#define FAULTLINE_CONTROLLER_STOP_CONDITIONS_H_

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "faultline/v1/experiment.pb.h"

namespace faultline::controller {

// A condition that fired.
struct StopTrigger {
  int index = 0;      // stop_when[index]
  int64_t at_ns = 0;  // when it became true (controller clock)
  std::string reason;  // e.g. "stop_when[0]: probe web-http failing for 30.0 s"
};

class StopConditions {
 public:
  // The conditions of a validated experiment (an invalid entry is ignored).
  // Probe indexes are those of exp.probes().
  explicit StopConditions(const v1::Experiment& exp);

  bool empty() const { return conditions_.empty(); }
  // Starts evaluating: samples stamped before `since_ns` are ignored.
  void Arm(int64_t since_ns);
  // Stops evaluating (the faults are being reverted); fired() stays.
  void Disarm() { armed_ = false; }
  bool armed() const { return armed_; }

  // One probe sample. Returns the trigger if this sample made a condition fire
  // (only the first trigger of the run is ever returned).
  std::optional<StopTrigger> AddSample(size_t probe, int64_t time_ns, bool ok);
  // The outcome of the latest lease renewal of a target agent (one holding the
  // run's faults) at `now_ns`: whether it answered, and if not why.
  std::optional<StopTrigger> AgentReachable(const std::string& agent, bool reachable,
                                            int64_t now_ns, const std::string& why = "");

  // The condition that fired, if any.
  const std::optional<StopTrigger>& fired() const { return fired_; }

 private:
  struct Sample {
    int64_t time_ns;
    bool ok;
  };
  struct Condition {
    int index = 0;
    enum Kind { kFailingFor, kRatio, kAgentsLost } kind = kFailingFor;
    std::string probe_name;
    size_t probe = 0;
    int64_t span_ns = 0;  // failing_for or window
    double ratio = 0;
    int agents = 0;
    // kFailingFor: the latest success, the failures stamped after it (sorted).
    int64_t last_ok_ns = INT64_MIN;
    std::deque<int64_t> failures;
    // kRatio: the samples of the last window (sorted), and of them the failed.
    std::deque<Sample> window;
    int64_t window_failures = 0;
    int64_t first_ns = INT64_MAX;  // the earliest sample since arming
  };
  std::optional<StopTrigger> Fire(const Condition& c, int64_t at_ns, std::string reason);
  std::optional<StopTrigger> CheckFailingFor(Condition& c, int64_t time_ns, bool ok);
  std::optional<StopTrigger> CheckRatio(Condition& c, int64_t time_ns, bool ok);

  std::vector<Condition> conditions_;
  bool armed_ = false;
  int64_t since_ns_ = 0;
  struct AgentState {
    bool reachable = true;
    std::string why;
  };
  std::map<std::string, AgentState> agents_;
  std::optional<StopTrigger> fired_;
};

}  // namespace faultline::controller

#endif  // FAULTLINE_CONTROLLER_STOP_CONDITIONS_H_
