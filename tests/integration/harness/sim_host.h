// A simulated host: its own PID and mount namespaces (and /proc), optionally its
// own network namespace, so process selectors and mounts stay inside it.
#ifndef FAULTLINE_TESTS_INTEGRATION_HARNESS_SIM_HOST_H_
#define FAULTLINE_TESTS_INTEGRATION_HARNESS_SIM_HOST_H_

#include <sys/types.h>

#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "harness/netns.h"
#include "harness/subprocess.h"

namespace faultline::itest {

enum class HostNet {
  kShared,   // the test's network namespace (loopback reachable from the test)
  kPrivate,  // an anonymous one (`unshare --net`)
  kNamed,    // a named one fltest-<pid>-<name>, owned by the host (for veths)
};

// A process running inside a SimHost, seen from outside.
struct HostProcess {
  pid_t outer_pid = 0;  // pid in the test's pid namespace (kill/stat from the test)
  pid_t inner_pid = 0;  // pid inside the host (what the host's agent sees)
};

// One simulated host: `unshare --pid --fork --mount --mount-proc --kill-child
// [--net] sleep infinity`, optionally started inside a named network namespace
// (`ip netns exec NAME unshare ...`). Killing unshare kills the namespace's init,
// hence every process in it, and drops its mounts. Owned by the test; the
// destructor ends the host and deletes an owned netns. Not thread-safe.
class SimHost {
 public:
  static absl::StatusOr<std::unique_ptr<SimHost>> Create(const std::string& name,
                                                         HostNet net = HostNet::kShared);
  // A host inside an existing named namespace (not owned; must outlive the host).
  static absl::StatusOr<std::unique_ptr<SimHost>> CreateInNetns(const std::string& name,
                                                                const NetNs& netns);
  ~SimHost();
  SimHost(const SimHost&) = delete;
  SimHost& operator=(const SimHost&) = delete;

  const std::string& name() const { return name_; }
  // The namespace's init (sleep infinity), as a pid of the test's namespace.
  pid_t init_pid() const { return init_pid_; }
  // The host's named network namespace, or nullptr (kShared / kPrivate).
  const NetNs* netns() const { return netns_; }

  // Starts argv inside the host (`nsenter -t INIT -p -m [-n] -- argv`). The returned
  // Subprocess is nsenter; its child is the real process (see Find()). util-linux
  // nsenter stops itself when its child stops (SIGSTOP, a pause fault) and stays
  // stopped after the child continues: KillGroup(SIGCONT) before waiting on it.
  absl::StatusOr<std::unique_ptr<Subprocess>> Exec(const std::vector<std::string>& argv,
                                                   const SubprocessOptions& options = {});
  // Runs argv inside the host to completion.
  CommandResult Run(const std::vector<std::string>& argv,
                    std::chrono::milliseconds timeout = std::chrono::seconds(30));
  // The real process behind an Exec() (nsenter's child, once it has exec'd),
  // waiting up to `timeout` for it to appear.
  absl::StatusOr<HostProcess> Find(const Subprocess& exec,
                                   std::chrono::milliseconds timeout = std::chrono::seconds(5));

  // Mounts a tmpfs of `size` (e.g. "16M") on `dir` in the host's mount namespace
  // only; `dir` is created if missing. Gone with the host.
  absl::Status MountTmpfs(const std::string& dir, const std::string& size);
  // Where the host's `path` is visible from the test (/proc/INIT/root/PATH).
  std::string OutsidePath(const std::string& path) const;

 private:
  SimHost() = default;
  static absl::StatusOr<std::unique_ptr<SimHost>> Start(const std::string& name, HostNet net,
                                                        const NetNs* join,
                                                        std::unique_ptr<NetNs> owned);
  std::vector<std::string> NsenterPrefix() const;

  std::string name_;
  HostNet net_ = HostNet::kShared;
  std::unique_ptr<NetNs> owned_netns_;
  const NetNs* netns_ = nullptr;
  std::unique_ptr<Subprocess> unshare_;
  pid_t init_pid_ = 0;
};

// Reads /proc/PID/status fields and /proc/PID/stat state for assertions.
// The process state letter (R, S, T, Z, ...) of `pid`, or '?' when gone.
char ProcessState(pid_t pid);
// The last NSpid of `pid` (its pid in its own namespace), or 0 when gone.
pid_t InnermostPid(pid_t pid);
// True while /proc/PID exists and is not a zombie.
bool ProcessAlive(pid_t pid);
// Parent pid from /proc/PID/stat, 0 when gone.
pid_t ParentPid(pid_t pid);
std::string ProcessComm(pid_t pid);

// Polls `pred` every 10 ms until it is true or `timeout` passes; returns its last value.
// A negative timeout checks once.
template <typename Pred, typename Rep, typename Period>
bool WaitFor(Pred pred, std::chrono::duration<Rep, Period> timeout);

}  // namespace faultline::itest

#include <thread>

namespace faultline::itest {
template <typename Pred, typename Rep, typename Period>
bool WaitFor(Pred pred, std::chrono::duration<Rep, Period> timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  for (;;) {
    if (pred()) return true;
    if (std::chrono::steady_clock::now() >= deadline) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
}
}  // namespace faultline::itest

#endif  // FAULTLINE_TESTS_INTEGRATION_HARNESS_SIM_HOST_H_
