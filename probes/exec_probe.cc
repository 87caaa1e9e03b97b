// exec probe: runs a command (argv, no shell, no PATH lookup: argv[0] is an
// absolute path); healthy when it exits 0 within the timeout. It runs as the
// exec policy's unprivileged user, from /, with a minimal environment. A command
// that overruns is killed (its process group, which we created for it) and
// reaped before Check() returns.
#include <fcntl.h>
#include <fmt/format.h>
#include <poll.h>
#include <signal.h>
#include <sys/syscall.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <string>
#include <optional>
#include <utility>
#include <vector>

#include "probes/probe_internal.h"
#include "common/status_macros.h"

namespace faultline::probes {
namespace {

constexpr size_t kMaxOutputKept = 512;

// First line of the command's output, for the error message.
std::string Summarize(const std::string& output) {
  std::string line = output.substr(0, output.find('\n'));
  for (char& c : line) {
    if (static_cast<unsigned char>(c) < 0x20) c = ' ';
  }
  return line.size() > 200 ? line.substr(0, 200) + "..." : line;
}

// Forks and executes argv once per check. Owned by the runner; not thread-safe.
class ExecProbe final : public Probe {
 public:
  ExecProbe(std::vector<std::string> argv, std::optional<ExecCredentials> run_as)
      : argv_(std::move(argv)), run_as_(std::move(run_as)) {}

  ProbeResult Check(std::chrono::nanoseconds timeout) override {
    const Clock::time_point deadline =
        Clock::now() + std::chrono::duration_cast<Clock::duration>(timeout);
    // Everything the child needs is prepared before fork(): after it only
    // async-signal-safe calls are allowed (the agent is multi-threaded).
    std::vector<char*> argv;
    for (std::string& arg : argv_) argv.push_back(arg.data());
    argv.push_back(nullptr);
    // Nothing of ours leaks into the command's environment.
    static char kPath[] = "PATH=/usr/sbin:/usr/bin:/sbin:/bin";
    static char kHome[] = "HOME=/";
    char* env[] = {kPath, kHome, nullptr};
    const bool switch_user = run_as_.has_value();
    const uid_t uid = switch_user ? run_as_->uid : 0;
    const gid_t gid = switch_user ? run_as_->gid : 0;
    UniqueFd dev_null(::open("/dev/null", O_RDONLY | O_CLOEXEC));
    int out_pipe[2];
    int err_pipe[2];
    if (!dev_null.is_valid()) return {false, fmt::format("open /dev/null: {}", std::strerror(errno))};
    if (::pipe2(out_pipe, O_CLOEXEC) != 0) {
      return {false, fmt::format("pipe: {}", std::strerror(errno))};
    }
    UniqueFd out_r(out_pipe[0]), out_w(out_pipe[1]);
    if (::pipe2(err_pipe, O_CLOEXEC) != 0) {
      return {false, fmt::format("pipe: {}", std::strerror(errno))};
    }
    UniqueFd err_r(err_pipe[0]), err_w(err_pipe[1]);
    const pid_t parent = ::getpid();

    const pid_t pid = ::fork();
    if (pid < 0) return {false, fmt::format("fork: {}", std::strerror(errno))};
    if (pid == 0) {
      // Child: own process group (so a timeout kills what it spawned too), die
      // with the agent, default signal state, output into our pipe.
      ::setpgid(0, 0);
      ::prctl(PR_SET_PDEATHSIG, SIGKILL);
      if (::getppid() != parent) ::_exit(127);
      sigset_t none;
      sigemptyset(&none);
      ::sigprocmask(SIG_SETMASK, &none, nullptr);
      ::signal(SIGPIPE, SIG_DFL);
      ::dup2(dev_null.get(), 0);
      ::dup2(out_w.get(), 1);
      ::dup2(out_w.get(), 2);
      // Raw syscalls: they change only this (the child's only) thread, and are
      // async-signal-safe. Groups first, then gid, then uid (after which we
      // could no longer change them).
      int err = 0;
      if (switch_user && (::syscall(SYS_setgroups, 0, nullptr) != 0 ||
                          ::syscall(SYS_setresgid, gid, gid, gid) != 0 ||
                          ::syscall(SYS_setresuid, uid, uid, uid) != 0)) {
        err = errno;
      }
      if (err == 0 && ::chdir("/") != 0) err = errno;
      if (err == 0) {
        ::execve(argv[0], argv.data(), env);
        err = errno;
      }
      ssize_t ignored = ::write(err_w.get(), &err, sizeof(err));
      (void)ignored;
      ::_exit(127);
    }
    ::setpgid(pid, pid);  // also from here, so kill(-pid) works at once
    out_w.reset();
    err_w.reset();

    // The error pipe closes on a successful exec, or carries exec's errno.
    int exec_errno = 0;
    ssize_t n;
    do {
      n = ::read(err_r.get(), &exec_errno, sizeof(exec_errno));
    } while (n < 0 && errno == EINTR);
    if (n == static_cast<ssize_t>(sizeof(exec_errno))) {
      Reap(pid);
      return {false, fmt::format("exec {}: {}", argv_[0], std::strerror(exec_errno))};
    }

    // glibc 2.36 has no pidfd_open() wrapper; -1 (old kernel) falls back to waitid.
    UniqueFd pidfd(static_cast<int>(::syscall(SYS_pidfd_open, pid, 0)));
    std::string output;
    bool exited = false;
    while (!exited) {
      pollfd fds[2] = {{pidfd.get(), POLLIN, 0}, {out_r.get(), POLLIN, 0}};
      const nfds_t nfds = out_r.is_valid() ? 2 : 1;
      int timeout_ms = PollTimeoutMs(deadline);
      if (!pidfd.is_valid()) timeout_ms = std::min(timeout_ms, 1);  // no pidfd: poll waitpid
      int rc = ::poll(fds, nfds, timeout_ms);
      if (rc < 0 && errno == EINTR) continue;
      if (nfds == 2 && (fds[1].revents & (POLLIN | POLLHUP)) != 0) {
        char buf[4096];
        ssize_t got = ::read(out_r.get(), buf, sizeof(buf));
        if (got > 0) {
          output.append(buf, std::min(static_cast<size_t>(got),
                                      kMaxOutputKept - std::min(output.size(), kMaxOutputKept)));
        } else if (got == 0 || (got < 0 && errno != EINTR && errno != EAGAIN)) {
          out_r.reset();
        }
      }
      if (pidfd.is_valid() ? (fds[0].revents & POLLIN) != 0 : Exited(pid)) exited = true;
      if (!exited && Clock::now() >= deadline) {
        ::kill(-pid, SIGKILL);
        ::kill(pid, SIGKILL);
        Reap(pid);
        return {false, fmt::format("timed out after {} ms; killed pid {}",
                                   std::chrono::duration_cast<std::chrono::milliseconds>(
                                       timeout).count(), pid)};
      }
    }
    const int status = Reap(pid);
    if (WIFEXITED(status) && WEXITSTATUS(status) == 0) return {true, ""};
    std::string what = WIFEXITED(status)
                           ? fmt::format("exit status {}", WEXITSTATUS(status))
                           : fmt::format("killed by signal {}", WTERMSIG(status));
    const std::string summary = Summarize(output);
    if (!summary.empty()) what += ": " + summary;
    return {false, what};
  }

 private:
  // Without a pidfd (old kernels): has the child exited? Leaves it unreaped.
  static bool Exited(pid_t pid) {
    siginfo_t info{};
    return ::waitid(P_PID, static_cast<id_t>(pid), &info, WEXITED | WNOHANG | WNOWAIT) == 0 &&
           info.si_pid == pid;
  }

  static int Reap(pid_t pid) {
    int status = 0;
    while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
    }
    return status;
  }

  std::vector<std::string> argv_;
  const std::optional<ExecCredentials> run_as_;
};

}  // namespace

absl::StatusOr<std::unique_ptr<Probe>> MakeExecProbe(const v1::ExecProbe& spec,
                                                     const ExecPolicy* exec) {
  if (spec.argv_size() == 0) {
    return absl::InvalidArgumentError(
        "exec.argv: must not be empty (a command and its arguments; no shell)");
  }
  if (spec.argv(0).empty()) {
    return absl::InvalidArgumentError("exec.argv[0]: the command must not be empty");
  }
  if (spec.argv(0)[0] != '/') {
    return absl::InvalidArgumentError(fmt::format(
        "exec.argv[0]: must be an absolute path (no PATH lookup), got \"{}\"", spec.argv(0)));
  }
  std::vector<std::string> argv;
  for (int i = 0; i < spec.argv_size(); ++i) {
    if (spec.argv(i).find('\0') != std::string::npos) {
      return absl::InvalidArgumentError(
          fmt::format("exec.argv[{}]: must not contain NUL bytes", i));
    }
    argv.push_back(spec.argv(i));
  }
  std::optional<ExecCredentials> run_as;
  if (exec != nullptr) {
    RETURN_IF_ERROR(exec->Check(argv));
    run_as = exec->credentials();
  }
  return std::unique_ptr<Probe>(std::make_unique<ExecProbe>(std::move(argv), std::move(run_as)));
}

}  // namespace faultline::probes
