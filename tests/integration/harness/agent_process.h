// A faultline-agent started inside a SimHost for a test.
#ifndef FAULTLINE_TESTS_INTEGRATION_HARNESS_AGENT_PROCESS_H_
#define FAULTLINE_TESTS_INTEGRATION_HARNESS_AGENT_PROCESS_H_

#include <grpcpp/grpcpp.h>

#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "common/endpoint.h"
#include "faultline/v1/agent.grpc.pb.h"
#include "harness/sim_host.h"
#include "harness/subprocess.h"
#include "harness/test_dir.h"

namespace faultline::itest {

// The binaries under test, from the environment meson sets (FAULTLINE_AGENT,
// FAULTLINE_CLI); an error when unset.
absl::StatusOr<std::string> AgentBinary();
absl::StatusOr<std::string> CliBinary();

struct AgentOptions {
  // --listen values; empty = one unix socket in the test dir.
  std::vector<std::string> listen;
  // Further flags (--policy, --label, --name, --insecure, --tls-*...).
  std::vector<std::string> args;
  // --state-dir; empty = a fresh folder in the test dir.
  std::string state_dir;
  // What the test dials; empty = the first listen address.
  std::string dial;
  TlsFiles client_tls;          // client credentials when `dial` is TCP
  bool client_insecure = false;  // plain TCP
  std::chrono::milliseconds ready_timeout = std::chrono::seconds(15);
};

// One faultline-agent process inside a SimHost, with a gRPC stub to it. Start()
// returns once Info answers. Kill()/Terminate() end it; Restart() starts it again
// with the same flags and state dir. Owned by the test (declare it after the
// SimHost and TestDir it uses); the destructor SIGKILLs a running agent. Not
// thread-safe (the stub itself is).
class AgentProcess {
 public:
  static absl::StatusOr<std::unique_ptr<AgentProcess>> Start(SimHost& host, const TestDir& dir,
                                                             AgentOptions options = {});
  ~AgentProcess();
  AgentProcess(const AgentProcess&) = delete;
  AgentProcess& operator=(const AgentProcess&) = delete;

  faultline::v1::Agent::Stub& stub() { return *stub_; }
  std::shared_ptr<grpc::Channel> channel() { return channel_; }
  // The address the test dials ("unix:/..." or "127.0.0.1:PORT").
  const std::string& address() const { return dial_; }
  const std::string& state_dir() const { return options_.state_dir; }
  const std::string& log_path() const { return log_path_; }
  // stdout+stderr of every run so far (for failure messages).
  std::string Log() const;
  // The agent's pid in the test's namespace / in the host's.
  pid_t outer_pid() const { return process_.outer_pid; }
  pid_t inner_pid() const { return process_.inner_pid; }
  bool Running();

  // SIGKILL, then wait for the exit (no cleanup by the agent).
  absl::Status Kill();
  // SIGTERM, then wait up to `timeout`; returns the agent's exit code.
  absl::StatusOr<int> Terminate(std::chrono::milliseconds timeout = std::chrono::seconds(15));
  // Starts the agent again (same flags, same state dir); waits for Info.
  absl::Status Restart();

 private:
  AgentProcess(SimHost& host, AgentOptions options) : host_(host), options_(std::move(options)) {}
  absl::Status Launch();

  SimHost& host_;
  AgentOptions options_;
  std::string dial_;
  std::string log_path_;
  int runs_ = 0;
  std::unique_ptr<Subprocess> exec_;
  HostProcess process_;
  std::shared_ptr<grpc::Channel> channel_;
  std::unique_ptr<faultline::v1::Agent::Stub> stub_;
};

// Calls Info until it answers or `timeout` passes.
absl::Status WaitForInfo(faultline::v1::Agent::Stub& stub, std::chrono::milliseconds timeout,
                         faultline::v1::InfoResponse* response = nullptr);

// Whether `faultline agents -o json` output lists every one of `names` healthy.
bool AllAgentsHealthy(const std::string& agents_json, const std::vector<std::string>& names);

// A client context with a deadline `timeout` from now.
std::unique_ptr<grpc::ClientContext> ContextWithDeadline(
    std::chrono::milliseconds timeout = std::chrono::seconds(10));

// Certificates for mutual-TLS tests, made in a TestDir with the library that
// `faultline certs` uses (auth/certs.h): a CA and one certificate per role,
// and a second, unrelated CA with an operator certificate of its own.
struct TestCerts {
  std::string dir;          // the CA's folder (ca.crt, ca.key, ROLE-NAME.{crt,key})
  std::string ca;           // the CA every daemon trusts
  std::string server_cert;  // agent "fltest-agent", SANs IP:127.0.0.1, DNS:localhost
  std::string server_key;
  std::string client_cert;  // operator "fltest-operator"
  std::string client_key;
  std::string viewer_cert;  // viewer "fltest-viewer"
  std::string viewer_key;
  std::string controller_cert;  // controller "fltest-controller", IP:127.0.0.1
  std::string controller_key;
  std::string other_ca;            // an unrelated CA
  std::string other_client_cert;   // operator "fltest-other", signed by `other_ca`
  std::string other_client_key;

  TlsFiles Server() const { return {server_cert, server_key, ca}; }
  TlsFiles Client() const { return {client_cert, client_key, ca}; }
  TlsFiles Viewer() const { return {viewer_cert, viewer_key, ca}; }
  TlsFiles Controller() const { return {controller_cert, controller_key, ca}; }
  TlsFiles OtherClient() const { return {other_client_cert, other_client_key, ca}; }
};
absl::StatusOr<TestCerts> MakeTestCerts(const TestDir& dir);

// One more certificate from `certs`' CA: ROLE ("agent", "controller",
// "operator", "viewer") and NAME, with IP SANs `ips` (for servers).
absl::StatusOr<TlsFiles> IssueTestCert(const TestCerts& certs, const std::string& role,
                                       const std::string& name,
                                       const std::vector<std::string>& ips = {});

// `--tls-cert F --tls-key F --tls-ca F` for a daemon's or the CLI's argv.
std::vector<std::string> TlsArgs(const TlsFiles& tls);

}  // namespace faultline::itest

#endif  // FAULTLINE_TESTS_INTEGRATION_HARNESS_AGENT_PROCESS_H_
