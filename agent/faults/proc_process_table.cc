#include "agent/faults/proc_process_table.h"

#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <memory>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_split.h"
#include "absl/strings/string_view.h"
#include "common/unique_fd.h"
#include "fmt/format.h"
#include "spdlog/spdlog.h"

namespace faultline::agent {
namespace {

constexpr uint64_t kPfKthread = 0x00200000;  // PF_KTHREAD in include/linux/sched.h

// Reads a whole /proc file. ENOENT and ESRCH (the process exited) become
// NOT_FOUND so callers can skip vanished processes.
absl::StatusOr<std::string> ReadProcFile(const std::string& path) {
  UniqueFd fd(open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd) {
    int e = errno;
    if (e == ENOENT || e == ESRCH) return absl::NotFoundError(fmt::format("{}: gone", path));
    return absl::InternalError(fmt::format("{}: {}", path, std::strerror(e)));
  }
  std::string out;
  char buf[4096];
  for (;;) {
    ssize_t n = read(fd.get(), buf, sizeof buf);
    if (n < 0) {
      int e = errno;
      if (e == EINTR) continue;
      if (e == ESRCH || e == ENOENT) return absl::NotFoundError(fmt::format("{}: gone", path));
      return absl::InternalError(fmt::format("{}: {}", path, std::strerror(e)));
    }
    if (n == 0) break;
    out.append(buf, static_cast<size_t>(n));
  }
  return out;
}

}  // namespace

absl::Status ParseProcStat(const std::string& stat, ProcessInfo* info) {
  const size_t open = stat.find('(');
  const size_t close = stat.rfind(')');
  if (open == std::string::npos || close == std::string::npos || close < open) {
    return absl::InternalError("stat: no comm field");
  }
  info->comm = stat.substr(open + 1, close - open - 1);
  // Field 3 (state) is the first after ")"; field N is rest[N - 3].
  std::vector<absl::string_view> rest =
      absl::StrSplit(absl::string_view(stat).substr(close + 1), ' ', absl::SkipEmpty());
  if (rest.size() < 20) return absl::InternalError("stat: too few fields");
  if (rest[0].size() != 1) return absl::InternalError("stat: bad state field");
  info->state = rest[0][0];
  int ppid = 0;
  uint64_t flags = 0;
  uint64_t start = 0;
  if (!absl::SimpleAtoi(rest[1], &ppid) || !absl::SimpleAtoi(rest[6], &flags) ||
      !absl::SimpleAtoi(absl::StripTrailingAsciiWhitespace(rest[19]), &start)) {
    return absl::InternalError("stat: bad numeric field");
  }
  info->ppid = ppid;
  info->kernel_thread = (flags & kPfKthread) != 0;
  info->start_time = start;
  return absl::OkStatus();
}

std::string ParseProcCgroup(const std::string& text) {
  for (absl::string_view line : absl::StrSplit(text, '\n', absl::SkipEmpty())) {
    if (line.substr(0, 3) == "0::") return std::string(line.substr(3));
  }
  return "";
}

pid_t ParseProcTgid(const std::string& status) {
  for (absl::string_view line : absl::StrSplit(status, '\n', absl::SkipEmpty())) {
    if (line.substr(0, 5) != "Tgid:") continue;
    pid_t tgid = 0;
    if (absl::SimpleAtoi(absl::StripAsciiWhitespace(line.substr(5)), &tgid)) return tgid;
  }
  return 0;
}

ProcProcessTable::ProcProcessTable(std::string proc_root) : proc_root_(std::move(proc_root)) {}

absl::StatusOr<ProcessInfo> ProcProcessTable::Get(pid_t pid) const {
  if (pid <= 0) return absl::NotFoundError(fmt::format("pid {}: no such process", pid));
  const std::string dir = fmt::format("{}/{}", proc_root_, pid);
  auto gone = [&]() { return absl::NotFoundError(fmt::format("pid {}: no such process", pid)); };

  auto stat = ReadProcFile(dir + "/stat");
  if (absl::IsNotFound(stat.status())) return gone();
  if (!stat.ok()) return stat.status();
  // /proc/TID exists for every thread, though readdir lists only processes.
  // Signalling a thread id reaches its whole process, so a thread id is not a
  // process here (or a thread of the agent would pass as a stranger).
  auto status = ReadProcFile(dir + "/status");
  if (absl::IsNotFound(status.status())) return gone();
  if (!status.ok()) return status.status();
  if (ParseProcTgid(*status) != pid) return gone();

  ProcessInfo info;
  info.pid = pid;
  if (absl::Status s = ParseProcStat(*stat, &info); !s.ok()) {
    return absl::InternalError(fmt::format("pid {}: {}", pid, std::string(s.message())));
  }

  // comm from /proc/PID/comm is the same text as in stat; prefer the file, which
  // needs no parenthesis heuristics.
  if (auto comm = ReadProcFile(dir + "/comm"); comm.ok()) {
    std::string c = std::move(*comm);
    if (!c.empty() && c.back() == '\n') c.pop_back();
    info.comm = std::move(c);
  } else if (absl::IsNotFound(comm.status())) {
    return gone();
  }

  auto cmdline = ReadProcFile(dir + "/cmdline");
  if (absl::IsNotFound(cmdline.status())) return gone();
  if (cmdline.ok()) {
    std::string c = std::move(*cmdline);
    while (!c.empty() && c.back() == '\0') c.pop_back();
    for (char& ch : c) {
      if (ch == '\0') ch = ' ';
    }
    info.cmdline = std::move(c);
  }

  auto cgroup = ReadProcFile(dir + "/cgroup");
  if (absl::IsNotFound(cgroup.status())) return gone();
  if (cgroup.ok()) info.cgroup = ParseProcCgroup(*cgroup);

  // The pid may have been reused between the reads above: the start time must
  // not have changed.
  auto again = ReadProcFile(dir + "/stat");
  if (!again.ok()) return gone();
  ProcessInfo check;
  if (!ParseProcStat(*again, &check).ok() || check.start_time != info.start_time) return gone();
  info.state = check.state;
  return info;
}

absl::StatusOr<std::vector<ProcessInfo>> ProcProcessTable::List() const {
  std::unique_ptr<DIR, int (*)(DIR*)> dir(opendir(proc_root_.c_str()), closedir);
  if (!dir) {
    return absl::FailedPreconditionError(
        fmt::format("cannot read {}: {}", proc_root_, std::strerror(errno)));
  }
  std::vector<ProcessInfo> out;
  while (dirent* ent = readdir(dir.get())) {
    pid_t pid = 0;
    if (!absl::SimpleAtoi(ent->d_name, &pid) || pid <= 0) continue;
    auto info = Get(pid);
    if (info.ok()) {
      out.push_back(std::move(*info));
    } else if (!absl::IsNotFound(info.status())) {
      spdlog::debug("process table: skipping pid {}: {}", pid, std::string(info.status().message()));
    }
  }
  return out;
}

absl::Status ProcProcessTable::Signal(pid_t pid, int signo) const {
  if (pid <= 0) return absl::InvalidArgumentError(fmt::format("pid {}: not a process", pid));
  if (kill(pid, signo) == 0) return absl::OkStatus();
  int e = errno;
  if (e == ESRCH) return absl::NotFoundError(fmt::format("pid {}: no such process", pid));
  if (e == EPERM) {
    return absl::PermissionDeniedError(fmt::format("pid {}: {}", pid, std::strerror(e)));
  }
  return absl::InternalError(fmt::format("kill({}, {}): {}", pid, signo, std::strerror(e)));
}

}  // namespace faultline::agent
