#include "agent/step_runner.h"

#include <fmt/format.h>

#include <string>
#include <vector>

#include "absl/cleanup/cleanup.h"
#include "common/clock.h"
#include "common/status_macros.h"
#include "probes/exec_runner.h"

namespace faultline::agent {
namespace {

absl::Status CheckRequest(const v1::RunStepRequest& req, const std::vector<std::string>& argv,
                          const ExecPolicy& policy) {
  if (req.timeout_ms() < StepRunner::kMinTimeout.count() ||
      req.timeout_ms() > std::chrono::milliseconds(StepRunner::kMaxTimeout).count()) {
    return absl::InvalidArgumentError(fmt::format(
        "timeout_ms: must be between 1 ms and 6 h (21600000), got {}", req.timeout_ms()));
  }
  RETURN_IF_ERROR(probes::ValidateArgv("argv", argv));
  absl::Status allowed = policy.Check(argv, "drill step");
  if (!allowed.ok()) {
    return absl::PermissionDeniedError(
        fmt::format("argv[0] \"{}\": {}", argv[0], std::string(allowed.message())));
  }
  return absl::OkStatus();
}

v1::RunStepResponse ToResponse(const probes::ExecOutcome& out, int64_t started_unix_ns) {
  v1::RunStepResponse resp;
  resp.set_exit_code(out.exit_code);
  resp.set_signal(out.signal);
  resp.set_timed_out(out.timed_out);
  resp.set_duration_ns(out.duration.count());
  resp.set_output_tail(out.output);
  resp.set_output_bytes(static_cast<int64_t>(out.output_bytes));
  resp.set_started_unix_ns(started_unix_ns);
  resp.set_ended_unix_ns(NowRealtimeNs());
  return resp;
}

}  // namespace

absl::StatusOr<v1::RunStepResponse> StepRunner::Run(const v1::RunStepRequest& req,
                                                    const ExecPolicy& policy,
                                                    const std::function<bool()>& cancelled) {
  std::vector<std::string> argv(req.argv().begin(), req.argv().end());
  RETURN_IF_ERROR(CheckRequest(req, argv, policy));
  if (!Acquire()) {
    return absl::ResourceExhaustedError(fmt::format(
        "{} drill steps run on this agent already (at most {} at once)", kMaxRunning, kMaxRunning));
  }
  absl::Cleanup release = [this] { Release(); };
  probes::ExecOptions options;
  options.run_as = policy.credentials();
  options.timeout = std::chrono::milliseconds(req.timeout_ms());
  options.keep = probes::ExecOptions::Keep::kTail;
  options.keep_bytes = kOutputTail;
  options.cancelled = cancelled;
  const int64_t started = NowRealtimeNs();
  ASSIGN_OR_RETURN(probes::ExecOutcome out, probes::RunCommand(std::move(argv), options));
  if (out.cancelled) return absl::CancelledError("the call was cancelled; the step was killed");
  return ToResponse(out, started);
}

int StepRunner::running() const {
  absl::MutexLock lock(&mu_);
  return running_;
}

bool StepRunner::Acquire() {
  absl::MutexLock lock(&mu_);
  if (running_ >= kMaxRunning) return false;
  ++running_;
  return true;
}

void StepRunner::Release() {
  absl::MutexLock lock(&mu_);
  --running_;
}

}  // namespace faultline::agent
