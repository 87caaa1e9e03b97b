#include "agent/faults/netns.h"

#include <fcntl.h>
#include <fmt/format.h>
#include <linux/magic.h>
#include <linux/nsfs.h>
#include <sched.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <regex>
#include <thread>

#include "common/status_macros.h"
#include "common/unique_fd.h"

namespace faultline::agent {

absl::StatusOr<UniqueFd> OpenNetns(const std::string& path, const std::string& field) {
  // O_PATH first: it opens nothing (a FIFO does not wait for a writer, a
  // device's open has no side effects), yet it follows /proc/PID/ns/net's
  // magic link and sees /run/netns/NAME's nsfs bind mount.
  UniqueFd probe(::open(path.c_str(), O_PATH | O_CLOEXEC));
  if (!probe) {
    return absl::InvalidArgumentError(
        fmt::format("{}: cannot open {}: {}", field, path, std::strerror(errno)));
  }
  struct stat st {};
  struct statfs fs {};
  if (::fstat(probe.get(), &st) != 0 || !S_ISREG(st.st_mode) ||
      ::fstatfs(probe.get(), &fs) != 0 || fs.f_type != NSFS_MAGIC) {
    return absl::InvalidArgumentError(
        fmt::format("{}: {} is not a network namespace (not an nsfs file)", field, path));
  }
  // Reopen the very inode checked above, readable (setns needs that).
  const std::string self = fmt::format("/proc/self/fd/{}", probe.get());
  UniqueFd fd(::open(self.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK));
  if (!fd) {
    return absl::FailedPreconditionError(
        fmt::format("{}: cannot open {}: {}", field, path, std::strerror(errno)));
  }
  if (::ioctl(fd.get(), NS_GET_NSTYPE) != CLONE_NEWNET) {
    return absl::InvalidArgumentError(
        fmt::format("{}: {} is a namespace, but not a network namespace", field, path));
  }
  return fd;
}

absl::StatusOr<std::string> ResolveNetnsPath(const v1::FaultSpec& spec) {
  if (!spec.netns().empty() && spec.netns_pid() != 0) {
    return absl::InvalidArgumentError("netns: give either netns or netns_pid, not both");
  }
  std::string path;
  std::string field;
  if (spec.netns_pid() < 0) {
    return absl::InvalidArgumentError(
        fmt::format("netns_pid: must be a positive pid, got {}", spec.netns_pid()));
  }
  if (spec.netns_pid() > 0) {
    field = "netns_pid";
    path = fmt::format("/proc/{}/ns/net", spec.netns_pid());
  } else if (!spec.netns().empty()) {
    field = "netns";
    if (spec.netns()[0] == '/') {
      path = spec.netns();
    } else {
      static const std::regex kName("[A-Za-z0-9][A-Za-z0-9_.-]{0,63}");
      if (!std::regex_match(spec.netns(), kName)) {
        return absl::InvalidArgumentError(fmt::format(
            "netns: \"{}\" is not a namespace name (letters, digits, _ . -) or an absolute path",
            spec.netns()));
      }
      path = "/run/netns/" + spec.netns();
    }
  } else {
    return std::string();
  }
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) {
    return absl::InvalidArgumentError(
        fmt::format("{}: {} does not exist: {}", field, path, std::strerror(errno)));
  }
  RETURN_IF_ERROR(OpenNetns(path, field).status());
  return path;
}

absl::Status RunInNetns(const std::string& netns_path, const std::function<absl::Status()>& fn) {
  if (netns_path.empty()) return fn();
  absl::Status result;
  std::thread worker([&] {
    absl::StatusOr<UniqueFd> opened = OpenNetns(netns_path, "netns");
    if (!opened.ok()) {
      result = opened.status();
      return;
    }
    UniqueFd fd = *std::move(opened);
    // The thread is never reused: it ends right after fn, so its namespace
    // switch cannot leak into other work.
    if (::setns(fd.get(), CLONE_NEWNET) != 0) {
      result = absl::FailedPreconditionError(
          fmt::format("netns: cannot enter {}: {}", netns_path, std::strerror(errno)));
      return;
    }
    fd.reset();
    result = fn();
  });
  worker.join();
  return result;
}

}  // namespace faultline::agent
