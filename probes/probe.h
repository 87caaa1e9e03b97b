// Probes: one health check of a service (tcp connect, HTTP GET, a command, gRPC
// health, Redis directly or through Sentinel), built from a v1::ProbeSpec. The probe runner (probe_runner.h) calls
// Check() on a fixed schedule; the agent runs it for RunProbe and the controller
// for probes `from: controller`.
#ifndef FAULTLINE_PROBES_PROBE_H_
#define FAULTLINE_PROBES_PROBE_H_

#include <chrono>
#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "probes/exec_policy.h"
#include "faultline/v1/agent.pb.h"

namespace faultline {

// The outcome of one check. `error` says why it failed ("" when ok).
struct ProbeResult {
  bool ok = false;
  std::string error;
};

// One configured health check. Instances are owned by whoever runs them (the
// probe runner); Check() is not meant to be called from two threads at once on
// the same instance. Every check is independent (a fresh connection or process
// each time), so one sample says how the service answered at that moment.
class Probe {
 public:
  virtual ~Probe() = default;
  // Runs one check; returns within `timeout` (plus a few ms of clean-up, e.g.
  // reaping a killed child). Never throws.
  virtual ProbeResult Check(std::chrono::nanoseconds timeout) = 0;
};

// The schedule part of a ProbeSpec, parsed.
struct ProbeTiming {
  std::chrono::nanoseconds interval;
  std::chrono::nanoseconds timeout;
};

// Limits for `interval` and `timeout`. An empty interval means kDefaultInterval;
// an empty timeout means the interval (capped at kDefaultTimeout). The timeout may
// exceed the interval: a check that overruns makes the runner skip slots.
inline constexpr std::chrono::nanoseconds kMinInterval = std::chrono::milliseconds(10);
inline constexpr std::chrono::nanoseconds kMaxInterval = std::chrono::hours(1);
inline constexpr std::chrono::nanoseconds kDefaultInterval = std::chrono::seconds(1);
inline constexpr std::chrono::nanoseconds kMinTimeout = std::chrono::milliseconds(1);
inline constexpr std::chrono::nanoseconds kMaxTimeout = std::chrono::minutes(5);
inline constexpr std::chrono::nanoseconds kDefaultTimeout = std::chrono::seconds(1);

// Validates and parses `interval` and `timeout` (INVALID_ARGUMENT naming the field,
// e.g. "interval: must be at least 10ms, got 5ms").
absl::StatusOr<ProbeTiming> ParseProbeTiming(const v1::ProbeSpec& spec);

// Validates every field of `spec` (INVALID_ARGUMENT naming it: "tcp.address: ...",
// "http.url: only http:// is supported", "exec.argv: must not be empty", ...) and
// builds the probe. Host names are resolved at each check, not here. An exec
// probe is built only when `exec` allows its argv (PERMISSION_DENIED naming the
// policy; the default policy allows nothing) and runs as the policy's user.
absl::StatusOr<std::unique_ptr<Probe>> MakeProbe(const v1::ProbeSpec& spec,
                                                 const ExecPolicy& exec = ExecPolicy());

// The same checks, building nothing and asking no policy: for validating an
// experiment file away from where its probes will run.
absl::Status ValidateProbe(const v1::ProbeSpec& spec);

}  // namespace faultline

#endif  // FAULTLINE_PROBES_PROBE_H_
