#include "controller/targets.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <fmt/format.h>

#include <algorithm>
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

// --- selector: Kubernetes label-selector syntax -----------------------------

using Op = LabelRequirement::Op;

TEST(LabelSelector, ParsesEveryForm) {
  auto r = ParseLabelSelector(" zone in (a, b) , role!=db,!canary,tier==front, env=prod ,gpu,x notin (1,2)");
  ASSERT_TRUE(r.ok()) << r.status();
  ASSERT_EQ(r->size(), 7u);
  EXPECT_EQ((*r)[0].key, "zone");
  EXPECT_EQ((*r)[0].op, Op::kIn);
  EXPECT_EQ((*r)[0].values, (std::vector<std::string>{"a", "b"}));
  EXPECT_EQ((*r)[1].op, Op::kNotEquals);
  EXPECT_EQ((*r)[1].values, (std::vector<std::string>{"db"}));
  EXPECT_EQ((*r)[2].key, "canary");
  EXPECT_EQ((*r)[2].op, Op::kNotExists);
  EXPECT_EQ((*r)[3].op, Op::kEquals);
  EXPECT_EQ((*r)[3].values, (std::vector<std::string>{"front"}));
  EXPECT_EQ((*r)[4].op, Op::kEquals);
  EXPECT_EQ((*r)[4].values, (std::vector<std::string>{"prod"}));
  EXPECT_EQ((*r)[5].key, "gpu");
  EXPECT_EQ((*r)[5].op, Op::kExists);
  EXPECT_EQ((*r)[6].op, Op::kNotIn);
  EXPECT_EQ((*r)[6].values, (std::vector<std::string>{"1", "2"}));
}

TEST(LabelSelector, KeysAndValuesTakeTheStrictPattern) {
  auto r = ParseLabelSelector("app.kubernetes.io/name=my_app-1.2,a in (x/y,z.w)");
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ((*r)[0].key, "app.kubernetes.io/name");
  EXPECT_EQ((*r)[0].values[0], "my_app-1.2");
  // "in" and "notin" alone are keys (exists), as the operator needs a "(".
  r = ParseLabelSelector("in,notin");
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ((*r)[0].op, Op::kExists);
  EXPECT_EQ((*r)[1].key, "notin");
}

TEST(LabelSelector, ErrorsNameWhatWasExpectedAndWhere) {
  struct Case {
    const char* text;
    const char* error;
  };
  for (const Case& c : std::vector<Case>{
           {"zone in (a,b", "expected \")\" after \"zone in (a,b\" at 12"},
           {"zone in a,b", "expected \"(\" after \"zone in\" at 8"},
           {"zone in ()", "expected a value after \"zone in (\" at 9"},
           {"zone in (a,)", "expected a value after \"zone in (a,\" at 11"},
           {"zone in (a b)", "expected \")\" after \"zone in (a\" at 11"},
           {"", "expected a key at 0"},
           {"   ", "expected a key at 3"},
           {",a", "expected a key at 0"},
           {"a,,b", "expected a key after \"a,\" at 2"},
           {"a,", "expected a key after \"a,\" at 2"},
           {"!", "expected a key after \"!\" at 1"},
           {"!=a", "expected a key after \"!\" at 1"},
           {"=a", "expected a key at 0"},
           {"a=", "expected a value after \"a=\" at 2"},
           {"a!=", "expected a value after \"a!=\" at 3"},
           {"a==", "expected a value after \"a==\" at 3"},
           {"a=b c", "expected \",\" or the end after \"a=b\" at 4"},
           {"a b", "expected \"=\", \"==\", \"!=\", \"in\", \"notin\", \",\" or the end after \"a\" at 2"},
           {"a!b", "expected \"=\", \"==\", \"!=\", \"in\", \"notin\", \",\" or the end after \"a\" at 1"},
           {"a>1", "expected \"=\", \"==\", \"!=\", \"in\", \"notin\""},
           {"_a=b", "expected a key at 0"},
           {"a=-b", "expected a value after \"a=\" at 2"},
           {"a=b)", "expected \",\" or the end after \"a=b\" at 3"},
           {"!a=b", "expected \",\" or the end after \"!a\" at 2"},
           {"a=(b)", "expected a value after \"a=\" at 2"},
       }) {
    auto r = ParseLabelSelector(c.text);
    ASSERT_FALSE(r.ok()) << c.text;
    EXPECT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument) << c.text;
    EXPECT_THAT(r.status().message(), HasSubstr(c.error)) << c.text;
  }
}

TEST(LabelSelector, MatchesLikeKubernetes) {
  const std::map<std::string, std::string> labels = {{"zone", "a"}, {"role", "web"}};
  auto m = [&](const char* text) {
    auto r = ParseLabelSelector(text);
    EXPECT_TRUE(r.ok()) << text << ": " << r.status();
    return r.ok() && Matches(*r, labels);
  };
  EXPECT_TRUE(m("zone=a"));
  EXPECT_TRUE(m("zone==a"));
  EXPECT_FALSE(m("zone=b"));
  EXPECT_FALSE(m("missing=a"));
  EXPECT_TRUE(m("zone!=b"));
  EXPECT_FALSE(m("zone!=a"));
  EXPECT_TRUE(m("missing!=a"));  // absent keys satisfy !=
  EXPECT_TRUE(m("zone in (a,b)"));
  EXPECT_FALSE(m("zone in (b,c)"));
  EXPECT_FALSE(m("missing in (a)"));
  EXPECT_TRUE(m("zone notin (b,c)"));
  EXPECT_FALSE(m("zone notin (a)"));
  EXPECT_TRUE(m("missing notin (a)"));  // and notin
  EXPECT_TRUE(m("zone"));
  EXPECT_FALSE(m("missing"));
  EXPECT_TRUE(m("!missing"));
  EXPECT_FALSE(m("!zone"));
  EXPECT_TRUE(m("zone in (a,b),role!=db,!canary"));  // ANDed
  EXPECT_FALSE(m("zone in (a,b),role=db"));
  EXPECT_TRUE(Matches({}, labels));  // no requirements
}

std::vector<std::string> Names(const std::vector<AgentRef>& agents) {
  std::vector<std::string> out;
  for (const auto& a : agents) out.push_back(a.name);
  return out;
}

TEST(Targets, SelectorIsAndedWithLabelsAndNames) {
  std::mt19937_64 rng(1);
  v1::TargetSelector s;
  s.set_selector("zone in (a,b), role!=db-primary");
  auto picked = ResolveSelector("t", s, Fleet(), rng);
  ASSERT_TRUE(picked.ok()) << picked.status();
  EXPECT_EQ(Names(*picked), (std::vector<std::string>{"n1", "n2", "n3", "n4", "n6", "n7", "n8", "n9"}));
  (*s.mutable_labels())["zone"] = "b";
  s.add_names("n7");
  s.add_names("n8");
  s.add_names("n1");
  picked = ResolveSelector("t", s, Fleet(), rng);
  ASSERT_TRUE(picked.ok()) << picked.status();
  EXPECT_EQ(Names(*picked), (std::vector<std::string>{"n7", "n8"}));

  v1::TargetSelector bad;
  bad.set_selector("zone in (a,b");
  picked = ResolveSelector("targets.web", bad, Fleet(), rng);
  ASSERT_FALSE(picked.ok());
  EXPECT_EQ(picked.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(picked.status().message(), "targets.web.selector: expected \")\" after \"zone in (a,b\" at 12");
}

TEST(Targets, ExcludedAgentsAreNeverPicked) {
  v1::TargetSelector s = Sel({{"zone", "b"}});
  s.add_exclude("n7");
  s.add_exclude("n9");
  std::mt19937_64 rng(1);
  auto picked = ResolveSelector("t", s, Fleet(), rng);
  ASSERT_TRUE(picked.ok());
  EXPECT_EQ(Names(*picked), (std::vector<std::string>{"n6", "n8"}));
  s.set_count(1);
  for (uint64_t seed = 0; seed < 30; ++seed) {
    std::mt19937_64 r(seed);
    picked = ResolveSelector("t", s, Fleet(), r);
    ASSERT_TRUE(picked.ok());
    EXPECT_THAT(Names(*picked), ::testing::Not(::testing::Contains(::testing::AnyOf("n7", "n9"))));
  }
  s.set_count(3);  // only two left
  picked = ResolveSelector("targets.b", s, Fleet(), rng);
  ASSERT_FALSE(picked.ok());
  EXPECT_THAT(picked.status().message(), HasSubstr("targets.b: 2 healthy agent(s) match, 3 needed"));
}

TEST(Targets, SeedMakesThePickReproducible) {
  v1::TargetSelector s = Sel({{"role", "web"}});  // 8 healthy
  s.set_count(3);
  s.set_seed(42);
  std::vector<std::string> first;
  for (uint64_t run_seed = 0; run_seed < 20; ++run_seed) {
    std::mt19937_64 rng(run_seed);  // the run's own seed does not matter
    auto picked = ResolveSelector("t", s, Fleet(), rng);
    ASSERT_TRUE(picked.ok());
    if (first.empty()) first = Names(*picked);
    EXPECT_EQ(Names(*picked), first);
  }
  // The fleet's order does not matter either.
  std::vector<AgentRef> reversed = Fleet();
  std::reverse(reversed.begin(), reversed.end());
  std::mt19937_64 rng(7);
  auto picked = ResolveSelector("t", s, reversed, rng);
  ASSERT_TRUE(picked.ok());
  EXPECT_EQ(Names(*picked), first);
  // Different seeds can pick differently.
  std::set<std::vector<std::string>> picks;
  for (uint64_t seed = 0; seed < 20; ++seed) {
    s.set_seed(seed);
    auto p = ResolveSelector("t", s, Fleet(), rng);
    ASSERT_TRUE(p.ok());
    EXPECT_EQ(p->size(), 3u);
    picks.insert(Names(*p));
  }
  EXPECT_GT(picks.size(), 1u);
  // Seed 0 is a seed too (set, not absent).
  s.set_seed(0);
  std::mt19937_64 r1(1), r2(2);
  EXPECT_EQ(Names(*ResolveSelector("t", s, Fleet(), r1)), Names(*ResolveSelector("t", s, Fleet(), r2)));
}

TEST(Targets, OnEmptySkipPicksNoneFailIsTheDefault) {
  v1::Experiment exp;
  (*exp.mutable_targets())["a"] = Sel({{"zone", "a"}});
  v1::TargetSelector none = Sel({{"zone", "x"}});
  (*exp.mutable_targets())["x"] = none;
  std::mt19937_64 rng(1);
  auto all = ResolveTargets(exp, Fleet(), rng);
  ASSERT_FALSE(all.ok());
  EXPECT_THAT(all.status().message(), HasSubstr("targets.x: 0 healthy agent(s) match"));
  none.set_on_empty(v1::TargetSelector::ON_EMPTY_FAIL);
  (*exp.mutable_targets())["x"] = none;
  EXPECT_FALSE(ResolveTargets(exp, Fleet(), rng).ok());

  none.set_on_empty(v1::TargetSelector::ON_EMPTY_SKIP);
  none.set_count(2);
  (*exp.mutable_targets())["x"] = none;
  all = ResolveTargets(exp, Fleet(), rng);
  ASSERT_TRUE(all.ok()) << all.status();
  EXPECT_TRUE(all->at("x").empty());
  EXPECT_EQ(all->at("a").size(), 5u);

  // skip is about matching nothing, not about too few.
  v1::TargetSelector few = Sel({{"zone", "b"}});
  few.set_count(5);
  few.set_on_empty(v1::TargetSelector::ON_EMPTY_SKIP);
  EXPECT_FALSE(ResolveSelector("t", few, Fleet(), rng).ok());
  // Only unhealthy matches: nothing to pick, skipped.
  v1::TargetSelector sick;
  sick.add_names("n5");
  sick.set_on_empty(v1::TargetSelector::ON_EMPTY_SKIP);
  auto picked = ResolveSelector("t", sick, Fleet(), rng);
  ASSERT_TRUE(picked.ok());
  EXPECT_TRUE(picked->empty());
}

}  // namespace
}  // namespace faultline::controller
