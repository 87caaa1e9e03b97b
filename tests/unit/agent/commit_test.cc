// The two phases of a coordinated start on one agent: a prepared fault is
// recorded but not applied; Commit applies it at the instant asked for (on this
// host's realtime clock) and it ends at that instant + its duration; a
// prepared fault whose lease lapses is forgotten and never applied.
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <memory>
#include <string>
#include <thread>

#include "agent/fault_manager.h"
#include "agent/faults/proc_process_table.h"
#include "agent/faults/process_faults.h"
#include "common/clock.h"
#include "common/endpoint.h"
#include "fmt/format.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace faultline::agent {
namespace {

using ::testing::HasSubstr;

char StateOf(pid_t pid) {
  auto stat = ReadFileToString(fmt::format("/proc/{}/stat", pid));
  if (!stat.ok()) return '?';
  const size_t paren = stat->rfind(')');
  return paren + 2 < stat->size() ? (*stat)[paren + 2] : '?';
}

// Realtime ns at which `pid` first shows `want` (polled every 0.5 ms for at
// most `limit`), or 0.
int64_t WhenState(pid_t pid, bool stopped, std::chrono::milliseconds limit) {
  const auto end = std::chrono::steady_clock::now() + limit;
  while (std::chrono::steady_clock::now() < end) {
    if ((StateOf(pid) == 'T') == stopped) return NowRealtimeNs();
    std::this_thread::sleep_for(std::chrono::microseconds(500));
  }
  return 0;
}

class CommitTest : public ::testing::Test {
 protected:
  void SetUp() override {
    child_ = ::fork();
    ASSERT_GE(child_, 0);
    if (child_ == 0) {
      ::execl("/bin/sleep", "sleep", "30", nullptr);
      ::_exit(127);
    }
    for (int i = 0; i < 200; ++i) {  // until it is `sleep` (bounded: 2 s)
      auto comm = ReadFileToString(fmt::format("/proc/{}/comm", child_));
      if (comm.ok() && comm->rfind("sleep", 0) == 0) break;
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    dir_ = std::filesystem::temp_directory_path() /
           fmt::format("fltest-commit-{}-{}", ::getpid(), counter_++);
    policy_ = std::make_unique<v1::Policy>();
    processes_ = std::make_unique<ProcProcessTable>("/proc");
    FaultContext ctx;
    ctx.policy = policy_.get();
    ctx.processes = processes_.get();
    ctx.agent_pid = ::getpid();
    std::vector<std::unique_ptr<FaultHandler>> handlers;
    handlers.push_back(MakePauseHandler());
    auto ledger = Ledger::Open(dir_.string());
    ASSERT_TRUE(ledger.ok()) << ledger.status();
    manager_ = std::make_unique<FaultManager>(std::move(*ledger), std::move(handlers), ctx);
    manager_->Start();
  }
  void TearDown() override {
    manager_.reset();
    ::kill(child_, SIGKILL);
    ::waitpid(child_, nullptr, 0);
    std::error_code ec;
    std::filesystem::remove_all(dir_, ec);
  }

  v1::InjectRequest PreparePause(const std::string& duration, int64_t ttl_ms = 5000) {
    v1::InjectRequest req;
    req.mutable_spec()->mutable_pause()->mutable_process()->set_pid(child_);
    req.mutable_spec()->set_duration(duration);
    req.set_lease_id("run-1");
    req.set_lease_ttl_ms(ttl_ms);
    req.set_prepare_only(true);
    return req;
  }

  size_t LedgerFiles() {
    size_t n = 0;
    for (const auto& e : std::filesystem::directory_iterator(dir_ / "ledger")) {
      if (e.path().extension() == ".fault") ++n;
    }
    return n;
  }

  static inline int counter_ = 0;
  pid_t child_ = -1;
  std::filesystem::path dir_;
  std::unique_ptr<v1::Policy> policy_;
  std::unique_ptr<ProcProcessTable> processes_;
  std::unique_ptr<FaultManager> manager_;
};

TEST_F(CommitTest, PreparedIsRecordedNotAppliedThenStartsAndEndsOnTime) {
  auto prepared = manager_->Inject(PreparePause("500ms"));
  ASSERT_TRUE(prepared.ok()) << prepared.status();
  EXPECT_EQ(prepared->fault().state(), v1::FAULT_STATE_PREPARED);
  EXPECT_EQ(LedgerFiles(), 1u);
  std::this_thread::sleep_for(std::chrono::milliseconds(50));
  EXPECT_NE(StateOf(child_), 'T') << "a prepared fault must not be applied";
  ASSERT_EQ(manager_->List().size(), 1u);

  const int64_t start = NowRealtimeNs() + 300'000'000;  // 300 ms ahead
  std::thread commit([&] {
    auto applied = manager_->Commit({prepared->fault().id()}, start);
    ASSERT_TRUE(applied.ok()) << applied.status();
    ASSERT_EQ(applied->size(), 1u);
    EXPECT_EQ((*applied)[0].state(), v1::FAULT_STATE_ACTIVE);
    EXPECT_GE((*applied)[0].injected_unix_ns(), start);
  });
  const int64_t stopped = WhenState(child_, true, std::chrono::seconds(2));
  const int64_t resumed = WhenState(child_, false, std::chrono::seconds(2));
  commit.join();
  ASSERT_NE(stopped, 0);
  ASSERT_NE(resumed, 0);
  const double start_late_ms = static_cast<double>(stopped - start) / 1e6;
  const double end_late_ms = static_cast<double>(resumed - (start + 500'000'000)) / 1e6;
  std::printf("stopped %.2f ms after the start instant, resumed %.2f ms after start + 500 ms\n",
              start_late_ms, end_late_ms);
  EXPECT_GE(start_late_ms, 0);
  EXPECT_LT(start_late_ms, 20);
  EXPECT_GT(end_late_ms, -5);
  EXPECT_LT(end_late_ms, 50);

  // The lease holder learns when the agent ended it by itself, once.
  auto after = manager_->RevertAll("run-1", "request");
  ASSERT_TRUE(after.ok()) << after.status();
  ASSERT_EQ(after->size(), 1u);
  EXPECT_EQ((*after)[0].revert_reason(), "deadline");
  EXPECT_NEAR(static_cast<double>((*after)[0].reverted_unix_ns() - (start + 500'000'000)) / 1e6, 0, 50);
  after = manager_->RevertAll("run-1", "request");
  ASSERT_TRUE(after.ok());
  EXPECT_TRUE(after->empty());
}

// A Commit that arrives after T (a slow network, a busy host) applies at once
// and still ends at T + duration: every agent of the start ends together.
TEST_F(CommitTest, ALateCommitStillEndsAtTheStartInstantPlusDuration) {
  auto prepared = manager_->Inject(PreparePause("600ms"));
  ASSERT_TRUE(prepared.ok()) << prepared.status();
  const int64_t start = NowRealtimeNs() - 250'000'000;  // T was 250 ms ago
  auto applied = manager_->Commit({prepared->fault().id()}, start);
  ASSERT_TRUE(applied.ok()) << applied.status();
  ASSERT_EQ(applied->size(), 1u);
  EXPECT_EQ((*applied)[0].deadline_unix_ns(), start + 600'000'000);
  EXPECT_EQ(StateOf(child_), 'T');
  const int64_t resumed = WhenState(child_, false, std::chrono::seconds(2));
  ASSERT_NE(resumed, 0);
  const double end_late_ms = static_cast<double>(resumed - (start + 600'000'000)) / 1e6;
  std::printf("resumed %.2f ms after T + 600 ms (applied 250 ms late)\n", end_late_ms);
  EXPECT_GT(end_late_ms, -5);
  EXPECT_LT(end_late_ms, 50) << "it must not run its whole 600 ms from the late apply";
}

// The committing thread waits for T at real-time priority and gives it back
// once its faults are applied (the thread here is the caller's).
TEST_F(CommitTest, TheCommittingThreadReturnsToItsOwnSchedulingPolicy) {
  auto prepared = manager_->Inject(PreparePause("300ms"));
  ASSERT_TRUE(prepared.ok()) << prepared.status();
  int policy = -1;
  sched_param param{};
  ASSERT_EQ(pthread_getschedparam(pthread_self(), &policy, &param), 0);
  ASSERT_EQ(policy, SCHED_OTHER);
  auto applied = manager_->Commit({prepared->fault().id()}, NowRealtimeNs() + 50'000'000);
  ASSERT_TRUE(applied.ok()) << applied.status();
  ASSERT_EQ(pthread_getschedparam(pthread_self(), &policy, &param), 0);
  EXPECT_EQ(policy, SCHED_OTHER);
  EXPECT_EQ(param.sched_priority, 0);
}

TEST_F(CommitTest, APreparedFaultWhoseLeaseLapsesIsNeverApplied) {
  auto prepared = manager_->Inject(PreparePause("10s", /*ttl_ms=*/200));
  ASSERT_TRUE(prepared.ok()) << prepared.status();
  std::this_thread::sleep_for(std::chrono::milliseconds(500));
  EXPECT_TRUE(manager_->List().empty());
  EXPECT_EQ(LedgerFiles(), 0u);
  auto late = manager_->Commit({prepared->fault().id()}, 0);
  EXPECT_EQ(late.status().code(), absl::StatusCode::kNotFound);
  EXPECT_NE(StateOf(child_), 'T');
}

TEST_F(CommitTest, RefusalsChangeNothing) {
  v1::InjectRequest no_lease = PreparePause("10s");
  no_lease.clear_lease_id();
  EXPECT_THAT(manager_->Inject(no_lease).status().message(), HasSubstr("prepare_only: needs a lease_id"));

  auto prepared = manager_->Inject(PreparePause("10s"));
  ASSERT_TRUE(prepared.ok()) << prepared.status();
  auto far = manager_->Commit({prepared->fault().id()}, NowRealtimeNs() + 60'000'000'000);
  EXPECT_EQ(far.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(far.status().message(), HasSubstr("start_at_unix_ns:"));
  auto unknown = manager_->Commit({prepared->fault().id(), "f000000000000"}, 0);
  EXPECT_EQ(unknown.status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(unknown.status().message(), HasSubstr("ids[1]: no prepared fault"));
  EXPECT_NE(StateOf(child_), 'T');

  // An abort before the start forgets it: nothing to apply any more.
  auto reverted = manager_->RevertAll("run-1", "request");
  ASSERT_TRUE(reverted.ok()) << reverted.status();
  ASSERT_EQ(reverted->size(), 1u);
  EXPECT_EQ((*reverted)[0].state(), v1::FAULT_STATE_REVERTED);
  EXPECT_EQ(LedgerFiles(), 0u);
  EXPECT_EQ(manager_->Commit({prepared->fault().id()}, 0).status().code(), absl::StatusCode::kNotFound);
  EXPECT_NE(StateOf(child_), 'T');
}

}  // namespace
}  // namespace faultline::agent
