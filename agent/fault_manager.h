// The agent's fault engine: validates, plans, records, applies and reverts
// faults through their kind's FaultHandler, keeping the ledger in step, and
// reverts faults whose deadline passes or whose lease lapses.
#ifndef FAULTLINE_AGENT_FAULT_MANAGER_H_
#define FAULTLINE_AGENT_FAULT_MANAGER_H_

#include <algorithm>
#include <atomic>
#include <chrono>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "agent/faults/fault_handler.h"
#include "agent/ledger.h"
#include "faultline/v1/agent.pb.h"

namespace faultline::agent {

class FaultManager;

// One applied, reversible fault. Owned by the FaultManager; destroying it
// reverts it (reason "shutdown") unless it was reverted already. Revert() is
// idempotent. Not thread-safe: the manager reads and changes it under its
// mutex; the kernel work of a revert runs outside it, on a copy of the
// record, while the fault is marked busy (so no one else reverts it).
class ActiveFault {
 public:
  using Clock = std::chrono::steady_clock;

  ActiveFault(v1::FaultRecord record, const FaultHandler* handler, FaultManager* manager,
              Clock::time_point deadline);
  ~ActiveFault();
  ActiveFault(const ActiveFault&) = delete;
  ActiveFault& operator=(const ActiveFault&) = delete;

  // Undoes the fault and forgets its ledger record. On error the fault stays
  // active (and in the ledger) so that it can be retried.
  absl::Status Revert(const std::string& reason);
  // The fault was reverted elsewhere (a copy of its record, now `record`).
  void Reverted(v1::FaultRecord record) {
    record_ = std::move(record);
    reverted_ = true;
  }

  const v1::FaultRecord& record() const { return record_; }
  const FaultHandler& handler() const { return *handler_; }
  // A thread is reverting it, outside the manager's lock.
  bool busy() const { return busy_; }
  void set_busy(bool busy) { busy_ = busy; }
  Clock::time_point deadline() const { return deadline_; }
  // Clock::time_point::max() when the fault holds no lease.
  Clock::time_point lease_expiry() const { return lease_expiry_; }
  void RenewLease(std::chrono::milliseconds ttl) { lease_expiry_ = Clock::now() + ttl; }
  // Earliest moment the reaper must look at this fault: its deadline or lease
  // expiry, or after a failed revert, the retry time.
  Clock::time_point NextCheck() const {
    if (retry_at_ != Clock::time_point::max()) return retry_at_;
    return std::min(deadline_, lease_expiry_);
  }
  void RetryAt(Clock::time_point t) { retry_at_ = t; }

 private:
  v1::FaultRecord record_;
  const FaultHandler* handler_;
  FaultManager* manager_;
  Clock::time_point deadline_;
  Clock::time_point lease_expiry_ = Clock::time_point::max();
  Clock::time_point retry_at_ = Clock::time_point::max();
  bool reverted_ = false;
  bool busy_ = false;
};

// Owns the handlers, the ledger and every active fault. Thread-safe. One
// mutex guards the bookkeeping only (the active and prepared faults, their
// leases, the slots of faults being applied): validation and Plan (which may
// scan every process or wait on a slow filesystem), the ledger's fsyncs and
// the kernel work of apply and revert all run without it, so one caller's
// slow plan, fsync or apply never delays another fault's deadline, lease or
// revert. A fault being reverted is marked busy; whoever else wants to revert
// it waits for that revert (never for a plan). A reaper thread enforces
// deadlines and leases. Bounds: lease TTLs of 100 ms to 1 h, at most the
// policy's max_active_faults faults at once, durations up to its max_duration.
class FaultManager {
 public:
  FaultManager(std::unique_ptr<Ledger> ledger, std::vector<std::unique_ptr<FaultHandler>> handlers,
               FaultContext context);
  // Stops the reaper, waits for applies and reverts under way, and reverts
  // every active fault.
  ~FaultManager();

  // Start-up recovery, before Start(): reverts every record left in the
  // ledger (a previous agent died with them active), then sweeps tagged
  // leftovers (only this agent's own: FaultContext::agent_id) and lists, in
  // `swept`, the half-written ledger files Ledger::Open removed. Returns the
  // records it reverted; an error lists the ones that could not be reverted
  // (they stay in the ledger for the next attempt).
  absl::StatusOr<std::vector<v1::FaultRecord>> Recover(std::vector<std::string>* swept);

  // Starts the deadline/lease reaper thread.
  void Start();

  // Validates, plans and applies, without the lock; with
  // request.prepare_only, records the fault as PREPARED for a later Commit.
  // RESOURCE_EXHAUSTED naming max_active_faults when the agent holds as many
  // faults as its policy allows.
  absl::StatusOr<v1::InjectResponse> Inject(const v1::InjectRequest& request);
  // Applies prepared faults at start_at_unix_ns on this host's realtime clock
  // (0 = now; at most 10 s ahead), waiting for it without the lock. Each then
  // ends at its start + duration. NOT_FOUND for an id that is not prepared
  // (nothing applied); FAILED_PRECONDITION listing those that could not be
  // applied (the others are active).
  absl::StatusOr<std::vector<v1::FaultRecord>> Commit(const std::vector<std::string>& ids,
                                                      int64_t start_at_unix_ns);
  v1::PreflightResponse Preflight(const v1::FaultSpec& spec);
  absl::StatusOr<v1::FaultRecord> Revert(const std::string& id, const std::string& reason);
  // Reverts every fault (lease_id empty) or those held by lease_id. Faults that
  // fail to revert are left active and reported in the error. With a lease_id,
  // the answer also holds that lease's faults the agent reverted by itself
  // (deadline, lease) since the last such call, with their real revert times.
  absl::StatusOr<std::vector<v1::FaultRecord>> RevertAll(const std::string& lease_id,
                                                         const std::string& reason);
  // The prepared and active faults, once the reverts under way have ended
  // (a fault whose process was just resumed is no longer listed).
  std::vector<v1::FaultRecord> List() const;
  // Reverts that failed since start (each is retried; counted per attempt).
  uint64_t revert_failures() const { return revert_failures_.load(); }
  // Extends every fault held by lease_id; returns how many there are.
  absl::StatusOr<int> RenewLease(const std::string& lease_id, int64_t ttl_ms);
  // The kinds this host can inject (asked of the host at most every 10 s).
  std::vector<std::string> Capabilities() const;

  const FaultContext& context() const { return context_; }

  // Undoes `record` through `handler`, stamps it reverted with `reason` and
  // forgets its ledger entry. Shared by ActiveFault::Revert, the manager's
  // reverts and start-up recovery; runs without the lock (the caller owns
  // `record`: a busy fault's copy, or a record no one else holds).
  absl::Status RevertRecord(const FaultHandler& handler, const std::string& reason,
                            v1::FaultRecord* record);

 private:
  // A planned fault waiting for its Commit.
  struct Prepared {
    v1::FaultRecord record;
    const FaultHandler* handler = nullptr;
    std::chrono::nanoseconds duration{0};
    std::chrono::steady_clock::time_point lease_expiry;
  };
  // An active fault marked busy for a revert outside the lock: the copy of
  // its record the revert works on.
  struct Claim {
    std::string reason;
    v1::FaultRecord record;
    const FaultHandler* handler = nullptr;
  };
  // An applied fault's record and, for reversible kinds, its deadline.
  struct Applied {
    v1::FaultRecord record;
    std::chrono::steady_clock::time_point deadline;
  };

  const FaultHandler* HandlerFor(v1::FaultSpec::KindCase kind_case) const;
  // Validation shared by Inject and Preflight: the spec's rules (spec/), the
  // kind and duration allowed by the policy, the handler's host checks.
  absl::StatusOr<const FaultHandler*> Check(const v1::FaultSpec& spec,
                                            std::chrono::nanoseconds* duration) const;
  // UNAVAILABLE when stopping; RESOURCE_EXHAUSTED when another fault would
  // pass the policy's max_active_faults.
  absl::Status CheckRoomLocked() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Records a planned fault as prepared (InjectRequest.prepare_only).
  absl::StatusOr<v1::InjectResponse> Prepare(v1::FaultRecord record, const FaultHandler* handler,
                                             std::chrono::nanoseconds duration,
                                             v1::InjectResponse resp);
  // Ledger, apply (rolled back on failure); no lock. The fault ends
  // `duration` after it was applied, or after `start_at_unix_ns` (a
  // coordinated start's instant T, on this host's realtime clock) when set:
  // every agent of a coordinated start ends at T + duration, however late
  // its own apply came. `after_kernel`, when set, runs as soon as the
  // handler's kernel work returns (before the ledger's bookkeeping).
  absl::StatusOr<Applied> Apply(v1::FaultRecord record, const FaultHandler& handler,
                                std::chrono::nanoseconds duration, int64_t start_at_unix_ns,
                                const std::function<void()>& after_kernel = {});
  // Apply, then (under the lock) the active fault with its deadline and
  // lease, for reversible kinds. The caller reserved a slot (++applying_),
  // which this releases. Returns the record.
  absl::StatusOr<v1::FaultRecord> ApplyAndAdopt(v1::FaultRecord record, const FaultHandler& handler,
                                                std::chrono::nanoseconds duration,
                                                int64_t start_at_unix_ns = 0,
                                                const std::function<void()>& after_kernel = {})
      ABSL_LOCKS_EXCLUDED(mu_);
  // Marks `fault` busy and copies what its revert needs.
  static Claim ClaimLocked(ActiveFault& fault, std::string reason);
  // The end of a claimed revert: clears busy; on success forgets the fault,
  // on failure schedules a retry. Returns `result`.
  absl::Status FinishRevertLocked(const Claim& claim, absl::Status result)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Reverts claimed faults without the lock (released and taken again);
  // returns the records of those reverted, and the failures as text.
  std::vector<v1::FaultRecord> RevertClaimsLocked(std::vector<Claim> claims, std::string* failures)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // The active fault `id` once no revert is under way for it; nullptr when
  // there is none (or it was reverted meanwhile).
  ActiveFault* WaitIdleLocked(const std::string& id) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Keeps a leased fault the reaper reverted, for its lease's RevertAll.
  void KeepRevertedLocked(const v1::FaultRecord& record) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Takes the prepared faults held by lease_id (all when empty) or, with
  // lapsed_by, those whose lease lapsed by then, out of prepared_.
  std::vector<Prepared> TakePreparedLocked(const std::string& lease_id,
                                           std::chrono::steady_clock::time_point lapsed_by =
                                               std::chrono::steady_clock::time_point::max())
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Drops a prepared fault (nothing was applied) and its ledger record.
  v1::FaultRecord ForgetPrepared(v1::FaultRecord record, const std::string& reason);
  // One pass of the reaper: forgets lapsed prepared faults and reverts those
  // due (deadline, lease, retry), without the lock for the kernel work.
  void ReapLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Whether a fault is being applied or reverted outside the lock.
  bool AnyBusyLocked() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // When the reaper must look next.
  std::chrono::steady_clock::time_point NextCheckLocked() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void ReaperLoop();

  std::unique_ptr<Ledger> ledger_;  // Put/Remove of different ids may run concurrently
  const std::vector<std::unique_ptr<FaultHandler>> handlers_;
  const FaultContext context_;

  std::atomic<uint64_t> revert_failures_{0};
  mutable absl::Mutex mu_;
  // Signalled when active_, prepared_, a lease, a busy flag or applying_
  // changes, or on stop (the reaper and callers waiting for a revert wait on it).
  mutable absl::CondVar wake_;
  std::map<std::string, std::unique_ptr<ActiveFault>> active_ ABSL_GUARDED_BY(mu_);
  std::map<std::string, Prepared> prepared_ ABSL_GUARDED_BY(mu_);
  // Faults between their slot reservation and becoming active (or failing).
  int applying_ ABSL_GUARDED_BY(mu_) = 0;
  std::deque<v1::FaultRecord> reverted_by_agent_ ABSL_GUARDED_BY(mu_);  // see RevertAll
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;

  // Capabilities(), asked of the host at most every kCapabilitiesTtl: Info
  // answers it, and a controller's clock sync calls Info several times.
  static constexpr std::chrono::seconds kCapabilitiesTtl{10};
  mutable absl::Mutex capabilities_mu_;
  mutable std::vector<std::string> capabilities_ ABSL_GUARDED_BY(capabilities_mu_);
  mutable int64_t capabilities_at_ns_ ABSL_GUARDED_BY(capabilities_mu_) = 0;
  std::thread reaper_;
};

// A fresh fault id ("f" + 12 hex digits).
std::string NewFaultId();

}  // namespace faultline::agent

#endif  // FAULTLINE_AGENT_FAULT_MANAGER_H_
