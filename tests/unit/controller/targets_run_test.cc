// Targets in a run: resolved once at the start and frozen into the run record
// (selector, exclude, seed), and on_empty: skip against in-process fake agents.
#include <gmock/gmock.h>
#include <grpcpp/create_channel.h>
#include <gtest/gtest.h>

#include <map>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "controller/agent_client.h"
#include "controller/experiment.h"
#include "controller/runner.h"
#include "tests/unit/controller/fake_agent.h"

namespace faultline::controller {
namespace {

using ::faultline::testing::FakeAgent;
using ::testing::ElementsAre;
using ::testing::HasSubstr;

// web-0..web-5 (zones a, a, a, b, b, b; web-2 a canary) and an observer.
struct Fleet {
  Fleet() {
    for (int i = 0; i < 6; ++i) {
      std::map<std::string, std::string> labels = {{"role", "web"}, {"zone", i < 3 ? "a" : "b"}};
      if (i == 2) labels["canary"] = "true";
      labels_.push_back(labels);
      agents.push_back(std::make_unique<FakeAgent>(fmt::format("web-{}", i), labels, 0, nullptr));
    }
  }

  std::vector<AgentRef> Refs() {
    std::vector<AgentRef> refs;
    for (size_t i = 0; i < agents.size(); ++i) {
      refs.push_back({agents[i]->name(), agents[i]->address(), labels_[i], true});
    }
    refs.push_back({observer.name(), observer.address(), {{"role", "obs"}}, true});
    return refs;
  }

  v1::RunReport Run(const std::string& yaml, bool dry_run = true) {
    auto exp = LoadExperiment(yaml);
    EXPECT_TRUE(exp.ok()) << exp.status();
    RunnerOptions o;
    o.lease_ttl = std::chrono::milliseconds(300);
    o.steady_after_timeout = std::chrono::milliseconds(3000);
    o.steady_slack = std::chrono::milliseconds(2000);
    ExperimentRun run(NewRunId(), *exp, dry_run, Refs(), o, &clients, /*store=*/nullptr,
                      [](const v1::RunProgress&) {});
    return run.Execute();
  }

  std::vector<std::map<std::string, std::string>> labels_;
  std::vector<std::unique_ptr<FakeAgent>> agents;
  FakeAgent observer{"obs", {{"role", "obs"}}, 0, nullptr};
  AgentClients clients{[](const std::string& address)
                           -> absl::StatusOr<std::shared_ptr<grpc::Channel>> {
    return grpc::CreateChannel(address, grpc::InsecureChannelCredentials());
  }};
};

std::string Experiment(const std::string& targets, const std::string& faults,
                       const std::string& from = "observer") {
  return fmt::format(R"(
name: targets-run
targets:
  observer: {{labels: {{role: obs}}}}
{}
probes:
  - name: svc
    from: {}
    tcp: {{address: "127.0.0.1:9"}}
    interval: 20ms
faults:
{}
objectives: {{rto: 5s, recovered_after: 2}}
duration: 200ms
)", targets, from, faults);
}

std::vector<std::string> Agents(const v1::RunReport& r, const std::string& target) {
  auto it = r.targets().find(target);
  if (it == r.targets().end()) return {"<missing>"};
  return {it->second.agents().begin(), it->second.agents().end()};
}

TEST(TargetsRun, ResolvedTargetsAreFrozenIntoTheReport) {
  Fleet f;
  const std::string yaml = Experiment(
      "  web: {selector: \"zone in (a,b), !canary\", exclude: [web-4], count: 2, seed: 7}\n"
      "  zone_b: {selector: \"zone=b\"}\n",
      "  - {on: web, pause: {process: {name: web}}}\n");
  v1::RunReport first = f.Run(yaml);
  ASSERT_EQ(first.verdict(), "dry_run") << first.reason();
  EXPECT_THAT(Agents(first, "observer"), ElementsAre("obs"));
  EXPECT_THAT(Agents(first, "zone_b"), ElementsAre("web-3", "web-4", "web-5"));
  const std::vector<std::string> web = Agents(first, "web");
  ASSERT_EQ(web.size(), 2u);
  for (const auto& a : web) {
    EXPECT_TRUE(a == "web-0" || a == "web-1" || a == "web-3" || a == "web-5") << a;
  }
  // The faults went to the agents recorded.
  std::set<std::string> faulted;
  for (const auto& p : first.faults()) faulted.insert(p.agent());
  EXPECT_EQ(faulted, std::set<std::string>(web.begin(), web.end()));
  // The same seed and fleet: the same pick, run after run.
  for (int i = 0; i < 3; ++i) EXPECT_EQ(Agents(f.Run(yaml), "web"), web);
}

TEST(TargetsRun, SkippedTargetSkipsItsFaults) {
  Fleet f;
  v1::RunReport r = f.Run(Experiment(
      "  web: {labels: {zone: a}, count: 1}\n"
      "  gone: {selector: \"zone=c\", on_empty: skip}\n",
      "  - {on: gone, pause: {process: {name: web}}}\n"
      "  - {on: web, pause: {process: {name: web}}}\n"));
  ASSERT_EQ(r.verdict(), "dry_run") << r.reason();
  EXPECT_TRUE(Agents(r, "gone").empty());
  ASSERT_EQ(r.faults_size(), 1);
  EXPECT_EQ(r.faults(0).agent(), Agents(r, "web")[0]);
}

TEST(TargetsRun, SkippedTargetSkipsItsFaultsInARealRun) {
  Fleet f;
  v1::RunReport r = f.Run(Experiment(
                              "  web: {names: [web-1]}\n"
                              "  gone: {selector: \"zone=c\", on_empty: skip}\n",
                              "  - {on: gone, pause: {process: {name: web}}}\n"
                              "  - {on: web, pause: {process: {name: web}}}\n"),
                          /*dry_run=*/false);
  EXPECT_NE(r.verdict(), "error") << r.reason();
  EXPECT_TRUE(Agents(r, "gone").empty());
  EXPECT_EQ(f.agents[1]->injects.load(), 1);
  for (int i : {0, 2, 3, 4, 5}) EXPECT_EQ(f.agents[i]->injects.load(), 0) << i;
  EXPECT_EQ(f.agents[1]->ActiveFaults(), 0);
}

TEST(TargetsRun, AnEmptyTargetFailsByDefault) {
  Fleet f;
  v1::RunReport r = f.Run(Experiment("  gone: {selector: \"zone=c\", on_empty: fail}\n",
                                     "  - {on: gone, pause: {process: {name: web}}}\n"));
  EXPECT_EQ(r.verdict(), "error");
  EXPECT_THAT(r.reason(), HasSubstr("targets.gone: 0 healthy agent(s) match"));
  for (auto& a : f.agents) EXPECT_EQ(a->injects.load(), 0);
}

TEST(TargetsRun, AProbeFromASkippedTargetIsAnError) {
  Fleet f;
  v1::RunReport r = f.Run(Experiment("  web: {names: [web-1]}\n"
                                     "  gone: {selector: \"zone=c\", on_empty: skip}\n",
                                     "  - {on: web, pause: {process: {name: web}}}\n", "gone"));
  EXPECT_EQ(r.verdict(), "error");
  EXPECT_THAT(r.reason(), HasSubstr("probes[0].from: target gone matched no agent"));
  for (auto& a : f.agents) EXPECT_EQ(a->injects.load(), 0);
}

}  // namespace
}  // namespace faultline::controller
