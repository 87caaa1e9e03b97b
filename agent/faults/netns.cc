#include "agent/faults/netns.h"

#include <fcntl.h>
#include <fmt/format.h>
#include <sched.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <regex>
#include <thread>

#include "common/unique_fd.h"

namespace faultline::agent {

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
  return path;
}

absl::Status RunInNetns(const std::string& netns_path, const std::function<absl::Status()>& fn) {
  if (netns_path.empty()) return fn();
  absl::Status result;
  std::thread worker([&] {
    UniqueFd fd(::open(netns_path.c_str(), O_RDONLY | O_CLOEXEC));
    if (!fd) {
      result = absl::FailedPreconditionError(
          fmt::format("netns: cannot open {}: {}", netns_path, std::strerror(errno)));
      return;
    }
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
