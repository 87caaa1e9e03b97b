#include "probes/exec_runner.h"

#include <fcntl.h>
#include <fmt/format.h>
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <utility>

#include "common/status_macros.h"
#include "common/unique_fd.h"
#include "probes/probe_net.h"

namespace faultline::probes {
namespace {

// How often a running command's cancel callback is asked.
constexpr int kCancelPollMs = 50;

// What the child needs, prepared before fork(): after it only
// async-signal-safe calls are allowed (the agent is multi-threaded).
struct ChildPlan {
  std::vector<char*> argv;
  char** env = nullptr;
  bool switch_user = false;
  uid_t uid = 0;
  gid_t gid = 0;
  int dev_null = -1;
  int out_w = -1;  // stdout and stderr
  int err_w = -1;  // exec's errno, when it fails
  pid_t parent = 0;
};

// The child: own process group (so a timeout kills what it spawned too), dies
// with the agent, default signal state, output into our pipe, then exec.
[[noreturn]] void ExecChild(const ChildPlan& plan) {
  ::setpgid(0, 0);
  sigset_t none;
  sigemptyset(&none);
  ::sigprocmask(SIG_SETMASK, &none, nullptr);
  ::signal(SIGPIPE, SIG_DFL);
  ::dup2(plan.dev_null, 0);
  ::dup2(plan.out_w, 1);
  ::dup2(plan.out_w, 2);
  // Raw syscalls: they change only this (the child's only) thread, and are
  // async-signal-safe. Groups first, then gid, then uid (after which we
  // could no longer change them).
  int err = 0;
  if (plan.switch_user && (::syscall(SYS_setgroups, 0, nullptr) != 0 ||
                           ::syscall(SYS_setresgid, plan.gid, plan.gid, plan.gid) != 0 ||
                           ::syscall(SYS_setresuid, plan.uid, plan.uid, plan.uid) != 0)) {
    err = errno;
  }
  // After the uid change, which clears it: the command dies with the agent.
  ::prctl(PR_SET_PDEATHSIG, SIGKILL);
  if (::getppid() != plan.parent) ::_exit(127);
  if (err == 0 && ::chdir("/") != 0) err = errno;
  if (err == 0) {
    ::execve(plan.argv[0], plan.argv.data(), plan.env);
    err = errno;
  }
  ssize_t ignored = ::write(plan.err_w, &err, sizeof(err));
  (void)ignored;
  ::_exit(127);
}

int Reap(pid_t pid) {
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  return status;
}

// Without a pidfd (old kernels): has the child exited? Leaves it unreaped.
bool Exited(pid_t pid) {
  siginfo_t info{};
  return ::waitid(P_PID, static_cast<id_t>(pid), &info, WEXITED | WNOHANG | WNOWAIT) == 0 &&
         info.si_pid == pid;
}

// The kept part of a command's output: its head, or its tail (never more than
// twice the bound in memory).
class OutputKeeper {
 public:
  explicit OutputKeeper(const ExecOptions& options)
      : tail_(options.keep == ExecOptions::Keep::kTail), bound_(options.keep_bytes) {}

  void Append(const char* data, size_t n) {
    total_ += n;
    if (!tail_) {
      kept_.append(data, std::min(n, bound_ - std::min(kept_.size(), bound_)));
      return;
    }
    if (n >= bound_) {
      kept_.assign(data + n - bound_, bound_);
      return;
    }
    kept_.append(data, n);
    if (kept_.size() > 2 * bound_) kept_.erase(0, kept_.size() - bound_);
  }

  std::string Take() {
    if (tail_ && kept_.size() > bound_) kept_.erase(0, kept_.size() - bound_);
    return std::move(kept_);
  }
  size_t total() const { return total_; }

 private:
  const bool tail_;
  const size_t bound_;
  std::string kept_;
  size_t total_ = 0;
};

// The child's stdin (/dev/null), its output pipe and its exec-error pipe.
struct Pipes {
  UniqueFd dev_null, out_r, out_w, err_r, err_w;

  absl::Status Open() {
    dev_null.reset(::open("/dev/null", O_RDONLY | O_CLOEXEC));
    if (!dev_null.is_valid()) {
      return absl::InternalError(fmt::format("open /dev/null: {}", std::strerror(errno)));
    }
    int fds[2];
    if (::pipe2(fds, O_CLOEXEC) != 0) {
      return absl::InternalError(fmt::format("pipe: {}", std::strerror(errno)));
    }
    out_r.reset(fds[0]);
    out_w.reset(fds[1]);
    if (::pipe2(fds, O_CLOEXEC) != 0) {
      return absl::InternalError(fmt::format("pipe: {}", std::strerror(errno)));
    }
    err_r.reset(fds[0]);
    err_w.reset(fds[1]);
    return absl::OkStatus();
  }
};

// Everything the child needs; `argv` must outlive the plan.
ChildPlan PlanFor(std::vector<std::string>& argv, const ExecOptions& options, const Pipes& pipes) {
  // Nothing of ours leaks into the command's environment.
  static char kPath[] = "PATH=/usr/sbin:/usr/bin:/sbin:/bin";
  static char kHome[] = "HOME=/";
  static char* kEnv[] = {kPath, kHome, nullptr};
  ChildPlan plan;
  for (std::string& arg : argv) plan.argv.push_back(arg.data());
  plan.argv.push_back(nullptr);
  plan.env = kEnv;
  plan.switch_user = options.run_as.has_value();
  if (plan.switch_user) {
    plan.uid = options.run_as->uid;
    plan.gid = options.run_as->gid;
  }
  plan.dev_null = pipes.dev_null.get();
  plan.out_w = pipes.out_w.get();
  plan.err_w = pipes.err_w.get();
  plan.parent = ::getpid();
  return plan;
}

// Whether exec failed in the child (its errno in *exec_errno).
bool ExecFailed(int err_r, int* exec_errno) {
  ssize_t n;
  do {
    n = ::read(err_r, exec_errno, sizeof(*exec_errno));
  } while (n < 0 && errno == EINTR);
  return n == static_cast<ssize_t>(sizeof(*exec_errno));
}

// Reads one chunk of output; closes `out_r` at its end. False when nothing
// was there (EAGAIN) or the pipe ended.
bool ReadOutput(UniqueFd* out_r, OutputKeeper* keeper) {
  char buf[4096];
  const ssize_t got = ::read(out_r->get(), buf, sizeof(buf));
  if (got > 0) {
    keeper->Append(buf, static_cast<size_t>(got));
    return true;
  }
  if (got == 0 || (errno != EINTR && errno != EAGAIN)) out_r->reset();
  return got < 0 && errno == EINTR;
}

// Waits for `pid` to exit, reading its output; kills its process group at the
// deadline or a cancel. Fills everything of `out` but the duration.
void Supervise(pid_t pid, UniqueFd out_r, Clock::time_point deadline, const ExecOptions& options,
               ExecOutcome* out) {
  // glibc 2.36 has no pidfd_open() wrapper; -1 (old kernel) falls back to waitid.
  UniqueFd pidfd(static_cast<int>(::syscall(SYS_pidfd_open, pid, 0)));
  ::fcntl(out_r.get(), F_SETFL, O_NONBLOCK);  // the drain below never blocks
  OutputKeeper keeper(options);
  bool exited = false;
  while (!exited) {
    pollfd fds[2] = {{pidfd.get(), POLLIN, 0}, {out_r.get(), POLLIN, 0}};
    const nfds_t nfds = out_r.is_valid() ? 2 : 1;
    int timeout_ms = PollTimeoutMs(deadline);
    if (options.cancelled) timeout_ms = std::min(timeout_ms, kCancelPollMs);
    if (!pidfd.is_valid()) timeout_ms = std::min(timeout_ms, 1);  // no pidfd: poll waitpid
    const int rc = ::poll(fds, nfds, timeout_ms);
    if (rc < 0 && errno == EINTR) continue;
    if (nfds == 2 && (fds[1].revents & (POLLIN | POLLHUP)) != 0) ReadOutput(&out_r, &keeper);
    if (pidfd.is_valid() ? (fds[0].revents & POLLIN) != 0 : Exited(pid)) exited = true;
    if (exited) break;
    out->timed_out = Clock::now() >= deadline;
    out->cancelled = !out->timed_out && options.cancelled && options.cancelled();
    if (out->timed_out || out->cancelled) {
      ::kill(-pid, SIGKILL);
      ::kill(pid, SIGKILL);
      break;
    }
  }
  const int status = Reap(pid);
  // A group member that outlived the leader still holds the pipe: kill the group.
  ::kill(-pid, SIGKILL);
  // What it wrote last, still in the pipe (at most the pipe's capacity).
  while (out_r.is_valid() && ReadOutput(&out_r, &keeper)) {
  }
  if (WIFEXITED(status)) out->exit_code = WEXITSTATUS(status);
  if (WIFSIGNALED(status)) out->signal = WTERMSIG(status);
  out->output = keeper.Take();
  out->output_bytes = keeper.total();
}

}  // namespace

absl::Status ValidateArgv(const std::string& field, const std::vector<std::string>& argv) {
  if (argv.empty()) {
    return absl::InvalidArgumentError(
        fmt::format("{}: must not be empty (a command and its arguments; no shell)", field));
  }
  if (argv[0].empty()) {
    return absl::InvalidArgumentError(fmt::format("{}[0]: the command must not be empty", field));
  }
  if (argv[0][0] != '/') {
    return absl::InvalidArgumentError(fmt::format(
        "{}[0]: must be an absolute path (no PATH lookup), got \"{}\"", field, argv[0]));
  }
  for (size_t i = 0; i < argv.size(); ++i) {
    if (argv[i].find('\0') != std::string::npos) {
      return absl::InvalidArgumentError(fmt::format("{}[{}]: must not contain NUL bytes", field, i));
    }
  }
  return absl::OkStatus();
}

std::string ExecOutcome::Describe() const {
  const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(duration).count();
  if (timed_out) {
    return fmt::format("timed out after {} ms; killed pid {}",
                       std::chrono::duration_cast<std::chrono::milliseconds>(timeout).count(), pid);
  }
  if (cancelled) return fmt::format("cancelled after {} ms; killed pid {}", ms, pid);
  if (signal != 0) return fmt::format("killed by signal {}", signal);
  return fmt::format("exit status {}", exit_code);
}

absl::StatusOr<ExecOutcome> RunCommand(std::vector<std::string> argv, const ExecOptions& options) {
  const Clock::time_point start = Clock::now();
  Pipes pipes;
  RETURN_IF_ERROR(pipes.Open());
  ChildPlan plan = PlanFor(argv, options, pipes);
  const pid_t pid = ::fork();
  if (pid < 0) return absl::InternalError(fmt::format("fork: {}", std::strerror(errno)));
  if (pid == 0) ExecChild(plan);
  ::setpgid(pid, pid);  // also from here, so kill(-pid) works at once
  pipes.out_w.reset();
  pipes.err_w.reset();
  // The error pipe closes on a successful exec, or carries exec's errno.
  int exec_errno = 0;
  if (ExecFailed(pipes.err_r.get(), &exec_errno)) {
    Reap(pid);
    return absl::FailedPreconditionError(
        fmt::format("exec {}: {}", argv[0], std::strerror(exec_errno)));
  }
  ExecOutcome out;
  out.pid = pid;
  out.timeout = options.timeout;
  Supervise(pid, std::move(pipes.out_r),
            start + std::chrono::duration_cast<Clock::duration>(options.timeout), options, &out);
  out.duration = Clock::now() - start;
  return out;
}

}  // namespace faultline::probes
