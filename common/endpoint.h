// Listen and dial addresses: "unix:/PATH" or "HOST:PORT", plus the TLS material
// both daemons and the CLI take (--tls-cert/--tls-key/--tls-ca, --insecure).
#ifndef FAULTLINE_COMMON_ENDPOINT_H_
#define FAULTLINE_COMMON_ENDPOINT_H_

#include <grpcpp/security/credentials.h>
#include <grpcpp/security/server_credentials.h>

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "common/files.h"  // ReadFileToString, which used to live here

namespace faultline {

struct Endpoint {
  bool is_unix = false;
  std::string path;  // unix socket path
  std::string host;  // TCP host (IPv6 without brackets)
  int port = 0;

  // The address in gRPC's URI form ("unix:/p", "1.2.3.4:5", "[::1]:5").
  std::string GrpcTarget() const;
};

// `field` names the flag in errors (e.g. "--listen").
absl::StatusOr<Endpoint> ParseEndpoint(const std::string& field, const std::string& text);

struct TlsFiles {
  std::string cert;
  std::string key;
  std::string ca;
  bool Any() const { return !cert.empty() || !key.empty() || !ca.empty(); }
  bool All() const { return !cert.empty() && !key.empty() && !ca.empty(); }
};

// Server credentials for one endpoint: unix sockets are plain (the socket's file
// mode guards them); TCP needs mutual TLS (client certificates required and
// verified against the CA) unless `insecure`.
absl::StatusOr<std::shared_ptr<grpc::ServerCredentials>> MakeServerCredentials(
    const Endpoint& endpoint, const TlsFiles& tls, bool insecure);

// Channel credentials to dial `endpoint`, with the same rules as the server side.
absl::StatusOr<std::shared_ptr<grpc::ChannelCredentials>> MakeChannelCredentials(
    const Endpoint& endpoint, const TlsFiles& tls, bool insecure);

// A channel to `target` ("unix:/PATH" or "HOST:PORT").
absl::StatusOr<std::shared_ptr<grpc::Channel>> Dial(const std::string& field,
                                                    const std::string& target,
                                                    const TlsFiles& tls, bool insecure);

}  // namespace faultline

#endif  // FAULTLINE_COMMON_ENDPOINT_H_
