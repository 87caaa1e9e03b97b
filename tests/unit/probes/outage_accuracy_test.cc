// The probe runner and the timeline maths together, against ground truth on
// loopback: a TCP service that stops listening for exactly 700 ms. The measured
// outage (first failed probe -> first of 3 successes) must be within error_ms of
// the truth, at 10 ms and at 100 ms probe intervals.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cstdio>
#include <cstdlib>
#include <memory>
#include <thread>
#include <vector>

#include "probes/probe_runner.h"
#include "common/clock.h"
#include "controller/timeline/result.h"
#include "tests/unit/probes/loopback_server.h"

namespace faultline {
namespace {

using testing_util::Listener;
using timeline::ComputeResult;
using timeline::ProbeObservation;
using timeline::ProbeSeries;
using timeline::ResultInput;

constexpr int64_t kMs = 1'000'000;

void SleepUntil(int64_t mono_ns) {
  const int64_t left = mono_ns - NowMonotonicNs();
  if (left > 0) std::this_thread::sleep_for(std::chrono::nanoseconds(left));
}

class OutageAccuracyTest : public ::testing::TestWithParam<int> {};

TEST_P(OutageAccuracyTest, MeasuredOutageWithinErrorOfTruth) {
  const int interval_ms = GetParam();
  auto listener = std::make_unique<Listener>();
  ASSERT_TRUE(listener->ok());
  const int port = listener->port();

  v1::ProbeSpec spec;
  spec.mutable_tcp()->set_address("127.0.0.1:" + std::to_string(port));
  spec.set_interval(std::to_string(interval_ms) + "ms");
  spec.set_timeout("5ms");

  // The service script: up, down for 700 ms (listener closed), up again.
  const int64_t t_start = NowMonotonicNs();
  const int64_t t_inject = t_start + 300 * kMs;
  const int64_t t_down = t_inject + 40 * kMs;  // the fault takes effect a little later
  const int64_t t_end = t_down + 700 * kMs + 8 * interval_ms * kMs + 200 * kMs;
  int64_t truth_down = 0;
  int64_t truth_up = 0;

  std::vector<ProbeObservation> observed;
  std::thread prober([&] {
    absl::Status status = RunProbeLoop(spec, 0, [&](const v1::ProbeSample& s) {
      observed.push_back({s.start_mono_ns(), s.ok()});
      return s.start_mono_ns() < t_end;
    });
    EXPECT_TRUE(status.ok()) << status;
  });
  SleepUntil(t_down);
  listener->Close();
  truth_down = NowMonotonicNs();
  SleepUntil(truth_down + 700 * kMs);
  listener = std::make_unique<Listener>(port);
  truth_up = NowMonotonicNs();
  prober.join();
  ASSERT_TRUE(listener->ok()) << "could not listen on port " << port << " again";

  ResultInput in;
  in.injected_ns = t_inject;
  in.experiment_end_ns = t_end + 1000 * kMs;
  in.faults = {timeline::FaultWindow{0, /*is_action=*/true}};
  in.rto_ns = 5000 * kMs;
  in.recovered_after = 3;
  ProbeSeries series;
  series.name = "tcp";
  series.interval_ns = interval_ms * kMs;
  series.samples = observed;
  in.probes = {series};
  auto r = ComputeResult(in);
  ASSERT_TRUE(r.ok()) << r.status();

  const int64_t truth_outage_ms = (truth_up - truth_down) / kMs;
  const int64_t truth_detect_ms = (truth_down - t_inject) / kMs;
  const int64_t truth_recover_ms = (truth_up - t_inject) / kMs;
  std::printf("interval %d ms: outage truth %lld ms, measured %lld ms +- %lld ms\n",
              interval_ms, static_cast<long long>(truth_outage_ms),
              static_cast<long long>(r->outage_ms), static_cast<long long>(r->error_ms));
  EXPECT_TRUE(r->outage_observed);
  EXPECT_TRUE(r->recovered) << r->reason;
  EXPECT_EQ(r->error_ms, interval_ms);
  // The truth is measured around close()/listen() themselves, so allow 1 ms more.
  EXPECT_LE(std::llabs(r->outage_ms - truth_outage_ms), r->error_ms + 1);
  EXPECT_LE(std::llabs(r->time_to_detect_ms - truth_detect_ms), r->error_ms + 1);
  EXPECT_LE(std::llabs(r->time_to_recover_ms - truth_recover_ms), r->error_ms + 1);
  EXPECT_EQ(r->verdict, timeline::Verdict::kPass) << r->reason;
}

INSTANTIATE_TEST_SUITE_P(Intervals, OutageAccuracyTest, ::testing::Values(10, 100));

}  // namespace
}  // namespace faultline
