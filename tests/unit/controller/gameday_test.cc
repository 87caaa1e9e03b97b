// Game days end to end through the controller service with fake agents: a
// gate waits and proceeds on approve, times out (abort or continue), an abort
// reverts the running experiment's faults, gates and waits survive a
// controller restart, parallel branches run together, and bad runbooks are
// refused naming the field.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <functional>
#include <thread>

#include "common/clock.h"
#include "web/gameday_report.h"
#include "controller/gameday.h"
#include "tests/unit/controller/test_controller.h"

namespace faultline::controller {
namespace {

using ::testing::HasSubstr;

v1::StartGameDayRequest Runbook(const std::string& yaml,
                                std::map<std::string, std::string> files = {}) {
  v1::StartGameDayRequest req;
  req.set_yaml(yaml);
  req.set_file("test-gameday.yaml");
  for (auto& [k, v] : files) (*req.mutable_files())[k] = v;
  return req;
}

absl::StatusOr<v1::GameDayStatus> Start(TestController& c, const v1::StartGameDayRequest& req) {
  grpc::ClientContext ctx;
  v1::GameDayStatus st;
  grpc::Status s = c.stub()->StartGameDay(&ctx, req, &st);
  if (!s.ok()) return absl::Status(static_cast<absl::StatusCode>(s.error_code()), s.error_message());
  return st;
}

v1::GameDayStatus Get(TestController& c, const std::string& id) {
  grpc::ClientContext ctx;
  v1::GetGameDayRequest req;
  req.set_id(id);
  v1::GameDayStatus st;
  EXPECT_TRUE(c.stub()->GetGameDay(&ctx, req, &st).ok());
  return st;
}

// Polls (every 50 ms, at most `limit`) until `done` holds; returns the last status.
v1::GameDayStatus WaitFor(TestController& c, const std::string& id,
                          const std::function<bool(const v1::GameDayStatus&)>& done,
                          std::chrono::milliseconds limit) {
  const auto end = std::chrono::steady_clock::now() + limit;
  v1::GameDayStatus st = Get(c, id);
  while (!done(st) && std::chrono::steady_clock::now() < end) {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
    st = Get(c, id);
  }
  return st;
}

bool Ended(const v1::GameDayStatus& st) {
  return st.state() == "completed" || st.state() == "aborted";
}

grpc::Status Action(TestController& c,
                    grpc::Status (v1::Controller::Stub::*method)(grpc::ClientContext*,
                                                                 const v1::GameDayActionRequest&,
                                                                 v1::GameDayStatus*),
                    const std::string& id, const std::string& text,
                    v1::GameDayStatus* out = nullptr) {
  grpc::ClientContext ctx;
  v1::GameDayActionRequest req;
  req.set_id(id);
  req.set_text(text);
  v1::GameDayStatus st;
  grpc::Status s = (c.stub()->*method)(&ctx, req, &st);
  if (out != nullptr) *out = st;
  return s;
}

const v1::GameDayStepStatus& Step(const v1::GameDayStatus& st, const std::string& no) {
  for (const auto& s : st.steps()) {
    if (s.step() == no) return s;
  }
  ADD_FAILURE() << "no step " << no;
  static const v1::GameDayStepStatus kNone;
  return kNone;
}

TEST(GameDay, AGateWaitsProceedsOnApproveAndTheReportHoldsEveryStep) {
  Fleet f;
  f.service.outage_length_ns = 100'000'000;
  TestController c;
  c.RegisterAndBeat(f.victim);
  c.RegisterAndBeat(f.observer);
  auto started = Start(c, Runbook(R"(
gameday: failover-drill
description: The victim pauses; the service must come back.
steps:
  - note: Announce the game day.
  - gate: {prompt: "Traffic normal and on-call ready?", timeout: 30s}
  - experiment: outage.yaml
  - wait: 300ms
  - check: {probe: {name: up, exec: {argv: [/bin/true]}}, expect: pass}
  - check: {probe: {name: down, exec: {argv: [/bin/false]}}, expect: fail}
)", {{"outage.yaml", Experiment("50ms", "5s", "1s")}}));
  ASSERT_TRUE(started.ok()) << started.status();
  const std::string id = started->id();
  EXPECT_THAT(id, ::testing::StartsWith("failover-drill-"));

  // It waits at the gate, and keeps waiting.
  auto st = WaitFor(c, id, [](const auto& s) { return s.state() == "waiting"; },
                    std::chrono::seconds(5));
  ASSERT_EQ(st.state(), "waiting");
  EXPECT_EQ(st.current_step(), "2");
  EXPECT_EQ(st.gate_prompt(), "Traffic normal and on-call ready?");
  EXPECT_GT(st.gate_deadline_unix_ns(), NowRealtimeNs() + 20 * kSecond);
  EXPECT_EQ(Step(st, "1").state(), "ok");
  std::this_thread::sleep_for(std::chrono::milliseconds(500));
  st = Get(c, id);
  EXPECT_EQ(st.state(), "waiting");
  EXPECT_EQ(Step(st, "3").state(), "pending");
  EXPECT_EQ(f.victim.ActiveFaults(), 0);

  // A note and the approval, with the caller's identity.
  ASSERT_TRUE(Action(c, &v1::Controller::Stub::NoteGameDay, id, "on-call is Alice").ok());
  const int64_t approved_at = NowRealtimeNs();
  ASSERT_TRUE(Action(c, &v1::Controller::Stub::ApproveGameDay, id, "ready").ok());
  st = WaitFor(c, id, Ended, std::chrono::seconds(30));
  ASSERT_EQ(st.state(), "completed");
  EXPECT_EQ(st.result(), "pass");
  for (const auto& s : st.steps()) {
    EXPECT_EQ(s.state(), "ok") << s.step() << " " << s.detail();
    EXPECT_GT(s.started_unix_ns(), 0) << s.step();
    EXPECT_GE(s.ended_unix_ns(), s.started_unix_ns()) << s.step();
  }
  EXPECT_EQ(Step(st, "2").actor(), "insecure");
  EXPECT_EQ(Step(st, "2").detail(), "approved: ready");
  EXPECT_GE(Step(st, "2").ended_unix_ns(), approved_at);
  EXPECT_GE(Step(st, "3").started_unix_ns(), Step(st, "2").ended_unix_ns());
  const auto& wait = Step(st, "4");
  EXPECT_GE(wait.ended_unix_ns() - wait.started_unix_ns(), 300'000'000);
  ASSERT_EQ(st.runs_size(), 1);
  EXPECT_EQ(st.runs(0).run_id(), Step(st, "3").run_id());
  EXPECT_EQ(st.runs(0).verdict(), "pass");
  EXPECT_EQ(st.runs(0).gameday(), id);
  EXPECT_THAT(Step(st, "6").detail(), HasSubstr("failed as expected"));

  // The report holds every step with its times, the note and the approval.
  const std::string md = web::GameDayMarkdown(st);
  for (const char* want : {"Announce the game day.", "Traffic normal and on-call ready?",
                           "outage.yaml", "approved: ready", "on-call is Alice", "| 6 | check |",
                           "result**: pass"}) {
    EXPECT_THAT(md, HasSubstr(want));
  }
  EXPECT_THAT(web::GameDayHtml(st), HasSubstr("<b id=\"result\">pass</b>"));

  // Nothing waits now: a second approval is refused.
  grpc::Status again = Action(c, &v1::Controller::Stub::ApproveGameDay, id, "");
  EXPECT_EQ(again.error_code(), grpc::StatusCode::FAILED_PRECONDITION);
  EXPECT_THAT(again.error_message(), HasSubstr("has ended"));
}

TEST(GameDay, AGateThatTimesOutAbortsOrContinues) {
  TestController c;
  auto aborted = Start(c, Runbook(R"(
gameday: gate-abort
steps:
  - gate: {prompt: "Go?", timeout: 300ms}
  - note: never reached
)"));
  ASSERT_TRUE(aborted.ok()) << aborted.status();
  auto continued = Start(c, Runbook(R"(
gameday: gate-continue
steps:
  - gate: {prompt: "Go?", timeout: 300ms, on_timeout: continue}
  - note: reached
)"));
  ASSERT_TRUE(continued.ok()) << continued.status();
  auto st = WaitFor(c, aborted->id(), Ended, std::chrono::seconds(5));
  EXPECT_EQ(st.state(), "aborted");
  EXPECT_EQ(st.result(), "aborted");
  EXPECT_EQ(Step(st, "1").state(), "timed_out");
  EXPECT_EQ(Step(st, "2").state(), "skipped");
  const int64_t waited = Step(st, "1").ended_unix_ns() - Step(st, "1").started_unix_ns();
  EXPECT_GE(waited, 300'000'000);
  EXPECT_LT(waited, 3 * kSecond);
  st = WaitFor(c, continued->id(), Ended, std::chrono::seconds(5));
  EXPECT_EQ(st.state(), "completed");
  EXPECT_EQ(st.result(), "fail");  // a gate nobody approved is not ok
  EXPECT_EQ(Step(st, "1").state(), "timed_out");
  EXPECT_EQ(Step(st, "2").state(), "ok");
}

TEST(GameDay, AnAbortRevertsTheRunningExperimentsFaults) {
  Fleet f;
  f.service.until_revert = true;
  TestController c;
  c.RegisterAndBeat(f.victim);
  c.RegisterAndBeat(f.observer);
  auto started = Start(c, Runbook(R"(
gameday: abort-me
steps:
  - experiment: long.yaml
  - note: never reached
)", {{"long.yaml", Experiment("50ms", "60s", "30s")}}));
  ASSERT_TRUE(started.ok()) << started.status();
  for (int i = 0; i < 200 && f.victim.ActiveFaults() == 0; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  ASSERT_GT(f.victim.ActiveFaults(), 0);
  v1::GameDayStatus st;
  ASSERT_TRUE(Action(c, &v1::Controller::Stub::AbortGameDay, started->id(), "pager went off", &st)
                  .ok());
  st = WaitFor(c, started->id(), Ended, std::chrono::seconds(10));
  EXPECT_EQ(st.state(), "aborted");
  EXPECT_EQ(f.victim.ActiveFaults(), 0);
  EXPECT_EQ(Step(st, "1").state(), "aborted");
  EXPECT_EQ(Step(st, "2").state(), "skipped");
  ASSERT_EQ(st.runs_size(), 1);
  EXPECT_EQ(st.runs(0).verdict(), "aborted");
  EXPECT_THAT(st.events(st.events_size() - 1).text(), HasSubstr("pager went off"));
  grpc::Status again = Action(c, &v1::Controller::Stub::AbortGameDay, started->id(), "");
  EXPECT_EQ(again.error_code(), grpc::StatusCode::FAILED_PRECONDITION);
}

class GameDayRestart : public ::testing::Test {
 protected:
  void SetUp() override {
    std::filesystem::remove_all(dir_);
    std::filesystem::create_directories(dir_);
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }
  const std::string dir_ = "/tmp/fltest-gameday-" + std::to_string(getpid());
  const std::string db_ = dir_ + "/controller.db";
};

TEST_F(GameDayRestart, AGateKeepsWaitingWithItsDeadline) {
  std::string id;
  int64_t deadline = 0;
  {
    TestController c(db_);
    auto started = Start(c, Runbook(R"(
gameday: restart-gate
steps:
  - note: before
  - gate: {prompt: "Continue?", timeout: 60s}
  - note: after
)"));
    ASSERT_TRUE(started.ok()) << started.status();
    id = started->id();
    auto st = WaitFor(c, id, [](const auto& s) { return s.state() == "waiting"; },
                      std::chrono::seconds(5));
    ASSERT_EQ(st.state(), "waiting");
    deadline = st.gate_deadline_unix_ns();
  }
  TestController c(db_);
  auto st = Get(c, id);
  EXPECT_EQ(st.state(), "waiting");
  EXPECT_EQ(st.current_step(), "2");
  EXPECT_EQ(st.gate_deadline_unix_ns(), deadline);
  EXPECT_TRUE(std::any_of(st.events().begin(), st.events().end(),
                          [](const auto& e) { return e.kind() == "restarted"; }));
  ASSERT_TRUE(Action(c, &v1::Controller::Stub::ApproveGameDay, id, "").ok());
  st = WaitFor(c, id, Ended, std::chrono::seconds(5));
  EXPECT_EQ(st.state(), "completed");
  EXPECT_EQ(st.result(), "pass");
  EXPECT_EQ(Step(st, "1").state(), "ok");
  EXPECT_EQ(Step(st, "3").state(), "ok");
  // Step 1 ran once: a restart repeats nothing that had ended.
  int note_starts = 0;
  for (const auto& e : st.events()) note_starts += e.step() == "1" && e.kind() == "step_started";
  EXPECT_EQ(note_starts, 1);
}

TEST_F(GameDayRestart, AnExperimentInFlightIsInterruptedAndTheRestGoesOn) {
  Fleet f;
  f.service.until_revert = true;
  std::string id;
  {
    TestController c(db_);
    c.RegisterAndBeat(f.victim);
    c.RegisterAndBeat(f.observer);
    auto started = Start(c, Runbook(R"(
gameday: restart-run
steps:
  - experiment: long.yaml
  - note: after
)", {{"long.yaml", Experiment("50ms", "60s", "30s")}}));
    ASSERT_TRUE(started.ok()) << started.status();
    id = started->id();
    for (int i = 0; i < 200 && f.victim.ActiveFaults() == 0; ++i) {
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    ASSERT_GT(f.victim.ActiveFaults(), 0);
  }
  // The controller's shutdown reverted the faults.
  EXPECT_EQ(f.victim.ActiveFaults(), 0);
  TestController c(db_);
  auto st = WaitFor(c, id, Ended, std::chrono::seconds(5));
  EXPECT_EQ(st.state(), "completed");
  EXPECT_EQ(st.result(), "fail");
  EXPECT_EQ(Step(st, "1").state(), "interrupted");
  EXPECT_EQ(Step(st, "2").state(), "ok");
}

TEST(GameDay, ParallelBranchesRunTogether) {
  TestController c;
  auto started = Start(c, Runbook(R"(
gameday: branches
steps:
  - parallel:
      - wait: 1s
      - wait: 1s
      - check: {probe: {name: down, exec: {argv: [/bin/false]}}, expect: pass}
)"));
  ASSERT_TRUE(started.ok()) << started.status();
  auto st = WaitFor(c, started->id(), Ended, std::chrono::seconds(10));
  EXPECT_EQ(st.state(), "completed");
  EXPECT_EQ(st.result(), "fail");
  const auto& p = Step(st, "1");
  EXPECT_EQ(p.state(), "failed");
  EXPECT_EQ(p.detail(), "1 of 3 branches not ok");
  EXPECT_LT(p.ended_unix_ns() - p.started_unix_ns(), 1800'000'000);  // not 2 s one after another
  EXPECT_EQ(Step(st, "1.1").state(), "ok");
  EXPECT_EQ(Step(st, "1.2").state(), "ok");
  EXPECT_EQ(Step(st, "1.3").state(), "failed");
}

TEST(GameDay, BadRunbooksAreRefusedNamingTheField) {
  TestController c;
  const std::string exp = Experiment("50ms", "5s", "1s");
  struct Case {
    std::string yaml;
    std::string want;
  };
  for (const Case& k : std::vector<Case>{
           {"steps: [{note: x}]", "gameday: must match"},
           {"gameday: Bad_Name\nsteps: [{note: x}]", "gameday: must match"},
           {"gameday: g\nsteps: []", "steps: at least one step"},
           {"gameday: g\nsteps: [{}]", "steps[0]: none of note"},
           {"gameday: g\nsteps: [{note: x, wait: 1s}]", "steps[0]: more than one"},
           {"gameday: g\nsteps: [{bogus: 1}]", "bogus"},
           {"gameday: g\nsteps: [{gate: {timeout: 1m}}]", "steps[0].gate.prompt: required"},
           {"gameday: g\nsteps: [{gate: {prompt: p, timeout: 25h}}]",
            "steps[0].gate.timeout: at most"},
           {"gameday: g\nsteps: [{gate: {prompt: p, timeout: soon}}]", "steps[0].gate.timeout"},
           {"gameday: g\nsteps: [{gate: {prompt: p, on_timeout: retry}}]",
            "steps[0].gate.on_timeout: abort or continue"},
           {"gameday: g\nsteps: [{wait: 0s}]", "steps[0].wait: must be above 0"},
           {"gameday: g\nsteps: [{experiment: missing.yaml}]",
            "steps[0].experiment: \"missing.yaml\" was not sent"},
           {"gameday: g\nsteps: [{drill: e.yaml}]", "steps[0].drill: \"e.yaml\" holds no drill"},
           {"gameday: g\nsteps: [{experiment: bad.yaml}]", "steps[0].experiment (bad.yaml): "},
           {"gameday: g\nsteps: [{check: {expect: pass}}]", "steps[0].check.probe: required"},
           {"gameday: g\nsteps: [{check: {probe: {name: p, tcp: {address: \"x\"}}}}]",
            "steps[0].check.probe.tcp.address"},
           {"gameday: g\nsteps: [{check: {probe: {name: p, from: obs, exec: {argv: [/bin/true]}}}}]",
            "steps[0].check.probe.from"},
           {"gameday: g\nsteps: [{check: {probe: {name: p, exec: {argv: [/bin/true]}}, "
            "expect: maybe}}]",
            "steps[0].check.expect: pass or fail"},
           {"gameday: g\nsteps: [{parallel: [{note: a}]}]", "steps[0].parallel: 2 to 16"},
           {"gameday: g\nsteps: [{parallel: [{note: a}, {gate: {prompt: p}}]}]",
            "steps[0].parallel[1]: a gate cannot run in parallel"},
           {"gameday: g\nsteps: [{parallel: [{note: a}, {parallel: [{note: b}, {note: c}]}]}]",
            "steps[0].parallel[1]: a parallel cannot run in parallel"},
           {"- a\n- b", "(top)"},
       }) {
    auto st = Start(c, Runbook(k.yaml, {{"e.yaml", exp}, {"bad.yaml", "name: x\n"}}));
    ASSERT_FALSE(st.ok()) << k.yaml;
    EXPECT_EQ(st.status().code(), absl::StatusCode::kInvalidArgument) << k.yaml;
    EXPECT_THAT(st.status().message(), HasSubstr(k.want)) << k.yaml;
  }
  // Nothing was stored.
  grpc::ClientContext ctx;
  v1::ListGameDaysResponse list;
  ASSERT_TRUE(c.stub()->ListGameDays(&ctx, v1::ListGameDaysRequest(), &list).ok());
  EXPECT_EQ(list.gamedays_size(), 0);
  // Unknown ids, empty notes.
  EXPECT_EQ(Action(c, &v1::Controller::Stub::ApproveGameDay, "nope", "").error_code(),
            grpc::StatusCode::NOT_FOUND);
  EXPECT_EQ(Action(c, &v1::Controller::Stub::NoteGameDay, "nope", "").error_code(),
            grpc::StatusCode::INVALID_ARGUMENT);
}

TEST(GameDay, TheExampleRunbookLoadsWithItsFiles) {
  auto req = ReadGameDayFiles(std::string(FAULTLINE_EXPERIMENTS_DIR) + "/gameday-zone-failover.yaml");
  ASSERT_TRUE(req.ok()) << req.status();
  EXPECT_GE(req->files_size(), 2);
  auto plan = LoadGameDay(*req);
  ASSERT_TRUE(plan.ok()) << plan.status();
  EXPECT_EQ(plan->spec().gameday(), "q4-zone-failover");
}

}  // namespace
}  // namespace faultline::controller
