// Pieces of the probes exposed for unit tests and for MakeProbe(): parsers,
// wire encodings and one factory per probe kind. Not a public API.
#ifndef FAULTLINE_PROBES_PROBE_INTERNAL_H_
#define FAULTLINE_PROBES_PROBE_INTERNAL_H_

#include <cstdint>
#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "probes/probe.h"
#include "probes/probe_net.h"
#include "faultline/v1/agent.pb.h"

namespace faultline::probes {

// An http:// URL split for a GET request.
struct HttpUrl {
  HostPort target;
  std::string host_header;  // authority as written ("example.com:8080")
  std::string path;         // path and query, at least "/"; no fragment
};
absl::StatusOr<HttpUrl> ParseHttpUrl(const std::string& field, const std::string& url);

// The GET request the http probe sends.
std::string BuildHttpRequest(const HttpUrl& url);

struct HttpResponse {
  int status = 0;
  std::string body;  // de-chunked
};
// Parses a complete response (status line, headers, body by Content-Length,
// chunked encoding, or up to the end of the data). `complete` is set when the data
// hold the whole response, so the reader can stop before the server closes.
absl::StatusOr<HttpResponse> ParseHttpResponse(const std::string& data, bool eof,
                                               bool* complete);

// grpc.health.v1 HealthCheckRequest {string service = 1;} in protobuf wire format.
std::string EncodeHealthCheckRequest(const std::string& service);
// HealthCheckResponse {ServingStatus status = 1;}: returns the status number
// (0 UNKNOWN, 1 SERVING, 2 NOT_SERVING, 3 SERVICE_UNKNOWN), skipping other fields.
absl::StatusOr<int> DecodeHealthCheckResponse(const std::string& bytes);
const char* HealthStatusName(int status);

absl::StatusOr<std::unique_ptr<Probe>> MakeTcpProbe(const v1::TcpProbe& spec);
absl::StatusOr<std::unique_ptr<Probe>> MakeHttpProbe(const v1::HttpProbe& spec);
// With a policy: PERMISSION_DENIED unless it allows argv; the probe runs as its
// user. Without (nullptr): validation only; the probe runs with our own
// credentials (tests).
absl::StatusOr<std::unique_ptr<Probe>> MakeExecProbe(const v1::ExecProbe& spec,
                                                     const ExecPolicy* exec);
absl::StatusOr<std::unique_ptr<Probe>> MakeGrpcHealthProbe(const v1::GrpcHealthProbe& spec);
absl::StatusOr<std::unique_ptr<Probe>> MakeRedisProbe(const v1::RedisProbe& spec);

}  // namespace faultline::probes

#endif  // FAULTLINE_PROBES_PROBE_INTERNAL_H_
