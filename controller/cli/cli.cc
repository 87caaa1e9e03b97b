#include "controller/cli/cli.h"

#include <google/protobuf/util/json_util.h>

#include <cstdio>

#include "common/grpc_status.h"
#include "common/text.h"
#include "common/yaml_proto.h"

namespace faultline::cli {

absl::StatusOr<std::shared_ptr<grpc::Channel>> CliContext::AgentChannel() const {
  if (agent.empty()) {
    return absl::InvalidArgumentError("--agent: required for this command (unix:/PATH or HOST:PORT)");
  }
  return Dial("--agent", agent, tls, insecure);
}

absl::StatusOr<std::shared_ptr<grpc::Channel>> CliContext::ControllerChannel() const {
  return Dial("--controller", controller, tls, insecure);
}

void CliContext::Fail(const absl::Status& status) {
  const char* code = GrpcCodeName(static_cast<grpc::StatusCode>(status.code()));
  const std::string msg(status.message());
  std::fprintf(stderr, "faultline: %s: %s\n", code, msg.c_str());
  if (Json()) {
    std::printf("{\"error\":{\"code\":\"%s\",\"message\":%s}}\n", code, JsonQuote(msg).c_str());
  }
  exit_code = 1;
}

std::string Printable(const std::string& text) {
  return faultline::Printable(text, std::string::npos);
}

std::string ToJson(const google::protobuf::Message& message) {
  google::protobuf::util::JsonPrintOptions opts;
  opts.preserve_proto_field_names = true;
  opts.always_print_primitive_fields = true;
  std::string out;
  (void)google::protobuf::util::MessageToJsonString(message, &out, opts);
  return out;
}

}  // namespace faultline::cli
