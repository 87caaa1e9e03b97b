// The runner's fan-out: ForEachParallel and ForEachAsync themselves, and an
// ExperimentRun against 20 slow in-process fake agents, whose phases must take
// about one agent's time (all at once) rather than twenty (one after another,
// max_in_flight 1).
#include "controller/fan_out.h"

#include <gmock/gmock.h>
#include <grpcpp/create_channel.h>
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <map>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "controller/agent_client.h"
#include "controller/experiment.h"
#include "controller/runner.h"
#include "tests/unit/controller/fake_agent.h"

namespace faultline::controller {
namespace {

using ::faultline::testing::FakeAgent;
using ::testing::HasSubstr;
using Clock = std::chrono::steady_clock;

// ---- ForEachParallel ----

// Calls fn over n items and returns the most calls seen in flight at once.
// Each call stays until as many as the limit allows are in flight (at most
// 2 s: on a loaded machine 12 threads may take longer than a fixed sleep to
// start), so a call never ends before the others could join it.
int MaxConcurrency(size_t n, size_t max_in_flight, std::vector<int>* calls) {
  const int expect = static_cast<int>(max_in_flight == 0 ? n : std::min(n, max_in_flight));
  std::atomic<int> in_flight{0};
  std::atomic<int> most{0};
  calls->assign(n, 0);
  std::vector<std::atomic<int>> seen(n);
  ForEachParallel(n, max_in_flight, [&](size_t i) {
    const int now = ++in_flight;
    int prev = most.load();
    while (now > prev && !most.compare_exchange_weak(prev, now)) {
    }
    const auto until = Clock::now() + std::chrono::seconds(2);
    while (most.load() < expect && Clock::now() < until) {
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
    ++seen[i];
    --in_flight;
  });
  for (size_t i = 0; i < n; ++i) (*calls)[i] = seen[i].load();
  return most.load();
}

TEST(ForEachParallel, CallsEveryIndexOnceWithinTheLimit) {
  std::vector<int> calls;
  EXPECT_EQ(MaxConcurrency(12, 0, &calls), 12);  // unlimited: all at once
  EXPECT_THAT(calls, ::testing::Each(1));
  EXPECT_EQ(MaxConcurrency(12, 4, &calls), 4);
  EXPECT_THAT(calls, ::testing::Each(1));
  EXPECT_EQ(MaxConcurrency(3, 10, &calls), 3);
  EXPECT_THAT(calls, ::testing::Each(1));
  EXPECT_EQ(MaxConcurrency(0, 0, &calls), 0);
}

TEST(ForEachParallel, OneAtATimeRunsInOrderOnTheCallersThread) {
  std::vector<size_t> order;
  const auto me = std::this_thread::get_id();
  bool same_thread = true;
  ForEachParallel(5, 1, [&](size_t i) {
    order.push_back(i);
    same_thread = same_thread && std::this_thread::get_id() == me;
  });
  EXPECT_THAT(order, ::testing::ElementsAre(0, 1, 2, 3, 4));
  EXPECT_TRUE(same_thread);
}

// ---- ForEachAsync ----

// Items finish on threads of their own 100 ms after they start (as gRPC
// completions do), every third one inside `start` itself; returns the most
// items seen unfinished at once.
int MaxUnfinished(size_t n, size_t max_in_flight, std::vector<int>* finished,
                  std::vector<size_t>* started) {
  std::atomic<int> unfinished{0};
  std::atomic<int> most{0};
  std::vector<std::atomic<int>> seen(n);
  std::vector<std::thread> completions;
  started->clear();
  ForEachAsync(n, max_in_flight, [&](size_t i, AsyncDone done) {
    started->push_back(i);  // `start` runs on the caller's thread only
    const int now = ++unfinished;
    int prev = most.load();
    while (now > prev && !most.compare_exchange_weak(prev, now)) {
    }
    if (i % 3 == 0) {
      ++seen[i];
      --unfinished;
      return done();
    }
    completions.emplace_back([&seen, &unfinished, i, done] {
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
      ++seen[i];
      --unfinished;
      done();
    });
  });
  // Every item has finished by the time ForEachAsync returns.
  finished->assign(n, 0);
  for (size_t i = 0; i < n; ++i) (*finished)[i] = seen[i].load();
  for (std::thread& t : completions) t.join();
  return most.load();
}

TEST(ForEachAsync, FinishesEveryIndexOnceWithinTheLimit) {
  std::vector<int> finished;
  std::vector<size_t> started;
  EXPECT_EQ(MaxUnfinished(12, 0, &finished, &started), 8);  // unlimited: all at once
  EXPECT_THAT(finished, ::testing::Each(1));
  EXPECT_LE(MaxUnfinished(12, 4, &finished, &started), 4);
  EXPECT_THAT(finished, ::testing::Each(1));
  EXPECT_EQ(MaxUnfinished(12, 1, &finished, &started), 1);
  EXPECT_THAT(finished, ::testing::Each(1));
  EXPECT_THAT(started, ::testing::ElementsAre(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11));
  EXPECT_EQ(MaxUnfinished(0, 0, &finished, &started), 0);
}

// ---- ExperimentRun against a slow fleet ----

constexpr int kAgents = 20;

constexpr char kExperiment[] = R"(
name: fan-out
targets:
  fleet: {labels: {role: web}}
  observer: {labels: {role: obs}}
probes:
  - name: svc
    from: observer
    tcp: {address: "127.0.0.1:9"}
    interval: 20ms
faults:
  - on: fleet
    pause: {process: {name: web}}
objectives: {rto: 5s, recovered_after: 2}
duration: 200ms
)";

// kAgents fake agents labelled role=web and one observer (role=obs, whose
// probe stream always passes), and the clients the runs dial them with.
struct SlowFleet {
  SlowFleet() {
    for (int i = 0; i < kAgents; ++i) {
      fleet.push_back(std::make_unique<FakeAgent>(
          fmt::format("web-{:02}", i), std::map<std::string, std::string>{{"role", "web"}}, 0,
          nullptr));
    }
  }

  std::vector<AgentRef> Refs() {
    std::vector<AgentRef> refs;
    for (auto& a : fleet) refs.push_back({a->name(), a->address(), {{"role", "web"}}, true});
    refs.push_back({observer.name(), observer.address(), {{"role", "obs"}}, true});
    return refs;
  }

  std::vector<std::unique_ptr<FakeAgent>> fleet;
  FakeAgent observer{"obs", {{"role", "obs"}}, 0, nullptr};
  AgentClients clients{[](const std::string& address)
                           -> absl::StatusOr<std::shared_ptr<grpc::Channel>> {
    return grpc::CreateChannel(address, grpc::InsecureChannelCredentials());
  }};
};

// One run's report and how long each phase took (from its first progress
// report to the next phase's first).
struct Timed {
  v1::RunReport report;
  std::map<std::string, std::chrono::milliseconds> phases;
};

Timed RunOn(SlowFleet& f, size_t max_in_flight, bool dry_run = false) {
  auto exp = LoadExperiment(kExperiment);
  EXPECT_TRUE(exp.ok()) << exp.status();
  RunnerOptions o;
  o.lease_ttl = std::chrono::milliseconds(300);
  o.steady_after_timeout = std::chrono::milliseconds(3000);
  o.steady_slack = std::chrono::milliseconds(2000);
  o.max_in_flight = max_in_flight;
  Timed t;
  std::string phase;
  Clock::time_point since = Clock::now();
  ExperimentRun run(NewRunId(), *exp, dry_run, f.Refs(), o, &f.clients, /*store=*/nullptr,
                    [&](const v1::RunProgress& p) {
                      if (p.phase() == phase) return;
                      const auto now = Clock::now();
                      if (!phase.empty()) {
                        t.phases[phase] =
                            std::chrono::duration_cast<std::chrono::milliseconds>(now - since);
                      }
                      phase = p.phase();
                      since = now;
                    });
  const Clock::time_point start = Clock::now();
  t.report = run.Execute();
  t.phases["total"] = std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - start);
  return t;
}

TEST(FanOut, InjectAndRevertReachEveryAgentAtOnce) {
  SlowFleet f;
  for (auto& a : f.fleet) {
    a->inject_delay_ms = 100;
    a->revert_delay_ms = 100;
  }
  Timed parallel = RunOn(f, 0);
  ASSERT_NE(parallel.report.verdict(), "error") << parallel.report.reason();
  Timed serial = RunOn(f, 1);
  ASSERT_NE(serial.report.verdict(), "error") << serial.report.reason();
  std::printf("inject: %lld ms parallel, %lld ms one at a time; revert: %lld ms, %lld ms\n",
              static_cast<long long>(parallel.phases["injecting"].count()),
              static_cast<long long>(serial.phases["injecting"].count()),
              static_cast<long long>(parallel.phases["reverting"].count()),
              static_cast<long long>(serial.phases["reverting"].count()));
  EXPECT_LT(parallel.phases["injecting"], std::chrono::seconds(1));
  EXPECT_GE(serial.phases["injecting"], std::chrono::seconds(2));
  EXPECT_LT(parallel.phases["reverting"], std::chrono::seconds(1));
  EXPECT_GE(serial.phases["reverting"], std::chrono::seconds(2));

  // Same report either way: every part, in the order of the targets.
  for (const Timed* t : {&parallel, &serial}) {
    ASSERT_EQ(t->report.faults_size(), kAgents);
    for (int i = 0; i < kAgents; ++i) {
      EXPECT_EQ(t->report.faults(i).agent(), fmt::format("web-{:02}", i));
      EXPECT_FALSE(t->report.faults(i).fault_id().empty());
    }
    EXPECT_EQ(t->report.agents_size(), kAgents);
  }
  for (auto& a : f.fleet) {
    EXPECT_EQ(a->injects.load(), 2);
    EXPECT_EQ(a->commits.load(), 2);  // prepared, then committed at one instant
    EXPECT_EQ(a->revert_alls.load(), 2);
    EXPECT_EQ(a->ActiveFaults(), 0);
  }
  // Each agent's Inject took 100 ms, yet all of them applied together.
  std::printf("start skew: %.2f ms parallel, %.2f ms one at a time\n",
              parallel.report.start_skew_ms(), serial.report.start_skew_ms());
  EXPECT_LT(parallel.report.start_skew_ms(), 20.0);
}

TEST(FanOut, ClockSyncAndDryRunReachEveryAgentAtOnce) {
  SlowFleet f;
  for (auto& a : f.fleet) {
    a->info_delay_ms = 20;
    a->inject_delay_ms = 100;
  }
  Timed parallel = RunOn(f, 0, /*dry_run=*/true);
  ASSERT_EQ(parallel.report.verdict(), "dry_run") << parallel.report.reason();
  Timed serial = RunOn(f, 1, /*dry_run=*/true);
  ASSERT_EQ(serial.report.verdict(), "dry_run") << serial.report.reason();
  std::printf("dry run (clocks + plans): %lld ms parallel, %lld ms one at a time\n",
              static_cast<long long>(parallel.phases["total"].count()),
              static_cast<long long>(serial.phases["total"].count()));
  // One at a time: 21 x 20 ms of clock exchanges (connected by the first run;
  // one exchange each, as good as the best), then 21 x 100 ms of plans.
  EXPECT_LT(parallel.phases["total"], std::chrono::seconds(1));
  EXPECT_GE(serial.phases["total"], std::chrono::milliseconds(2400));
  for (const Timed* t : {&parallel, &serial}) {
    ASSERT_EQ(t->report.faults_size(), kAgents);
    for (int i = 0; i < kAgents; ++i) {
      EXPECT_EQ(t->report.faults(i).agent(), fmt::format("web-{:02}", i));
      EXPECT_THAT(t->report.faults(i).changes(),
                  ::testing::ElementsAre(fmt::format("would pause on web-{:02}", i)));
    }
    int clocks = 0;
    for (const auto& e : t->report.timeline()) clocks += e.kind() == "clock";
    EXPECT_EQ(clocks, kAgents + 1);  // the fleet and the observer
  }
}

TEST(FanOut, EveryFailingAgentIsNamedAndTheRestReverted) {
  SlowFleet f;
  f.fleet[3]->Reject("no process named \"web\"");
  f.fleet[11]->Reject("pause: not permitted");
  Timed t = RunOn(f, 0);
  EXPECT_EQ(t.report.verdict(), "error");
  EXPECT_THAT(t.report.reason(),
              HasSubstr("faults[0] (pause) on agent web-03: no process named \"web\"; "
                        "faults[0] (pause) on agent web-11: pause: not permitted"));
  EXPECT_THAT(t.report.reason(), HasSubstr("; faults reverted"));
  for (auto& a : f.fleet) {
    EXPECT_EQ(a->revert_alls.load(), 1) << a->name();
    EXPECT_EQ(a->ActiveFaults(), 0) << a->name();
    // A coordinated start: with one refusal in the prepare phase, nothing is
    // applied anywhere.
    EXPECT_EQ(a->commits.load(), 0) << a->name();
  }
  EXPECT_TRUE(t.report.timeline().empty() ||
              std::none_of(t.report.timeline().begin(), t.report.timeline().end(),
                           [](const auto& e) { return e.kind() == "injected"; }));
}

}  // namespace
}  // namespace faultline::controller
