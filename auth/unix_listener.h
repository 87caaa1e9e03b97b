// A daemon's unix-socket listener: the socket is created mode 0600 (0660 with
// --socket-group, group-owned by that group) whatever the umask, every
// connection's peer credentials (SO_PEERCRED) are logged and recorded in a
// UnixPeerTable, and the connection is handed to the gRPC server.
#ifndef FAULTLINE_AUTH_UNIX_LISTENER_H_
#define FAULTLINE_AUTH_UNIX_LISTENER_H_

#include <sys/types.h>

#include <memory>
#include <optional>
#include <string>
#include <thread>

#include "absl/status/statusor.h"
#include "auth/caller.h"
#include "common/unique_fd.h"

namespace grpc {
class Server;
}

namespace faultline::auth {

// Whether a unix-socket peer may act for the daemon: uid 0, the daemon's own
// uid, or (when `group` is set) a member of that group (primary or
// supplementary). Everyone else is refused.
UnixPeer ClassifyUnixPeer(pid_t pid, uid_t uid, gid_t gid, uid_t daemon_uid,
                          std::optional<gid_t> group);

// One listening unix socket. Owned by the daemon's main; Start() runs an
// accept thread until Stop() or destruction (which also removes the socket
// file). Not thread-safe itself (call Start/Stop from one thread).
class UnixListener {
 public:
  // Binds `path` (removing a stale socket; refusing any other file there) with
  // mode 0600, or 0660 and group `socket_group` when that is set. `peers`
  // must outlive the listener. Call before the daemon starts other threads:
  // the umask is tightened around bind() so the socket never exists with a
  // looser mode.
  static absl::StatusOr<std::unique_ptr<UnixListener>> Create(const std::string& path,
                                                              const std::string& socket_group,
                                                              UnixPeerTable* peers);
  ~UnixListener();
  UnixListener(const UnixListener&) = delete;
  UnixListener& operator=(const UnixListener&) = delete;

  // Accepts connections for `server` (which must outlive Stop()).
  void Start(grpc::Server* server);
  // Stops accepting (established connections stay with the server).
  void Stop();
  const std::string& path() const { return path_; }

 private:
  UnixListener(std::string path, UniqueFd fd, UniqueFd wake, std::optional<gid_t> group,
               UnixPeerTable* peers);
  void Loop(grpc::Server* server);

  const std::string path_;
  UniqueFd fd_;
  UniqueFd wake_;  // eventfd: Stop() wakes the accept loop
  const std::optional<gid_t> group_;
  UnixPeerTable* const peers_;
  std::thread thread_;
};

}  // namespace faultline::auth

#endif  // FAULTLINE_AUTH_UNIX_LISTENER_H_
