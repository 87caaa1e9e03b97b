// Accuracy against ground truth (issue 4), with network namespaces as hosts and
// agents that register themselves with the controller (--controller/--advertise):
//
//   test's namespace: faultline-controller on unix:<dir>/ctl.sock, the CLI
//   host A (netns fltest-<pid>-a, own PID+mount ns): agent "observer-1"
//       (role=observer), which runs the TCP probe across the veth
//   host B (netns fltest-<pid>-b, own PID+mount ns): agent "service-1"
//       (role=service) and the scripted-outage service on 10.77.0.2:7700
//
// The service holds the read end of a pipe whose write end only its "trigger"
// child (a copy of sleep named fl-trig) holds. The experiment's fault is a kill
// (TERM) of fl-trig by host B's agent; the service sees EOF on the pipe, closes
// its listening socket (connections are refused), reopens it exactly 700 ms
// later, and writes the true outage start/end (CLOCK_REALTIME, the clock the
// controller's timeline uses; namespaces do not change it) to a truth file.
// The measured figures must match that truth within the reported error.
#include <fmt/format.h>
#include <gmock/gmock.h>
#include <google/protobuf/util/json_util.h>
#include <gtest/gtest.h>
#include <signal.h>

#include <chrono>
#include <cmath>
#include <cstdio>
#include <sstream>
#include <thread>

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

constexpr char kServiceIp[] = "10.77.0.2";
constexpr int kServicePort = 7700;
constexpr int kOutageMs = 700;  // the truth the measurements are checked against
constexpr char kTriggerComm[] = "fl-trig";

// The scripted-outage service. argv: ADDR PORT TRIGGER_BIN TRUTH_FILE OUTAGE_S.
// Truth file lines: "ready", then one "outage DOWN_NS UP_NS MONO_NS" per
// outage (realtime down/up, and the monotonic length), written after the next
// trigger is running, so a line means "ready for the next run".
constexpr char kServiceScript[] = R"PY(
import os, select, socket, subprocess, sys, time
addr, port, trigger_bin, truth_path = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
outage_ns = int(float(sys.argv[5]) * 1e9)
truth = open(truth_path, 'a', buffering=1)

def listen():
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind((addr, port))
    s.listen(512)
    s.setblocking(False)
    return s

def spawn_trigger():
    r, w = os.pipe()
    p = subprocess.Popen([trigger_bin, 'infinity'], pass_fds=[w],
                         stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL)
    os.close(w)
    return p, r

srv = listen()
trig, r = spawn_trigger()
truth.write('ready\n')
while True:
    ready, _, _ = select.select([srv, r], [], [])
    if srv in ready:
        try:
            c, _ = srv.accept()
            c.close()
        except (BlockingIOError, ConnectionError):
            pass
    if r in ready and os.read(r, 1) == b'':
        srv.close()  # from here connections are refused
        down = time.time_ns()
        m0 = time.monotonic_ns()
        os.close(r)
        trig.wait()
        while True:
            left = m0 + outage_ns - time.monotonic_ns()
            if left <= 0:
                break
            time.sleep(left / 1e9)
        srv = listen()  # answering again
        m1 = time.monotonic_ns()
        up = time.time_ns()
        trig, r = spawn_trigger()
        truth.write('outage %d %d %d\n' % (down, up, m1 - m0))
)PY";

absl::StatusOr<std::string> ControllerBinary() {
  const char* p = std::getenv("FAULTLINE_CONTROLLER");
  if (p == nullptr || *p == '\0') return absl::FailedPreconditionError("FAULTLINE_CONTROLLER unset");
  return std::string(p);
}

struct Truth {
  int64_t down_ns = 0;
  int64_t up_ns = 0;
  int64_t mono_ns = 0;
};

// The "outage" lines of the truth file, in order.
std::vector<Truth> ReadTruth(const std::string& path) {
  std::vector<Truth> out;
  auto text = ReadFileToString(path);
  if (!text.ok()) return out;
  std::istringstream in(*text);
  std::string word;
  while (in >> word) {
    if (word != "outage") continue;
    Truth t;
    if (in >> t.down_ns >> t.up_ns >> t.mono_ns) out.push_back(t);
  }
  return out;
}

const v1::TimelineEvent* FindEvent(const v1::RunReport& report, const std::string& kind) {
  for (const auto& e : report.timeline()) {
    if (e.kind() == kind) return &e;
  }
  return nullptr;
}

class NetnsAccuracyTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_OK_AND_ASSIGN(dir_, TestDir::Create("acc"));
    ASSERT_OK_AND_ASSIGN(net_, MakeLinkedPair("a", "10.77.0.1/24", "b",
                                              fmt::format("{}/24", kServiceIp)));
    ASSERT_OK_AND_ASSIGN(host_a_, SimHost::CreateInNetns("a", *net_.a));
    ASSERT_OK_AND_ASSIGN(host_b_, SimHost::CreateInNetns("b", *net_.b));
    ASSERT_OK(StartController());
    ASSERT_OK_AND_ASSIGN(agent_b_, StartAgent(*host_b_, "service-1", "service", "agent-b.sock"));
    ASSERT_OK_AND_ASSIGN(agent_a_, StartAgent(*host_a_, "observer-1", "observer", "agent-a.sock"));
    ASSERT_OK(WaitForHealthyAgents({"observer-1", "service-1"}, 20s));
  }

  void TearDown() override {
    // The service first (it is in host B), then the controller; the rest goes
    // with the members' destructors (agents, hosts, namespaces, the dir).
    if (service_) service_->KillGroup(SIGKILL);
    if (controller_) controller_->KillGroup(SIGKILL);
  }

  absl::Status StartController() {
    ASSIGN_OR_RETURN(std::string bin, ControllerBinary());
    controller_address_ = "unix:" + dir_->Path("ctl.sock");
    SubprocessOptions so;
    so.stdout_file = dir_->Path("controller.out");
    so.stderr_file = dir_->Path("controller.err");
    ASSIGN_OR_RETURN(controller_,
                     Subprocess::Start({bin, "--listen", controller_address_, "--db",
                                        dir_->Path("faultline.db"), "--lease-ttl-ms", "2000",
                                        "--heartbeat-ms", "200"},
                                       so));
    return absl::OkStatus();
  }

  absl::StatusOr<std::unique_ptr<AgentProcess>> StartAgent(SimHost& host, const std::string& name,
                                                           const std::string& role,
                                                           const std::string& socket) {
    const std::string address = "unix:" + dir_->Path(socket);
    AgentOptions o;
    o.listen = {address};
    ASSIGN_OR_RETURN(o.state_dir, dir_->MakeSubdir("state-" + name));  // one per agent
    o.args = {"--name",       name,     "--label",     "role=" + role,
              "--controller", controller_address_, "--advertise", address};
    return AgentProcess::Start(host, *dir_, o);
  }

  std::vector<std::string> Cli(std::vector<std::string> args) {
    auto cli = CliBinary();
    EXPECT_TRUE(cli.ok());
    std::vector<std::string> argv = {cli.ok() ? *cli : "faultline", "--controller",
                                     controller_address_};
    argv.insert(argv.end(), args.begin(), args.end());
    return argv;
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
      return absl::InternalError("controller exited: " + controller_->Stderr());
    }
    if (!ok) {
      return absl::DeadlineExceededError(
          fmt::format("agents {} not healthy; last `agents`: {}\nagent A: {}\nagent B: {}",
                      fmt::join(names, ", "), last, agent_a_ ? agent_a_->Log() : "",
                      agent_b_ ? agent_b_->Log() : ""));
    }
    return absl::OkStatus();
  }

  // Starts the scripted-outage service in host B and waits until host A
  // reaches it across the veth.
  absl::Status StartService() {
    ASSIGN_OR_RETURN(std::string trigger, MakeVictimBinary(*dir_, kTriggerComm));
    truth_path_ = dir_->Path("truth.txt");
    SubprocessOptions so;
    so.stdout_file = dir_->Path("service.out");
    so.stderr_file = dir_->Path("service.err");
    ASSIGN_OR_RETURN(service_,
                     host_b_->Exec({"/usr/bin/python3", "-c", kServiceScript, kServiceIp,
                                    std::to_string(kServicePort), trigger, truth_path_,
                                    fmt::format("{:.3f}", kOutageMs / 1000.0)},
                                   so));
    if (!WaitFor(
            [&] {
              auto t = ReadFileToString(truth_path_);
              return !service_->Running() || (t.ok() && t->find("ready") != std::string::npos);
            },
            15s) ||
        !service_->Running()) {
      return absl::InternalError("service did not start: " + service_->Stderr());
    }
    const std::string connect = fmt::format(
        "import socket; socket.create_connection(('{}', {}), timeout=1).close()", kServiceIp,
        kServicePort);
    if (!WaitFor([&] { return net_.a->Run({"/usr/bin/python3", "-c", connect}, 5s).ok(); }, 10s)) {
      return absl::UnavailableError("host A cannot reach the service on " +
                                    std::string(kServiceIp));
    }
    return absl::OkStatus();
  }

  std::string Experiment(const std::string& interval) const {
    return fmt::format(R"(
name: scripted-outage-{0}
description: The service refuses connections for exactly {3} ms after its trigger dies.
targets:
  service: {{labels: {{role: service}}, count: 1}}
  observer: {{labels: {{role: observer}}, count: 1}}
probes:
  - name: tcp
    from: observer
    tcp: {{address: "{1}:{2}"}}
    interval: {0}
    timeout: 200ms
faults:
  - on: service
    kill: {{process: {{name: {4}}}, mode: one, signal: TERM}}
objectives: {{rto: 10s, recovered_after: 3}}
duration: 3s
)",
                       interval, kServiceIp, kServicePort, kOutageMs, kTriggerComm);
  }

  // Runs the experiment with probes every `interval_ms` and checks the figures
  // against the truth the service wrote.
  void RunAndCompare(int interval_ms) {
    SCOPED_TRACE(fmt::format("probe interval {} ms", interval_ms));
    const size_t outages_before = ReadTruth(truth_path_).size();
    const std::string name = fmt::format("outage-{}ms.yaml", interval_ms);
    ASSERT_OK(dir_->WriteFile(name, Experiment(fmt::format("{}ms", interval_ms))));
    CommandResult r = RunCommand(Cli({"run", dir_->Path(name), "-o", "json"}), 60s);
    v1::RunReport report;
    ASSERT_TRUE(google::protobuf::util::JsonStringToMessage(r.out, &report).ok())
        << r.Describe() << "\n" << r.out;
    ASSERT_EQ(report.verdict(), "pass") << report.reason() << "\n" << report.ShortDebugString();
    EXPECT_EQ(r.exit_code, 0) << r.Describe();
    // The service wrote the truth line when it was listening again (well
    // before the 3 s run ended); wait briefly in case of scheduling delays.
    ASSERT_TRUE(WaitFor([&] { return ReadTruth(truth_path_).size() > outages_before; }, 5s))
        << "the service saw no outage: " << service_->Stderr();
    const std::vector<Truth> truths = ReadTruth(truth_path_);
    ASSERT_EQ(truths.size(), outages_before + 1) << "one kill, one outage";
    const Truth& truth = truths.back();
    const double truth_ms = (truth.up_ns - truth.down_ns) / 1e6;

    ASSERT_TRUE(report.outage_observed()) << report.ShortDebugString();
    ASSERT_TRUE(report.recovered()) << report.ShortDebugString();
    EXPECT_TRUE(report.recovered_during_fault());
    EXPECT_DOUBLE_EQ(report.probe_interval_ms(), interval_ms);
    const v1::TimelineEvent* injected = FindEvent(report, "injected");
    const v1::TimelineEvent* start = FindEvent(report, "outage_start");
    const v1::TimelineEvent* recovered = FindEvent(report, "recovered");
    ASSERT_NE(injected, nullptr) << report.ShortDebugString();
    ASSERT_NE(start, nullptr) << report.ShortDebugString();
    ASSERT_NE(recovered, nullptr) << report.ShortDebugString();
    const double err = report.error_ms();
    // The service's own reaction (kill -> pipe EOF -> close): not Faultline's
    // figure, but the truth time_to_detect is measured against.
    const double truth_ttd_ms = (truth.down_ns - injected->unix_ns()) / 1e6;
    const double start_dev_ms = (start->unix_ns() - truth.down_ns) / 1e6;
    const double recovered_dev_ms = (recovered->unix_ns() - truth.up_ns) / 1e6;

    std::printf(
        "interval %3d ms: truth outage %.1f ms (monotonic %.1f) | measured outage_ms %.0f "
        "+/- %.0f (error_ms; clock error %.2f ms) -> deviation %+.1f ms | "
        "time_to_detect_ms %.0f (truth %.1f) | outage_start %+.1f ms, recovered %+.1f ms "
        "vs truth | time_to_recover_ms %.0f\n",
        interval_ms, truth_ms, truth.mono_ns / 1e6, report.outage_ms(), err,
        report.clock_error_ms(), report.outage_ms() - truth_ms, report.time_to_detect_ms(),
        truth_ttd_ms, start_dev_ms, recovered_dev_ms, report.time_to_recover_ms());
    std::fflush(stdout);

    // The script's outage is 700 ms give or take the scheduling of one
    // sleep/listen (it never ends early).
    EXPECT_GE(truth.mono_ns, int64_t{kOutageMs} * 1000000);
    EXPECT_LT(truth_ms, kOutageMs + 50);
    // error_ms = probe interval + clock errors (DESIGN.md, "Timing model"). It
    // must cover the interval, and the clock errors over a unix socket on one
    // machine are a few ms at most: a bound much wider than the interval would
    // make the accuracy check below meaningless. Under the sanitizers
    // (FAULTLINE_TIMING_SLACK=3) the daemons answer slower and the clock
    // errors grow with them: the allowance scales, the accuracy check not.
    const double slack = itest::TimingSlack();
    EXPECT_GE(err, interval_ms);
    EXPECT_LE(err, interval_ms + 25 * slack);
    // The issue's criterion: measured outage within error_ms of the truth.
    EXPECT_LE(std::abs(report.outage_ms() - truth_ms), err)
        << "truth " << truth_ms << " ms, measured " << report.outage_ms() << " ms";
    // Each end separately: the first failed probe starts within one interval
    // (+ clock error) after the socket closed, and the first probe of the
    // recovered run completes within one interval after it reopened.
    EXPECT_LE(std::abs(start_dev_ms), err);
    EXPECT_LE(std::abs(recovered_dev_ms), err);
    // time_to_detect = outage_start - injected; the truth is down - injected
    // (both measured from the same mapped `injected`, so its error cancels).
    // Detection can lag the real outage start by at most one interval plus the
    // probe's clock error: |ttd - truth_ttd| <= error_ms.
    EXPECT_LE(std::abs(report.time_to_detect_ms() - truth_ttd_ms), err);
    EXPECT_GE(report.time_to_detect_ms(), 0);
  }

  // Declared in creation order; destroyed in reverse.
  std::unique_ptr<TestDir> dir_;
  NetLink2 net_;
  std::unique_ptr<SimHost> host_a_;
  std::unique_ptr<SimHost> host_b_;
  std::unique_ptr<Subprocess> controller_;
  std::string controller_address_;
  std::unique_ptr<AgentProcess> agent_b_;
  std::unique_ptr<AgentProcess> agent_a_;
  std::unique_ptr<Subprocess> service_;
  std::string truth_path_;
};

TEST_F(NetnsAccuracyTest, AgentsRegisterThemselvesAcrossNamespaces) {
  CommandResult r = RunCommand(Cli({"agents", "-o", "json"}));
  ASSERT_TRUE(r.ok()) << r.Describe();
  v1::ListAgentsResponse resp;
  ASSERT_TRUE(google::protobuf::util::JsonStringToMessage(r.out, &resp).ok()) << r.out;
  ASSERT_EQ(resp.agents_size(), 2) << r.out;
  for (const auto& a : resp.agents()) {
    EXPECT_EQ(a.health(), "healthy") << a.ShortDebugString();
    EXPECT_EQ(a.labels().at("role"), a.name() == "observer-1" ? "observer" : "service");
  }
}

TEST_F(NetnsAccuracyTest, OutageMatchesTheScriptedTruthAt10msAnd100ms) {
  ASSERT_OK(StartService());
  for (int interval_ms : {10, 100}) {
    RunAndCompare(interval_ms);
    if (HasFatalFailure()) return;
  }
}

}  // namespace
}  // namespace faultline::itest
