#include "agent/fault_manager.h"

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <time.h>

#include <algorithm>
#include <cerrno>
#include <mutex>
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
// How far ahead a Commit may ask to start (a coordinated start is chosen a few
// round trips ahead; anything longer is a mistake, and would hold a thread).
constexpr int64_t kMaxCommitAheadNs = 10'000'000'000;
// Leased faults the agent reverted by itself, kept for the lease holder's
// RevertAll (the oldest are dropped past this).
constexpr size_t kKeptReverted = 1024;
// How soon the reaper retries a revert that failed.
constexpr auto kRevertRetry = std::chrono::seconds(1);

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
  absl::MutexLock lock(&mu_);
  while (!prepared_.empty()) ForgetPreparedLocked(prepared_.begin()->first, "shutdown");
  active_.clear();  // each ActiveFault reverts itself
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
  record->set_revert_reason(reason);
  // The kernel change is undone; a failure to forget the record only means the
  // next start reverts it again, which is harmless.
  absl::Status st = ledger_->Remove(record->id());
  if (!st.ok()) spdlog::warn("fault {}: {}", record->id(), std::string(st.message()));
  spdlog::info("fault {} ({}) reverted: {}", record->id(), handler.Kind(), reason);
  return absl::OkStatus();
}

absl::StatusOr<std::vector<v1::FaultRecord>> FaultManager::Recover(std::vector<std::string>* swept) {
  absl::MutexLock lock(&mu_);
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
  if (!request.lease_id().empty() && request.lease_ttl_ms() < kMinLeaseTtlMs) {
    return absl::InvalidArgumentError(fmt::format(
        "lease_ttl_ms: must be at least {} with a lease, got {}", kMinLeaseTtlMs, request.lease_ttl_ms()));
  }
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
  const std::vector<std::string>& changes = *planned;

  v1::InjectResponse resp;
  for (const auto& c : changes) resp.add_changes(c);
  if (request.dry_run()) {
    *resp.mutable_fault() = record;
    return resp;
  }

  if (request.prepare_only()) return Prepare(std::move(record), handler, duration, std::move(resp));
  absl::ReleasableMutexLock lock(&mu_);
  if (stopping_) return absl::UnavailableError("agent is shutting down");
  ASSIGN_OR_RETURN(*resp.mutable_fault(), ApplyLocked(std::move(record), *handler, duration));
  lock.Release();
  wake_.SignalAll();
  return resp;
}

absl::StatusOr<v1::InjectResponse> FaultManager::Prepare(v1::FaultRecord record,
                                                         const FaultHandler* handler,
                                                         std::chrono::nanoseconds duration,
                                                         v1::InjectResponse resp) {
  if (record.lease_id().empty()) {
    return absl::InvalidArgumentError(
        "prepare_only: needs a lease_id (a prepared fault is forgotten when its lease lapses)");
  }
  absl::ReleasableMutexLock lock(&mu_);
  if (stopping_) return absl::UnavailableError("agent is shutting down");
  record.set_state(v1::FAULT_STATE_PREPARED);
  // Recorded before anything can be applied, as for an immediate inject.
  if (spec::KindFor(record.spec().kind_case()).reversible) RETURN_IF_ERROR(ledger_->Put(record));
  spdlog::info("fault {} ({}) prepared: {}", record.id(), handler->Kind(), record.target());
  *resp.mutable_fault() = record;
  const std::string id = record.id();
  const auto expiry = Clock::now() + std::chrono::milliseconds(record.lease_ttl_ms());
  prepared_[id] = Prepared{std::move(record), handler, duration, expiry};
  lock.Release();
  wake_.SignalAll();
  return resp;
}

absl::StatusOr<v1::FaultRecord> FaultManager::ApplyLocked(v1::FaultRecord record,
                                                          const FaultHandler& handler,
                                                          std::chrono::nanoseconds duration) {
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
  const Clock::time_point applied_at = Clock::now();
  record.set_injected_unix_ns(NowRealtimeNs());
  record.set_injected_mono_ns(NowMonotonicNs());
  RETURN_IF_ERROR(spec::QualifyField(kind, handler.Apply(&record, context_)));
  if (!reversible) {
    std::move(rollback).Cancel();
    record.set_state(v1::FAULT_STATE_DONE);
    spdlog::info("fault {} ({}) done: {}", record.id(), handler.Kind(), record.target());
    return record;
  }
  record.set_state(v1::FAULT_STATE_ACTIVE);
  record.set_deadline_unix_ns(record.injected_unix_ns() + duration.count());
  RETURN_IF_ERROR(ledger_->Put(record));
  std::move(rollback).Cancel();

  auto fault = std::make_unique<ActiveFault>(
      record, &handler, this, applied_at + std::chrono::duration_cast<Clock::duration>(duration));
  if (!record.lease_id().empty()) fault->RenewLease(std::chrono::milliseconds(record.lease_ttl_ms()));
  spdlog::info("fault {} ({}) active for {}: {}", record.id(), handler.Kind(),
               FormatDuration(duration), record.target());
  active_[record.id()] = std::move(fault);
  return record;
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
  // Until the instant, on this agent's realtime clock, without the lock.
  if (ahead_ns > 0) {
    const timespec at{static_cast<time_t>(start_at_unix_ns / 1000000000),
                      static_cast<long>(start_at_unix_ns % 1000000000)};
    while (clock_nanosleep(CLOCK_REALTIME, TIMER_ABSTIME, &at, nullptr) == EINTR) {
    }
  }
  std::vector<v1::FaultRecord> applied;
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
      Prepared p = std::move(it->second);
      prepared_.erase(it);
      auto record = ApplyLocked(std::move(p.record), *p.handler, p.duration);
      if (!record.ok()) {
        failures.push_back(fmt::format("{}: {}", id, std::string(record.status().message())));
        continue;
      }
      applied.push_back(*std::move(record));
    }
  }
  wake_.SignalAll();
  if (!failures.empty()) {
    return absl::FailedPreconditionError(fmt::format(
        "{} of {} faults not applied (the others are active): {}", failures.size(), ids.size(),
        absl::StrJoin(failures, "; ")));
  }
  return applied;
}

v1::FaultRecord FaultManager::ForgetPreparedLocked(const std::string& id, const std::string& reason) {
  auto it = prepared_.find(id);
  v1::FaultRecord record = std::move(it->second.record);
  prepared_.erase(it);
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

absl::Status FaultManager::RevertLocked(ActiveFault& fault, const std::string& reason) {
  absl::Status st = fault.Revert(reason);
  if (!st.ok()) {
    fault.RetryAt(Clock::now() + kRevertRetry);
    spdlog::error("fault {}: revert ({}) failed, retrying: {}", fault.record().id(), reason,
                  std::string(st.message()));
  }
  return st;
}

absl::StatusOr<v1::FaultRecord> FaultManager::Revert(const std::string& id, const std::string& reason) {
  absl::MutexLock lock(&mu_);
  if (prepared_.contains(id)) return ForgetPreparedLocked(id, reason);
  auto it = active_.find(id);
  if (it == active_.end()) {
    return absl::NotFoundError(fmt::format("id: no active fault \"{}\"", id));
  }
  RETURN_IF_ERROR(RevertLocked(*it->second, reason));
  v1::FaultRecord record = it->second->record();
  active_.erase(it);
  return record;
}

absl::StatusOr<std::vector<v1::FaultRecord>> FaultManager::RevertAll(const std::string& lease_id,
                                                                     const std::string& reason) {
  absl::MutexLock lock(&mu_);
  std::vector<v1::FaultRecord> reverted;
  std::string failures;
  std::vector<std::string> forget;
  for (const auto& [id, p] : prepared_) {
    if (lease_id.empty() || p.record.lease_id() == lease_id) forget.push_back(id);
  }
  for (const auto& id : forget) reverted.push_back(ForgetPreparedLocked(id, reason));
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
  for (auto it = active_.begin(); it != active_.end();) {
    if (!lease_id.empty() && it->second->record().lease_id() != lease_id) {
      ++it;
      continue;
    }
    absl::Status st = RevertLocked(*it->second, reason);
    if (!st.ok()) {
      failures += fmt::format("\n  {}: {}", it->first, std::string(st.message()));
      ++it;
      continue;
    }
    reverted.push_back(it->second->record());
    it = active_.erase(it);
  }
  if (!failures.empty()) return absl::InternalError("some faults could not be reverted:" + failures);
  return reverted;
}

void FaultManager::KeepRevertedLocked(const v1::FaultRecord& record) {
  if (record.lease_id().empty()) return;
  reverted_by_agent_.push_back(record);
  while (reverted_by_agent_.size() > kKeptReverted) reverted_by_agent_.pop_front();
}

std::vector<v1::FaultRecord> FaultManager::List() const {
  absl::MutexLock lock(&mu_);
  std::vector<v1::FaultRecord> out;
  for (const auto& [id, p] : prepared_) out.push_back(p.record);
  for (const auto& [id, fault] : active_) out.push_back(fault->record());
  return out;
}

absl::StatusOr<int> FaultManager::RenewLease(const std::string& lease_id, int64_t ttl_ms) {
  if (lease_id.empty()) return absl::InvalidArgumentError("lease_id: required");
  if (ttl_ms < kMinLeaseTtlMs) {
    return absl::InvalidArgumentError(
        fmt::format("ttl_ms: must be at least {}, got {}", kMinLeaseTtlMs, ttl_ms));
  }
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

void FaultManager::ReaperLoop() {
  absl::MutexLock lock(&mu_);
  while (!stopping_) {
    Clock::time_point next = Clock::time_point::max();
    for (const auto& [id, fault] : active_) next = std::min(next, fault->NextCheck());
    for (const auto& [id, p] : prepared_) next = std::min(next, p.lease_expiry);
    if (next == Clock::time_point::max()) {
      wake_.Wait(&mu_);
    } else {
      wake_.WaitWithTimeout(&mu_, absl::FromChrono(next - Clock::now()));
    }
    if (stopping_) break;
    const Clock::time_point now = Clock::now();
    std::vector<std::string> lapsed;
    for (const auto& [id, p] : prepared_) {
      if (p.lease_expiry <= now) lapsed.push_back(id);
    }
    for (const auto& id : lapsed) ForgetPreparedLocked(id, "lease");
    for (auto it = active_.begin(); it != active_.end();) {
      ActiveFault& f = *it->second;
      const char* reason = nullptr;
      if (f.deadline() <= now) reason = "deadline";
      else if (f.lease_expiry() <= now) reason = "lease";
      else if (f.NextCheck() <= now) reason = "retry";
      if (reason != nullptr && RevertLocked(f, reason).ok()) {
        KeepRevertedLocked(f.record());
        it = active_.erase(it);
      } else {
        ++it;
      }
    }
  }
}

}  // namespace faultline::agent
