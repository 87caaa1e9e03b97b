#include "agent/fault_manager.h"

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <pthread.h>
#include <sched.h>
#include <sys/syscall.h>
#include <unistd.h>
#include <time.h>

#include <algorithm>
#include <cerrno>
#include <mutex>
#include <optional>
#include <random>

#include "absl/cleanup/cleanup.h"
#include "absl/strings/str_join.h"
#include "agent/policy.h"
#include "common/clock.h"
#include "common/status_macros.h"
#include "common/units.h"
#include "spec/fault_spec.h"

namespace faultline::agent {
namespace {

using Clock = ActiveFault::Clock;

// A lease is renewed by the controller every TTL/3 or so; anything shorter than
// this cannot be kept alive over a real network.
constexpr int64_t kMinLeaseTtlMs = 100;
// A lease longer than this is no lease: a lost controller would leave its
// faults for hours (and a huge TTL overflowed the clock arithmetic).
constexpr int64_t kMaxLeaseTtlMs = 3'600'000;
// How far ahead a Commit may ask to start (a coordinated start is chosen a few
// round trips ahead; anything longer is a mistake, and would hold a thread).
constexpr int64_t kMaxCommitAheadNs = 10'000'000'000;
// Leased faults the agent reverted by itself, kept for the lease holder's
// RevertAll (the oldest are dropped past this).
constexpr size_t kKeptReverted = 1024;
// How soon the reaper retries a revert that failed.
constexpr auto kRevertRetry = std::chrono::seconds(1);

// INVALID_ARGUMENT naming `field` unless ttl_ms is within the bounds above.
absl::Status CheckLeaseTtl(const char* field, int64_t ttl_ms) {
  if (ttl_ms < kMinLeaseTtlMs || ttl_ms > kMaxLeaseTtlMs) {
    return absl::InvalidArgumentError(
        fmt::format("{}: must be at least {} and at most {} (1 h) with a lease, got {}", field,
                    kMinLeaseTtlMs, kMaxLeaseTtlMs, ttl_ms));
  }
  return absl::OkStatus();
}

// Raises the calling thread to SCHED_FIFO (lowest real-time priority) for its
// lifetime, then restores the thread's policy. The reaper holds one for good,
// RevertAll (an abort, a run's end) while it reverts; a coordinated start holds it
// from the sleep until its faults are applied: at the start instant the
// applying thread runs before the host's ordinary work, so a busy host (or
// 200 agents on one machine, scripts/bench) does not delay the fault by a
// scheduler period. The boosted work is bounded (a sleep of at most
// kMaxCommitAheadNs and the prepared faults' Apply), and the kernel's real-time
// throttling caps it anyway. Without the privilege (a container without
// real-time runtime) it changes nothing. One per thread, on its stack.
class RealtimeBoost {
 public:
  RealtimeBoost() {
    if (pthread_getschedparam(pthread_self(), &old_policy_, &old_param_) != 0) return;
    sched_param p{};
    p.sched_priority = sched_get_priority_min(SCHED_FIFO);
    // (SCHED_RESET_ON_FORK: a child forked meanwhile starts at the ordinary policy.)
    boosted_ = sched_setscheduler(static_cast<pid_t>(syscall(SYS_gettid)),
                                  SCHED_FIFO | SCHED_RESET_ON_FORK, &p) == 0;
    if (!boosted_) spdlog::debug("no real-time priority for the coordinated start");
  }
  ~RealtimeBoost() {
    if (boosted_) pthread_setschedparam(pthread_self(), old_policy_, &old_param_);
  }
  RealtimeBoost(const RealtimeBoost&) = delete;
  RealtimeBoost& operator=(const RealtimeBoost&) = delete;

 private:
  int old_policy_ = SCHED_OTHER;
  sched_param old_param_{};
  bool boosted_ = false;
};

// Puts a SCHED_FIFO caller behind the other real-time threads of its
// priority; nothing for an ordinary thread.
void YieldIfRealtime() {
  if ((sched_getscheduler(0) & ~SCHED_RESET_ON_FORK) == SCHED_FIFO) sched_yield();
}

// Sleeps until `unix_ns` on the realtime clock (an absolute time: a clock
// step moves the wake-up with it).
void SleepUntilRealtime(int64_t unix_ns) {
  const timespec at{static_cast<time_t>(unix_ns / 1000000000), static_cast<long>(unix_ns % 1000000000)};
  while (clock_nanosleep(CLOCK_REALTIME, TIMER_ABSTIME, &at, nullptr) == EINTR) {
  }
}

// Why the reaper must revert `f` now, or nullptr.
const char* DueReason(const ActiveFault& f, Clock::time_point now) {
  if (f.deadline() <= now) return "deadline";
  if (f.lease_expiry() <= now) return "lease";
  if (f.NextCheck() <= now) return "retry";
  return nullptr;
}

}  // namespace

std::string NewFaultId() {
  static std::mutex mu;
  static std::mt19937_64 rng(std::random_device{}());
  std::lock_guard<std::mutex> lock(mu);
  return fmt::format("f{:012x}", rng() & 0xffffffffffffULL);
}

ActiveFault::ActiveFault(v1::FaultRecord record, const FaultHandler* handler,
                         FaultManager* manager, Clock::time_point deadline)
    : record_(std::move(record)), handler_(handler), manager_(manager), deadline_(deadline) {}

ActiveFault::~ActiveFault() {
  if (reverted_) return;
  absl::Status st = Revert("shutdown");
  if (!st.ok()) {
    spdlog::error("fault {}: revert at shutdown failed (left in the ledger for the next start): {}",
                  record_.id(), std::string(st.message()));
  }
}

absl::Status ActiveFault::Revert(const std::string& reason) {
  if (reverted_) return absl::OkStatus();
  RETURN_IF_ERROR(manager_->RevertRecord(*handler_, reason, &record_));
  reverted_ = true;
  return absl::OkStatus();
}

FaultManager::FaultManager(std::unique_ptr<Ledger> ledger,
                           std::vector<std::unique_ptr<FaultHandler>> handlers,
                           FaultContext context)
    : ledger_(std::move(ledger)),
      handlers_(std::move(handlers)),
      context_([&] {
        // The agent's identity comes with its state folder (the ledger's).
        if (context.agent_id.empty() && ledger_ != nullptr) context.agent_id = ledger_->agent_id();
        return std::move(context);
      }()) {}

FaultManager::~FaultManager() {
  {
    absl::MutexLock lock(&mu_);
    stopping_ = true;
  }
  wake_.SignalAll();
  if (reaper_.joinable()) reaper_.join();
  std::map<std::string, std::unique_ptr<ActiveFault>> active;
  std::vector<Prepared> prepared;
  {
    absl::MutexLock lock(&mu_);
    // Applies and reverts under way end first (they are short kernel work).
    while (applying_ > 0 || AnyBusyLocked()) wake_.Wait(&mu_);
    active.swap(active_);
    prepared = TakePreparedLocked("");
  }
  for (Prepared& p : prepared) ForgetPrepared(std::move(p.record), "shutdown");
  active.clear();  // each ActiveFault reverts itself
}

const FaultHandler* FaultManager::HandlerFor(v1::FaultSpec::KindCase kind_case) const {
  for (const auto& h : handlers_) {
    if (h->kind_case() == kind_case) return h.get();
  }
  return nullptr;
}

std::vector<std::string> FaultManager::Capabilities() const {
  const int64_t now = NowMonotonicNs();
  {
    absl::MutexLock lock(&capabilities_mu_);
    if (capabilities_at_ns_ != 0 && now - capabilities_at_ns_ < kCapabilitiesTtl.count()) {
      return capabilities_;
    }
  }
  // Asking the host (an nftables listing, a qdisc probe) is slow: done outside
  // the lock, at most once per kCapabilitiesTtl unless two callers race.
  std::vector<std::string> kinds;
  for (const auto& h : handlers_) {
    if (PolicyAllows(*context_.policy, h->Kind()) && h->HostSupports(context_).ok()) {
      kinds.push_back(h->Kind());
    }
  }
  absl::MutexLock lock(&capabilities_mu_);
  capabilities_ = kinds;
  capabilities_at_ns_ = now;
  return kinds;
}

absl::Status FaultManager::RevertRecord(const FaultHandler& handler, const std::string& reason,
                                      v1::FaultRecord* record) {
  RETURN_IF_ERROR(handler.Revert(*record, context_));
  record->set_state(v1::FAULT_STATE_REVERTED);
  record->set_reverted_unix_ns(NowRealtimeNs());
  record->set_reverted_mono_ns(NowMonotonicNs());
  // A boosted reverter (the reaper at a deadline, RevertAll) lets the other
  // real-time threads of the host (200 agents ending together) do their kernel
  // work before this one's bookkeeping.
  YieldIfRealtime();
  record->set_revert_reason(reason);
  // The kernel change is undone; a failure to forget the record only means the
  // next start reverts it again, which is harmless.
  absl::Status st = ledger_->Remove(record->id());
  if (!st.ok()) spdlog::warn("fault {}: {}", record->id(), std::string(st.message()));
  spdlog::info("fault {} ({}) reverted: {}", record->id(), handler.Kind(), reason);
  return absl::OkStatus();
}

absl::StatusOr<std::vector<v1::FaultRecord>> FaultManager::Recover(std::vector<std::string>* swept) {
  // Before Start(): nothing else runs, and the maps are not touched.
  std::vector<std::string> problems;
  ASSIGN_OR_RETURN(std::vector<v1::FaultRecord> records, ledger_->Load(&problems));
  // Records a killed agent was writing when it died: never stored, so never applied.
  for (const auto& tmp : ledger_->removed_tmp()) {
    spdlog::info("removed a half-written ledger record {}", tmp);
    if (swept) swept->push_back(fmt::format("ledger: {}", tmp));
  }
  std::vector<v1::FaultRecord> reverted;
  for (auto& record : records) {
    const FaultHandler* handler = HandlerFor(record.spec().kind_case());
    if (handler == nullptr) {
      problems.push_back(fmt::format("fault {}: no fault kind in the ledger record", record.id()));
      continue;
    }
    absl::Status st = RevertRecord(*handler, "recovery", &record);
    if (!st.ok()) {
      problems.push_back(fmt::format("fault {} ({}): {}", record.id(), handler->Kind(),
                                     std::string(st.message())));
      continue;
    }
    reverted.push_back(std::move(record));
  }
  for (const auto& h : handlers_) {
    // A kind the policy forbids is one this agent never injects: leave the
    // host's matching objects alone.
    if (!PolicyAllows(*context_.policy, h->Kind())) continue;
    auto removed = h->Sweep(context_);
    if (!removed.ok()) {
      problems.push_back(fmt::format("sweep {}: {}", h->Kind(), std::string(removed.status().message())));
      continue;
    }
    for (const auto& r : *removed) {
      spdlog::info("swept leftover {}: {}", h->Kind(), r);
      if (swept) swept->push_back(fmt::format("{}: {}", h->Kind(), r));
    }
  }
  if (!problems.empty()) {
    return absl::InternalError("recovery incomplete:\n  " + absl::StrJoin(problems, "\n  "));
  }
  return reverted;
}

void FaultManager::Start() {
  reaper_ = std::thread([this] { ReaperLoop(); });
}

absl::StatusOr<const FaultHandler*> FaultManager::Check(const v1::FaultSpec& spec,
                                                        std::chrono::nanoseconds* duration) const {
  ASSIGN_OR_RETURN(const spec::Checked checked, spec::Validate(spec));
  const FaultHandler* handler = HandlerFor(spec.kind_case());
  if (handler == nullptr) {
    return absl::UnimplementedError(
        fmt::format("kind: this agent has no handler for {}", checked.kind->name));
  }
  if (!PolicyAllows(*context_.policy, checked.kind->name)) {
    return absl::PermissionDeniedError(
        fmt::format("kind: \"{}\" is not allowed by this agent's policy", checked.kind->name));
  }
  ASSIGN_OR_RETURN(const std::chrono::nanoseconds max, PolicyMaxDuration(*context_.policy));
  if (checked.duration > max) {
    return absl::PermissionDeniedError(fmt::format(
        "duration: {} is longer than this agent's policy allows (max_duration {})",
        FormatDuration(checked.duration), FormatDuration(max)));
  }
  *duration = checked.duration;
  // The handler's host checks name fields of the kind: as paths in the spec.
  RETURN_IF_ERROR(spec::QualifyField(*checked.kind, handler->Validate(spec, context_)));
  return handler;
}

v1::PreflightResponse FaultManager::Preflight(const v1::FaultSpec& spec) {
  v1::PreflightResponse resp;
  auto add = [&](const std::string& name, const absl::Status& st) {
    auto* c = resp.add_checks();
    c->set_name(name);
    c->set_ok(st.ok());
    c->set_detail(st.ok() ? "ok" : std::string(st.message()));
    if (!st.ok() && resp.error().empty()) resp.set_error(std::string(st.message()));
  };
  std::chrono::nanoseconds duration{0};
  auto handler = Check(spec, &duration);
  add("spec", handler.status());
  if (handler.ok()) {
    add("host", (*handler)->HostSupports(context_));
    v1::FaultRecord scratch;
    scratch.set_id("preflight");
    auto changes = (*handler)->Plan(spec, context_, &scratch);
    add("plan", spec::QualifyField(spec::KindFor(spec.kind_case()), changes.status()));
    if (changes.ok()) {
      for (const auto& c : *changes) resp.add_changes(c);
    }
  }
  resp.set_ok(resp.error().empty());
  return resp;
}

absl::StatusOr<v1::InjectResponse> FaultManager::Inject(const v1::InjectRequest& request) {
  const v1::FaultSpec& spec = request.spec();
  std::chrono::nanoseconds duration{0};
  ASSIGN_OR_RETURN(const FaultHandler* handler, Check(spec, &duration));
  if (!request.lease_id().empty()) RETURN_IF_ERROR(CheckLeaseTtl("lease_ttl_ms", request.lease_ttl_ms()));
  if (request.lease_id().size() > 128) {
    return absl::InvalidArgumentError("lease_id: at most 128 characters");
  }
  if (absl::Status st = handler->HostSupports(context_); !st.ok()) return st;

  v1::FaultRecord record;
  record.set_id(NewFaultId());
  *record.mutable_spec() = spec;
  record.set_state(v1::FAULT_STATE_PENDING);
  record.set_owner(request.owner());
  record.set_lease_id(request.lease_id());
  record.set_lease_ttl_ms(request.lease_id().empty() ? 0 : request.lease_ttl_ms());
  // Plan may be slow (a scan of every process, a hung filesystem): no lock.
  const spec::FaultKind& kind = spec::KindFor(spec.kind_case());
  auto planned = handler->Plan(spec, context_, &record);
  if (!planned.ok()) return spec::QualifyField(kind, planned.status());

  v1::InjectResponse resp;
  for (const auto& c : *planned) resp.add_changes(c);
  if (request.dry_run()) {
    *resp.mutable_fault() = record;
    return resp;
  }
  if (request.prepare_only()) return Prepare(std::move(record), handler, duration, std::move(resp));
  {
    absl::MutexLock lock(&mu_);
    RETURN_IF_ERROR(CheckRoomLocked());
    ++applying_;
  }
  ASSIGN_OR_RETURN(*resp.mutable_fault(), ApplyAndAdopt(std::move(record), *handler, duration));
  return resp;
}

absl::Status FaultManager::CheckRoomLocked() const {
  if (stopping_) return absl::UnavailableError("agent is shutting down");
  const size_t max = PolicyMaxActiveFaults(*context_.policy);
  const size_t held = active_.size() + prepared_.size() + static_cast<size_t>(applying_);
  if (held >= max) {
    return absl::ResourceExhaustedError(fmt::format(
        "max_active_faults: this agent holds {} faults (active, prepared or being applied); its "
        "policy allows {}",
        held, max));
  }
  return absl::OkStatus();
}

absl::StatusOr<v1::InjectResponse> FaultManager::Prepare(v1::FaultRecord record,
                                                         const FaultHandler* handler,
                                                         std::chrono::nanoseconds duration,
                                                         v1::InjectResponse resp) {
  if (record.lease_id().empty()) {
    return absl::InvalidArgumentError(
        "prepare_only: needs a lease_id (a prepared fault is forgotten when its lease lapses)");
  }
  {
    absl::MutexLock lock(&mu_);
    RETURN_IF_ERROR(CheckRoomLocked());
    ++applying_;
  }
  record.set_state(v1::FAULT_STATE_PREPARED);
  // Recorded before anything can be applied, as for an immediate inject.
  absl::Status put = spec::KindFor(record.spec().kind_case()).reversible ? ledger_->Put(record)
                                                                          : absl::OkStatus();
  absl::MutexLock lock(&mu_);
  --applying_;
  wake_.SignalAll();
  RETURN_IF_ERROR(put);
  spdlog::info("fault {} ({}) prepared: {}", record.id(), handler->Kind(), record.target());
  *resp.mutable_fault() = record;
  const std::string id = record.id();
  const auto expiry = Clock::now() + std::chrono::milliseconds(record.lease_ttl_ms());
  prepared_[id] = Prepared{std::move(record), handler, duration, expiry};
  return resp;
}

absl::StatusOr<FaultManager::Applied> FaultManager::Apply(v1::FaultRecord record,
                                                          const FaultHandler& handler,
                                                          std::chrono::nanoseconds duration,
                                                          int64_t start_at_unix_ns,
                                                          const std::function<void()>& after_kernel) {
  const spec::FaultKind& kind = spec::KindFor(record.spec().kind_case());
  const bool reversible = kind.reversible;
  // The ledger record exists before the kernel is touched, so a crash at any
  // point after this leaves something for the next start to revert.
  // (A prepared fault is in the ledger already: applying it at its start
  // instant does not wait for another fsync.)
  const bool recorded = record.state() == v1::FAULT_STATE_PREPARED;
  record.set_state(v1::FAULT_STATE_PENDING);
  if (reversible && !recorded) RETURN_IF_ERROR(ledger_->Put(record));
  // Until the fault is active (or done), any return undoes what was applied
  // and forgets the record. Apply is all-or-nothing already; Revert is
  // idempotent, so this is safe after a failed Apply too.
  absl::Cleanup rollback = [&] {
    absl::Status rb = handler.Revert(record, context_);
    if (!rb.ok()) {
      spdlog::error("fault {}: rollback failed, kept in the ledger: {}", record.id(),
                    std::string(rb.message()));
    } else if (reversible) {
      absl::Status rm = ledger_->Remove(record.id());
      if (!rm.ok()) spdlog::warn("fault {}: {}", record.id(), std::string(rm.message()));
    }
  };
  Clock::time_point applied_at = Clock::now();
  record.set_injected_unix_ns(NowRealtimeNs());
  record.set_injected_mono_ns(NowMonotonicNs());
  // The end counts from T for a coordinated start (never from before it).
  const int64_t late_ns =
      start_at_unix_ns == 0 ? 0 : std::max<int64_t>(0, record.injected_unix_ns() - start_at_unix_ns);
  applied_at -= std::chrono::nanoseconds(late_ns);
  absl::Status kernel = handler.Apply(&record, context_);
  if (after_kernel) after_kernel();
  RETURN_IF_ERROR(spec::QualifyField(kind, std::move(kernel)));
  if (!reversible) {
    std::move(rollback).Cancel();
    record.set_state(v1::FAULT_STATE_DONE);
    spdlog::info("fault {} ({}) done: {}", record.id(), handler.Kind(), record.target());
    return Applied{std::move(record), Clock::time_point::max()};
  }
  record.set_state(v1::FAULT_STATE_ACTIVE);
  record.set_deadline_unix_ns(record.injected_unix_ns() - late_ns + duration.count());
  RETURN_IF_ERROR(ledger_->Put(record));
  std::move(rollback).Cancel();
  spdlog::info("fault {} ({}) active for {}: {}", record.id(), handler.Kind(),
               FormatDuration(duration), record.target());
  return Applied{std::move(record),
                 applied_at + std::chrono::duration_cast<Clock::duration>(duration)};
}

absl::StatusOr<v1::FaultRecord> FaultManager::ApplyAndAdopt(v1::FaultRecord record,
                                                            const FaultHandler& handler,
                                                            std::chrono::nanoseconds duration,
                                                            int64_t start_at_unix_ns,
                                                            const std::function<void()>& after_kernel) {
  absl::StatusOr<Applied> applied =
      Apply(std::move(record), handler, duration, start_at_unix_ns, after_kernel);
  absl::MutexLock lock(&mu_);
  --applying_;
  wake_.SignalAll();
  if (!applied.ok()) return applied.status();
  if (applied->record.state() == v1::FAULT_STATE_ACTIVE) {
    auto fault = std::make_unique<ActiveFault>(applied->record, &handler, this, applied->deadline);
    if (!applied->record.lease_id().empty()) {
      fault->RenewLease(std::chrono::milliseconds(applied->record.lease_ttl_ms()));
    }
    active_[applied->record.id()] = std::move(fault);
  }
  return std::move(applied->record);
}

absl::StatusOr<std::vector<v1::FaultRecord>> FaultManager::Commit(
    const std::vector<std::string>& ids, int64_t start_at_unix_ns) {
  if (ids.empty()) return absl::InvalidArgumentError("ids: at least one prepared fault");
  {
    absl::MutexLock lock(&mu_);
    for (size_t i = 0; i < ids.size(); ++i) {
      if (!prepared_.contains(ids[i])) {
        return absl::NotFoundError(fmt::format("ids[{}]: no prepared fault \"{}\"", i, ids[i]));
      }
    }
  }
  const int64_t ahead_ns = start_at_unix_ns == 0 ? 0 : start_at_unix_ns - NowRealtimeNs();
  if (ahead_ns > kMaxCommitAheadNs) {
    return absl::InvalidArgumentError(fmt::format(
        "start_at_unix_ns: {:.3f} s ahead of this agent's clock; at most {} s",
        static_cast<double>(ahead_ns) / 1e9, kMaxCommitAheadNs / 1000000000));
  }
  std::optional<RealtimeBoost> boost;  // from the sleep until the faults are applied
  if (ahead_ns > 0) boost.emplace();
  // Until the instant, on this agent's realtime clock, without the lock.
  if (ahead_ns > 0) SleepUntilRealtime(start_at_unix_ns);
  std::vector<Prepared> taken;
  std::vector<std::string> failures;
  {
    absl::MutexLock lock(&mu_);
    if (stopping_) return absl::UnavailableError("agent is shutting down");
    for (const std::string& id : ids) {
      auto it = prepared_.find(id);
      if (it == prepared_.end()) {
        failures.push_back(fmt::format("{}: forgotten before the start (its lease lapsed)", id));
        continue;
      }
      taken.push_back(std::move(it->second));
      prepared_.erase(it);
      ++applying_;  // its slot moves from prepared_ to applying_
    }
  }
  std::vector<v1::FaultRecord> applied;
  // The boost ends with the last fault's kernel work: the bookkeeping after it
  // (the ledger's fsync) runs at the ordinary priority, so on a crowded host
  // every agent's faults reach the kernel before any agent's bookkeeping.
  const std::function<void()> unboost = [&boost] { boost.reset(); };
  for (size_t i = 0; i < taken.size(); ++i) {
    Prepared& p = taken[i];
    const std::string id = p.record.id();
    auto record = ApplyAndAdopt(std::move(p.record), *p.handler, p.duration, start_at_unix_ns,
                                i + 1 == taken.size() ? unboost : std::function<void()>());
    if (!record.ok()) {
      failures.push_back(fmt::format("{}: {}", id, std::string(record.status().message())));
      continue;
    }
    applied.push_back(*std::move(record));
  }
  boost.reset();
  if (!failures.empty()) {
    return absl::FailedPreconditionError(fmt::format(
        "{} of {} faults not applied (the others are active): {}", failures.size(), ids.size(),
        absl::StrJoin(failures, "; ")));
  }
  return applied;
}

std::vector<FaultManager::Prepared> FaultManager::TakePreparedLocked(
    const std::string& lease_id, Clock::time_point lapsed_by) {
  std::vector<Prepared> taken;
  for (auto it = prepared_.begin(); it != prepared_.end();) {
    const Prepared& p = it->second;
    const bool held = lease_id.empty() || p.record.lease_id() == lease_id;
    if (!held || p.lease_expiry > lapsed_by) {
      ++it;
      continue;
    }
    taken.push_back(std::move(it->second));
    it = prepared_.erase(it);
  }
  if (!taken.empty()) wake_.SignalAll();
  return taken;
}

v1::FaultRecord FaultManager::ForgetPrepared(v1::FaultRecord record, const std::string& reason) {
  // Nothing was applied: forgetting the record is all there is to undo.
  if (spec::KindFor(record.spec().kind_case()).reversible) {
    absl::Status st = ledger_->Remove(record.id());
    if (!st.ok()) spdlog::warn("fault {}: {}", record.id(), std::string(st.message()));
  }
  record.set_state(v1::FAULT_STATE_REVERTED);
  record.set_reverted_unix_ns(NowRealtimeNs());
  record.set_reverted_mono_ns(NowMonotonicNs());
  record.set_revert_reason(reason);
  spdlog::info("prepared fault {} forgotten, never applied: {}", record.id(), reason);
  return record;
}

FaultManager::Claim FaultManager::ClaimLocked(ActiveFault& fault, std::string reason) {
  fault.set_busy(true);
  return Claim{std::move(reason), fault.record(), &fault.handler()};
}

absl::Status FaultManager::FinishRevertLocked(const Claim& claim, absl::Status result) {
  auto it = active_.find(claim.record.id());
  ActiveFault& fault = *it->second;
  fault.set_busy(false);
  wake_.SignalAll();
  if (!result.ok()) {
    ++revert_failures_;
    fault.RetryAt(Clock::now() + kRevertRetry);
    spdlog::error("fault {}: revert ({}) failed, retrying: {}", claim.record.id(), claim.reason,
                  std::string(result.message()));
    return result;
  }
  fault.Reverted(claim.record);
  active_.erase(it);
  return result;
}

std::vector<v1::FaultRecord> FaultManager::RevertClaimsLocked(std::vector<Claim> claims,
                                                             std::string* failures) {
  if (claims.empty()) return {};
  std::vector<absl::Status> results;
  mu_.Unlock();  // the kernel work and the ledger's fsync run without the lock
  for (Claim& c : claims) results.push_back(RevertRecord(*c.handler, c.reason, &c.record));
  mu_.Lock();
  std::vector<v1::FaultRecord> reverted;
  for (size_t i = 0; i < claims.size(); ++i) {
    absl::Status st = FinishRevertLocked(claims[i], results[i]);
    if (st.ok()) {
      reverted.push_back(std::move(claims[i].record));
    } else if (failures != nullptr) {
      *failures += fmt::format("\n  {}: {}", claims[i].record.id(), std::string(st.message()));
    }
  }
  return reverted;
}

ActiveFault* FaultManager::WaitIdleLocked(const std::string& id) {
  while (true) {
    auto it = active_.find(id);
    if (it == active_.end()) return nullptr;
    if (!it->second->busy()) return it->second.get();
    wake_.Wait(&mu_);
  }
}

absl::StatusOr<v1::FaultRecord> FaultManager::Revert(const std::string& id, const std::string& reason) {
  absl::MutexLock lock(&mu_);
  if (prepared_.contains(id)) {
    Prepared p = std::move(prepared_[id]);
    prepared_.erase(id);
    wake_.SignalAll();
    mu_.Unlock();  // the ledger's fsync runs without the lock
    v1::FaultRecord record = ForgetPrepared(std::move(p.record), reason);
    mu_.Lock();
    return record;
  }
  ActiveFault* fault = WaitIdleLocked(id);
  if (fault == nullptr) return absl::NotFoundError(fmt::format("id: no active fault \"{}\"", id));
  std::string failures;
  std::vector<v1::FaultRecord> reverted = RevertClaimsLocked({ClaimLocked(*fault, reason)}, &failures);
  if (reverted.empty()) return absl::InternalError(fmt::format("could not revert:{}", failures));
  return std::move(reverted.front());
}

absl::StatusOr<std::vector<v1::FaultRecord>> FaultManager::RevertAll(const std::string& lease_id,
                                                                     const std::string& reason) {
  // An abort, or a run's end: reverting comes before the host's ordinary work.
  RealtimeBoost boost;
  absl::MutexLock lock(&mu_);
  auto held = [&](const ActiveFault& f) { return lease_id.empty() || f.record().lease_id() == lease_id; };
  // A revert under way (the reaper's) ends first, so its record is answered below.
  for (bool waiting = true; waiting;) {
    waiting = false;
    for (const auto& [id, f] : active_) waiting = waiting || (held(*f) && f->busy());
    if (waiting) wake_.Wait(&mu_);
  }
  std::vector<Prepared> forget = TakePreparedLocked(lease_id);
  std::vector<Claim> claims;
  for (auto& [id, f] : active_) {
    if (held(*f)) claims.push_back(ClaimLocked(*f, reason));
  }
  std::vector<v1::FaultRecord> reverted;
  mu_.Unlock();
  for (Prepared& p : forget) reverted.push_back(ForgetPrepared(std::move(p.record), reason));
  mu_.Lock();
  // What the lease's faults did by themselves (deadline, lease) since: their
  // real revert times, for the caller's timeline.
  for (auto it = reverted_by_agent_.begin(); it != reverted_by_agent_.end();) {
    if (lease_id.empty() || it->lease_id() != lease_id) {
      ++it;
      continue;
    }
    reverted.push_back(std::move(*it));
    it = reverted_by_agent_.erase(it);
  }
  std::string failures;
  for (auto& r : RevertClaimsLocked(std::move(claims), &failures)) reverted.push_back(std::move(r));
  if (!failures.empty()) return absl::InternalError("some faults could not be reverted:" + failures);
  return reverted;
}

void FaultManager::KeepRevertedLocked(const v1::FaultRecord& record) {
  if (record.lease_id().empty()) return;
  reverted_by_agent_.push_back(record);
  while (reverted_by_agent_.size() > kKeptReverted) reverted_by_agent_.pop_front();
}

bool FaultManager::AnyBusyLocked() const {
  for (const auto& [id, f] : active_) {
    if (f->busy()) return true;
  }
  return false;
}

std::vector<v1::FaultRecord> FaultManager::List() const {
  absl::MutexLock lock(&mu_);
  while (AnyBusyLocked()) wake_.Wait(&mu_);
  std::vector<v1::FaultRecord> out;
  for (const auto& [id, p] : prepared_) out.push_back(p.record);
  for (const auto& [id, fault] : active_) out.push_back(fault->record());
  return out;
}

absl::StatusOr<int> FaultManager::RenewLease(const std::string& lease_id, int64_t ttl_ms) {
  if (lease_id.empty()) return absl::InvalidArgumentError("lease_id: required");
  RETURN_IF_ERROR(CheckLeaseTtl("ttl_ms", ttl_ms));
  int n = 0;
  {
    absl::MutexLock lock(&mu_);
    for (auto& [id, fault] : active_) {
      if (fault->record().lease_id() != lease_id) continue;
      fault->RenewLease(std::chrono::milliseconds(ttl_ms));
      ++n;
    }
    for (auto& [id, p] : prepared_) {
      if (p.record.lease_id() != lease_id) continue;
      p.lease_expiry = Clock::now() + std::chrono::milliseconds(ttl_ms);
      ++n;
    }
  }
  wake_.SignalAll();
  return n;
}

Clock::time_point FaultManager::NextCheckLocked() const {
  Clock::time_point next = Clock::time_point::max();
  for (const auto& [id, fault] : active_) {
    if (!fault->busy()) next = std::min(next, fault->NextCheck());
  }
  for (const auto& [id, p] : prepared_) next = std::min(next, p.lease_expiry);
  return next;
}

void FaultManager::ReapLocked() {
  const Clock::time_point now = Clock::now();
  std::vector<Prepared> lapsed = TakePreparedLocked("", now);
  std::vector<Claim> claims;
  for (auto& [id, f] : active_) {
    // A busy fault is being reverted by a caller already.
    if (const char* reason = f->busy() ? nullptr : DueReason(*f, now)) {
      claims.push_back(ClaimLocked(*f, reason));
    }
  }
  if (!lapsed.empty()) {
    mu_.Unlock();
    for (Prepared& p : lapsed) ForgetPrepared(std::move(p.record), "lease");
    mu_.Lock();
  }
  for (const auto& record : RevertClaimsLocked(std::move(claims), nullptr)) KeepRevertedLocked(record);
}

void FaultManager::ReaperLoop() {
  // Faults end at their deadline even on a saturated host (a busy service, a
  // fleet of agents ending together): the reaper's wake-ups and reverts run
  // before ordinary work. Its work is bounded: it sleeps until something is due.
  RealtimeBoost boost;
  absl::MutexLock lock(&mu_);
  while (!stopping_) {
    const Clock::time_point next = NextCheckLocked();
    if (next == Clock::time_point::max()) {
      wake_.Wait(&mu_);
    } else if (next > Clock::now()) {
      wake_.WaitWithTimeout(&mu_, absl::FromChrono(next - Clock::now()));
    }
    if (stopping_) break;
    ReapLocked();
  }
}

}  // namespace faultline::agent
