// Child processes for integration tests: fork/exec of an argv vector (no shell).
#ifndef FAULTLINE_TESTS_INTEGRATION_HARNESS_SUBPROCESS_H_
#define FAULTLINE_TESTS_INTEGRATION_HARNESS_SUBPROCESS_H_

#include <sys/types.h>

#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"

namespace faultline::itest {

struct SubprocessOptions {
  // Where the child's stdout / stderr go: a file (created or truncated), or ""
  // to capture them in memory (read with Stdout()/Stderr()).
  std::string stdout_file;
  std::string stderr_file;
};

// One child process started with execvp (no shell). The child gets
// PR_SET_PDEATHSIG(SIGKILL), so it dies with the thread that started it (start
// subprocesses from the test's main thread), and its own process group, so
// KillGroup() also reaches what it forked (e.g. nsenter's child).
// Owned by the test; the destructor SIGKILLs the group and reaps the child if it
// is still running. Not thread-safe.
class Subprocess {
 public:
  static absl::StatusOr<std::unique_ptr<Subprocess>> Start(
      const std::vector<std::string>& argv, const SubprocessOptions& options = {});
  ~Subprocess();
  Subprocess(const Subprocess&) = delete;
  Subprocess& operator=(const Subprocess&) = delete;

  pid_t pid() const { return pid_; }
  const std::vector<std::string>& argv() const { return argv_; }
  // argv joined with spaces, for messages.
  std::string CommandLine() const;

  // True while the child has not exited (reaps it when it has).
  bool Running();
  // Waits up to `timeout` for the child to exit; true when it has.
  bool Wait(std::chrono::milliseconds timeout);
  bool exited() const { return reaped_; }
  // After exit: the exit status, or 128 + signal when killed by a signal.
  int exit_code() const;
  bool signaled() const;
  int term_signal() const;

  // Sends `sig` to the child's pid only (no-op once reaped).
  void Kill(int sig);
  // Sends `sig` to the child's whole process group.
  void KillGroup(int sig);
  // Ends the child and whatever it started, and reaps it: SIGKILLs its own
  // children first and lets it reap them (nsenter then exits by itself), then
  // SIGKILLs its process group. The destructor does this.
  void Stop();

  // Output so far: captured in memory or read back from the file.
  std::string Stdout() const;
  std::string Stderr() const;

 private:
  Subprocess() = default;

  std::vector<std::string> argv_;
  SubprocessOptions options_;
  pid_t pid_ = -1;
  bool reaped_ = false;
  int wait_status_ = 0;
  int stdout_memfd_ = -1;
  int stderr_memfd_ = -1;
};

// Result of RunCommand.
struct CommandResult {
  int exit_code = -1;      // 128 + signal when killed by a signal
  bool timed_out = false;  // killed at the timeout
  std::string start_error; // could not start at all
  std::string out;
  std::string err;

  bool ok() const { return start_error.empty() && !timed_out && exit_code == 0; }
  // "`argv` exited N: stderr..." for assertion messages.
  std::string Describe() const;
  std::string command;
};

// Runs argv to completion (SIGKILLed after `timeout`), capturing its output.
CommandResult RunCommand(const std::vector<std::string>& argv,
                         std::chrono::milliseconds timeout = std::chrono::seconds(30));

// The processes whose parent is `parent` (a scan of /proc).
std::vector<pid_t> ChildPids(pid_t parent);

// FAULTLINE_TIMING_SLACK (scripts/test sets 3 under the sanitizers; at least
// 1, and 1 when unset): tests that bound a latency multiply the bound by it.
double TimingSlack();

// Runs argv and turns a non-zero exit into an error carrying its stderr.
absl::Status RunChecked(const std::vector<std::string>& argv,
                        std::chrono::milliseconds timeout = std::chrono::seconds(30));

}  // namespace faultline::itest

#endif  // FAULTLINE_TESTS_INTEGRATION_HARNESS_SUBPROCESS_H_
