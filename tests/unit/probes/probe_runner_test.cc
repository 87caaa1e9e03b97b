// RunProbeLoop: the fixed schedule (10 ms must hold), stamping, stopping, and
// skipping missed slots when a check overruns.
#include <sched.h>
#include <unistd.h>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <vector>

#include "probes/probe_runner.h"
#include "common/clock.h"
#include "tests/unit/probes/loopback_server.h"
#include "tests/unit/probes/test_exec_policy.h"

namespace faultline {
namespace {

using testing_util::ClosedPort;
using testing_util::Listener;

constexpr int64_t kMs = 1'000'000;

std::vector<v1::ProbeSample> RunSamples(const v1::ProbeSpec& spec, int64_t max_samples,
                                 absl::Status* status, int64_t* took_ns,
                                 const ExecPolicy& exec = ExecPolicy()) {
  std::vector<v1::ProbeSample> samples;
  const int64_t start = NowMonotonicNs();
  *status = RunProbeLoop(
      spec, max_samples,
      [&](const v1::ProbeSample& s) {
        samples.push_back(s);
        return samples.size() < 10000;  // bound, in case max_samples were ignored
      },
      nullptr, exec);
  *took_ns = NowMonotonicNs() - start;
  return samples;
}

TEST(ProbeRunnerTest, TenMillisecondScheduleHolds) {
  Listener listener;
  ASSERT_TRUE(listener.ok());
  v1::ProbeSpec spec;
  spec.mutable_tcp()->set_address(listener.address());
  spec.set_interval("10ms");
  spec.set_timeout("5ms");
  // Every run must take 490-600 ms and stamp its samples properly. The
  // per-gap bound (10 ms +- 3 ms between consecutive starts) and the span (no
  // drift: 490 ms +- 3 ms) must hold for a whole run; this shared VM
  // occasionally stalls a thread for several ms whatever its priority (and a
  // slot missed then is skipped), so one of up to three runs has to be clean,
  // and every run's worst gap and span are printed.
  bool clean_run = false;
  for (int attempt = 1; attempt <= 3 && !clean_run; ++attempt) {
    absl::Status status;
    int64_t took = 0;
    const int64_t unix_before = NowRealtimeNs();
    auto samples = RunSamples(spec, 50, &status, &took);
    ASSERT_TRUE(status.ok()) << status;
    ASSERT_EQ(samples.size(), 50u);
    // 50 samples: the last starts at t0 + 490 ms.
    EXPECT_GE(took, 490 * kMs);
    EXPECT_LE(took, 600 * kMs);
    int64_t worst = 0;
    size_t worst_at = 0;
    for (size_t i = 0; i < samples.size(); ++i) {
      EXPECT_EQ(samples[i].seq(), static_cast<int64_t>(i));
      EXPECT_TRUE(samples[i].ok()) << samples[i].error();
      EXPECT_GT(samples[i].latency_ns(), 0);
      EXPECT_GE(samples[i].start_unix_ns(), unix_before);
      if (i == 0) continue;
      const int64_t gap = samples[i].start_mono_ns() - samples[i - 1].start_mono_ns();
      if (std::llabs(gap - 10 * kMs) > worst) {
        worst = std::llabs(gap - 10 * kMs);
        worst_at = i;
      }
      // Both clocks advance together.
      const int64_t unix_gap = samples[i].start_unix_ns() - samples[i - 1].start_unix_ns();
      EXPECT_NEAR(unix_gap, gap, 1 * kMs);
    }
    // No drift: sample k starts k*10 ms after sample 0 (absolute sleeps). A
    // slot missed under load is skipped, which also lengthens the span: like
    // the gaps, it must hold in one of the attempts.
    const int64_t span = samples.back().start_mono_ns() - samples.front().start_mono_ns();
    std::printf("attempt %d: worst gap error %lld us (before sample %zu), span %lld us, total "
                "%lld ms\n",
                attempt, static_cast<long long>(worst / 1000), worst_at,
                static_cast<long long>(span / 1000), static_cast<long long>(took / kMs));
    clean_run = worst <= 3 * kMs && std::llabs(span - 490 * kMs) <= 3 * kMs;
  }
  EXPECT_TRUE(clean_run) << "no run kept every gap within 10 ms +- 3 ms and the span within 490 ms +- 3 ms";
}

TEST(ProbeRunnerTest, FailuresAreStampedWithTheirError) {
  v1::ProbeSpec spec;
  spec.mutable_tcp()->set_address("127.0.0.1:" + std::to_string(ClosedPort()));
  spec.set_interval("10ms");
  absl::Status status;
  int64_t took = 0;
  auto samples = RunSamples(spec, 3, &status, &took);
  ASSERT_TRUE(status.ok());
  ASSERT_EQ(samples.size(), 3u);
  for (const auto& s : samples) {
    EXPECT_FALSE(s.ok());
    EXPECT_THAT(s.error(), ::testing::HasSubstr("Connection refused"));
  }
}

TEST(ProbeRunnerTest, StopsWhenEmitReturnsFalse) {
  Listener listener;
  ASSERT_TRUE(listener.ok());
  v1::ProbeSpec spec;
  spec.mutable_tcp()->set_address(listener.address());
  spec.set_interval("10ms");
  int calls = 0;
  absl::Status status = RunProbeLoop(spec, 0, [&](const v1::ProbeSample&) {
    return ++calls < 4;
  });
  EXPECT_TRUE(status.ok());
  EXPECT_EQ(calls, 4);
}

TEST(ProbeRunnerTest, OverrunningChecksSkipSlotsInsteadOfBunching) {
  // Each check takes ~35 ms at a 10 ms interval: the runner must keep to the
  // 10 ms grid, skipping the slots it missed, not fire the missed ones at once.
  v1::ProbeSpec spec;
  spec.mutable_exec()->add_argv("/usr/bin/sleep");
  spec.mutable_exec()->add_argv("0.035");
  spec.set_interval("10ms");
  spec.set_timeout("1s");
  absl::Status status;
  int64_t took = 0;
  auto samples =
      RunSamples(spec, 6, &status, &took, testing_util::Allowing({{"/usr/bin/sleep"}}));
  ASSERT_TRUE(status.ok()) << status;
  ASSERT_EQ(samples.size(), 6u);
  for (size_t i = 1; i < samples.size(); ++i) {
    EXPECT_TRUE(samples[i].ok()) << samples[i].error();
    const int64_t prev_end = samples[i - 1].start_mono_ns() + samples[i - 1].latency_ns();
    const int64_t gap = samples[i].start_mono_ns() - samples[i - 1].start_mono_ns();
    EXPECT_GE(gap, 35 * kMs) << i;  // missed slots are not run back to back
    // The next check starts at the next slot still ahead (or at once when less
    // than half an interval late), so never more than an interval after the
    // previous check ended.
    const int64_t wait = samples[i].start_mono_ns() - prev_end;
    EXPECT_GE(wait, 0) << i;
    EXPECT_LE(wait, 10 * kMs + 3 * kMs) << i;
    EXPECT_EQ(samples[i].seq(), static_cast<int64_t>(i));
  }
}

TEST(ProbeRunnerTest, CancelStopsALongSleep) {
  Listener listener;
  ASSERT_TRUE(listener.ok());
  v1::ProbeSpec spec;
  spec.mutable_tcp()->set_address(listener.address());
  spec.set_interval("30s");
  const int64_t start = NowMonotonicNs();
  int emitted = 0;
  absl::Status status = RunProbeLoop(
      spec, 0, [&](const v1::ProbeSample&) { return ++emitted < 100; },
      [&] { return NowMonotonicNs() - start > 250 * kMs; });
  const int64_t took = NowMonotonicNs() - start;
  EXPECT_TRUE(status.ok());
  EXPECT_EQ(emitted, 1);  // the first check runs at once; the second slot is 30 s away
  EXPECT_GE(took, 250 * kMs);
  EXPECT_LT(took, 600 * kMs);
}

TEST(ProbeRunnerTest, PriorityIsRestoredAndCommandsRunAtNormalPriority) {
  // For short intervals the loop's thread may run SCHED_FIFO; the commands it
  // starts must not (SCHED_RESET_ON_FORK): grep exits 0 only if its own
  // scheduling policy is 0 (SCHED_OTHER).
  ASSERT_EQ(sched_getscheduler(0), SCHED_OTHER);
  v1::ProbeSpec spec;
  spec.mutable_exec()->add_argv("/usr/bin/grep");
  spec.mutable_exec()->add_argv("-qE");
  spec.mutable_exec()->add_argv("^policy +: +0$");
  spec.mutable_exec()->add_argv("/proc/self/sched");
  spec.set_interval("10ms");
  spec.set_timeout("1s");
  int policy_in_loop = -1;
  std::vector<v1::ProbeSample> samples;
  absl::Status status = RunProbeLoop(
      spec, 2,
      [&](const v1::ProbeSample& s) {
        policy_in_loop = sched_getscheduler(0) & ~SCHED_RESET_ON_FORK;
        samples.push_back(s);
        return true;
      },
      nullptr, testing_util::Allowing({{"/usr/bin/grep"}}));
  ASSERT_TRUE(status.ok());
  ASSERT_EQ(samples.size(), 2u);
  for (const auto& s : samples) EXPECT_TRUE(s.ok()) << s.error();
  if (geteuid() == 0) {
    EXPECT_EQ(policy_in_loop, SCHED_FIFO);
  }
  EXPECT_EQ(sched_getscheduler(0), SCHED_OTHER);
}

}  // namespace
}  // namespace faultline
