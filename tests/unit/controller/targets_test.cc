#include "controller/targets.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <fmt/format.h>

#include <set>

namespace faultline::controller {
namespace {

using ::testing::HasSubstr;

std::vector<AgentRef> Fleet() {
  std::vector<AgentRef> agents;
  for (int i = 0; i < 10; ++i) {
    agents.push_back({fmt::format("n{}", i), fmt::format("10.0.0.{}:7000", i + 1),
                      {{"zone", i < 6 ? "a" : "b"}, {"role", i == 0 ? "db-primary" : "web"}},
                      i != 5});
  }
  return agents;
}

v1::TargetSelector Sel(std::map<std::string, std::string> labels) {
  v1::TargetSelector s;
  for (const auto& [k, v] : labels) (*s.mutable_labels())[k] = v;
  return s;
}

TEST(Targets, LabelsMatchAllAndSkipUnhealthy) {
  std::mt19937_64 rng(1);
  auto picked = ResolveSelector("targets.a", Sel({{"zone", "a"}}), Fleet(), rng);
  ASSERT_TRUE(picked.ok()) << picked.status();
  std::set<std::string> names;
  for (const auto& a : *picked) names.insert(a.name);
  EXPECT_EQ(names, (std::set<std::string>{"n0", "n1", "n2", "n3", "n4"}));  // n5 unhealthy

  picked = ResolveSelector("t", Sel({{"zone", "a"}, {"role", "db-primary"}}), Fleet(), rng);
  ASSERT_TRUE(picked.ok());
  ASSERT_EQ(picked->size(), 1u);
  EXPECT_EQ((*picked)[0].name, "n0");
}

TEST(Targets, NamesRestrict) {
  std::mt19937_64 rng(1);
  v1::TargetSelector s;
  s.add_names("n7");
  s.add_names("n9");
  s.add_names("missing");
  auto picked = ResolveSelector("t", s, Fleet(), rng);
  ASSERT_TRUE(picked.ok());
  ASSERT_EQ(picked->size(), 2u);
  EXPECT_EQ((*picked)[0].name, "n7");
  EXPECT_EQ((*picked)[1].name, "n9");
}

TEST(Targets, CountPicksAtRandom) {
  std::set<std::string> seen;
  for (uint64_t seed = 0; seed < 50; ++seed) {
    std::mt19937_64 rng(seed);
    v1::TargetSelector s = Sel({{"zone", "b"}});
    s.set_count(1);
    auto picked = ResolveSelector("t", s, Fleet(), rng);
    ASSERT_TRUE(picked.ok());
    ASSERT_EQ(picked->size(), 1u);
    seen.insert((*picked)[0].name);
  }
  // Zone b holds n6..n9; 50 picks see more than one of them.
  EXPECT_GT(seen.size(), 1u);
  for (const auto& n : seen) EXPECT_TRUE(n >= "n6" && n <= "n9") << n;
}

TEST(Targets, PercentRoundsUp) {
  std::mt19937_64 rng(3);
  v1::TargetSelector s = Sel({{"role", "web"}});  // n1..n9 minus n5: 8 healthy
  s.set_percent(30);
  auto picked = ResolveSelector("t", s, Fleet(), rng);
  ASSERT_TRUE(picked.ok());
  EXPECT_EQ(picked->size(), 3u);  // ceil(2.4)
  s.set_percent(1);
  picked = ResolveSelector("t", s, Fleet(), rng);
  ASSERT_TRUE(picked.ok());
  EXPECT_EQ(picked->size(), 1u);
}

TEST(Targets, TooFewIsAnErrorNamingTheTarget) {
  std::mt19937_64 rng(1);
  v1::TargetSelector s = Sel({{"zone", "b"}});
  s.set_count(5);
  auto picked = ResolveSelector("targets.b", s, Fleet(), rng);
  ASSERT_FALSE(picked.ok());
  EXPECT_EQ(picked.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(picked.status().message(), HasSubstr("targets.b: 4 healthy agent(s) match, 5 needed"));

  auto none = ResolveSelector("targets.c", Sel({{"zone", "c"}}), Fleet(), rng);
  ASSERT_FALSE(none.ok());
  EXPECT_THAT(none.status().message(), HasSubstr("targets.c: 0 healthy agent(s) match"));

  v1::TargetSelector only_unhealthy;
  only_unhealthy.add_names("n5");
  auto sick = ResolveSelector("targets.d", only_unhealthy, Fleet(), rng);
  ASSERT_FALSE(sick.ok());
  EXPECT_THAT(sick.status().message(), HasSubstr("1 matching agent(s) unhealthy"));
}

TEST(Targets, ResolveTargetsReportsEveryFailure) {
  v1::Experiment exp;
  (*exp.mutable_targets())["a"] = Sel({{"zone", "a"}});
  (*exp.mutable_targets())["x"] = Sel({{"zone", "x"}});
  (*exp.mutable_targets())["y"] = Sel({{"zone", "y"}});
  std::mt19937_64 rng(1);
  auto all = ResolveTargets(exp, Fleet(), rng);
  ASSERT_FALSE(all.ok());
  EXPECT_THAT(all.status().message(), HasSubstr("targets.x:"));
  EXPECT_THAT(all.status().message(), HasSubstr("targets.y:"));
  exp.mutable_targets()->erase("x");
  exp.mutable_targets()->erase("y");
  all = ResolveTargets(exp, Fleet(), rng);
  ASSERT_TRUE(all.ok());
  EXPECT_EQ(all->at("a").size(), 5u);
}

}  // namespace
}  // namespace faultline::controller
