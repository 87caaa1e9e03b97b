// The agent's data writers (agent/data_writers.h): the slots, the checks made
// again on the agent, and every way a writer stops, against a Redis address
// that refuses connections (127.0.0.1:1): each write fails at once.
#include "agent/data_writers.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <chrono>
#include <thread>
#include <vector>

namespace faultline::agent {
namespace {

using ::testing::HasSubstr;
using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

v1::DataWriterControl Start(int64_t max_write_ms) {
  v1::DataWriterControl start;
  start.mutable_workload()->set_name("orders");
  start.mutable_workload()->mutable_redis()->set_address("127.0.0.1:1");
  start.mutable_workload()->set_rate("100/s");
  start.mutable_workload()->set_timeout("50ms");
  start.set_run_id("20261201-040000-abcd");
  start.set_max_write_ms(max_write_ms);
  return start;
}

// What a writer sent, as the RPC would have.
struct Sent {
  std::vector<v1::DataWriterBatch> batches;
  std::vector<int64_t> seqs;
  bool Add(const v1::DataWriterBatch& b) {
    batches.push_back(b);
    for (const auto& w : b.writes()) seqs.push_back(w.seq());
    return true;
  }
};

TEST(DataWriters, AtMostFourAtOnce) {
  DataWriters writers;
  std::vector<std::unique_ptr<DataWriters::Writer>> held;
  for (int i = 0; i < DataWriters::kMaxWriters; ++i) {
    auto w = writers.Admit(Start(1000));
    ASSERT_TRUE(w.ok()) << w.status();
    held.push_back(std::move(*w));
  }
  auto fifth = writers.Admit(Start(1000));
  EXPECT_EQ(fifth.status().code(), absl::StatusCode::kResourceExhausted);
  EXPECT_THAT(fifth.status().message(), HasSubstr("already runs 4 data writers"));
  held.pop_back();  // a slot comes back with its writer
  EXPECT_EQ(writers.running(), 3);
  EXPECT_TRUE(writers.Admit(Start(1000)).ok());
}

TEST(DataWriters, ChecksWhatTheCallerSendsAndTakesNoSlotForIt) {
  DataWriters writers;
  EXPECT_THAT(writers.Admit(Start(0)).status().message(), HasSubstr("max_write_ms"));
  EXPECT_THAT(writers.Admit(Start(7 * 3600 * 1000)).status().message(), HasSubstr("max_write_ms"));
  v1::DataWriterControl fast = Start(1000);
  fast.mutable_workload()->set_rate("5000/s");
  EXPECT_THAT(writers.Admit(fast).status().message(), HasSubstr("workload.rate"));
  v1::DataWriterControl bad_run = Start(1000);
  bad_run.set_run_id("a b");
  EXPECT_THAT(writers.Admit(bad_run).status().message(), HasSubstr("run_id"));
  v1::DataWriterControl no_driver = Start(1000);
  no_driver.mutable_workload()->clear_redis();
  EXPECT_EQ(writers.Admit(no_driver).status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(writers.running(), 0);

  v1::ReadDataRequest read;
  *read.mutable_workload() = Start(1000).workload();
  read.set_run_id("x/y");
  EXPECT_THAT(writers.Read(read).status().message(), HasSubstr("run_id"));
}

TEST(DataWriters, StopsAtItsBoundWithEveryRecordInBatches) {
  DataWriters writers;
  auto w = writers.Admit(Start(700));
  ASSERT_TRUE(w.ok()) << w.status();
  absl::Notification never;
  Sent sent;
  const auto t0 = Clock::now();
  const std::string why = (*w)->Run([&](const v1::DataWriterBatch& b) { return sent.Add(b); },
                                    &never, [] { return false; });
  const auto took = Clock::now() - t0;
  EXPECT_THAT(why, HasSubstr("bound of 700ms passed"));
  EXPECT_GE(took, 700ms);
  EXPECT_LT(took, 1500ms);
  ASSERT_GE(sent.batches.size(), 3u) << "a batch every 200 ms, then the last";
  EXPECT_TRUE(sent.batches.back().done());
  EXPECT_EQ(sent.batches.back().stopped(), why);
  for (size_t i = 0; i + 1 < sent.batches.size(); ++i) EXPECT_FALSE(sent.batches[i].done());
  ASSERT_GT(sent.seqs.size(), 20u) << "100/s for 0.7 s";
  for (size_t i = 0; i < sent.seqs.size(); ++i) EXPECT_EQ(sent.seqs[i], static_cast<int64_t>(i) + 1);
  for (const auto& b : sent.batches) {
    for (const auto& r : b.writes()) EXPECT_EQ(r.outcome(), v1::WriteRecord::FAILED);
  }
}

TEST(DataWriters, StopsWhenTheClientStopsCancelsOrGoes) {
  DataWriters writers;
  {
    auto w = writers.Admit(Start(60000));
    ASSERT_TRUE(w.ok());
    absl::Notification stop;
    std::thread stopper([&] {
      std::this_thread::sleep_for(300ms);
      stop.Notify();
    });
    Sent sent;
    const auto t0 = Clock::now();
    EXPECT_EQ((*w)->Run([&](const v1::DataWriterBatch& b) { return sent.Add(b); }, &stop,
                        [] { return false; }),
              "client");
    stopper.join();
    EXPECT_LT(Clock::now() - t0, 1s);
    ASSERT_FALSE(sent.batches.empty());
    EXPECT_TRUE(sent.batches.back().done()) << "the last records reach a client that stopped";
  }
  {
    auto w = writers.Admit(Start(60000));
    ASSERT_TRUE(w.ok());
    absl::Notification never;
    Sent sent;
    const auto t0 = Clock::now();
    EXPECT_EQ((*w)->Run([&](const v1::DataWriterBatch& b) { return sent.Add(b); }, &never,
                        [&] { return Clock::now() - t0 > 300ms; }),
              "call cancelled");
    for (const auto& b : sent.batches) EXPECT_FALSE(b.done()) << "nobody to send the last to";
  }
  {
    auto w = writers.Admit(Start(60000));
    ASSERT_TRUE(w.ok());
    absl::Notification never;
    int calls = 0;
    EXPECT_EQ((*w)->Run([&](const v1::DataWriterBatch&) { return ++calls < 2; }, &never,
                        [] { return false; }),
              "client gone");
    EXPECT_EQ(calls, 2);
  }
  EXPECT_EQ(writers.running(), 0);
}

TEST(DataWriters, ShutdownStopsEveryWriterAndAdmitsNoMore) {
  DataWriters writers;
  auto w = writers.Admit(Start(60000));
  ASSERT_TRUE(w.ok());
  absl::Notification never;
  std::string why;
  const auto t0 = Clock::now();
  std::thread run([&] {
    why = (*w)->Run([](const v1::DataWriterBatch&) { return true; }, &never, [] { return false; });
  });
  std::this_thread::sleep_for(300ms);
  writers.Shutdown();
  run.join();
  EXPECT_EQ(why, "agent shutting down");
  EXPECT_LT(Clock::now() - t0, 1s);
  EXPECT_EQ(writers.Admit(Start(1000)).status().code(), absl::StatusCode::kUnavailable);
}

// A finished writer's driver waits for its workload's ReadData (which then
// starts with the Sentinel the writer used last); bounded in number.
TEST(DataWriters, ReadDataTakesTheDriverItsWriterUsed) {
  DataWriters writers;
  absl::Notification stopped;
  stopped.Notify();
  auto run = [&](const v1::DataWriterControl& start) {
    auto w = writers.Admit(start);
    ASSERT_TRUE(w.ok()) << w.status();
    (*w)->Run([](const v1::DataWriterBatch&) { return true; }, &stopped, [] { return false; });
  };
  run(Start(1000));
  EXPECT_EQ(writers.kept(), 1);
  run(Start(1000));  // the same run and workload again: one kept
  EXPECT_EQ(writers.kept(), 1);

  v1::ReadDataRequest other;
  *other.mutable_workload() = Start(1000).workload();
  other.mutable_workload()->set_rate("50/s");  // another spec: a driver of its own
  other.set_run_id(Start(1000).run_id());
  other.set_cleanup(true);
  other.set_cleanup_timeout_ms(100);
  ASSERT_TRUE(writers.Read(other).ok());
  EXPECT_EQ(writers.kept(), 1);
  v1::ReadDataRequest same = other;
  *same.mutable_workload() = Start(1000).workload();
  auto read = writers.Read(same);
  ASSERT_TRUE(read.ok()) << read.status();
  EXPECT_THAT(read->cleanup_error(), HasSubstr("127.0.0.1:1"));
  EXPECT_EQ(writers.kept(), 0) << "taken by its ReadData";

  for (int i = 0; i < 20; ++i) {
    v1::DataWriterControl start = Start(1000);
    start.set_run_id("run-" + std::to_string(i));
    run(start);
  }
  EXPECT_EQ(writers.kept(), 16) << "the oldest go first";
}

}  // namespace
}  // namespace faultline::agent
