#include "auth/unix_listener.h"

#include <fcntl.h>
#include <fmt/format.h>
#include <grp.h>
#include <grpcpp/server.h>
#include <grpcpp/server_posix.h>
#include <poll.h>
#include <pwd.h>
#include <spdlog/spdlog.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <vector>

#include "common/files.h"
#include "common/status_macros.h"

namespace faultline::auth {
namespace {

absl::Status Errno(const std::string& what) {
  return absl::InternalError(fmt::format("{}: {}", what, std::strerror(errno)));
}

absl::StatusOr<gid_t> GroupId(const std::string& name) {
  std::vector<char> buf(16384);
  struct group g {};
  struct group* found = nullptr;
  if (getgrnam_r(name.c_str(), &g, buf.data(), buf.size(), &found) != 0 || found == nullptr) {
    return absl::InvalidArgumentError(fmt::format("--socket-group: no group \"{}\"", name));
  }
  return found->gr_gid;
}

bool UserInGroup(uid_t uid, gid_t group) {
  std::vector<char> buf(16384);
  struct passwd pw {};
  struct passwd* found = nullptr;
  if (getpwuid_r(uid, &pw, buf.data(), buf.size(), &found) != 0 || found == nullptr) return false;
  int n = 64;
  std::vector<gid_t> groups(static_cast<size_t>(n));
  if (getgrouplist(found->pw_name, found->pw_gid, groups.data(), &n) < 0) {
    groups.resize(static_cast<size_t>(n));
    if (getgrouplist(found->pw_name, found->pw_gid, groups.data(), &n) < 0) return false;
  }
  for (int i = 0; i < n; ++i) {
    if (groups[static_cast<size_t>(i)] == group) return true;
  }
  return false;
}

}  // namespace

UnixPeer ClassifyUnixPeer(pid_t pid, uid_t uid, gid_t gid, uid_t daemon_uid,
                          std::optional<gid_t> group) {
  UnixPeer peer;
  peer.pid = pid;
  peer.uid = uid;
  peer.gid = gid;
  if (uid == 0) {
    peer.trusted = true;
    peer.reason = "root";
  } else if (uid == daemon_uid) {
    peer.trusted = true;
    peer.reason = "the daemon's own user";
  } else if (group.has_value() && (gid == *group || UserInGroup(uid, *group))) {
    peer.trusted = true;
    peer.reason = fmt::format("a member of --socket-group (gid {})", *group);
  } else {
    peer.reason = group.has_value()
                      ? fmt::format("not root, not the daemon's user (uid {}) and not in "
                                    "--socket-group (gid {})",
                                    daemon_uid, *group)
                      : fmt::format("not root and not the daemon's user (uid {})", daemon_uid);
  }
  return peer;
}

absl::StatusOr<std::unique_ptr<UnixListener>> UnixListener::Create(const std::string& path,
                                                                   const std::string& socket_group,
                                                                   UnixPeerTable* peers) {
  std::optional<gid_t> group;
  if (!socket_group.empty()) {
    ASSIGN_OR_RETURN(group, GroupId(socket_group));
  }
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  if (path.empty() || path[0] != '/' || path.size() >= sizeof(addr.sun_path)) {
    return absl::InvalidArgumentError(fmt::format(
        "--listen: unix socket path must be absolute and shorter than {} bytes: \"{}\"",
        sizeof(addr.sun_path), path));
  }
  std::memcpy(addr.sun_path, path.data(), path.size());
  const size_t slash = path.rfind('/');
  if (slash > 0) RETURN_IF_ERROR(MakeDirs(path.substr(0, slash), 0755));
  struct stat st {};
  if (::lstat(path.c_str(), &st) == 0) {
    if (!S_ISSOCK(st.st_mode)) {
      return absl::FailedPreconditionError(
          fmt::format("--listen: {} exists and is not a socket", path));
    }
    ::unlink(path.c_str());  // a stale socket of an earlier run
  }
  UniqueFd fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0));
  if (!fd) return Errno("socket(AF_UNIX)");
  // bind() creates the file with 0777 & ~umask: keep it closed until chmod.
  const mode_t old_umask = ::umask(0177);
  const int bound = ::bind(fd.get(), reinterpret_cast<sockaddr*>(&addr), sizeof(addr));
  const int bind_errno = errno;
  ::umask(old_umask);
  if (bound != 0) {
    errno = bind_errno;
    return Errno(fmt::format("--listen: bind {}", path));
  }
  if (group.has_value() && ::chown(path.c_str(), static_cast<uid_t>(-1), *group) != 0) {
    return Errno(fmt::format("chown {}", path));
  }
  if (::chmod(path.c_str(), group.has_value() ? 0660 : 0600) != 0) {
    return Errno(fmt::format("chmod {}", path));
  }
  if (::listen(fd.get(), 128) != 0) return Errno(fmt::format("listen {}", path));
  UniqueFd wake(::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK));
  if (!wake) return Errno("eventfd");
  return std::unique_ptr<UnixListener>(
      new UnixListener(path, std::move(fd), std::move(wake), group, peers));
}

UnixListener::UnixListener(std::string path, UniqueFd fd, UniqueFd wake,
                           std::optional<gid_t> group, UnixPeerTable* peers)
    : path_(std::move(path)),
      fd_(std::move(fd)),
      wake_(std::move(wake)),
      group_(group),
      peers_(peers) {}

UnixListener::~UnixListener() {
  Stop();
  ::unlink(path_.c_str());
}

void UnixListener::Start(grpc::Server* server) {
  if (thread_.joinable()) return;
  thread_ = std::thread([this, server] { Loop(server); });
}

void UnixListener::Stop() {
  if (!thread_.joinable()) return;
  const uint64_t one = 1;
  (void)!::write(wake_.get(), &one, sizeof(one));
  thread_.join();
}

void UnixListener::Loop(grpc::Server* server) {
  const uid_t daemon_uid = ::geteuid();
  while (true) {
    pollfd fds[2] = {{fd_.get(), POLLIN, 0}, {wake_.get(), POLLIN, 0}};
    if (::poll(fds, 2, -1) < 0) {
      if (errno == EINTR) continue;
      spdlog::error("unix socket {}: poll: {}", path_, std::strerror(errno));
      return;
    }
    if (fds[1].revents != 0) return;
    if ((fds[0].revents & POLLIN) == 0) continue;
    UniqueFd conn(::accept4(fd_.get(), nullptr, nullptr, SOCK_CLOEXEC | SOCK_NONBLOCK));
    if (!conn) {
      if (errno != EAGAIN && errno != EINTR && errno != ECONNABORTED) {
        spdlog::warn("unix socket {}: accept: {}", path_, std::strerror(errno));
      }
      continue;
    }
    ucred cred{};
    socklen_t len = sizeof(cred);
    if (::getsockopt(conn.get(), SOL_SOCKET, SO_PEERCRED, &cred, &len) != 0) {
      spdlog::warn("unix socket {}: SO_PEERCRED: {}; closing", path_, std::strerror(errno));
      continue;
    }
    UnixPeer peer = ClassifyUnixPeer(cred.pid, cred.uid, cred.gid, daemon_uid, group_);
    if (peer.trusted) {
      spdlog::info("unix socket {}: connection from pid {} uid {} gid {} ({}): trusted",
                   path_, cred.pid, cred.uid, cred.gid, peer.reason);
    } else {
      spdlog::warn("unix socket {}: connection from pid {} uid {} gid {}: {}; its calls are "
                   "refused",
                   path_, cred.pid, cred.uid, cred.gid, peer.reason);
    }
    // Recorded before gRPC sees the fd, so a call on it always finds its peer.
    peers_->Set(conn.get(), peer);
    grpc::AddInsecureChannelFromFd(server, conn.release());
  }
}

}  // namespace faultline::auth
