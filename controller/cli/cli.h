// Shared pieces of the `faultline` CLI: global flags, output, errors. Commands
// register themselves on the CLI11 app; main.cc is only wiring.
#ifndef FAULTLINE_CONTROLLER_CLI_CLI_H_
#define FAULTLINE_CONTROLLER_CLI_CLI_H_

#include <google/protobuf/message.h>
#include <grpcpp/channel.h>
#include <grpcpp/client_context.h>

#include <CLI/CLI.hpp>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "common/endpoint.h"
#include "common/grpc_status.h"
#include "faultline/v1/controller.grpc.pb.h"
#include "faultline/v1/faults.pb.h"

namespace faultline::cli {

// Flags every command shares, and the command's exit code. One per process,
// owned by main(); commands keep a reference.
struct CliContext {
  std::string agent;                       // --agent ADDR: talk to one agent
  std::string controller = "127.0.0.1:7100";  // --controller ADDR
  bool insecure = false;
  TlsFiles tls;
  std::string output = "table";            // -o table|json
  int exit_code = 0;

  bool Json() const { return output == "json"; }
  // A channel to --agent (which must be set) or to --controller.
  absl::StatusOr<std::shared_ptr<grpc::Channel>> AgentChannel() const;
  absl::StatusOr<std::shared_ptr<grpc::Channel>> ControllerChannel() const;
  // Prints the error (stderr; with -o json also {"error":...} on stdout) and sets
  // exit_code to 1.
  void Fail(const absl::Status& status);
};

// Proto -> JSON with the .proto field names, no line breaks inside.
std::string ToJson(const google::protobuf::Message& message);

// Deadline for unary RPCs issued by the CLI.
constexpr int kRpcTimeoutSeconds = 30;

// A stub on --controller's channel; the deadline of a unary call.
absl::StatusOr<std::unique_ptr<v1::Controller::Stub>> ControllerStub(const CliContext& ctx);
void Deadline(grpc::ClientContext* c);

// Calls one unary method of the controller; prints the error on failure.
template <typename Req, typename Resp>
bool Call(CliContext& ctx,
          grpc::Status (v1::Controller::Stub::*method)(grpc::ClientContext*, const Req&, Resp*),
          const Req& req, Resp* resp) {
  auto stub = ControllerStub(ctx);
  if (!stub.ok()) {
    ctx.Fail(stub.status());
    return false;
  }
  grpc::ClientContext c;
  Deadline(&c);
  grpc::Status st = ((**stub).*method)(&c, req, resp);
  if (!st.ok()) {
    ctx.Fail(FromGrpcStatus(st));
    return false;
  }
  return true;
}

// `info`, `inject`, `preflight`, `faults`, `revert` (straight to one agent).
void AddAgentCommands(CLI::App& app, CliContext& ctx);
// The FaultSpec that `faultline inject KIND ARGS...` sends, built (and with
// `validate`, checked) exactly as that command does, for tests:
// INVALID_ARGUMENT naming the field.
absl::StatusOr<v1::FaultSpec> FaultSpecFromFlags(const std::string& kind,
                                                 std::vector<std::string> args,
                                                 bool validate = true);

// After a failed parse, the clearer error when `inject` or `preflight` was
// given no kind or an unknown one (CLI11 says only "A subcommand is
// required"): INVALID_ARGUMENT naming the given kind and listing the known
// ones; OK when that is not what failed.
absl::Status UnknownKindError(CLI::App& app);

// Every command-line argument is UTF-8 (values go into proto string fields):
// INVALID_ARGUMENT naming the flag (or the argument's position) otherwise.
absl::Status CheckArgsUtf8(int argc, const char* const* argv);

// `agents`, `run`, `runs`, `validate`, `abort` (through the controller).
void AddControllerCommands(CLI::App& app, CliContext& ctx);

// `schedule ...`, `schedules`, `blackout ...`, `blackouts` (through the
// controller; docs/schedules.md).
void AddScheduleCommands(CLI::App& app, CliContext& ctx);
// A blackout's --from/--to: RFC 3339 ("2026-12-24T00:00:00Z",
// "2026-12-24T09:00:00+01:00"), `now`, or `now+DURATION` ("now+2h").
// INVALID_ARGUMENT naming `field`.
absl::StatusOr<int64_t> ParseTimeArg(const std::string& field, const std::string& text,
                                     int64_t now_unix_ns);

// `gameday start|status|approve|note|abort|report` (docs/gamedays.md).
void AddGameDayCommands(CLI::App& app, CliContext& ctx);

// `certs init DIR`, `certs issue ROLE NAME` (local; no daemon needed).
void AddCertsCommands(CLI::App& app, CliContext& ctx);

// `text` safe for a terminal: control bytes (newlines, ANSI escapes) and
// non-ASCII bytes shown as \xNN.
std::string Printable(const std::string& text);

}  // namespace faultline::cli

#endif  // FAULTLINE_CONTROLLER_CLI_CLI_H_
