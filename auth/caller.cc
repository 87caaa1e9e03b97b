#include "auth/caller.h"

#include <fmt/format.h>
#include <grpc/grpc_security_constants.h>
#include <grpcpp/security/auth_context.h>
#include <grpcpp/server_context.h>
#include <spdlog/spdlog.h>

#include <algorithm>

namespace faultline::auth {
namespace {

std::string RoleList(const std::vector<Role>& roles) {
  std::string out;
  for (size_t i = 0; i < roles.size(); ++i) {
    if (i > 0) out += i + 1 == roles.size() ? " or " : ", ";
    out += RoleName(roles[i]);
  }
  return out;
}

}  // namespace

PeerInfo PeerInfoOf(const grpc::ServerContext& context) {
  PeerInfo info;
  info.peer = context.peer();
  std::shared_ptr<const grpc::AuthContext> auth = context.auth_context();
  if (auth != nullptr && auth->IsPeerAuthenticated()) {
    for (const auto& value : auth->FindPropertyValues(GRPC_X509_PEM_CERT_PROPERTY_NAME)) {
      info.pem_cert.assign(value.data(), value.size());
      break;
    }
  }
  return info;
}

void UnixPeerTable::Set(int fd, const UnixPeer& peer) {
  absl::MutexLock lock(&mu_);
  peers_[fd] = peer;
}

std::optional<UnixPeer> UnixPeerTable::Find(const std::string& grpc_peer) const {
  if (grpc_peer.rfind("fd:", 0) != 0) return std::nullopt;
  char* end = nullptr;
  const long fd = std::strtol(grpc_peer.c_str() + 3, &end, 10);
  if (end == grpc_peer.c_str() + 3 || *end != '\0') return std::nullopt;
  absl::MutexLock lock(&mu_);
  auto it = peers_.find(static_cast<int>(fd));
  if (it == peers_.end()) return std::nullopt;
  return it->second;
}

std::string Caller::Who() const {
  switch (kind) {
    case CallerKind::kCertificate: return identity.Uri();
    case CallerKind::kUnixSocket:
      return fmt::format("unix uid={} pid={}", unix_peer.uid, unix_peer.pid);
    case CallerKind::kInsecure: return "insecure " + peer;
  }
  return "?";
}

std::string Caller::Principal() const {
  switch (kind) {
    case CallerKind::kCertificate: return identity.Uri();
    case CallerKind::kUnixSocket: return fmt::format("unix:uid={}", unix_peer.uid);
    case CallerKind::kInsecure: return "insecure";
  }
  return "?";
}

bool Caller::HasAnyRole(const std::vector<Role>& wanted) const {
  for (Role r : wanted) {
    if (std::find(roles.begin(), roles.end(), r) != roles.end()) return true;
  }
  return false;
}

absl::StatusOr<Identity> Authorizer::CertificateIdentity(const std::string& pem) const {
  {
    absl::MutexLock lock(&mu_);
    auto it = parsed_.find(pem);
    if (it != parsed_.end()) return it->second;
  }
  absl::StatusOr<Identity> identity = IdentityFromCertificatePem(pem);
  if (identity.ok()) {
    absl::MutexLock lock(&mu_);
    if (parsed_.size() >= kMaxCachedCertificates) parsed_.clear();
    parsed_[pem] = *identity;
  }
  return identity;
}

absl::StatusOr<Caller> Authorizer::Identify(const PeerInfo& peer) const {
  Caller caller;
  caller.peer = peer.peer;
  if (!peer.pem_cert.empty()) {
    auto identity = CertificateIdentity(peer.pem_cert);
    if (!identity.ok()) {
      return absl::PermissionDeniedError(
          fmt::format("caller {}: {}", peer.peer, std::string(identity.status().message())));
    }
    caller.kind = CallerKind::kCertificate;
    caller.identity = *identity;
    caller.roles = {identity->role};
    return caller;
  }
  if (options_.unix_peers != nullptr) {
    if (std::optional<UnixPeer> unix_peer = options_.unix_peers->Find(peer.peer)) {
      caller.kind = CallerKind::kUnixSocket;
      caller.unix_peer = *unix_peer;
      if (!unix_peer->trusted) {
        return absl::PermissionDeniedError(fmt::format(
            "unix socket caller uid {} (pid {}): {}", unix_peer->uid, unix_peer->pid,
            unix_peer->reason));
      }
      caller.roles = options_.local_roles;
      return caller;
    }
  }
  if (options_.insecure && peer.peer.rfind("fd:", 0) != 0 && peer.peer.rfind("unix", 0) != 0) {
    caller.kind = CallerKind::kInsecure;
    caller.roles = {Role::kAgent, Role::kController, Role::kOperator, Role::kViewer};
    return caller;
  }
  return absl::UnauthenticatedError(fmt::format(
      "caller {}: no client certificate (this daemon requires mutual TLS)", peer.peer));
}

absl::StatusOr<Caller> Authorizer::Authorize(const PeerInfo& peer, const std::string& method,
                                             const std::vector<Role>& roles) const {
  absl::StatusOr<Caller> caller = Identify(peer);
  if (!caller.ok()) {
    spdlog::warn("{} refused: {}", method, std::string(caller.status().message()));
    return absl::Status(caller.status().code(),
                        fmt::format("{}: {}", method, std::string(caller.status().message())));
  }
  if (!caller->HasAnyRole(roles)) {
    const std::string msg = fmt::format("{}: {} may not call it (role {}); it needs {}", method,
                                        caller->Who(), RoleList(caller->roles), RoleList(roles));
    spdlog::warn("refused: {}", msg);
    return absl::PermissionDeniedError(msg);
  }
  return caller;
}

absl::StatusOr<Caller> Authorizer::Authorize(const grpc::ServerContext* context,
                                             const std::string& method,
                                             const std::vector<Role>& roles) const {
  if (context == nullptr) return absl::InternalError(method + ": no server context");
  return Authorize(PeerInfoOf(*context), method, roles);
}

}  // namespace faultline::auth
