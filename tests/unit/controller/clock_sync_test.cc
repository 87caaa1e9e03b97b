// Clock sync through its adaptive window (controller/clock_sync.h), against
// in-process fake agents over loopback gRPC: every agent synced, the window
// within its ceiling, connects apart from the measured exchanges, a window
// that narrows when the answers slow down with the calls in flight, and an
// unreachable agent named without holding up the others.
#include "controller/clock_sync.h"

#include <gmock/gmock.h>
#include <grpcpp/create_channel.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <memory>
#include <string>
#include <vector>

#include "common/clock.h"
#include "tests/unit/controller/fake_agent.h"

namespace faultline::controller {
namespace {

using ::faultline::testing::FakeAgent;
using ::testing::HasSubstr;

struct Fleet {
  explicit Fleet(int n) {
    for (int i = 0; i < n; ++i) {
      agents.push_back(std::make_unique<FakeAgent>(fmt::format("agent-{:02}", i),
                                                   std::map<std::string, std::string>{},
                                                   /*skew_ns=*/i * 1'000'000, nullptr));
      clients.push_back(std::make_shared<AgentClient>(
          agents.back()->name(), agents.back()->address(),
          grpc::CreateChannel(agents.back()->address(), grpc::InsecureChannelCredentials())));
    }
  }
  std::vector<std::unique_ptr<FakeAgent>> agents;
  std::vector<std::shared_ptr<AgentClient>> clients;
};

TEST(ClockSync, EveryAgentWithinTheCeilingConnectsApart) {
  Fleet f(12);
  ClockSyncOptions o;
  o.max_in_flight = 3;
  ClockSyncStats stats;
  std::vector<ClockSyncResult> r = SyncClocks(f.clients, o, &stats);
  ASSERT_EQ(r.size(), 12u);
  for (size_t i = 0; i < r.size(); ++i) {
    ASSERT_TRUE(r[i].offset.ok()) << r[i].offset.status();
    // Each fake agent's clock runs i ms ahead; the estimate holds it.
    EXPECT_LE(std::abs(r[i].offset->offset_ns - static_cast<int64_t>(i) * 1'000'000),
              r[i].offset->error_ns + 1)
        << "agent " << i;
    EXPECT_GE(r[i].exchanges, 2) << "a connect, then at least one measured exchange";
    EXPECT_LE(r[i].exchanges, 1 + o.exchanges);
    EXPECT_GT(r[i].synced_ns, 0);
  }
  EXPECT_EQ(stats.connects, 12u);
  EXPECT_LE(stats.widest, 3u);
  EXPECT_GT(stats.best_rtt_ns, 0);

  // Connected now: no connects the second time, and the window may open wide.
  o.max_in_flight = 0;
  r = SyncClocks(f.clients, o, &stats);
  for (const ClockSyncResult& x : r) ASSERT_TRUE(x.offset.ok()) << x.offset.status();
  EXPECT_EQ(stats.connects, 0u);
  EXPECT_GE(stats.widest, 8u);  // it starts 8 wide
  EXPECT_LE(stats.widest, 12u);

  // One at a time, as asked.
  o.max_in_flight = 1;
  r = SyncClocks(f.clients, o, &stats);
  for (const ClockSyncResult& x : r) ASSERT_TRUE(x.offset.ok()) << x.offset.status();
  EXPECT_EQ(stats.widest, 1u);
}

// Answers that take 0.5 ms per call in progress (agents and controller short
// of cores, like scripts/bench's fleet): the window narrows instead of
// stretching every round trip, and the clocks come out about as good as one
// at a time.
TEST(ClockSync, TheWindowNarrowsWhenAnswersSlowWithTheCallsInFlight) {
  Fleet f(24);
  std::atomic<int> crowd{0};
  ClockSyncOptions o;
  SyncClocks(f.clients, o);  // connect first: the crowd then slows measured calls only
  for (auto& a : f.agents) {
    a->crowd_delay_us = 500;
    a->crowd = &crowd;
  }
  ClockSyncStats crowded;
  std::vector<ClockSyncResult> r = SyncClocks(f.clients, o, &crowded);
  std::vector<int64_t> errors;
  for (const ClockSyncResult& x : r) {
    ASSERT_TRUE(x.offset.ok()) << x.offset.status();
    errors.push_back(x.offset->error_ns);
  }
  std::sort(errors.begin(), errors.end());
  const int64_t median = errors[errors.size() / 2];
  const int64_t worst = errors.back();
  std::printf("crowded: %zu exchanges, at most %zu at once, best round trip %.2f ms, error "
              "median %.2f ms, worst %.2f ms\n",
              crowded.exchanges, crowded.widest, crowded.best_rtt_ns / 1e6, median / 1e6,
              worst / 1e6);
  // All 24 at once would take 12 ms a call (error 6 ms); it backs off before.
  EXPECT_LT(crowded.widest, 24u);
  EXPECT_LE(median, 2 * crowded.best_rtt_ns);  // all at once: ~6x the best round trip
  EXPECT_LE(crowded.exchanges, 24u * 5);  // never more than 5 measured each (no connects now)
  for (auto& a : f.agents) a->crowd = nullptr;
}

TEST(ClockSync, AnUnreachableAgentIsNamedAndTheOthersSynced) {
  Fleet f(3);
  FakeAgent gone("gone", {}, 0, nullptr);
  const std::string address = gone.address();
  gone.Stop();
  f.clients.push_back(std::make_shared<AgentClient>(
      "gone", address, grpc::CreateChannel(address, grpc::InsecureChannelCredentials())));
  ClockSyncOptions o;
  o.timeout = std::chrono::milliseconds(500);
  std::vector<ClockSyncResult> r = SyncClocks(f.clients, o);
  ASSERT_EQ(r.size(), 4u);
  for (int i = 0; i < 3; ++i) EXPECT_TRUE(r[i].offset.ok()) << r[i].offset.status();
  ASSERT_FALSE(r[3].offset.ok());
  EXPECT_THAT(r[3].offset.status().message(), HasSubstr("agent gone"));
}

TEST(ClockSync, NoAgentsNoCalls) {
  ClockSyncStats stats;
  EXPECT_TRUE(SyncClocks({}, ClockSyncOptions(), &stats).empty());
  EXPECT_EQ(stats.exchanges, 0u);
}

}  // namespace
}  // namespace faultline::controller
