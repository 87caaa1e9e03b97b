// faultline-controller end to end: a real agent in a simulated host (its own
// PID and mount namespaces), a real service (python3 http.server) in it, the
// controller daemon and the faultline CLI. The agent is registered with the
// Registrar (agent/registration.h) that faultline-agent's --controller flag uses.
#include <fmt/format.h>
#include <gmock/gmock.h>
#include <google/protobuf/util/json_util.h>
#include <gtest/gtest.h>
#include <signal.h>

#include <chrono>
#include <thread>

#include "agent/registration.h"
#include "common/endpoint.h"
#include "common/status_macros.h"
#include "faultline/v1/controller.grpc.pb.h"
#include "harness/agent_process.h"
#include "harness/sim_host.h"
#include "harness/status_matchers.h"
#include "harness/subprocess.h"
#include "harness/test_dir.h"

namespace faultline::itest {
namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

absl::StatusOr<std::string> ControllerBinary() {
  const char* p = std::getenv("FAULTLINE_CONTROLLER");
  if (p == nullptr || *p == '\0') return absl::FailedPreconditionError("FAULTLINE_CONTROLLER unset");
  return std::string(p);
}

class ControllerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_OK_AND_ASSIGN(dir_, TestDir::Create("ctl"));
    ASSERT_OK_AND_ASSIGN(host_, SimHost::Create("ctl"));
    ASSERT_OK_AND_ASSIGN(int agent_port, PickFreePort());
    AgentOptions o;
    o.listen = {fmt::format("127.0.0.1:{}", agent_port)};
    // The host shares the test's network namespace (loopback): process faults only.
    ASSERT_OK(dir_->WriteFile("policy.yaml", "allowed_kinds: [kill, pause]\n"));
    // Mutual TLS everywhere: the agent serves as agent/db-1, the controller
    // dials it as controller/fltest-controller, the test and the CLI are
    // operators.
    ASSERT_OK_AND_ASSIGN(certs_, MakeTestCerts(*dir_));
    ASSERT_OK_AND_ASSIGN(agent_tls_, IssueTestCert(certs_, "agent", "db-1", {"127.0.0.1"}));
    o.args = TlsArgs(agent_tls_);
    o.args.insert(o.args.end(), {"--name", "db-1", "--label", "role=db", "--label", "zone=a",
                                 "--policy", dir_->Path("policy.yaml")});
    o.client_tls = certs_.Client();
    ASSERT_OK_AND_ASSIGN(agent_, AgentProcess::Start(*host_, *dir_, o));
    ASSERT_OK(StartController());
    RegistrationOptions r;
    r.controller = controller_address_;
    r.advertise = agent_->address();
    r.tls = agent_tls_;
    r.heartbeat = 100ms;
    r.info = [this] {
      v1::InfoResponse info;
      auto ctx = ContextWithDeadline(2s);
      (void)agent_->stub().Info(ctx.get(), v1::InfoRequest(), &info);
      return info;
    };
    ASSERT_OK_AND_ASSIGN(registrar_, Registrar::Start(r));
    ASSERT_TRUE(WaitFor([&] { return registrar_->accepted() >= 2; }, 10s));
  }

  void TearDown() override {
    registrar_.reset();
    if (controller_) controller_->KillGroup(SIGKILL);
  }

  absl::Status StartController() {
    ASSIGN_OR_RETURN(std::string bin, ControllerBinary());
    ASSIGN_OR_RETURN(int port, PickFreePort());
    controller_address_ = fmt::format("127.0.0.1:{}", port);
    SubprocessOptions so;
    so.stdout_file = dir_->Path("controller.out");
    so.stderr_file = dir_->Path("controller.err");
    std::vector<std::string> argv = {bin, "--listen", controller_address_, "--db",
                                     dir_->Path("faultline.db"), "--lease-ttl-ms", "1000",
                                     "--heartbeat-ms", "100", "--max-fleet-percent", "100"};
    for (const auto& a : TlsArgs(certs_.Controller())) argv.push_back(a);
    ASSIGN_OR_RETURN(controller_, Subprocess::Start(argv, so));
    // A fresh channel per attempt: one whose first connect was refused sits in
    // reconnect backoff (polled only every few seconds).
    std::string last;
    if (!WaitFor([&] {
          auto channel = Dial("controller", controller_address_, certs_.Client(), false);
          if (!channel.ok()) return false;
          stub_ = v1::Controller::NewStub(*channel);
          grpc::ClientContext ctx;
          ctx.set_deadline(std::chrono::system_clock::now() + 200ms);
          v1::ListAgentsResponse resp;
          grpc::Status st = stub_->ListAgents(&ctx, v1::ListAgentsRequest(), &resp);
          last = st.error_message();
          return st.ok();
        }, 10s)) {
      return absl::UnavailableError("controller did not answer (" + last + "): " +
                                    controller_->Stderr());
    }
    return absl::OkStatus();
  }

  // A python http.server on a free port inside the host.
  absl::StatusOr<HostProcess> StartService(int* port) {
    ASSIGN_OR_RETURN(*port, PickFreePort());
    ASSIGN_OR_RETURN(auto exec, host_->Exec({"/usr/bin/python3", "-m", "http.server",
                                             std::to_string(*port), "--bind", "127.0.0.1"}));
    ASSIGN_OR_RETURN(HostProcess p, host_->Find(*exec));
    services_.push_back(std::move(exec));
    return p;
  }

  std::string WriteExperiment(const std::string& name, const std::string& yaml) {
    EXPECT_OK(dir_->WriteFile(name, yaml));
    return dir_->Path(name);
  }

  std::vector<std::string> Cli(std::vector<std::string> args) {
    auto cli = CliBinary();
    EXPECT_TRUE(cli.ok());
    std::vector<std::string> argv = {*cli, "--controller", controller_address_};
    for (const auto& a : TlsArgs(certs_.Client())) argv.push_back(a);
    argv.insert(argv.end(), args.begin(), args.end());
    return argv;
  }

  std::unique_ptr<TestDir> dir_;
  TestCerts certs_;
  TlsFiles agent_tls_;
  std::unique_ptr<SimHost> host_;
  std::unique_ptr<AgentProcess> agent_;
  std::unique_ptr<Subprocess> controller_;
  std::string controller_address_;
  std::unique_ptr<v1::Controller::Stub> stub_;
  std::unique_ptr<Registrar> registrar_;
  std::vector<std::unique_ptr<Subprocess>> services_;
};

std::string PauseExperiment(int port, const std::string& duration) {
  return fmt::format(R"(
name: pause-http
targets:
  db: {{labels: {{role: db}}, count: 1}}
probes:
  - name: http
    from: controller
    http: {{url: "http://127.0.0.1:{0}/", expect_status: 200}}
    interval: 50ms
    timeout: 300ms
faults:
  - on: db
    pause: {{process: {{cmdline: "^/usr/bin/python3 -m http.server {0} "}}}}
objectives: {{rto: 30s, recovered_after: 3}}
duration: {1}
)",
                     port, duration);
}

// Waits up to 10 s for the service to answer HTTP.
bool ServiceAnswers(int port) {
  return WaitFor(
      [&] {
        return RunCommand({"/usr/bin/python3", "-c",
                           fmt::format("import urllib.request; "
                                       "urllib.request.urlopen('http://127.0.0.1:{}/')",
                                       port)},
                          5s)
            .ok();
      },
      10s);
}

bool Paused(const HostProcess& p) { return ProcessState(p.outer_pid) == 'T'; }

TEST_F(ControllerTest, AgentsListsTheRegisteredAgent) {
  CommandResult r = RunCommand(Cli({"agents", "-o", "json"}));
  ASSERT_TRUE(r.ok()) << r.Describe();
  v1::ListAgentsResponse resp;
  ASSERT_TRUE(google::protobuf::util::JsonStringToMessage(r.out, &resp).ok()) << r.out;
  ASSERT_EQ(resp.agents_size(), 1);
  EXPECT_EQ(resp.agents(0).name(), "db-1");
  EXPECT_EQ(resp.agents(0).health(), "healthy");
  EXPECT_EQ(resp.agents(0).labels().at("zone"), "a");
  EXPECT_EQ(resp.agents(0).active_faults(), 0);
}

// A pause shorter than the experiment: the service is down exactly while it
// is paused, and comes back at the revert: no failover -> fail; measured
// outage ~ the pause length.
TEST_F(ControllerTest, RunMeasuresAPauseAndStoresTheRun) {
  int port = 0;
  ASSERT_OK_AND_ASSIGN(HostProcess svc, StartService(&port));
  // Wait for the service to answer (python start-up).
  ASSERT_TRUE(ServiceAnswers(port));
  std::string file = WriteExperiment("pause.yaml", PauseExperiment(port, "1500ms"));
  CommandResult r =
      RunCommand(Cli({"run", file, "-o", "json", "--report", dir_->Path("report.md")}), 60s);
  v1::RunReport report;
  ASSERT_TRUE(google::protobuf::util::JsonStringToMessage(r.out, &report).ok())
      << r.Describe() << r.out;
  for (const char* field : {"\"run_id\"", "\"experiment\"", "\"verdict\"", "\"rto_target_ms\"",
                            "\"time_to_detect_ms\"", "\"outage_ms\"", "\"time_to_recover_ms\"",
                            "\"error_ms\"", "\"recovered_during_fault\"", "\"timeline\""}) {
    EXPECT_THAT(r.out, ::testing::HasSubstr(field));
  }
  EXPECT_EQ(report.verdict(), "fail") << report.reason();
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_TRUE(report.outage_observed());
  EXPECT_FALSE(report.recovered_during_fault());
  EXPECT_NEAR(report.outage_ms(), 1500, report.error_ms() + 300) << report.ShortDebugString();
  EXPECT_FALSE(Paused(svc));
  std::printf("pause 1500 ms: measured outage %.0f ms +/- %.0f ms, ttd %.0f ms\n",
              report.outage_ms(), report.error_ms(), report.time_to_detect_ms());
  auto md = ReadFileToString(dir_->Path("report.md"));
  ASSERT_TRUE(md.ok());
  EXPECT_THAT(*md, ::testing::HasSubstr("## Timeline"));
  // runs show from the store.
  CommandResult show = RunCommand(Cli({"runs", "show", report.run_id()}));
  ASSERT_TRUE(show.ok()) << show.Describe();
  EXPECT_THAT(show.out, ::testing::HasSubstr("injected"));
  EXPECT_THAT(show.out, ::testing::HasSubstr("FAIL"));
}

// A supervised service: killed, restarted by its supervisor after 1 s. The
// measured time to recover is the restart delay (plus the service's start-up),
// within the error; pass with a generous RTO, fail with one below the delay.
TEST_F(ControllerTest, KillAndRestartMeasuresTheSupervisorDelay) {
  ASSERT_OK_AND_ASSIGN(int port, PickFreePort());
  const std::string supervisor =
      "import subprocess, sys, time\n"
      "while True:\n"
      "    p = subprocess.Popen(['/usr/bin/python3', '-m', 'http.server', sys.argv[1],"
      " '--bind', '127.0.0.1'])\n"
      "    p.wait()\n"
      "    time.sleep(float(sys.argv[2]))\n";
  ASSERT_OK_AND_ASSIGN(auto sup, host_->Exec({"/usr/bin/python3", "-c", supervisor,
                                              std::to_string(port), "1.0"}));
  services_.push_back(std::move(sup));
  ASSERT_TRUE(ServiceAnswers(port));
  auto experiment = [&](const std::string& rto) {
    return fmt::format(R"(
name: kill-and-restart
targets:
  db: {{labels: {{role: db}}, count: 1}}
probes:
  - name: http
    from: controller
    http: {{url: "http://127.0.0.1:{0}/", expect_status: 200}}
    interval: 20ms
    timeout: 200ms
faults:
  - on: db
    kill: {{process: {{cmdline: "^/usr/bin/python3 -m http.server {0} "}}, signal: KILL}}
objectives: {{rto: {1}, recovered_after: 3}}
duration: 4s
)",
                       port, rto);
  };
  for (const auto& [rto, verdict] : {std::pair{"10s", "pass"}, std::pair{"500ms", "fail"}}) {
    ASSERT_TRUE(ServiceAnswers(port));
    std::string file = WriteExperiment("kill.yaml", experiment(rto));
    CommandResult r = RunCommand(Cli({"run", file, "-o", "json"}), 60s);
    v1::RunReport report;
    ASSERT_TRUE(google::protobuf::util::JsonStringToMessage(r.out, &report).ok())
        << r.Describe();
    EXPECT_EQ(report.verdict(), verdict) << report.reason();
    EXPECT_TRUE(report.recovered_during_fault()) << report.ShortDebugString();
    // 1 s restart delay + python's start-up (well under a second here).
    EXPECT_GE(report.time_to_recover_ms(), 1000 - report.error_ms());
    EXPECT_LE(report.time_to_recover_ms(), 1000 + report.error_ms() + 1000);
    std::printf("kill + 1.0 s restart (rto %s): time to recover %.0f ms +/- %.0f ms -> %s\n",
                rto, report.time_to_recover_ms(), report.error_ms(), report.verdict().c_str());
  }
}

TEST_F(ControllerTest, ValidateReportsEveryProblemWithItsPath) {
  std::string bad = WriteExperiment("bad.yaml", R"(
name: bad
targets:
  db: {labels: {role: db}}
probes:
  - {name: p, from: nowhere, tcp: {address: "127.0.0.1:1"}}
faults:
  - {on: ghost, pause: {process: {name: x}}, colour: red}
objectives: {rto: 1s}
duration: 5s
)");
  CommandResult r = RunCommand(Cli({"validate", bad}));
  EXPECT_EQ(r.exit_code, 1) << r.Describe();
  EXPECT_THAT(r.err, ::testing::HasSubstr("faults[0].colour: unknown field"));
  // Schema errors stop before semantics; fix the schema and see the rest.
  std::string bad2 = WriteExperiment("bad2.yaml", R"(
name: bad
targets:
  db: {labels: {role: db}}
probes:
  - {name: p, from: nowhere, tcp: {address: "127.0.0.1:1"}}
faults:
  - {on: ghost, pause: {process: {name: x}}}
objectives: {rto: 1s}
duration: 5s
)");
  r = RunCommand(Cli({"validate", bad2}));
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_THAT(r.err, ::testing::HasSubstr("probes[0].from: unknown target \"nowhere\""));
  EXPECT_THAT(r.err, ::testing::HasSubstr("faults[0].on: unknown target \"ghost\""));
  r = RunCommand(Cli({"validate", "-o", "json", bad2}));
  EXPECT_THAT(r.out, ::testing::HasSubstr("\"valid\":false"));
  std::string good = WriteExperiment("good.yaml", PauseExperiment(8080, "5s"));
  r = RunCommand(Cli({"validate", good}));
  EXPECT_TRUE(r.ok()) << r.Describe();
  EXPECT_THAT(r.out, ::testing::HasSubstr("ok"));
}

TEST_F(ControllerTest, NotSteadyWhenTheServiceIsDown) {
  ASSERT_OK_AND_ASSIGN(int port, PickFreePort());  // nothing listens there
  std::string file = WriteExperiment("down.yaml", PauseExperiment(port, "2s"));
  CommandResult r = RunCommand(Cli({"run", file, "-o", "json"}), 60s);
  v1::RunReport report;
  ASSERT_TRUE(google::protobuf::util::JsonStringToMessage(r.out, &report).ok()) << r.Describe();
  EXPECT_EQ(report.verdict(), "not_steady");
  EXPECT_EQ(report.faults_size(), 0);
}

TEST_F(ControllerTest, AbortRevertsWithinASecond) {
  int port = 0;
  ASSERT_OK_AND_ASSIGN(HostProcess svc, StartService(&port));
  ASSERT_TRUE(ServiceAnswers(port));
  std::string file = WriteExperiment("long.yaml", PauseExperiment(port, "10m"));
  SubprocessOptions so;
  so.stdout_file = dir_->Path("run.out");
  ASSERT_OK_AND_ASSIGN(auto run, Subprocess::Start(Cli({"run", file, "-o", "json"}), so));
  ASSERT_TRUE(WaitFor([&] { return Paused(svc); }, 20s));
  const auto t0 = Clock::now();
  CommandResult a = RunCommand(Cli({"abort"}));
  ASSERT_TRUE(a.ok()) << a.Describe();
  EXPECT_TRUE(WaitFor([&] { return !Paused(svc); }, 1s));
  EXPECT_LT(Clock::now() - t0, 2s);
  ASSERT_TRUE(run->Wait(10s));
  EXPECT_THAT(run->Stdout(), ::testing::HasSubstr("\"verdict\":\"aborted\""))
      << "faultline run's stderr: " << run->Stderr();
}

TEST_F(ControllerTest, SigkilledControllerLeaseLapsesAndTheAgentResumes) {
  int port = 0;
  ASSERT_OK_AND_ASSIGN(HostProcess svc, StartService(&port));
  ASSERT_TRUE(ServiceAnswers(port));
  std::string file = WriteExperiment("long.yaml", PauseExperiment(port, "10m"));
  SubprocessOptions so;
  so.stdout_file = dir_->Path("run.out");
  ASSERT_OK_AND_ASSIGN(auto run, Subprocess::Start(Cli({"run", file}), so));
  ASSERT_TRUE(WaitFor([&] { return Paused(svc); }, 20s));
  controller_->KillGroup(SIGKILL);
  ASSERT_TRUE(controller_->Wait(5s));
  const auto t0 = Clock::now();
  // Lease TTL 1 s + 5 s.
  EXPECT_TRUE(WaitFor([&] { return !Paused(svc); }, 6s));
  std::printf("resumed %.2f s after the controller died\n",
              std::chrono::duration<double>(Clock::now() - t0).count());
  run->KillGroup(SIGKILL);
  // A restarted controller marks the run interrupted.
  ASSERT_OK(StartController());
  CommandResult runs = RunCommand(Cli({"runs"}));
  EXPECT_THAT(runs.out, ::testing::HasSubstr("interrupted"));
}

}  // namespace
}  // namespace faultline::itest
