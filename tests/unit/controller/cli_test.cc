// The faultline CLI's argument handling (no daemon): flag values that are not
// UTF-8, unknown fault kinds and bounds on `runs --limit`, each refused naming
// what was wrong.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "controller/cli/cli.h"

namespace faultline::cli {
namespace {

using ::testing::HasSubstr;

TEST(Cli, ArgumentsThatAreNotUtf8AreRefusedNamingTheFlag) {
  const char* split[] = {"faultline", "inject", "pause", "--duration", "\xff\xfe"};
  absl::Status st = CheckArgsUtf8(5, split);
  EXPECT_EQ(st.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(st.message(), "--duration: \"\\xff\\xfe\" is not valid UTF-8");
  const char* joined[] = {"faultline", "inject", "pause", "--duration=\xff"};
  EXPECT_THAT(CheckArgsUtf8(4, joined).message(), HasSubstr("--duration: "));
  const char* positional[] = {"faultline", "revert", "\xff"};
  EXPECT_THAT(CheckArgsUtf8(3, positional).message(), HasSubstr("argument 2: "));
  const char* good[] = {"faultline", "inject", "pause", "--duration", "5s", "--process-name", "é"};
  EXPECT_TRUE(CheckArgsUtf8(7, good).ok());
}

}  // namespace
}  // namespace faultline::cli
