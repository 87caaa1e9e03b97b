#include "common/yaml_proto.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <chrono>
#include <string>

#include "faultline/v1/policy.pb.h"

namespace faultline {
namespace {

using ::testing::HasSubstr;

TEST(YamlToMessage, ParsesPolicy) {
  v1::Policy p;
  ASSERT_TRUE(YamlToMessage(R"(
allowed_kinds: [kill, pause]
protected_processes: [sshd]
disk_fill_ceilings:
  - {mount: /, max_percent: 95}
)", &p).ok());
  EXPECT_EQ(p.allowed_kinds_size(), 2);
  EXPECT_EQ(p.protected_processes(0), "sshd");
  EXPECT_EQ(p.disk_fill_ceilings(0).mount(), "/");
  EXPECT_DOUBLE_EQ(p.disk_fill_ceilings(0).max_percent(), 95);
}

TEST(YamlToMessage, ReportsEveryProblemWithItsPath) {
  v1::Policy p;
  auto st = YamlToMessage(R"(
allowed_kinds: kill
protected_procs: [sshd]
disk_fill_ceilings:
  - {mount: /, max_percent: lots}
)", &p);
  ASSERT_FALSE(st.ok());
  EXPECT_EQ(st.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(st.message(), HasSubstr("allowed_kinds: expected a list"));
  EXPECT_THAT(st.message(), HasSubstr("protected_procs: unknown field"));
  EXPECT_THAT(st.message(),
              HasSubstr("disk_fill_ceilings[0].max_percent: expected a number, got \"lots\""));
}

TEST(YamlToMessage, ReportsSyntaxErrorsWithLine) {
  v1::Policy p;
  auto st = YamlToMessage("allowed_kinds: [kill\n", &p);
  ASSERT_FALSE(st.ok());
  EXPECT_THAT(st.message(), HasSubstr("line "));
}

TEST(YamlToMessage, RefusesAliasesBeforeExpandingThem) {
  // "Billion laughs": nine levels of nine aliases would be 9^9 nodes to walk.
  std::string yaml = "a0: &a0 [x, x, x, x, x, x, x, x, x]\n";
  for (int i = 1; i <= 9; ++i) {
    yaml += "a" + std::to_string(i) + ": &a" + std::to_string(i) + " [";
    for (int j = 0; j < 9; ++j) yaml += std::string(j ? ", " : "") + "*a" + std::to_string(i - 1);
    yaml += "]\n";
  }
  v1::Policy p;
  const auto start = std::chrono::steady_clock::now();
  auto st = YamlToMessage(yaml, &p);
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(1));
  ASSERT_FALSE(st.ok());
  EXPECT_EQ(st.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(st.message(), HasSubstr("line 2, column 10: YAML aliases (*name) are not supported"));
  EXPECT_THAT(CheckYamlAgainst(yaml, p.GetDescriptor()),
              ::testing::ElementsAre(HasSubstr("YAML aliases (*name) are not supported")));
}

TEST(YamlToMessage, CapsItsErrorsAndItsInput) {
  std::string yaml;
  for (int i = 0; i < 500; ++i) yaml += "unknown" + std::to_string(i) + ": 1\n";
  v1::Policy p;
  auto st = YamlToMessage(yaml, &p);
  ASSERT_FALSE(st.ok());
  EXPECT_THAT(st.message(), HasSubstr("... and 480 more"));
  EXPECT_LT(st.message().size(), 21 * 300u);
  st = YamlToMessage(std::string(100000, 'k') + ": 1\n", &p);  // a huge unknown key
  ASSERT_FALSE(st.ok());
  EXPECT_LT(st.message().size(), 400u);
  st = YamlToMessage("protected_processes: [" + std::string(2 << 20, 'x') + "]", &p);
  ASSERT_FALSE(st.ok());
  EXPECT_THAT(st.message(), HasSubstr("at most 1024 KiB"));
}

}  // namespace
}  // namespace faultline
