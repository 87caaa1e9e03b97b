// Who is calling an RPC and whether they may: the caller's identity from its
// certificate (auth/identity.h), from the unix socket's peer credentials
// (auth/unix_listener.h), or "insecure" on an explicitly plain TCP listener;
// and the role check every handler makes first.
#ifndef FAULTLINE_AUTH_CALLER_H_
#define FAULTLINE_AUTH_CALLER_H_

#include <sys/types.h>

#include <map>
#include <optional>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "auth/identity.h"

namespace grpc {
class ServerContext;
}

namespace faultline::auth {

// What the transport says about one call's peer.
struct PeerInfo {
  std::string peer;      // grpc's peer string: "ipv4:10.0.0.1:5555", "fd:12" (unix listener)
  std::string pem_cert;  // the client certificate gRPC verified (x509_pem_cert), if any
};
// The PeerInfo of a call (ServerContext::peer() and its auth context).
PeerInfo PeerInfoOf(const grpc::ServerContext& context);

// The peer credentials of one unix-socket connection (SO_PEERCRED) and the
// daemon's verdict on them.
struct UnixPeer {
  pid_t pid = 0;
  uid_t uid = 0;
  gid_t gid = 0;
  bool trusted = false;
  std::string reason;  // why (not) trusted, for logs and errors
};

// The peer credentials of the daemon's live unix-socket connections, keyed by
// the connection's fd (gRPC names such a peer "fd:N"). Owned by the daemon,
// written by its UnixListeners, read by its Authorizer. Thread-safe.
class UnixPeerTable {
 public:
  void Set(int fd, const UnixPeer& peer);
  // The entry for a gRPC peer string "fd:N"; nullopt for any other peer.
  std::optional<UnixPeer> Find(const std::string& grpc_peer) const;

 private:
  mutable absl::Mutex mu_;
  std::map<int, UnixPeer> peers_ ABSL_GUARDED_BY(mu_);
};

enum class CallerKind { kCertificate, kUnixSocket, kInsecure };

// One identified caller. A value type.
struct Caller {
  CallerKind kind = CallerKind::kInsecure;
  Identity identity;        // kCertificate
  UnixPeer unix_peer;       // kUnixSocket
  std::vector<Role> roles;  // what it may act as
  std::string peer;         // grpc's peer string

  // For logs and the audit log: "spiffe://faultline/operator/alice",
  // "unix uid=0 pid=123", "insecure ipv4:127.0.0.1:4242".
  std::string Who() const;
  // A stable name for whoever holds this identity (Who() without the pid):
  // the SPIFFE ID, "unix:uid=N" or "insecure".
  std::string Principal() const;
  bool HasAnyRole(const std::vector<Role>& roles) const;
};

struct AuthorizerOptions {
  // --insecure: callers on plain TCP (no certificate) pass every role check.
  bool insecure = false;
  // The daemon's unix-socket peers; nullptr = the daemon has no unix listener.
  const UnixPeerTable* unix_peers = nullptr;
  // The roles a trusted unix-socket caller (root, the daemon's own user, or a
  // member of --socket-group) holds.
  std::vector<Role> local_roles = {Role::kOperator};
};

// A daemon's access rule: identifies each call's caller and checks its role.
// Owned by the daemon's main (or a test), shared by its services. Thread-safe:
// the options are immutable; a mutex guards the cache of parsed certificates
// (a connection's certificate is parsed once, not on every call).
class Authorizer {
 public:
  explicit Authorizer(AuthorizerOptions options) : options_(std::move(options)) {}

  // Who the caller is. UNAUTHENTICATED when the call carries no identity (plain
  // TCP without --insecure), PERMISSION_DENIED for a certificate without a
  // faultline identity or an untrusted unix-socket peer.
  absl::StatusOr<Caller> Identify(const PeerInfo& peer) const;
  // Identify, then the caller must hold one of `roles`; PERMISSION_DENIED names
  // the method, the caller and the roles it needs. Refusals are logged here.
  absl::StatusOr<Caller> Authorize(const PeerInfo& peer, const std::string& method,
                                   const std::vector<Role>& roles) const;
  absl::StatusOr<Caller> Authorize(const grpc::ServerContext* context, const std::string& method,
                                   const std::vector<Role>& roles) const;

 private:
  static constexpr size_t kMaxCachedCertificates = 1024;
  // The identity in a PEM certificate, parsed once per distinct certificate.
  absl::StatusOr<Identity> CertificateIdentity(const std::string& pem) const;

  const AuthorizerOptions options_;
  mutable absl::Mutex mu_;
  mutable std::map<std::string, Identity> parsed_ ABSL_GUARDED_BY(mu_);  // by PEM text
};

}  // namespace faultline::auth

#endif  // FAULTLINE_AUTH_CALLER_H_
