#include "controller/timeline/result.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdlib>
#include <functional>
#include <string>
#include <vector>

namespace faultline::timeline {
namespace {

using ::testing::HasSubstr;

constexpr int64_t kMs = 1'000'000;
constexpr int64_t kInjected = 10'000 * kMs;

// Samples of a probe every `interval` from `first` until `end`, failing while
// the (scripted) service is down in [down_from, down_to). `shift` models the
// clock-mapping error of the probe's host.
ProbeSeries Scripted(const std::string& name, int64_t interval, int64_t first, int64_t end,
                     int64_t down_from, int64_t down_to, int64_t shift = 0,
                     int64_t clock_error = 0) {
  ProbeSeries s;
  s.name = name;
  s.interval_ns = interval;
  s.clock_error_ns = clock_error;
  for (int64_t t = first; t < end; t += interval) {
    s.samples.push_back({t + shift, !(t >= down_from && t < down_to)});
  }
  return s;
}

ResultInput KillInput(int64_t duration = 5'000 * kMs, int64_t rto = 2'000 * kMs) {
  ResultInput in;
  in.injected_ns = kInjected;
  in.experiment_end_ns = kInjected + duration;
  in.faults = {FaultWindow{0, /*is_action=*/true}};
  in.rto_ns = rto;
  in.recovered_after = 3;
  return in;
}

// The accuracy criterion on synthetic data: a 700 ms outage that starts
// 37 ms after the injection, sampled at 10 ms and 100 ms with every phase, with
// and without clock error: each figure is within error_ms of the truth.
TEST(ResultTest, ScriptedOutageMeasuredWithinError) {
  const int64_t truth_detect = 37 * kMs;
  const int64_t truth_outage = 700 * kMs;
  for (int64_t interval : {10 * kMs, 100 * kMs}) {
    for (int64_t clock_error : {int64_t{0}, 2 * kMs}) {
      for (int step = 0; step < 10; ++step) {
        const int64_t phase = interval * step / 10;
        for (int64_t shift : {-clock_error, clock_error}) {
          ResultInput in = KillInput();
          in.injected_error_ns = clock_error / 2;
          in.injected_ns = kInjected + clock_error / 2;  // the mapped apply time is off too
          const int64_t down_from = kInjected + truth_detect;
          in.probes = {Scripted("p", interval, kInjected - 1000 * kMs + phase,
                                kInjected + 5000 * kMs, down_from, down_from + truth_outage,
                                shift, clock_error)};
          auto r = ComputeResult(in);
          ASSERT_TRUE(r.ok()) << r.status();
          SCOPED_TRACE(testing::Message() << "interval=" << interval / kMs
                                          << "ms phase=" << phase << " shift=" << shift);
          EXPECT_EQ(r->error_ms, (interval + clock_error + clock_error / 2 + kMs - 1) / kMs);
          EXPECT_LE(std::llabs(r->outage_ms - truth_outage / kMs), r->error_ms);
          EXPECT_LE(std::llabs(r->time_to_detect_ms - truth_detect / kMs), r->error_ms);
          EXPECT_LE(std::llabs(r->time_to_recover_ms - (truth_detect + truth_outage) / kMs),
                    r->error_ms);
          EXPECT_TRUE(r->recovered);
          EXPECT_TRUE(r->recovered_during_fault);
          EXPECT_EQ(r->verdict, Verdict::kPass) << r->reason;
        }
      }
    }
  }
}

TEST(ResultTest, ExactGridGivesExactFigures) {
  ResultInput in = KillInput();
  in.probes = {Scripted("p", 10 * kMs, kInjected, kInjected + 3000 * kMs,
                        kInjected + 40 * kMs, kInjected + 740 * kMs)};
  auto r = ComputeResult(in);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->time_to_detect_ms, 40);
  EXPECT_EQ(r->outage_ms, 700);
  EXPECT_EQ(r->time_to_recover_ms, 740);
  EXPECT_EQ(r->error_ms, 10);
  EXPECT_EQ(r->outage_start_ns, kInjected + 40 * kMs);
  EXPECT_EQ(r->recovered_ns, kInjected + 740 * kMs);
  ASSERT_EQ(r->probes.size(), 1u);
  EXPECT_EQ(r->probes[0].failures, 70);
  EXPECT_EQ(r->rto_target_ms, 2000);
  EXPECT_STREQ(VerdictName(r->verdict), "pass");
}

TEST(ResultTest, NoFailureIsPassWithZeroFigures) {
  ResultInput in = KillInput();
  in.probes = {Scripted("p", 10 * kMs, kInjected - 500 * kMs, kInjected + 5000 * kMs, 0, 0)};
  auto r = ComputeResult(in);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->verdict, Verdict::kPass);
  EXPECT_FALSE(r->outage_observed);
  EXPECT_EQ(r->time_to_detect_ms, 0);
  EXPECT_EQ(r->outage_ms, 0);
  EXPECT_EQ(r->time_to_recover_ms, 0);
  EXPECT_EQ(r->error_ms, 10);
  EXPECT_THAT(r->reason, HasSubstr("no probe failed"));
}

TEST(ResultTest, FailuresBeforeInjectionAreIgnored) {
  ResultInput in = KillInput();
  in.probes = {Scripted("p", 10 * kMs, kInjected - 500 * kMs, kInjected + 5000 * kMs,
                        kInjected - 300 * kMs, kInjected - 200 * kMs)};
  auto r = ComputeResult(in);
  ASSERT_TRUE(r.ok());
  EXPECT_FALSE(r->outage_observed);
  EXPECT_EQ(r->verdict, Verdict::kPass);
}

TEST(ResultTest, NeverRecoveredFails) {
  ResultInput in = KillInput();
  in.probes = {Scripted("p", 100 * kMs, kInjected, kInjected + 5000 * kMs,
                        kInjected + 200 * kMs, kInjected + 99'000 * kMs)};
  auto r = ComputeResult(in);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->verdict, Verdict::kFail);
  EXPECT_TRUE(r->outage_observed);
  EXPECT_FALSE(r->recovered);
  EXPECT_FALSE(r->recovered_during_fault);
  EXPECT_EQ(r->time_to_detect_ms, 200);
  EXPECT_EQ(r->time_to_recover_ms, -1);
  EXPECT_EQ(r->outage_ms, 4700);  // lower bound: to the last sample
  EXPECT_THAT(r->reason, HasSubstr("never had 3 consecutive successes"));
}

TEST(ResultTest, FewerThanRecoveredAfterSuccessesIsNotRecovery) {
  ResultInput in = KillInput();
  in.recovered_after = 5;
  ProbeSeries s;
  s.name = "flappy";
  s.interval_ns = 10 * kMs;
  // ok, FAIL, ok x4, FAIL, ok x5 ...
  const bool pattern[] = {true, false, true, true, true, true, false,
                          true, true,  true, true, true, true};
  for (size_t i = 0; i < sizeof(pattern); ++i) {
    s.samples.push_back({kInjected + static_cast<int64_t>(i) * 10 * kMs, pattern[i]});
  }
  in.probes = {s};
  auto r = ComputeResult(in);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->time_to_detect_ms, 10);
  EXPECT_EQ(r->time_to_recover_ms, 70);  // the run of 5 starts at sample 7
  EXPECT_EQ(r->outage_ms, 60);
  EXPECT_EQ(r->probes[0].failures, 2);
}

TEST(ResultTest, UnsortedSamplesAreSorted) {
  ResultInput in = KillInput();
  ProbeSeries s = Scripted("p", 10 * kMs, kInjected, kInjected + 2000 * kMs,
                           kInjected + 100 * kMs, kInjected + 300 * kMs);
  std::reverse(s.samples.begin(), s.samples.end());
  in.probes = {s};
  auto r = ComputeResult(in);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->time_to_detect_ms, 100);
  EXPECT_EQ(r->outage_ms, 200);
}

TEST(ResultTest, RecoveryAfterRevertIsNotFailover) {
  // A partition reverted at +1 s; the service comes back only then.
  ResultInput in = KillInput();
  in.faults = {FaultWindow{kInjected + 1000 * kMs, /*is_action=*/false}};
  in.probes = {Scripted("p", 10 * kMs, kInjected, kInjected + 5000 * kMs,
                        kInjected + 20 * kMs, kInjected + 1030 * kMs)};
  auto r = ComputeResult(in);
  ASSERT_TRUE(r.ok());
  EXPECT_TRUE(r->recovered);
  EXPECT_FALSE(r->recovered_during_fault);
  EXPECT_EQ(r->fault_active_until_ns, kInjected + 1000 * kMs);
  EXPECT_EQ(r->verdict, Verdict::kFail);
  EXPECT_EQ(r->time_to_recover_ms, 1030);
  EXPECT_THAT(r->reason, HasSubstr("after the fault ended"));
}

TEST(ResultTest, RevertableFaultRecoveredBeforeRevertPasses) {
  ResultInput in = KillInput();
  in.faults = {FaultWindow{kInjected + 3000 * kMs, false}};
  in.probes = {Scripted("p", 10 * kMs, kInjected, kInjected + 5000 * kMs,
                        kInjected + 20 * kMs, kInjected + 1030 * kMs)};
  auto r = ComputeResult(in);
  ASSERT_TRUE(r.ok());
  EXPECT_TRUE(r->recovered_during_fault);
  EXPECT_EQ(r->verdict, Verdict::kPass);
}

TEST(ResultTest, KillCountsAsActiveUntilExperimentEnd) {
  // The kill "ends" at once (reverted_ns right after the injection is what a
  // naive runner might pass), but a kill stays active until the experiment's end:
  // the supervisor's restart at +4 s is a recovery during the fault.
  ResultInput in = KillInput(/*duration=*/6000 * kMs, /*rto=*/5000 * kMs);
  in.faults = {FaultWindow{kInjected + 1 * kMs, /*is_action=*/true}};
  in.probes = {Scripted("p", 100 * kMs, kInjected, kInjected + 8000 * kMs,
                        kInjected + 50 * kMs, kInjected + 4000 * kMs)};
  auto r = ComputeResult(in);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->fault_active_until_ns, kInjected + 6000 * kMs);
  EXPECT_TRUE(r->recovered_during_fault);
  EXPECT_EQ(r->verdict, Verdict::kPass);
  EXPECT_EQ(r->time_to_recover_ms, 4000);

  // Recovery after the experiment's end is not during the fault.
  in.experiment_end_ns = kInjected + 3000 * kMs;
  r = ComputeResult(in);
  ASSERT_TRUE(r.ok());
  EXPECT_FALSE(r->recovered_during_fault);
  EXPECT_EQ(r->verdict, Verdict::kFail);
}

TEST(ResultTest, SeveralFaultsUseEarliestEnd) {
  ResultInput in = KillInput(6000 * kMs);
  in.faults = {FaultWindow{0, true}, FaultWindow{kInjected + 2000 * kMs, false}};
  in.probes = {Scripted("p", 10 * kMs, kInjected, kInjected + 5000 * kMs,
                        kInjected + 20 * kMs, kInjected + 2500 * kMs)};
  auto r = ComputeResult(in);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->fault_active_until_ns, kInjected + 2000 * kMs);
  EXPECT_FALSE(r->recovered_during_fault);
}

TEST(ResultTest, VerdictAgainstRto) {
  ResultInput in = KillInput(10'000 * kMs);
  in.probes = {Scripted("p", 10 * kMs, kInjected, kInjected + 8000 * kMs,
                        kInjected + 100 * kMs, kInjected + 3000 * kMs)};
  in.rto_ns = 5000 * kMs;
  auto generous = ComputeResult(in);
  ASSERT_TRUE(generous.ok());
  EXPECT_EQ(generous->verdict, Verdict::kPass) << generous->reason;

  in.rto_ns = 2000 * kMs;
  auto tight = ComputeResult(in);
  ASSERT_TRUE(tight.ok());
  EXPECT_EQ(tight->verdict, Verdict::kFail);
  EXPECT_TRUE(tight->recovered_during_fault);
  EXPECT_THAT(tight->reason, HasSubstr("exceeds the RTO of 2000 ms"));

  in.rto_ns = 0;  // no target
  auto none = ComputeResult(in);
  ASSERT_TRUE(none.ok());
  EXPECT_EQ(none->verdict, Verdict::kPass);
}

TEST(ResultTest, MultipleProbesUseTheUnionOfOutages) {
  ResultInput in = KillInput();
  in.probes = {
      Scripted("a", 10 * kMs, kInjected, kInjected + 5000 * kMs, kInjected + 50 * kMs,
               kInjected + 400 * kMs),
      Scripted("b", 100 * kMs, kInjected, kInjected + 5000 * kMs, kInjected + 250 * kMs,
               kInjected + 1200 * kMs, 0, 3 * kMs),
      Scripted("c", 10 * kMs, kInjected, kInjected + 5000 * kMs, 0, 0),  // never fails
  };
  auto r = ComputeResult(in);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->time_to_detect_ms, 50);        // probe a fails first
  EXPECT_EQ(r->time_to_recover_ms, 1200);     // probe b recovers last
  EXPECT_EQ(r->outage_ms, 1150);
  EXPECT_EQ(r->error_ms, 103);                // worst interval + its clock error
  ASSERT_EQ(r->probes.size(), 3u);
  EXPECT_TRUE(r->probes[0].failed);
  EXPECT_EQ(r->probes[0].recovered_ns, kInjected + 400 * kMs);
  EXPECT_TRUE(r->probes[1].failed);
  EXPECT_FALSE(r->probes[2].failed);
  EXPECT_EQ(r->verdict, Verdict::kPass);

  // One probe that never recovers fails the run.
  in.probes[1] = Scripted("b", 100 * kMs, kInjected, kInjected + 5000 * kMs,
                          kInjected + 250 * kMs, kInjected + 99'000 * kMs);
  r = ComputeResult(in);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->verdict, Verdict::kFail);
  EXPECT_THAT(r->reason, HasSubstr("probe b"));
}

TEST(ResultTest, SilentProbeFails) {
  ResultInput in = KillInput();
  ProbeSeries silent;
  silent.name = "quiet";
  silent.interval_ns = 10 * kMs;
  silent.samples = {{kInjected - 10 * kMs, true}};  // only before the injection
  in.probes = {Scripted("p", 10 * kMs, kInjected, kInjected + 1000 * kMs, 0, 0), silent};
  auto r = ComputeResult(in);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->verdict, Verdict::kFail);
  EXPECT_THAT(r->reason, HasSubstr("quiet"));
}

TEST(ResultTest, AgentSamplesMappedThroughClockOffset) {
  // The agent's clock runs 2 s ahead; one exchange with a 1 ms round trip. The
  // agent stamps a 700 ms outage on its own clock; after mapping, the figures
  // are measured against the controller's injection time within the error.
  const int64_t truth_offset = 2'000 * kMs;
  auto offset = EstimateClockOffset({{kInjected - 5 * kMs,
                                      kInjected - 4'700'000 + truth_offset, kInjected - 4 * kMs}});
  ASSERT_TRUE(offset.ok());
  std::vector<ProbeObservation> agent;
  for (int64_t t = kInjected - 100 * kMs; t < kInjected + 2000 * kMs; t += 10 * kMs) {
    const bool down = t >= kInjected + 30 * kMs && t < kInjected + 730 * kMs;
    agent.push_back({t + truth_offset, !down});
  }
  ResultInput in = KillInput();
  in.probes = {MapProbeSeries("agent-probe", 10 * kMs, agent, *offset)};
  EXPECT_EQ(in.probes[0].clock_error_ns, 500'000);
  auto r = ComputeResult(in);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->error_ms, 11);  // 10 ms interval + 0.5 ms clock error, rounded up
  EXPECT_LE(std::llabs(r->outage_ms - 700), r->error_ms);
  EXPECT_LE(std::llabs(r->time_to_detect_ms - 30), r->error_ms);
  EXPECT_LE(std::llabs(r->time_to_recover_ms - 730), r->error_ms);
  EXPECT_EQ(r->verdict, Verdict::kPass);
}

TEST(ResultTest, InvalidInputNamesTheField) {
  struct Case {
    std::function<void(ResultInput*)> mutate;
    std::string field;
  };
  const std::vector<Case> cases = {
      {[](ResultInput* in) { in->probes.clear(); }, "probes:"},
      {[](ResultInput* in) { in->recovered_after = 0; }, "recovered_after:"},
      {[](ResultInput* in) { in->rto_ns = -1; }, "rto:"},
      {[](ResultInput* in) { in->probes[0].interval_ns = 0; }, "probes[0].interval_ns:"},
      {[](ResultInput* in) { in->probes[0].clock_error_ns = -5; }, "probes[0].clock_error_ns:"},
      {[](ResultInput* in) { in->experiment_end_ns = kInjected - 1; }, "experiment_end_ns:"},
      {[](ResultInput* in) { in->injected_error_ns = -1; }, "injected_error_ns:"},
  };
  for (const Case& c : cases) {
    ResultInput in = KillInput();
    in.probes = {Scripted("p", 10 * kMs, kInjected, kInjected + 100 * kMs, 0, 0)};
    c.mutate(&in);
    auto r = ComputeResult(in);
    EXPECT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument) << c.field;
    EXPECT_THAT(std::string(r.status().message()), HasSubstr(c.field));
  }
}

}  // namespace
}  // namespace faultline::timeline
