#include "common/yaml_proto.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

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

}  // namespace
}  // namespace faultline
