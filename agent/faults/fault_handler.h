// The interface every fault kind implements, and the context it runs in.
//
// The agent's FaultManager drives a handler through the ledger protocol
// (DESIGN.md, "The ledger and leases"):
//   spec::Validate(spec) -> Validate(spec, ctx) -> Plan(spec, &record)
//   -> ledger write (fsync) -> Apply(record) -> mark active ... -> Revert(record)
//   -> ledger removal.
// The spec's own rules live in spec/ and run once, before the handler sees the
// spec; a handler checks only what depends on this host (policy, pids).
// Plan() may read the host (pick pids, measure a filesystem) but changes
// nothing; it fills the record with everything Revert() needs. Apply() is
// all-or-nothing: if it fails part way, it undoes what it did before returning.
// Revert() works from the record alone (it also runs after an agent crash, in a
// new process), is idempotent, and tolerates a record whose Apply() never ran or
// ran only in part.
#ifndef FAULTLINE_AGENT_FAULTS_FAULT_HANDLER_H_
#define FAULTLINE_AGENT_FAULTS_FAULT_HANDLER_H_

#include <sys/types.h>

#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "faultline/v1/faults.pb.h"
#include "faultline/v1/policy.pb.h"
#include "spec/fault_spec.h"

namespace faultline::agent {

class ProcessTable;

// Shared, read-only context handed to every handler call. Owned by the
// FaultManager; outlives every handler.
struct FaultContext {
  const v1::Policy* policy = nullptr;
  ProcessTable* processes = nullptr;
  pid_t agent_pid = 0;
  // This agent's identity (Ledger::agent_id(), from its state folder): tags what
  // it leaves on shared filesystems so that its Sweep removes only its own.
  std::string agent_id;
  // Exempt from partition faults: the agent's own control endpoints and the
  // controller's address (host:port or unix paths, as configured).
  std::vector<std::string> control_addresses;
};

// One fault kind. Instances are owned by the FaultManager's registry and shared
// by all faults of that kind; implementations must be thread-safe (calls for
// different faults may run concurrently).
class FaultHandler {
 public:
  virtual ~FaultHandler() = default;

  // The kind this handler serves.
  virtual v1::FaultSpec::KindCase kind_case() const = 0;
  // Its name (spec::FaultKind::name, e.g. "pause") for policy, logs and
  // capabilities.
  std::string Kind() const { return spec::KindFor(kind_case()).name; }

  // Host and policy checks of a spec that passed spec::Validate (e.g. a name
  // the policy protects): PERMISSION_DENIED / INVALID_ARGUMENT naming the field.
  virtual absl::Status Validate(const v1::FaultSpec& /*spec*/, const FaultContext& /*ctx*/) const {
    return absl::OkStatus();
  }

  // Decides what Apply() will change and records it in `record` (processes,
  // disk_fill or net) and `record->target`. Changes nothing, may be slow (a
  // process scan, a slow filesystem): the manager runs it without its lock.
  // Returns a line per change for dry runs and preflight. FAILED_PRECONDITION
  // when the host cannot do it (e.g. no matching process, missing module).
  virtual absl::StatusOr<std::vector<std::string>> Plan(const v1::FaultSpec& spec,
                                                        const FaultContext& ctx,
                                                        v1::FaultRecord* record) const = 0;

  // Makes the change. May refine `record` (e.g. the bytes actually allocated);
  // the manager persists it again after success.
  virtual absl::Status Apply(v1::FaultRecord* record, const FaultContext& ctx) const = 0;

  // Undoes the change described by `record`. Idempotent.
  virtual absl::Status Revert(const v1::FaultRecord& record, const FaultContext& ctx) const = 0;

  // Removes tagged leftovers of this kind that no ledger record names (e.g. fill
  // files, qdiscs with our handle, our nftables table). Returns what it removed.
  virtual absl::StatusOr<std::vector<std::string>> Sweep(const FaultContext& /*ctx*/) const {
    return std::vector<std::string>{};
  }

  // Whether this host can inject the kind at all (kernel support, tools):
  // FAILED_PRECONDITION saying what is missing. Feeds Info's capabilities and
  // Preflight.
  virtual absl::Status HostSupports(const FaultContext& /*ctx*/) const { return absl::OkStatus(); }
};

}  // namespace faultline::agent

#endif  // FAULTLINE_AGENT_FAULTS_FAULT_HANDLER_H_
