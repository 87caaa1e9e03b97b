// Runs a probe on a fixed schedule and stamps each result as a ProbeSample.
#ifndef FAULTLINE_PROBES_PROBE_RUNNER_H_
#define FAULTLINE_PROBES_PROBE_RUNNER_H_

#include <cstdint>
#include <functional>

#include "absl/status/status.h"
#include "probes/exec_policy.h"
#include "faultline/v1/agent.pb.h"

namespace faultline {

// Validates `spec` (INVALID_ARGUMENT naming the field; nothing runs then) and
// checks the probe at t0 + k*interval on CLOCK_MONOTONIC (t0 = the call), sleeping
// to absolute times so the schedule does not drift. A check that overruns its slot
// makes the runner skip the slots it missed instead of running them back to back.
// Each sample carries seq (0, 1, 2, ... in emit order), ok, error, the start time
// on both clocks (common/clock.h) and the check's latency. Stops, returning OK,
// when `emit` returns false or after `max_samples` samples (0 = no limit; negative
// is INVALID_ARGUMENT). Blocks the calling thread; `emit` runs on it. For
// intervals under 100 ms the calling thread runs SCHED_FIFO (lowest priority,
// reset on fork) while in the loop, if it may, so that 10 ms holds on a busy
// host; its policy is restored on return.
absl::Status RunProbeLoop(const v1::ProbeSpec& spec, int64_t max_samples,
                          const std::function<bool(const v1::ProbeSample&)>& emit);

// The same, also stopping (returning OK) as soon as `cancelled` returns true; it
// is polled at least every 100 ms while the loop sleeps, so a long interval does
// not keep a cancelled caller (e.g. a RunProbe stream whose client went away,
// ServerContext::IsCancelled) waiting. A null `cancelled` never cancels.
//
// An exec probe runs only when `exec` allows its argv (PERMISSION_DENIED naming
// the policy otherwise; the default policy allows nothing), as its user.
absl::Status RunProbeLoop(const v1::ProbeSpec& spec, int64_t max_samples,
                          const std::function<bool(const v1::ProbeSample&)>& emit,
                          const std::function<bool()>& cancelled,
                          const ExecPolicy& exec = ExecPolicy());

}  // namespace faultline

#endif  // FAULTLINE_PROBES_PROBE_RUNNER_H_
