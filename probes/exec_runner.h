// Runs one command for the exec probe and for drill steps (the agent's
// RunStep): an argument vector (no shell, no PATH lookup: argv[0] is an
// absolute path), in a process group of its own, with a minimal environment,
// from /, optionally as an unprivileged user. Its output (stdout and stderr
// together) is read as it comes and only a bounded part is kept; the whole
// process group is killed when the timeout passes or the caller cancels, and
// the command is reaped before RunCommand returns.
#ifndef FAULTLINE_PROBES_EXEC_RUNNER_H_
#define FAULTLINE_PROBES_EXEC_RUNNER_H_

#include <chrono>
#include <cstddef>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "probes/exec_policy.h"

namespace faultline::probes {

// Checks an argument vector (errors name `field`, e.g. "exec.argv[0]"): not
// empty, argv[0] an absolute path, no NUL bytes.
absl::Status ValidateArgv(const std::string& field, const std::vector<std::string>& argv);

struct ExecOptions {
  std::optional<ExecCredentials> run_as;  // none: our own credentials
  std::chrono::nanoseconds timeout{std::chrono::seconds(1)};
  // How much output to keep: the first `keep_bytes` (kHead) or the last (kTail).
  enum class Keep { kHead, kTail };
  Keep keep = Keep::kHead;
  size_t keep_bytes = 512;
  // Polled about every 50 ms while the command runs; true kills it.
  std::function<bool()> cancelled;
};

// How one command ended.
struct ExecOutcome {
  int pid = 0;           // the command's pid (reaped: for messages only)
  int exit_code = -1;    // when it exited
  int signal = 0;        // when a signal ended it (SIGKILL after a timeout)
  bool timed_out = false;
  bool cancelled = false;
  std::chrono::nanoseconds duration{0};  // monotonic, fork to reap
  std::chrono::nanoseconds timeout{0};   // the bound it ran under
  std::string output;    // the kept part of stdout+stderr
  size_t output_bytes = 0;  // everything it wrote
  bool ok() const { return exit_code == 0 && !timed_out && !cancelled; }
  // "exit status 3", "killed by signal 9", "timed out after 200 ms; killed pid 42".
  std::string Describe() const;
};

// Runs `argv` (ValidateArgv'ed) to its end, its timeout or a cancel. An error
// only when it could not be started (FAILED_PRECONDITION "exec PATH: reason"
// for a failed execve, INTERNAL for pipe/fork).
absl::StatusOr<ExecOutcome> RunCommand(std::vector<std::string> argv, const ExecOptions& options);

}  // namespace faultline::probes

#endif  // FAULTLINE_PROBES_EXEC_RUNNER_H_
