// The figures of one experiment run, computed from probe samples already mapped
// onto the controller's clock (DESIGN.md, "Timing model"; issue 4). Plain structs
// the controller maps to its protos. Pure functions, no I/O.
//
// Definitions (all times on the controller's clock, ns):
//   injected        when the fault was applied (the first fault, if several);
//   outage start    the first failed sample at or after `injected`, over all probes;
//   recovered       per probe, the first sample of the first run of
//                   `recovered_after` consecutive successes after that probe's first
//                   failure; over several probes the latest of them (the outage is
//                   the union: first failure of any probe to the last recovery);
//   time_to_detect  injected -> outage start;
//   outage          outage start -> recovered;
//   time_to_recover injected -> recovered (the measured RTO);
//   error           ± (largest probe interval + that probe's clock error + the
//                   error of `injected`), the same bound for all three figures.
// Samples before `injected` are ignored: the runner's steady-state check owns them.
#ifndef FAULTLINE_CONTROLLER_TIMELINE_RESULT_H_
#define FAULTLINE_CONTROLLER_TIMELINE_RESULT_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "controller/timeline/clock_offset.h"

namespace faultline::timeline {

// One probe check: its start time (controller clock) and outcome.
struct ProbeObservation {
  int64_t time_ns = 0;
  bool ok = false;
};

// All samples of one probe. Order does not matter (they are sorted by time).
struct ProbeSeries {
  std::string name;
  int64_t interval_ns = 0;     // the probe's interval (> 0)
  int64_t clock_error_ns = 0;  // mapping error of its times (0 if run by the controller)
  std::vector<ProbeObservation> samples;
};

// A probe's series from samples stamped by an agent (times on the agent's clock,
// e.g. ProbeSample.start_mono_ns with an offset estimated from monotonic clock
// readings, which NTP steps cannot disturb mid-run), mapped onto the
// controller's clock; clock_error_ns is the offset's error. A probe the
// controller ran itself needs no mapping (clock_error_ns = 0).
ProbeSeries MapProbeSeries(std::string name, int64_t interval_ns,
                           const std::vector<ProbeObservation>& agent_samples,
                           const ClockOffset& offset);

// One injected fault. A fault is active from `injected` until its revert; an
// action fault (kill: nothing to revert) counts as active until the experiment's
// end. reverted_ns <= 0 means it was never reverted: active until the end.
struct FaultWindow {
  int64_t reverted_ns = 0;
  bool is_action = false;
};

struct ResultInput {
  int64_t injected_ns = 0;
  int64_t injected_error_ns = 0;   // clock-mapping error of the agent's apply time
  std::vector<FaultWindow> faults;  // empty: active until experiment_end_ns
  int64_t experiment_end_ns = 0;    // injected + the experiment's duration
  std::vector<ProbeSeries> probes;  // at least one
  int recovered_after = 3;          // consecutive successes that count as recovered
  int64_t rto_ns = 0;               // the target; 0 = no target (see verdict)
};

enum class Verdict { kPass, kFail };
const char* VerdictName(Verdict verdict);  // "pass" / "fail"

// What one probe saw after the injection.
struct ProbeOutcome {
  std::string name;
  int64_t samples = 0;  // at or after `injected`
  int64_t failures = 0;
  bool failed = false;
  int64_t first_failure_ns = 0;  // valid when failed
  bool recovered = false;
  int64_t recovered_ns = 0;  // valid when recovered
};

struct RunResult {
  Verdict verdict = Verdict::kFail;
  std::string reason;  // one sentence, for people

  bool outage_observed = false;  // some probe failed after the injection
  bool recovered = false;        // every probe that failed recovered
  int64_t outage_start_ns = 0;   // valid when outage_observed
  int64_t recovered_ns = 0;      // valid when recovered
  int64_t fault_active_until_ns = 0;

  // The proto-ready figures. With no outage all three are 0. When the service
  // never recovered, time_to_recover_ms is -1 and outage_ms is a lower bound
  // (outage start to the last sample).
  int64_t time_to_detect_ms = 0;
  int64_t outage_ms = 0;
  int64_t time_to_recover_ms = 0;
  int64_t error_ms = 0;  // rounded up
  int64_t rto_target_ms = 0;
  bool recovered_during_fault = false;  // recovery came before the fault ended

  std::vector<ProbeOutcome> probes;  // in input order
};

// Verdict:
//  - pass when the service recovered while the fault was still active (a real
//    failover) and time_to_recover <= rto (any time if rto_ns == 0);
//  - pass when no probe ever failed after the injection: the service rode through
//    the fault, so the measured RTO is 0 (time_to_recover_ms = 0);
//  - fail otherwise: never recovered, recovered only after the revert (the fault
//    ending is not a failover), slower than the RTO, or a probe with no samples
//    after the injection (nothing shows the service was up).
// INVALID_ARGUMENT (naming the field) for inconsistent input: no probes, an
// interval <= 0, recovered_after < 1, negative rto or errors, experiment end
// before the injection.
absl::StatusOr<RunResult> ComputeResult(const ResultInput& input);

}  // namespace faultline::timeline

#endif  // FAULTLINE_CONTROLLER_TIMELINE_RESULT_H_
