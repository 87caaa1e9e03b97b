#include "agent/faults/process_selector.h"

#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <set>
#include <string>
#include <vector>

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
using ::testing::StartsWith;

constexpr pid_t kAgentPid = 500;

std::vector<pid_t> Pids(const std::vector<ProcessInfo>& ps) {
  std::vector<pid_t> out;
  for (const auto& p : ps) out.push_back(p.pid);
  return out;
}

// A temporary folder named fltest-<pid>-<suffix>, removed with its contents.
class TempDir {
 public:
  TempDir() {
    std::string tmpl = "/tmp/fltest-" + std::to_string(getpid()) + "-selXXXXXX";
    path_ = mkdtemp(tmpl.data());
  }
  ~TempDir() { std::filesystem::remove_all(path_); }
  const std::string& path() const { return path_; }
  std::string Write(const std::string& name, const std::string& data) const {
    const std::string p = path_ + "/" + name;
    std::ofstream(p) << data;
    return p;
  }

 private:
  std::string path_;
};

class SelectorTest : public ::testing::Test {
 protected:
  SelectorTest() {
    table_.Add(Proc(1, "systemd", "/sbin/init", "/init.scope"));
    ProcessInfo kthread = Proc(2, "kthreadd", "", "");
    kthread.kernel_thread = true;
    table_.Add(kthread);
    table_.Add(Proc(kAgentPid, "faultline-agent", "/usr/bin/faultline-agent --listen x"));
    table_.Add(Proc(100, "redis-server", "/usr/bin/redis-server *:6379",
                    "/system.slice/redis.service"));
    table_.Add(Proc(101, "redis-server", "/usr/bin/redis-server *:6380",
                    "/system.slice/redis-b.service"));
    table_.Add(Proc(102, "redis-sentinel", "/usr/bin/redis-sentinel *:26379",
                    "/system.slice/redis.service/sentinel"));
    table_.Add(Proc(103, "redis-server", "", "/system.slice/redis.service", 'Z'));
    table_.Add(Proc(104, "sshd", "sshd: /usr/sbin/sshd -D", "/system.slice/ssh.service"));
    table_.Add(Proc(105, "worker", "python3 worker.py --queue a", "/app"));
    table_.Add(Proc(106, "worker", "python3 worker.py --queue b", "/app"));
    table_.Add(Proc(107, "worker", "python3 worker.py --queue c", "/app"));
    table_.Add(Proc(108, "worker", "python3 worker.py --queue d", "/app", 'T'));
    table_.Add(Proc(109, "worker", "python3 worker.py --queue e", "/app/sub"));
    table_.Add(Proc(110, "worker", "python3 worker.py --queue f", "/apps"));
    policy_.add_protected_processes("sshd");
    ctx_.policy = &policy_;
    ctx_.processes = &table_;
    ctx_.agent_pid = kAgentPid;
  }

  // The selection's rules: spec::Validate's (run by the FaultManager before the
  // handler), errors naming the field's path in FaultSpec.
  absl::Status Validate() const { return spec::Validate(spec_).status(); }

  absl::StatusOr<std::vector<ProcessInfo>> Select(const SelectionOptions& options = {}) {
    return SelectProcesses(spec_, ctx_, options, rng_);
  }
  absl::StatusOr<std::vector<pid_t>> SelectPids(const SelectionOptions& options = {}) {
    auto r = Select(options);
    if (!r.ok()) return r.status();
    return Pids(*r);
  }

  FakeProcessTable table_;
  v1::Policy policy_;
  FaultContext ctx_;
  v1::FaultSpec spec_ = KillSpec();  // Clear() it, then mutable_kill() sets the kind again
  std::mt19937_64 rng_{42};

  static v1::FaultSpec KillSpec() {
    v1::FaultSpec s;
    s.mutable_kill();
    return s;
  }
};

TEST_F(SelectorTest, RequiresASelector) {
  absl::Status s = Validate();
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(s.message(), "kill.process: give at least one of pid, name, cmdline, pidfile, cgroup");
  // Also with mode all: an empty selector never means "every process".
  spec_.mutable_kill()->set_mode(v1::SELECTION_MODE_ALL);
  EXPECT_EQ(Validate().code(), absl::StatusCode::kInvalidArgument);
}

TEST_F(SelectorTest, ByPid) {
  spec_.mutable_kill()->mutable_process()->set_pid(101);
  EXPECT_THAT(*SelectPids(), ElementsAre(101));
}

TEST_F(SelectorTest, NegativePidIsInvalid) {
  spec_.mutable_kill()->mutable_process()->set_pid(-5);
  absl::Status s = Validate();
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(s.message()), StartsWith("kill.process.pid: "));
}

TEST_F(SelectorTest, MissingPidIsFailedPrecondition) {
  spec_.mutable_kill()->mutable_process()->set_pid(9999);
  absl::Status s = Select().status();
  EXPECT_EQ(s.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(s.message(), "process.pid: no process with pid 9999 is running");
}

TEST_F(SelectorTest, ByNameIsExact) {
  spec_.mutable_kill()->mutable_process()->set_name("redis-server");
  spec_.mutable_kill()->set_mode(v1::SELECTION_MODE_ALL);
  // 103 is a zombie.
  EXPECT_THAT(*SelectPids(), ElementsAre(100, 101));
  spec_.mutable_kill()->mutable_process()->set_name("redis");
  EXPECT_EQ(Select().status().code(), absl::StatusCode::kFailedPrecondition);
}

TEST_F(SelectorTest, NameLongerThanCommIsInvalid) {
  spec_.mutable_kill()->mutable_process()->set_name("a-very-long-process-name");
  absl::Status s = Validate();
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(s.message()), StartsWith("kill.process.name: "));
}

TEST_F(SelectorTest, NoMatchMessageNamesTheSelector) {
  table_.Remove(100);
  table_.Remove(101);
  table_.Remove(103);
  spec_.mutable_kill()->mutable_process()->set_name("redis-server");
  absl::Status s = Select().status();
  EXPECT_EQ(s.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(s.message(), "process: no process matches name=\"redis-server\"");
}

TEST_F(SelectorTest, NoMatchMentionsExcludedMatches) {
  table_.Remove(100);
  table_.Remove(101);
  spec_.mutable_kill()->mutable_process()->set_name("redis-server");
  absl::Status s = Select().status();
  EXPECT_EQ(s.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(s.message(),
            "process: no process matches name=\"redis-server\" that may be targeted "
            "(1 matching process excluded: a zombie)");
}

TEST_F(SelectorTest, ByCmdlineRegexIsSearched) {
  spec_.mutable_kill()->mutable_process()->set_cmdline("queue [ab]$");
  spec_.mutable_kill()->set_mode(v1::SELECTION_MODE_ALL);
  EXPECT_THAT(*SelectPids(), ElementsAre(105, 106));
  spec_.mutable_kill()->mutable_process()->set_cmdline(R"(redis-\w+ \*:63\d\d)");
  EXPECT_THAT(*SelectPids(), ElementsAre(100, 101));
}

TEST_F(SelectorTest, BadRegexIsInvalidArgument) {
  spec_.mutable_kill()->mutable_process()->set_cmdline("redis(");
  absl::Status s = Validate();
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(s.message()), StartsWith("kill.process.cmdline: "));
  EXPECT_EQ(Select().status().code(), absl::StatusCode::kInvalidArgument);
}

TEST_F(SelectorTest, BackReferencesAreRefused) {
  spec_.mutable_kill()->mutable_process()->set_cmdline(R"((a)\1)");
  absl::Status s = Validate();
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(s.message()), StartsWith("kill.process.cmdline: "));
}

// Issue 9: `[ab]{20000}c` stalled the fault engine for over 30 s under
// std::regex. Under RE2 a repetition over 1000 is a syntax error; a program
// over 1 MiB or 2000 instructions is refused, and so is a pattern over 1 KiB:
// each at validation, naming the field and the reason.
TEST_F(SelectorTest, CostlyRegexIsRefusedAtValidation) {
  struct Case {
    std::string pattern;
    std::string reason;
  };
  const Case cases[] = {
      {"[ab]{20000}c", "invalid repetition size"},
      {"(?:[ab]{1000}){30}c", "invalid repetition size"},
      {"\\pL{100}", "too costly a regular expression"},  // over max_mem
      {"[ab]{1000}[ab]{1000}c", "too costly a regular expression"},
      {std::string(2000, 'a'), "at most 1024"},
  };
  for (const Case& c : cases) {
    spec_.mutable_kill()->mutable_process()->set_cmdline(c.pattern);
    absl::Status s = Validate();
    EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument) << c.pattern.substr(0, 40);
    EXPECT_THAT(std::string(s.message()), StartsWith("kill.process.cmdline: "));
    EXPECT_THAT(std::string(s.message()), HasSubstr(c.reason));
    EXPECT_EQ(Select().status().code(), absl::StatusCode::kInvalidArgument);
  }
}

// A pattern just under the limits is searched (linear time) and still matches.
TEST_F(SelectorTest, LargeButBoundedRegexStillMatches) {
  table_.Add(Proc(301, "worker", "python3 worker " + std::string(900, 'a') + "c"));
  spec_.mutable_kill()->set_mode(v1::SELECTION_MODE_ALL);
  spec_.mutable_kill()->mutable_process()->set_cmdline("[ab]{900}c$");
  EXPECT_THAT(*SelectPids(), ElementsAre(301));
  spec_.mutable_kill()->mutable_process()->set_cmdline("[ab]{901}c");
  EXPECT_EQ(Select().status().code(), absl::StatusCode::kFailedPrecondition);
}

TEST_F(SelectorTest, AnchorsApplyToTheWholeCmdline) {
  spec_.mutable_kill()->set_mode(v1::SELECTION_MODE_ALL);
  spec_.mutable_kill()->mutable_process()->set_cmdline("^python3 worker");
  EXPECT_EQ(SelectPids()->size(), 6u);
  spec_.mutable_kill()->mutable_process()->set_cmdline("^worker");
  EXPECT_EQ(Select().status().code(), absl::StatusCode::kFailedPrecondition);
  spec_.mutable_kill()->mutable_process()->set_cmdline("queue a$|6380$");
  EXPECT_THAT(*SelectPids(), ElementsAre(101, 105));
}

TEST_F(SelectorTest, HugeCmdlinesAreMatchedWithoutBlowingTheStack) {
  // A Java-style cmdline: the main class after a long class path. With
  // backtracking matchers this overflows the stack; here it is one linear pass.
  table_.Add(Proc(300, "java",
                  "java -cp " + std::string(50000, 'a') + " kafka.Kafka " + std::string(1 << 20, 'b') + " end"));
  spec_.mutable_kill()->set_mode(v1::SELECTION_MODE_ALL);
  spec_.mutable_kill()->mutable_process()->set_cmdline(R"(kafka\.Kafka)");
  EXPECT_THAT(*SelectPids(), ElementsAre(300));
  spec_.mutable_kill()->mutable_process()->set_cmdline(".*(a|aa)*kafka.*z");
  EXPECT_EQ(Select().status().code(), absl::StatusCode::kFailedPrecondition);
  // Only the first 64 KiB are searched.
  spec_.mutable_kill()->mutable_process()->set_cmdline("end$");
  EXPECT_EQ(Select().status().code(), absl::StatusCode::kFailedPrecondition);
}

TEST_F(SelectorTest, ByCgroupTakesThePathAndBelowOnly) {
  spec_.mutable_kill()->mutable_process()->set_cgroup("/app");
  spec_.mutable_kill()->set_mode(v1::SELECTION_MODE_ALL);
  // /apps is a sibling, not below /app; 108 (stopped) is fine for kill.
  EXPECT_THAT(*SelectPids(), ElementsAre(105, 106, 107, 108, 109));
  spec_.mutable_kill()->mutable_process()->set_cgroup("/app/");
  EXPECT_THAT(*SelectPids(), ElementsAre(105, 106, 107, 108, 109));
  spec_.mutable_kill()->mutable_process()->set_cgroup("/system.slice/redis.service");
  EXPECT_THAT(*SelectPids(), ElementsAre(100, 102));
}

TEST_F(SelectorTest, RelativeCgroupIsInvalid) {
  spec_.mutable_kill()->mutable_process()->set_cgroup("system.slice");
  absl::Status s = Validate();
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(s.message()), StartsWith("kill.process.cgroup: "));
}

TEST_F(SelectorTest, SelectorsAreAnded) {
  spec_.mutable_kill()->set_mode(v1::SELECTION_MODE_ALL);
  spec_.mutable_kill()->mutable_process()->set_name("redis-server");
  spec_.mutable_kill()->mutable_process()->set_cgroup("/system.slice/redis.service");
  EXPECT_THAT(*SelectPids(), ElementsAre(100));

  spec_.Clear();
  spec_.mutable_kill()->set_mode(v1::SELECTION_MODE_ALL);
  spec_.mutable_kill()->mutable_process()->set_name("worker");
  spec_.mutable_kill()->mutable_process()->set_cmdline("queue [cef]");
  EXPECT_THAT(*SelectPids(), ElementsAre(107, 109, 110));

  // An explicit pid must also satisfy the other selectors.
  spec_.Clear();
  spec_.mutable_kill()->mutable_process()->set_pid(105);
  spec_.mutable_kill()->mutable_process()->set_name("redis-server");
  absl::Status s = Select().status();
  EXPECT_EQ(s.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(s.message(), "process: no process matches pid=105 name=\"redis-server\"");
}

TEST_F(SelectorTest, ByPidfile) {
  TempDir dir;
  spec_.mutable_kill()->mutable_process()->set_pidfile(dir.Write("redis.pid", "101\n"));
  EXPECT_THAT(*SelectPids(), ElementsAre(101));
  // pid and pidfile are ANDed too.
  spec_.mutable_kill()->mutable_process()->set_pid(100);
  EXPECT_EQ(Select().status().code(), absl::StatusCode::kFailedPrecondition);
}

TEST_F(SelectorTest, PidfileErrors) {
  TempDir dir;
  spec_.mutable_kill()->mutable_process()->set_pidfile(dir.path() + "/missing.pid");
  absl::Status s = Select().status();
  EXPECT_EQ(s.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(std::string(s.message()), StartsWith("process.pidfile: cannot read "));

  spec_.mutable_kill()->mutable_process()->set_pidfile(dir.Write("bad.pid", "not a pid"));
  s = Select().status();
  EXPECT_EQ(s.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(std::string(s.message()), HasSubstr("does not hold a pid"));

  spec_.mutable_kill()->mutable_process()->set_pidfile("relative.pid");
  s = Validate();
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(s.message()), StartsWith("kill.process.pidfile: "));
}

TEST_F(SelectorTest, PidfileNamingAProtectedPidIsDenied) {
  TempDir dir;
  const std::string file = dir.Write("init.pid", "1");
  spec_.mutable_kill()->mutable_process()->set_pidfile(file);
  absl::Status s = Select().status();
  EXPECT_EQ(s.code(), absl::StatusCode::kPermissionDenied);
  EXPECT_EQ(s.message(), "process.pidfile: pid 1 (from " + file + ") is protected (init)");

  spec_.mutable_kill()->mutable_process()->set_pidfile(dir.Write("agent.pid", std::to_string(kAgentPid)));
  s = Select().status();
  EXPECT_EQ(s.code(), absl::StatusCode::kPermissionDenied);
  EXPECT_THAT(std::string(s.message()), HasSubstr("is the agent itself"));
}

TEST_F(SelectorTest, ExplicitPidExclusionsAreDenied) {
  struct Case {
    pid_t pid;
    std::string message;
  };
  const std::vector<Case> cases = {
      {1, "process.pid: 1 is protected (init)"},
      {kAgentPid, "process.pid: 500 is the agent itself"},
      {2, "process.pid: 2 is a kernel thread"},
      {103, "process.pid: 103 is a zombie"},
      {104, "process.pid: 104 is protected by the agent's policy (\"sshd\")"},
  };
  for (const Case& c : cases) {
    spec_.Clear();
    spec_.mutable_kill()->mutable_process()->set_pid(c.pid);
    absl::Status s = Select().status();
    EXPECT_EQ(s.code(), absl::StatusCode::kPermissionDenied) << c.pid;
    EXPECT_EQ(s.message(), c.message);
  }
  // pid 1 and the agent are refused before the process table is read.
  spec_.Clear();
  spec_.mutable_kill()->mutable_process()->set_pid(1);
  EXPECT_EQ(ValidateProcessSelection(spec_, ctx_).code(), absl::StatusCode::kPermissionDenied);
}

TEST_F(SelectorTest, ProtectedNameIsDenied) {
  spec_.mutable_kill()->mutable_process()->set_name("sshd");
  absl::Status s = ValidateProcessSelection(spec_, ctx_);
  EXPECT_EQ(s.code(), absl::StatusCode::kPermissionDenied);
  EXPECT_EQ(s.message(), "process.name: \"sshd\" is protected by the agent's policy");
  EXPECT_EQ(Select().status().code(), absl::StatusCode::kPermissionDenied);
}

TEST_F(SelectorTest, BroadSelectorsNeverReturnExcludedProcesses) {
  spec_.mutable_kill()->mutable_process()->set_cmdline(".*");
  spec_.mutable_kill()->set_mode(v1::SELECTION_MODE_ALL);
  std::vector<pid_t> got = *SelectPids();
  for (pid_t excluded : {1, 2, static_cast<int>(kAgentPid), 103, 104}) {
    EXPECT_THAT(got, ::testing::Not(::testing::Contains(excluded))) << excluded;
  }
  EXPECT_THAT(got, ElementsAre(100, 101, 102, 105, 106, 107, 108, 109, 110));
  // The root cgroup holds everything; kernel threads (no cgroup) still never match.
  spec_.Clear();
  spec_.mutable_kill()->set_mode(v1::SELECTION_MODE_ALL);
  spec_.mutable_kill()->mutable_process()->set_cgroup("/");
  EXPECT_THAT(*SelectPids(), ElementsAre(100, 101, 102, 105, 106, 107, 108, 109, 110));
}

TEST_F(SelectorTest, OnlyProtectedMatchesIsFailedPreconditionWithReason) {
  spec_.mutable_kill()->mutable_process()->set_cmdline("sshd");
  absl::Status s = Select().status();
  EXPECT_EQ(s.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(std::string(s.message()), HasSubstr("protected by the agent's policy"));
}

TEST_F(SelectorTest, NullPolicyProtectsOnlyTheFixedSet) {
  ctx_.policy = nullptr;
  spec_.mutable_kill()->mutable_process()->set_name("sshd");
  EXPECT_THAT(*SelectPids(), ElementsAre(104));
  spec_.mutable_kill()->mutable_process()->set_name("");
  spec_.mutable_kill()->mutable_process()->set_pid(1);
  EXPECT_EQ(Select().status().code(), absl::StatusCode::kPermissionDenied);
}

TEST_F(SelectorTest, PauseSkipsAlreadyStoppedProcesses) {
  SelectionOptions pause;
  pause.exclude_stopped = true;
  spec_.mutable_kill()->mutable_process()->set_name("worker");
  spec_.mutable_kill()->set_mode(v1::SELECTION_MODE_ALL);
  EXPECT_THAT(*SelectPids(pause), ElementsAre(105, 106, 107, 109, 110));
  spec_.Clear();
  spec_.mutable_kill()->mutable_process()->set_pid(108);
  absl::Status s = Select(pause).status();
  EXPECT_EQ(s.code(), absl::StatusCode::kPermissionDenied);
  EXPECT_EQ(s.message(), "process.pid: 108 is already stopped");
}

TEST_F(SelectorTest, ModeOnePicksOneAtRandom) {
  spec_.mutable_kill()->mutable_process()->set_name("worker");
  std::set<pid_t> seen;
  for (int i = 0; i < 200; ++i) {
    auto got = SelectPids();
    ASSERT_TRUE(got.ok());
    ASSERT_EQ(got->size(), 1u);
    seen.insert(got->front());
  }
  // 200 draws over 6 workers: every one shows up (chance of a miss ~ 6*(5/6)^200).
  EXPECT_EQ(seen, (std::set<pid_t>{105, 106, 107, 108, 109, 110}));
  // The default generator works too.
  EXPECT_EQ(SelectProcesses(spec_, ctx_)->size(), 1u);
}

TEST_F(SelectorTest, ModeAllTakesEveryMatch) {
  spec_.mutable_kill()->mutable_process()->set_name("worker");
  spec_.mutable_kill()->set_mode(v1::SELECTION_MODE_ALL);
  EXPECT_THAT(*SelectPids(), ElementsAre(105, 106, 107, 108, 109, 110));
}

TEST_F(SelectorTest, ModeCount) {
  spec_.mutable_kill()->mutable_process()->set_name("worker");
  spec_.mutable_kill()->set_mode(v1::SELECTION_MODE_COUNT);
  spec_.mutable_kill()->set_count(2);
  std::set<pid_t> seen;
  for (int i = 0; i < 100; ++i) {
    std::vector<pid_t> got = *SelectPids();
    ASSERT_EQ(got.size(), 2u);
    EXPECT_LT(got[0], got[1]);  // sorted, distinct
    seen.insert(got.begin(), got.end());
  }
  EXPECT_GT(seen.size(), 2u);
  // More than there are: all of them.
  spec_.mutable_kill()->set_count(50);
  EXPECT_THAT(*SelectPids(), ElementsAre(105, 106, 107, 108, 109, 110));
}

TEST_F(SelectorTest, ModeCountNeedsAPositiveCount) {
  spec_.mutable_kill()->mutable_process()->set_name("worker");
  spec_.mutable_kill()->set_mode(v1::SELECTION_MODE_COUNT);
  absl::Status s = Validate();
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(s.message(), "kill.count: must be greater than 0 with mode count, got 0");
  spec_.mutable_kill()->set_count(-1);
  EXPECT_EQ(Validate().code(), absl::StatusCode::kInvalidArgument);
  spec_.mutable_kill()->set_mode(v1::SELECTION_MODE_ONE);
  spec_.mutable_kill()->set_count(2);
  s = Validate();
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(s.message()), StartsWith("kill.count: "));
}

TEST_F(SelectorTest, ModePercentRoundsUpAndTakesAtLeastOne) {
  spec_.mutable_kill()->mutable_process()->set_name("worker");  // 6 matches
  spec_.mutable_kill()->set_mode(v1::SELECTION_MODE_PERCENT);
  struct Case {
    double percent;
    size_t want;
  };
  for (const Case& c : std::vector<Case>{{50, 3},
                                         {51, 4},     // 3.06 -> 4
                                         {10, 1},     // 0.6 -> 1
                                         {1, 1},      // 0.06 -> at least 1
                                         {100.0 / 3, 2},  // exactly 2, not 3
                                         {100.0 / 6, 1},
                                         {99.9, 6},
                                         {100, 6}}) {
    spec_.mutable_kill()->set_percent(c.percent);
    auto got = SelectPids();
    ASSERT_TRUE(got.ok()) << c.percent << ": " << got.status();
    EXPECT_EQ(got->size(), c.want) << c.percent;
  }
}

TEST_F(SelectorTest, ModePercentIsNotFooledByFloatingPoint) {
  for (pid_t p = 200; p < 209; ++p) table_.Add(Proc(p, "nine"));
  spec_.mutable_kill()->mutable_process()->set_name("nine");
  spec_.mutable_kill()->set_mode(v1::SELECTION_MODE_PERCENT);
  // (100/3) / 100 * 9 is 3.0000000000000004 in doubles: still 3 processes.
  spec_.mutable_kill()->set_percent(100.0 / 3);
  EXPECT_EQ(SelectPids()->size(), 3u);
  spec_.mutable_kill()->set_percent(200.0 / 3);
  EXPECT_EQ(SelectPids()->size(), 6u);
}

TEST_F(SelectorTest, ModePercentBounds) {
  spec_.mutable_kill()->mutable_process()->set_name("worker");
  spec_.mutable_kill()->set_mode(v1::SELECTION_MODE_PERCENT);
  absl::Status s = Validate();
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(s.message(), "kill.percent: required with mode percent");
  for (double bad : {0.0, -5.0, 100.5, 150.0}) {
    spec_.mutable_kill()->set_percent(bad);
    s = Validate();
    EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument) << bad;
    EXPECT_THAT(std::string(s.message()), StartsWith("kill.percent: ")) << bad;
  }
  spec_.mutable_kill()->set_percent(150);
  EXPECT_EQ(Validate().message(), "kill.percent: must be above 0 and at most 100, got 150");
  spec_.mutable_kill()->set_mode(v1::SELECTION_MODE_ALL);
  EXPECT_THAT(std::string(Validate().message()),
              StartsWith("kill.percent: only valid with mode percent"));
}

TEST(DescribeTest, Processes) {
  v1::ProcessRef a;
  a.set_pid(123);
  a.set_comm("redis-server");
  EXPECT_EQ(DescribeProcesses({a}), "pid 123 (redis-server)");
  v1::ProcessRef b = a;
  b.set_pid(124);
  EXPECT_EQ(DescribeProcesses({a, b}), "pids 123,124 (redis-server)");
  v1::ProcessRef c;
  c.set_pid(7);
  c.set_comm("sentinel");
  EXPECT_EQ(DescribeProcesses({c, a}), "pids 7,123 (sentinel, redis-server)");
  std::vector<v1::ProcessRef> many(25, a);
  EXPECT_THAT(DescribeProcesses(many), HasSubstr(" and 5 more (redis-server)"));
}

TEST(DescribeTest, Selector) {
  v1::ProcessSelector s;
  s.set_pid(3);
  s.set_name("n");
  s.set_cmdline("c.*");
  s.set_pidfile("/p");
  s.set_cgroup("/g");
  EXPECT_EQ(DescribeSelector(s), "pid=3 name=\"n\" cmdline=\"c.*\" pidfile=\"/p\" cgroup=\"/g\"");
}

}  // namespace
}  // namespace faultline::agent
