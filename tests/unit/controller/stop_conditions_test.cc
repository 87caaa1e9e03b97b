// Stop conditions (stop_when): the pure evaluator at its boundaries, their
// validation, and runs against in-process fake agents that a condition stops
// (every fault reverted at once, verdict `stopped`).
#include "controller/stop_conditions.h"

#include <gmock/gmock.h>
#include <grpcpp/create_channel.h>
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <map>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "controller/agent_client.h"
#include "controller/experiment.h"
#include "controller/runner.h"
#include "tests/unit/controller/fake_agent.h"

namespace faultline::controller {
namespace {

using ::faultline::testing::FakeAgent;
using ::faultline::testing::ScriptedService;
using ::testing::HasSubstr;
using Clock = std::chrono::steady_clock;

constexpr int64_t kMs = 1'000'000;

// ---- The evaluator ----

v1::Experiment WithStops(const std::vector<v1::StopCondition>& stops) {
  v1::Experiment exp;
  exp.add_probes()->set_name("web");
  exp.add_probes()->set_name("db");
  for (const auto& s : stops) *exp.add_stop_when() = s;
  return exp;
}

v1::StopCondition FailingFor(const std::string& probe, const std::string& d) {
  v1::StopCondition s;
  s.set_probe(probe);
  s.set_failing_for(d);
  return s;
}

v1::StopCondition Ratio(const std::string& probe, double r, const std::string& window) {
  v1::StopCondition s;
  s.set_probe(probe);
  s.set_failure_ratio(r);
  s.set_window(window);
  return s;
}

v1::StopCondition AgentsLost(int n) {
  v1::StopCondition s;
  s.set_agents_lost(n);
  return s;
}

TEST(StopConditions, FailingForFiresOnceTheStreakSpansIt) {
  StopConditions stops(WithStops({FailingFor("web", "300ms")}));
  stops.Arm(0);
  EXPECT_FALSE(stops.AddSample(0, 0, true));
  EXPECT_FALSE(stops.AddSample(0, 100 * kMs, false));  // the streak starts
  EXPECT_FALSE(stops.AddSample(0, 200 * kMs, false));
  EXPECT_FALSE(stops.AddSample(0, 300 * kMs, false));
  EXPECT_FALSE(stops.AddSample(0, 399 * kMs, false));  // 299 ms: not yet
  EXPECT_FALSE(stops.AddSample(1, 500 * kMs, false));  // another probe
  auto t = stops.AddSample(0, 400 * kMs, false);       // 300 ms
  ASSERT_TRUE(t);
  EXPECT_EQ(t->index, 0);
  EXPECT_EQ(t->at_ns, 400 * kMs);
  EXPECT_EQ(t->reason, "stop_when[0]: probe web failing for 0.3 s");
  ASSERT_TRUE(stops.fired());
  EXPECT_FALSE(stops.AddSample(0, 500 * kMs, false));  // fires once
  EXPECT_EQ(stops.fired()->at_ns, 400 * kMs);
}

TEST(StopConditions, FailingForRestartsAfterASuccess) {
  StopConditions stops(WithStops({FailingFor("web", "300ms")}));
  stops.Arm(0);
  EXPECT_FALSE(stops.AddSample(0, 100 * kMs, false));
  EXPECT_FALSE(stops.AddSample(0, 300 * kMs, false));
  EXPECT_FALSE(stops.AddSample(0, 350 * kMs, true));   // a success breaks it
  EXPECT_FALSE(stops.AddSample(0, 400 * kMs, false));  // 0 ms
  EXPECT_FALSE(stops.AddSample(0, 699 * kMs, false));
  // A success stamped (at its completion) before the streak does not break it.
  EXPECT_FALSE(stops.AddSample(0, 390 * kMs, true));
  EXPECT_TRUE(stops.AddSample(0, 700 * kMs, false));
}

TEST(StopConditions, NothingCountsBeforeTheSteadyState) {
  StopConditions stops(WithStops({FailingFor("web", "100ms")}));
  EXPECT_FALSE(stops.AddSample(0, 0, false));  // not armed
  EXPECT_FALSE(stops.AddSample(0, 500 * kMs, false));
  stops.Arm(1000 * kMs);
  EXPECT_FALSE(stops.AddSample(0, 900 * kMs, false));  // stamped before it
  EXPECT_FALSE(stops.AddSample(0, 1000 * kMs, false));
  EXPECT_FALSE(stops.AddSample(0, 1050 * kMs, false));
  stops.Disarm();
  EXPECT_FALSE(stops.AddSample(0, 1200 * kMs, false));
  EXPECT_FALSE(stops.fired());
}

TEST(StopConditions, RatioFiresOnlyOnceTheWindowIsCoveredAndAtTheRatio) {
  StopConditions stops(WithStops({Ratio("db", 0.5, "1s")}));
  stops.Arm(0);
  // All failing, but the samples since the steady state span 900 ms < 1 s.
  for (int64_t t = 0; t <= 900; t += 100) EXPECT_FALSE(stops.AddSample(1, t * kMs, false));
  auto t = stops.AddSample(1, 1000 * kMs, false);  // (0, 1000]: 10 of 10
  ASSERT_TRUE(t);
  EXPECT_EQ(t->at_ns, 1000 * kMs);
  EXPECT_EQ(t->reason,
            "stop_when[0]: probe db failed 10 of 10 samples (100%) in the last 1.0 s "
            "(failure_ratio 0.5)");
}

TEST(StopConditions, RatioBoundary) {
  // 4 of 10 failed in the window: not yet; the 5th: fires.
  StopConditions stops(WithStops({Ratio("web", 0.5, "1s")}));
  stops.Arm(0);
  for (int64_t t = 0; t <= 1000; t += 100) {
    const bool ok = !(t == 200 || t == 400 || t == 600 || t == 800);
    EXPECT_FALSE(stops.AddSample(0, t * kMs, ok)) << t;
  }
  // Window (100, 1100]: 200 400 600 800 failed + 1100 ok = 4 of 10.
  EXPECT_FALSE(stops.AddSample(0, 1100 * kMs, true));
  // Window (200, 1200]: 400 600 800 1200 = 4 of 10 (200 left the window).
  EXPECT_FALSE(stops.AddSample(0, 1200 * kMs, false));
  // Window (300, 1300]: 400 600 800 1200 1300 = 5 of 10.
  auto t = stops.AddSample(0, 1300 * kMs, false);
  ASSERT_TRUE(t);
  EXPECT_THAT(t->reason, HasSubstr("failed 5 of 10 samples (50%)"));
}

TEST(StopConditions, AgentsLostCountsTheAgentsWhoseLastRenewalFailed) {
  StopConditions stops(WithStops({AgentsLost(2)}));
  stops.Arm(0);
  EXPECT_FALSE(stops.AgentReachable("a", true, 1));
  EXPECT_FALSE(stops.AgentReachable("b", false, 2, "UNAVAILABLE"));
  EXPECT_FALSE(stops.AgentReachable("b", false, 3, "UNAVAILABLE"));  // still one agent
  EXPECT_FALSE(stops.AgentReachable("b", true, 4));                  // back
  EXPECT_FALSE(stops.AgentReachable("a", false, 5, "DEADLINE_EXCEEDED"));
  auto t = stops.AgentReachable("b", false, 6, "UNAVAILABLE");
  ASSERT_TRUE(t);
  EXPECT_EQ(t->at_ns, 6);
  EXPECT_EQ(t->reason,
            "stop_when[0]: 2 target agents lost: a (DEADLINE_EXCEEDED), b (UNAVAILABLE)");
}

TEST(StopConditions, TheFirstConditionToFireIsTheOne) {
  StopConditions stops(WithStops({FailingFor("db", "1s"), AgentsLost(1)}));
  EXPECT_FALSE(stops.empty());
  stops.Arm(0);
  EXPECT_FALSE(stops.AddSample(1, 0, false));
  auto t = stops.AgentReachable("x", false, 10, "UNAVAILABLE");
  ASSERT_TRUE(t);
  EXPECT_EQ(t->index, 1);
  EXPECT_EQ(t->reason, "stop_when[1]: 1 target agent lost: x (UNAVAILABLE)");
  EXPECT_FALSE(stops.AddSample(1, 2000 * kMs, false));
  EXPECT_EQ(stops.fired()->index, 1);
  EXPECT_TRUE(StopConditions(WithStops({})).empty());
}

// ---- Validation ----

std::string WithStopWhen(const std::string& stop_when) {
  return R"(
name: stops
targets:
  web: {labels: {role: web}}
probes:
  - name: web-http
    http: {url: "http://127.0.0.1:9/"}
  - name: checkout
    tcp: {address: "127.0.0.1:9"}
faults:
  - on: web
    pause: {process: {name: web}}
objectives: {rto: 5s}
duration: 1m
stop_when:
)" + stop_when;
}

std::string Problems(const std::string& stop_when) {
  auto exp = LoadExperiment(WithStopWhen(stop_when));
  return exp.ok() ? "" : std::string(exp.status().message());
}

TEST(StopConditionsValidation, TheIssuesExampleIsValid) {
  auto exp = LoadExperiment(WithStopWhen(R"(
  - {probe: web-http, failing_for: 30s}
  - {probe: checkout, failure_ratio: 0.5, window: 1m}
  - {agents_lost: 1}            # target agents the controller can no longer reach
)"));
  ASSERT_TRUE(exp.ok()) << exp.status();
  ASSERT_EQ(exp->stop_when_size(), 3);
  EXPECT_TRUE(exp->stop_when(1).has_failure_ratio());
  EXPECT_DOUBLE_EQ(exp->stop_when(1).failure_ratio(), 0.5);
  EXPECT_EQ(exp->stop_when(2).agents_lost(), 1);
  EXPECT_EQ(Problems("  - {probe: checkout, failure_ratio: 1, window: 10ms}\n"), "");
}

TEST(StopConditionsValidation, EveryProblemWithItsPath) {
  EXPECT_THAT(Problems("  - {probe: checkout, failure_ratio: 0.5}\n"),
              HasSubstr("stop_when[0].window: required with failure_ratio"));
  EXPECT_THAT(Problems("  - {probe: checkout, window: 1m}\n"),
              HasSubstr("stop_when[0].failure_ratio: required with window"));
  EXPECT_THAT(Problems("  - {probe: checkout}\n"),
              HasSubstr("stop_when[0]: needs one of failing_for, failure_ratio with window, or "
                        "agents_lost"));
  EXPECT_THAT(Problems("  - {probe: web-http, failing_for: 30s, agents_lost: 1}\n"),
              HasSubstr("stop_when[0]: failing_for, failure_ratio with window and agents_lost "
                        "are exclusive"));
  EXPECT_THAT(Problems("  - {probe: web-http, failing_for: 30s, failure_ratio: 0.5, window: 1m}\n"),
              HasSubstr("are exclusive"));
  EXPECT_THAT(Problems("  - {failing_for: 30s}\n"),
              HasSubstr("stop_when[0].probe: required (probes: web-http, checkout)"));
  EXPECT_THAT(Problems("  - {probe: nope, failing_for: 30s}\n"),
              HasSubstr("stop_when[0].probe: unknown probe \"nope\" (probes: web-http, checkout)"));
  EXPECT_THAT(Problems("  - {probe: web-http, agents_lost: 1}\n"),
              HasSubstr("stop_when[0].probe: not with agents_lost"));
  EXPECT_THAT(Problems("  - {agents_lost: -1}\n"),
              HasSubstr("stop_when[0].agents_lost: must be at least 1, got -1"));
  EXPECT_THAT(Problems("  - {probe: web-http, failing_for: 0s}\n"),
              HasSubstr("stop_when[0].failing_for: must be above 0"));
  EXPECT_THAT(Problems("  - {probe: web-http, failing_for: soon}\n"),
              HasSubstr("stop_when[0].failing_for"));
  EXPECT_THAT(Problems("  - {probe: checkout, failure_ratio: 0.5, window: 0ms}\n"),
              HasSubstr("stop_when[0].window: must be above 0"));
  EXPECT_THAT(Problems("  - {probe: checkout, failure_ratio: 0, window: 1m}\n"),
              HasSubstr("stop_when[0].failure_ratio: must be above 0 and at most 1, got 0"));
  EXPECT_THAT(Problems("  - {probe: checkout, failure_ratio: 1.5, window: 1m}\n"),
              HasSubstr("stop_when[0].failure_ratio: must be above 0 and at most 1, got 1.5"));
  // Every entry is checked, each under its own index.
  const std::string both = Problems(
      "  - {agents_lost: 1}\n  - {probe: checkout, failure_ratio: 0.5}\n  - {failing_for: 1s}\n");
  EXPECT_THAT(both, HasSubstr("stop_when[1].window: required with failure_ratio"));
  EXPECT_THAT(both, HasSubstr("stop_when[2].probe: required"));
  EXPECT_THAT(both, ::testing::Not(HasSubstr("stop_when[0]")));
}

// ---- Runs against fake agents ----

struct StopFleet {
  explicit StopFleet(int web_agents = 1) {
    for (int i = 0; i < web_agents; ++i) {
      web.push_back(std::make_unique<FakeAgent>(
          fmt::format("web-{}", i), std::map<std::string, std::string>{{"role", "web"}}, 0,
          &service));
    }
  }
  std::vector<AgentRef> Refs() {
    std::vector<AgentRef> refs;
    for (auto& a : web) refs.push_back({a->name(), a->address(), {{"role", "web"}}, true});
    refs.push_back({observer.name(), observer.address(), {{"role", "obs"}}, true});
    return refs;
  }

  ScriptedService service;
  std::vector<std::unique_ptr<FakeAgent>> web;
  // Skewed: the trigger times are mapped onto the controller's clock.
  FakeAgent observer{"obs", {{"role", "obs"}}, 2'000'000'000, &service};
  AgentClients clients{[](const std::string& address)
                           -> absl::StatusOr<std::shared_ptr<grpc::Channel>> {
    return grpc::CreateChannel(address, grpc::InsecureChannelCredentials());
  }};
};

std::string RunExperiment(const std::string& duration, const std::string& stop_when) {
  return fmt::format(R"(
name: stop-me
targets:
  web: {{labels: {{role: web}}}}
  observer: {{labels: {{role: obs}}}}
probes:
  - name: svc
    from: observer
    tcp: {{address: "127.0.0.1:9"}}
    interval: 20ms
faults:
  - on: web
    pause: {{process: {{name: web}}}}
objectives: {{rto: 5s, recovered_after: 2}}
duration: {}
stop_when:
{}
)",
                     duration, stop_when);
}

// Runs `yaml`; `on_observe` is called (on its own thread) once the run observes.
v1::RunReport RunOn(StopFleet& f, const std::string& yaml, std::chrono::milliseconds* took,
                    std::function<void()> on_observe = nullptr,
                    std::chrono::milliseconds lease_ttl = std::chrono::milliseconds(600)) {
  auto exp = LoadExperiment(yaml);
  EXPECT_TRUE(exp.ok()) << exp.status();
  RunnerOptions o;
  o.lease_ttl = lease_ttl;  // renewed every third of it
  o.steady_after_timeout = std::chrono::milliseconds(3000);
  o.steady_slack = std::chrono::milliseconds(2000);
  std::atomic<bool> observing{false};
  std::thread helper;
  ExperimentRun run(NewRunId(), *exp, false, f.Refs(), o, &f.clients, /*store=*/nullptr,
                    [&](const v1::RunProgress& p) {
                      if (p.phase() != "observing" || observing.exchange(true)) return;
                      if (on_observe) helper = std::thread(on_observe);
                    });
  const auto start = Clock::now();
  v1::RunReport r = run.Execute();
  *took = std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - start);
  if (helper.joinable()) helper.join();
  return r;
}

// The index of the first timeline event of `kind` (for `agent` if given), or -1.
int EventAt(const v1::RunReport& r, const std::string& kind, const std::string& agent = "") {
  for (int i = 0; i < r.timeline_size(); ++i) {
    if (r.timeline(i).kind() == kind && (agent.empty() || r.timeline(i).agent() == agent)) return i;
  }
  return -1;
}

TEST(StopConditionsRun, AProbeFailingForTooLongStopsTheRun) {
  StopFleet f(2);
  f.service.until_revert = true;  // down from the injection until the revert
  std::chrono::milliseconds took{0};
  v1::RunReport r = RunOn(f, RunExperiment("20s", "  - {probe: svc, failing_for: 300ms}"), &took);
  ASSERT_EQ(r.verdict(), "stopped") << r.reason();
  EXPECT_EQ(r.reason(), "stop_when[0]: probe svc failing for 0.3 s; faults reverted");
  EXPECT_LT(took, std::chrono::seconds(8));  // not the 20 s duration
  for (auto& a : f.web) {
    EXPECT_EQ(a->ActiveFaults(), 0);
    EXPECT_EQ(a->revert_alls.load(), 1);
  }
  const int stopped = EventAt(r, "stopped");
  ASSERT_GE(stopped, 0);
  EXPECT_EQ(r.timeline(stopped).detail(), "stop_when[0]: probe svc failing for 0.3 s");
  const int injected = EventAt(r, "injected");
  ASSERT_GE(injected, 0);
  EXPECT_LT(injected, stopped);
  // At the trigger: 300 ms of failures after the outage began (at the injection).
  const double after_inject = r.timeline(stopped).at_ms() - r.timeline(injected).at_ms();
  EXPECT_GE(after_inject, 300.0 - r.error_ms());
  EXPECT_LT(after_inject, 1500.0);
  for (auto& a : f.web) {
    const int reverted = EventAt(r, "reverted", a->name());
    ASSERT_GE(reverted, 0) << a->name();
    EXPECT_LT(stopped, reverted);
  }
  // Figures as far as they exist: the outage was seen, and it ended with the revert.
  EXPECT_TRUE(r.outage_observed());
  EXPECT_GT(r.outage_ms(), 0.0);
  EXPECT_TRUE(r.steady_after());
}

TEST(StopConditionsRun, AFailureRatioOverTheWindowStopsTheRun) {
  StopFleet f;
  f.service.outage_length_ns = 400'000'000;  // 400 ms down, then up again
  std::chrono::milliseconds took{0};
  v1::RunReport r = RunOn(
      f, RunExperiment("20s", "  - {probe: svc, failure_ratio: 0.5, window: 500ms}"), &took);
  ASSERT_EQ(r.verdict(), "stopped") << r.reason();
  EXPECT_THAT(r.reason(), HasSubstr("stop_when[0]: probe svc failed "));
  EXPECT_THAT(r.reason(), HasSubstr("in the last 0.5 s (failure_ratio 0.5); faults reverted"));
  EXPECT_LT(took, std::chrono::seconds(8));
  EXPECT_EQ(f.web[0]->ActiveFaults(), 0);
  EXPECT_EQ(f.web[0]->revert_alls.load(), 1);
  const int stopped = EventAt(r, "stopped");
  ASSERT_GE(stopped, 0);
  EXPECT_LT(stopped, EventAt(r, "reverted", "web-0"));
}

TEST(StopConditionsRun, ConditionsThatDoNotHoldLetTheRunEnd) {
  StopFleet f;
  f.service.outage_length_ns = 200'000'000;  // 200 ms down: 10 of 50 samples in 1 s
  std::chrono::milliseconds took{0};
  v1::RunReport r = RunOn(f,
                          RunExperiment("1500ms", "  - {probe: svc, failing_for: 600ms}\n"
                                                  "  - {probe: svc, failure_ratio: 0.5, window: 1s}\n"
                                                  "  - {agents_lost: 1}"),
                          &took, nullptr,
                          // Renewals with room to spare on a busy machine.
                          std::chrono::milliseconds(1500));
  EXPECT_EQ(r.verdict(), "pass") << r.reason();
  EXPECT_EQ(EventAt(r, "stopped"), -1);
  EXPECT_EQ(f.web[0]->ActiveFaults(), 0);
}

TEST(StopConditionsRun, ALostTargetAgentStopsTheRun) {
  StopFleet f(2);
  std::chrono::milliseconds took{0};
  v1::RunReport r = RunOn(f, RunExperiment("20s", "  - {agents_lost: 1}"), &took, [&] {
    std::this_thread::sleep_for(std::chrono::milliseconds(300));
    f.web[1]->Stop();  // its renewals fail from now on
  });
  ASSERT_EQ(r.verdict(), "stopped") << r.reason();
  EXPECT_THAT(r.reason(), HasSubstr("stop_when[0]: 1 target agent lost: web-1 ("));
  EXPECT_LT(took, std::chrono::seconds(8));
  // The reachable agent is reverted at once; the lost one is told in vain (its
  // lease lapses by itself).
  EXPECT_EQ(f.web[0]->ActiveFaults(), 0);
  EXPECT_EQ(f.web[0]->revert_alls.load(), 1);
  const int stopped = EventAt(r, "stopped");
  ASSERT_GE(stopped, 0);
  EXPECT_LT(stopped, EventAt(r, "reverted", "web-0"));
  EXPECT_GE(EventAt(r, "revert_failed", "web-1"), 0);
}

}  // namespace
}  // namespace faultline::controller
