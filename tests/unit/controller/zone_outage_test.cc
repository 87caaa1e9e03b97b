// The zone outage's rules and its expansion into agent faults on both sides.
#include "controller/zone_outage.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "controller/experiment.h"

namespace faultline::controller {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

AgentRef Agent(const std::string& name, const std::string& address, const std::string& zone,
               bool healthy = true) {
  return AgentRef{name, address, {{"zone", zone}, {"role", "db"}}, healthy};
}

std::vector<AgentRef> Fleet() {
  return {Agent("a1", "10.20.1.10:7200", "a"), Agent("a2", "10.20.1.11:7200", "a"),
          Agent("b1", "10.20.2.10:7200", "b"), Agent("c1", "10.20.3.10:7200", "c"),
          Agent("c2", "10.20.3.11:7200", "c", /*healthy=*/false)};
}

std::vector<std::string> Peers(const v1::FaultSpec& spec) {
  return {spec.partition().peers().begin(), spec.partition().peers().end()};
}

TEST(ZoneOutage, BothSidesCutEachOther) {
  v1::ZoneOutageFault outage;
  outage.set_zone("a");
  outage.add_extra_peers("10.20.9.0/24");
  outage.add_keep("10.20.0.53/32");
  auto parts = ExpandZoneOutage(outage, "60s", Fleet());
  ASSERT_TRUE(parts.ok()) << parts.status();
  // a1, a2 inside; b1, c1 outside; c2 is unhealthy: cut from, but not injected on.
  ASSERT_EQ(parts->size(), 4u);
  EXPECT_EQ((*parts)[0].agent.name, "a1");
  EXPECT_EQ((*parts)[0].role, "zone a");
  EXPECT_THAT(Peers((*parts)[0].spec),
              ElementsAre("10.20.2.10", "10.20.3.10", "10.20.3.11", "10.20.9.0/24"));
  EXPECT_THAT((*parts)[0].spec.partition().keep(), ElementsAre("10.20.0.53/32"));
  EXPECT_EQ((*parts)[0].spec.duration(), "60s");
  EXPECT_EQ((*parts)[1].agent.name, "a2");
  EXPECT_EQ((*parts)[2].agent.name, "b1");
  EXPECT_EQ((*parts)[2].role, "outside zone a");
  EXPECT_THAT(Peers((*parts)[2].spec), ElementsAre("10.20.1.10", "10.20.1.11"));
  EXPECT_EQ((*parts)[3].agent.name, "c1");
}

TEST(ZoneOutage, PowerModeStopsTheZonesServicesToo) {
  v1::ZoneOutageFault outage;
  outage.set_zone("a");
  outage.set_mode(v1::ZONE_OUTAGE_MODE_POWER);
  outage.add_services()->mutable_process()->set_name("redis-server");
  auto parts = ExpandZoneOutage(outage, "30s", Fleet());
  ASSERT_TRUE(parts.ok()) << parts.status();
  ASSERT_EQ(parts->size(), 6u);  // a1: partition + pause, a2: partition + pause, b1, c1
  EXPECT_TRUE((*parts)[1].spec.has_pause());
  EXPECT_EQ((*parts)[1].spec.pause().process().name(), "redis-server");
  EXPECT_EQ((*parts)[1].spec.pause().mode(), v1::SELECTION_MODE_ALL);
  EXPECT_EQ((*parts)[1].spec.duration(), "30s");

  outage.set_action(v1::POWER_ACTION_KILL);
  parts = ExpandZoneOutage(outage, "30s", Fleet());
  ASSERT_TRUE(parts.ok()) << parts.status();
  EXPECT_TRUE((*parts)[1].spec.has_kill());
  EXPECT_EQ((*parts)[1].spec.kill().signal(), "KILL");
  EXPECT_TRUE((*parts)[1].spec.duration().empty());
}

TEST(ZoneOutage, RefusesWhatCannotBeCut) {
  v1::ZoneOutageFault outage;
  outage.set_zone("z");
  EXPECT_THAT(ExpandZoneOutage(outage, "1m", Fleet()).status().message(),
              HasSubstr("no registered agent has the label zone=z"));
  outage.set_zone("a");
  EXPECT_THAT(ExpandZoneOutage(outage, "1m", {Agent("a1", "10.20.1.10:7200", "a")}).status().message(),
              HasSubstr("nothing to cut it from"));
  EXPECT_THAT(ExpandZoneOutage(outage, "1m", {Agent("a1", "10.20.1.10:7200", "a"),
                                              Agent("b1", "db.example:7200", "b")})
                  .status()
                  .message(),
              HasSubstr("agent b1 advertises \"db.example:7200\", not an IP address"));
  EXPECT_THAT(ExpandZoneOutage(outage, "1m", {Agent("a1", "10.20.1.10:7200", "a"),
                                              Agent("b1", "10.20.1.10:7201", "b")})
                  .status()
                  .message(),
              HasSubstr("10.20.1.10 is the address of agents inside and outside zone=a"));
}

TEST(ZoneOutage, ExperimentFilesTakeItWithoutOn) {
  const std::string base = R"(
name: z
probes:
  - {name: p, tcp: {address: "127.0.0.1:1"}}
objectives: {rto: 10s}
duration: 1m
faults:
)";
  auto exp = LoadExperiment(base + "  - {zone_outage: {zone: a, keep: [10.0.0.0/8]}, duration: 30s}\n");
  ASSERT_TRUE(exp.ok()) << exp.status();
  EXPECT_EQ(exp->faults(0).zone_outage().zone(), "a");

  exp = LoadExperiment(base + "  - {on: x, zone_outage: {label: rack, extra_peers: [bad]}}\n");
  ASSERT_FALSE(exp.ok());
  const std::string msg(exp.status().message());
  EXPECT_THAT(msg, HasSubstr("faults[0].on: a zone_outage picks its agents by their zone label"));
  EXPECT_THAT(msg, HasSubstr("faults[0].zone_outage.zone: required"));

  exp = LoadExperiment(base + "  - {zone_outage: {zone: a, mode: POWER}}\n");
  ASSERT_FALSE(exp.ok());
  EXPECT_THAT(exp.status().message(), HasSubstr("faults[0].zone_outage.services: mode power needs"));

  exp = LoadExperiment(base + "  - {zone_outage: {zone: a, mode: power, action: kill, services: "
                              "[{process: {cmdline: \"(a)\\\\1\"}}]}}\n");
  ASSERT_FALSE(exp.ok());
  EXPECT_THAT(exp.status().message(), HasSubstr("faults[0].zone_outage.services[0].process.cmdline"));

  exp = LoadExperiment(base + "  - {zone_outage: {zone: a, extra_peers: [10.0.0.300]}}\n");
  ASSERT_FALSE(exp.ok());
  EXPECT_THAT(exp.status().message(), HasSubstr("faults[0].zone_outage.extra_peers[0]"));
}

}  // namespace
}  // namespace faultline::controller
