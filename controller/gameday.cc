#include "controller/gameday.h"

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <filesystem>
#include <utility>

#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/strings/str_replace.h"
#include "absl/time/time.h"
#include "common/clock.h"
#include "common/files.h"
#include "common/status_macros.h"
#include "common/text.h"
#include "common/units.h"
#include "common/yaml_proto.h"
#include "controller/experiment.h"
#include "probes/probe.h"

namespace faultline::controller {
namespace {

constexpr char kController[] = "controller";

std::string OutcomeName(int o) {
  static const char* const kNames[] = {"ok", "failed", "timed_out", "aborted", "interrupted", ""};
  return kNames[o];
}

// "q4-failover-20261202-101500-s5-2" for step "5.2".
std::string StepRunId(const std::string& gameday, const std::string& step) {
  return fmt::format("{}-s{}", gameday, absl::StrReplaceAll(step, {{".", "-"}}));
}

std::string RunSummary(const v1::RunReport& r) {
  std::string s = fmt::format("verdict {}", r.verdict());
  if (r.outage_observed()) {
    s += fmt::format("; recovered in {:.1f} ms ± {:.1f}", r.time_to_recover_ms(), r.error_ms());
  }
  if (r.has_drill() && r.drill().restore_rto_ms() > 0) {
    s += fmt::format("; restore {:.0f} ms", r.drill().restore_rto_ms());
  }
  if (!r.reason().empty()) s += ": " + r.reason();
  return s;
}

// A gate's timeout: its own, or the default.
std::chrono::nanoseconds GateTimeout(const v1::GameDayGate& gate) {
  return gate.timeout().empty() ? std::chrono::nanoseconds(kDefaultGateTimeout)
                                : GameDayDuration(gate.timeout());
}

}  // namespace

v1::GameDayStatus GameDayStatusOf(const StoredGameDay& gd) {
  v1::GameDayStatus st;
  const v1::GameDaySpec& spec = gd.plan.spec();
  st.set_id(gd.id);
  st.set_name(spec.gameday());
  st.set_description(spec.description());
  st.set_file(gd.plan.file());
  st.set_state(gd.state);
  st.set_started_by(gd.started_by);
  st.set_started_unix_ns(gd.started_unix_ns);
  st.set_ended_unix_ns(gd.ended_unix_ns);
  std::map<std::string, int> index;
  auto add = [&](const std::string& no, const v1::GameDayStep& s) {
    index[no] = st.steps_size();
    v1::GameDayStepStatus* out = st.add_steps();
    out->set_step(no);
    out->set_kind(StepKindOf(s));
    out->set_title(StepTitleOf(s));
    out->set_state("pending");
  };
  for (int i = 0; i < spec.steps_size(); ++i) {
    const std::string no = std::to_string(i + 1);
    add(no, spec.steps(i));
    for (int j = 0; j < spec.steps(i).parallel_size(); ++j) {
      add(fmt::format("{}.{}", no, j + 1), spec.steps(i).parallel(j));
    }
  }
  for (const auto& ev : gd.events) {
    *st.add_events() = ev;
    if (ev.kind() == "ended") st.set_result(ev.outcome());
    auto it = index.find(ev.step());
    if (it == index.end()) continue;
    v1::GameDayStepStatus* s = st.mutable_steps(it->second);
    if (ev.kind() == "step_started") {
      s->set_state(s->kind() == "gate" ? "waiting" : "running");
      s->set_started_unix_ns(ev.at_unix_ns());
      if (!ev.run_id().empty()) s->set_run_id(ev.run_id());
      if (s->kind() == "gate") st.set_gate_deadline_unix_ns(ev.deadline_unix_ns());
    } else if (ev.kind() == "step_ended") {
      s->set_state(ev.outcome());
      s->set_ended_unix_ns(ev.at_unix_ns());
      s->set_detail(ev.text());
      if (ev.actor() != kController) s->set_actor(ev.actor());
    }
  }
  for (auto& s : *st.mutable_steps()) {
    if (gd.state != "running" && s.state() == "pending") s.set_state("skipped");
    if (s.step().find('.') != std::string::npos) continue;
    if (s.state() == "running" || s.state() == "waiting") st.set_current_step(s.step());
    if (s.state() == "waiting" && gd.state == "running") {
      st.set_state("waiting");
      st.set_gate_prompt(s.title());
    }
  }
  if (st.state() != "waiting") st.set_gate_deadline_unix_ns(0);
  return st;
}

// ---- GameDays ----

GameDays::GameDays(Store* store, GameDayRuns* runs, const ExecPolicy* exec)
    : store_(store), runs_(runs), exec_(exec) {}

GameDays::~GameDays() { Stop(); }

void GameDays::Record(const std::string& id, v1::GameDayEvent ev) {
  if (ev.at_unix_ns() == 0) ev.set_at_unix_ns(NowRealtimeNs());
  if (ev.actor().empty()) ev.set_actor(kController);
  absl::MutexLock lock(&store_mu_);
  if (absl::Status st = store_->AppendGameDayEvent(id, ev); !st.ok()) {
    spdlog::error("game day {}: cannot record its {} event: {}", id, ev.kind(),
                  std::string(st.message()));
  }
}

namespace {
v1::GameDayEvent Event(const std::string& step, const std::string& kind, const std::string& text,
                       const std::string& outcome = "") {
  v1::GameDayEvent ev;
  ev.set_step(step);
  ev.set_kind(kind);
  ev.set_text(text);
  ev.set_outcome(outcome);
  return ev;
}
}  // namespace

absl::Status GameDays::Start() {
  ASSIGN_OR_RETURN(auto running, store_->ListGameDays(0, /*only_running=*/true));
  for (const StoredGameDay& listed : running) {
    ASSIGN_OR_RETURN(StoredGameDay gd, store_->GetGameDay(listed.id));
    auto a = std::make_unique<Active>();
    a->id = gd.id;
    a->plan = gd.plan;
    const v1::GameDayStatus st = GameDayStatusOf(gd);
    const bool abort_asked = std::any_of(gd.events.begin(), gd.events.end(),
                                         [](const auto& e) { return e.kind() == "aborted"; });
    // The first top-level step not ended, and whether it was in flight.
    int first = 0;
    const v1::GameDayStepStatus* in_flight = nullptr;
    for (const auto& s : st.steps()) {
      if (s.step().find('.') != std::string::npos) continue;
      if (s.state() == "pending") break;
      if (s.state() == "running" || s.state() == "waiting") {
        in_flight = &s;
        break;
      }
      ++first;
    }
    if (abort_asked || first >= gd.plan.spec().steps_size()) {
      Active* raw = a.get();
      if (abort_asked) {
        if (in_flight != nullptr) {
          Record(gd.id, Event(in_flight->step(), "step_ended", "aborted", "aborted"));
        }
        Ended(raw, "aborted", "aborted", "aborted before the controller restarted");
      } else {
        Ended(raw, "completed", "", "");
      }
      continue;
    }
    int64_t resume_started = 0, resume_deadline = 0;
    std::string resume_text = fmt::format("the controller restarted; resuming at step {}",
                                          first + 1);
    if (in_flight != nullptr) {
      if (in_flight->kind() == "gate" || in_flight->kind() == "wait") {
        resume_started = in_flight->started_unix_ns();
        for (const auto& e : gd.events) {
          if (e.kind() == "step_started" && e.step() == in_flight->step()) {
            resume_deadline = e.deadline_unix_ns();
          }
        }
        resume_text += fmt::format(" ({} kept: it ends at its original deadline)",
                                   in_flight->kind());
      } else {
        // A run in flight was marked interrupted by the recovery (its faults
        // reverted); a check or a note is not repeated.
        for (const auto& s : st.steps()) {
          if (s.step().rfind(in_flight->step() + ".", 0) == 0 &&
              (s.state() == "running" || s.state() == "waiting")) {
            Record(gd.id, Event(s.step(), "step_ended",
                                "the controller restarted during this step", "interrupted"));
          }
        }
        Record(gd.id, Event(in_flight->step(), "step_ended",
                            "the controller restarted during this step; a run in flight was "
                            "marked interrupted and its faults reverted",
                            "interrupted"));
        ++first;
        resume_text = fmt::format("the controller restarted during step {} (interrupted); "
                                  "resuming at step {}",
                                  first, first + 1);
      }
    }
    Record(gd.id, Event("", "restarted", resume_text));
    spdlog::warn("game day {}: {}", gd.id, resume_text);
    absl::MutexLock lock(&mu_);
    if (stopping_) return absl::OkStatus();
    Launch(std::move(a), first, resume_started, resume_deadline);
  }
  return absl::OkStatus();
}

void GameDays::Launch(std::unique_ptr<Active> a, int first, int64_t resume_started_ns,
                      int64_t resume_deadline_ns) {
  Active* raw = a.get();
  active_[a->id] = std::move(a);
  raw->thread = std::thread([this, raw, first, resume_started_ns, resume_deadline_ns] {
    Run(raw, first, resume_started_ns, resume_deadline_ns);
    absl::MutexLock lock(&mu_);
    auto it = active_.find(raw->id);
    if (it != active_.end() && it->second.get() == raw) {
      ended_.push_back(std::move(it->second));
      active_.erase(it);
    }
  });
}

void GameDays::ReapLocked() {
  for (auto& a : ended_) {
    if (a->thread.joinable()) a->thread.join();
  }
  ended_.clear();
}

void GameDays::Stop() {
  std::vector<std::string> runs;
  {
    absl::MutexLock lock(&mu_);
    stopping_ = true;
    for (auto& [id, a] : active_) runs.insert(runs.end(), a->runs.begin(), a->runs.end());
  }
  for (const auto& r : runs) runs_->AbortRun(r, "by the controller's shutdown");
  std::vector<std::unique_ptr<Active>> all;
  {
    absl::MutexLock lock(&mu_);
    for (auto& [id, a] : active_) all.push_back(std::move(a));
    active_.clear();
    for (auto& a : ended_) all.push_back(std::move(a));
    ended_.clear();
  }
  for (auto& a : all) {
    if (a->thread.joinable()) a->thread.join();
  }
}

bool GameDays::Stopping(Active* a) {
  absl::MutexLock lock(&mu_);
  return stopping_ && !a->abort;
}

bool GameDays::SleepUntil(Active* a, int64_t deadline_ns, bool until_approved) {
  absl::MutexLock lock(&mu_);
  auto woken = [&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    return stopping_ || a->abort || (until_approved && a->approved);
  };
  mu_.AwaitWithDeadline(absl::Condition(&woken), absl::FromUnixNanos(deadline_ns));
  return !stopping_ && !a->abort;
}

void GameDays::Ended(Active* a, const std::string& state, const std::string& result,
                     const std::string& text) {
  std::string res = result;
  if (res.empty()) {
    // Every top-level step ok: pass.
    auto gd = store_->GetGameDay(a->id);
    res = "pass";
    if (gd.ok()) {
      const v1::GameDayStatus st = GameDayStatusOf(*gd);
      for (const auto& s : st.steps()) {
        if (s.step().find('.') == std::string::npos && s.state() != "ok") res = "fail";
      }
    }
  }
  Record(a->id, Event("", "ended", text.empty() ? "result " + res : text, res));
  if (absl::Status st = store_->EndGameDay(a->id, state, NowRealtimeNs()); !st.ok()) {
    spdlog::error("game day {}: cannot store its end: {}", a->id, std::string(st.message()));
  }
  spdlog::info("game day {}: {} ({})", a->id, state, res);
}

void GameDays::Run(Active* a, int first, int64_t resume_started_ns, int64_t resume_deadline_ns) {
  const auto& steps = a->plan.spec().steps();
  for (int i = first; i < steps.size(); ++i) {
    const std::string no = std::to_string(i + 1);
    const bool resumed = i == first && resume_started_ns != 0;
    const Outcome o = RunStep(a, no, steps.Get(i), resumed ? resume_deadline_ns : 0);
    if (o == Outcome::kStopped) return;
    if (o == Outcome::kAborted) {
      std::string by, why;
      {
        absl::MutexLock lock(&mu_);
        by = a->abort_by;
        why = a->abort_why;
      }
      Ended(a, "aborted", "aborted",
            by.empty() ? fmt::format("aborted at step {}", no)
                       : fmt::format("aborted by {} at step {}{}", by, no,
                                     why.empty() ? "" : ": " + why));
      return;
    }
    if (o == Outcome::kTimedOut && steps.Get(i).gate().on_timeout() != "continue") {
      Ended(a, "aborted", "aborted",
            fmt::format("gate at step {} was not approved within its timeout (on_timeout: abort)",
                        no));
      return;
    }
  }
  Ended(a, "completed", "", "");
}

GameDays::Outcome GameDays::RunStep(Active* a, const std::string& no, const v1::GameDayStep& step,
                                    int64_t resume_deadline_ns) {
  {
    absl::MutexLock lock(&mu_);
    if (stopping_ && !a->abort) return Outcome::kStopped;
    if (a->abort) return Outcome::kAborted;
  }
  const std::string kind = StepKindOf(step);
  if (kind == "gate") return RunGate(a, no, step.gate(), resume_deadline_ns);
  if (kind == "wait") return RunWait(a, no, step.wait(), resume_deadline_ns);
  if (kind == "note") {
    Record(a->id, Event(no, "step_started", step.note()));
    Record(a->id, Event(no, "step_ended", step.note(), "ok"));
    return Outcome::kOk;
  }
  if (kind == "check") return RunCheck(a, no, step.check());
  if (kind == "experiment") return RunExperiment(a, no, step.experiment());
  if (kind == "drill") return RunExperiment(a, no, step.drill());
  return RunParallel(a, no, step);
}

GameDays::Outcome GameDays::RunGate(Active* a, const std::string& no, const v1::GameDayGate& gate,
                                    int64_t deadline_ns) {
  if (deadline_ns == 0) {
    deadline_ns = NowRealtimeNs() + GateTimeout(gate).count();
    v1::GameDayEvent ev = Event(no, "step_started", gate.prompt());
    ev.set_deadline_unix_ns(deadline_ns);
    Record(a->id, ev);
  }
  {
    absl::MutexLock lock(&mu_);
    a->waiting_gate = no;
    a->approved = false;
  }
  SleepUntil(a, deadline_ns, /*until_approved=*/true);
  bool approved, aborted;
  std::string by, note;
  {
    absl::MutexLock lock(&mu_);
    a->waiting_gate.clear();
    if (stopping_ && !a->abort) return Outcome::kStopped;
    aborted = a->abort;
    approved = !aborted && a->approved;
    by = a->approved_by;
    note = a->approved_note;
    a->approved = false;
  }
  if (aborted) {
    Record(a->id, Event(no, "step_ended", "aborted while waiting", "aborted"));
    return Outcome::kAborted;
  }
  if (approved) {
    v1::GameDayEvent ev = Event(no, "step_ended", note.empty() ? "approved" : "approved: " + note,
                                "ok");
    ev.set_actor(by);
    Record(a->id, ev);
    return Outcome::kOk;
  }
  Record(a->id, Event(no, "step_ended",
                      fmt::format("not approved within {} (on_timeout: {})",
                                  FormatDuration(GateTimeout(gate)),
                                  gate.on_timeout().empty() ? "abort" : gate.on_timeout()),
                      "timed_out"));
  return Outcome::kTimedOut;
}

GameDays::Outcome GameDays::RunWait(Active* a, const std::string& no, const std::string& wait,
                                    int64_t deadline_ns) {
  if (deadline_ns == 0) {
    deadline_ns = NowRealtimeNs() + GameDayDuration(wait).count();
    v1::GameDayEvent ev = Event(no, "step_started", "wait " + wait);
    ev.set_deadline_unix_ns(deadline_ns);
    Record(a->id, ev);
  }
  if (SleepUntil(a, deadline_ns, false)) {
    Record(a->id, Event(no, "step_ended", "waited", "ok"));
    return Outcome::kOk;
  }
  if (Stopping(a)) return Outcome::kStopped;
  Record(a->id, Event(no, "step_ended", "aborted while waiting", "aborted"));
  return Outcome::kAborted;
}

GameDays::Outcome GameDays::RunCheck(Active* a, const std::string& no,
                                     const v1::GameDayCheck& check) {
  Record(a->id, Event(no, "step_started", fmt::format("probe {}", check.probe().name())));
  const v1::ProbeSpec spec = ToProbeSpec(check.probe());
  auto probe = MakeProbe(spec, *exec_);
  auto timing = ParseProbeTiming(spec);
  if (!probe.ok() || !timing.ok()) {
    const absl::Status& st = !probe.ok() ? probe.status() : timing.status();
    Record(a->id, Event(no, "step_ended", fmt::format("the probe cannot run: {}", std::string(st.message())),
                        "failed"));
    return Outcome::kFailed;
  }
  const bool want_pass = check.expect() != "fail";
  const int64_t end = NowRealtimeNs() + GameDayDuration(check.within()).count();
  // Bounded: one check per interval until `within` is up.
  const int64_t max_checks =
      1 + GameDayDuration(check.within()).count() / std::max<int64_t>(1, timing->interval.count());
  ProbeResult r;
  for (int64_t n = 0; n < max_checks; ++n) {
    const int64_t at = NowRealtimeNs();
    r = (*probe)->Check(timing->timeout);
    if (r.ok == want_pass) {
      Record(a->id, Event(no, "step_ended",
                          want_pass ? fmt::format("probe {} passed", check.probe().name())
                                    : fmt::format("probe {} failed as expected: {}",
                                                  check.probe().name(), r.error),
                          "ok"));
      return Outcome::kOk;
    }
    if (NowRealtimeNs() >= end) break;
    if (!SleepUntil(a, std::min(end, at + static_cast<int64_t>(timing->interval.count())),
                    false)) {
      if (Stopping(a)) return Outcome::kStopped;
      Record(a->id, Event(no, "step_ended", "aborted while checking", "aborted"));
      return Outcome::kAborted;
    }
  }
  Record(a->id, Event(no, "step_ended",
                      want_pass ? fmt::format("probe {} failed: {}", check.probe().name(), r.error)
                                : fmt::format("probe {} passed; expected it to fail",
                                              check.probe().name()),
                      "failed"));
  return Outcome::kFailed;
}

GameDays::Outcome GameDays::RunExperiment(Active* a, const std::string& no,
                                          const std::string& file) {
  const std::string run_id = StepRunId(a->id, no);
  v1::GameDayEvent ev = Event(no, "step_started", file);
  ev.set_run_id(run_id);
  Record(a->id, ev);
  {
    absl::MutexLock lock(&mu_);
    a->runs.insert(run_id);
  }
  const v1::RunReport report =
      runs_->RunForGameDay(run_id, a->plan.experiments().at(file), a->id, [this, a] {
        absl::MutexLock lock(&mu_);
        return a->abort || stopping_;
      });
  {
    absl::MutexLock lock(&mu_);
    a->runs.erase(run_id);
  }
  if (Stopping(a)) return Outcome::kStopped;
  Outcome o = report.verdict() == "pass"      ? Outcome::kOk
              : report.verdict() == "aborted" ? Outcome::kAborted
                                              : Outcome::kFailed;
  {
    absl::MutexLock lock(&mu_);
    if (a->abort) o = Outcome::kAborted;
  }
  ev = Event(no, "step_ended", RunSummary(report), OutcomeName(static_cast<int>(o)));
  ev.set_run_id(run_id);
  Record(a->id, ev);
  return o;
}

GameDays::Outcome GameDays::RunParallel(Active* a, const std::string& no,
                                        const v1::GameDayStep& step) {
  Record(a->id, Event(no, "step_started", StepTitleOf(step)));
  std::vector<Outcome> outcomes(step.parallel_size(), Outcome::kOk);
  std::vector<std::thread> branches;
  for (int j = 0; j < step.parallel_size(); ++j) {
    branches.emplace_back([&, j] {
      outcomes[j] = RunStep(a, fmt::format("{}.{}", no, j + 1), step.parallel(j), 0);
    });
  }
  for (auto& t : branches) t.join();
  if (Stopping(a)) return Outcome::kStopped;
  int failed = 0;
  bool aborted = false;
  for (Outcome o : outcomes) {
    if (o == Outcome::kAborted) aborted = true;
    if (o != Outcome::kOk) ++failed;
  }
  if (aborted) {
    Record(a->id, Event(no, "step_ended", "aborted", "aborted"));
    return Outcome::kAborted;
  }
  Record(a->id, Event(no, "step_ended",
                      failed == 0 ? fmt::format("all {} branches ok", outcomes.size())
                                  : fmt::format("{} of {} branches not ok", failed,
                                                outcomes.size()),
                      failed == 0 ? "ok" : "failed"));
  return failed == 0 ? Outcome::kOk : Outcome::kFailed;
}

// ---- Commands ----

absl::StatusOr<v1::GameDayStatus> GameDays::Status(const std::string& id) {
  ASSIGN_OR_RETURN(StoredGameDay gd, store_->GetGameDay(id));
  v1::GameDayStatus st = GameDayStatusOf(gd);
  for (const auto& s : st.steps()) {
    if (s.run_id().empty()) continue;
    auto run = store_->GetRun(s.run_id());
    if (!run.ok()) continue;  // not stored yet (in flight)
    run->clear_timeline();
    *st.add_runs() = std::move(*run);
  }
  return st;
}

absl::StatusOr<v1::GameDayStatus> GameDays::Begin(const v1::StartGameDayRequest& req,
                                                  const std::string& who) {
  ASSIGN_OR_RETURN(v1::GameDayPlan plan, LoadGameDay(req));
  absl::MutexLock begin(&begin_mu_);
  {
    absl::MutexLock lock(&mu_);
    if (stopping_) return absl::UnavailableError("the controller is shutting down");
    ReapLocked();
    if (active_.size() >= static_cast<size_t>(kMaxActiveGameDays)) {
      return absl::ResourceExhaustedError(fmt::format(
          "gameday: {} game days are running, the most at once; abort one or wait",
          active_.size()));
    }
    for (const auto& [id, a] : active_) {
      if (a->plan.spec().gameday() == plan.spec().gameday()) {
        return absl::FailedPreconditionError(fmt::format(
            "gameday: \"{}\" is running as {}; abort it or wait for it to end",
            plan.spec().gameday(), id));
      }
    }
  }
  StoredGameDay gd;
  gd.plan = plan;
  gd.started_by = who;
  gd.started_unix_ns = NowRealtimeNs();
  const std::string base = fmt::format(
      "{}-{}", plan.spec().gameday(),
      absl::FormatTime("%Y%m%d-%H%M%S", absl::FromUnixNanos(gd.started_unix_ns),
                       absl::UTCTimeZone()));
  absl::Status added;
  for (int n = 1; n <= 10; ++n) {
    gd.id = n == 1 ? base : fmt::format("{}-{}", base, n);
    added = store_->AddGameDay(gd);
    if (!absl::IsAlreadyExists(added)) break;
  }
  RETURN_IF_ERROR(added);
  v1::GameDayEvent ev = Event("", "started",
                              fmt::format("{} steps from {}", plan.spec().steps_size(),
                                          plan.file().empty() ? "(no file name)" : plan.file()));
  ev.set_actor(who);
  ev.set_at_unix_ns(gd.started_unix_ns);
  Record(gd.id, ev);
  spdlog::info("game day {}: started by {}", gd.id, who);
  auto a = std::make_unique<Active>();
  a->id = gd.id;
  a->plan = std::move(plan);
  {
    absl::MutexLock lock(&mu_);
    if (stopping_) return absl::UnavailableError("the controller is shutting down");
    Launch(std::move(a), 0, 0, 0);
  }
  return Status(gd.id);
}

namespace {
absl::Status CheckActionText(const std::string& field, const std::string& text, bool required) {
  std::vector<std::string> problems;
  CheckGameDayText(field, text, required, &problems);
  if (!problems.empty()) return absl::InvalidArgumentError(problems.front());
  if (!IsValidUtf8(text)) {
    return absl::InvalidArgumentError(fmt::format("{}: not valid UTF-8", field));
  }
  return absl::OkStatus();
}
}  // namespace

absl::StatusOr<v1::GameDayStatus> GameDays::Approve(const std::string& id, const std::string& who,
                                                    const std::string& note) {
  RETURN_IF_ERROR(CheckActionText("note", note, false));
  std::string gate;
  {
    absl::MutexLock lock(&mu_);
    auto it = active_.find(id);
    if (it != active_.end() && !it->second->waiting_gate.empty() && !it->second->abort) {
      gate = it->second->waiting_gate;
      it->second->approved = true;
      it->second->approved_by = who;
      it->second->approved_note = note;
    }
  }
  if (gate.empty()) {
    ASSIGN_OR_RETURN(v1::GameDayStatus st, Status(id));
    if (st.state() == "running") {
      return absl::FailedPreconditionError(fmt::format(
          "id: game day {} is not waiting at a gate (step {} is {})", id, st.current_step(),
          st.current_step().empty() ? "starting" : "running"));
    }
    return absl::FailedPreconditionError(
        fmt::format("id: game day {} has ended ({})", id, st.state()));
  }
  v1::GameDayEvent ev = Event(gate, "approved", note);
  ev.set_actor(who);
  Record(id, ev);
  return Status(id);
}

absl::StatusOr<v1::GameDayStatus> GameDays::Note(const std::string& id, const std::string& who,
                                                 const std::string& text) {
  RETURN_IF_ERROR(CheckActionText("text", text, true));
  ASSIGN_OR_RETURN(v1::GameDayStatus st, Status(id));
  ASSIGN_OR_RETURN(int events, store_->CountGameDayEvents(id));
  if (events >= kMaxGameDayEvents) {
    return absl::ResourceExhaustedError(
        fmt::format("id: game day {} holds {} events, the most one keeps", id, events));
  }
  v1::GameDayEvent ev = Event(st.current_step(), "note", text);
  ev.set_actor(who);
  Record(id, ev);
  return Status(id);
}

absl::StatusOr<v1::GameDayStatus> GameDays::Abort(const std::string& id, const std::string& who,
                                                  const std::string& why) {
  RETURN_IF_ERROR(CheckActionText("text", why, false));
  std::vector<std::string> runs;
  bool found = false;
  {
    absl::MutexLock lock(&mu_);
    auto it = active_.find(id);
    if (it != active_.end() && !it->second->abort) {
      found = true;
      it->second->abort = true;
      it->second->abort_by = who;
      it->second->abort_why = why;
      runs.assign(it->second->runs.begin(), it->second->runs.end());
    }
  }
  if (!found) {
    ASSIGN_OR_RETURN(v1::GameDayStatus st, Status(id));
    return absl::FailedPreconditionError(
        fmt::format("id: game day {} has ended ({})", id, st.state()));
  }
  v1::GameDayEvent ev = Event("", "aborted", why);
  ev.set_actor(who);
  Record(id, ev);
  for (const auto& r : runs) runs_->AbortRun(r, fmt::format("by {} (game day abort)", who));
  // The game day's thread ends it: wait (at most 5 s) so the reply shows the end.
  {
    absl::MutexLock lock(&mu_);
    auto ended = [&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return !active_.contains(id); };
    mu_.AwaitWithTimeout(absl::Condition(&ended), absl::Seconds(5));
  }
  return Status(id);
}

absl::StatusOr<v1::GameDayStatus> GameDays::Get(const std::string& id) { return Status(id); }

absl::StatusOr<std::vector<v1::GameDayStatus>> GameDays::List(int limit) {
  if (limit <= 0) limit = kDefaultListGameDays;
  ASSIGN_OR_RETURN(auto listed, store_->ListGameDays(limit, false));
  std::vector<v1::GameDayStatus> out;
  for (const auto& l : listed) {
    ASSIGN_OR_RETURN(StoredGameDay gd, store_->GetGameDay(l.id));
    v1::GameDayStatus st = GameDayStatusOf(gd);
    st.clear_events();
    out.push_back(std::move(st));
  }
  return out;
}

}  // namespace faultline::controller
