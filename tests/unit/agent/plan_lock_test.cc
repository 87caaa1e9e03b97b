// A slow plan (a scan of every process, a hung filesystem) runs outside the
// fault manager's lock: it does not delay another fault's deadline. A real
// pause of a child process, 1 s long, is injected while a disk-fill plan
// blocks for 2 s; the child is resumed 1 s after its injection.
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
#include "common/endpoint.h"
#include "fmt/format.h"
#include "gtest/gtest.h"

namespace faultline::agent {
namespace {

using Clock = std::chrono::steady_clock;

// A disk-fill handler whose Plan takes 2 s and then refuses. Thread-safe.
class SlowPlanHandler : public FaultHandler {
 public:
  v1::FaultSpec::KindCase kind_case() const override { return v1::FaultSpec::kDiskFill; }
  absl::StatusOr<std::vector<std::string>> Plan(const v1::FaultSpec&, const FaultContext&,
                                                v1::FaultRecord*) const override {
    std::this_thread::sleep_for(std::chrono::seconds(2));
    return absl::FailedPreconditionError("path: the filesystem did not answer");
  }
  absl::Status Apply(v1::FaultRecord*, const FaultContext&) const override {
    return absl::InternalError("never applied");
  }
  absl::Status Revert(const v1::FaultRecord&, const FaultContext&) const override {
    return absl::OkStatus();
  }
};

// The state letter of /proc/PID/stat ('T' while stopped).
char StateOf(pid_t pid) {
  auto stat = ReadFileToString(fmt::format("/proc/{}/stat", pid));
  if (!stat.ok()) return '?';
  const size_t paren = stat->rfind(')');
  return paren + 2 < stat->size() ? (*stat)[paren + 2] : '?';
}

TEST(PlanOutsideTheLock, SlowPlanDoesNotDelayAnotherFaultsDeadline) {
  const pid_t child = ::fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    ::execl("/bin/sleep", "sleep", "30", nullptr);
    ::_exit(127);
  }
  const std::filesystem::path dir =
      std::filesystem::temp_directory_path() / fmt::format("fltest-planlock-{}", ::getpid());
  auto cleanup = [&] {
    ::kill(child, SIGKILL);
    ::waitpid(child, nullptr, 0);
    std::error_code ec;
    std::filesystem::remove_all(dir, ec);
  };
  v1::Policy policy;
  ProcProcessTable processes("/proc");
  FaultContext ctx;
  ctx.policy = &policy;
  ctx.processes = &processes;
  ctx.agent_pid = ::getpid();
  std::vector<std::unique_ptr<FaultHandler>> handlers;
  handlers.push_back(MakePauseHandler());
  handlers.push_back(std::make_unique<SlowPlanHandler>());
  auto ledger = Ledger::Open(dir.string());
  ASSERT_TRUE(ledger.ok()) << ledger.status();
  auto manager = std::make_unique<FaultManager>(std::move(*ledger), std::move(handlers), ctx);
  manager->Start();

  std::thread slow([&] {
    v1::InjectRequest req;
    req.mutable_spec()->mutable_disk_fill()->set_path("/");
    req.mutable_spec()->mutable_disk_fill()->set_bytes("1M");
    req.mutable_spec()->set_duration("10s");
    EXPECT_FALSE(manager->Inject(req).ok());
  });
  std::this_thread::sleep_for(std::chrono::milliseconds(100));  // the slow plan is under way

  v1::InjectRequest pause;
  pause.mutable_spec()->mutable_pause()->mutable_process()->set_pid(child);
  pause.mutable_spec()->set_duration("1s");
  const Clock::time_point asked = Clock::now();
  auto injected = manager->Inject(pause);
  const Clock::time_point answered = Clock::now();
  ASSERT_TRUE(injected.ok()) << injected.status();
  EXPECT_LT(answered - asked, std::chrono::milliseconds(500)) << "the pause waited for the plan";
  EXPECT_EQ(StateOf(child), 'T');

  Clock::time_point resumed = Clock::time_point::max();
  for (int i = 0; i < 1000 && Clock::now() - asked < std::chrono::seconds(5); ++i) {
    if (StateOf(child) != 'T') {
      resumed = Clock::now();
      break;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
  slow.join();
  manager.reset();
  cleanup();
  ASSERT_NE(resumed, Clock::time_point::max()) << "never resumed";
  const double after_ms = std::chrono::duration<double, std::milli>(resumed - asked).count();
  std::printf("pause answered in %.1f ms, resumed %.1f ms after it was asked\n",
              std::chrono::duration<double, std::milli>(answered - asked).count(), after_ms);
  EXPECT_NEAR(after_ms, 1000, 150) << "resumed " << after_ms << " ms after the pause";
}

}  // namespace
}  // namespace faultline::agent
