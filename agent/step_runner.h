// Drill steps on the agent (RunStep; docs/experiments.md, "Restore drills"):
// one argument vector the exec policy allows, run through the exec runner
// (probes/exec_runner.h) as the policy's user, with its timeout, killed with
// its whole process group when the call is cancelled; the last 4 KiB of its
// output come back.
#ifndef FAULTLINE_AGENT_STEP_RUNNER_H_
#define FAULTLINE_AGENT_STEP_RUNNER_H_

#include <chrono>
#include <functional>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "faultline/v1/agent.pb.h"
#include "probes/exec_policy.h"

namespace faultline::agent {

// The agent's running drill steps: at most kMaxRunning at once. Owned by the
// AgentService; thread-safe (each Run blocks its own caller's thread; only the
// count is shared, under mu_, never held while a command runs).
class StepRunner {
 public:
  static constexpr int kMaxRunning = 2;
  static constexpr size_t kOutputTail = 4096;
  static constexpr std::chrono::milliseconds kMinTimeout{1};
  static constexpr std::chrono::hours kMaxTimeout{6};

  // Runs `req` under `policy` until it ends, times out or `cancelled()` says
  // so. INVALID_ARGUMENT naming the field (argv, timeout_ms), PERMISSION_DENIED
  // naming argv[0] when the policy does not allow it, RESOURCE_EXHAUSTED when
  // kMaxRunning steps run already, FAILED_PRECONDITION when exec failed.
  absl::StatusOr<v1::RunStepResponse> Run(const v1::RunStepRequest& req, const ExecPolicy& policy,
                                          const std::function<bool()>& cancelled);

  int running() const;

 private:
  // Takes a slot; false when none is free.
  bool Acquire();
  void Release();

  mutable absl::Mutex mu_;
  int running_ ABSL_GUARDED_BY(mu_) = 0;
};

}  // namespace faultline::agent

#endif  // FAULTLINE_AGENT_STEP_RUNNER_H_
