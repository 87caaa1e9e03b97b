#include "controller/runner.h"

#include <fmt/format.h>
#include <grpcpp/client_context.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <random>
#include <set>

#include "common/clock.h"
#include "common/grpc_status.h"
#include "common/units.h"
#include "controller/experiment.h"
#include "controller/timeline/result.h"
#include "spec/fault_spec.h"

namespace faultline::controller {
namespace {

using Clock = std::chrono::steady_clock;

double Ms(int64_t ns) { return static_cast<double>(ns) / 1e6; }

void SetDeadline(grpc::ClientContext* ctx, std::chrono::milliseconds timeout) {
  ctx->set_deadline(std::chrono::system_clock::now() + timeout);
}

std::string RpcError(const std::string& what, const grpc::Status& st) {
  return fmt::format("{}: {} {}", what, GrpcCodeName(st.error_code()), st.error_message());
}

std::chrono::nanoseconds ProbeTimeout(const v1::ExperimentProbe& p) {
  if (!p.timeout().empty()) {
    auto d = ParseDuration("timeout", p.timeout());
    if (d.ok()) return *d;
  }
  return std::min<std::chrono::nanoseconds>(ProbeInterval(p), std::chrono::seconds(1));
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

// One probe of the run and its samples. Samples, counters and `stop` are
// guarded by the run's mu_.
struct ExperimentRun::ProbeRun {
  v1::ExperimentProbe probe;
  v1::ProbeSpec spec;
  std::string agent;    // "" = the controller runs it
  std::string address;
  timeline::ClockOffset clock;
  int64_t interval_ns = 0;
  std::unique_ptr<v1::Agent::Stub> stub;
  ProbeCheck check;

  std::vector<timeline::ProbeObservation> samples;
  int64_t failures = 0;
  std::string last_error;
  bool stop = false;
  grpc::ClientContext* ctx = nullptr;  // the live stream, for cancellation
  std::thread thread;
};

ExperimentRun::ExperimentRun(std::string run_id, v1::Experiment experiment, bool dry_run,
                             std::vector<AgentRef> agents, RunnerOptions options, Store* store,
                             ProgressFn progress)
    : run_id_(std::move(run_id)),
      exp_(std::move(experiment)),
      dry_run_(dry_run),
      all_agents_(std::move(agents)),
      options_(std::move(options)),
      store_(store),
      progress_(std::move(progress)),
      started_mono_(Clock::now()) {}

ExperimentRun::~ExperimentRun() {
  StopProbes();
  {
    std::lock_guard<std::mutex> lock(mu_);
    lease_stop_ = true;
  }
  cv_.notify_all();
  if (lease_thread_.joinable()) lease_thread_.join();
}

void ExperimentRun::Abort() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    aborted_ = true;
  }
  cv_.notify_all();
}

std::unique_ptr<v1::Agent::Stub> ExperimentRun::Stub(const std::string& address) {
  auto channel = options_.dial(address);
  if (!channel.ok()) {
    spdlog::warn("run {}: cannot dial {}: {}", run_id_, address,
                 std::string(channel.status().message()));
    return nullptr;
  }
  return v1::Agent::NewStub(*channel);
}

absl::StatusOr<timeline::ClockOffset> ExperimentRun::SyncClock(const AgentRef& agent) {
  auto stub = Stub(agent.address);
  if (!stub) return absl::UnavailableError(fmt::format("agent {}: cannot dial {}", agent.name,
                                                       agent.address));
  std::vector<timeline::ClockExchange> exchanges;
  for (int i = 0; i < std::max(1, options_.clock_exchanges); ++i) {
    grpc::ClientContext ctx;
    SetDeadline(&ctx, options_.rpc_timeout);
    v1::InfoResponse info;
    timeline::ClockExchange e;
    e.t0_ns = NowRealtimeNs();
    grpc::Status st = stub->Info(&ctx, v1::InfoRequest(), &info);
    e.t2_ns = NowRealtimeNs();
    if (!st.ok()) {
      return absl::UnavailableError(
          RpcError(fmt::format("agent {} ({}): Info", agent.name, agent.address), st));
    }
    if (info.clock().realtime_ns() == 0) {
      return absl::FailedPreconditionError(
          fmt::format("agent {}: Info carries no clock sample", agent.name));
    }
    e.t1_ns = info.clock().realtime_ns();
    exchanges.push_back(e);
  }
  return timeline::EstimateClockOffset(exchanges);
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

void ExperimentRun::Save() {
  if (store_ == nullptr) return;
  absl::Status st = store_->SaveRun(report_);
  if (!st.ok()) spdlog::error("run {}: {}", run_id_, std::string(st.message()));
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
    std::lock_guard<std::mutex> lock(mu_);
    for (const auto& pr : probes_) {
      auto* s = p.add_probes();
      s->set_name(pr->probe.name());
      s->set_agent(pr->agent);
      s->set_ok(!pr->samples.empty() && pr->samples.back().ok);
      s->set_samples(static_cast<int64_t>(pr->samples.size()));
      s->set_failures(pr->failures);
      s->set_last_error(pr->last_error);
    }
  }
  progress_(p);
}

bool ExperimentRun::WaitFor(const std::function<bool()>& done, Clock::time_point deadline,
                            const std::string& phase) {
  constexpr auto kProgressEvery = std::chrono::milliseconds(250);
  while (true) {
    auto next = std::min(deadline, Clock::now() + kProgressEvery);
    {
      std::unique_lock<std::mutex> lock(mu_);
      cv_.wait_until(lock, next, [&] { return aborted_ || done(); });
      if (done()) return true;
      if (aborted_) return false;
    }
    if (Clock::now() >= deadline) return false;
    Progress(phase);
  }
}

void ExperimentRun::StartProbes() {
  for (const auto& p : exp_.probes()) {
    auto run = std::make_unique<ProbeRun>();
    run->probe = p;
    run->spec = ToProbeSpec(p);
    run->interval_ns = ProbeInterval(p).count();
    probes_.push_back(std::move(run));
  }
}

void ExperimentRun::ProbeThread(ProbeRun* pr) {
  if (pr->check) {
    const auto interval = std::chrono::nanoseconds(pr->interval_ns);
    const auto timeout = ProbeTimeout(pr->probe);
    auto next = Clock::now();
    int64_t seq = 0;
    while (true) {
      {
        std::lock_guard<std::mutex> lock(mu_);
        if (pr->stop) return;
      }
      const int64_t t = NowRealtimeNs();
      auto [ok, error] = pr->check(timeout);
      {
        std::lock_guard<std::mutex> lock(mu_);
        // Successes at completion, failures at start (see the agent stream).
        pr->samples.push_back({ok ? NowRealtimeNs() : t, ok});
        if (!ok) {
          ++pr->failures;
          pr->last_error = error;
        }
      }
      cv_.notify_all();
      ++seq;
      next += interval;
      const auto now = Clock::now();
      if (next < now) next += ((now - next) / interval + 1) * interval;  // skip missed slots
      std::unique_lock<std::mutex> lock(mu_);
      cv_.wait_until(lock, next, [&] { return pr->stop; });
    }
  }
  while (true) {
    grpc::ClientContext ctx;
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (pr->stop) return;
      pr->ctx = &ctx;
    }
    v1::RunProbeRequest req;
    *req.mutable_probe() = pr->spec;
    auto reader = pr->stub->RunProbe(&ctx, req);
    v1::ProbeSample s;
    while (reader->Read(&s)) {
      {
        std::lock_guard<std::mutex> lock(mu_);
        // A success is stamped when it completed (the service answered by
        // then), a failure when it started (the service was down by then): a
        // check that straddles the recovery must not date it early.
        const int64_t at = s.start_unix_ns() + (s.ok() ? s.latency_ns() : 0);
        pr->samples.push_back({timeline::ToControllerClock(at, pr->clock).ns, s.ok()});
        if (!s.ok()) {
          ++pr->failures;
          pr->last_error = s.error();
        }
      }
      cv_.notify_all();
    }
    grpc::Status st = reader->Finish();
    std::unique_lock<std::mutex> lock(mu_);
    pr->ctx = nullptr;
    if (pr->stop) return;
    pr->last_error = RpcError(fmt::format("RunProbe on {}", pr->agent), st);
    spdlog::warn("run {}: probe {}: {}", run_id_, pr->probe.name(), pr->last_error);
    cv_.wait_for(lock, std::chrono::milliseconds(200), [&] { return pr->stop; });
  }
}

void ExperimentRun::StopProbes() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    for (auto& pr : probes_) {
      pr->stop = true;
      if (pr->ctx != nullptr) pr->ctx->TryCancel();
    }
  }
  cv_.notify_all();
  for (auto& pr : probes_) {
    if (pr->thread.joinable()) pr->thread.join();
  }
}

void ExperimentRun::LeaseLoop() {
  const auto every = std::max(options_.lease_ttl / 3, std::chrono::milliseconds(10));
  std::unique_lock<std::mutex> lock(mu_);
  while (!cv_.wait_for(lock, every, [&] { return lease_stop_; })) {
    std::vector<std::string> addresses = lease_addresses_;
    lock.unlock();
    for (const auto& address : addresses) {
      auto stub = Stub(address);
      if (!stub) continue;
      grpc::ClientContext ctx;
      SetDeadline(&ctx, std::min(every, std::chrono::milliseconds(2000)));
      v1::RenewLeaseRequest req;
      req.set_lease_id(run_id_);
      req.set_ttl_ms(options_.lease_ttl.count());
      v1::RenewLeaseResponse resp;
      grpc::Status st = stub->RenewLease(&ctx, req, &resp);
      if (!st.ok()) {
        spdlog::warn("run {}: {}", run_id_, RpcError("RenewLease on " + address, st));
      }
    }
    lock.lock();
  }
}

absl::Status ExperimentRun::InjectAll() {
  const auto duration = ExperimentDuration(exp_);
  for (int i = 0; i < exp_.faults_size(); ++i) {
    const v1::ExperimentFault& fault = exp_.faults(i);
    const v1::FaultSpec spec = FaultSpecFor(exp_, i);
    const auto fault_duration = spec.duration().empty()
                                    ? duration
                                    : ParseDuration("duration", spec.duration()).value_or(duration);
    for (const AgentRef& agent : targets_[fault.on()]) {
      {
        std::lock_guard<std::mutex> lock(mu_);
        if (aborted_) return absl::AbortedError("aborted");
        // Known before the call: a timed-out Inject may still have applied.
        if (std::find(lease_addresses_.begin(), lease_addresses_.end(), agent.address) ==
            lease_addresses_.end()) {
          lease_addresses_.push_back(agent.address);
          report_.add_agents(agent.address);
        }
      }
      Save();
      if (!lease_thread_.joinable()) lease_thread_ = std::thread([this] { LeaseLoop(); });
      auto stub = Stub(agent.address);
      if (!stub) return absl::UnavailableError(fmt::format("cannot dial {}", agent.address));
      grpc::ClientContext ctx;
      SetDeadline(&ctx, options_.rpc_timeout);
      v1::InjectRequest req;
      *req.mutable_spec() = spec;
      req.set_lease_id(run_id_);
      req.set_lease_ttl_ms(options_.lease_ttl.count());
      req.set_owner("faultline-controller run " + run_id_);
      v1::InjectResponse resp;
      grpc::Status st = stub->Inject(&ctx, req, &resp);
      if (!st.ok()) {
        return FromGrpcStatus(grpc::Status(
            st.error_code(), fmt::format("faults[{}] ({}) on agent {}: {}", i, spec::KindName(spec),
                                         agent.name, st.error_message())));
      }
      const timeline::ClockOffset& clock = clocks_[agent.name];
      Injected inj;
      inj.agent = agent.name;
      inj.address = agent.address;
      inj.fault_id = resp.fault().id();
      inj.is_action = !spec::KindFor(spec.kind_case()).reversible;
      if (resp.fault().injected_unix_ns() != 0) {
        inj.injected_ns = timeline::ToControllerClock(resp.fault().injected_unix_ns(), clock).ns;
        inj.injected_error_ns = clock.error_ns;
      } else {
        inj.injected_ns = NowRealtimeNs();
      }
      inj.end_ns = inj.injected_ns + fault_duration.count();
      injected_.push_back(inj);
      auto* planned = report_.add_faults();
      planned->set_agent(agent.name);
      planned->set_address(agent.address);
      planned->set_target(fault.on());
      planned->set_kind(spec::KindName(spec));
      planned->set_fault_id(resp.fault().id());
      for (const auto& c : resp.changes()) planned->add_changes(c);
      Event("injected", inj.injected_ns, agent.name,
            fmt::format("faults[{}] {} {}: {}", i, spec::KindName(spec), resp.fault().id(),
                        resp.fault().target()),
            Ms(clock.error_ns));
    }
  }
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

void ExperimentRun::RevertAll(const std::string& why) {
  std::vector<std::string> addresses;
  {
    std::lock_guard<std::mutex> lock(mu_);
    addresses = lease_addresses_;
  }
  for (const auto& address : addresses) {
    std::string name = address;
    for (const auto& a : all_agents_) {
      if (a.address == address) name = a.name;
    }
    const int64_t asked = NowRealtimeNs();
    auto stub = Stub(address);
    grpc::Status st(grpc::StatusCode::UNAVAILABLE, "cannot dial");
    v1::RevertAllResponse resp;
    if (stub) {
      grpc::ClientContext ctx;
      SetDeadline(&ctx, options_.rpc_timeout);
      v1::RevertAllRequest req;
      req.set_lease_id(run_id_);
      st = stub->RevertAll(&ctx, req, &resp);
    }
    if (!st.ok()) {
      Event("revert_failed", asked, name,
            RpcError("RevertAll", st) + " (the agent reverts by itself when the lease lapses)");
      continue;
    }
    const timeline::ClockOffset& clock = clocks_[name];
    if (resp.faults().empty()) {
      Event("reverted", asked, name, fmt::format("{}: nothing left to revert", why));
    }
    for (const auto& f : resp.faults()) {
      const int64_t t = f.reverted_unix_ns() != 0
                            ? timeline::ToControllerClock(f.reverted_unix_ns(), clock).ns
                            : asked;
      for (auto& inj : injected_) {
        if (inj.fault_id == f.id()) inj.reverted_ns = t;
      }
      Event("reverted", t, name,
            fmt::format("{} {} ({})", spec::KindName(f.spec()), f.id(),
                        f.revert_reason().empty() ? why : f.revert_reason()),
            Ms(clock.error_ns));
    }
  }
  {
    std::lock_guard<std::mutex> lock(mu_);
    lease_stop_ = true;
  }
  cv_.notify_all();
  if (lease_thread_.joinable()) lease_thread_.join();
}

v1::RunReport ExperimentRun::Finish(const std::string& verdict, const std::string& reason) {
  report_.set_verdict(verdict);
  report_.set_reason(reason);
  report_.set_state("done");
  report_.set_ended_unix_ns(NowRealtimeNs());
  Event("ended", report_.ended_unix_ns(), "", verdict);
  auto* tl = report_.mutable_timeline();
  std::stable_sort(tl->begin(), tl->end(), [](const v1::TimelineEvent& a,
                                              const v1::TimelineEvent& b) {
    return a.unix_ns() < b.unix_ns();
  });
  for (auto& e : *tl) e.set_at_ms(Ms(e.unix_ns() - report_.started_unix_ns()));
  Save();
  Progress("done", verdict);
  spdlog::info("run {} ({}): {}: {}", run_id_, exp_.name(), verdict, reason);
  return report_;
}

v1::RunReport ExperimentRun::Execute() {
  report_.set_run_id(run_id_);
  report_.set_experiment(exp_.name());
  report_.set_description(exp_.description());
  report_.set_state("running");
  report_.set_dry_run(dry_run_);
  report_.set_started_unix_ns(NowRealtimeNs());
  report_.set_rto_target_ms(Ms(RtoTarget(exp_).count()));
  report_.set_duration_ms(Ms(ExperimentDuration(exp_).count()));
  int64_t max_interval = 0;
  std::chrono::nanoseconds max_timeout{0};
  for (const auto& p : exp_.probes()) {
    max_interval = std::max<int64_t>(max_interval, ProbeInterval(p).count());
    max_timeout = std::max(max_timeout, ProbeTimeout(p));
  }
  report_.set_probe_interval_ms(Ms(max_interval));
  Event("started", report_.started_unix_ns(), "", dry_run_ ? "dry run" : "");
  if (!dry_run_) Save();

  // Targets.
  Progress("resolving");
  std::mt19937_64 rng(options_.seed != 0 ? options_.seed : std::random_device{}());
  auto targets = ResolveTargets(exp_, all_agents_, rng);
  if (!targets.ok()) return Finish("error", std::string(targets.status().message()));
  targets_ = std::move(*targets);
  std::set<std::string> involved_targets;
  for (const auto& f : exp_.faults()) involved_targets.insert(f.on());
  for (const auto& p : exp_.probes()) {
    if (!p.from().empty() && p.from() != kFromController) involved_targets.insert(p.from());
  }
  int64_t clock_error = 0;
  for (const auto& t : involved_targets) {
    for (const AgentRef& a : targets_[t]) {
      if (clocks_.contains(a.name)) continue;
      auto offset = SyncClock(a);
      if (!offset.ok()) return Finish("error", std::string(offset.status().message()));
      clocks_[a.name] = *offset;
      clock_error = std::max(clock_error, offset->error_ns);
      Event("clock", NowRealtimeNs(), a.name,
            fmt::format("offset {:+.3f} ms +/- {:.3f} ms", Ms(offset->offset_ns),
                        Ms(offset->error_ns)));
    }
  }
  report_.set_clock_error_ms(Ms(clock_error));
  report_.set_error_ms(Ms(max_interval + 2 * clock_error));

  if (dry_run_) {
    std::string problems;
    for (int i = 0; i < exp_.faults_size(); ++i) {
      const auto& fault = exp_.faults(i);
      const v1::FaultSpec spec = FaultSpecFor(exp_, i);
      for (const AgentRef& agent : targets_[fault.on()]) {
        auto* planned = report_.add_faults();
        planned->set_agent(agent.name);
        planned->set_address(agent.address);
        planned->set_target(fault.on());
        planned->set_kind(spec::KindName(spec));
        auto stub = Stub(agent.address);
        if (!stub) {
          problems += fmt::format("{}faults[{}] on {}: cannot dial {}", problems.empty() ? "" : "\n",
                                  i, agent.name, agent.address);
          continue;
        }
        grpc::ClientContext ctx;
        SetDeadline(&ctx, options_.rpc_timeout);
        v1::InjectRequest req;
        *req.mutable_spec() = spec;
        req.set_dry_run(true);
        v1::InjectResponse resp;
        grpc::Status st = stub->Inject(&ctx, req, &resp);
        if (!st.ok()) {
          problems += fmt::format("{}faults[{}] on {}: {}", problems.empty() ? "" : "\n", i,
                                  agent.name, st.error_message());
          continue;
        }
        for (const auto& c : resp.changes()) planned->add_changes(c);
      }
    }
    if (!problems.empty()) return Finish("error", problems);
    return Finish("dry_run", "nothing was injected");
  }

  // Probes.
  StartProbes();
  for (auto& pr : probes_) {
    const std::string& from = pr->probe.from();
    if (from.empty() || from == kFromController) {
      absl::StatusOr<ProbeCheck> check =
          options_.local_probe ? options_.local_probe(pr->spec)
                               : absl::UnimplementedError("the controller cannot run probes");
      if (!check.ok()) {
        StopProbes();
        return Finish("error", fmt::format("probe {}: {}", pr->probe.name(),
                                           std::string(check.status().message())));
      }
      pr->check = std::move(*check);
    } else {
      const AgentRef& agent = targets_[from].front();
      pr->agent = agent.name;
      pr->address = agent.address;
      pr->clock = clocks_[agent.name];
      pr->stub = Stub(agent.address);
      if (!pr->stub) {
        StopProbes();
        return Finish("error", fmt::format("probe {}: cannot dial {}", pr->probe.name(),
                                           agent.address));
      }
    }
  }
  for (auto& pr : probes_) {
    ProbeRun* raw = pr.get();
    pr->thread = std::thread([this, raw] { ProbeThread(raw); });
  }

  // Steady state before.
  const int need = RecoveredAfter(exp_);
  Progress("steady_state");
  auto first_failure = [&]() -> const ProbeRun* {
    for (const auto& pr : probes_) {
      for (size_t i = 0; i < pr->samples.size() && i < static_cast<size_t>(need); ++i) {
        if (!pr->samples[i].ok) return pr.get();
      }
    }
    return nullptr;
  };
  auto all_have = [&] {
    for (const auto& pr : probes_) {
      if (pr->samples.size() < static_cast<size_t>(need)) return false;
    }
    return true;
  };
  WaitFor([&] { return first_failure() != nullptr || all_have(); },
          Clock::now() + std::chrono::nanoseconds(max_interval) * need + max_timeout +
              options_.steady_slack,
          "steady_state");
  std::string not_steady;
  bool aborted;
  {
    std::lock_guard<std::mutex> lock(mu_);
    aborted = aborted_;
    if (const ProbeRun* bad = first_failure()) {
      not_steady = fmt::format("probe {} failed before injection: {}", bad->probe.name(),
                               bad->last_error);
    } else if (!all_have()) {
      for (const auto& pr : probes_) {
        if (pr->samples.size() < static_cast<size_t>(need)) {
          not_steady = fmt::format("probe {}: {} of {} samples before the steady-state deadline{}",
                                   pr->probe.name(), pr->samples.size(), need,
                                   pr->last_error.empty() ? "" : " (" + pr->last_error + ")");
          break;
        }
      }
    }
  }
  if (aborted) {
    StopProbes();
    return Finish("aborted", "aborted before injection; nothing was injected");
  }
  if (!not_steady.empty()) {
    StopProbes();
    Event("not_steady", NowRealtimeNs(), "", not_steady);
    return Finish("not_steady", not_steady + "; nothing was injected");
  }
  Event("steady", NowRealtimeNs(), "", fmt::format("every probe passed {} times", need));

  // Inject.
  Progress("injecting");
  const auto inject_mono = Clock::now();
  absl::Status injected = InjectAll();
  if (!injected.ok()) {
    const bool was_abort = injected.code() == absl::StatusCode::kAborted;
    RevertAll(was_abort ? "abort" : "inject failed");
    StopProbes();
    if (was_abort) return Finish("aborted", "aborted while injecting; faults reverted");
    return Finish("error", std::string(injected.message()) + "; faults reverted");
  }

  // Observe until the experiment's duration ends.
  Progress("observing");
  WaitFor([] { return false; }, inject_mono + ExperimentDuration(exp_), "observing");
  {
    std::lock_guard<std::mutex> lock(mu_);
    aborted = aborted_;
  }
  Progress("reverting");
  const int64_t revert_ns = NowRealtimeNs();
  RevertAll(aborted ? "abort" : "duration");
  for (auto& inj : injected_) {
    // Not in a RevertAll answer: the agent had reverted it at its deadline.
    if (inj.reverted_ns == 0 && !inj.is_action) inj.reverted_ns = std::min(inj.end_ns, revert_ns);
  }

  // Steady state after.
  bool steady_after = false;
  if (!aborted) {
    Progress("steady_after");
    const int64_t after = NowRealtimeNs();
    steady_after = WaitFor(
        [&] {
          for (const auto& pr : probes_) {
            int run = 0;
            for (auto it = pr->samples.rbegin(); it != pr->samples.rend() && it->time_ns >= after;
                 ++it) {
              if (!it->ok) break;
              ++run;
            }
            if (run < need) return false;
          }
          return true;
        },
        Clock::now() + options_.steady_after_timeout, "steady_after");
    Event(steady_after ? "steady_after" : "not_steady_after", NowRealtimeNs(), "",
          steady_after ? "every probe passes again"
                       : "probes still failing after the revert");
  }
  StopProbes();
  report_.set_steady_after(steady_after);

  // Result.
  timeline::ResultInput in;
  in.injected_ns = injected_ns_;
  in.injected_error_ns = injected_error_ns_;
  in.experiment_end_ns = injected_ns_ + ExperimentDuration(exp_).count();
  in.rto_ns = RtoTarget(exp_).count();
  in.recovered_after = need;
  for (const auto& inj : injected_) {
    in.faults.push_back({inj.is_action ? 0 : inj.reverted_ns, inj.is_action});
  }
  for (const auto& pr : probes_) {
    timeline::ProbeSeries s;
    s.name = pr->probe.name();
    s.interval_ns = pr->interval_ns;
    s.clock_error_ns = pr->clock.error_ns;
    s.samples = pr->samples;
    in.probes.push_back(std::move(s));
  }
  auto result = timeline::ComputeResult(in);
  if (!result.ok()) {
    if (aborted) return Finish("aborted", "aborted by request; faults reverted");
    return Finish("error", "computing the result: " + std::string(result.status().message()));
  }
  const timeline::RunResult& fig = *result;
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
  if (aborted) return Finish("aborted", "aborted by request; faults reverted");
  return Finish(timeline::VerdictName(fig.verdict), fig.reason);
}

}  // namespace faultline::controller
