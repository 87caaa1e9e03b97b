#include "agent/policy.h"

#include <fmt/format.h>

#include <algorithm>

#include "common/status_macros.h"
#include "common/units.h"
#include "common/yaml_proto.h"
#include "probes/exec_policy.h"
#include "spec/fault_spec.h"
#include "spec/net.h"

namespace faultline::agent {
namespace {

// Each disk_fill_ceilings entry: an absolute mount and a max_percent in (0, 100].
void CheckCeilings(const v1::Policy& policy, std::vector<std::string>* problems) {
  for (int i = 0; i < policy.disk_fill_ceilings_size(); ++i) {
    const v1::DiskFillCeiling& c = policy.disk_fill_ceilings(i);
    if (c.mount().empty()) {
      problems->push_back(fmt::format(
          "disk_fill_ceilings[{}].mount: required (an absolute path on the filesystem, e.g. /)", i));
    } else if (c.mount()[0] != '/') {
      problems->push_back(fmt::format(
          "disk_fill_ceilings[{}].mount: must be an absolute path, got \"{}\"", i,
          c.mount().substr(0, 256)));
    }
    // Written so that NaN fails too.
    if (!(c.max_percent() > 0 && c.max_percent() <= 100)) {
      problems->push_back(fmt::format(
          "disk_fill_ceilings[{}].max_percent: must be more than 0 and at most 100, got {}", i,
          c.max_percent()));
    }
  }
}

}  // namespace

absl::StatusOr<v1::Policy> LoadPolicy(const std::string& path,
                                      const std::vector<std::string>& known_kinds) {
  v1::Policy policy;
  if (path.empty()) return policy;
  absl::Status st = YamlFileToMessage(path, &policy);
  if (!st.ok()) {
    return absl::InvalidArgumentError(fmt::format("--policy: {}", std::string(st.message())));
  }
  std::vector<std::string> problems;
  for (int i = 0; i < policy.allowed_kinds_size(); ++i) {
    const std::string& k = policy.allowed_kinds(i);
    if (std::find(known_kinds.begin(), known_kinds.end(), k) == known_kinds.end()) {
      problems.push_back(fmt::format("allowed_kinds[{}]: unknown fault kind \"{}\"", i, k));
    }
  }
  CheckCeilings(policy, &problems);
  for (int i = 0; i < policy.protected_processes_size(); ++i) {
    const std::string& name = policy.protected_processes(i);
    // The kernel keeps 15 bytes of a process name (comm): a longer one never
    // matches, which would protect nothing, silently.
    if (name.empty() || name.size() > 15) {
      problems.push_back(fmt::format(
          "protected_processes[{}]: a process name (comm) of 1 to 15 characters, got \"{}\"{}", i,
          name.substr(0, 64), name.size() > 15 ? " (the kernel keeps 15: it would never match)" : ""));
    }
  }
  for (int i = 0; i < policy.protected_cidrs_size(); ++i) {
    auto cidr = spec::ParseCidr(fmt::format("protected_cidrs[{}]", i), policy.protected_cidrs(i));
    if (!cidr.ok()) problems.push_back(std::string(cidr.status().message()));
  }
  if (auto exec = ExecPolicy::FromProto(policy.exec(), "exec"); !exec.ok()) {
    problems.push_back(std::string(exec.status().message()));
  }
  if (auto max = PolicyMaxDuration(policy); !max.ok()) {
    problems.push_back(std::string(max.status().message()));
  }
  if (!problems.empty()) {
    std::string msg = fmt::format("--policy: {}:", path);
    for (const auto& p : problems) msg += " " + p + ";";
    msg.pop_back();
    return absl::InvalidArgumentError(msg);
  }
  return policy;
}

uint32_t PolicyMaxActiveFaults(const v1::Policy& policy) {
  return policy.max_active_faults() == 0 ? kDefaultMaxActiveFaults : policy.max_active_faults();
}

absl::StatusOr<std::chrono::nanoseconds> PolicyMaxDuration(const v1::Policy& policy) {
  if (policy.max_duration().empty()) return spec::kMaxFaultDuration;
  ASSIGN_OR_RETURN(const std::chrono::nanoseconds max,
                   ParseDuration("max_duration", policy.max_duration()));
  if (max <= std::chrono::nanoseconds::zero() || max > spec::kMaxFaultDuration) {
    return absl::InvalidArgumentError(fmt::format(
        "max_duration: must be above 0 and at most {}, got {}",
        FormatDuration(spec::kMaxFaultDuration), policy.max_duration()));
  }
  return max;
}

bool PolicyAllows(const v1::Policy& policy, const std::string& kind) {
  if (policy.allowed_kinds_size() == 0) return true;
  return std::find(policy.allowed_kinds().begin(), policy.allowed_kinds().end(), kind) !=
         policy.allowed_kinds().end();
}

}  // namespace faultline::agent
