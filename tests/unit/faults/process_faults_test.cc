#include "agent/faults/process_faults.h"

#include <csignal>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "agent/faults/registry.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "spec/fault_spec.h"
#include "tests/unit/faults/fake_process_table.h"

namespace faultline::agent {
namespace {

using ::faultline::agent::testing::FakeProcessTable;
using ::faultline::agent::testing::Proc;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::Pair;
using ::testing::StartsWith;

class ProcessFaultTest : public ::testing::Test {
 protected:
  ProcessFaultTest() {
    table_.Add(Proc(12, "redis-server", "redis-server *:6379"));
    table_.Add(Proc(13, "redis-server", "redis-server *:6380"));
    table_.Add(Proc(14, "redis-server", "redis-server *:6381"));
    table_.Add(Proc(20, "sshd", "sshd -D"));
    policy_.add_protected_processes("sshd");
    ctx_.policy = &policy_;
    ctx_.processes = &table_;
    ctx_.agent_pid = 99;
    record_.set_id("f1");
  }

  v1::FaultSpec Spec(const std::string& kind) {
    v1::FaultSpec s;
    if (kind == "kill") {
      s.mutable_kill()->mutable_process()->set_name("redis-server");
    } else {
      s.mutable_pause()->mutable_process()->set_name("redis-server");
    }
    return s;
  }

  FakeProcessTable table_;
  v1::Policy policy_;
  FaultContext ctx_;
  v1::FaultRecord record_;
  std::unique_ptr<FaultHandler> kill_ = MakeKillHandler();
  std::unique_ptr<FaultHandler> pause_ = MakePauseHandler();
};

TEST_F(ProcessFaultTest, Kinds) {
  EXPECT_EQ(kill_->Kind(), "kill");
  EXPECT_EQ(kill_->kind_case(), v1::FaultSpec::kKill);
  EXPECT_FALSE(spec::KindFor(kill_->kind_case()).reversible);
  EXPECT_EQ(pause_->Kind(), "pause");
  EXPECT_EQ(pause_->kind_case(), v1::FaultSpec::kPause);
  EXPECT_TRUE(spec::KindFor(pause_->kind_case()).reversible);
}

TEST_F(ProcessFaultTest, RegistryHasTheProcessAndDiskKinds) {
  std::set<std::string> kinds;
  for (const auto& h : MakeDefaultHandlers()) kinds.insert(h->Kind());
  EXPECT_TRUE(kinds.count("kill"));
  EXPECT_TRUE(kinds.count("pause"));
  EXPECT_TRUE(kinds.count("disk-fill"));
}

TEST_F(ProcessFaultTest, KillValidation) {
  // The spec's rules are spec::Validate's (the FaultManager runs it before the
  // handler's host and policy checks); its errors carry the kind prefix.
  v1::FaultSpec spec = Spec("kill");
  EXPECT_TRUE(spec::Validate(spec).ok());  // signal defaults to KILL
  EXPECT_TRUE(kill_->Validate(spec, ctx_).ok());
  spec.mutable_kill()->set_signal("FOO");
  absl::Status s = spec::Validate(spec).status();
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(s.message(), "kill.signal: unknown signal \"FOO\"");
  spec.mutable_kill()->set_signal("TERM");
  EXPECT_TRUE(spec::Validate(spec).ok());
  // Stopping and resuming is the pause fault's, which can undo it.
  spec.mutable_kill()->set_signal("STOP");
  s = spec::Validate(spec).status();
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(s.message()), StartsWith("kill.signal: SIGSTOP stops or resumes a process"));
  spec.mutable_kill()->set_signal("TERM");
  spec.set_duration("30s");  // allowed by the handler: the manager decides what it means for kill
  EXPECT_TRUE(kill_->Validate(spec, ctx_).ok());
  EXPECT_EQ(spec::Validate(spec).status().message(),
            "duration: kill is a one-off action and takes no duration");
  spec.clear_duration();
  spec.mutable_kill()->clear_process();
  EXPECT_EQ(spec::Validate(spec).status().message(),
            "kill.process: give at least one of pid, name, cmdline, pidfile, cgroup");
  spec.mutable_kill()->mutable_process()->set_pid(1);
  s = spec::Validate(spec).status();
  EXPECT_EQ(s.code(), absl::StatusCode::kPermissionDenied);
  EXPECT_EQ(s.message(), "kill.process.pid: 1 is protected (init)");
  s = kill_->Validate(spec, ctx_);
  EXPECT_EQ(s.code(), absl::StatusCode::kPermissionDenied);
  EXPECT_EQ(s.message(), "process.pid: 1 is protected (init)");
}

TEST_F(ProcessFaultTest, KillPlanRecordsTargetsAndChangesNothing) {
  v1::FaultSpec spec = Spec("kill");
  spec.mutable_kill()->mutable_process()->set_pid(13);
  *record_.mutable_spec() = spec;
  auto lines = kill_->Plan(spec, ctx_, &record_);
  ASSERT_TRUE(lines.ok()) << lines.status();
  EXPECT_THAT(*lines, ElementsAre("send SIGKILL to pid 13 (redis-server)"));
  EXPECT_EQ(record_.target(), "pid 13 (redis-server)");
  ASSERT_EQ(record_.processes_size(), 1);
  EXPECT_EQ(record_.processes(0).pid(), 13);
  EXPECT_EQ(record_.processes(0).start_time(), 1013u);
  EXPECT_EQ(record_.processes(0).comm(), "redis-server");
  EXPECT_TRUE(table_.signals().empty());

  spec.mutable_kill()->mutable_process()->clear_pid();
  spec.mutable_kill()->set_mode(v1::SELECTION_MODE_ALL);
  ASSERT_TRUE(kill_->Plan(spec, ctx_, &record_).ok());
  EXPECT_EQ(record_.target(), "pids 12,13,14 (redis-server)");
  EXPECT_EQ(record_.processes_size(), 3);  // replaced, not appended
}

TEST_F(ProcessFaultTest, KillApplySignalsEachWithTheGivenSignal) {
  v1::FaultSpec spec = Spec("kill");
  spec.mutable_kill()->set_mode(v1::SELECTION_MODE_ALL);
  spec.mutable_kill()->set_signal("TERM");
  *record_.mutable_spec() = spec;
  ASSERT_TRUE(kill_->Plan(spec, ctx_, &record_).ok());
  ASSERT_TRUE(kill_->Apply(&record_, ctx_).ok());
  EXPECT_THAT(table_.signals(),
              ElementsAre(Pair(12, SIGTERM), Pair(13, SIGTERM), Pair(14, SIGTERM)));
  EXPECT_TRUE(kill_->Revert(record_, ctx_).ok());
  EXPECT_EQ(table_.signals().size(), 3u);  // revert sends nothing
}

TEST_F(ProcessFaultTest, KillSkipsReusedAndGonePids) {
  v1::FaultSpec spec = Spec("kill");
  spec.mutable_kill()->set_mode(v1::SELECTION_MODE_ALL);
  *record_.mutable_spec() = spec;
  ASSERT_TRUE(kill_->Plan(spec, ctx_, &record_).ok());
  table_.Reuse(12);   // pid 12 is another process now
  table_.Remove(13);  // exited
  ASSERT_TRUE(kill_->Apply(&record_, ctx_).ok());
  EXPECT_THAT(table_.signals(), ElementsAre(Pair(14, SIGKILL)));
  EXPECT_EQ(record_.target(), "pid 14 (redis-server)");
  ASSERT_EQ(record_.processes_size(), 1);
}

TEST_F(ProcessFaultTest, KillFailsWhenNoneCouldBeSignalled) {
  v1::FaultSpec spec = Spec("kill");
  spec.mutable_kill()->set_mode(v1::SELECTION_MODE_ALL);
  *record_.mutable_spec() = spec;
  ASSERT_TRUE(kill_->Plan(spec, ctx_, &record_).ok());
  table_.Remove(12);
  table_.Reuse(13);
  table_.FailSignals(14, absl::PermissionDeniedError("pid 14: Operation not permitted"));
  absl::Status s = kill_->Apply(&record_, ctx_);
  EXPECT_EQ(s.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(std::string(s.message()), StartsWith("process: could not send SIGKILL to any process"));
  EXPECT_THAT(std::string(s.message()), HasSubstr("pid 12 (redis-server) has exited"));
  EXPECT_THAT(std::string(s.message()), HasSubstr("another process"));
  EXPECT_THAT(std::string(s.message()), HasSubstr("Operation not permitted"));
  EXPECT_TRUE(table_.signals().empty());
}

TEST_F(ProcessFaultTest, KillNoMatchIsFailedPrecondition) {
  v1::FaultSpec spec = Spec("kill");
  spec.mutable_kill()->mutable_process()->set_name("postgres");
  auto r = kill_->Plan(spec, ctx_, &record_);
  EXPECT_EQ(r.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(r.status().message(), "process: no process matches name=\"postgres\"");
}

// (PauseFault has no signal field: "pause refuses a signal" holds by construction.)
TEST_F(ProcessFaultTest, PauseValidationRefusesAProtectedName) {
  v1::FaultSpec spec = Spec("pause");
  spec.set_duration("30s");
  EXPECT_TRUE(spec::Validate(spec).ok());
  EXPECT_TRUE(pause_->Validate(spec, ctx_).ok());
  spec.mutable_pause()->mutable_process()->set_name("sshd");
  EXPECT_EQ(pause_->Validate(spec, ctx_).code(), absl::StatusCode::kPermissionDenied);
}

TEST_F(ProcessFaultTest, PauseStopsAndRevertResumes) {
  v1::FaultSpec spec = Spec("pause");
  spec.mutable_pause()->set_mode(v1::SELECTION_MODE_ALL);
  *record_.mutable_spec() = spec;
  auto lines = pause_->Plan(spec, ctx_, &record_);
  ASSERT_TRUE(lines.ok());
  EXPECT_EQ(lines->size(), 3u);
  EXPECT_TRUE(table_.signals().empty());
  ASSERT_TRUE(pause_->Apply(&record_, ctx_).ok());
  for (pid_t p : {12, 13, 14}) EXPECT_EQ(table_.StateOf(p), 'T') << p;
  ASSERT_TRUE(pause_->Revert(record_, ctx_).ok());
  for (pid_t p : {12, 13, 14}) EXPECT_EQ(table_.StateOf(p), 'S') << p;
  // Idempotent.
  ASSERT_TRUE(pause_->Revert(record_, ctx_).ok());
  EXPECT_EQ(table_.StateOf(12), 'S');
}

TEST_F(ProcessFaultTest, PauseApplyIsAllOrNothing) {
  v1::FaultSpec spec = Spec("pause");
  spec.mutable_pause()->set_mode(v1::SELECTION_MODE_ALL);
  *record_.mutable_spec() = spec;
  ASSERT_TRUE(pause_->Plan(spec, ctx_, &record_).ok());
  table_.FailSignals(14, absl::PermissionDeniedError("pid 14: Operation not permitted"));
  absl::Status s = pause_->Apply(&record_, ctx_);
  EXPECT_EQ(s.code(), absl::StatusCode::kPermissionDenied);
  EXPECT_THAT(std::string(s.message()), HasSubstr("resumed the 2 already paused"));
  EXPECT_THAT(table_.signals(), ElementsAre(Pair(12, SIGSTOP), Pair(13, SIGSTOP), Pair(12, SIGCONT),
                                            Pair(13, SIGCONT)));
  EXPECT_EQ(table_.StateOf(12), 'S');
  EXPECT_EQ(table_.StateOf(13), 'S');
}

TEST_F(ProcessFaultTest, PauseApplyFailsWhenAPlannedProcessExited) {
  v1::FaultSpec spec = Spec("pause");
  spec.mutable_pause()->set_mode(v1::SELECTION_MODE_ALL);
  *record_.mutable_spec() = spec;
  ASSERT_TRUE(pause_->Plan(spec, ctx_, &record_).ok());
  table_.Remove(13);
  absl::Status s = pause_->Apply(&record_, ctx_);
  EXPECT_EQ(s.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(std::string(s.message()), HasSubstr("pid 13 (redis-server) has exited"));
  EXPECT_EQ(table_.StateOf(12), 'S');
}

// Issue 9: a record without start times (an old format, or crafted) names
// pids but not processes: revert, apply and kill signal none of them.
TEST_F(ProcessFaultTest, RecordsWithoutStartTimesSignalNothing) {
  v1::FaultRecord rec;
  rec.set_id("f3");
  *rec.mutable_spec() = Spec("pause");
  for (pid_t p : {12, 13}) {
    v1::ProcessRef* ref = rec.add_processes();
    ref->set_pid(p);
    ref->set_comm("redis-server");
  }
  ASSERT_TRUE(pause_->Revert(rec, ctx_).ok());  // skipped, not failed
  absl::Status s = pause_->Apply(&rec, ctx_);
  EXPECT_EQ(s.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(std::string(s.message()), HasSubstr("no start time"));
  *rec.mutable_spec() = Spec("kill");
  EXPECT_EQ(kill_->Apply(&rec, ctx_).code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_TRUE(table_.signals().empty());
}

TEST_F(ProcessFaultTest, PauseRevertFromRecordAloneSparesReusedPidsAndToleratesGoneOnes) {
  // A record as a restarted agent reads it from the ledger.
  v1::FaultRecord rec;
  rec.set_id("f2");
  for (pid_t p : {12, 13, 14}) {
    v1::ProcessRef* ref = rec.add_processes();
    ref->set_pid(p);
    ref->set_start_time(1000 + p);
    ref->set_comm("redis-server");
  }
  table_.Remove(12);
  table_.Reuse(13);
  ASSERT_TRUE(pause_->Revert(rec, ctx_).ok());
  EXPECT_THAT(table_.signals(), ElementsAre(Pair(14, SIGCONT)));
  // A record whose Plan never ran reverts trivially.
  v1::FaultRecord empty;
  EXPECT_TRUE(pause_->Revert(empty, ctx_).ok());
}

TEST_F(ProcessFaultTest, PauseRevertReportsFailuresAfterTryingAll) {
  v1::FaultSpec spec = Spec("pause");
  spec.mutable_pause()->set_mode(v1::SELECTION_MODE_ALL);
  *record_.mutable_spec() = spec;
  ASSERT_TRUE(pause_->Plan(spec, ctx_, &record_).ok());
  ASSERT_TRUE(pause_->Apply(&record_, ctx_).ok());
  table_.FailSignals(12, absl::PermissionDeniedError("pid 12: Operation not permitted"));
  absl::Status s = pause_->Revert(record_, ctx_);
  EXPECT_EQ(s.code(), absl::StatusCode::kPermissionDenied);
  EXPECT_EQ(table_.StateOf(13), 'S');
  EXPECT_EQ(table_.StateOf(14), 'S');
}

TEST_F(ProcessFaultTest, PauseSkipsProcessesSomeoneElseStopped) {
  table_.Add(Proc(15, "redis-server", "redis-server *:6382", "/user.slice", 'T'));
  v1::FaultSpec spec = Spec("pause");
  spec.mutable_pause()->set_mode(v1::SELECTION_MODE_ALL);
  ASSERT_TRUE(pause_->Plan(spec, ctx_, &record_).ok());
  EXPECT_EQ(record_.target(), "pids 12,13,14 (redis-server)");
}

}  // namespace
}  // namespace faultline::agent
