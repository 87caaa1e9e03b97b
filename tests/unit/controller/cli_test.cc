// The faultline CLI's argument handling (no daemon): flag values that are not
// UTF-8, unknown fault kinds and bounds on `runs --limit`, each refused naming
// what was wrong.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <string>
#include <vector>

#include "controller/cli/cli.h"

namespace faultline::cli {
namespace {

using ::testing::HasSubstr;

// The app as main() wires it.
struct App {
  CliContext ctx;
  CLI::App app{"faultline"};
  App() {
    app.require_subcommand(1);
    app.fallthrough();
    AddAgentCommands(app, ctx);
    AddControllerCommands(app, ctx);
  }
  // The parse error's text, or "" when the arguments parse.
  std::string Parse(std::vector<std::string> args) {
    std::reverse(args.begin(), args.end());  // CLI11 takes them last first
    try {
      app.parse(args);
    } catch (const CLI::ParseError& e) {
      return e.what();
    }
    return "";
  }
};

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

TEST(Cli, AnUnknownKindIsNamedWithTheKnownOnes) {
  App a;
  EXPECT_THAT(a.Parse({"inject", "cpu", "--duration", "5s"}), HasSubstr("subcommand"));
  absl::Status st = UnknownKindError(a.app);
  EXPECT_EQ(st.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(st.message(), HasSubstr("inject: unknown fault kind \"cpu\" (known: "));
  EXPECT_THAT(st.message(), HasSubstr("pause"));

  App z;
  z.Parse({"inject", "zone-outage", "--duration", "5s"});
  EXPECT_THAT(UnknownKindError(z.app).message(),
              HasSubstr("zone-outage is a controller-level fault"));

  App p;
  p.Parse({"preflight"});
  EXPECT_THAT(UnknownKindError(p.app).message(), HasSubstr("preflight: give a fault kind"));

  App other;
  other.Parse({"runs", "--limit", "x"});
  EXPECT_TRUE(UnknownKindError(other.app).ok());
}

TEST(Cli, RunsLimitIsBounded) {
  for (const char* bad : {"-1", "0", "1001"}) {
    App a;
    EXPECT_THAT(a.Parse({"runs", "--limit", bad}), HasSubstr("--limit")) << bad;
  }
}

}  // namespace
}  // namespace faultline::cli
