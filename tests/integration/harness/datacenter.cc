#include "harness/datacenter.h"

#include <fmt/format.h>
#include <signal.h>
#include <unistd.h>

#include <cstdlib>
#include <sstream>

#include "agent/faults/nft/nft_session.h"
#include "common/endpoint.h"
#include "common/status_macros.h"

namespace faultline::itest {
namespace {

using namespace std::chrono_literals;

constexpr char kBridge[] = "br0";

constexpr char kConnectScript[] = R"PY(
import socket, sys, threading
timeout = float(sys.argv[1])
result = {}
def connect(name, ip, port):
    try:
        socket.create_connection((ip, int(port)), timeout=timeout).close()
        result[name] = 'ok'
    except OSError:
        result[name] = 'fail'
threads = []
for arg in sys.argv[2:]:
    name, addr = arg.split('=', 1)
    ip, port = addr.rsplit(':', 1)
    t = threading.Thread(target=connect, args=(name, ip, port))
    t.start()
    threads.append(t)
for t in threads:
    t.join()
for name in sorted(result):
    print(name, result[name])
)PY";

// Builds one host: its netns, its port on the switch, its PID/mount namespaces.
absl::Status BuildHost(const NetNs& sw, DcHost& host) {
  ASSIGN_OR_RETURN(host.ns, NetNs::Create(host.name()));
  ASSIGN_OR_RETURN(host.veth, JoinBridge(sw, kBridge, "p-" + host.name(), *host.ns, "eth0",
                                         host.ip() + "/24"));
  ASSIGN_OR_RETURN(host.sim, SimHost::CreateInNetns(host.name(), *host.ns));
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<std::string> ControllerBinary() {
  const char* p = std::getenv("FAULTLINE_CONTROLLER");
  if (p == nullptr || *p == '\0') {
    return absl::FailedPreconditionError(
        "FAULTLINE_CONTROLLER is not set (meson test sets it to the built binary)");
  }
  if (access(p, X_OK) != 0) {
    return absl::FailedPreconditionError(fmt::format("FAULTLINE_CONTROLLER={} is not executable", p));
  }
  return std::string(p);
}

std::string DcHost::label(const std::string& key) const {
  for (const auto& [k, v] : spec.labels) {
    if (k == key) return v;
  }
  return "";
}

absl::StatusOr<std::unique_ptr<Datacenter>> Datacenter::Create(const std::string& label,
                                                               std::vector<DcHostSpec> hosts) {
  std::unique_ptr<Datacenter> dc(new Datacenter());
  ASSIGN_OR_RETURN(dc->dir_, TestDir::Create(label));
  ASSIGN_OR_RETURN(dc->certs_, MakeTestCerts(*dc->dir_));
  ASSIGN_OR_RETURN(dc->controller_tls_,
                   IssueTestCert(dc->certs_, "controller", "ctl", {kControllerIp}));
  ASSIGN_OR_RETURN(dc->switch_, NetNs::Create("sw"));
  RETURN_IF_ERROR(AddBridge(*dc->switch_, kBridge));
  dc->ctl_.spec.name = "ctl";
  dc->ctl_.spec.ip = kControllerIp;
  RETURN_IF_ERROR(BuildHost(*dc->switch_, dc->ctl_));
  for (DcHostSpec& spec : hosts) {
    auto host = std::make_unique<DcHost>();
    host->spec = std::move(spec);
    ASSIGN_OR_RETURN(host->tls, IssueTestCert(dc->certs_, "agent", host->spec.name, {host->spec.ip}));
    RETURN_IF_ERROR(BuildHost(*dc->switch_, *host));
    dc->hosts_.push_back(std::move(host));
  }
  dc->controller_address_ = "unix:" + dc->dir_->Path("ctl.sock");
  return dc;
}

Datacenter::~Datacenter() {
  // The controller first; the rest goes with the members' destructors
  // (listeners, agents, hosts, veths, namespaces, the dir).
  StopController();
}

DcHost* Datacenter::Find(const std::string& name) const {
  for (const auto& host : hosts_) {
    if (host->name() == name) return host.get();
  }
  return nullptr;
}

std::vector<std::string> Datacenter::HostNames() const {
  std::vector<std::string> names;
  for (const auto& host : hosts_) names.push_back(host->name());
  return names;
}

absl::Status Datacenter::StartController(const std::vector<std::string>& extra_flags) {
  if (ControllerRunning()) return absl::FailedPreconditionError("the controller is running");
  ASSIGN_OR_RETURN(std::string bin, ControllerBinary());
  std::vector<std::string> argv = {bin,
                                   "--listen",
                                   fmt::format("{}:{}", kControllerIp, kControllerPort),
                                   "--listen",
                                   controller_address_,
                                   "--tls-cert",
                                   controller_tls_.cert,
                                   "--tls-key",
                                   controller_tls_.key,
                                   "--tls-ca",
                                   controller_tls_.ca,
                                   "--db",
                                   dir_->Path("faultline.db"),
                                   "--lease-ttl-ms",
                                   "2000",
                                   "--heartbeat-ms",
                                   "200"};
  argv.insert(argv.end(), extra_flags.begin(), extra_flags.end());
  SubprocessOptions so;
  so.stdout_file = dir_->Path("controller.out");
  so.stderr_file = dir_->Path("controller.err");
  controller_.reset();
  ASSIGN_OR_RETURN(controller_, ctl_.sim->Exec(argv, so));
  return absl::OkStatus();
}

void Datacenter::StopController() {
  if (controller_ != nullptr) controller_->Stop();
}

std::string Datacenter::ControllerTcpAddress() const {
  return fmt::format("{}:{}", kControllerIp, kControllerPort);
}

bool Datacenter::ControllerRunning() { return controller_ != nullptr && controller_->Running(); }

absl::Status Datacenter::StartAgent(DcHost& host) {
  AgentOptions o;
  o.listen = {"unix:" + dir_->Path("agent-" + host.name() + ".sock"),
              fmt::format("{}:{}", host.ip(), kAgentPort)};
  ASSIGN_OR_RETURN(o.state_dir, dir_->MakeSubdir("state-" + host.name()));
  o.args = TlsArgs(host.tls);
  o.args.insert(o.args.end(), {"--name",
            host.name(),
            "--controller",
            fmt::format("{}:{}", kControllerIp, kControllerPort),
            "--advertise",
            fmt::format("{}:{}", host.ip(), kAgentPort)});
  for (const auto& [k, v] : host.spec.labels) {
    o.args.push_back("--label");
    o.args.push_back(k + "=" + v);
  }
  o.args.insert(o.args.end(), host.spec.agent_args.begin(), host.spec.agent_args.end());
  host.agent.reset();
  ASSIGN_OR_RETURN(host.agent, AgentProcess::Start(*host.sim, *dir_, o));
  return absl::OkStatus();
}

absl::Status Datacenter::StartListener(DcHost& host, int port) {
  SubprocessOptions so;
  so.stdout_file = dir_->Path("listener-" + host.name() + ".out");
  so.stderr_file = dir_->Path("listener-" + host.name() + ".err");
  host.listener.reset();
  ASSIGN_OR_RETURN(host.listener, host.sim->Exec({"/usr/bin/python3", "-m", "http.server",
                                                  std::to_string(port), "--bind", host.ip()},
                                                 so));
  return absl::OkStatus();
}

absl::Status Datacenter::Start(const std::vector<std::string>& controller_flags,
                               std::chrono::milliseconds timeout) {
  RETURN_IF_ERROR(StartController(controller_flags));
  for (auto& host : hosts_) RETURN_IF_ERROR(StartAgent(*host));
  return WaitForHealthyAgents(HostNames(), timeout);
}

std::vector<std::string> Datacenter::Cli(const std::vector<std::string>& args) const {
  auto cli = CliBinary();
  std::vector<std::string> argv = {cli.ok() ? *cli : "faultline", "--controller",
                                   controller_address_};
  argv.insert(argv.end(), args.begin(), args.end());
  return argv;
}

absl::Status Datacenter::WaitForHealthyAgents(const std::vector<std::string>& names,
                                              std::chrono::milliseconds timeout) {
  RETURN_IF_ERROR(CliBinary().status());
  std::string last;
  const bool ok = WaitFor(
      [&] {
        if (!ControllerRunning()) return true;  // reported below
        CommandResult r = RunCommand(Cli({"agents", "-o", "json"}), 5s);
        last = r.ok() ? r.out : r.Describe();
        return r.ok() && AllAgentsHealthy(r.out, names);
      },
      timeout);
  if (!ControllerRunning()) return absl::InternalError("controller exited: " + ControllerLog());
  if (!ok) {
    return absl::DeadlineExceededError(fmt::format(
        "agents {} not healthy; last `agents`: {}\ncontroller: {}\n{}", fmt::join(names, ", "),
        last, ControllerLog(), AgentLogs()));
  }
  return absl::OkStatus();
}

std::vector<std::string> Datacenter::FaultlineTables(const DcHost& host, std::string* error) const {
  absl::StatusOr<std::string> r = agent::nft::RunNft(host.ns->path(), "list tables");
  std::vector<std::string> out;
  if (!r.ok()) {
    *error += fmt::format("{}: {}\n", host.name(), r.status().ToString());
    return out;
  }
  std::istringstream in(*r);
  std::string line;
  while (std::getline(in, line)) {
    // "table inet faultline-..."
    std::istringstream words(line);
    std::string table, family, name;
    if (words >> table >> family >> name && name.rfind("faultline", 0) == 0) out.push_back(name);
  }
  return out;
}

bool Datacenter::Connects(DcHost& from, const std::string& ip, int port, double timeout_s) {
  CommandResult r =
      from.sim->Run(TcpConnectArgv(timeout_s, {fmt::format("t={}:{}", ip, port)}), 10s);
  if (!r.ok()) return false;
  auto result = ParseTcpConnectOutput(r.out);
  return result.count("t") > 0 && result["t"];
}

std::string Datacenter::AgentLogs() const {
  std::string out;
  for (const auto& host : hosts_) {
    if (host->agent) out += fmt::format("--- agent {}:\n{}\n", host->name(), host->agent->Log());
  }
  return out;
}

std::string Datacenter::ControllerLog() const {
  auto err = ReadFileToString(dir_->Path("controller.err"));
  return err.ok() ? *err : "";
}

std::vector<std::string> TcpConnectArgv(double timeout_s, const std::vector<std::string>& targets) {
  std::vector<std::string> argv = {"/usr/bin/python3", "-c", kConnectScript,
                                   fmt::format("{}", timeout_s)};
  argv.insert(argv.end(), targets.begin(), targets.end());
  return argv;
}

std::map<std::string, bool> ParseTcpConnectOutput(const std::string& out) {
  std::map<std::string, bool> result;
  std::istringstream in(out);
  std::string name, word;
  while (in >> name >> word) result[name] = word == "ok";
  return result;
}

}  // namespace faultline::itest
