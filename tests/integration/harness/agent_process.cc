#include "harness/agent_process.h"

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
  auto p = [&](const std::string& n) { return d + "/" + n; };
  const std::vector<std::string> ec_key = {"-newkey", "ec", "-pkeyopt",
                                           "ec_paramgen_curve:prime256v1", "-nodes"};
  auto make_ca = [&](const std::string& name) -> absl::Status {
    std::vector<std::string> argv = {"openssl", "req", "-x509"};
    argv.insert(argv.end(), ec_key.begin(), ec_key.end());
    argv.insert(argv.end(), {"-keyout", p(name + ".key"), "-out", p(name + ".crt"), "-days",
                             "2", "-subj", "/CN=" + TestName(name), "-addext",
                             "basicConstraints=critical,CA:TRUE", "-addext",
                             "keyUsage=critical,keyCertSign,cRLSign"});
    return RunChecked(argv);
  };
  auto make_leaf = [&](const std::string& name, const std::string& ca, const std::string& cn,
                       const std::string& ext_text, int serial) -> absl::Status {
    RETURN_IF_ERROR(dir.WriteFile("certs/" + name + ".ext", ext_text));
    std::vector<std::string> req = {"openssl", "req"};
    req.insert(req.end(), ec_key.begin(), ec_key.end());
    req.insert(req.end(), {"-keyout", p(name + ".key"), "-out", p(name + ".csr"), "-subj",
                           "/CN=" + cn});
    RETURN_IF_ERROR(RunChecked(req));
    return RunChecked({"openssl", "x509", "-req", "-in", p(name + ".csr"), "-CA",
                       p(ca + ".crt"), "-CAkey", p(ca + ".key"), "-set_serial",
                       std::to_string(serial), "-days", "2", "-out", p(name + ".crt"),
                       "-extfile", p(name + ".ext")});
  };
  const std::string server_ext =
      "basicConstraints=CA:FALSE\nsubjectAltName=IP:127.0.0.1,DNS:localhost\n"
      "extendedKeyUsage=serverAuth\n";
  const std::string client_ext = "basicConstraints=CA:FALSE\nextendedKeyUsage=clientAuth\n";
  RETURN_IF_ERROR(make_ca("ca"));
  RETURN_IF_ERROR(make_ca("other-ca"));
  RETURN_IF_ERROR(make_leaf("server", "ca", "localhost", server_ext, 1001));
  RETURN_IF_ERROR(make_leaf("client", "ca", "fltest-client", client_ext, 1002));
  RETURN_IF_ERROR(make_leaf("other-client", "other-ca", "fltest-other-client", client_ext, 2001));
  TestCerts c;
  c.ca = p("ca.crt");
  c.server_cert = p("server.crt");
  c.server_key = p("server.key");
  c.client_cert = p("client.crt");
  c.client_key = p("client.key");
  c.other_ca = p("other-ca.crt");
  c.other_client_cert = p("other-client.crt");
  c.other_client_key = p("other-client.key");
  return c;
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
