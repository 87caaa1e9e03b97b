// A ledger record is not trusted to name processes: start-up recovery resumes
// a recorded pid only if that process's start time (/proc/PID/stat field 22)
// equals the recorded one. A crafted record naming a live, stopped child of
// this test, with a missing or wrong start time, leaves it stopped, and the
// agent logs that it skipped it; the right start time resumes it.
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include "agent/fault_manager.h"
#include "agent/faults/proc_process_table.h"
#include "agent/faults/process_faults.h"
#include "fmt/format.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "spdlog/sinks/ostream_sink.h"
#include "spdlog/spdlog.h"

namespace faultline::agent {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

// A stopped `sleep 30` child of the test, killed and reaped on destruction.
class StoppedChild {
 public:
  StoppedChild() {
    pid_ = ::fork();
    if (pid_ == 0) {
      ::execl("/bin/sleep", "sleep", "30", nullptr);
      ::_exit(127);
    }
    if (pid_ > 0) {
      ::kill(pid_, SIGSTOP);
      int status = 0;
      ::waitpid(pid_, &status, WUNTRACED);
    }
  }
  ~StoppedChild() {
    if (pid_ <= 0) return;
    ::kill(pid_, SIGKILL);
    ::waitpid(pid_, nullptr, 0);
  }
  StoppedChild(const StoppedChild&) = delete;
  StoppedChild& operator=(const StoppedChild&) = delete;
  pid_t pid() const { return pid_; }

 private:
  pid_t pid_ = -1;
};

class LedgerTrustTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::temp_directory_path() / fmt::format("fltest-{}-ledger-trust", ::getpid());
    std::filesystem::remove_all(dir_);
    ASSERT_GT(child_.pid(), 0);
    auto self = processes_.Get(child_.pid());
    ASSERT_TRUE(self.ok()) << self.status();
    ASSERT_EQ(self->state, 'T');
    start_time_ = self->start_time;
    log_ = std::make_shared<spdlog::logger>(
        "test", std::make_shared<spdlog::sinks::ostream_sink_mt>(log_text_));
    previous_ = spdlog::default_logger();
    spdlog::set_default_logger(log_);
  }
  void TearDown() override {
    spdlog::set_default_logger(previous_);
    std::filesystem::remove_all(dir_);
  }

  // Writes a pause record naming the child with `start_time` (0 = none), as
  // a crafted or an old-format ledger file would.
  void WriteRecord(uint64_t start_time) {
    auto ledger = Ledger::Open(dir_.string());
    ASSERT_TRUE(ledger.ok()) << ledger.status();
    v1::FaultRecord record;
    record.set_id(NewFaultId());
    record.mutable_spec()->mutable_pause()->mutable_process()->set_pid(child_.pid());
    record.mutable_spec()->set_duration("10s");
    record.set_state(v1::FAULT_STATE_ACTIVE);
    v1::ProcessRef* ref = record.add_processes();
    ref->set_pid(child_.pid());
    ref->set_comm("sleep");
    if (start_time != 0) ref->set_start_time(start_time);
    ASSERT_TRUE((*ledger)->Put(record).ok());
  }

  // Start-up recovery of a fresh agent over dir_; the records it reverted.
  size_t Recover() {
    auto ledger = Ledger::Open(dir_.string());
    EXPECT_TRUE(ledger.ok()) << ledger.status();
    if (!ledger.ok()) return 0;
    std::vector<std::unique_ptr<FaultHandler>> handlers;
    handlers.push_back(MakePauseHandler());
    FaultContext ctx;
    ctx.policy = &policy_;
    ctx.processes = &processes_;
    ctx.agent_pid = ::getpid();
    FaultManager manager(std::move(*ledger), std::move(handlers), ctx);
    auto reverted = manager.Recover(nullptr);
    EXPECT_TRUE(reverted.ok()) << reverted.status();
    return reverted.ok() ? reverted->size() : 0;
  }

  char ChildState() {
    auto p = processes_.Get(child_.pid());
    return p.ok() ? p->state : '?';
  }

  StoppedChild child_;
  std::filesystem::path dir_;
  v1::Policy policy_;
  ProcProcessTable processes_{"/proc"};
  uint64_t start_time_ = 0;
  std::ostringstream log_text_;
  std::shared_ptr<spdlog::logger> log_;
  std::shared_ptr<spdlog::logger> previous_;
};

TEST_F(LedgerTrustTest, RecordWithoutStartTimeDoesNotResumeTheProcess) {
  WriteRecord(0);
  EXPECT_EQ(Recover(), 1u);  // the record is done with, the process untouched
  EXPECT_EQ(ChildState(), 'T');
  log_->flush();
  EXPECT_THAT(log_text_.str(), HasSubstr(fmt::format("skipped pid {} (sleep)", child_.pid())));
  EXPECT_THAT(log_text_.str(), HasSubstr("no start time"));
}

TEST_F(LedgerTrustTest, RecordWithAnotherStartTimeDoesNotResumeTheProcess) {
  WriteRecord(start_time_ + 1);
  EXPECT_EQ(Recover(), 1u);
  EXPECT_EQ(ChildState(), 'T');
  log_->flush();
  EXPECT_THAT(log_text_.str(), HasSubstr(fmt::format("skipped pid {} (sleep)", child_.pid())));
  EXPECT_THAT(log_text_.str(), HasSubstr("belongs to another process"));
}

TEST_F(LedgerTrustTest, RecordWithTheRightStartTimeResumesIt) {
  WriteRecord(start_time_);
  EXPECT_EQ(Recover(), 1u);
  EXPECT_NE(ChildState(), 'T');
  log_->flush();
  EXPECT_THAT(log_text_.str(), Not(HasSubstr("skipped")));
}

}  // namespace
}  // namespace faultline::agent
