// ProcProcessTable and the process faults against real child processes this
// test forks. Only those children are signalled, by pid; every wait is bounded.
#include "agent/faults/proc_process_table.h"

#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <csignal>
#include <fstream>
#include <functional>
#include <future>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "agent/faults/process_faults.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace faultline::agent {
namespace {

using ::testing::HasSubstr;

// Polls `cond` every 10 ms for at most `limit`.
bool WaitFor(const std::function<bool()>& cond,
             std::chrono::milliseconds limit = std::chrono::milliseconds(5000)) {
  const auto end = std::chrono::steady_clock::now() + limit;
  while (std::chrono::steady_clock::now() < end) {
    if (cond()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  return cond();
}

// Until exec completes the child is still a copy of this test; the kernel sets
// comm before the new program's arguments, so wait for both (bounded).
bool WaitForExec(ProcProcessTable& table, pid_t pid) {
  return WaitFor([&] {
    auto p = table.Get(pid);
    return p.ok() && p->comm == "sleep" && !p->cmdline.empty();
  });
}

// A `sleep 30 1` child that dies with this test process (PR_SET_PDEATHSIG) and
// is SIGKILLed and reaped by the destructor.
class Child {
 public:
  Child() {
    // argv is built before fork: the child only calls async-signal-safe code.
    char* const argv[] = {const_cast<char*>("sleep"), const_cast<char*>("30"),
                          const_cast<char*>("1"), nullptr};
    const pid_t parent = getpid();
    pid_ = fork();
    if (pid_ == 0) {
      prctl(PR_SET_PDEATHSIG, SIGKILL);
      if (getppid() != parent) _exit(1);
      execv("/bin/sleep", argv);
      _exit(127);
    }
  }
  Child(const Child&) = delete;
  Child& operator=(const Child&) = delete;
  ~Child() {
    if (pid_ <= 0 || reaped_) return;
    kill(pid_, SIGKILL);
    Wait(std::chrono::milliseconds(5000));
  }
  pid_t pid() const { return pid_; }

  // Reaps the child if it exits within `limit`; returns its wait status.
  std::optional<int> Wait(std::chrono::milliseconds limit) {
    int status = 0;
    bool done = WaitFor(
        [&] {
          pid_t r = waitpid(pid_, &status, WNOHANG);
          return r == pid_;
        },
        limit);
    if (!done) return std::nullopt;
    reaped_ = true;
    return status;
  }

 private:
  pid_t pid_ = -1;
  bool reaped_ = false;
};

std::string ReadFile(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

TEST(ParseProcStatTest, CommWithSpacesAndParentheses) {
  ProcessInfo info;
  // comm "a) (b c" and 52 fields; flags (field 9) has PF_KTHREAD; start time 987654.
  const std::string stat =
      "42 (a) (b c) S 2 0 0 0 -1 2129984 0 0 0 0 0 0 0 0 20 0 1 0 987654 0 0 "
      "18446744073709551615 0 0 0 0 0 0 0 2147483647 0 0 0 0 17 3 0 0 0 0 0 0 0 0 0 0 0 0 0\n";
  ASSERT_TRUE(ParseProcStat(stat, &info).ok());
  EXPECT_EQ(info.comm, "a) (b c");
  EXPECT_EQ(info.state, 'S');
  EXPECT_EQ(info.ppid, 2);
  EXPECT_TRUE(info.kernel_thread);  // 2129984 = 0x208040
  EXPECT_EQ(info.start_time, 987654u);

  const std::string user = "7 (bash) R 1 7 7 0 -1 4194560 0 0 0 0 0 0 0 0 20 0 1 0 55 0 0\n";
  ASSERT_TRUE(ParseProcStat(user, &info).ok());
  EXPECT_FALSE(info.kernel_thread);  // 0x400100
  EXPECT_EQ(info.state, 'R');
  EXPECT_EQ(info.start_time, 55u);

  EXPECT_FALSE(ParseProcStat("7 (bash R 1", &info).ok());
  EXPECT_FALSE(ParseProcStat("7 (bash) R 1 2 3", &info).ok());
}

TEST(ParseProcCgroupTest, TakesTheV2Line) {
  EXPECT_EQ(ParseProcCgroup("0::/system.slice/redis.service\n"), "/system.slice/redis.service");
  EXPECT_EQ(ParseProcCgroup("12:pids:/x\n1:name=systemd:/y\n0::/\n"), "/");
  EXPECT_EQ(ParseProcCgroup("12:pids:/x\n"), "");
}

TEST(ProcProcessTableTest, FindsAForkedChild) {
  ProcProcessTable table;
  ProcessInfo self = *table.Get(getpid());
  EXPECT_FALSE(self.kernel_thread);
  EXPECT_GT(self.start_time, 0u);

  Child child;
  ASSERT_GT(child.pid(), 0);
  ASSERT_TRUE(WaitForExec(table, child.pid()));
  absl::StatusOr<ProcessInfo> p = table.Get(child.pid());
  ASSERT_TRUE(p.ok()) << p.status();
  EXPECT_EQ(p->pid, child.pid());
  EXPECT_EQ(p->ppid, getpid());
  EXPECT_EQ(p->comm, "sleep");
  EXPECT_EQ(p->cmdline, "sleep 30 1");
  EXPECT_FALSE(p->kernel_thread);
  // Alive and not stopped: running, sleeping, or (just after exec, while its
  // pages load) briefly in uninterruptible sleep.
  EXPECT_THAT(std::string("RSD"), HasSubstr(std::string(1, p->state)));
  EXPECT_GE(p->start_time, self.start_time);
  EXPECT_EQ(p->cgroup, ParseProcCgroup(ReadFile("/proc/self/cgroup")));

  auto all = table.List();
  ASSERT_TRUE(all.ok());
  bool found = false;
  for (const auto& q : *all) {
    if (q.pid == child.pid()) {
      found = true;
      EXPECT_EQ(q.start_time, p->start_time);
      EXPECT_EQ(q.cmdline, "sleep 30 1");
    }
  }
  EXPECT_TRUE(found);
  EXPECT_GT(all->size(), 1u);
}

TEST(ParseProcTgidTest, ReadsTheTgidLine) {
  EXPECT_EQ(ParseProcTgid("Name:\tsleep\nUmask:\t0022\nState:\tS (sleeping)\nTgid:\t4242\nNgid:\t0\n"), 4242);
  EXPECT_EQ(ParseProcTgid("Name:\tx\n"), 0);
}

TEST(ProcProcessTableTest, AThreadIdIsNotAProcess) {
  ProcProcessTable table;
  std::promise<pid_t> tid;
  std::promise<void> done;
  std::thread t([&] {
    tid.set_value(gettid());
    done.get_future().wait_for(std::chrono::seconds(10));
  });
  const pid_t thread_id = tid.get_future().get();
  EXPECT_NE(thread_id, getpid());
  EXPECT_EQ(table.Get(thread_id).status().code(), absl::StatusCode::kNotFound);
  EXPECT_TRUE(table.Get(getpid()).ok());
  done.set_value();
  t.join();
}

TEST(ProcProcessTableTest, MissingAndInvalidPids) {
  ProcProcessTable table;
  EXPECT_EQ(table.Get(0x7ffffff0).status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(table.Get(0).status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(table.Signal(0x7ffffff0, 0).code(), absl::StatusCode::kNotFound);
  // Never kill(0, ...) or kill(-1, ...): those reach process groups / everyone.
  EXPECT_EQ(table.Signal(0, 0).code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(table.Signal(-1, 0).code(), absl::StatusCode::kInvalidArgument);
}

FaultContext ContextFor(ProcessTable* table) {
  FaultContext ctx;
  ctx.processes = table;
  ctx.agent_pid = getpid();
  return ctx;
}

TEST(RealProcessFaultTest, PauseThenResumeAChild) {
  ProcProcessTable table;
  FaultContext ctx = ContextFor(&table);
  Child child;
  ASSERT_GT(child.pid(), 0);
  ASSERT_TRUE(WaitForExec(table, child.pid()));
  auto state = [&] {
    auto p = table.Get(child.pid());
    return p.ok() ? p->state : '?';
  };

  auto pause = MakePauseHandler();
  v1::FaultRecord record;
  record.set_id("real-pause");
  record.mutable_spec()->mutable_pause()->mutable_process()->set_pid(child.pid());
  ASSERT_TRUE(pause->Validate(record.spec(), ctx).ok());
  ASSERT_TRUE(pause->Plan(record.spec(), ctx, &record).ok());
  EXPECT_EQ(record.target(), "pid " + std::to_string(child.pid()) + " (sleep)");
  ASSERT_TRUE(pause->Apply(&record, ctx).ok());
  EXPECT_TRUE(WaitFor([&] { return state() == 'T'; })) << "state " << state();

  // A pause of a stopped process is refused: resuming it would not be ours to do.
  v1::FaultRecord second;
  second.set_id("second");
  EXPECT_EQ(pause->Plan(record.spec(), ctx, &second).status().code(),
            absl::StatusCode::kPermissionDenied);

  v1::FaultRecord from_ledger = record;  // Revert works from the record alone.
  ASSERT_TRUE(pause->Revert(from_ledger, ctx).ok());
  EXPECT_TRUE(WaitFor([&] { return state() == 'S' || state() == 'R'; })) << "state " << state();
  ASSERT_TRUE(pause->Revert(from_ledger, ctx).ok());  // idempotent
  EXPECT_NE(state(), 'T');
}

TEST(RealProcessFaultTest, KillAChildWithTerm) {
  ProcProcessTable table;
  FaultContext ctx = ContextFor(&table);
  Child child;
  ASSERT_GT(child.pid(), 0);
  ASSERT_TRUE(WaitForExec(table, child.pid()));
  auto kill_handler = MakeKillHandler();
  v1::FaultRecord record;
  record.set_id("real-kill");
  record.mutable_spec()->mutable_kill()->set_signal("TERM");
  record.mutable_spec()->mutable_kill()->mutable_process()->set_pid(child.pid());
  record.mutable_spec()->mutable_kill()->mutable_process()->set_cmdline("^sleep 30 1$");
  ASSERT_TRUE(kill_handler->Plan(record.spec(), ctx, &record).ok());
  ASSERT_TRUE(kill_handler->Apply(&record, ctx).ok());
  std::optional<int> status = child.Wait(std::chrono::milliseconds(5000));
  ASSERT_TRUE(status.has_value());
  ASSERT_TRUE(WIFSIGNALED(*status));
  EXPECT_EQ(WTERMSIG(*status), SIGTERM);
  // The pid is gone (reaped): applying the record again signals nothing.
  absl::Status again = kill_handler->Apply(&record, ctx);
  EXPECT_EQ(again.code(), absl::StatusCode::kFailedPrecondition);
}

TEST(RealProcessFaultTest, TheAgentItselfIsNeverATarget) {
  ProcProcessTable table;
  FaultContext ctx = ContextFor(&table);
  v1::FaultSpec spec;
  spec.mutable_kill()->mutable_process()->set_pid(getpid());
  v1::FaultRecord record;
  absl::Status s = MakeKillHandler()->Plan(spec, ctx, &record).status();
  EXPECT_EQ(s.code(), absl::StatusCode::kPermissionDenied);
  EXPECT_EQ(s.message(), "process.pid: " + std::to_string(getpid()) + " is the agent itself");
}

}  // namespace
}  // namespace faultline::agent
