// Target resolution: an experiment's named selectors -> the agents they pick.
#ifndef FAULTLINE_CONTROLLER_TARGETS_H_
#define FAULTLINE_CONTROLLER_TARGETS_H_

#include <map>
#include <random>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "faultline/v1/experiment.pb.h"

namespace faultline::controller {

// What target resolution needs to know about one registered agent.
struct AgentRef {
  std::string name;
  std::string address;
  std::map<std::string, std::string> labels;
  bool healthy = false;
};

// The agents one selector picks among `agents`: healthy ones whose labels all
// match and (if names are given) whose name is listed; then `count` or
// `percent` (rounded up, at least 1) of them at random, or all. `path` names the
// selector in errors (FAILED_PRECONDITION when too few agents match).
absl::StatusOr<std::vector<AgentRef>> ResolveSelector(const std::string& path,
                                                      const v1::TargetSelector& selector,
                                                      const std::vector<AgentRef>& agents,
                                                      std::mt19937_64& rng);

// Every target of `exp`, by name. All problems in one status, one a line.
absl::StatusOr<std::map<std::string, std::vector<AgentRef>>> ResolveTargets(
    const v1::Experiment& exp, const std::vector<AgentRef>& agents, std::mt19937_64& rng);

}  // namespace faultline::controller

#endif  // FAULTLINE_CONTROLLER_TARGETS_H_
