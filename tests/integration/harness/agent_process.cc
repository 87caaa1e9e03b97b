#include "harness/agent_process.h"

#include "auth/certs.h"

#include <fmt/format.h>

#include <atomic>
#include <netdb.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <thread>

#include <google/protobuf/util/json_util.h>

#include "absl/status/status.h"
#include "common/grpc_status.h"
#include "common/status_macros.h"
#include "faultline/v1/controller.pb.h"

namespace faultline::itest {
namespace {

absl::StatusOr<std::string> BinaryFromEnv(const char* var) {
  const char* v = std::getenv(var);
  if (v == nullptr || *v == '\0') {
    return absl::FailedPreconditionError(
        fmt::format("{} is not set (meson test sets it to the built binary)", var));
  }
  if (access(v, X_OK) != 0) {
    return absl::FailedPreconditionError(fmt::format("{}={} is not executable", var, v));
  }
  return std::string(v);
}

// True when a plain connect() to the endpoint succeeds (the agent listens).
bool AcceptsConnections(const Endpoint& ep) {
  int fd = -1;
  int rc = -1;
  if (ep.is_unix) {
    fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    if (ep.path.size() >= sizeof(addr.sun_path)) {
      close(fd);
      return false;
    }
    std::memcpy(addr.sun_path, ep.path.c_str(), ep.path.size() + 1);
    rc = connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr));
  } else {
    addrinfo hints{};
    hints.ai_socktype = SOCK_STREAM;
    addrinfo* res = nullptr;
    if (getaddrinfo(ep.host.c_str(), std::to_string(ep.port).c_str(), &hints, &res) != 0) {
      return false;
    }
    fd = socket(res->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    rc = connect(fd, res->ai_addr, res->ai_addrlen);
    freeaddrinfo(res);
  }
  if (fd >= 0) close(fd);
  return rc == 0;
}

}  // namespace

absl::StatusOr<std::string> AgentBinary() { return BinaryFromEnv("FAULTLINE_AGENT"); }
absl::StatusOr<std::string> CliBinary() { return BinaryFromEnv("FAULTLINE_CLI"); }

std::unique_ptr<grpc::ClientContext> ContextWithDeadline(std::chrono::milliseconds timeout) {
  auto ctx = std::make_unique<grpc::ClientContext>();
  ctx->set_deadline(std::chrono::system_clock::now() + timeout);
  return ctx;
}

absl::Status WaitForInfo(faultline::v1::Agent::Stub& stub, std::chrono::milliseconds timeout,
                         faultline::v1::InfoResponse* response) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  grpc::Status last;
  for (int attempt = 0; attempt < 1000; ++attempt) {
    auto ctx = ContextWithDeadline(std::chrono::milliseconds(500));
    faultline::v1::InfoRequest req;
    faultline::v1::InfoResponse resp;
    last = stub.Info(ctx.get(), req, &resp);
    if (last.ok()) {
      if (response != nullptr) *response = resp;
      return absl::OkStatus();
    }
    if (std::chrono::steady_clock::now() >= deadline) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  return absl::DeadlineExceededError(
      fmt::format("Info did not answer within {} ms: {} {}", timeout.count(),
                  GrpcCodeName(last.error_code()), last.error_message()));
}

absl::StatusOr<std::unique_ptr<AgentProcess>> AgentProcess::Start(SimHost& host,
                                                                  const TestDir& dir,
                                                                  AgentOptions options) {
  // Defaults numbered per test process, so several agents can share a TestDir.
  static std::atomic<int> started{0};
  const int n = started++;
  if (options.listen.empty()) {
    options.listen.push_back("unix:" + dir.Path(fmt::format("agent-{}.sock", n)));
  }
  if (options.state_dir.empty()) {
    ASSIGN_OR_RETURN(options.state_dir, dir.MakeSubdir(fmt::format("state-{}", n)));
  }
  std::unique_ptr<AgentProcess> agent(new AgentProcess(host, std::move(options)));
  agent->dial_ = agent->options_.dial.empty() ? agent->options_.listen.front()
                                              : agent->options_.dial;
  // One log per agent: several agents may share a TestDir.
  agent->log_path_ = dir.Path(fmt::format("agent-{}.log", n));
  // Checked before starting anything.
  RETURN_IF_ERROR(ParseEndpoint("agent address", agent->dial_).status());
  RETURN_IF_ERROR(agent->Launch());
  return agent;
}

absl::Status AgentProcess::Launch() {
  ASSIGN_OR_RETURN(std::string binary, AgentBinary());
  std::vector<std::string> argv = {binary, "--state-dir", options_.state_dir};
  for (const auto& l : options_.listen) {
    argv.push_back("--listen");
    argv.push_back(l);
  }
  argv.insert(argv.end(), options_.args.begin(), options_.args.end());
  ++runs_;
  SubprocessOptions so;
  so.stdout_file = fmt::format("{}.{}.out", log_path_, runs_);
  so.stderr_file = fmt::format("{}.{}.err", log_path_, runs_);
  ASSIGN_OR_RETURN(exec_, host_.Exec(argv, so));
  auto found = host_.Find(*exec_, options_.ready_timeout);
  if (!found.ok()) {
    exec_->Wait(std::chrono::milliseconds(200));
    return absl::InternalError(fmt::format("agent did not start ({}): {}\n{}",
                                           exec_->CommandLine(), std::string(found.status().message()),
                                           Log()));
  }
  process_ = *found;
  // A channel that dialled too early sits in reconnect backoff for seconds: wait
  // until the address accepts connections, then make a fresh channel.
  const auto deadline = std::chrono::steady_clock::now() + options_.ready_timeout;
  ASSIGN_OR_RETURN(Endpoint ep, ParseEndpoint("agent address", dial_));
  bool accepting = WaitFor(
      [&] { return AcceptsConnections(ep) || !exec_->Running(); }, options_.ready_timeout);
  if (!exec_->Running()) {
    return absl::InternalError(fmt::format("agent exited with {} before listening ({})\n{}",
                                           exec_->exit_code(), exec_->CommandLine(), Log()));
  }
  if (!accepting) {
    return absl::DeadlineExceededError(fmt::format("agent ({}) does not accept connections on {}\n{}",
                                                   exec_->CommandLine(), dial_, Log()));
  }
  ASSIGN_OR_RETURN(channel_, Dial("agent address", dial_, options_.client_tls,
                                  options_.client_insecure));
  stub_ = faultline::v1::Agent::NewStub(channel_);
  // Wait for Info, failing early if the agent exits.
  for (int attempt = 0; attempt < 1000; ++attempt) {
    absl::Status s = WaitForInfo(*stub_, std::chrono::milliseconds(300));
    if (s.ok()) return absl::OkStatus();
    if (!exec_->Running()) {
      return absl::InternalError(fmt::format("agent exited with {} before answering Info ({})\n{}",
                                             exec_->exit_code(), exec_->CommandLine(), Log()));
    }
    if (std::chrono::steady_clock::now() >= deadline) {
      return absl::DeadlineExceededError(
          fmt::format("agent ({}): {}\n{}", exec_->CommandLine(), std::string(s.message()), Log()));
    }
  }
  return absl::DeadlineExceededError("agent did not become ready");
}

AgentProcess::~AgentProcess() {
  if (exec_ != nullptr && exec_->Running() && process_.outer_pid > 0) {
    kill(process_.outer_pid, SIGKILL);
  }
  // exec_'s destructor kills and reaps nsenter.
}

std::string AgentProcess::Log() const {
  std::string out;
  for (int run = 1; run <= runs_; ++run) {
    for (const char* ext : {"out", "err"}) {
      std::string p = fmt::format("{}.{}.{}", log_path_, run, ext);
      auto text = ReadFileToString(p);
      if (text.ok() && !text->empty()) out += fmt::format("--- agent run {} std{}:\n{}", run, ext, *text);
    }
  }
  return out;
}

bool AgentProcess::Running() { return exec_ != nullptr && exec_->Running(); }

absl::Status AgentProcess::Kill() {
  if (!Running()) return absl::FailedPreconditionError("agent is not running");
  kill(process_.outer_pid, SIGKILL);
  // nsenter re-raises the child's fatal signal on itself, so it exits too.
  if (!exec_->Wait(std::chrono::seconds(10))) {
    return absl::DeadlineExceededError("agent did not die within 10 s of SIGKILL");
  }
  WaitFor([&] { return !ProcessAlive(process_.outer_pid); }, std::chrono::seconds(5));
  return absl::OkStatus();
}

absl::StatusOr<int> AgentProcess::Terminate(std::chrono::milliseconds timeout) {
  if (!Running()) return absl::FailedPreconditionError("agent is not running");
  kill(process_.outer_pid, SIGTERM);
  if (!exec_->Wait(timeout)) {
    return absl::DeadlineExceededError(
        fmt::format("agent did not exit within {} ms of SIGTERM\n{}", timeout.count(), Log()));
  }
  // nsenter passes on the agent's exit status.
  return exec_->exit_code();
}

absl::Status AgentProcess::Restart() {
  if (Running()) return absl::FailedPreconditionError("agent is still running");
  exec_.reset();
  return Launch();
}

absl::StatusOr<TestCerts> MakeTestCerts(const TestDir& dir) {
  ASSIGN_OR_RETURN(std::string d, dir.MakeSubdir("certs"));
  ASSIGN_OR_RETURN(std::string other, dir.MakeSubdir("certs-other"));
  TestCerts c;
  c.dir = d;
  ASSIGN_OR_RETURN(auth::CertFiles ca, auth::InitCa(d, 2, /*force=*/true));
  ASSIGN_OR_RETURN(auth::CertFiles other_ca, auth::InitCa(other, 2, /*force=*/true));
  c.ca = ca.cert;
  c.other_ca = other_ca.cert;
  auth::IssueOptions server;
  server.ips = {"127.0.0.1"};
  server.dns = {"localhost"};
  server.days = 2;
  server.force = true;
  auth::IssueOptions client;
  client.days = 2;
  client.force = true;
  ASSIGN_OR_RETURN(auto agent, auth::IssueCertificate(d, {auth::Role::kAgent, "fltest-agent"}, server));
  ASSIGN_OR_RETURN(auto ctl, auth::IssueCertificate(d, {auth::Role::kController, "fltest-controller"}, server));
  ASSIGN_OR_RETURN(auto op, auth::IssueCertificate(d, {auth::Role::kOperator, "fltest-operator"}, client));
  ASSIGN_OR_RETURN(auto viewer, auth::IssueCertificate(d, {auth::Role::kViewer, "fltest-viewer"}, client));
  ASSIGN_OR_RETURN(auto stranger,
                   auth::IssueCertificate(other, {auth::Role::kOperator, "fltest-other"}, client));
  c.server_cert = agent.cert;
  c.server_key = agent.key;
  c.controller_cert = ctl.cert;
  c.controller_key = ctl.key;
  c.client_cert = op.cert;
  c.client_key = op.key;
  c.viewer_cert = viewer.cert;
  c.viewer_key = viewer.key;
  c.other_client_cert = stranger.cert;
  c.other_client_key = stranger.key;
  return c;
}

absl::StatusOr<TlsFiles> IssueTestCert(const TestCerts& certs, const std::string& role,
                                       const std::string& name,
                                       const std::vector<std::string>& ips) {
  ASSIGN_OR_RETURN(auth::Role r, auth::ParseRole("role", role));
  auth::IssueOptions o;
  o.ips = ips;
  o.days = 2;
  o.force = true;
  ASSIGN_OR_RETURN(auth::CertFiles files, auth::IssueCertificate(certs.dir, {r, name}, o));
  return TlsFiles{files.cert, files.key, certs.ca};
}

std::vector<std::string> TlsArgs(const TlsFiles& tls) {
  return {"--tls-cert", tls.cert, "--tls-key", tls.key, "--tls-ca", tls.ca};
}

bool AllAgentsHealthy(const std::string& agents_json, const std::vector<std::string>& names) {
  faultline::v1::ListAgentsResponse resp;
  if (!google::protobuf::util::JsonStringToMessage(agents_json, &resp).ok()) return false;
  for (const auto& name : names) {
    bool healthy = false;
    for (const auto& a : resp.agents()) healthy = healthy || (a.name() == name && a.health() == "healthy");
    if (!healthy) return false;
  }
  return true;
}

}  // namespace faultline::itest
