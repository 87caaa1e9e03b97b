// The numbers of one run (DESIGN.md, "Timing model"): clock offsets NTP-style,
// and time to detect / outage / time to recover with their error and the
// verdict. Pure functions over samples already mapped onto the controller's
// clock. (A thin stand-in for controller/timeline/, which replaces it when it
// lands.)
#ifndef FAULTLINE_CONTROLLER_RUN_RESULT_H_
#define FAULTLINE_CONTROLLER_RUN_RESULT_H_

#include <cstdint>
#include <string>
#include <vector>

namespace faultline::controller {

// One clock reading exchange: t0 and t2 on the controller's realtime clock
// before and after the call, t1 the agent's realtime clock in the reply.
struct ClockExchange {
  int64_t t0_ns = 0;
  int64_t t1_ns = 0;
  int64_t t2_ns = 0;
};

// agent clock - controller clock, within +/- error_ns.
struct ClockOffset {
  int64_t offset_ns = 0;
  int64_t error_ns = 0;
  // Maps an agent realtime stamp onto the controller's clock.
  int64_t ToController(int64_t agent_ns) const { return agent_ns - offset_ns; }
};

// offset = t1 - (t0 + t2) / 2 and error = (t2 - t0) / 2 of the exchange with
// the shortest round trip. `exchanges` must not be empty.
ClockOffset EstimateClockOffset(const std::vector<ClockExchange>& exchanges);

// One probe sample on the controller's clock.
struct TimedSample {
  int64_t t_ns = 0;
  bool ok = false;
};

struct ProbeSeries {
  std::string name;
  int64_t interval_ns = 0;
  std::vector<TimedSample> samples;  // in time order
};

struct ResultInputs {
  int64_t injected_ns = 0;    // first fault applied
  int64_t fault_end_ns = 0;   // when the last fault stopped being active
  int64_t rto_ns = 0;
  int recovered_after = 3;    // consecutive successes that mean "recovered"
  int64_t clock_error_ns = 0; // worst clock-mapping error of the agents involved
  std::vector<ProbeSeries> probes;
};

struct ResultFigures {
  bool outage_observed = false;
  bool recovered = false;               // every failing probe recovered
  bool recovered_during_fault = false;  // ... before fault_end
  int64_t outage_start_ns = 0;
  int64_t recovered_ns = 0;             // first of the consecutive successes
  double time_to_detect_ms = 0;
  double outage_ms = 0;
  double time_to_recover_ms = 0;
  // Largest probe interval (or the actual gap between samples at the outage's
  // edges, when the prober ran late) + clock error.
  double error_ms = 0;
  std::string verdict;                  // pass | fail
  std::string reason;
};

// The outage starts at the first failed sample (any probe) at or after
// `injected_ns`. Each probe that failed recovers at the first sample of its
// first run of `recovered_after` consecutive successes after its first failure;
// the service recovered when the last of them did. Pass: recovered while the
// fault was active and time to recover <= rto. No failure at all: every figure
// 0 and pass.
ResultFigures ComputeResult(const ResultInputs& in);

}  // namespace faultline::controller

#endif  // FAULTLINE_CONTROLLER_RUN_RESULT_H_
