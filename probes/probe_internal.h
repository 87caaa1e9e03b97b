// Pieces of the probes exposed for unit tests and for MakeProbe(): parsers,
// wire encodings and one factory per probe kind. Not a public API.
#ifndef FAULTLINE_PROBES_PROBE_INTERNAL_H_
#define FAULTLINE_PROBES_PROBE_INTERNAL_H_

#include <cstdint>
#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "probes/http_client.h"  // the http probe's parts, tested on their own
#include "probes/probe.h"
#include "probes/probe_net.h"
#include "faultline/v1/agent.pb.h"

namespace faultline::probes {

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
