#include "controller/runner.h"

#include <fmt/format.h>
#include <fmt/ranges.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <random>
#include <set>
#include <utility>

#include "absl/time/time.h"
#include "common/clock.h"
#include "common/status_macros.h"
#include "common/units.h"
#include "controller/clock_sync.h"
#include "controller/drill.h"
#include "controller/experiment.h"
#include "controller/fan_out.h"
#include "controller/zone_outage.h"
#include "probes/probe.h"
#include "probes/probe_runner.h"
#include "spec/fault_spec.h"

namespace faultline::controller {
namespace {

using Clock = std::chrono::steady_clock;

double Ms(int64_t ns) { return static_cast<double>(ns) / 1e6; }
double MsSince(Clock::time_point start) {
  return std::chrono::duration<double, std::milli>(Clock::now() - start).count();
}

// How far ahead of now a coordinated start is set: at least this, at most that.
constexpr std::chrono::nanoseconds kCommitLeadBase = std::chrono::milliseconds(30);
constexpr std::chrono::nanoseconds kCommitLeadMax = std::chrono::seconds(2);
// How long after T + duration the controller sends its own reverts (which then
// only collect what the agents reverted by themselves).
constexpr std::chrono::nanoseconds kAgentEndGrace = std::chrono::milliseconds(50);

// Beyond a run's planned phases, how long an agent's data writer may go on
// before it stops by itself (the run's own Finish stops it first).
constexpr std::chrono::minutes kDataWriterSlack{2};
// The most an agent lets a writer write (agent::DataWriters::kMaxWrite).
constexpr std::chrono::hours kMaxDataWrite{6};

std::string KindOf(const v1::FaultSpec& spec) { return spec::KindName(spec); }
// An action (kill) is done once: nothing to revert, no duration.
bool IsAction(const v1::FaultSpec& spec) {
  const spec::FaultKind* kind = spec::KindOf(spec);
  return kind != nullptr && !kind->reversible;
}

std::chrono::nanoseconds ProbeTimeout(const v1::ExperimentProbe& p) {
  if (!p.timeout().empty()) {
    auto d = ParseDuration("timeout", p.timeout());
    if (d.ok()) return *d;
  }
  return std::min<std::chrono::nanoseconds>(ProbeInterval(p), std::chrono::seconds(1));
}

// A failed call that shows the agent did not answer (as opposed to an answer
// that refused the call).
bool Unreachable(const absl::Status& st) {
  switch (st.code()) {
    case absl::StatusCode::kUnavailable:
    case absl::StatusCode::kDeadlineExceeded:
    case absl::StatusCode::kCancelled:
    case absl::StatusCode::kUnknown:
    case absl::StatusCode::kInternal:
    case absl::StatusCode::kDataLoss:
      return true;
    default:
      return false;
  }
}

// How long a fault lasts: its own duration, else the experiment's.
absl::StatusOr<std::chrono::nanoseconds> FaultDuration(const v1::FaultSpec& spec,
                                                       const v1::Experiment& exp) {
  if (spec.duration().empty()) return ExperimentDuration(exp);
  return ParseDuration("duration", spec.duration());
}

}  // namespace

std::string NewRunId() {
  const int64_t now = NowRealtimeNs();
  const time_t secs = static_cast<time_t>(now / 1000000000);
  tm utc{};
  gmtime_r(&secs, &utc);
  std::random_device rd;
  return fmt::format("{:04}{:02}{:02}-{:02}{:02}{:02}-{:04x}", utc.tm_year + 1900, utc.tm_mon + 1,
                     utc.tm_mday, utc.tm_hour, utc.tm_min, utc.tm_sec, rd() & 0xffff);
}

// One probe of the run: an agent streams its samples (client set) or the
// controller runs the probe loop itself (client null, zero clock offset).
struct ExperimentRun::ProbeRun {
  v1::ExperimentProbe probe;
  v1::ProbeSpec spec;
  std::string agent;  // "" = the controller runs it
  std::shared_ptr<AgentClient> client;
  timeline::ClockOffset clock;
  int64_t interval_ns = 0;
  CallCanceller cancel;  // StopProbes() cancels it
  std::thread thread;
};

ExperimentRun::ExperimentRun(std::string run_id, v1::Experiment experiment, bool dry_run,
                             std::vector<AgentRef> agents, RunnerOptions options,
                             AgentClients* clients, Store* store, ProgressFn progress)
    : run_id_(std::move(run_id)),
      exp_(std::move(experiment)),
      dry_run_(dry_run),
      all_agents_(std::move(agents)),
      options_(std::move(options)),
      clients_(clients),
      store_(store),
      progress_(std::move(progress)),
      started_mono_(Clock::now()),
      stops_(exp_) {}

ExperimentRun::~ExperimentRun() {
  StopProbes();
  {
    absl::MutexLock lock(&mu_);
    lease_stop_ = true;
  }
  if (lease_thread_.joinable()) lease_thread_.join();
}

void ExperimentRun::Abort(const std::string& why) {
  {
    absl::MutexLock lock(&mu_);
    if (!aborted_) abort_why_ = why;
    aborted_ = true;
  }
  drill_cancel_.Cancel();
}

v1::RunReport ExperimentRun::ExecuteDrill() {
  Begin();
  if (std::optional<End> end = Resolve()) return Finish(*end);
  if (dry_run_) return Finish(End{"dry_run", "a drill's steps do not run in a dry run"});
  Progress("drill");
  DrillContext ctx;
  ctx.run_id = run_id_;
  ctx.targets = &targets_;
  ctx.clients = clients_;
  ctx.cancel = &drill_cancel_;
  ctx.event = [this](const std::string& kind, int64_t unix_ns, const std::string& agent,
                     const std::string& detail) { Event(kind, unix_ns, agent, detail); };
  ctx.progress = [this](const std::string& message) { Progress("drill", message); };
  DrillOutcome out = DrillRun(exp_, std::move(ctx)).Run();
  *report_.mutable_drill() = std::move(out.result);
  return Finish(End{out.verdict, out.reason});
}

bool ExperimentRun::aborted() {
  absl::MutexLock lock(&mu_);
  return aborted_;
}

v1::RunReport ExperimentRun::Execute() {
  if (exp_.has_drill()) return ExecuteDrill();
  Begin();
  std::optional<End> end = Resolve();
  if (!end) end = SyncClocks();
  if (end) return Finish(*end);
  if (dry_run_) {
    return Finish(Inject(/*dry_run=*/true).value_or(End{"dry_run", "nothing was injected"}));
  }
  end = AwaitSteady();
  if (!end) end = Inject(/*dry_run=*/false);
  if (end) return Finish(*end);
  Observe();
  const bool was_aborted = Revert();
  report_.set_steady_after(AwaitRecovery(was_aborted));
  ReadData(was_aborted);
  return Score(was_aborted);
}

// ---- Phases ----

ExperimentRun::End ExperimentRun::AbortedEnd() {
  absl::MutexLock lock(&mu_);
  return End{"aborted", fmt::format("aborted {}; faults reverted", abort_why_)};
}

void ExperimentRun::SetSchedule(const std::string& schedule, int64_t scheduled_unix_ns) {
  report_.set_schedule(schedule);
  report_.set_scheduled_unix_ns(scheduled_unix_ns);
}

void ExperimentRun::Begin() {
  report_.set_run_id(run_id_);
  report_.set_experiment(exp_.name());
  report_.set_description(exp_.description());
  report_.set_state("running");
  report_.set_dry_run(dry_run_);
  report_.set_started_unix_ns(NowRealtimeNs());
  report_.set_rto_target_ms(Ms(RtoTarget(exp_).count()));
  if (!exp_.objectives().rpo().empty()) {
    auto rpo = ParseDuration("objectives.rpo", exp_.objectives().rpo());
    if (rpo.ok()) report_.set_rpo_target_ms(Ms(rpo->count()));
  }
  report_.set_duration_ms(Ms(ExperimentDuration(exp_).count()));
  for (const auto& p : exp_.probes()) {
    max_interval_ns_ = std::max<int64_t>(max_interval_ns_, ProbeInterval(p).count());
    max_timeout_ = std::max(max_timeout_, ProbeTimeout(p));
  }
  report_.set_probe_interval_ms(Ms(max_interval_ns_));
  Event("started", report_.started_unix_ns(), "", dry_run_ ? "dry run" : "");
  if (!dry_run_) Save();
}

std::optional<ExperimentRun::End> ExperimentRun::Resolve() {
  Progress("resolving");
  std::mt19937_64 rng(options_.seed != 0 ? options_.seed : std::random_device{}());
  auto targets = ResolveTargets(exp_, all_agents_, rng);
  if (!targets.ok()) return End{"error", std::string(targets.status().message())};
  targets_ = std::move(*targets);
  // Frozen into the run record: later changes to the fleet do not move a run.
  for (const auto& [name, agents] : targets_) {
    v1::ResolvedTarget& resolved = (*report_.mutable_targets())[name];
    for (const AgentRef& a : agents) resolved.add_agents(a.name);
  }
  // A skipped (empty) target skips its faults (no parts), but a probe cannot
  // run from nowhere.
  for (int i = 0; i < exp_.probes_size(); ++i) {
    const std::string& from = exp_.probes(i).from();
    if (from.empty() || from == kFromController) continue;
    if (auto it = targets_.find(from); it == targets_.end() || it->second.empty()) {
      return End{"error", fmt::format("probes[{}].from: target {} matched no agent", i, from)};
    }
  }
  for (int i = 0; i < exp_.faults_size(); ++i) {
    auto parts = PartsOf(i);
    if (!parts.ok()) return End{"error", std::string(parts.status().message())};
    parts_.insert(parts_.end(), parts->begin(), parts->end());
  }
  if (absl::Status st = Admit(); !st.ok()) {
    report_.set_refused_by_limits(true);
    return End{"error", std::string(st.message())};
  }
  return std::nullopt;
}

absl::Status ExperimentRun::Admit() {
  RunFootprint run;
  run.registered = all_agents_.size();
  for (const Part& part : parts_) {
    run.held.push_back(part.agent);
    if (part.affected) run.affected.push_back(part.agent);
  }
  if (options_.fleet == nullptr) return CheckBlastRadius(exp_.limits(), FleetLimits{0, {}, 0}, run);
  // A dry run changes nothing and holds nothing, but hears the same refusals.
  if (dry_run_) return CheckBlastRadius(exp_.limits(), options_.fleet->limits(), run);
  RETURN_IF_ERROR(options_.fleet->Admit(run_id_, exp_.limits(), run));
  admitted_ = true;
  return absl::OkStatus();
}

absl::StatusOr<std::vector<ExperimentRun::Part>> ExperimentRun::PartsOf(int index) {
  const v1::ExperimentFault& fault = exp_.faults(index);
  std::vector<Part> parts;
  if (fault.has_zone_outage()) {
    const std::string& duration = fault.duration().empty() ? exp_.duration() : fault.duration();
    auto zone = ExpandZoneOutage(fault.zone_outage(), duration, all_agents_);
    if (!zone.ok()) {
      return absl::Status(zone.status().code(),
                          fmt::format("faults[{}]: {}", index, std::string(zone.status().message())));
    }
    for (ZonePart& z : *zone) {
      parts.push_back({index, z.role, std::move(z.spec), std::move(z.agent), z.inside});
    }
    return parts;
  }
  const v1::FaultSpec spec = FaultSpecFor(exp_, index);
  for (const AgentRef& agent : targets_[fault.on()]) parts.push_back({index, fault.on(), spec, agent});
  return parts;
}

std::optional<ExperimentRun::End> ExperimentRun::SyncClocks() {
  std::vector<AgentRef> involved;
  for (const Part& part : parts_) involved.push_back(part.agent);
  for (const auto& p : exp_.probes()) {
    if (p.from().empty() || p.from() == kFromController) continue;
    for (const AgentRef& a : targets_[p.from()]) involved.push_back(a);
  }
  // A data writer's agent too, so its records map onto the controller's clock.
  for (const auto& d : exp_.data()) {
    if (d.from().empty() || d.from() == kFromController) continue;
    if (auto it = targets_.find(d.from()); it != targets_.end() && !it->second.empty()) {
      involved.push_back(it->second.front());
    }
  }
  std::vector<AgentRef> agents;  // each agent once, in order of first use
  std::set<std::string> seen;
  for (AgentRef& a : involved) {
    if (seen.insert(a.name).second) agents.push_back(std::move(a));
  }
  // Through a window that adapts to the round trips (controller/clock_sync.h).
  std::vector<std::shared_ptr<AgentClient>> clients;
  for (const AgentRef& a : agents) {
    absl::StatusOr<std::shared_ptr<AgentClient>> client = clients_->Get(a.name, a.address);
    if (!client.ok()) return End{"error", std::string(client.status().message())};
    clients.push_back(*std::move(client));
  }
  ClockSyncOptions sync_options;
  sync_options.exchanges = options_.clock_exchanges;
  sync_options.max_in_flight = options_.max_in_flight;
  sync_options.timeout = options_.rpc_timeout;
  // Clocks finer than 1 % of the finest probe interval change no figure (the
  // error bounds are an interval plus the clock error): a round trip of 2 % of
  // it (at least 1 ms) is good enough to stop at.
  std::chrono::nanoseconds finest = std::chrono::nanoseconds::max();
  for (const auto& p : exp_.probes()) finest = std::min(finest, ProbeInterval(p));
  if (finest != std::chrono::nanoseconds::max()) {
    sync_options.good_rtt = std::max<std::chrono::nanoseconds>(sync_options.good_rtt, finest / 50);
  }
  ClockSyncStats stats;
  const Clock::time_point sync_start = Clock::now();
  const std::vector<ClockSyncResult> synced = controller::SyncClocks(clients, sync_options, &stats);
  // How long the phase took, for fleet-sized runs (scripts/bench reads it).
  Event("clocks_synced", NowRealtimeNs(), "",
        fmt::format("{} agent(s) in {:.1f} ms ({} exchanges, at most {} at once, best round "
                    "trip {:.3f} ms; of which {} connect(s) in {:.1f} ms)",
                    agents.size(), MsSince(sync_start), stats.exchanges, stats.widest,
                    Ms(stats.best_rtt_ns), stats.connects,
                    std::chrono::duration<double, std::milli>(stats.connect).count()));
  int64_t clock_error = 0;
  for (size_t i = 0; i < agents.size(); ++i) {
    const absl::StatusOr<timeline::ClockOffset>& offset = synced[i].offset;
    if (!offset.ok()) return End{"error", std::string(offset.status().message())};
    clocks_[agents[i].name] = *offset;
    clock_error = std::max(clock_error, offset->error_ns);
    Event("clock", synced[i].synced_ns, agents[i].name,
          fmt::format("offset {:+.3f} ms +/- {:.3f} ms", Ms(offset->offset_ns),
                      Ms(offset->error_ns)));
  }
  report_.set_clock_error_ms(Ms(clock_error));
  report_.set_error_ms(Ms(max_interval_ns_ + 2 * clock_error));
  return std::nullopt;
}

std::optional<ExperimentRun::End> ExperimentRun::AwaitSteady() {
  if (std::optional<End> end = StartProbes()) return end;
  if (exp_.data_size() > 0) {
    DataSiteContext context;
    context.run_id = run_id_;
    context.targets = &targets_;
    context.clients = clients_;
    context.clocks = &clocks_;
    // An agent's writer stops by itself once the run should long be over:
    // the steady-state check, the duration, the recovery check, and slack.
    context.max_write = std::chrono::duration_cast<std::chrono::milliseconds>(
        std::chrono::nanoseconds(max_interval_ns_) * RecoveredAfter(exp_) + max_timeout_ +
        options_.steady_slack + ExperimentDuration(exp_) + options_.steady_after_timeout +
        kDataWriterSlack);
    context.max_write = std::min<std::chrono::milliseconds>(context.max_write, kMaxDataWrite);
    auto data = DataWorkloads::Make(exp_, context);
    if (!data.ok()) return End{"error", std::string(data.status().message())};
    data_ = std::move(*data);
    data_->Start();  // the writers run from the steady state to the end
    std::vector<std::string> names;
    for (const auto& d : exp_.data()) names.push_back(d.name());
    Event("data_started", NowRealtimeNs(), "",
          fmt::format("{} writer(s): {}", names.size(), fmt::join(names, ", ")));
  }
  const int need = RecoveredAfter(exp_);
  Progress("steady_state");
  WaitFor([&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
            return FirstFailing(need) >= 0 || AllHave(need) || FirstRefused() >= 0;
          },
          Clock::now() + std::chrono::nanoseconds(max_interval_ns_) * need + max_timeout_ +
              options_.steady_slack,
          "steady_state");
  std::optional<End> end = SteadyVerdict(need);
  if (!end) {
    const int64_t steady_ns = NowRealtimeNs();
    Event("steady", steady_ns, "", fmt::format("every probe passed {} times", need));
    absl::MutexLock lock(&mu_);
    stops_.Arm(steady_ns);  // stop conditions count from here
  }
  return end;
}

std::optional<ExperimentRun::End> ExperimentRun::Inject(bool dry_run) {
  if (!dry_run) {
    Progress("injecting");
    inject_mono_ = Clock::now();
  }
  absl::Status st = InjectFaults(dry_run);
  if (st.ok()) return std::nullopt;
  if (dry_run) return End{"error", std::string(st.message())};
  const bool was_abort = st.code() == absl::StatusCode::kAborted;
  RevertAll(was_abort ? "abort" : "inject failed");
  StopProbes();
  if (was_abort) return End{"aborted", "aborted while injecting; faults reverted"};
  return End{"error", std::string(st.message()) + "; faults reverted"};
}

void ExperimentRun::Observe() {
  Progress("observing");
  // Each agent ends its faults on its own clock at T + duration (T: the
  // coordinated start). The run waits for that, plus the clock error and a
  // little time, so that the report times the agents' own reverts, all keyed
  // to T, rather than the controller's revert requests racing them.
  Clock::time_point until = inject_mono_ + ExperimentDuration(exp_);
  if (injected_ns_ != 0) {
    const int64_t end_ns = injected_ns_ + ExperimentDuration(exp_).count() +
                           kAgentEndGrace.count() +
                           2 * static_cast<int64_t>(report_.clock_error_ms() * 1e6);
    until = std::max(until, Clock::now() + std::chrono::nanoseconds(end_ns - NowRealtimeNs()));
  }
  WaitFor([&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return stops_.fired().has_value(); }, until,
          "observing");
}

bool ExperimentRun::Revert() {
  bool was_aborted;
  {
    absl::MutexLock lock(&mu_);
    stops_.Disarm();
    stopped_ = stops_.fired();
    was_aborted = aborted_ && !stopped_;
  }
  if (stopped_) {
    // Before every agent's `reverted` on the timeline: it fired first.
    Event("stopped", stopped_->at_ns, "", stopped_->reason);
    Progress("reverting", stopped_->reason);
  } else {
    Progress("reverting");
  }
  const int64_t revert_ns = NowRealtimeNs();
  RevertAll(stopped_       ? fmt::format("stop_when[{}]", stopped_->index)
            : was_aborted ? "abort"
                          : "duration");
  {
    absl::MutexLock lock(&mu_);
    active_kinds_.clear();
  }
  int64_t first = 0, last = 0;
  for (auto& inj : injected_) {
    if (inj.is_action) continue;
    // Not in a RevertAll answer (an agent that does not report what it
    // reverted by itself): its deadline, at the latest now.
    if (inj.reverted_ns == 0) inj.reverted_ns = std::min(inj.end_ns, revert_ns);
    first = first == 0 ? inj.reverted_ns : std::min(first, inj.reverted_ns);
    last = std::max(last, inj.reverted_ns);
  }
  report_.set_end_skew_ms(Ms(last - first));
  return was_aborted;
}

bool ExperimentRun::AwaitRecovery(bool was_aborted) {
  bool steady_after = false;
  if (!was_aborted) {
    const int need = RecoveredAfter(exp_);
    Progress("steady_after");
    const int64_t after = NowRealtimeNs();
    steady_after = WaitFor(
        [&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
          for (const ProbeState& state : probe_states_) {
            int run = 0;
            for (auto it = state.samples.rbegin();
                 it != state.samples.rend() && it->time_ns >= after; ++it) {
              if (!it->ok) break;
              ++run;
            }
            if (run < need) return false;
          }
          return true;
        },
        Clock::now() + options_.steady_after_timeout, "steady_after");
    Event(steady_after ? "steady_after" : "not_steady_after", NowRealtimeNs(), "",
          steady_after ? "every probe passes again" : "probes still failing after the revert");
  }
  StopProbes();
  return steady_after;
}

void ExperimentRun::ReadData(bool was_aborted) {
  if (!data_) return;
  if (!was_aborted) Progress("reading_back");
  const std::vector<v1::DataResult> results =
      was_aborted ? data_->Abandon("the run was aborted") : data_->Finish();
  data_read_ = true;
  for (const v1::DataResult& r : results) {
    *report_.add_data() = r;
    Event("data", NowRealtimeNs(), "",
          r.reads() == 0 ? fmt::format("{}: {}", r.name(), r.error())
                         : fmt::format("{}: {} of {} acked writes lost, RPO {:.0f} ms (± {:.0f})",
                                       r.name(), r.writes_lost(), r.writes_acked(), r.rpo_ms(),
                                       r.rpo_error_ms()));
  }
}

v1::RunReport ExperimentRun::Score(bool was_aborted) {
  const int need = RecoveredAfter(exp_);
  timeline::ResultInput in;
  in.injected_ns = injected_ns_;
  in.injected_error_ns = injected_error_ns_;
  in.experiment_end_ns = injected_ns_ + ExperimentDuration(exp_).count();
  in.rto_ns = RtoTarget(exp_).count();
  in.recovered_after = need;
  for (const auto& inj : injected_) {
    in.faults.push_back({inj.is_action ? 0 : inj.reverted_ns, inj.is_action});
  }
  {
    absl::MutexLock lock(&mu_);
    for (size_t i = 0; i < probes_.size(); ++i) {
      timeline::ProbeSeries s;
      s.name = probes_[i]->probe.name();
      s.interval_ns = probes_[i]->interval_ns;
      s.clock_error_ns = probes_[i]->clock.error_ns;
      s.samples = probe_states_[i].samples;
      in.probes.push_back(std::move(s));
    }
  }
  auto result = timeline::ComputeResult(in);
  // Stopped: the figures as far as they exist, as for an abort.
  const std::optional<End> stop =
      stopped_ ? std::optional<End>(End{"stopped", stopped_->reason + "; faults reverted"})
               : std::nullopt;
  if (!result.ok()) {
    if (stop) return Finish(*stop);
    if (was_aborted) return Finish(AbortedEnd());
    return Finish({"error", "computing the result: " + std::string(result.status().message())});
  }
  SetFigures(*result, need);
  if (stop) return Finish(*stop);
  if (was_aborted) return Finish(AbortedEnd());
  End end{timeline::VerdictName(result->verdict), result->reason};
  if (auto failure = DataFailure(exp_, report_); failure && (end.verdict == "pass" ||
                                                             end.verdict == "fail")) {
    end.reason = end.verdict == "pass" ? *failure : end.reason + "; " + *failure;
    end.verdict = "fail";
  }
  return Finish(end);
}

// ---- Injection, leases, revert ----

absl::Status ExperimentRun::InjectFaults(bool dry_run) {
  const Clock::time_point prepare_start = Clock::now();
  if (!dry_run && !parts_.empty()) {
    std::vector<AgentRef> agents;
    for (const Part& part : parts_) agents.push_back(part.agent);
    if (!Lease(agents)) return absl::AbortedError("aborted");
  }
  // Every part at once; the results are read in the order of parts_ so that
  // the report does not depend on which agent answered first.
  std::vector<InjectResult> results(parts_.size());
  const Clock::time_point fan_out_start = Clock::now();
  ForEachAsync(parts_.size(), options_.max_in_flight, [&](size_t i, AsyncDone done) {
    InjectOne(parts_[i], dry_run, &results[i], std::move(done));
  });
  prepare_fan_out_ = Clock::now() - fan_out_start;
  if (!dry_run) {
    const size_t ok = std::count_if(results.begin(), results.end(),
                                     [](const InjectResult& r) { return r.status.ok(); });
    Event("prepared", NowRealtimeNs(), "",
          fmt::format("{} of {} agent fault(s) in {:.1f} ms", ok, parts_.size(),
                      MsSince(prepare_start)));
  }
  std::vector<std::string> problems;  // every failing part
  absl::StatusCode code = absl::StatusCode::kOk;
  bool was_aborted = false;
  for (size_t i = 0; i < parts_.size(); ++i) {
    const InjectResult& r = results[i];
    if (dry_run) {
      v1::PlannedFault* planned = AddPlanned(parts_[i]);
      if (r.status.ok()) {
        for (const auto& c : r.resp.changes()) planned->add_changes(c);
      }
    }
    if (r.status.ok()) continue;
    if (r.status.code() == absl::StatusCode::kAborted && !dry_run) {
      was_aborted = true;
      continue;
    }
    if (code == absl::StatusCode::kOk) code = r.status.code();
    problems.push_back(std::string(r.status.message()));
  }
  if (was_aborted) return absl::AbortedError("aborted");
  if (problems.empty() && !dry_run) {
    absl::Status committed = CommitAll(&results);
    if (!committed.ok()) return committed;
  }
  if (!problems.empty()) {
    // A dry run lists every problem one a line (as `faultline validate` does);
    // a real run names each failing agent in one line.
    if (dry_run) {
      return absl::FailedPreconditionError(fmt::format("{}", fmt::join(problems, "\n")));
    }
    return absl::Status(code, fmt::format("{}", fmt::join(problems, "; ")));
  }
  if (dry_run) return absl::OkStatus();
  for (size_t i = 0; i < parts_.size(); ++i) Record(parts_[i], results[i]);
  if (injected_.empty()) return absl::OkStatus();
  int64_t first = injected_.front().injected_ns, last = first;
  for (const auto& inj : injected_) {
    first = std::min(first, inj.injected_ns);
    last = std::max(last, inj.injected_ns);
  }
  report_.set_start_skew_ms(Ms(last - first));
  injected_ns_ = injected_.front().injected_ns;
  injected_error_ns_ = injected_.front().injected_error_ns;
  for (const auto& inj : injected_) {
    if (inj.injected_ns < injected_ns_) {
      injected_ns_ = inj.injected_ns;
      injected_error_ns_ = inj.injected_error_ns;
    }
  }
  return absl::OkStatus();
}

absl::Status ExperimentRun::PartError(const Part& part, bool dry_run,
                                      const absl::Status& st) const {
  const std::string why = AgentMessage(st);
  return absl::Status(st.code(), dry_run ? fmt::format("faults[{}] on {}: {}", part.index,
                                                       part.agent.name, why)
                                         : fmt::format("faults[{}] ({}) on agent {}: {}",
                                                       part.index, KindOf(part.spec),
                                                       part.agent.name, why));
}

// One fault on one agent; a dry run only asks the agent what it would change.
void ExperimentRun::InjectOne(const Part& part, bool dry_run, InjectResult* result,
                              AsyncDone done) {
  const AgentRef& agent = part.agent;
  if (!dry_run && aborted()) {  // an abort stops the parts not sent yet
    result->status = absl::AbortedError("aborted");
    return done();
  }
  absl::StatusOr<std::chrono::nanoseconds> duration = FaultDuration(part.spec, exp_);
  if (!duration.ok()) {
    result->status = PartError(part, dry_run, duration.status());
    return done();
  }
  result->duration = *duration;
  absl::StatusOr<std::shared_ptr<AgentClient>> client = clients_->Get(agent.name, agent.address);
  if (!client.ok()) {
    result->status = PartError(part, dry_run, client.status());
    return done();
  }
  v1::InjectRequest req;
  *req.mutable_spec() = part.spec;
  if (dry_run) {
    req.set_dry_run(true);
  } else {
    // Phase one of the coordinated start: recorded on the agent, not applied.
    req.set_lease_id(run_id_);
    req.set_lease_ttl_ms(options_.lease_ttl.count());
    req.set_owner("faultline-controller run " + run_id_);
    req.set_prepare_only(true);
  }
  // `part` and `result` outlive the call: ForEachAsync waits for `done`.
  (*client)->InjectAsync(req, options_.rpc_timeout,
                         [this, &part, dry_run, result, done = std::move(done)](
                             absl::StatusOr<v1::InjectResponse> resp) {
                           result->answered_ns = NowRealtimeNs();
                           if (resp.ok()) {
                             result->resp = *std::move(resp);
                           } else {
                             result->status = PartError(part, dry_run, resp.status());
                           }
                           done();
                         });
}

// Phase two of the coordinated start: every agent applies its prepared parts
// at one instant T, chosen a little ahead on the controller's clock and mapped
// onto each agent's clock through its measured offset; each part then ends at
// T + its duration on its agent's clock. `results` get the applied records.
absl::Status ExperimentRun::CommitAll(std::vector<InjectResult>* results) {
  std::map<std::string, std::vector<size_t>> by_agent;  // agent name -> parts_ indexes
  int64_t worst_error_ns = 0;
  for (size_t i = 0; i < parts_.size(); ++i) {
    by_agent[parts_[i].agent.name].push_back(i);
    worst_error_ns = std::max(worst_error_ns, clocks_[parts_[i].agent.name].error_ns);
  }
  std::vector<const std::vector<size_t>*> groups;
  for (const auto& [name, indexes] : by_agent) groups.push_back(&indexes);
  // Far enough ahead for every Commit to arrive first: a few round trips (the
  // clock error is half the best one) plus the time to send them all, which
  // the prepare fan-out just measured (as many calls, to the same agents).
  const int64_t send_all_ns =
      std::max<int64_t>(100'000 * static_cast<int64_t>(groups.size()),
                        std::chrono::duration_cast<std::chrono::nanoseconds>(prepare_fan_out_).count());
  const int64_t lead_ns =
      std::clamp<int64_t>(kCommitLeadBase.count() + 8 * worst_error_ns + send_all_ns,
                          kCommitLeadBase.count(), kCommitLeadMax.count());
  const Clock::time_point commit_start = Clock::now();
  const int64_t start_ns = NowRealtimeNs() + lead_ns;
  std::vector<absl::Status> failed(groups.size());
  // Each agent's Commit answers once it has applied, at T: all of them are
  // sent before the first answer comes back.
  const auto commit_timeout =
      options_.rpc_timeout + std::chrono::milliseconds(lead_ns / 1000000 + 1);
  ForEachAsync(groups.size(), options_.max_in_flight, [&](size_t g, AsyncDone done) {
    const std::vector<size_t>& indexes = *groups[g];
    const Part& first = parts_[indexes.front()];
    v1::CommitRequest req;
    for (size_t i : indexes) req.add_ids((*results)[i].resp.fault().id());
    req.set_start_at_unix_ns(timeline::ToAgentClock(start_ns, clocks_.at(first.agent.name)).ns);
    auto client = clients_->Get(first.agent.name, first.agent.address);
    if (!client.ok()) {
      failed[g] = PartError(first, false, client.status());
      return done();
    }
    (*client)->CommitAsync(
        req, commit_timeout,
        [this, &first, &indexes, &failed, results, g, done](
            absl::StatusOr<v1::CommitResponse> resp) {
          if (!resp.ok()) {
            failed[g] = PartError(first, false, resp.status());
            return done();
          }
          for (const v1::FaultRecord& applied : resp->faults()) {
            for (size_t i : indexes) {
              if ((*results)[i].resp.fault().id() == applied.id()) {
                *(*results)[i].resp.mutable_fault() = applied;
              }
            }
          }
          done();
        });
  });
  std::vector<std::string> problems;
  for (const absl::Status& st : failed) {
    if (!st.ok()) problems.push_back(std::string(st.message()));
  }
  Event("committed", NowRealtimeNs(), "",
        fmt::format("{} of {} agent(s) in {:.1f} ms (start set {:.1f} ms ahead)",
                    groups.size() - problems.size(), groups.size(), MsSince(commit_start),
                    Ms(lead_ns)));
  if (!problems.empty()) {
    return absl::FailedPreconditionError(fmt::format("{}", fmt::join(problems, "; ")));
  }
  return absl::OkStatus();
}

v1::PlannedFault* ExperimentRun::AddPlanned(const Part& part) {
  v1::PlannedFault* planned = report_.add_faults();
  planned->set_agent(part.agent.name);
  planned->set_address(part.agent.address);
  planned->set_target(part.on);
  planned->set_kind(KindOf(part.spec));
  return planned;
}

void ExperimentRun::Record(const Part& part, const InjectResult& result) {
  const v1::InjectResponse& resp = result.resp;
  const v1::FaultSpec& spec = part.spec;
  const AgentRef& agent = part.agent;
  const timeline::ClockOffset& clock = clocks_[agent.name];
  Injected inj;
  inj.agent = agent.name;
  inj.address = agent.address;
  inj.fault_id = resp.fault().id();
  inj.is_action = IsAction(spec);
  if (resp.fault().injected_unix_ns() != 0) {
    inj.injected_ns = timeline::ToControllerClock(resp.fault().injected_unix_ns(), clock).ns;
    inj.injected_error_ns = clock.error_ns;
  } else {
    inj.injected_ns = result.answered_ns;
  }
  inj.end_ns = inj.injected_ns + result.duration.count();
  injected_.push_back(inj);
  if (!inj.is_action) {
    absl::MutexLock lock(&mu_);
    ++active_kinds_[KindOf(spec)];
  }
  v1::PlannedFault* planned = AddPlanned(part);
  planned->set_fault_id(resp.fault().id());
  for (const auto& c : resp.changes()) planned->add_changes(c);
  Event("injected", inj.injected_ns, agent.name,
        fmt::format("faults[{}] {} {}: {}", part.index, KindOf(spec), resp.fault().id(),
                    resp.fault().target()),
        Ms(clock.error_ns));
}

std::map<std::string, int> ExperimentRun::ActiveFaultKinds() {
  absl::MutexLock lock(&mu_);
  return active_kinds_;
}

bool ExperimentRun::Lease(const std::vector<AgentRef>& agents) {
  {
    absl::MutexLock lock(&mu_);
    if (aborted_) return false;
    for (const AgentRef& agent : agents) {
      const bool known = std::any_of(leased_.begin(), leased_.end(), [&](const AgentRef& a) {
        return a.address == agent.address;
      });
      if (known) continue;
      leased_.push_back(agent);
      report_.add_agents(agent.address);
    }
  }
  Save();  // once for the whole set: the agents to revert if the controller dies
  if (!lease_thread_.joinable()) lease_thread_ = std::thread([this] { LeaseLoop(); });
  return true;
}

void ExperimentRun::LeaseLoop() {
  const auto every = std::max(options_.lease_ttl / 3, std::chrono::milliseconds(10));
  while (true) {
    std::vector<AgentRef> leased;
    {
      absl::MutexLock lock(&mu_);
      if (mu_.AwaitWithTimeout(absl::Condition(&lease_stop_), absl::FromChrono(every))) return;
      leased = leased_;
    }
    v1::RenewLeaseRequest req;
    req.set_lease_id(run_id_);
    req.set_ttl_ms(options_.lease_ttl.count());
    std::vector<absl::Status> results(leased.size());
    ForEachAsync(leased.size(), options_.max_in_flight, [&](size_t i, AsyncDone done) {
      const AgentRef& agent = leased[i];
      absl::StatusOr<std::shared_ptr<AgentClient>> client =
          clients_->Get(agent.name, agent.address);
      if (!client.ok()) {
        results[i] = client.status();
        return done();
      }
      (*client)->RenewLeaseAsync(
          req, std::min(every, std::chrono::milliseconds(2000)),
          [&results, i, done](absl::StatusOr<v1::RenewLeaseResponse> resp) {
            results[i] = resp.status();
            done();
          });
    });
    for (const absl::Status& st : results) {
      if (!st.ok()) spdlog::warn("run {}: {}", run_id_, std::string(st.message()));
    }
    // Each agent's latest renewal: the `agents_lost` stop condition counts the
    // agents it could not reach.
    const int64_t now = NowRealtimeNs();
    absl::MutexLock lock(&mu_);
    for (size_t i = 0; i < leased.size(); ++i) {
      const absl::Status& st = results[i];
      renewals_[leased[i].name] = st;
      stops_.AgentReachable(leased[i].name, !Unreachable(st), now,
                            st.ok() ? "" : absl::StatusCodeToString(st.code()));
    }
  }
}

void ExperimentRun::RevertAll(const std::string& why) {
  std::vector<AgentRef> leased;
  {
    absl::MutexLock lock(&mu_);
    leased = leased_;
  }
  std::vector<RevertResult> results(leased.size());
  const Clock::time_point revert_start = Clock::now();
  ForEachAsync(leased.size(), options_.max_in_flight, [&](size_t i, AsyncDone done) {
    RevertOn(leased[i], &results[i], std::move(done));
  });
  const double revert_ms = MsSince(revert_start);
  for (size_t i = 0; i < leased.size(); ++i) RecordRevert(leased[i], results[i], why);
  if (!leased.empty()) {
    const size_t ok = std::count_if(results.begin(), results.end(),
                                    [](const RevertResult& r) { return r.resp.ok(); });
    Event("reverts_answered", NowRealtimeNs(), "",
          fmt::format("{} of {} agent(s) in {:.1f} ms ({})", ok, leased.size(), revert_ms, why));
  }
  {
    absl::MutexLock lock(&mu_);
    lease_stop_ = true;
  }
  if (lease_thread_.joinable()) lease_thread_.join();
}

void ExperimentRun::RevertOn(const AgentRef& agent, RevertResult* result, AsyncDone done) {
  result->asked_ns = NowRealtimeNs();
  v1::RevertAllRequest req;
  req.set_lease_id(run_id_);
  absl::StatusOr<std::shared_ptr<AgentClient>> client = clients_->Get(agent.name, agent.address);
  if (!client.ok()) {
    result->resp = client.status();
    return done();
  }
  (*client)->RevertAllAsync(req, options_.rpc_timeout,
                            [result, done](absl::StatusOr<v1::RevertAllResponse> resp) {
                              result->answered_ns = NowRealtimeNs();
                              result->resp = std::move(resp);
                              done();
                            });
}

void ExperimentRun::RecordRevert(const AgentRef& agent, const RevertResult& result,
                                 const std::string& why) {
  const int64_t asked = result.asked_ns;
  const absl::StatusOr<v1::RevertAllResponse>& resp = result.resp;
  if (!resp.ok()) {
    Event("revert_failed", asked, agent.name,
          fmt::format("RevertAll: {} {} (the agent reverts by itself when the lease lapses)",
                      absl::StatusCodeToString(resp.status().code()),
                      AgentMessage(resp.status())));
    return;
  }
  const timeline::ClockOffset& clock = clocks_[agent.name];
  if (resp->faults().empty()) {
    Event("reverted", asked, agent.name, fmt::format("{}: nothing left to revert", why));
  }
  for (const auto& f : resp->faults()) {
    int64_t t = f.reverted_unix_ns() != 0
                    ? timeline::ToControllerClock(f.reverted_unix_ns(), clock).ns
                    : asked;
    // A fault this call reverted ("request") was reverted between the ask and
    // the answer: causality bounds it tighter than the clock mapping, whose
    // error could otherwise place it before the stop or abort that caused it.
    if (f.revert_reason() == "request") t = std::clamp(t, asked, result.answered_ns);
    for (auto& inj : injected_) {
      if (inj.fault_id == f.id()) inj.reverted_ns = t;
    }
    Event("reverted", t, agent.name,
          fmt::format("{} {} ({})", KindOf(f.spec()), f.id(),
                      f.revert_reason().empty() ? why : f.revert_reason()),
          Ms(clock.error_ns));
  }
}

// ---- Probes ----

std::optional<ExperimentRun::End> ExperimentRun::StartProbes() {
  for (const auto& p : exp_.probes()) {
    auto run = std::make_unique<ProbeRun>();
    run->probe = p;
    run->spec = ToProbeSpec(p);
    run->interval_ns = ProbeInterval(p).count();
    if (p.from().empty() || p.from() == kFromController) {
      // Checked here so that a bad probe fails the run before it starts; the
      // probe loop builds its own.
      absl::StatusOr<std::unique_ptr<Probe>> probe = MakeProbe(run->spec, options_.exec_policy);
      if (!probe.ok()) {
        return End{"error", fmt::format("probe {}: {}", p.name(), std::string(probe.status().message()))};
      }
    } else {
      const AgentRef& agent = targets_[p.from()].front();
      run->agent = agent.name;
      run->clock = clocks_[agent.name];
      absl::StatusOr<std::shared_ptr<AgentClient>> client =
          clients_->Get(agent.name, agent.address);
      if (!client.ok()) {
        return End{"error", fmt::format("probe {}: {}", p.name(), std::string(client.status().message()))};
      }
      run->client = *std::move(client);
    }
    probes_.push_back(std::move(run));
    absl::MutexLock lock(&mu_);
    probe_states_.emplace_back();
  }
  for (size_t i = 0; i < probes_.size(); ++i) {
    probes_[i]->thread = std::thread([this, i] { ProbeThread(i); });
  }
  return std::nullopt;
}

void ExperimentRun::StopProbes() {
  {
    absl::MutexLock lock(&mu_);
    probes_stop_ = true;
  }
  for (auto& pr : probes_) pr->cancel.Cancel();
  for (auto& pr : probes_) {
    if (pr->thread.joinable()) pr->thread.join();
  }
}

void ExperimentRun::ProbeThread(size_t index) {
  ProbeRun& pr = *probes_[index];
  auto emit = [&](const v1::ProbeSample& s) {
    if (pr.cancel.cancelled()) return false;
    AddSample(index, s, pr.clock);
    return true;
  };
  while (!pr.cancel.cancelled()) {
    absl::Status st;
    if (pr.client == nullptr) {
      st = RunProbeLoop(pr.spec, 0, emit, [&] { return pr.cancel.cancelled(); },
                        options_.exec_policy);
      if (st.ok()) return;  // cancelled
    } else {
      v1::RunProbeRequest req;
      *req.mutable_probe() = pr.spec;
      st = pr.client->RunProbe(req, emit, &pr.cancel);
    }
    absl::MutexLock lock(&mu_);
    if (probes_stop_ || RecordRefusal(index, st)) return;
    if (!st.ok()) {
      probe_states_[index].last_error = std::string(st.message());
      spdlog::warn("run {}: probe {}: {}", run_id_, pr.probe.name(), std::string(st.message()));
    }
    mu_.AwaitWithTimeout(absl::Condition(&probes_stop_), absl::Milliseconds(200));
  }
}

void ExperimentRun::AddSample(size_t index, const v1::ProbeSample& s,
                              const timeline::ClockOffset& clock) {
  // A success is stamped when it completed (the service answered by then), a
  // failure when it started (the service was down by then): a check that
  // straddles the recovery must not date it early.
  const int64_t at = s.start_unix_ns() + (s.ok() ? s.latency_ns() : 0);
  absl::MutexLock lock(&mu_);
  ProbeState& state = probe_states_[index];
  const int64_t t = timeline::ToControllerClock(at, clock).ns;
  state.samples.push_back({t, s.ok()});
  stops_.AddSample(index, t, s.ok());  // only while armed (steady state to Revert)
  if (!s.ok()) {
    ++state.failures;
    state.last_error = s.error();
  }
}

bool ExperimentRun::RecordRefusal(size_t index, const absl::Status& st) {
  const absl::StatusCode code = st.code();
  if (code != absl::StatusCode::kPermissionDenied && code != absl::StatusCode::kInvalidArgument &&
      code != absl::StatusCode::kFailedPrecondition) {
    return false;
  }
  ProbeState& state = probe_states_[index];
  if (!state.samples.empty()) return false;  // it ran: a later failure is an outage
  state.refused = std::string(st.message());
  spdlog::warn("run {}: probe {} refused: {}", run_id_, probes_[index]->probe.name(),
               state.refused);
  return true;
}

int ExperimentRun::FirstRefused() {
  for (size_t p = 0; p < probe_states_.size(); ++p) {
    if (!probe_states_[p].refused.empty()) return static_cast<int>(p);
  }
  return -1;
}

int ExperimentRun::FirstFailing(int need) {
  for (size_t p = 0; p < probe_states_.size(); ++p) {
    const auto& samples = probe_states_[p].samples;
    for (size_t i = 0; i < samples.size() && i < static_cast<size_t>(need); ++i) {
      if (!samples[i].ok) return static_cast<int>(p);
    }
  }
  return -1;
}

bool ExperimentRun::AllHave(int need) {
  for (const ProbeState& state : probe_states_) {
    if (state.samples.size() < static_cast<size_t>(need)) return false;
  }
  return true;
}

std::optional<ExperimentRun::End> ExperimentRun::SteadyVerdict(int need) {
  std::string not_steady, refused;
  bool was_aborted;
  {
    absl::MutexLock lock(&mu_);
    was_aborted = aborted_;
    if (const int r = FirstRefused(); r >= 0) {
      // An agent's refusal names the agent already ("agent A (ADDR): RunProbe: ...").
      refused = fmt::format("probe {} refused: {}", probes_[r]->probe.name(),
                            probe_states_[r].refused);
    } else if (const int bad = FirstFailing(need); bad >= 0) {
      not_steady = fmt::format("probe {} failed before injection: {}",
                               probes_[bad]->probe.name(), probe_states_[bad].last_error);
    } else {
      for (size_t i = 0; i < probes_.size(); ++i) {
        const ProbeState& state = probe_states_[i];
        if (state.samples.size() >= static_cast<size_t>(need)) continue;
        not_steady = fmt::format("probe {}: {} of {} samples before the steady-state deadline{}",
                                 probes_[i]->probe.name(), state.samples.size(), need,
                                 state.last_error.empty() ? "" : " (" + state.last_error + ")");
        break;
      }
    }
  }
  if (!was_aborted && not_steady.empty() && refused.empty()) return std::nullopt;
  StopProbes();
  if (was_aborted) return End{"aborted", "aborted before injection; nothing was injected"};
  if (!refused.empty()) {
    Event("probe_refused", NowRealtimeNs(), "", refused);
    return End{"error", refused + "; nothing was injected"};
  }
  Event("not_steady", NowRealtimeNs(), "", not_steady);
  return End{"not_steady", not_steady + "; nothing was injected"};
}

// ---- Report ----

bool ExperimentRun::WaitFor(const std::function<bool()>& done, Clock::time_point deadline,
                            const std::string& phase) {
  constexpr auto kProgressEvery = std::chrono::milliseconds(250);
  while (true) {
    const auto next = std::min(deadline, Clock::now() + kProgressEvery);
    {
      absl::MutexLock lock(&mu_);
      auto ready = [&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return aborted_ || done(); };
      mu_.AwaitWithTimeout(absl::Condition(&ready), absl::FromChrono(next - Clock::now()));
      if (done()) return true;
      if (aborted_) return false;
    }
    if (Clock::now() >= deadline) return false;
    Progress(phase);
  }
}

void ExperimentRun::Progress(const std::string& phase, const std::string& message) {
  if (!progress_) return;
  v1::RunProgress p;
  p.set_run_id(run_id_);
  p.set_phase(phase);
  p.set_message(message);
  p.set_elapsed_ms(
      std::chrono::duration<double, std::milli>(Clock::now() - started_mono_).count());
  {
    absl::MutexLock lock(&mu_);
    for (size_t i = 0; i < probes_.size() && i < probe_states_.size(); ++i) {
      const ProbeState& state = probe_states_[i];
      auto* s = p.add_probes();
      s->set_name(probes_[i]->probe.name());
      s->set_agent(probes_[i]->agent);
      s->set_ok(!state.samples.empty() && state.samples.back().ok);
      s->set_samples(static_cast<int64_t>(state.samples.size()));
      s->set_failures(state.failures);
      s->set_last_error(state.last_error);
    }
  }
  progress_(p);
}

void ExperimentRun::Event(const std::string& kind, int64_t unix_ns, const std::string& agent,
                          const std::string& detail, double error_ms) {
  auto* e = report_.add_timeline();
  e->set_unix_ns(unix_ns);
  e->set_kind(kind);
  e->set_agent(agent);
  e->set_detail(detail);
  e->set_error_ms(error_ms);
}

void ExperimentRun::SetFigures(const timeline::RunResult& fig, int need) {
  report_.set_time_to_detect_ms(static_cast<double>(fig.time_to_detect_ms));
  report_.set_outage_ms(static_cast<double>(fig.outage_ms));
  report_.set_time_to_recover_ms(static_cast<double>(fig.time_to_recover_ms));
  report_.set_error_ms(static_cast<double>(fig.error_ms));
  report_.set_recovered_during_fault(fig.recovered_during_fault);
  report_.set_outage_observed(fig.outage_observed);
  report_.set_recovered(fig.recovered);
  if (fig.outage_observed) {
    std::string failing;
    for (const auto& o : fig.probes) {
      if (o.failed && o.first_failure_ns == fig.outage_start_ns) failing = o.name;
    }
    Event("outage_start", fig.outage_start_ns, "", "first failed probe: " + failing,
          static_cast<double>(fig.error_ms));
  }
  if (fig.outage_observed && fig.recovered) {
    Event("recovered", fig.recovered_ns, "",
          fmt::format("{} consecutive successful probes{}", need,
                      fig.recovered_during_fault ? " (during the fault)" : " (after the revert)"),
          static_cast<double>(fig.error_ms));
  }
}

v1::RunReport ExperimentRun::Finish(const End& end) {
  if (data_ && !data_read_) {  // an early end: the writers stop, nothing is read
    for (const v1::DataResult& r : data_->Abandon(end.reason)) *report_.add_data() = r;
    data_read_ = true;
  }
  report_.set_verdict(end.verdict);
  report_.set_reason(end.reason);
  report_.set_state("done");
  report_.set_ended_unix_ns(NowRealtimeNs());
  Event("ended", report_.ended_unix_ns(), "", end.verdict);
  FillProbeStrips();
  auto* tl = report_.mutable_timeline();
  std::stable_sort(tl->begin(), tl->end(), [](const v1::TimelineEvent& a,
                                              const v1::TimelineEvent& b) {
    return a.unix_ns() < b.unix_ns();
  });
  for (auto& e : *tl) e.set_at_ms(Ms(e.unix_ns() - report_.started_unix_ns()));
  Save();
  if (admitted_) options_.fleet->Release(run_id_);
  Progress("done", end.verdict);
  spdlog::info("run {} ({}): {}: {}", run_id_, exp_.name(), end.verdict, end.reason);
  return report_;
}

void ExperimentRun::FillProbeStrips() {
  constexpr int kMaxSegments = 2000;
  absl::MutexLock lock(&mu_);
  report_.clear_probe_strips();
  for (size_t p = 0; p < probe_states_.size() && p < probes_.size(); ++p) {
    std::vector<timeline::ProbeObservation> samples = probe_states_[p].samples;
    std::sort(samples.begin(), samples.end(),
              [](const auto& a, const auto& b) { return a.time_ns < b.time_ns; });
    v1::ProbeStrip* strip = report_.add_probe_strips();
    strip->set_probe(probes_[p]->probe.name());
    strip->set_samples(static_cast<int32_t>(samples.size()));
    v1::ProbeSegment* seg = nullptr;
    for (const auto& s : samples) {
      const double at = Ms(s.time_ns - report_.started_unix_ns());
      if (seg != nullptr && seg->ok() == s.ok) {
        seg->set_to_ms(at);
        seg->set_samples(seg->samples() + 1);
        continue;
      }
      if (seg != nullptr) seg->set_to_ms(at);
      if (strip->segments_size() >= kMaxSegments) {
        strip->set_truncated(true);
        break;
      }
      seg = strip->add_segments();
      seg->set_from_ms(at);
      seg->set_to_ms(at);
      seg->set_ok(s.ok);
      seg->set_samples(1);
    }
  }
}

void ExperimentRun::Save() {
  if (store_ == nullptr) return;
  absl::Status st = store_->SaveRun(report_);
  if (!st.ok()) spdlog::error("run {}: {}", run_id_, std::string(st.message()));
}

}  // namespace faultline::controller
