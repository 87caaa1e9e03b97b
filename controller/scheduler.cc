#include "controller/scheduler.h"

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <optional>
#include <utility>

#include "absl/strings/str_join.h"
#include "common/status_macros.h"
#include "common/text.h"
#include "common/units.h"
#include "controller/experiment.h"

namespace faultline::controller {
namespace {

// The loop looks again at least this often (a clock step, a tick decided by
// another pass), and at once on any change.
constexpr absl::Duration kMaxSleep = absl::Seconds(1);
// Missed ticks listed one by one after a long stop; older ones go unrecorded.
constexpr int kMaxMissedListed = 100;
constexpr std::chrono::hours kMaxStartingDeadline{24};
constexpr std::chrono::hours kMaxBlackoutSpan{24 * 366};
// Starts a dry run shows.
constexpr int kUpcoming = 5;

std::string NameProblem(const std::string& name) { return IdNameProblem("name", name); }

std::chrono::nanoseconds StartingDeadline(const v1::ScheduleSpec& spec) {
  if (spec.starting_deadline().empty()) return kDefaultStartingDeadline;
  auto d = ParseDuration("", spec.starting_deadline());
  return d.ok() ? *d : kDefaultStartingDeadline;
}

int History(const v1::ScheduleSpec& spec) {
  return spec.history() > 0 ? spec.history() : kDefaultScheduleHistory;
}

std::string Concurrency(const v1::ScheduleSpec& spec) {
  return spec.concurrency().empty() ? "forbid" : spec.concurrency();
}

int64_t Ns(absl::Time t) { return absl::ToUnixNanos(t); }

std::optional<std::string> ActiveBlackout(const std::vector<v1::Blackout>& blackouts,
                                          absl::Time now) {
  for (const auto& b : blackouts) {
    if (b.from_unix_ns() <= Ns(now) && Ns(now) < b.to_unix_ns()) return b.name();
  }
  return std::nullopt;
}

}  // namespace

absl::StatusOr<schedule::ScheduleTimes> TimesOf(const v1::ScheduleSpec& spec, absl::Time anchor) {
  schedule::ScheduleOptions o;
  o.name = spec.name();
  o.cron = spec.cron();
  if (!spec.every().empty()) {
    ASSIGN_OR_RETURN(auto every, ParseDuration("every", spec.every()));
    o.every = absl::FromChrono(every);
  }
  o.anchor = anchor;
  o.timezone = spec.timezone();
  o.window = spec.window();
  if (!spec.jitter().empty()) {
    ASSIGN_OR_RETURN(auto jitter, ParseDuration("jitter", spec.jitter()));
    o.jitter = absl::FromChrono(jitter);
  }
  return schedule::ScheduleTimes::Create(o);
}

absl::StatusOr<v1::Experiment> ValidateSchedule(const v1::ScheduleSpec& spec) {
  std::vector<std::string> problems;
  if (std::string p = NameProblem(spec.name()); !p.empty()) problems.push_back(p);
  if (spec.cron().empty() == spec.every().empty()) {
    problems.push_back("cron, every: exactly one is required (--cron \"0 10 * * 1-5\" or --every 30m)");
  } else if (auto times = TimesOf(spec, absl::Now()); !times.ok()) {
    problems.push_back(std::string(times.status().message()));
  }
  const std::string c = spec.concurrency();
  if (!c.empty() && c != "forbid" && c != "allow" && c != "replace") {
    problems.push_back(fmt::format("concurrency: forbid, allow or replace, got \"{}\"", Printable(c)));
  }
  if (!spec.starting_deadline().empty()) {
    auto d = ParseDuration("starting_deadline", spec.starting_deadline());
    if (!d.ok()) {
      problems.push_back(std::string(d.status().message()));
    } else if (*d < std::chrono::seconds(1) || *d > kMaxStartingDeadline) {
      problems.push_back(fmt::format("starting_deadline: must be between 1s and 24h, got {}",
                                     Printable(spec.starting_deadline())));
    }
  }
  if (spec.history() < 0 || spec.history() > kMaxScheduleHistory) {
    problems.push_back(fmt::format("history: must be between 1 and {} (0 = {}), got {}",
                                   kMaxScheduleHistory, kDefaultScheduleHistory, spec.history()));
  }
  if (!spec.catch_up().empty() && spec.catch_up() != "latest") {
    problems.push_back(
        fmt::format("catch_up: only \"latest\" (or none), got \"{}\"", Printable(spec.catch_up())));
  }
  absl::StatusOr<v1::Experiment> exp = LoadExperiment(spec.experiment_yaml());
  if (!exp.ok()) {
    const std::string file = spec.experiment_file().empty() ? "experiment" : spec.experiment_file();
    problems.push_back(fmt::format("{}:\n{}", Printable(file), std::string(exp.status().message())));
  }
  if (!problems.empty()) return absl::InvalidArgumentError(absl::StrJoin(problems, "\n"));
  return exp;
}


std::string ScheduledRunId(const std::string& schedule, int64_t scheduled_unix_ns) {
  return fmt::format("{}-{}", schedule,
                     absl::FormatTime("%Y%m%d-%H%M%S", absl::FromUnixNanos(scheduled_unix_ns),
                                      absl::UTCTimeZone()));
}

Scheduler::Scheduler(Store* store, ScheduledRuns* runs, ControllerMetrics* metrics)
    : store_(store), runs_(runs), metrics_(metrics) {}

Scheduler::~Scheduler() { Stop(); }

void Scheduler::Start() {
  absl::MutexLock lock(&mu_);
  if (thread_.joinable()) return;
  stop_ = false;
  thread_ = std::thread([this] { Loop(); });
}

void Scheduler::Stop() {
  {
    absl::MutexLock lock(&mu_);
    stop_ = true;
  }
  if (thread_.joinable()) thread_.join();
}

void Scheduler::Wake() {
  absl::MutexLock lock(&mu_);
  woken_ = true;
}

void Scheduler::Loop() {
  for (;;) {
    const absl::Time now = absl::Now();
    const absl::Time next = std::min(Pass(now), now + kMaxSleep);
    absl::MutexLock lock(&mu_);
    auto ready = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return stop_ || woken_; };
    mu_.AwaitWithDeadline(absl::Condition(&ready), std::max(next, absl::Now()));
    if (stop_) return;
    woken_ = false;
  }
}

absl::Time Scheduler::Pass(absl::Time now) {
  absl::Time next = absl::InfiniteFuture();
  auto schedules = store_->ListSchedules();
  auto blackouts = store_->ListBlackouts();
  if (!schedules.ok() || !blackouts.ok()) {
    spdlog::error("scheduler: {}",
                  std::string((schedules.ok() ? blackouts.status() : schedules.status()).message()));
    return next;
  }
  if (auto name = ActiveBlackout(*blackouts, now)) HaltAll("by blackout " + *name);
  for (const auto& b : *blackouts) {
    if (b.from_unix_ns() > Ns(now)) next = std::min(next, absl::FromUnixNanos(b.from_unix_ns()));
  }
  for (const StoredSchedule& sc : *schedules) {
    if (std::optional<absl::Time> t = PassOne(sc, now, *blackouts)) next = std::min(next, *t);
  }
  return next;
}

std::optional<absl::Time> Scheduler::PassOne(const StoredSchedule& sc, absl::Time now,
                                             const std::vector<v1::Blackout>& blackouts) {
  const std::string& name = sc.spec.name();
  auto times = TimesOf(sc.spec, absl::FromUnixNanos(sc.anchor_unix_ns));
  auto exp = LoadExperiment(sc.spec.experiment_yaml());
  if (!times.ok() || !exp.ok()) {
    spdlog::error("schedule {}: {}", name,
                  std::string((times.ok() ? exp.status() : times.status()).message()));
    return std::nullopt;
  }
  const absl::Time last = absl::FromUnixNanos(sc.last_tick_unix_ns);
  auto missed = times->Missed(last, now, kMaxMissedListed);
  if (!missed.ok()) return std::nullopt;
  std::vector<absl::Time> ticks = missed->oldest;
  if (missed->latest && (ticks.empty() || ticks.back() != *missed->latest)) {
    ticks.push_back(*missed->latest);
  }
  // Due: ticks whose (jittered) start has come, oldest first; a later tick
  // whose start is still ahead waits for it.
  std::vector<absl::Time> due;
  for (absl::Time t : ticks) {
    if (times->StartOf(t) > now) break;
    due.push_back(t);
  }
  for (size_t i = 0; i < due.size(); ++i) {
    const absl::Time start = times->StartOf(due[i]);
    const bool newest = i + 1 == due.size();
    std::string skip, detail;
    if (!newest) {
      skip = "deadline";
      detail = "missed: a newer tick was due when the controller looked";
    } else if (sc.state == "suspended") {
      skip = "suspended";
    } else if (auto b = ActiveBlackout(blackouts, now)) {
      skip = "blackout";
      detail = "blackout " + *b;
    } else if (now - start > absl::FromChrono(StartingDeadline(sc.spec)) &&
               sc.spec.catch_up() != "latest") {
      skip = "deadline";
      detail = fmt::format("{} late, past the starting deadline of {}",
                           FormatDuration(absl::ToChronoNanoseconds(now - start)),
                           FormatDuration(StartingDeadline(sc.spec)));
    } else if (std::string prev = RunningOf(name);
               !prev.empty() && Concurrency(sc.spec) == "forbid") {
      skip = "forbid";
      detail = "run " + prev + " still running";
    }
    Decide(sc, *exp, due[i], start, now, skip, detail);
  }
  if (!due.empty()) {
    if (absl::Status st = store_->PruneTicks(name, History(sc.spec)); !st.ok()) {
      spdlog::error("schedule {}: {}", name, std::string(st.message()));
    }
  }
  const absl::Time from = due.empty() ? last : std::max(last, due.back());
  auto next = times->Next(from);
  if (!next.ok()) return std::nullopt;
  return next->start;
}

void Scheduler::Decide(const StoredSchedule& sc, const v1::Experiment& exp, absl::Time scheduled,
                       absl::Time start, absl::Time now, const std::string& skip,
                       const std::string& detail) {
  const std::string& name = sc.spec.name();
  v1::ScheduleTick tick;
  tick.set_scheduled_unix_ns(Ns(scheduled));
  tick.set_start_unix_ns(Ns(start));
  tick.set_at_unix_ns(Ns(now));
  if (!skip.empty()) return Skip(name, std::move(tick), skip, detail);
  const std::string run_id = ScheduledRunId(name, Ns(scheduled));
  if (Concurrency(sc.spec) == "replace") {
    if (std::string prev = RunningOf(name); !prev.empty()) {
      runs_->AbortRun(prev, fmt::format("by schedule {}'s next tick (concurrency: replace)", name));
    }
  }
  tick.set_outcome("started");
  tick.set_run_id(run_id);
  auto recorded = store_->RecordTick(name, tick);
  if (!recorded.ok()) {
    spdlog::error("schedule {}: {}", name, std::string(recorded.status().message()));
    return;
  }
  if (!*recorded) return;  // decided before (an earlier pass or life): never twice
  {
    absl::MutexLock lock(&mu_);
    running_[name] = Running{run_id, Ns(scheduled)};
  }
  spdlog::info("schedule {}: tick {} starts run {}", name, absl::FormatTime(scheduled), run_id);
  if (absl::Status st = runs_->StartScheduledRun(run_id, exp, name, Ns(scheduled)); !st.ok()) {
    {
      absl::MutexLock lock(&mu_);
      running_.erase(name);
    }
    const std::string reason = "limit";
    (void)store_->MarkTickSkipped(name, Ns(scheduled), reason, std::string(st.message()));
    if (metrics_ != nullptr) metrics_->ScheduleSkipped(name, reason);
  }
}

void Scheduler::Skip(const std::string& schedule, v1::ScheduleTick tick, const std::string& reason,
                     const std::string& detail) {
  tick.set_outcome("skipped");
  tick.set_reason(reason);
  tick.set_detail(detail);
  auto recorded = store_->RecordTick(schedule, tick);
  if (!recorded.ok()) {
    spdlog::error("schedule {}: {}", schedule, std::string(recorded.status().message()));
    return;
  }
  if (!*recorded) return;
  spdlog::info("schedule {}: tick {} skipped: {}{}", schedule,
               absl::FormatTime(absl::FromUnixNanos(tick.scheduled_unix_ns())), reason,
               detail.empty() ? "" : " (" + detail + ")");
  if (metrics_ != nullptr) metrics_->ScheduleSkipped(schedule, reason);
}

std::string Scheduler::RunningOf(const std::string& schedule) {
  std::string id;
  {
    absl::MutexLock lock(&mu_);
    auto it = running_.find(schedule);
    if (it == running_.end()) return "";
    id = it->second.run_id;
  }
  return runs_->RunActive(id) ? id : "";
}

std::vector<std::string> Scheduler::HaltAll(const std::string& why) {
  std::vector<std::string> ids;
  {
    absl::MutexLock lock(&mu_);
    for (const auto& [_, r] : running_) ids.push_back(r.run_id);
  }
  std::vector<std::string> halted;
  for (const std::string& id : ids) {
    if (!runs_->RunActive(id)) continue;
    runs_->AbortRun(id, why);
    halted.push_back(id);
  }
  return halted;
}

void Scheduler::RunEnded(const v1::RunReport& report) {
  if (report.schedule().empty()) return;
  {
    absl::MutexLock lock(&mu_);
    auto it = running_.find(report.schedule());
    if (it != running_.end() && it->second.run_id == report.run_id()) running_.erase(it);
  }
  if (report.refused_by_limits()) {
    const std::string reason = "limit";
    (void)store_->MarkTickSkipped(report.schedule(), report.scheduled_unix_ns(), reason,
                                  report.reason());
    if (metrics_ != nullptr) metrics_->ScheduleSkipped(report.schedule(), reason);
  }
}

absl::StatusOr<v1::ScheduleStatus> Scheduler::StatusOf(const StoredSchedule& sc, int ticks) {
  v1::ScheduleStatus out;
  *out.mutable_spec() = sc.spec;
  out.set_experiment(sc.experiment);
  out.set_state(sc.state);
  out.set_created_unix_ns(sc.created_unix_ns);
  out.set_created_by(sc.created_by);
  if (auto times = TimesOf(sc.spec, absl::FromUnixNanos(sc.anchor_unix_ns)); times.ok()) {
    const absl::Time from = std::max(absl::FromUnixNanos(sc.last_tick_unix_ns), absl::Now());
    if (auto next = times->Next(from); next.ok()) {
      out.set_next_scheduled_unix_ns(Ns(next->scheduled));
      out.set_next_start_unix_ns(Ns(next->start));
    }
  }
  ASSIGN_OR_RETURN(auto list, store_->ListTicks(sc.spec.name(), ticks));
  for (auto& t : list) *out.add_ticks() = std::move(t);
  out.set_running_run_id(RunningOf(sc.spec.name()));
  return out;
}

absl::StatusOr<v1::ScheduleStatus> Scheduler::Add(const v1::AddScheduleRequest& req,
                                                  const std::string& who) {
  ASSIGN_OR_RETURN(v1::Experiment exp, ValidateSchedule(req.spec()));
  const absl::Time now = absl::Now();
  StoredSchedule sc;
  sc.spec = req.spec();
  sc.experiment = exp.name();
  sc.created_by = who;
  sc.created_unix_ns = sc.anchor_unix_ns = sc.last_tick_unix_ns = Ns(now);
  if (req.dry_run()) {
    v1::ScheduleStatus out;
    *out.mutable_spec() = sc.spec;
    out.set_experiment(sc.experiment);
    out.set_state("dry_run");
    ASSIGN_OR_RETURN(auto times, TimesOf(sc.spec, now));
    absl::Time from = now;
    for (int i = 0; i < kUpcoming; ++i) {
      auto next = times.Next(from);
      if (!next.ok()) break;
      if (i == 0) {
        out.set_next_scheduled_unix_ns(Ns(next->scheduled));
        out.set_next_start_unix_ns(Ns(next->start));
      }
      out.add_upcoming_start_unix_ns(Ns(next->start));
      from = next->scheduled;
    }
    return out;
  }
  ASSIGN_OR_RETURN(auto all, store_->ListSchedules());
  if (static_cast<int>(all.size()) >= kMaxSchedules) {
    return absl::ResourceExhaustedError(
        fmt::format("name: at most {} schedules; delete one first", kMaxSchedules));
  }
  RETURN_IF_ERROR(store_->AddSchedule(sc));
  spdlog::info("schedule {} added by {}: {} ({})", sc.spec.name(), who, sc.experiment,
               sc.spec.cron().empty() ? "every " + sc.spec.every() : "cron " + sc.spec.cron());
  Wake();
  return StatusOf(sc, History(sc.spec));
}

absl::StatusOr<v1::ScheduleStatus> Scheduler::Update(const v1::AddScheduleRequest& req) {
  ASSIGN_OR_RETURN(v1::Experiment exp, ValidateSchedule(req.spec()));
  ASSIGN_OR_RETURN(StoredSchedule sc, store_->GetSchedule(req.spec().name()));
  const int64_t now = Ns(absl::Now());
  sc.spec = req.spec();
  sc.experiment = exp.name();
  // The new rules count from now: no tick of the past becomes due by them.
  sc.anchor_unix_ns = now;
  sc.last_tick_unix_ns = std::max(sc.last_tick_unix_ns, now);
  if (req.dry_run()) return StatusOf(sc, 0);
  RETURN_IF_ERROR(store_->UpdateSchedule(sc));
  Wake();
  return StatusOf(sc, History(sc.spec));
}

absl::StatusOr<v1::ScheduleStatus> Scheduler::Get(const std::string& name) {
  ASSIGN_OR_RETURN(StoredSchedule sc, store_->GetSchedule(name));
  return StatusOf(sc, History(sc.spec));
}

absl::StatusOr<std::vector<v1::ScheduleStatus>> Scheduler::List() {
  ASSIGN_OR_RETURN(auto all, store_->ListSchedules());
  std::vector<v1::ScheduleStatus> out;
  for (const auto& sc : all) {
    ASSIGN_OR_RETURN(auto st, StatusOf(sc, 5));  // the last verdicts
    out.push_back(std::move(st));
  }
  return out;
}

absl::StatusOr<v1::ScheduleStatus> Scheduler::SetState(const std::string& name,
                                                       const std::string& state) {
  if (state != "active" && state != "suspended") {
    return absl::InvalidArgumentError(
        fmt::format("state: active or suspended, got \"{}\"", Printable(state)));
  }
  RETURN_IF_ERROR(store_->SetScheduleState(name, state));
  Wake();
  return Get(name);
}

absl::Status Scheduler::Delete(const std::string& name) {
  RETURN_IF_ERROR(store_->DeleteSchedule(name));
  absl::MutexLock lock(&mu_);
  running_.erase(name);  // a run in flight goes on to its end
  return absl::OkStatus();
}

absl::StatusOr<v1::AddBlackoutResponse> Scheduler::AddBlackout(v1::Blackout blackout,
                                                               const std::string& who) {
  std::vector<std::string> problems;
  if (std::string p = NameProblem(blackout.name()); !p.empty()) problems.push_back(p);
  const absl::Time now = absl::Now();
  if (blackout.to_unix_ns() <= blackout.from_unix_ns()) {
    problems.push_back("to: must be after from");
  } else if (blackout.to_unix_ns() <= Ns(now)) {
    problems.push_back("to: already past");
  } else if (std::chrono::nanoseconds(blackout.to_unix_ns() - blackout.from_unix_ns()) >
             kMaxBlackoutSpan) {
    problems.push_back("to: a blackout spans at most 366 days");
  }
  if (!problems.empty()) return absl::InvalidArgumentError(absl::StrJoin(problems, "\n"));
  ASSIGN_OR_RETURN(auto all, store_->ListBlackouts());
  if (static_cast<int>(all.size()) >= kMaxBlackouts) {
    return absl::ResourceExhaustedError(
        fmt::format("name: at most {} blackouts; delete one first", kMaxBlackouts));
  }
  blackout.set_created_by(who);
  blackout.set_created_unix_ns(Ns(now));
  RETURN_IF_ERROR(store_->AddBlackout(blackout));
  v1::AddBlackoutResponse out;
  if (blackout.from_unix_ns() <= Ns(now)) {
    for (auto& id : HaltAll("by blackout " + blackout.name())) out.add_runs_halted(std::move(id));
  }
  *out.mutable_blackout() = std::move(blackout);
  Wake();
  return out;
}

absl::StatusOr<std::vector<v1::Blackout>> Scheduler::ListBlackouts() {
  return store_->ListBlackouts();
}

absl::Status Scheduler::DeleteBlackout(const std::string& name) {
  RETURN_IF_ERROR(store_->DeleteBlackout(name));
  Wake();
  return absl::OkStatus();
}

}  // namespace faultline::controller
