// Loading and checking the agent's policy file (--policy FILE).
#ifndef FAULTLINE_AGENT_POLICY_H_
#define FAULTLINE_AGENT_POLICY_H_

#include <chrono>
#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "faultline/v1/policy.pb.h"

namespace faultline::agent {

// Reads the YAML policy; `known_kinds` are the kinds this build has, so a typo
// in allowed_kinds is an error rather than a silent refusal later. An empty
// path gives the default policy (every kind allowed, nothing protected).
absl::StatusOr<v1::Policy> LoadPolicy(const std::string& path,
                                      const std::vector<std::string>& known_kinds);

// max_active_faults when the policy does not set it.
inline constexpr uint32_t kDefaultMaxActiveFaults = 256;

// The policy's max_active_faults, or the default.
uint32_t PolicyMaxActiveFaults(const v1::Policy& policy);

// The policy's max_duration, or spec::kMaxFaultDuration when it is empty;
// INVALID_ARGUMENT naming max_duration when it does not parse, is 0 or is
// longer than spec::kMaxFaultDuration.
absl::StatusOr<std::chrono::nanoseconds> PolicyMaxDuration(const v1::Policy& policy);

// Whether the policy lets this agent inject `kind`.
bool PolicyAllows(const v1::Policy& policy, const std::string& kind);

}  // namespace faultline::agent

#endif  // FAULTLINE_AGENT_POLICY_H_
