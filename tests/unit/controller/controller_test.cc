// The controller service end to end over loopback gRPC, with fake agents:
// registration and health, runs (accuracy against a scripted outage, verdicts,
// not steady, dry run, inject failure), abort, restart recovery.
#include <gmock/gmock.h>
#include <grpcpp/create_channel.h>
#include <grpcpp/server_builder.h>
#include <httplib.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <future>
#include <sstream>
#include <thread>

#include "agent/registration.h"
#include "controller/controller_service.h"
#include "controller/experiment.h"
#include "metrics/http_endpoint.h"
#include "tests/unit/metrics/exposition.h"
#include "tests/unit/controller/fake_agent.h"
#include "tests/unit/controller/test_controller.h"
#include "tests/unit/probes/redis_process.h"

namespace faultline::controller {
namespace {

using ::faultline::testing::FakeAgent;
using ::faultline::testing::ScriptedService;
using ::testing::HasSubstr;

std::vector<v1::AgentStatus> Agents(TestController& c) {
  grpc::ClientContext ctx;
  v1::ListAgentsResponse resp;
  EXPECT_TRUE(c.stub()->ListAgents(&ctx, v1::ListAgentsRequest(), &resp).ok());
  return {resp.agents().begin(), resp.agents().end()};
}

TEST(Controller, RegistrarRegistersHeartbeatsAndGoesUnhealthyWhenStopped) {
  TestController c;
  FakeAgent agent("web-1", {{"zone", "a"}}, 0, nullptr);
  RegistrationOptions o;
  o.controller = c.address();
  o.advertise = agent.address();
  o.insecure = true;
  o.heartbeat = std::chrono::milliseconds(50);
  o.info = [&] { return agent.MakeInfo(); };
  auto registrar = Registrar::Start(o);
  ASSERT_TRUE(registrar.ok()) << registrar.status();
  for (int i = 0; i < 100 && (*registrar)->accepted() < 3; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  ASSERT_GE((*registrar)->accepted(), 3);
  auto agents = Agents(c);
  ASSERT_EQ(agents.size(), 1u);
  EXPECT_EQ(agents[0].name(), "web-1");
  EXPECT_EQ(agents[0].address(), agent.address());
  EXPECT_EQ(agents[0].labels().at("zone"), "a");
  EXPECT_EQ(agents[0].health(), "healthy");
  EXPECT_EQ(agents[0].active_faults(), 0);
  registrar->reset();  // stops heartbeating
  std::this_thread::sleep_for(std::chrono::milliseconds(500));
  agents = Agents(c);
  ASSERT_EQ(agents.size(), 1u);
  EXPECT_EQ(agents[0].health(), "unhealthy");
  EXPECT_EQ(agents[0].active_faults(), -1);
}

TEST(Controller, RegistrarRejectsBadOptions) {
  RegistrationOptions o;
  o.controller = "127.0.0.1:1";
  o.insecure = true;
  o.info = [] { return v1::InfoResponse(); };
  auto r = Registrar::Start(o);
  ASSERT_FALSE(r.ok());
  EXPECT_THAT(r.status().message(), HasSubstr("--advertise"));
  o.advertise = "nonsense";
  r = Registrar::Start(o);
  ASSERT_FALSE(r.ok());
  EXPECT_THAT(r.status().message(), HasSubstr("--advertise"));
}

TEST(Controller, RegisterRequiresNameAndAddress) {
  TestController c;
  grpc::ClientContext ctx;
  v1::RegisterRequest req;
  req.mutable_info()->set_name("x");
  v1::RegisterResponse resp;
  grpc::Status st = c.stub()->Register(&ctx, req, &resp);
  EXPECT_EQ(st.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(st.error_message(), HasSubstr("address"));
}

// Established TCP connections whose local port is `port`, from /proc/net/tcp
// and tcp6 (gRPC's sockets are dual-stack): the connections an agent
// listening there has accepted.
int EstablishedTo(int port) {
  int n = 0;
  for (const char* table : {"/proc/net/tcp", "/proc/net/tcp6"}) {
    std::ifstream in(table);
    std::string line;
    std::getline(in, line);  // header
    for (int lines = 0; lines < 100000 && std::getline(in, line); ++lines) {
      std::istringstream fields(line);
      std::string slot, local, remote, state;
      fields >> slot >> local >> remote >> state;
      const size_t colon = local.rfind(':');
      if (colon == std::string::npos || state != "01") continue;
      if (std::stoi(local.substr(colon + 1), nullptr, 16) == port) ++n;
    }
  }
  return n;
}

// A registered agent is dialed at once, so a run's first calls (clock sync of
// a whole fleet) find the connection made.
TEST(Controller, RegisteredAgentIsDialedBeforeAnyCall) {
  TestController c;
  ScriptedService service;
  FakeAgent agent{"db-1", {{"role", "db"}}, 0, &service};
  const int port = std::stoi(agent.address().substr(agent.address().rfind(':') + 1));
  ASSERT_EQ(EstablishedTo(port), 0);
  c.Register(agent);
  const auto until = std::chrono::steady_clock::now() + std::chrono::seconds(5);
  while (EstablishedTo(port) == 0 && std::chrono::steady_clock::now() < until) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  EXPECT_EQ(EstablishedTo(port), 1);
}

// Registrations that would fake rows in `faultline agents` or make the
// controller dial something odd are refused naming the field, and never stored.
TEST(Controller, RegistrationFieldsAreCheckedAndRefusedOnesNeverStored) {
  TestController c;
  struct Bad {
    std::string name;
    std::string address;
    std::map<std::string, std::string> labels;
    std::string field;
  };
  const std::vector<Bad> bad = {
      {"db-1\nweb-9   10.0.0.9:7601   zone=a   healthy", "127.0.0.1:7601", {}, "info.name"},
      {"\x1b[2J\x1b[31mdb-1", "127.0.0.1:7601", {}, "info.name"},
      {"DB-1", "127.0.0.1:7601", {}, "info.name"},
      {std::string(64, 'a'), "127.0.0.1:7601", {}, "info.name"},
      {"db-1", "10.0.0.1:0", {}, "address"},
      {"db-1", "10.0.0.1", {}, "address"},
      {"db-1", "evil host:7601", {}, "address"},
      {"db-1", "unix:relative", {}, "address"},
      {"db-1", "127.0.0.1:7601", {{"zone", "a\nb"}}, "info.labels"},
      {"db-1", "127.0.0.1:7601", {{"bad key", "a"}}, "info.labels"},
  };
  for (const Bad& b : bad) {
    grpc::ClientContext ctx;
    v1::RegisterRequest req;
    req.set_address(b.address);
    req.mutable_info()->set_name(b.name);
    for (const auto& [k, v] : b.labels) (*req.mutable_info()->mutable_labels())[k] = v;
    v1::RegisterResponse resp;
    grpc::Status st = c.stub()->Register(&ctx, req, &resp);
    EXPECT_EQ(st.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << b.name << " " << b.address;
    EXPECT_THAT(st.error_message(), HasSubstr(b.field));
    EXPECT_EQ(st.error_message().find('\x1b'), std::string::npos);
  }
  EXPECT_TRUE(Agents(c).empty());
  auto stored = c.store()->ListAgents();
  ASSERT_TRUE(stored.ok());
  EXPECT_TRUE(stored->empty()) << "a refused registration reached the store";
  // Good ones still pass: a host name, IPv6, unix sockets, dotted names.
  for (const auto& [name, address] : std::vector<std::pair<std::string, std::string>>{
           {"db-1", "db-1.example:7601"}, {"db.2", "[::1]:7601"}, {"d3", "unix:/run/a.sock"}}) {
    grpc::ClientContext ctx;
    v1::RegisterRequest req;
    req.set_address(address);
    req.mutable_info()->set_name(name);
    v1::RegisterResponse resp;
    grpc::Status st = c.stub()->Register(&ctx, req, &resp);
    EXPECT_TRUE(st.ok()) << name << ": " << st.error_message();
  }
  EXPECT_EQ(Agents(c).size(), 3u);
}

// Past --max-agents, new names are refused (never stored); known agents keep
// registering and heartbeating.
TEST(Controller, RegistrationsPastMaxAgentsAreRefused) {
  TestController c(":memory:", std::chrono::milliseconds(300), /*max_agents=*/2);
  auto reg = [&c](const std::string& name, const std::string& address) {
    grpc::ClientContext ctx;
    v1::RegisterRequest req;
    req.set_address(address);
    req.mutable_info()->set_name(name);
    v1::RegisterResponse resp;
    return c.stub()->Register(&ctx, req, &resp);
  };
  EXPECT_TRUE(reg("db-1", "127.0.0.1:7601").ok());
  EXPECT_TRUE(reg("db-2", "127.0.0.1:7602").ok());
  grpc::Status third = reg("db-3", "127.0.0.1:7603");
  EXPECT_EQ(third.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED);
  EXPECT_THAT(third.error_message(), HasSubstr("--max-agents"));
  EXPECT_THAT(third.error_message(), HasSubstr("db-3"));
  EXPECT_TRUE(reg("db-1", "127.0.0.1:7601").ok()) << "a known agent is refused";
  auto stored = c.store()->ListAgents();
  ASSERT_TRUE(stored.ok());
  EXPECT_EQ(stored->size(), 2u);
}

// Rows an older controller stored without these checks are dropped at start-up.
TEST(Controller, ForgedStoredRowsAreDroppedAtStartUp) {
  const std::string db = ::testing::TempDir() + "/forged-" + std::to_string(getpid()) + ".db";
  std::filesystem::remove(db);
  {
    auto store = Store::Open(db);
    ASSERT_TRUE(store.ok());
    StoredAgent forged;
    forged.address = "127.0.0.1:1";
    forged.info.set_name("db-1\nweb-9 10.0.0.9:7601 healthy");
    ASSERT_TRUE((*store)->UpsertAgent(forged).ok());
    StoredAgent good;
    good.address = "127.0.0.1:2";
    good.info.set_name("web-1");
    good.identity = "spiffe://faultline/agent/web-1";
    ASSERT_TRUE((*store)->UpsertAgent(good).ok());
  }
  {
    TestController c(db);
    auto agents = Agents(c);
    ASSERT_EQ(agents.size(), 1u);
    EXPECT_EQ(agents[0].name(), "web-1");
    auto stored = c.store()->ListAgents();
    ASSERT_TRUE(stored.ok());
    ASSERT_EQ(stored->size(), 1u);
    EXPECT_EQ((*stored)[0].identity, "spiffe://faultline/agent/web-1");
  }
  std::filesystem::remove(db);
}

// Ground truth: the service stops answering for exactly 700 ms right after the
// injection. The measured outage must lie within error_ms of it.
void CheckAccuracy(const std::string& interval) {
  TestController c;
  Fleet f;
  f.service.outage_length_ns = 700'000'000;
  c.Register(f.victim);
  c.Register(f.observer);
  std::vector<std::string> phases;
  v1::RunReport r = c.Run(Experiment(interval, "5s", "2s"), false, &phases);
  ASSERT_EQ(r.verdict(), "pass") << r.reason();
  EXPECT_TRUE(r.recovered_during_fault());
  EXPECT_TRUE(r.outage_observed());
  EXPECT_TRUE(r.steady_after());
  EXPECT_NEAR(r.outage_ms(), 700, r.error_ms()) << "interval " << interval;
  EXPECT_NEAR(r.time_to_detect_ms(), 0, r.error_ms());
  EXPECT_NEAR(r.time_to_recover_ms(), 700, r.error_ms());
  EXPECT_GE(r.error_ms(), r.probe_interval_ms());
  EXPECT_LT(r.clock_error_ms(), 50);
  EXPECT_DOUBLE_EQ(r.rto_target_ms(), 5000);
  std::printf("interval %s: truth 700 ms, measured outage %.1f ms +/- %.1f ms, ttr %.1f ms\n",
              interval.c_str(), r.outage_ms(), r.error_ms(), r.time_to_recover_ms());
  // Leases: taken with the run id, renewed, released by RevertAll on that lease.
  EXPECT_EQ(f.victim.last_lease(), r.run_id());
  EXPECT_EQ(f.victim.last_duration(), "2s");  // the experiment's duration
  EXPECT_GE(f.victim.renewals.load(), 3);
  EXPECT_THAT(f.victim.RevertAllLeases(), ::testing::ElementsAre(r.run_id()));
  EXPECT_EQ(f.victim.ActiveFaults(), 0);
  EXPECT_EQ(f.observer.injects.load(), 0);
  // The timeline has the key events in order.
  std::vector<std::string> kinds;
  for (const auto& e : r.timeline()) {
    if (e.kind() == "injected" || e.kind() == "outage_start" || e.kind() == "recovered" ||
        e.kind() == "reverted") {
      kinds.push_back(e.kind());
    }
  }
  EXPECT_THAT(kinds, ::testing::ElementsAre("injected", "outage_start", "recovered", "reverted"));
  EXPECT_THAT(phases, ::testing::IsSupersetOf({"steady_state", "observing", "done"}));
  // Stored.
  auto stored = c.store()->GetRun(r.run_id());
  ASSERT_TRUE(stored.ok());
  EXPECT_EQ(stored->verdict(), "pass");
  EXPECT_EQ(stored->state(), "done");
  EXPECT_DOUBLE_EQ(stored->outage_ms(), r.outage_ms());
  // Metrics: the run, its recovery time, the agents by zone; nothing active now.
  const testing::Exposition m = c.Scrape();
  EXPECT_EQ(m.Value("faultline_runs_total", {{"experiment", "scripted-outage"}, {"verdict", "pass"}}), 1);
  EXPECT_EQ(m.Value("faultline_time_to_recover_seconds_count", {{"experiment", "scripted-outage"}}), 1);
  EXPECT_NEAR(m.Value("faultline_time_to_recover_seconds_sum", {{"experiment", "scripted-outage"}}),
              r.time_to_recover_ms() / 1000, 1e-9);
  // (Fake agents send no heartbeats: unhealthy by now, still one per zone.)
  for (const char* zone : {"a", "b"}) {
    EXPECT_EQ(m.Value("faultline_agents", {{"zone", zone}, {"health", "unhealthy"}}), 1) << zone;
    EXPECT_TRUE(std::isnan(m.Value("faultline_agents", {{"zone", zone}, {"health", "healthy"}})));
  }
  for (const auto& [key, v] : m.samples) {
    EXPECT_EQ(key.rfind("faultline_faults_active{", 0), std::string::npos) << key;
    EXPECT_EQ(key.find("run"), key.find("runs_total")) << "a run id as a label: " << key;
  }
}

TEST(Controller, AccuracyAt10msInterval) { CheckAccuracy("10ms"); }
TEST(Controller, AccuracyAt100msInterval) { CheckAccuracy("100ms"); }

TEST(Controller, RtoBelowTheOutageFails) {
  TestController c;
  Fleet f;
  f.service.outage_length_ns = 700'000'000;
  c.Register(f.victim);
  c.Register(f.observer);
  auto run = std::async(std::launch::async, [&] { return c.Run(Experiment("20ms", "300ms", "2s")); });
  // While it observes, the pause is an active fault in the metrics.
  double active = 0;
  const auto until = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (active == 0 && std::chrono::steady_clock::now() < until &&
         run.wait_for(std::chrono::milliseconds(50)) != std::future_status::ready) {
    const double v = c.Scrape().Value("faultline_faults_active", {{"kind", "pause"}});
    if (v == v) active = v;  // NaN: no series yet
  }
  EXPECT_EQ(active, 1);
  v1::RunReport r = run.get();
  EXPECT_EQ(r.verdict(), "fail");
  EXPECT_TRUE(r.recovered_during_fault());
  EXPECT_THAT(r.reason(), HasSubstr("exceeds the RTO"));
  const testing::Exposition m = c.Scrape();
  EXPECT_EQ(m.Value("faultline_runs_total", {{"experiment", "scripted-outage"}, {"verdict", "fail"}}), 1);
  EXPECT_TRUE(std::isnan(m.Value("faultline_faults_active", {{"kind", "pause"}})));
}

TEST(Controller, RecoveryOnlyAtRevertIsNoFailover) {
  TestController c;
  Fleet f;
  f.service.until_revert = true;
  c.Register(f.victim);
  c.Register(f.observer);
  v1::RunReport r = c.Run(Experiment("20ms", "10s", "1s"));
  EXPECT_EQ(r.verdict(), "fail");
  EXPECT_FALSE(r.recovered_during_fault());
  EXPECT_TRUE(r.recovered());
  EXPECT_NEAR(r.time_to_recover_ms(), 1000, 100 + r.error_ms());
}

TEST(Controller, NotSteadyInjectsNothing) {
  TestController c;
  Fleet f;
  f.service.broken = true;
  c.Register(f.victim);
  c.Register(f.observer);
  v1::RunReport r = c.Run(Experiment("20ms", "5s", "2s"));
  EXPECT_EQ(r.verdict(), "not_steady");
  EXPECT_THAT(r.reason(), HasSubstr("probe svc failed before injection"));
  EXPECT_EQ(f.victim.injects.load(), 0);
  EXPECT_EQ(f.victim.revert_alls.load(), 0);
}

// A probe `from: controller` runs the same probe loop as an agent's RunProbe,
// on a controller thread (a real exec probe here).
std::string ControllerProbeExperiment(const std::string& command) {
  return fmt::format(R"(
name: controller-probe
targets:
  victim: {{labels: {{role: db}}, count: 1}}
probes:
  - name: local
    from: controller
    exec: {{argv: ["{}"]}}
    interval: 50ms
    timeout: 2s
faults:
  - on: victim
    pause: {{process: {{name: victim}}}}
objectives: {{rto: 5s, recovered_after: 3}}
duration: 300ms
)",
                     command);
}

TEST(Controller, ControllerProbeFailingIsNotSteady) {
  TestController c;
  Fleet f;
  c.Register(f.victim);
  v1::RunReport r = c.Run(ControllerProbeExperiment("/bin/false"));
  EXPECT_EQ(r.verdict(), "not_steady");
  EXPECT_THAT(r.reason(), HasSubstr("probe local failed before injection"));
  EXPECT_EQ(f.victim.injects.load(), 0);
}

TEST(Controller, ControllerProbePassingRunsTheExperiment) {
  TestController c;
  Fleet f;
  c.Register(f.victim);
  v1::RunReport r = c.Run(ControllerProbeExperiment("/bin/true"));
  ASSERT_NE(r.verdict(), "not_steady") << r.reason();
  EXPECT_NE(r.verdict(), "error") << r.reason();
  EXPECT_TRUE(r.steady_after());
  EXPECT_FALSE(r.outage_observed());
  EXPECT_EQ(f.victim.injects.load(), 1);
  EXPECT_EQ(f.victim.revert_alls.load(), 1);
}

TEST(Controller, ControllerProbeOutsideTheExecPolicyIsRefused) {
  TestController c;
  Fleet f;
  c.Register(f.victim);
  v1::RunReport r = c.Run(ControllerProbeExperiment("/usr/bin/id"));
  EXPECT_EQ(r.verdict(), "error");
  EXPECT_THAT(r.reason(), HasSubstr("probe local: exec probe `/usr/bin/id` refused: not allowed "
                                    "by the exec policy"));
  EXPECT_EQ(f.victim.injects.load(), 0);
}

// How a RunExperiment call of `yaml` (as file x.yaml) ends.
grpc::Status RunStatus(TestController& c, const std::string& yaml) {
  grpc::ClientContext ctx;
  v1::RunExperimentRequest req;
  req.set_yaml(yaml);
  req.set_file("x.yaml");
  auto reader = c.stub()->RunExperiment(&ctx, req);
  v1::RunUpdate u;
  while (reader->Read(&u)) {
  }
  return reader->Finish();
}

TEST(Controller, UnknownTargetsAndBadFilesAreErrors) {
  TestController c;
  Fleet f;
  c.Register(f.observer);  // no db agent
  v1::RunReport r = c.Run(Experiment("20ms", "5s", "2s"));
  EXPECT_EQ(r.verdict(), "error");
  EXPECT_THAT(r.reason(), HasSubstr("targets.victim: 0 healthy agent(s) match"));
  EXPECT_EQ(f.observer.probe_streams.load(), 0);

  grpc::Status st = RunStatus(c, "name: x\nbogus: 1\n");
  EXPECT_EQ(st.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(st.error_message(), HasSubstr("bogus: unknown field"));
}

// An agent that refuses a probe stream at once (its exec policy) is a
// refusal, not an outage: the run ends at once in `error` naming the probe,
// the agent and its reason, rather than `not_steady` after the steady-state
// deadline.
TEST(Controller, ProbeRefusedByTheAgentEndsTheRunAtOnceInError) {
  TestController c;
  Fleet f;
  f.observer.refuse_probes = true;
  c.Register(f.victim);
  c.Register(f.observer);
  const auto start = std::chrono::steady_clock::now();
  v1::RunReport r = c.Run(Experiment("100ms", "5s", "2s"));
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(2));
  EXPECT_EQ(r.verdict(), "error");
  EXPECT_THAT(r.reason(), HasSubstr("probe svc refused: agent obs-1 ("));
  EXPECT_THAT(r.reason(), HasSubstr("PERMISSION_DENIED exec probe `/bin/sh` refused: not allowed "
                                    "by the exec policy; nothing was injected"));
  EXPECT_EQ(f.victim.injects.load(), 0);
  EXPECT_EQ(f.observer.probe_streams.load(), 1);  // not retried
}

TEST(Controller, RunExperimentYamlWithAnAliasIsRefused) {
  TestController c;
  grpc::Status st = RunStatus(c, "name: &n x\ndescription: *n\n");
  EXPECT_EQ(st.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(st.error_message(), HasSubstr("YAML aliases (*name) are not supported"));
}

TEST(Controller, RejectedInjectEndsInErrorAndReverts) {
  TestController c;
  Fleet f;
  f.victim.Reject("process.name: no process named \"victim\"");
  c.Register(f.victim);
  c.Register(f.observer);
  v1::RunReport r = c.Run(Experiment("20ms", "5s", "2s"));
  EXPECT_EQ(r.verdict(), "error");
  EXPECT_THAT(r.reason(), HasSubstr("faults[0] (pause) on agent db-1"));
  EXPECT_THAT(r.reason(), HasSubstr("no process named"));
  EXPECT_EQ(f.victim.revert_alls.load(), 1);
}

TEST(Controller, DryRunInjectsNothing) {
  TestController c;
  Fleet f;
  c.Register(f.victim);
  c.Register(f.observer);
  v1::RunReport r = c.Run(Experiment("20ms", "5s", "2s"), true);
  EXPECT_EQ(r.verdict(), "dry_run");
  ASSERT_EQ(r.faults_size(), 1);
  EXPECT_EQ(r.faults(0).agent(), "db-1");
  EXPECT_THAT(r.faults(0).changes(), ::testing::ElementsAre("would pause on db-1"));
  EXPECT_EQ(f.victim.injects.load(), 0);
  EXPECT_EQ(f.victim.dry_runs.load(), 1);
}

TEST(Controller, AbortRevertsWithinASecondAndStoresAborted) {
  TestController c;
  Fleet f;
  f.service.until_revert = true;
  c.Register(f.victim);
  c.Register(f.observer);
  auto run = std::async(std::launch::async, [&] { return c.Run(Experiment("20ms", "5s", "60s")); });
  for (int i = 0; i < 300 && f.victim.ActiveFaults() == 0; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  ASSERT_EQ(f.victim.ActiveFaults(), 1);
  const auto t0 = std::chrono::steady_clock::now();
  grpc::ClientContext ctx;
  v1::AbortResponse resp;
  ASSERT_TRUE(c.stub()->Abort(&ctx, v1::AbortRequest(), &resp).ok());
  EXPECT_EQ(resp.runs_aborted(), 1);
  EXPECT_EQ(f.victim.ActiveFaults(), 0);
  EXPECT_LT(std::chrono::steady_clock::now() - t0, std::chrono::seconds(1));
  ASSERT_EQ(run.wait_for(std::chrono::seconds(5)), std::future_status::ready);
  v1::RunReport r = run.get();
  EXPECT_EQ(r.verdict(), "aborted");
  EXPECT_EQ(c.store()->GetRun(r.run_id())->verdict(), "aborted");
  // RevertAll of everything ("") from the abort, and of the run's lease.
  EXPECT_THAT(f.victim.RevertAllLeases(), ::testing::Contains(""));
}

// A data workload through the controller, against a real redis-server without
// persistence that the test kills and starts again (empty) mid-run: the run
// reports exactly the writes the server held when it died as lost (the
// test's truth: the keys it read while the server's writes were held), and
// max_lost_writes: 0 fails a run whose RTO passed. The keys are removed.
TEST(Controller, DataWorkloadCountsTheWritesARestartedRedisLost) {
  char pattern[] = "/tmp/fltest-ctl-data-XXXXXX";
  ASSERT_NE(::mkdtemp(pattern), nullptr);
  const std::string dir = pattern;
  const int port = testing_util::FreePort();
  const std::vector<std::string> argv = {"redis-server", "--port", std::to_string(port), "--bind",
                                         "127.0.0.1", "--save", "", "--appendonly", "no",
                                         "--dir", dir};
  auto redis = std::make_unique<testing_util::RedisProcess>(argv, port);
  ASSERT_TRUE(redis->WaitReady()) << "redis-server did not start (scripts/setup installs it)";
  TestController c;
  Fleet f;
  c.Register(f.victim);
  c.Register(f.observer);
  const std::string yaml = fmt::format(R"(
name: data-loss
targets:
  victim: {{labels: {{role: db}}, count: 1}}
probes:
  - name: redis-up
    tcp: {{address: "{0}"}}
    interval: 50ms
faults:
  - on: victim
    pause: {{process: {{name: victim}}}}
data:
  - name: orders
    redis: {{address: "{0}"}}
    rate: 100/s
    read_timeout: 5s
objectives: {{rto: 10s, max_lost_writes: 0}}
duration: 2s
)",
                                       redis->address());
  auto run = std::async(std::launch::async, [&] { return c.Run(yaml); });
  for (int i = 0; i < 500 && f.victim.ActiveFaults() == 0; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  ASSERT_EQ(f.victim.ActiveFaults(), 1);
  std::this_thread::sleep_for(std::chrono::milliseconds(400));
  redis->Run({"CLIENT", "PAUSE", "5000", "WRITE"});
  const probes::RedisValue keys = redis->Run({"KEYS", "faultline:*:orders:*"});
  const size_t truth = keys.elements.size();
  redis->Kill();
  redis = std::make_unique<testing_util::RedisProcess>(argv, port);
  ASSERT_TRUE(redis->WaitReady());
  ASSERT_EQ(run.wait_for(std::chrono::seconds(30)), std::future_status::ready);
  v1::RunReport r = run.get();
  ASSERT_EQ(r.data_size(), 1) << r.verdict() << ": " << r.reason();
  const v1::DataResult& d = r.data(0);
  EXPECT_GE(truth, 20u);
  EXPECT_EQ(d.writes_lost(), static_cast<int64_t>(truth)) << d.ShortDebugString();
  EXPECT_GT(d.writes_acked(), d.writes_lost()) << "nothing acked after the restart";
  EXPECT_TRUE(d.read_stable());
  EXPECT_EQ(d.writes_unexpected(), 0);
  EXPECT_EQ(r.verdict(), "fail") << r.reason();
  EXPECT_THAT(r.reason(), HasSubstr("data orders"));
  EXPECT_THAT(r.reason(), HasSubstr("acknowledged writes lost"));
  EXPECT_EQ(c.store()->GetRun(r.run_id())->data_size(), 1) << "the figures were not stored";
  EXPECT_TRUE(redis->Run({"KEYS", "faultline:*"}).elements.empty()) << "keys left behind";
  redis.reset();
  std::error_code ignored;
  std::filesystem::remove_all(dir, ignored);
}

// A writer `from:` an agent that cannot run it (this fake agent has no
// RunDataWriter: UNIMPLEMENTED): the workload names the agent and its refusal,
// no write counts as lost, and with max_lost_writes the run fails.
TEST(Controller, DataWriterRefusedByItsAgentFailsTheRun) {
  TestController c;
  Fleet f;
  c.Register(f.victim);
  c.Register(f.observer);
  std::string yaml = Experiment("50ms", "5s", "1s");
  const std::string objectives = "recovered_after: 3}";
  yaml.replace(yaml.find(objectives), objectives.size(), "recovered_after: 3, max_lost_writes: 0}");
  yaml += R"(data:
  - name: orders
    from: observer
    redis: {address: "127.0.0.1:1"}
    read_timeout: 1s
)";
  v1::RunReport r = c.Run(yaml);
  ASSERT_EQ(r.data_size(), 1) << r.verdict() << ": " << r.reason();
  const v1::DataResult& d = r.data(0);
  EXPECT_EQ(d.from(), "obs-1");
  EXPECT_EQ(d.reads(), 0);
  EXPECT_EQ(d.writes_lost(), 0);
  EXPECT_THAT(d.error(), HasSubstr("the writer failed: agent obs-1 ("));
  EXPECT_THAT(d.error(), HasSubstr("RunDataWriter: UNIMPLEMENTED"));
  EXPECT_EQ(r.verdict(), "fail") << r.reason();
  EXPECT_THAT(r.reason(), HasSubstr("data orders: the writer failed"));
}

TEST(Controller, RunsInFlightAtStartupAreInterruptedAndReverted) {
  const std::string db = (std::filesystem::temp_directory_path() /
                          fmt::format("fltest-{}-ctl", getpid()) / "faultline.db")
                             .string();
  std::filesystem::remove_all(std::filesystem::path(db).parent_path());
  FakeAgent agent("db-1", {}, 0, nullptr);
  {
    auto store = Store::Open(db);
    ASSERT_TRUE(store.ok());
    v1::RunReport run;
    run.set_run_id("r-inflight");
    run.set_experiment("x");
    run.set_state("running");
    run.add_agents(agent.address());
    ASSERT_TRUE((*store)->SaveRun(run).ok());
  }
  {
    TestController c(db);
    for (int i = 0; i < 200 && agent.RevertAllLeases().empty(); ++i) {
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    EXPECT_THAT(agent.RevertAllLeases(), ::testing::ElementsAre("r-inflight"));
    grpc::ClientContext ctx;
    v1::GetRunRequest req;
    req.set_run_id("r-inflight");
    v1::RunReport r;
    ASSERT_TRUE(c.stub()->GetRun(&ctx, req, &r).ok());
    EXPECT_EQ(r.state(), "interrupted");
    EXPECT_EQ(r.verdict(), "interrupted");
    grpc::ClientContext ctx2;
    v1::ListRunsResponse runs;
    ASSERT_TRUE(c.stub()->ListRuns(&ctx2, v1::ListRunsRequest(), &runs).ok());
    EXPECT_EQ(runs.runs_size(), 1);
  }
  std::filesystem::remove_all(std::filesystem::path(db).parent_path());
}

}  // namespace
}  // namespace faultline::controller
