// Schedules and blackouts: the scheduler's decisions at given times against
// the real store (exactly once per tick, skips with their reasons, restarts),
// and end to end through the controller service with fake agents (ticks on
// time, forbid, a blackout halting a running scheduled run).
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <thread>

#include "controller/scheduler.h"
#include "controller/store.h"
#include "tests/unit/controller/test_controller.h"

namespace faultline::controller {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

// The runs a Scheduler starts, recorded; "running" until Finish.
class FakeRuns : public ScheduledRuns {
 public:
  absl::Status StartScheduledRun(const std::string& run_id, const v1::Experiment&,
                                 const std::string& schedule, int64_t scheduled) override {
    if (!refuse.ok()) return refuse;
    started.push_back(run_id);
    active[run_id] = true;
    last_schedule = schedule;
    last_scheduled = scheduled;
    return absl::OkStatus();
  }
  bool RunActive(const std::string& run_id) override { return active[run_id]; }
  void AbortRun(const std::string& run_id, const std::string& why) override {
    aborted.push_back(run_id + " " + why);
    active[run_id] = false;
  }
  std::vector<std::string> started;
  std::vector<std::string> aborted;
  std::map<std::string, bool> active;
  std::string last_schedule;
  int64_t last_scheduled = 0;
  absl::Status refuse = absl::OkStatus();
};

v1::AddScheduleRequest Every(const std::string& name, const std::string& every) {
  v1::AddScheduleRequest req;
  req.mutable_spec()->set_name(name);
  req.mutable_spec()->set_every(every);
  req.mutable_spec()->set_experiment_yaml(Experiment("50ms", "5s", "300ms"));
  req.mutable_spec()->set_experiment_file("scripted.yaml");
  return req;
}

// A scheduler over a store, its thread not started: the test drives Pass.
struct Bench {
  explicit Bench(const std::string& db = ":memory:") : store(*Store::Open(db)) {}
  // Adds the schedule; returns its anchor (where `every` counts from).
  absl::Time Add(const v1::AddScheduleRequest& req) {
    auto added = scheduler.Add(req, "unix:uid=0");
    EXPECT_TRUE(added.ok()) << added.status();
    return absl::FromUnixNanos(store->GetSchedule(req.spec().name())->anchor_unix_ns);
  }
  std::vector<v1::ScheduleTick> Ticks(const std::string& name) {
    return *store->ListTicks(name, 0);
  }
  std::unique_ptr<Store> store;
  FakeRuns runs;
  Scheduler scheduler{store.get(), &runs, nullptr};
};

std::vector<std::string> Outcomes(const std::vector<v1::ScheduleTick>& ticks) {
  std::vector<std::string> out;  // oldest first
  for (auto it = ticks.rbegin(); it != ticks.rend(); ++it) {
    out.push_back(it->outcome() == "skipped" ? "skipped:" + it->reason() : it->outcome());
  }
  return out;
}

TEST(Scheduler, EachTickStartsOnceAtItsTime) {
  Bench b;
  const absl::Time t0 = b.Add(Every("nightly", "5s"));
  EXPECT_EQ(b.scheduler.Pass(t0 + absl::Milliseconds(4999)), t0 + absl::Seconds(5));
  EXPECT_TRUE(b.runs.started.empty());
  EXPECT_EQ(b.scheduler.Pass(t0 + absl::Seconds(5)), t0 + absl::Seconds(10));
  ASSERT_EQ(b.runs.started.size(), 1u);
  EXPECT_EQ(b.runs.started[0], ScheduledRunId("nightly", absl::ToUnixNanos(t0 + absl::Seconds(5))));
  EXPECT_EQ(b.runs.last_scheduled, absl::ToUnixNanos(t0 + absl::Seconds(5)));
  b.runs.active.clear();
  b.scheduler.Pass(t0 + absl::Milliseconds(5500));  // the same tick again: nothing
  EXPECT_EQ(b.runs.started.size(), 1u);
  b.scheduler.Pass(t0 + absl::Seconds(10));
  EXPECT_EQ(b.runs.started.size(), 2u);
  EXPECT_THAT(Outcomes(b.Ticks("nightly")), ElementsAre("started", "started"));
}

TEST(Scheduler, ForbidSkipsWhileARunIsActiveAndRecordsIt) {
  Bench b;
  const absl::Time t0 = b.Add(Every("soak", "5s"));
  b.scheduler.Pass(t0 + absl::Seconds(5));
  b.scheduler.Pass(t0 + absl::Seconds(10));  // the first run is still active
  ASSERT_EQ(b.runs.started.size(), 1u);
  auto ticks = b.Ticks("soak");
  EXPECT_THAT(Outcomes(ticks), ElementsAre("started", "skipped:forbid"));
  EXPECT_THAT(ticks[0].detail(), HasSubstr(b.runs.started[0] + " still running"));
  b.runs.active.clear();
  b.scheduler.Pass(t0 + absl::Seconds(15));
  EXPECT_EQ(b.runs.started.size(), 2u);
}

TEST(Scheduler, ReplaceAbortsThePreviousRunAndAllowOverlaps) {
  Bench b;
  auto replace = Every("replace-me", "5s");
  replace.mutable_spec()->set_concurrency("replace");
  const absl::Time t0 = b.Add(replace);
  b.scheduler.Pass(t0 + absl::Seconds(5));
  b.scheduler.Pass(t0 + absl::Seconds(10));
  ASSERT_EQ(b.runs.started.size(), 2u);
  EXPECT_THAT(b.runs.aborted,
              ElementsAre(b.runs.started[0] +
                          " by schedule replace-me's next tick (concurrency: replace)"));

  Bench a;
  auto allow = Every("allow-me", "5s");
  allow.mutable_spec()->set_concurrency("allow");
  const absl::Time a0 = a.Add(allow);
  a.scheduler.Pass(a0 + absl::Seconds(5));
  a.scheduler.Pass(a0 + absl::Seconds(10));
  EXPECT_EQ(a.runs.started.size(), 2u);
  EXPECT_TRUE(a.runs.aborted.empty());
}

TEST(Scheduler, SuspendRecordsSkipsAndResumeRunsAgain) {
  Bench b;
  const absl::Time t0 = b.Add(Every("weekly", "5s"));
  ASSERT_TRUE(b.scheduler.SetState("weekly", "suspended").ok());
  b.scheduler.Pass(t0 + absl::Seconds(5));
  b.scheduler.Pass(t0 + absl::Seconds(10));
  EXPECT_TRUE(b.runs.started.empty());
  ASSERT_TRUE(b.scheduler.SetState("weekly", "active").ok());
  b.scheduler.Pass(t0 + absl::Seconds(15));
  EXPECT_EQ(b.runs.started.size(), 1u);
  EXPECT_THAT(Outcomes(b.Ticks("weekly")),
              ElementsAre("skipped:suspended", "skipped:suspended", "started"));
  EXPECT_EQ(b.scheduler.SetState("weekly", "paused").status().message(),
            "state: active or suspended, got \"paused\"");
}

TEST(Scheduler, ABlackoutSkipsTicksAndHaltsRunningScheduledRuns) {
  Bench b;
  const absl::Time t0 = b.Add(Every("daily", "5s"));
  b.scheduler.Pass(t0 + absl::Seconds(5));
  ASSERT_EQ(b.runs.started.size(), 1u);
  v1::Blackout freeze;
  freeze.set_name("freeze");
  freeze.set_from_unix_ns(absl::ToUnixNanos(absl::Now()) - 1'000'000'000);
  freeze.set_to_unix_ns(absl::ToUnixNanos(t0 + absl::Seconds(100)));
  auto added = b.scheduler.AddBlackout(freeze, "unix:uid=0");
  ASSERT_TRUE(added.ok()) << added.status();
  EXPECT_THAT(added->runs_halted(), ElementsAre(b.runs.started[0]));
  EXPECT_THAT(b.runs.aborted, ElementsAre(b.runs.started[0] + " by blackout freeze"));
  b.scheduler.Pass(t0 + absl::Seconds(10));
  EXPECT_EQ(b.runs.started.size(), 1u);
  EXPECT_THAT(Outcomes(b.Ticks("daily")), ElementsAre("started", "skipped:blackout"));
  ASSERT_TRUE(b.scheduler.DeleteBlackout("freeze").ok());
  b.scheduler.Pass(t0 + absl::Seconds(15));
  EXPECT_EQ(b.runs.started.size(), 2u);
}

TEST(Scheduler, MissedTicksAreSkippedAndCatchUpLatestRunsTheNewest) {
  Bench b;
  auto req = Every("late", "5s");
  req.mutable_spec()->set_starting_deadline("2s");
  const absl::Time t0 = b.Add(req);
  b.scheduler.Pass(t0 + absl::Seconds(23));  // ticks at 5, 10, 15, 20: the newest 3 s late
  EXPECT_TRUE(b.runs.started.empty());
  auto ticks = b.Ticks("late");
  EXPECT_THAT(Outcomes(ticks), ElementsAre("skipped:deadline", "skipped:deadline",
                                           "skipped:deadline", "skipped:deadline"));
  EXPECT_THAT(ticks[0].detail(), HasSubstr("past the starting deadline of 2s"));

  Bench c;
  auto catch_up = Every("catch-up", "5s");
  catch_up.mutable_spec()->set_starting_deadline("2s");
  catch_up.mutable_spec()->set_catch_up("latest");
  const absl::Time c0 = c.Add(catch_up);
  c.scheduler.Pass(c0 + absl::Seconds(23));
  ASSERT_EQ(c.runs.started.size(), 1u);
  EXPECT_EQ(c.runs.last_scheduled, absl::ToUnixNanos(c0 + absl::Seconds(20)));
  EXPECT_THAT(Outcomes(c.Ticks("catch-up")),
              ElementsAre("skipped:deadline", "skipped:deadline", "skipped:deadline", "started"));
}

TEST(Scheduler, ARestartBetweenTicksNeitherDoublesNorLosesATick) {
  char dir[] = "/tmp/fltest-sched-XXXXXX";
  ASSERT_NE(mkdtemp(dir), nullptr);
  const std::string db = std::string(dir) + "/controller.db";
  absl::Time t0;
  std::string first;
  {
    Bench before(db);
    t0 = before.Add(Every("restart", "5s"));
    before.scheduler.Pass(t0 + absl::Seconds(5));
    ASSERT_EQ(before.runs.started.size(), 1u);
    first = before.runs.started[0];
  }
  {
    Bench after(db);  // a new controller on the same store
    after.scheduler.Pass(t0 + absl::Milliseconds(5200));
    EXPECT_TRUE(after.runs.started.empty()) << "tick run twice";
    after.scheduler.Pass(t0 + absl::Seconds(10));
    ASSERT_EQ(after.runs.started.size(), 1u) << "tick lost";
    EXPECT_NE(after.runs.started[0], first);
    EXPECT_THAT(Outcomes(after.Ticks("restart")), ElementsAre("started", "started"));
  }
  std::filesystem::remove_all(dir);
}

TEST(Scheduler, ARunTheBlastRadiusRefusesIsALimitSkip) {
  Bench b;
  const absl::Time t0 = b.Add(Every("limited", "5s"));
  b.scheduler.Pass(t0 + absl::Seconds(5));
  ASSERT_EQ(b.runs.started.size(), 1u);
  v1::RunReport refused;
  refused.set_run_id(b.runs.started[0]);
  refused.set_schedule("limited");
  refused.set_scheduled_unix_ns(absl::ToUnixNanos(t0 + absl::Seconds(5)));
  refused.set_refused_by_limits(true);
  refused.set_reason("--max-concurrent-runs 4: 4 runs in flight");
  b.scheduler.RunEnded(refused);
  auto ticks = b.Ticks("limited");
  ASSERT_EQ(ticks.size(), 1u);
  EXPECT_EQ(ticks[0].reason(), "limit");
  EXPECT_EQ(ticks[0].detail(), "--max-concurrent-runs 4: 4 runs in flight");
}

TEST(Scheduler, HistoryKeepsTheNewestTicks) {
  Bench b;
  auto req = Every("short", "1s");
  req.mutable_spec()->set_history(3);
  req.mutable_spec()->set_concurrency("allow");
  const absl::Time t0 = b.Add(req);
  for (int i = 1; i <= 6; ++i) b.scheduler.Pass(t0 + absl::Seconds(i));
  auto ticks = b.Ticks("short");
  ASSERT_EQ(ticks.size(), 3u);
  EXPECT_EQ(ticks[0].scheduled_unix_ns(), absl::ToUnixNanos(t0 + absl::Seconds(6)));
}

TEST(Scheduler, BadSchedulesAreRefusedNamingEachField) {
  Bench b;
  v1::AddScheduleRequest req;
  req.mutable_spec()->set_name("Bad Name");
  req.mutable_spec()->set_cron("0 10 * * 1-5");
  req.mutable_spec()->set_every("5m");
  req.mutable_spec()->set_concurrency("sometimes");
  req.mutable_spec()->set_starting_deadline("2d");
  req.mutable_spec()->set_history(-1);
  req.mutable_spec()->set_catch_up("all");
  req.mutable_spec()->set_experiment_file("x.yaml");
  req.mutable_spec()->set_experiment_yaml("name: x\n");
  auto added = b.scheduler.Add(req, "op");
  ASSERT_EQ(added.status().code(), absl::StatusCode::kInvalidArgument);
  const std::string msg(added.status().message());
  for (const char* want : {"name: must match", "cron, every: exactly one is required",
                           "concurrency: forbid, allow or replace, got \"sometimes\"",
                           "starting_deadline:", "history: must be between 1 and 1000",
                           "catch_up: only \"latest\"", "x.yaml:\n"}) {
    EXPECT_THAT(msg, HasSubstr(want));
  }
  auto bad_cron = Every("c", "5s");
  bad_cron.mutable_spec()->clear_every();
  bad_cron.mutable_spec()->set_cron("0 25 * * *");
  EXPECT_THAT(std::string(b.scheduler.Add(bad_cron, "op").status().message()),
              HasSubstr("cron: hour: 25 is outside 0-23"));
  auto bad_zone = Every("z", "5s");
  bad_zone.mutable_spec()->set_timezone("Mars/Olympus");
  EXPECT_THAT(std::string(b.scheduler.Add(bad_zone, "op").status().message()),
              HasSubstr("timezone: unknown time zone"));
  EXPECT_TRUE(b.store->ListSchedules()->empty());  // nothing stored
  ASSERT_TRUE(b.scheduler.Add(Every("twice", "5s"), "op").ok());
  EXPECT_EQ(b.scheduler.Add(Every("twice", "5s"), "op").status().code(),
            absl::StatusCode::kAlreadyExists);
  v1::Blackout backwards;
  backwards.set_name("b");
  backwards.set_from_unix_ns(absl::ToUnixNanos(absl::Now()) + 2'000'000'000);
  backwards.set_to_unix_ns(absl::ToUnixNanos(absl::Now()) + 1'000'000'000);
  EXPECT_EQ(b.scheduler.AddBlackout(backwards, "op").status().message(), "to: must be after from");
}

TEST(Scheduler, ADryRunShowsTheNextStartsInItsZoneAndStoresNothing) {
  Bench b;
  v1::AddScheduleRequest req = Every("berlin", "5s");
  req.mutable_spec()->clear_every();
  req.mutable_spec()->set_cron("0 10 * * 1-5");
  req.mutable_spec()->set_timezone("Europe/Berlin");
  req.set_dry_run(true);
  auto shown = b.scheduler.Add(req, "op");
  ASSERT_TRUE(shown.ok()) << shown.status();
  ASSERT_EQ(shown->upcoming_start_unix_ns_size(), 5);
  absl::TimeZone berlin;
  ASSERT_TRUE(absl::LoadTimeZone("Europe/Berlin", &berlin));
  for (int64_t t : shown->upcoming_start_unix_ns()) {
    const absl::CivilSecond local = absl::ToCivilSecond(absl::FromUnixNanos(t), berlin);
    EXPECT_EQ(local.hour(), 10);
    EXPECT_EQ(local.minute(), 0);
    const absl::Weekday day = absl::GetWeekday(local);
    EXPECT_TRUE(day != absl::Weekday::saturday && day != absl::Weekday::sunday);
  }
  EXPECT_TRUE(b.store->ListSchedules()->empty());
}

// ---- End to end: the controller's own scheduler thread and runs ----

v1::ScheduleStatus GetSchedule(TestController& c, const std::string& name) {
  grpc::ClientContext ctx;
  v1::GetScheduleRequest req;
  req.set_name(name);
  v1::ScheduleStatus resp;
  EXPECT_TRUE(c.stub()->GetSchedule(&ctx, req, &resp).ok());
  return resp;
}

// Waits (bounded) until `pred` holds for the schedule; returns it.
template <typename Pred>
v1::ScheduleStatus WaitFor(TestController& c, const std::string& name, Pred pred,
                           std::chrono::seconds limit) {
  const auto until = std::chrono::steady_clock::now() + limit;
  v1::ScheduleStatus s = GetSchedule(c, name);
  while (!pred(s) && std::chrono::steady_clock::now() < until) {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
    s = GetSchedule(c, name);
  }
  return s;
}

int Count(const v1::ScheduleStatus& s, const std::string& outcome, const std::string& reason = "") {
  int n = 0;
  for (const auto& t : s.ticks()) {
    if (t.outcome() == outcome && (reason.empty() || t.reason() == reason)) ++n;
  }
  return n;
}

TEST(ScheduledRuns, EveryFiveSecondsFiresOnTime) {
  Fleet f;
  f.service.outage_length_ns = 100'000'000;
  TestController c;
  c.RegisterAndBeat(f.victim);
  c.RegisterAndBeat(f.observer);
  grpc::ClientContext ctx;
  v1::ScheduleStatus added;
  ASSERT_TRUE(c.stub()->AddSchedule(&ctx, Every("every5", "5s"), &added).ok());
  auto s = WaitFor(c, "every5", [](const v1::ScheduleStatus& s) {
    int done = 0;
    for (const auto& t : s.ticks()) done += !t.verdict().empty() && t.verdict() != "running";
    return done >= 2;
  }, std::chrono::seconds(20));
  ASSERT_GE(s.ticks_size(), 2);
  const v1::ScheduleTick& second = s.ticks(0);
  const v1::ScheduleTick& first = s.ticks(1);
  EXPECT_EQ(second.scheduled_unix_ns() - first.scheduled_unix_ns(), 5 * kSecond);
  EXPECT_EQ(first.scheduled_unix_ns() - added.created_unix_ns(), 5 * kSecond);
  for (const auto* t : {&first, &second}) {
    EXPECT_EQ(t->outcome(), "started");
    EXPECT_EQ(t->verdict(), "pass");
    grpc::ClientContext rc;
    v1::GetRunRequest req;
    req.set_run_id(t->run_id());
    v1::RunReport run;
    ASSERT_TRUE(c.stub()->GetRun(&rc, req, &run).ok());
    EXPECT_EQ(run.schedule(), "every5");
    EXPECT_EQ(run.scheduled_unix_ns(), t->scheduled_unix_ns());
    const int64_t late = run.started_unix_ns() - t->scheduled_unix_ns();
    EXPECT_GE(late, 0);
    EXPECT_LE(late, kSecond) << "started " << late / 1e6 << " ms after its tick";
    std::printf("tick %s: started %.1f ms after its time\n", t->run_id().c_str(), late / 1e6);
  }
}

TEST(ScheduledRuns, ForbidSkipsAndABlackoutHaltsTheRunAndRevertsItsFaults) {
  Fleet f;
  f.service.until_revert = true;  // down from the injection to the revert
  TestController c;
  c.RegisterAndBeat(f.victim);
  c.RegisterAndBeat(f.observer);
  auto req = Every("long", "1s");
  req.mutable_spec()->set_experiment_yaml(Experiment("50ms", "60s", "30s"));
  grpc::ClientContext ctx;
  v1::ScheduleStatus added;
  ASSERT_TRUE(c.stub()->AddSchedule(&ctx, req, &added).ok());
  // The first run injects; the ticks after it are skipped (forbid).
  auto s = WaitFor(c, "long", [&](const v1::ScheduleStatus& s) {
    return f.victim.ActiveFaults() > 0 && Count(s, "skipped", "forbid") >= 2;
  }, std::chrono::seconds(20));
  ASSERT_GT(f.victim.ActiveFaults(), 0);
  ASSERT_GE(Count(s, "skipped", "forbid"), 2);
  const std::string run_id = s.running_run_id();
  ASSERT_FALSE(run_id.empty());

  grpc::ClientContext bctx;
  v1::Blackout freeze;
  freeze.set_name("change-freeze");
  freeze.set_from_unix_ns(absl::ToUnixNanos(absl::Now()));
  freeze.set_to_unix_ns(absl::ToUnixNanos(absl::Now() + absl::Minutes(10)));
  v1::AddBlackoutResponse halted;
  ASSERT_TRUE(c.stub()->AddBlackout(&bctx, freeze, &halted).ok());
  EXPECT_THAT(halted.runs_halted(), ElementsAre(run_id));
  // Its faults reverted, its verdict `aborted` naming the blackout.
  v1::RunReport run;
  for (int i = 0; i < 100; ++i) {
    grpc::ClientContext rc;
    v1::GetRunRequest get;
    get.set_run_id(run_id);
    if (c.stub()->GetRun(&rc, get, &run).ok() && run.state() == "done") break;
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  EXPECT_EQ(run.verdict(), "aborted");
  EXPECT_EQ(run.reason(), "aborted by blackout change-freeze; faults reverted");
  EXPECT_EQ(f.victim.ActiveFaults(), 0);
  s = WaitFor(c, "long", [](const v1::ScheduleStatus& s) {
    return Count(s, "skipped", "blackout") >= 1;
  }, std::chrono::seconds(5));
  EXPECT_GE(Count(s, "skipped", "blackout"), 1);
  EXPECT_EQ(Count(s, "started"), 1);
  // The skips are counted by reason.
  const auto scraped = c.Scrape();
  EXPECT_GE(scraped.Value("faultline_schedule_skipped_total",
                          {{"schedule", "long"}, {"reason", "forbid"}}),
            2);
}

}  // namespace
}  // namespace faultline::controller
