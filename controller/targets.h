// Target resolution: an experiment's named selectors -> the agents they pick.
#ifndef FAULTLINE_CONTROLLER_TARGETS_H_
#define FAULTLINE_CONTROLLER_TARGETS_H_

#include <map>
#include <random>
#include <string>
#include <string_view>
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

// One requirement of a Kubernetes-style label selector.
struct LabelRequirement {
  enum class Op { kEquals, kNotEquals, kIn, kNotIn, kExists, kNotExists };
  std::string key;
  Op op = Op::kExists;
  std::vector<std::string> values;  // one for = and !=, one or more for in/notin
};

// Parses "zone in (a,b),role!=db,!canary": requirements separated by commas
// outside parentheses; `key=value`, `key==value`, `key!=value`, `key in (v,..)`,
// `key notin (v,..)`, `key`, `!key`. Keys and values match
// [A-Za-z0-9][A-Za-z0-9_./-]*; whitespace around tokens is allowed. An error
// (INVALID_ARGUMENT) reads `expected ")" after "zone in (a,b" at 12` (a 0-based
// offset into `text`).
absl::StatusOr<std::vector<LabelRequirement>> ParseLabelSelector(std::string_view text);

// Whether `labels` satisfy every requirement. `!=` and `notin` hold when the
// key is absent, as in Kubernetes.
bool Matches(const std::vector<LabelRequirement>& requirements,
             const std::map<std::string, std::string>& labels);

// The agents one selector picks among `agents`: healthy ones, not excluded,
// whose labels all match, that satisfy `selector` and (if names are given) whose
// name is listed; then `count` or `percent` (rounded up, at least 1) of them at
// random (from the selector's own `seed` if set, else `rng`), or all. `path`
// names the selector in errors (INVALID_ARGUMENT for a bad selector,
// FAILED_PRECONDITION when too few agents match). With `on_empty: skip` a
// selector that matches no healthy agent picks none.
absl::StatusOr<std::vector<AgentRef>> ResolveSelector(const std::string& path,
                                                      const v1::TargetSelector& selector,
                                                      const std::vector<AgentRef>& agents,
                                                      std::mt19937_64& rng);

// Every target of `exp`, by name. All problems in one status, one a line.
absl::StatusOr<std::map<std::string, std::vector<AgentRef>>> ResolveTargets(
    const v1::Experiment& exp, const std::vector<AgentRef>& agents, std::mt19937_64& rng);

}  // namespace faultline::controller

#endif  // FAULTLINE_CONTROLLER_TARGETS_H_
