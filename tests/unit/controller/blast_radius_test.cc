// The blast radius: experiment limits, the controller's caps, agents held by
// runs. Refusals name the limit and the agents.
#include "controller/blast_radius.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "controller/experiment.h"

namespace faultline::controller {
namespace {

using ::testing::HasSubstr;

AgentRef Agent(const std::string& name, std::map<std::string, std::string> labels = {}) {
  return AgentRef{name, name + ":7200", std::move(labels), true};
}

RunFootprint Footprint(int affected, int registered) {
  RunFootprint run;
  for (int i = 0; i < affected; ++i) run.affected.push_back(Agent("web-" + std::to_string(i)));
  run.held = run.affected;
  run.registered = static_cast<size_t>(registered);
  return run;
}

TEST(BlastRadius, ExperimentLimitsAndFleetPercent) {
  v1::Limits none;
  FleetLimits fleet;  // 50% by default
  EXPECT_TRUE(CheckBlastRadius(none, fleet, Footprint(5, 10)).ok());
  auto st = CheckBlastRadius(none, fleet, Footprint(6, 10));
  EXPECT_EQ(st.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(st.message(), HasSubstr("--max-fleet-percent 50: the run would take out 6 of 10 "
                                      "registered agents (60%): web-0, web-1"));
  fleet.max_fleet_percent = 0;  // no cap
  EXPECT_TRUE(CheckBlastRadius(none, fleet, Footprint(10, 10)).ok());

  v1::Limits limits;
  limits.set_max_agents(3);
  EXPECT_TRUE(CheckBlastRadius(limits, fleet, Footprint(3, 10)).ok());
  EXPECT_THAT(CheckBlastRadius(limits, fleet, Footprint(4, 10)).message(),
              HasSubstr("limits.max_agents 3: the run would take out 4 of 10"));
  limits.set_max_agents(0);
  limits.set_max_percent(25);
  EXPECT_THAT(CheckBlastRadius(limits, fleet, Footprint(3, 10)).message(),
              HasSubstr("limits.max_percent 25: the run would take out 3 of 10"));
}

TEST(BlastRadius, ProtectedAgentsNeverGetAFault) {
  FleetLimits fleet;
  fleet.max_fleet_percent = 0;
  fleet.protected_labels = {{"role", "controller-db"}};
  RunFootprint run = Footprint(1, 3);
  run.held.push_back(Agent("pg-1", {{"role", "controller-db"}}));
  auto st = CheckBlastRadius(v1::Limits(), fleet, run);
  EXPECT_EQ(st.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(st.message(), HasSubstr("--protected-label: the run would give faults to protected "
                                      "agents: pg-1 (role=controller-db)"));
  auto label = ParseLabelFlag("--protected-label", "tier");
  EXPECT_THAT(label.status().message(), HasSubstr("--protected-label: expected KEY=VALUE"));
}

TEST(FleetGuard, TwoRunsNeverHoldTheSameAgentAndRunsAreCapped) {
  FleetLimits limits;
  limits.max_fleet_percent = 0;
  limits.max_concurrent_runs = 2;
  FleetGuard guard(limits);
  RunFootprint a = Footprint(2, 10);  // web-0, web-1
  ASSERT_TRUE(guard.Admit("run-a", v1::Limits(), a).ok());
  RunFootprint b;
  b.held = {Agent("web-1"), Agent("web-7")};
  b.affected = b.held;
  b.registered = 10;
  auto st = guard.Admit("run-b", v1::Limits(), b);
  EXPECT_EQ(st.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(st.message(), HasSubstr("agents held by another run: web-1 (run run-a)"));
  RunFootprint c;
  c.held = {Agent("web-8")};
  c.affected = c.held;
  c.registered = 10;
  ASSERT_TRUE(guard.Admit("run-c", v1::Limits(), c).ok());
  RunFootprint d;
  d.held = {Agent("web-9")};
  d.affected = d.held;
  d.registered = 10;
  st = guard.Admit("run-d", v1::Limits(), d);
  EXPECT_EQ(st.code(), absl::StatusCode::kResourceExhausted);
  EXPECT_THAT(st.message(), HasSubstr("--max-concurrent-runs 2: 2 runs hold agents now "
                                      "(run-a: web-0, web-1; run-c: web-8); the run would hold web-9"));
  guard.Release("run-a");
  EXPECT_TRUE(guard.Admit("run-b", v1::Limits(), b).ok());
}

TEST(BlastRadius, ExperimentFilesValidateLimits) {
  auto exp = LoadExperiment(R"(
name: x
targets:
  db: {names: [db-1]}
probes:
  - {name: p, tcp: {address: "127.0.0.1:1"}}
faults:
  - {on: db, pause: {process: {name: x}}}
limits: {max_agents: -1, max_percent: 150}
objectives: {rto: 1s}
duration: 5s
)");
  ASSERT_FALSE(exp.ok());
  EXPECT_THAT(exp.status().message(), HasSubstr("limits.max_agents: must be at least 1, got -1"));
  EXPECT_THAT(exp.status().message(),
              HasSubstr("limits.max_percent: must be above 0 and at most 100, got 150"));
}

}  // namespace
}  // namespace faultline::controller
