#include "controller/timeline/clock_offset.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cstdlib>

namespace faultline::timeline {
namespace {

using ::testing::HasSubstr;

TEST(ClockOffsetTest, SymmetricExchangeGivesExactOffset) {
  // Agent is 5 s ahead; 2 ms each way; agent reads its clock at the midpoint.
  const int64_t offset = 5'000'000'000;
  ClockExchange e{1'000'000'000, 1'002'000'000 + offset, 1'004'000'000};
  auto got = OffsetFromExchange(e);
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_EQ(got->offset_ns, offset);
  EXPECT_EQ(got->error_ns, 2'000'000);
  EXPECT_EQ(got->rtt_ns, 4'000'000);
}

TEST(ClockOffsetTest, AsymmetricDelayStaysWithinErrorBound) {
  // True offset -3.7 ms; the request takes 9 ms, the reply 1 ms: the estimate
  // is off, but by no more than RTT/2.
  const int64_t truth = -3'700'000;
  for (int64_t there : {0LL, 1'000'000LL, 5'000'000LL, 9'000'000LL, 10'000'000LL}) {
    const int64_t t0 = 1'700'000'000'000'000'000;
    const int64_t t1 = t0 + there + truth;
    const int64_t t2 = t0 + 10'000'000;
    auto got = OffsetFromExchange({t0, t1, t2});
    ASSERT_TRUE(got.ok());
    EXPECT_LE(std::llabs(got->offset_ns - truth), got->error_ns) << "there=" << there;
    EXPECT_EQ(got->error_ns, 5'000'000);
  }
}

TEST(ClockOffsetTest, OddRoundTripRoundsErrorUp) {
  auto got = OffsetFromExchange({0, 100, 3});
  ASSERT_TRUE(got.ok());
  EXPECT_EQ(got->error_ns, 2);
  EXPECT_EQ(got->offset_ns, 99);
}

TEST(ClockOffsetTest, EstimatePicksSmallestRoundTrip) {
  const int64_t truth = 42'000'000;
  std::vector<ClockExchange> xs = {
      {0, 30'000'000 + truth, 50'000'000},           // rtt 50 ms, skewed
      {100'000'000, 100'400'000 + truth, 100'600'000},  // rtt 0.6 ms
      {200'000'000, 201'000'000 + truth, 210'000'000},  // rtt 10 ms
  };
  auto got = EstimateClockOffset(xs);
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_EQ(got->rtt_ns, 600'000);
  EXPECT_EQ(got->error_ns, 300'000);
  EXPECT_LE(std::llabs(got->offset_ns - truth), got->error_ns);
}

TEST(ClockOffsetTest, EstimateRejectsEmptyAndBackwardsSamples) {
  auto empty = EstimateClockOffset({});
  EXPECT_EQ(empty.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(empty.status().message()), HasSubstr("exchanges"));

  auto backwards = EstimateClockOffset({{0, 5, 10}, {100, 50, 90}});
  EXPECT_EQ(backwards.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(backwards.status().message()), HasSubstr("exchanges[1]"));
}

TEST(ClockOffsetTest, MappingRoundTripsAndCarriesError) {
  ClockOffset offset{7'000'000, 250'000, 500'000};
  MappedTime c = ToControllerClock(1'000'000'000, offset);
  EXPECT_EQ(c.ns, 993'000'000);
  EXPECT_EQ(c.error_ns, 250'000);
  MappedTime a = ToAgentClock(c.ns, offset);
  EXPECT_EQ(a.ns, 1'000'000'000);
}

TEST(ClockOffsetTest, MappedEventWithinBoundOfTruth) {
  // An event happens at controller time T; the agent stamps it T + truth. After
  // estimating the offset from an asymmetric exchange the mapped time is within
  // the error bound of T.
  const int64_t truth = 123'456'789;
  const int64_t t0 = 5'000'000'000;
  auto offset = EstimateClockOffset({{t0, t0 + 700'000 + truth, t0 + 1'000'000}});
  ASSERT_TRUE(offset.ok());
  const int64_t event = 9'000'000'000;
  MappedTime m = ToControllerClock(event + truth, *offset);
  EXPECT_LE(std::llabs(m.ns - event), m.error_ns);
  EXPECT_EQ(m.error_ns, 500'000);
}

}  // namespace
}  // namespace faultline::timeline
