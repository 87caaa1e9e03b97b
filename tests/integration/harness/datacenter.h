// A simulated datacenter for fleet tests (DESIGN.md, "Tests and the real
// kernel"): a "switch" namespace holding a bridge, one host per namespace joined
// to it by a veth pair, the controller in a host of its own, and a
// faultline-agent in each other host that registers itself with it.
#ifndef FAULTLINE_TESTS_INTEGRATION_HARNESS_DATACENTER_H_
#define FAULTLINE_TESTS_INTEGRATION_HARNESS_DATACENTER_H_

#include <chrono>
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "harness/agent_process.h"
#include "harness/netns.h"
#include "harness/sim_host.h"
#include "harness/subprocess.h"
#include "harness/test_dir.h"

namespace faultline::itest {

// The binary under test from FAULTLINE_CONTROLLER; an error when unset.
absl::StatusOr<std::string> ControllerBinary();

// One host to build: its name (short: its switch port is "p-<name>"), its
// address on the datacenter's /24, the labels its agent registers with, and
// further agent flags (e.g. --policy FILE).
struct DcHostSpec {
  std::string name;
  std::string ip;
  std::vector<std::pair<std::string, std::string>> labels;
  std::vector<std::string> agent_args;
};

// One host of the datacenter. Members are destroyed in reverse: the listener
// and the agent first, then the host (its PID namespace), its veth, its netns.
struct DcHost {
  DcHostSpec spec;
  const std::string& name() const { return spec.name; }
  const std::string& ip() const { return spec.ip; }
  std::string label(const std::string& key) const;
  std::unique_ptr<NetNs> ns;
  std::unique_ptr<VethPair> veth;
  std::unique_ptr<SimHost> sim;
  std::unique_ptr<AgentProcess> agent;
  std::unique_ptr<Subprocess> listener;
  TlsFiles tls;  // its agent's certificate (agent/<name>, IP SAN ip())
};

// The datacenter: a TestDir, the switch fltest-<pid>-sw (bridge "br0"), the
// controller's host "ctl" at kControllerIp, and the hosts asked for. Start()
// runs the controller and every host's agent; agents listen on a unix socket in
// the TestDir (dialled by the test) and on TCP inside their host (dialled by
// the controller), and register with the controller over TCP. The CLI reaches
// the controller through its unix socket. Owned by the test; the destructor
// removes everything (also after a failed assertion). Not thread-safe.
class Datacenter {
 public:
  static constexpr char kControllerIp[] = "10.88.0.2";
  static constexpr int kControllerPort = 7500;  // every host has its own netns: fixed ports
  static constexpr int kAgentPort = 7601;

  // Builds the switch and every host (no process but each host's init yet).
  // `label` names the TestDir; host addresses must be in 10.88.0.0/24.
  static absl::StatusOr<std::unique_ptr<Datacenter>> Create(const std::string& label,
                                                            std::vector<DcHostSpec> hosts);
  ~Datacenter();
  Datacenter(const Datacenter&) = delete;
  Datacenter& operator=(const Datacenter&) = delete;

  const TestDir& dir() const { return *dir_; }
  // The datacenter's CA and certificates (mutual TLS on every TCP link).
  const TestCerts& certs() const { return certs_; }
  // The controller's TCP address ("10.88.0.2:7500", reachable from the hosts).
  std::string ControllerTcpAddress() const;
  const std::vector<std::unique_ptr<DcHost>>& hosts() const { return hosts_; }
  // The host called `name`; nullptr if none.
  DcHost* Find(const std::string& name) const;
  std::vector<std::string> HostNames() const;

  // Starts faultline-controller in "ctl" with the test flags (mutual TLS with
  // its controller certificate, a SQLite file in the TestDir, --lease-ttl-ms
  // 2000, --heartbeat-ms 200) and `extra_flags`. Fails if one is running.
  absl::Status StartController(const std::vector<std::string>& extra_flags = {});
  // SIGKILLs the controller (if running) and reaps it.
  void StopController();
  bool ControllerRunning();
  // Starts `host`'s agent (replacing a stopped one: a fresh state dir is kept
  // per host, so a restarted agent finds its ledger).
  absl::Status StartAgent(DcHost& host);
  // A TCP listener (python3 http.server) on host.ip():port inside `host`.
  absl::Status StartListener(DcHost& host, int port);
  // The controller, every agent, and until `timeout` for all to be healthy.
  absl::Status Start(const std::vector<std::string>& controller_flags,
                     std::chrono::milliseconds timeout);

  // The CLI's argv: `faultline --controller unix:... args...`.
  std::vector<std::string> Cli(const std::vector<std::string>& args) const;
  // Polls `faultline agents -o json` until every one of `names` is healthy.
  absl::Status WaitForHealthyAgents(const std::vector<std::string>& names,
                                    std::chrono::milliseconds timeout);

  // The names of the nft tables in `host`'s network namespace that start with
  // "faultline" (`list tables` through libnftables: the nft CLI is not part of
  // the build's dependencies). A query that fails appends to `*error`.
  std::vector<std::string> FaultlineTables(const DcHost& host, std::string* error) const;
  // Whether a TCP connect from inside `from` to ip:port succeeds within `timeout_s`.
  bool Connects(DcHost& from, const std::string& ip, int port, double timeout_s = 0.5);

  std::string AgentLogs() const;
  std::string ControllerLog() const;

 private:
  Datacenter() = default;

  // Declared in creation order; destroyed in reverse.
  std::unique_ptr<TestDir> dir_;
  TestCerts certs_;
  TlsFiles controller_tls_;
  std::unique_ptr<NetNs> switch_;
  DcHost ctl_;
  std::vector<std::unique_ptr<DcHost>> hosts_;
  std::unique_ptr<Subprocess> controller_;
  std::string controller_address_;
};

// The argv of a python3 script that TCP-connects to every "NAME=IP:PORT" of
// `targets` in parallel (each within `timeout_s`) and prints "NAME ok" or
// "NAME fail" per target; run it inside a host (SimHost::Exec/Run).
std::vector<std::string> TcpConnectArgv(double timeout_s, const std::vector<std::string>& targets);
// That script's output: target name -> connected.
std::map<std::string, bool> ParseTcpConnectOutput(const std::string& out);

}  // namespace faultline::itest

#endif  // FAULTLINE_TESTS_INTEGRATION_HARNESS_DATACENTER_H_
