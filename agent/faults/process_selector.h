// Choosing the processes a kill or pause fault acts on, from FaultSpec.process
// and FaultSpec.mode/count/percent, with the guardrails every process fault
// shares (never pid 1, the agent, kernel threads, zombies, or the policy's
// protected names).
#ifndef FAULTLINE_AGENT_FAULTS_PROCESS_SELECTOR_H_
#define FAULTLINE_AGENT_FAULTS_PROCESS_SELECTOR_H_

#include <optional>
#include <random>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "agent/faults/fault_handler.h"
#include "agent/faults/process_table.h"
#include "faultline/v1/faults.pb.h"

namespace faultline::agent {

struct SelectionOptions {
  // Pause: a process that is already stopped (by someone else) is not ours to
  // stop, and resuming it at revert would undo someone else's SIGSTOP.
  bool exclude_stopped = false;
};

// The selection's rules are spec::ValidateSelection's (spec/process.h); this
// adds what depends on this agent, without reading the process table:
// PERMISSION_DENIED for an explicit pid of the agent, or a name the policy
// protects. process.cmdline is searched in the first 64 KiB of the
// space-joined cmdline, in linear time.
absl::Status ValidateProcessSelection(const v1::FaultSpec& spec, const FaultContext& ctx);

// Why `p` may never be a target, or nullopt. The reason reads after the pid:
// "is protected (init)", "is the agent itself", "is a kernel thread", ...
std::optional<std::string> ExclusionReason(const ProcessInfo& p, const FaultContext& ctx,
                                           const SelectionOptions& options);

// Reads ctx.processes and picks the targets (at random for modes
// one, count and percent), sorted by pid. FAILED_PRECONDITION when nothing
// matches; PERMISSION_DENIED when an explicit pid (pid or pidfile) is excluded.
// A count above the number of matches takes them all.
absl::StatusOr<std::vector<ProcessInfo>> SelectProcesses(const v1::FaultSpec& spec,
                                                         const FaultContext& ctx,
                                                         const SelectionOptions& options,
                                                         std::mt19937_64& rng);
// As above with a generator seeded from std::random_device.
absl::StatusOr<std::vector<ProcessInfo>> SelectProcesses(const v1::FaultSpec& spec,
                                                         const FaultContext& ctx,
                                                         const SelectionOptions& options = {});

// The selectors as text for messages: `name="redis-server" cgroup="/a"`.
std::string DescribeSelector(const v1::ProcessSelector& sel);

// "pid 123 (redis-server)" or "pids 12,13 (redis-server)" (the record's target).
std::string DescribeProcesses(const std::vector<v1::ProcessRef>& refs);

}  // namespace faultline::agent

#endif  // FAULTLINE_AGENT_FAULTS_PROCESS_SELECTOR_H_
