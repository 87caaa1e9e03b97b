#include "controller/run_result.h"

#include <gtest/gtest.h>

namespace faultline::controller {
namespace {

constexpr int64_t kMs = 1000000;

TEST(ClockOffset, UsesTheShortestRoundTrip) {
  // Agent clock is 5 s ahead. The slow exchange has an asymmetric delay that
  // would skew the estimate by 40 ms.
  std::vector<ClockExchange> ex = {
      {1000 * kMs, 1000 * kMs + 5000 * kMs + 90 * kMs, 1100 * kMs},  // rtt 100 ms
      {2000 * kMs, 2000 * kMs + 5000 * kMs + 1 * kMs, 2002 * kMs},   // rtt 2 ms
  };
  ClockOffset o = EstimateClockOffset(ex);
  EXPECT_EQ(o.offset_ns, 5000 * kMs);
  EXPECT_EQ(o.error_ns, 1 * kMs);
  EXPECT_EQ(o.ToController(9000 * kMs), 4000 * kMs);
}

ProbeSeries Series(int64_t start_ms, int64_t interval_ms, const std::string& pattern) {
  ProbeSeries s;
  s.name = "p";
  s.interval_ns = interval_ms * kMs;
  for (size_t i = 0; i < pattern.size(); ++i) {
    s.samples.push_back({(start_ms + static_cast<int64_t>(i) * interval_ms) * kMs,
                         pattern[i] == '+'});
  }
  return s;
}

ResultInputs Inputs(ProbeSeries s) {
  ResultInputs in;
  in.injected_ns = 1000 * kMs;
  in.fault_end_ns = 5000 * kMs;
  in.rto_ns = 1000 * kMs;
  in.recovered_after = 3;
  in.clock_error_ns = 2 * kMs;
  in.probes.push_back(std::move(s));
  return in;
}

TEST(ComputeResult, NoFailureIsAPassWithZeros) {
  ResultFigures r = ComputeResult(Inputs(Series(0, 100, "++++++++++++++++++++")));
  EXPECT_FALSE(r.outage_observed);
  EXPECT_EQ(r.verdict, "pass");
  EXPECT_EQ(r.time_to_recover_ms, 0);
  EXPECT_TRUE(r.recovered_during_fault);
  EXPECT_DOUBLE_EQ(r.error_ms, 102);
}

TEST(ComputeResult, MeasuresDetectOutageRecover) {
  // Samples every 100 ms from t=0; injected at 1000. Fails at 1200..1600,
  // a lone success at 1700 (not recovered: 3 needed), fail at 1800, then ok
  // from 1900 on.
  //                               0123456789012345678901234
  ResultFigures r = ComputeResult(Inputs(Series(0, 100, "++++++++++++-----+-++++++++")));
  EXPECT_TRUE(r.outage_observed);
  EXPECT_TRUE(r.recovered);
  EXPECT_DOUBLE_EQ(r.time_to_detect_ms, 200);
  EXPECT_DOUBLE_EQ(r.outage_ms, 700);
  EXPECT_DOUBLE_EQ(r.time_to_recover_ms, 900);
  EXPECT_TRUE(r.recovered_during_fault);
  EXPECT_EQ(r.verdict, "pass");
}

TEST(ComputeResult, FailuresBeforeInjectionDoNotCount) {
  ResultFigures r = ComputeResult(Inputs(Series(0, 100, "+-++++++++++++++++")));
  EXPECT_FALSE(r.outage_observed);
  EXPECT_EQ(r.verdict, "pass");
}

TEST(ComputeResult, SlowerThanRtoFails) {
  ResultInputs in = Inputs(Series(0, 100, "++++++++++----------------+++++"));
  ResultFigures r = ComputeResult(in);
  EXPECT_DOUBLE_EQ(r.time_to_recover_ms, 1600);
  EXPECT_EQ(r.verdict, "fail");
  in.rto_ns = 2000 * kMs;
  EXPECT_EQ(ComputeResult(in).verdict, "pass");
}

TEST(ComputeResult, RecoveryAfterTheFaultEndedIsNoFailover) {
  ResultInputs in = Inputs(Series(0, 100, "++++++++++--------------++++"));
  in.fault_end_ns = 2000 * kMs;  // recovered at 2400
  in.rto_ns = 10000 * kMs;
  ResultFigures r = ComputeResult(in);
  EXPECT_TRUE(r.recovered);
  EXPECT_FALSE(r.recovered_during_fault);
  EXPECT_EQ(r.verdict, "fail");
}

TEST(ComputeResult, NeverRecoveredFails) {
  ResultFigures r = ComputeResult(Inputs(Series(0, 100, "++++++++++------++-")));
  EXPECT_TRUE(r.outage_observed);
  EXPECT_FALSE(r.recovered);
  EXPECT_EQ(r.verdict, "fail");
  EXPECT_DOUBLE_EQ(r.outage_ms, 800);
}

TEST(ComputeResult, LastProbeToRecoverDecides) {
  ResultInputs in = Inputs(Series(0, 100, "++++++++++---+++++++++"));
  in.probes.push_back(Series(50, 100, "++++++++++++------++++++++"));
  ResultFigures r = ComputeResult(in);
  EXPECT_DOUBLE_EQ(r.time_to_detect_ms, 0);       // first probe fails at 1000
  EXPECT_DOUBLE_EQ(r.time_to_recover_ms, 850);    // second recovers at 1850
  EXPECT_DOUBLE_EQ(r.error_ms, 102);
}

}  // namespace
}  // namespace faultline::controller

namespace faultline::controller {
namespace {

TEST(ComputeResult, ALateSampleWidensTheError) {
  ProbeSeries s = Series(0, 100, "++++++++++-----+++++");
  s.samples[10].t_ns += 30 * kMs;  // the first failure was sampled 30 ms late
  ResultFigures r = ComputeResult(Inputs(s));
  EXPECT_DOUBLE_EQ(r.error_ms, 132);
}

}  // namespace
}  // namespace faultline::controller
