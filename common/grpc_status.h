// Conversions between absl::Status (used inside) and grpc::Status (RPC edge).
#ifndef FAULTLINE_COMMON_GRPC_STATUS_H_
#define FAULTLINE_COMMON_GRPC_STATUS_H_

#include <grpcpp/support/status.h>

#include "absl/status/status.h"

namespace faultline {

grpc::Status ToGrpcStatus(const absl::Status& status);
absl::Status FromGrpcStatus(const grpc::Status& status);
// "INVALID_ARGUMENT" style name of a gRPC code.
const char* GrpcCodeName(grpc::StatusCode code);

}  // namespace faultline

#endif  // FAULTLINE_COMMON_GRPC_STATUS_H_
