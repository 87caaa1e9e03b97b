// grpc_health probe: grpc.health.v1.Health/Check through a generic stub, with
// the two tiny messages encoded by hand (no health.proto of our own, so nothing
// can clash with grpc++'s copy of those descriptors).
#include <fmt/format.h>
#include <grpcpp/channel.h>
#include <grpcpp/client_context.h>
#include <grpcpp/create_channel.h>
#include <grpcpp/generic/generic_stub.h>
#include <grpcpp/security/credentials.h>
#include <grpcpp/support/byte_buffer.h>
#include <grpcpp/support/channel_arguments.h>

#include <condition_variable>
#include <mutex>
#include <utility>
#include <vector>

#include "probes/probe_internal.h"
#include "common/endpoint.h"
#include "common/status_macros.h"

namespace faultline::probes {
namespace {

constexpr char kHealthCheckMethod[] = "/grpc.health.v1.Health/Check";

void AppendVarint(uint64_t v, std::string* out) {
  while (v >= 0x80) {
    out->push_back(static_cast<char>((v & 0x7f) | 0x80));
    v >>= 7;
  }
  out->push_back(static_cast<char>(v));
}

bool ReadVarint(const std::string& in, size_t* pos, uint64_t* v) {
  *v = 0;
  for (int shift = 0; shift < 64; shift += 7) {
    if (*pos >= in.size()) return false;
    const auto byte = static_cast<uint8_t>(in[(*pos)++]);
    *v |= static_cast<uint64_t>(byte & 0x7f) << shift;
    if ((byte & 0x80) == 0) return true;
  }
  return false;
}

}  // namespace

std::string EncodeHealthCheckRequest(const std::string& service) {
  std::string out;
  if (service.empty()) return out;  // proto3: default values are not sent
  out.push_back(0x0a);              // field 1, wire type 2 (length-delimited)
  AppendVarint(service.size(), &out);
  out += service;
  return out;
}

absl::StatusOr<int> DecodeHealthCheckResponse(const std::string& bytes) {
  int status = 0;  // absent field = UNKNOWN
  size_t pos = 0;
  while (pos < bytes.size()) {
    uint64_t key = 0;
    if (!ReadVarint(bytes, &pos, &key)) return absl::DataLossError("truncated response tag");
    const uint64_t field = key >> 3;
    const int wire_type = static_cast<int>(key & 7);
    uint64_t value = 0;
    switch (wire_type) {
      case 0:
        if (!ReadVarint(bytes, &pos, &value)) return absl::DataLossError("truncated varint");
        if (field == 1) status = static_cast<int>(value);
        break;
      case 1:
        if (bytes.size() - pos < 8) return absl::DataLossError("truncated fixed64");
        pos += 8;
        break;
      case 2:
        if (!ReadVarint(bytes, &pos, &value) || bytes.size() - pos < value) {
          return absl::DataLossError("truncated length-delimited field");
        }
        pos += value;
        break;
      case 5:
        if (bytes.size() - pos < 4) return absl::DataLossError("truncated fixed32");
        pos += 4;
        break;
      default:
        return absl::DataLossError(fmt::format("unsupported wire type {}", wire_type));
    }
  }
  return status;
}

const char* HealthStatusName(int status) {
  switch (status) {
    case 0: return "UNKNOWN";
    case 1: return "SERVING";
    case 2: return "NOT_SERVING";
    case 3: return "SERVICE_UNKNOWN";
    default: return "unrecognised status";
  }
}

namespace {

// One Health/Check per check on a fresh channel with its own subchannel pool:
// a long-lived channel would hide recovery behind its reconnect backoff. Plain
// text only (TLS is not configurable in ProbeSpec). Owned by the runner; not
// thread-safe.
class GrpcHealthProbe final : public Probe {
 public:
  GrpcHealthProbe(std::string target, std::string service)
      : target_(std::move(target)), request_(EncodeHealthCheckRequest(service)),
        service_(std::move(service)) {}

  ProbeResult Check(std::chrono::nanoseconds timeout) override {
    grpc::ChannelArguments args;
    args.SetInt(GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1);
    args.SetInt(GRPC_ARG_ENABLE_RETRIES, 0);
    auto channel =
        grpc::CreateCustomChannel(target_, grpc::InsecureChannelCredentials(), args);
    grpc::GenericStub stub(channel);
    grpc::ClientContext context;
    context.set_deadline(std::chrono::system_clock::now() +
                         std::chrono::duration_cast<std::chrono::system_clock::duration>(timeout));
    grpc::Slice slice(request_);
    grpc::ByteBuffer request(&slice, 1);
    grpc::ByteBuffer response;

    std::mutex mu;
    std::condition_variable cv;
    bool done = false;
    grpc::Status status;
    stub.UnaryCall(&context, kHealthCheckMethod, grpc::StubOptions(), &request, &response,
                   [&](grpc::Status s) {
                     std::lock_guard<std::mutex> lock(mu);
                     status = std::move(s);
                     done = true;
                     cv.notify_all();
                   });
    {
      std::unique_lock<std::mutex> lock(mu);
      cv.wait(lock, [&] { return done; });  // the deadline bounds the call
    }
    if (!status.ok()) {
      return {false, fmt::format("Health/Check: {} ({})", status.error_message(),
                                 static_cast<int>(status.error_code()))};
    }
    std::vector<grpc::Slice> slices;
    if (!response.Dump(&slices).ok()) return {false, "Health/Check: unreadable response"};
    std::string bytes;
    for (const grpc::Slice& s : slices) {
      bytes.append(reinterpret_cast<const char*>(s.begin()), s.size());
    }
    auto serving = DecodeHealthCheckResponse(bytes);
    if (!serving.ok()) {
      return {false, fmt::format("Health/Check: bad response: {}",
                                 std::string(serving.status().message()))};
    }
    if (*serving != 1) {
      return {false, fmt::format("service \"{}\" is {}", service_, HealthStatusName(*serving))};
    }
    return {true, ""};
  }

 private:
  const std::string target_;
  const std::string request_;
  const std::string service_;
};

}  // namespace

absl::StatusOr<std::unique_ptr<Probe>> MakeGrpcHealthProbe(const v1::GrpcHealthProbe& spec) {
  std::string target;
  if (spec.address().rfind("unix:", 0) == 0) {
    ASSIGN_OR_RETURN(Endpoint ep, ParseEndpoint("grpc_health.address", spec.address()));
    target = ep.GrpcTarget();
  } else {
    ASSIGN_OR_RETURN(HostPort hp, ParseHostPort("grpc_health.address", spec.address()));
    Endpoint ep;
    ep.host = hp.host;
    ep.port = hp.port;
    target = ep.GrpcTarget();
  }
  for (char c : spec.service()) {
    if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) {
      return absl::InvalidArgumentError(
          "grpc_health.service: control characters are not allowed");
    }
  }
  return std::unique_ptr<Probe>(std::make_unique<GrpcHealthProbe>(target, spec.service()));
}

}  // namespace faultline::probes
