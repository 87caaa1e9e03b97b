#include "harness/subprocess.h"

#include <fcntl.h>
#include <fmt/format.h>
#include <linux/close_range.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <dirent.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <thread>

#include "absl/status/status.h"
#include "common/endpoint.h"

namespace faultline::itest {
namespace {

std::string ReadAllFromFd(int fd) {
  std::string out;
  char buf[8192];
  off_t offset = 0;
  for (;;) {
    ssize_t n = pread(fd, buf, sizeof(buf), offset);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    out.append(buf, static_cast<size_t>(n));
    offset += n;
  }
  return out;
}

// Opens where one output stream goes; returns the fd (and the memfd when captured).
absl::StatusOr<int> OpenOutput(const std::string& file, const char* label, int* memfd) {
  if (file.empty()) {
    int fd = memfd_create(label, MFD_CLOEXEC);
    if (fd < 0) {
      return absl::InternalError(fmt::format("memfd_create: {}", std::strerror(errno)));
    }
    *memfd = fd;
    return fd;
  }
  int fd = open(file.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) {
    return absl::InternalError(fmt::format("open {}: {}", file, std::strerror(errno)));
  }
  return fd;
}

// The parent pid in /proc/PID/stat (the field after the ")" that ends comm
// and the state), or 0.
pid_t ParentOf(pid_t pid) {
  auto text = ReadFileToString(fmt::format("/proc/{}/stat", pid));
  if (!text.ok()) return 0;
  const size_t close = text->rfind(')');
  if (close == std::string::npos || close + 4 >= text->size()) return 0;
  return static_cast<pid_t>(std::atoi(text->c_str() + close + 4));
}

}  // namespace

std::vector<pid_t> ChildPids(pid_t parent) {
  std::vector<pid_t> out;
  DIR* dir = opendir("/proc");
  if (dir == nullptr) return out;
  while (dirent* e = readdir(dir)) {
    char* end;
    const long pid = std::strtol(e->d_name, &end, 10);
    if (*end != '\0' || pid <= 0) continue;
    if (ParentOf(static_cast<pid_t>(pid)) == parent) out.push_back(static_cast<pid_t>(pid));
  }
  closedir(dir);
  return out;
}

absl::StatusOr<std::unique_ptr<Subprocess>> Subprocess::Start(
    const std::vector<std::string>& argv, const SubprocessOptions& options) {
  if (argv.empty()) return absl::InvalidArgumentError("argv: empty");
  std::unique_ptr<Subprocess> sp(new Subprocess());
  sp->argv_ = argv;
  sp->options_ = options;

  auto out_fd = OpenOutput(options.stdout_file, "stdout", &sp->stdout_memfd_);
  if (!out_fd.ok()) return out_fd.status();
  auto err_fd = OpenOutput(options.stderr_file, "stderr", &sp->stderr_memfd_);
  if (!err_fd.ok()) {
    if (sp->stdout_memfd_ < 0) close(*out_fd);
    return err_fd.status();
  }
  // Everything the child needs is prepared before fork (the test process has
  // gRPC threads; the child only makes async-signal-safe calls).
  std::vector<char*> cargv;
  for (const auto& a : sp->argv_) cargv.push_back(const_cast<char*>(a.c_str()));
  cargv.push_back(nullptr);
  int null_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
  int err_pipe[2];
  if (pipe2(err_pipe, O_CLOEXEC) != 0) {
    return absl::InternalError(fmt::format("pipe2: {}", std::strerror(errno)));
  }
  const pid_t parent = getpid();
  pid_t pid = fork();
  if (pid < 0) {
    int e = errno;
    close(err_pipe[0]);
    close(err_pipe[1]);
    return absl::InternalError(fmt::format("fork: {}", std::strerror(e)));
  }
  if (pid == 0) {
    setpgid(0, 0);
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (getppid() != parent) _exit(127);
    sigset_t empty;
    sigemptyset(&empty);
    sigprocmask(SIG_SETMASK, &empty, nullptr);
    for (int sig : {SIGPIPE, SIGINT, SIGTERM, SIGCHLD, SIGHUP}) signal(sig, SIG_DFL);
    if (null_fd >= 0) dup2(null_fd, 0);
    dup2(*out_fd, 1);
    dup2(*err_fd, 2);
    syscall(SYS_close_range, 3U, ~0U, CLOSE_RANGE_CLOEXEC);
    execvp(cargv[0], cargv.data());
    int e = errno;
    ssize_t ignored = write(err_pipe[1], &e, sizeof(e));
    (void)ignored;
    _exit(127);
  }
  close(err_pipe[1]);
  if (null_fd >= 0) close(null_fd);
  if (sp->stdout_memfd_ < 0) close(*out_fd);
  if (sp->stderr_memfd_ < 0) close(*err_fd);
  sp->pid_ = pid;
  int child_errno = 0;
  ssize_t n;
  do {
    n = read(err_pipe[0], &child_errno, sizeof(child_errno));
  } while (n < 0 && errno == EINTR);
  close(err_pipe[0]);
  if (n == sizeof(child_errno)) {
    sp->Wait(std::chrono::seconds(5));
    return absl::FailedPreconditionError(
        fmt::format("exec {}: {}", argv[0], std::strerror(child_errno)));
  }
  return sp;
}

Subprocess::~Subprocess() {
  Stop();
  if (stdout_memfd_ >= 0) close(stdout_memfd_);
  if (stderr_memfd_ >= 0) close(stderr_memfd_);
}

void Subprocess::Stop() {
  if (pid_ <= 0 || reaped_) return;
  // The child's own children first (nsenter's: the real process in a
  // SimHost), so that the child reaps them. Killed together, a grandchild is
  // orphaned and re-parented to this machine's init, which may take seconds
  // to reap it, and the SimHost's PID namespace cannot end before that.
  const std::vector<pid_t> children = ChildPids(pid_);
  if (!children.empty()) {
    for (pid_t c : children) kill(c, SIGKILL);
    kill(pid_, SIGCONT);  // a stopped nsenter (see sim_host.h) reaps only once continued
    Wait(std::chrono::milliseconds(1000));
  }
  if (reaped_) return;
  KillGroup(SIGKILL);
  Kill(SIGKILL);
  int status;
  pid_t r;
  while ((r = waitpid(pid_, &status, 0)) < 0 && errno == EINTR) {
  }
  if (r == pid_) {
    reaped_ = true;
    wait_status_ = status;
  }
}

std::string Subprocess::CommandLine() const {
  std::string s;
  for (const auto& a : argv_) {
    if (!s.empty()) s += ' ';
    s += a;
  }
  return s;
}

bool Subprocess::Running() {
  if (reaped_) return false;
  int status;
  pid_t r = waitpid(pid_, &status, WNOHANG);
  if (r == pid_) {
    reaped_ = true;
    wait_status_ = status;
    return false;
  }
  return true;
}

bool Subprocess::Wait(std::chrono::milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (Running()) {
    if (std::chrono::steady_clock::now() >= deadline) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  return true;
}

int Subprocess::exit_code() const {
  if (!reaped_) return -1;
  if (WIFEXITED(wait_status_)) return WEXITSTATUS(wait_status_);
  if (WIFSIGNALED(wait_status_)) return 128 + WTERMSIG(wait_status_);
  return -1;
}

bool Subprocess::signaled() const { return reaped_ && WIFSIGNALED(wait_status_); }

int Subprocess::term_signal() const { return signaled() ? WTERMSIG(wait_status_) : 0; }

void Subprocess::Kill(int sig) {
  if (pid_ > 0 && !reaped_) kill(pid_, sig);
}

void Subprocess::KillGroup(int sig) {
  if (pid_ > 0 && !reaped_) kill(-pid_, sig);
}

std::string Subprocess::Stdout() const {
  if (stdout_memfd_ >= 0) return ReadAllFromFd(stdout_memfd_);
  return ReadFileToString(options_.stdout_file).value_or("");
}

std::string Subprocess::Stderr() const {
  if (stderr_memfd_ >= 0) return ReadAllFromFd(stderr_memfd_);
  return ReadFileToString(options_.stderr_file).value_or("");
}

std::string CommandResult::Describe() const {
  if (!start_error.empty()) return fmt::format("`{}` did not start: {}", command, start_error);
  return fmt::format("`{}` {} {}\nstdout:\n{}\nstderr:\n{}", command,
                     timed_out ? "timed out, killed," : "exited", exit_code, out, err);
}

CommandResult RunCommand(const std::vector<std::string>& argv,
                         std::chrono::milliseconds timeout) {
  CommandResult result;
  for (const auto& a : argv) result.command += (result.command.empty() ? "" : " ") + a;
  auto sp = Subprocess::Start(argv);
  if (!sp.ok()) {
    result.start_error = std::string(sp.status().message());
    return result;
  }
  if (!(*sp)->Wait(timeout)) {
    result.timed_out = true;
    (*sp)->KillGroup(SIGKILL);
    (*sp)->Kill(SIGKILL);
    (*sp)->Wait(std::chrono::seconds(10));
  }
  result.exit_code = (*sp)->exit_code();
  result.out = (*sp)->Stdout();
  result.err = (*sp)->Stderr();
  return result;
}

absl::Status RunChecked(const std::vector<std::string>& argv,
                        std::chrono::milliseconds timeout) {
  CommandResult r = RunCommand(argv, timeout);
  if (r.ok()) return absl::OkStatus();
  return absl::InternalError(r.Describe());
}

double TimingSlack() {
  const char* slack = std::getenv("FAULTLINE_TIMING_SLACK");
  return slack != nullptr ? std::max(1.0, std::atof(slack)) : 1.0;
}

}  // namespace faultline::itest
