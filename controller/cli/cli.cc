#include "controller/cli/cli.h"

#include <fmt/format.h>
#include <google/protobuf/util/json_util.h>

#include <chrono>
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

absl::Status CheckArgsUtf8(int argc, const char* const* argv) {
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    if (IsValidUtf8(arg)) continue;
    std::string flag = arg.substr(0, arg.find('='));
    if (arg[0] != '-' || flag == arg) {
      const bool after_flag = i > 1 && argv[i - 1][0] == '-' && arg[0] != '-';
      flag = after_flag ? argv[i - 1] : fmt::format("argument {}", i);
    }
    return absl::InvalidArgumentError(
        fmt::format("{}: \"{}\" is not valid UTF-8", Printable(flag), Printable(arg)));
  }
  return absl::OkStatus();
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

absl::StatusOr<std::unique_ptr<v1::Controller::Stub>> ControllerStub(const CliContext& ctx) {
  auto channel = ctx.ControllerChannel();
  if (!channel.ok()) return channel.status();
  return v1::Controller::NewStub(*channel);
}

void Deadline(grpc::ClientContext* c) {
  c->set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(kRpcTimeoutSeconds));
}

}  // namespace faultline::cli
