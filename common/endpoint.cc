#include "common/endpoint.h"

#include <arpa/inet.h>
#include <fmt/format.h>
#include <grpcpp/create_channel.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>

#include "common/files.h"
#include "common/status_macros.h"

namespace faultline {

std::string Endpoint::GrpcTarget() const {
  if (is_unix) return "unix:" + path;
  if (host.find(':') != std::string::npos) return fmt::format("[{}]:{}", host, port);
  return fmt::format("{}:{}", host, port);
}

absl::StatusOr<Endpoint> ParseEndpoint(const std::string& field, const std::string& text) {
  Endpoint ep;
  if (text.rfind("unix:", 0) == 0) {
    ep.is_unix = true;
    ep.path = text.substr(5);
    if (ep.path.empty() || ep.path[0] != '/') {
      return absl::InvalidArgumentError(
          fmt::format("{}: unix socket path must be absolute, got \"{}\"", field, text));
    }
    return ep;
  }
  size_t colon = text.rfind(':');
  if (colon == std::string::npos || colon == 0) {
    return absl::InvalidArgumentError(fmt::format(
        "{}: expected unix:/PATH or HOST:PORT, got \"{}\"", field, text));
  }
  std::string host = text.substr(0, colon);
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']') {
    host = host.substr(1, host.size() - 2);
  }
  const std::string port_text = text.substr(colon + 1);
  char* end = nullptr;
  long port = std::strtol(port_text.c_str(), &end, 10);
  if (port_text.empty() || *end != '\0' || port < 0 || port > 65535) {
    return absl::InvalidArgumentError(
        fmt::format("{}: invalid port \"{}\" in \"{}\"", field, port_text, text));
  }
  ep.host = host;
  ep.port = static_cast<int>(port);
  return ep;
}

namespace {

absl::Status CheckTlsFlags(const TlsFiles& tls) {
  if (!tls.All()) {
    return absl::InvalidArgumentError(
        "--tls-cert, --tls-key and --tls-ca: all three are needed for TCP "
        "(mutual TLS), or pass --insecure for plain TCP");
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<std::shared_ptr<grpc::ServerCredentials>> MakeServerCredentials(
    const Endpoint& endpoint, const TlsFiles& tls, bool insecure) {
  if (endpoint.is_unix || (insecure && !tls.Any())) return grpc::InsecureServerCredentials();
  RETURN_IF_ERROR(CheckTlsFlags(tls));
  grpc::SslServerCredentialsOptions opts(
      GRPC_SSL_REQUEST_AND_REQUIRE_CLIENT_CERTIFICATE_AND_VERIFY);
  ASSIGN_OR_RETURN(opts.pem_root_certs, ReadFileToString(tls.ca));
  grpc::SslServerCredentialsOptions::PemKeyCertPair pair;
  ASSIGN_OR_RETURN(pair.private_key, ReadFileToString(tls.key));
  ASSIGN_OR_RETURN(pair.cert_chain, ReadFileToString(tls.cert));
  opts.pem_key_cert_pairs.push_back(std::move(pair));
  return grpc::SslServerCredentials(opts);
}

absl::StatusOr<std::shared_ptr<grpc::ChannelCredentials>> MakeChannelCredentials(
    const Endpoint& endpoint, const TlsFiles& tls, bool insecure) {
  if (endpoint.is_unix || (insecure && !tls.Any())) return grpc::InsecureChannelCredentials();
  RETURN_IF_ERROR(CheckTlsFlags(tls));
  grpc::SslCredentialsOptions opts;
  ASSIGN_OR_RETURN(opts.pem_root_certs, ReadFileToString(tls.ca));
  ASSIGN_OR_RETURN(opts.pem_private_key, ReadFileToString(tls.key));
  ASSIGN_OR_RETURN(opts.pem_cert_chain, ReadFileToString(tls.cert));
  return grpc::SslCredentials(opts);
}

absl::StatusOr<std::shared_ptr<grpc::Channel>> Dial(const std::string& field,
                                                    const std::string& target,
                                                    const TlsFiles& tls, bool insecure) {
  ASSIGN_OR_RETURN(Endpoint ep, ParseEndpoint(field, target));
  ASSIGN_OR_RETURN(auto creds, MakeChannelCredentials(ep, tls, insecure));
  grpc::ChannelArguments args;
  // Fail fast when nothing listens instead of waiting out the reconnect backoff.
  args.SetInt(GRPC_ARG_INITIAL_RECONNECT_BACKOFF_MS, 100);
  args.SetInt(GRPC_ARG_MAX_RECONNECT_BACKOFF_MS, 1000);
  return grpc::CreateCustomChannel(ep.GrpcTarget(), creds, args);
}

}  // namespace faultline
