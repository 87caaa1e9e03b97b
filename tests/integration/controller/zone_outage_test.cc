// Zone outage (issue 8, "Fleet experiments"), end to end in a datacenter made of
// namespaces (DESIGN.md, "Tests and the real kernel" and "Fleet runs"):
//
//   switch   netns fltest-<pid>-sw, a bridge "br0"; one port per host
//   ctl      10.88.0.2   faultline-controller (TCP for the agents, a unix socket
//                        for the CLI in the test's namespace)
//   a1, a2   10.88.0.11, .12   zone=a
//   b1, b2   10.88.0.21, .22   zone=b
//   c1, c2   10.88.0.31, .32   zone=c
//
// Every host is a SimHost (own network, PID and mount namespaces) running its
// own faultline-agent, which registers itself (--controller/--advertise), and a
// TCP listener (python3 http.server). A connectivity matrix of real TCP
// connects, made inside each host, checks that `zone_outage: {zone: a}` cuts
// zone a off from b and c in both directions and nothing else (not the
// control channel, not a1<->a2, not b<->c), that it ends with the fault's
// duration, and that no faultline nft table is left on any host.
#include <fmt/format.h>
#include <gmock/gmock.h>
#include <google/protobuf/util/json_util.h>
#include <gtest/gtest.h>
#include <signal.h>

#include <chrono>
#include <cstdio>
#include <map>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "agent/faults/nft/nft_session.h"
#include "common/endpoint.h"
#include "common/status_macros.h"
#include "faultline/v1/controller.pb.h"
#include "harness/agent_process.h"
#include "harness/netns.h"
#include "harness/sim_host.h"
#include "harness/status_matchers.h"
#include "harness/subprocess.h"
#include "harness/test_dir.h"

namespace faultline::itest {
namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

constexpr char kBridge[] = "br0";
constexpr char kControllerIp[] = "10.88.0.2";
constexpr int kControllerPort = 7500;  // every host has its own namespace: fixed ports
constexpr int kAgentPort = 7601;
constexpr int kListenerPort = 8080;

struct HostSpec {
  const char* name;
  const char* zone;
  const char* ip;
};
constexpr HostSpec kHosts[] = {
    {"a1", "a", "10.88.0.11"}, {"a2", "a", "10.88.0.12"}, {"b1", "b", "10.88.0.21"},
    {"b2", "b", "10.88.0.22"}, {"c1", "c", "10.88.0.31"}, {"c2", "c", "10.88.0.32"},
};

// TCP connects to every "NAME=IP:PORT" argument in parallel (argv[1] is the
// timeout in seconds); prints "NAME ok" or "NAME fail" per target.
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

absl::StatusOr<std::string> ControllerBinary() {
  const char* p = std::getenv("FAULTLINE_CONTROLLER");
  if (p == nullptr || *p == '\0') return absl::FailedPreconditionError("FAULTLINE_CONTROLLER unset");
  return std::string(p);
}

// One host of the datacenter. Members are destroyed in reverse: the listener
// and the agent first, then the host (its PID namespace), its veth, its netns.
struct Host {
  std::string name;
  std::string zone;
  std::string ip;
  std::unique_ptr<NetNs> ns;
  std::unique_ptr<VethPair> veth;
  std::unique_ptr<SimHost> sim;
  std::unique_ptr<AgentProcess> agent;
  std::unique_ptr<Subprocess> listener;
};

// Source -> target name -> connected. Targets are host names and "ctl".
using Matrix = std::map<std::string, std::map<std::string, bool>>;

class ZoneOutage : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_OK_AND_ASSIGN(dir_, TestDir::Create("zone"));
    ASSERT_OK_AND_ASSIGN(switch_, NetNs::Create("sw"));
    ASSERT_OK(AddBridge(*switch_, kBridge));
    ASSERT_OK_AND_ASSIGN(ctl_.ns, NetNs::Create("ctl"));
    ASSERT_OK_AND_ASSIGN(ctl_.veth, JoinBridge(*switch_, kBridge, "p-ctl", *ctl_.ns, "eth0",
                                               fmt::format("{}/24", kControllerIp)));
    ASSERT_OK_AND_ASSIGN(ctl_.sim, SimHost::CreateInNetns("ctl", *ctl_.ns));
    ctl_.name = "ctl";
    ctl_.ip = kControllerIp;
    for (const HostSpec& spec : kHosts) {
      auto host = std::make_unique<Host>();
      host->name = spec.name;
      host->zone = spec.zone;
      host->ip = spec.ip;
      ASSERT_OK_AND_ASSIGN(host->ns, NetNs::Create(host->name));
      ASSERT_OK_AND_ASSIGN(host->veth, JoinBridge(*switch_, kBridge, "p-" + host->name, *host->ns,
                                                  "eth0", host->ip + "/24"));
      ASSERT_OK_AND_ASSIGN(host->sim, SimHost::CreateInNetns(host->name, *host->ns));
      hosts_.push_back(std::move(host));
    }
    ASSERT_OK(StartController());
    for (auto& host : hosts_) {
      ASSERT_OK_AND_ASSIGN(host->agent, StartAgent(*host));
      ASSERT_OK(StartListener(*host));
    }
    std::vector<std::string> names;
    for (const auto& host : hosts_) names.push_back(host->name);
    ASSERT_OK(WaitForHealthyAgents(names, 30s));
  }

  void TearDown() override {
    // The run and the controller first; the rest goes with the members'
    // destructors (listeners, agents, hosts, veths, namespaces, the dir).
    if (run_) run_->KillGroup(SIGKILL);
    if (controller_) controller_->KillGroup(SIGKILL);
  }

  absl::Status StartController() {
    ASSIGN_OR_RETURN(std::string bin, ControllerBinary());
    controller_address_ = "unix:" + dir_->Path("ctl.sock");
    SubprocessOptions so;
    so.stdout_file = dir_->Path("controller.out");
    so.stderr_file = dir_->Path("controller.err");
    ASSIGN_OR_RETURN(controller_,
                     ctl_.sim->Exec({bin, "--listen",
                                     fmt::format("{}:{}", kControllerIp, kControllerPort),
                                     "--listen", controller_address_, "--insecure", "--db",
                                     dir_->Path("faultline.db"), "--lease-ttl-ms", "2000",
                                     "--heartbeat-ms", "200"},
                                    so));
    return absl::OkStatus();
  }

  // The agent listens on a unix socket (dialled by the harness from the test's
  // namespace) and on TCP inside its host (dialled by the controller).
  absl::StatusOr<std::unique_ptr<AgentProcess>> StartAgent(Host& host) {
    AgentOptions o;
    o.listen = {"unix:" + dir_->Path("agent-" + host.name + ".sock"),
                fmt::format("{}:{}", host.ip, kAgentPort)};
    ASSIGN_OR_RETURN(o.state_dir, dir_->MakeSubdir("state-" + host.name));
    o.args = {"--insecure",
              "--name",
              host.name,
              "--label",
              "zone=" + host.zone,
              "--controller",
              fmt::format("{}:{}", kControllerIp, kControllerPort),
              "--advertise",
              fmt::format("{}:{}", host.ip, kAgentPort)};
    return AgentProcess::Start(*host.sim, *dir_, o);
  }

  absl::Status StartListener(Host& host) {
    SubprocessOptions so;
    so.stdout_file = dir_->Path("listener-" + host.name + ".out");
    so.stderr_file = dir_->Path("listener-" + host.name + ".err");
    ASSIGN_OR_RETURN(host.listener,
                     host.sim->Exec({"/usr/bin/python3", "-m", "http.server",
                                     std::to_string(kListenerPort), "--bind", host.ip},
                                    so));
    return absl::OkStatus();
  }

  std::vector<std::string> Cli(std::vector<std::string> args) {
    auto cli = CliBinary();
    EXPECT_TRUE(cli.ok());
    std::vector<std::string> argv = {cli.ok() ? *cli : "faultline", "--controller",
                                     controller_address_};
    argv.insert(argv.end(), args.begin(), args.end());
    return argv;
  }

  std::string AgentLogs() const {
    std::string out;
    for (const auto& host : hosts_) {
      if (host->agent) out += fmt::format("--- agent {}:\n{}\n", host->name, host->agent->Log());
    }
    return out;
  }

  std::string ControllerLog() const {
    auto err = ReadFileToString(dir_->Path("controller.err"));
    return err.ok() ? *err : "";
  }

  // Polls `faultline agents -o json` until every name is listed healthy.
  absl::Status WaitForHealthyAgents(const std::vector<std::string>& names,
                                    std::chrono::milliseconds timeout) {
    std::string last;
    const bool ok = WaitFor(
        [&] {
          if (!controller_->Running()) return true;  // reported below
          CommandResult r = RunCommand(Cli({"agents", "-o", "json"}), 5s);
          last = r.ok() ? r.out : r.Describe();
          return r.ok() && AllAgentsHealthy(r.out, names);
        },
        timeout);
    if (!controller_->Running()) {
      return absl::InternalError("controller exited: " + ControllerLog());
    }
    if (!ok) {
      return absl::DeadlineExceededError(fmt::format(
          "agents {} not healthy; last `agents`: {}\ncontroller: {}\n{}", fmt::join(names, ", "),
          last, ControllerLog(), AgentLogs()));
    }
    return absl::OkStatus();
  }

  // Every target a host's row of the matrix connects to: the other hosts'
  // listeners and the controller's TCP port.
  std::vector<std::string> Targets(const Host& from) const {
    std::vector<std::string> out;
    for (const auto& to : hosts_) {
      if (to.get() == &from) continue;
      out.push_back(fmt::format("{}={}:{}", to->name, to->ip, kListenerPort));
    }
    out.push_back(fmt::format("ctl={}:{}", kControllerIp, kControllerPort));
    return out;
  }

  // From `from`, a TCP connect to each target (0.5 s timeout each, in parallel).
  // A row that cannot be measured marks every target not connected and records
  // why in `*error`.
  static std::map<std::string, bool> ParseRow(const CommandResult& r,
                                              const std::vector<std::string>& targets,
                                              std::string* error) {
    std::map<std::string, bool> row;
    for (const auto& t : targets) row[t.substr(0, t.find('='))] = false;
    if (!r.ok()) {
      *error += r.Describe() + "\n";
      return row;
    }
    std::istringstream in(r.out);
    std::string name, result;
    while (in >> name >> result) row[name] = result == "ok";
    return row;
  }

  // The whole matrix: one python per host, all hosts at once (each row takes
  // about the connect timeout when something is cut).
  Matrix MeasureMatrix(std::string* error) {
    std::vector<std::unique_ptr<Subprocess>> runs;
    std::vector<std::vector<std::string>> targets;
    for (const auto& host : hosts_) {
      targets.push_back(Targets(*host));
      std::vector<std::string> argv = {"/usr/bin/python3", "-c", kConnectScript, "0.5"};
      argv.insert(argv.end(), targets.back().begin(), targets.back().end());
      auto run = host->sim->Exec(argv);
      if (!run.ok()) {
        *error += std::string(run.status().message()) + "\n";
        runs.push_back(nullptr);
        continue;
      }
      runs.push_back(*std::move(run));
    }
    Matrix m;
    for (size_t i = 0; i < hosts_.size(); ++i) {
      CommandResult r;
      if (runs[i] == nullptr) {
        r.start_error = "not started";
      } else if (!runs[i]->Wait(10s)) {
        runs[i]->KillGroup(SIGKILL);
        runs[i]->Wait(2s);
        r.timed_out = true;
      } else {
        r.exit_code = runs[i]->exit_code();
        r.out = runs[i]->Stdout();
        r.err = runs[i]->Stderr();
      }
      m[hosts_[i]->name] = ParseRow(r, targets[i], error);
    }
    return m;
  }

  // One connect from `from` to `to`'s listener.
  bool Connects(const Host& from, const Host& to) {
    CommandResult r =
        from.sim->Run({"/usr/bin/python3", "-c", kConnectScript, "0.5",
                       fmt::format("{}={}:{}", to.name, to.ip, kListenerPort)},
                      10s);
    return r.ok() && r.out.find(to.name + " ok") != std::string::npos;
  }

  static std::string Describe(const Matrix& m) {
    std::string out;
    for (const auto& [from, row] : m) {
      out += from + " ->";
      for (const auto& [to, ok] : row) out += fmt::format(" {}:{}", to, ok ? "ok" : "CUT");
      out += "\n";
    }
    return out;
  }

  static bool AllConnect(const Matrix& m) {
    for (const auto& [from, row] : m) {
      for (const auto& [to, ok] : row) {
        if (!ok) return false;
      }
    }
    return true;
  }

  // Waits (bounded) until every pair connects; returns the last matrix.
  Matrix WaitForFullMesh(std::chrono::seconds timeout, std::string* error) {
    Matrix m;
    const auto deadline = Clock::now() + timeout;
    for (int attempt = 0; attempt < 20; ++attempt) {
      error->clear();
      m = MeasureMatrix(error);
      if (AllConnect(m) || Clock::now() >= deadline) break;
      std::this_thread::sleep_for(200ms);
    }
    return m;
  }

  // The names of the nft tables in `host`'s network namespace that start with
  // "faultline" (`list tables` through libnftables, as the nft tests do: the
  // nft CLI is not part of the build's dependencies).
  std::vector<std::string> FaultlineTables(const Host& host, std::string* error) {
    absl::StatusOr<std::string> r = agent::nft::RunNft(host.ns->path(), "list tables");
    std::vector<std::string> out;
    if (!r.ok()) {
      *error += fmt::format("{}: {}\n", host.name, r.status().ToString());
      return out;
    }
    std::istringstream in(*r);
    std::string line;
    while (std::getline(in, line)) {
      // "table inet faultline-..."
      std::istringstream words(line);
      std::string table, family, name;
      if (words >> table >> family >> name && name.rfind("faultline", 0) == 0) {
        out.push_back(name);
      }
    }
    return out;
  }

  Host* Find(const std::string& name) const {
    for (auto& host : hosts_) {
      if (host->name == name) return host.get();
    }
    return nullptr;
  }

  std::string Experiment() const {
    return fmt::format(R"(
name: zone-outage-test
description: Zone a is cut off from zones b and c; c1 keeps reaching c2.
targets:
  observer: {{names: [c1]}}
probes:
  - name: c2-tcp
    from: observer
    tcp: {{address: "{0}:{1}"}}
    interval: 200ms
    timeout: 500ms
faults:
  - zone_outage: {{zone: a}}
    duration: 6s
objectives: {{rto: 30s}}
duration: 7s
)",
                       Find("c2") ? Find("c2")->ip : "", kListenerPort);
  }

  // Declared in creation order; destroyed in reverse.
  std::unique_ptr<TestDir> dir_;
  std::unique_ptr<NetNs> switch_;
  Host ctl_;
  std::vector<std::unique_ptr<Host>> hosts_;
  std::unique_ptr<Subprocess> controller_;
  std::string controller_address_;
  std::unique_ptr<Subprocess> run_;
};

TEST_F(ZoneOutage, CutsTheZoneBothWaysAndNothingElse) {
  const auto t0 = Clock::now();
  auto since = [&] { return std::chrono::duration<double>(Clock::now() - t0).count(); };

  // Before: the python listeners take a moment to start; then every pair connects.
  std::string error;
  Matrix before = WaitForFullMesh(15s, &error);
  ASSERT_TRUE(AllConnect(before)) << "before the fault:\n" << Describe(before) << error;
  for (auto& host : hosts_) {
    std::string err;
    EXPECT_THAT(FaultlineTables(*host, &err), ::testing::IsEmpty()) << host->name;
    EXPECT_EQ(err, "");
  }
  std::printf("[%6.2fs] before: all %zu hosts reach each other and the controller\n", since(),
              hosts_.size());

  // The run, in the background.
  ASSERT_OK(dir_->WriteFile("zone.yaml", Experiment()));
  SubprocessOptions so;
  so.stdout_file = dir_->Path("run.out");
  so.stderr_file = dir_->Path("run.err");
  ASSERT_OK_AND_ASSIGN(run_, Subprocess::Start(Cli({"run", dir_->Path("zone.yaml"), "-o", "json"}),
                                               so));
  const auto run_started = Clock::now();
  Host& a1 = *Find("a1");
  Host& b1 = *Find("b1");
  bool in_effect = false;
  for (int attempt = 0; attempt < 50 && Clock::now() - run_started < 5s; ++attempt) {
    if (!run_->Running()) break;
    if (!Connects(a1, b1)) {
      in_effect = true;
      break;
    }
    std::this_thread::sleep_for(50ms);
  }
  const double effect_s = std::chrono::duration<double>(Clock::now() - run_started).count();
  if (!in_effect) run_->Wait(30s);
  ASSERT_TRUE(in_effect) << "a1 -> b1 still connects " << effect_s
                         << " s after `faultline run` started\nrun: exit "
                         << (run_->exited() ? run_->exit_code() : -1) << "\n"
                         << run_->Stdout() << run_->Stderr() << "\ncontroller: " << ControllerLog();
  std::printf("[%6.2fs] a1 -> b1 cut %.2f s after `faultline run` started\n", since(), effect_s);

  // During: zone a is cut from b and c both ways, nothing else is.
  error.clear();
  const auto measured_at = Clock::now();
  Matrix during = MeasureMatrix(&error);
  const double matrix_s = std::chrono::duration<double>(Clock::now() - measured_at).count();
  EXPECT_EQ(error, "");
  std::printf("[%6.2fs] during (matrix took %.2f s):\n%s", since(), matrix_s,
              Describe(during).c_str());
  for (const auto& from : hosts_) {
    for (const auto& to : hosts_) {
      if (from == to) continue;
      const bool crosses = (from->zone == "a") != (to->zone == "a");
      EXPECT_EQ(during[from->name][to->name], !crosses)
          << from->name << " -> " << to->name << (crosses ? " should be cut" : " should connect");
    }
    EXPECT_TRUE(during[from->name]["ctl"])
        << from->name << " -> the controller: the control channel is never cut";
  }
  // Both sides enforce it: every agent has a faultline table while it lasts.
  for (auto& host : hosts_) {
    std::string err;
    EXPECT_THAT(FaultlineTables(*host, &err), ::testing::Not(::testing::IsEmpty()))
        << host->name << " enforces no part of the outage " << err;
  }
  std::printf("[%6.2fs] during checks done\n", since());

  // The run ends (fault 6 s, run 7 s, then the recovery check).
  ASSERT_TRUE(run_->Wait(60s)) << "the run did not finish in 60 s";
  const double run_s = std::chrono::duration<double>(Clock::now() - run_started).count();
  const std::string out = run_->Stdout();
  EXPECT_EQ(run_->exit_code(), 0) << out << run_->Stderr();
  v1::RunReport report;
  ASSERT_TRUE(google::protobuf::util::JsonStringToMessage(out, &report).ok())
      << "exit " << run_->exit_code() << "\n" << out << run_->Stderr();
  EXPECT_EQ(report.verdict(), "pass") << report.reason() << "\n" << report.ShortDebugString();
  std::set<std::string> faulted;
  for (const auto& f : report.faults()) {
    EXPECT_EQ(f.kind(), "partition") << f.ShortDebugString();
    faulted.insert(f.agent());
  }
  EXPECT_EQ(report.faults_size(), static_cast<int>(hosts_.size())) << report.ShortDebugString();
  EXPECT_THAT(faulted, ::testing::ElementsAre("a1", "a2", "b1", "b2", "c1", "c2"))
      << "one partition per agent, on both sides of the cut";
  std::printf("[%6.2fs] run finished after %.2f s: verdict %s, %d faults, start skew %.2f ms, "
              "end skew %.2f ms (clock error %.2f ms)\n",
              since(), run_s, report.verdict().c_str(), report.faults_size(), report.start_skew_ms(),
              report.end_skew_ms(), report.clock_error_ms());
  // A coordinated start and end: every agent applies at one instant and ends
  // at that instant + the duration, on its own clock.
  EXPECT_LE(report.start_skew_ms(), 20.0);
  // The end includes each agent's revert work (deleting its table), which six
  // agents on two cores do at once: a coarse bound.
  EXPECT_GT(report.end_skew_ms(), 0.0);
  EXPECT_LE(report.end_skew_ms(), 100.0);
  int reverted_by_deadline = 0;
  for (const auto& e : report.timeline()) {
    if (e.kind() == "reverted" && e.detail().find("(deadline)") != std::string::npos) ++reverted_by_deadline;
  }
  EXPECT_EQ(reverted_by_deadline, 6) << "each agent ended its part itself, at its deadline";
  for (const auto& e : report.timeline()) {
    if (e.kind() == "injected" || e.kind() == "reverted") {
      std::printf("  %s %s: %s\n", e.kind().c_str(), e.agent().c_str(), e.detail().c_str());
    }
  }

  // After: every pair connects again, and no faultline table is left.
  Matrix after = WaitForFullMesh(5s, &error);
  EXPECT_TRUE(AllConnect(after)) << "after the run:\n" << Describe(after) << error;
  for (auto& host : hosts_) {
    std::string err;
    EXPECT_THAT(FaultlineTables(*host, &err), ::testing::IsEmpty())
        << host->name << " keeps a faultline nft table";
    EXPECT_EQ(err, "");
  }
  std::printf("[%6.2fs] after: full mesh again, no faultline nft table\n", since());
  std::fflush(stdout);
}

}  // namespace
}  // namespace faultline::itest
