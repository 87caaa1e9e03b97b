// The one home of every fault kind (DESIGN.md, "Faults"): the registry of
// kinds with their names, their CLI flags and their rules, and the one
// validation of a FaultSpec that the agent, `faultline validate` and the CLI
// all run. Pure: nothing here reads the host; host checks (policy, process
// table, interfaces) stay with the agent's handlers.
#ifndef FAULTLINE_SPEC_FAULT_SPEC_H_
#define FAULTLINE_SPEC_FAULT_SPEC_H_

#include <chrono>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "faultline/v1/experiment.pb.h"
#include "faultline/v1/faults.pb.h"

namespace faultline::spec {

// The longest a fault (and an experiment) may last. An agent's policy may set
// a lower `max_duration`.
inline constexpr std::chrono::hours kMaxFaultDuration{24};

// A command-line flag of a fault kind and the FaultSpec field it sets, as a
// path ("pause.process.name", "duration").
struct Flag {
  std::string name;    // without dashes: "process-name"
  std::string field;   // "pause.process.name"
  std::string help;
  bool repeated = false;
  bool is_switch = false;  // a bool field: the flag takes no value
};

// One fault kind. The registry holds one per kind; immutable, shared.
struct FaultKind {
  std::string name;    // "disk-fill": the CLI's and the policy's name
  std::string field;   // "disk_fill": the FaultSpec oneof member, the YAML key
  v1::FaultSpec::KindCase kind_case = v1::FaultSpec::KIND_NOT_SET;
  bool reversible = true;   // false for kill: an action with nothing to revert
  bool network = false;     // takes netns / netns_pid
  // Every flag of the kind, shared ones (duration, netns) included.
  std::vector<Flag> flags;
  // The kind's own rules; errors name the field relative to the kind's
  // message ("percent: ...", "process.cmdline: ...").
  absl::Status (*validate)(const v1::FaultSpec& spec) = nullptr;
};

// Every kind, in the order the CLI lists them.
const std::vector<FaultKind>& Kinds();
// "kill, pause, disk-fill, ...".
std::string KindNames();
// The kind of `spec`, or nullptr when no kind is set.
const FaultKind* KindOf(const v1::FaultSpec& spec);
// The kind of a oneof case; KIND_NOT_SET is a programming error (aborts).
const FaultKind& KindFor(v1::FaultSpec::KindCase kind_case);
// By name ("disk-fill") or field ("disk_fill"); nullptr when unknown.
const FaultKind* FindKind(const std::string& name);
// The kind's name, or "" when none is set (e.g. in a record read back).
std::string KindName(const v1::FaultSpec& spec);

// A spec that passed Validate.
struct Checked {
  const FaultKind* kind = nullptr;
  std::chrono::nanoseconds duration{0};  // 0 for actions
};

// The one validation of a FaultSpec: a kind is set; duration is given (> 0)
// for reversible kinds and absent for actions; netns fields only on network
// kinds; then the kind's rules. INVALID_ARGUMENT (PERMISSION_DENIED for a
// target no fault may touch) naming the field's path in FaultSpec, e.g.
// `disk_fill.percent: must be between 1 and 100, got 150`.
absl::StatusOr<Checked> Validate(const v1::FaultSpec& spec);

// `st` with its leading field named as a path in FaultSpec: a message that
// starts with a field of the kind's own message ("process.name: ...",
// "path: ...") gets the kind's prefix ("pause.process.name: ..."); others
// (duration, netns, already qualified) are returned as they are. For the
// host checks of the agent's handlers, which name fields of the kind.
absl::Status QualifyField(const FaultKind& kind, const absl::Status& st);

// The FaultSpec an experiment's `faults:` entry stands for (the same fields
// less `on`).
v1::FaultSpec FromExperimentFault(const v1::ExperimentFault& fault);

// Builds a spec of `kind` from flag values (the CLI). The values are text,
// converted exactly as the same fields of an experiment file are, so both
// accept the same spellings. INVALID_ARGUMENT naming the field.
absl::StatusOr<v1::FaultSpec> BuildFromFlags(
    const FaultKind& kind, const std::vector<std::pair<const Flag*, std::vector<std::string>>>& values);

// One line for people: `pause process.name=redis-server mode=all duration=30s`.
std::string Describe(const v1::FaultSpec& spec);

}  // namespace faultline::spec

#endif  // FAULTLINE_SPEC_FAULT_SPEC_H_
