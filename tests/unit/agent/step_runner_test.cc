// Drill steps on the agent (agent/step_runner.h) with real child processes:
// the policy, the timeout's bounds, the output tail, the process group killed
// at the timeout and on a cancel, and at most 2 steps at once.
#include "agent/step_runner.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <string>
#include <thread>
#include <vector>

#include "tests/unit/probes/test_exec_policy.h"

namespace faultline::agent {
namespace {

using namespace std::chrono_literals;
using ::testing::HasSubstr;

v1::RunStepRequest Req(std::vector<std::string> argv, int64_t timeout_ms) {
  v1::RunStepRequest req;
  for (auto& a : argv) req.add_argv(a);
  req.set_timeout_ms(timeout_ms);
  return req;
}

const ExecPolicy& Policy() {
  static const ExecPolicy policy =
      testing_util::Allowing({{"/bin/sh", "-c"}, {"/bin/true"}, {"/bin/sleep"}});
  return policy;
}

bool Never() { return false; }

TEST(StepRunner, RunsAnAllowedArgvAsThePolicyUser) {
  StepRunner runner;
  auto resp = runner.Run(Req({"/bin/sh", "-c", "id -un; echo oops >&2; exit 3"}, 5000), Policy(), Never);
  ASSERT_TRUE(resp.ok()) << resp.status();
  EXPECT_EQ(resp->exit_code(), 3);
  EXPECT_EQ(resp->signal(), 0);
  EXPECT_FALSE(resp->timed_out());
  EXPECT_EQ(resp->output_tail(), "nobody\noops\n");
  EXPECT_GT(resp->duration_ns(), 0);
  EXPECT_LE(resp->started_unix_ns(), resp->ended_unix_ns());
}

TEST(StepRunner, RefusesWhatThePolicyDoesNotAllowNamingArgv0) {
  StepRunner runner;
  auto resp = runner.Run(Req({"/bin/cat", "/etc/shadow"}, 1000), Policy(), Never);
  EXPECT_EQ(resp.status().code(), absl::StatusCode::kPermissionDenied);
  EXPECT_THAT(resp.status().message(), HasSubstr("argv[0] \"/bin/cat\""));
  EXPECT_THAT(resp.status().message(), HasSubstr("not allowed by the exec policy"));
  auto none = runner.Run(Req({"/bin/true"}, 1000), ExecPolicy(), Never);
  EXPECT_EQ(none.status().code(), absl::StatusCode::kPermissionDenied);
}

TEST(StepRunner, ChecksTimeoutAndArgv) {
  StepRunner runner;
  for (int64_t t : std::vector<int64_t>{0, -1, 6LL * 3600 * 1000 + 1, INT64_MAX}) {
    auto resp = runner.Run(Req({"/bin/true"}, t), Policy(), Never);
    EXPECT_EQ(resp.status().code(), absl::StatusCode::kInvalidArgument) << t;
    EXPECT_THAT(resp.status().message(), HasSubstr("timeout_ms")) << t;
  }
  // 1 ms is accepted (the step may well time out).
  EXPECT_TRUE(runner.Run(Req({"/bin/true"}, 1), Policy(), Never).ok());
  auto relative = runner.Run(Req({"sh", "-c", "id"}, 1000), Policy(), Never);
  EXPECT_EQ(relative.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(relative.status().message(), HasSubstr("argv[0]"));
  auto empty = runner.Run(Req({}, 1000), Policy(), Never);
  EXPECT_THAT(empty.status().message(), HasSubstr("argv"));
}

TEST(StepRunner, KeepsTheLast4KiBOfOutput) {
  StepRunner runner;
  // 1 MiB of 'x', then a last line.
  auto resp = runner.Run(
      Req({"/bin/sh", "-c", "head -c 1048576 /dev/zero | tr '\\0' x; echo; echo the-end"}, 10000),
      Policy(), Never);
  ASSERT_TRUE(resp.ok()) << resp.status();
  EXPECT_EQ(resp->exit_code(), 0);
  EXPECT_EQ(resp->output_tail().size(), StepRunner::kOutputTail);
  EXPECT_THAT(resp->output_tail(), ::testing::EndsWith("x\nthe-end\n"));
  EXPECT_EQ(resp->output_bytes(), 1048576 + 1 + 8);
}

// The step and what it started in the background: both gone at the timeout.
TEST(StepRunner, TimeoutKillsTheProcessGroup) {
  StepRunner runner;
  const std::string pidfile = "/tmp/fltest-" + std::to_string(::getpid()) + "-step-bg";
  auto resp = runner.Run(
      Req({"/bin/sh", "-c", "sleep 30 & echo $! > " + pidfile + "; echo started; wait"}, 300),
      testing_util::Allowing({{"/bin/sh", "-c"}}), Never);
  ASSERT_TRUE(resp.ok()) << resp.status();
  EXPECT_TRUE(resp->timed_out());
  EXPECT_EQ(resp->signal(), SIGKILL);
  EXPECT_EQ(resp->output_tail(), "started\n");
  EXPECT_LT(resp->duration_ns(), 5'000'000'000);
  // The background sleep's pid, as the step wrote it.
  std::string pid_text;
  if (FILE* f = std::fopen(pidfile.c_str(), "r")) {
    char buf[32] = {};
    if (std::fgets(buf, sizeof(buf), f) != nullptr) pid_text = buf;
    std::fclose(f);
  }
  std::filesystem::remove(pidfile);
  ASSERT_FALSE(pid_text.empty());
  const pid_t bg = static_cast<pid_t>(std::stol(pid_text));
  bool gone = false;
  for (int i = 0; i < 100 && !gone; ++i) {
    gone = ::kill(bg, 0) != 0;
    if (!gone) std::this_thread::sleep_for(20ms);
  }
  EXPECT_TRUE(gone) << "the background sleep " << bg << " outlived the step";
}

// The step dies with the agent (PR_SET_PDEATHSIG, set after the uid change).
TEST(StepRunner, TheStepDiesWithTheAgent) {
  const std::string pidfile = "/tmp/fltest-" + std::to_string(::getpid()) + "-step-orphan";
  const ExecPolicy policy = testing_util::Allowing({{"/bin/sh", "-c"}});
  const pid_t agent = ::fork();
  ASSERT_GE(agent, 0);
  if (agent == 0) {  // the "agent": runs the step until it is killed
    StepRunner runner;
    (void)runner.Run(Req({"/bin/sh", "-c", "echo $$ > " + pidfile + "; exec sleep 30"}, 60000),
                     policy, Never);
    ::_exit(0);
  }
  pid_t step = 0;
  for (int i = 0; i < 250 && step == 0; ++i) {
    if (FILE* f = std::fopen(pidfile.c_str(), "r")) {
      long value = 0;
      if (std::fscanf(f, "%ld", &value) == 1) step = static_cast<pid_t>(value);
      std::fclose(f);
    }
    if (step == 0) std::this_thread::sleep_for(20ms);
  }
  ::kill(agent, SIGKILL);
  ::waitpid(agent, nullptr, 0);
  std::filesystem::remove(pidfile);
  ASSERT_GT(step, 1) << "the step never wrote its pid";
  bool gone = false;
  for (int i = 0; i < 250 && !gone; ++i) {
    gone = ::kill(step, 0) != 0;
    if (!gone) std::this_thread::sleep_for(20ms);
  }
  EXPECT_TRUE(gone) << "step " << step << " outlived its agent";
  if (!gone) ::kill(step, SIGKILL);
}

TEST(StepRunner, CancelKillsTheStep) {
  StepRunner runner;
  const auto start = std::chrono::steady_clock::now();
  auto resp = runner.Run(Req({"/bin/sleep", "30"}, 60000), Policy(), [start] {
    return std::chrono::steady_clock::now() - start > 200ms;
  });
  EXPECT_EQ(resp.status().code(), absl::StatusCode::kCancelled);
  EXPECT_LT(std::chrono::steady_clock::now() - start, 5s);
  EXPECT_EQ(runner.running(), 0);
}

TEST(StepRunner, AtMostTwoAtOnce) {
  StepRunner runner;
  std::atomic<bool> stop{false};
  auto cancelled = [&stop] { return stop.load(); };
  std::vector<std::thread> running;
  for (int i = 0; i < 2; ++i) {
    running.emplace_back([&] { (void)runner.Run(Req({"/bin/sleep", "30"}, 60000), Policy(), cancelled); });
  }
  for (int i = 0; i < 250 && runner.running() < 2; ++i) std::this_thread::sleep_for(20ms);
  ASSERT_EQ(runner.running(), 2);
  auto third = runner.Run(Req({"/bin/true"}, 1000), Policy(), Never);
  EXPECT_EQ(third.status().code(), absl::StatusCode::kResourceExhausted);
  stop = true;
  for (auto& t : running) t.join();
  EXPECT_EQ(runner.running(), 0);
  EXPECT_TRUE(runner.Run(Req({"/bin/true"}, 1000), Policy(), Never).ok());
}

}  // namespace
}  // namespace faultline::agent
