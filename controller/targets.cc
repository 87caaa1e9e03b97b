#include "controller/targets.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>

namespace faultline::controller {

absl::StatusOr<std::vector<AgentRef>> ResolveSelector(const std::string& path,
                                                      const v1::TargetSelector& selector,
                                                      const std::vector<AgentRef>& agents,
                                                      std::mt19937_64& rng) {
  std::vector<AgentRef> matching;
  int unhealthy = 0;
  for (const AgentRef& a : agents) {
    bool match = true;
    for (const auto& [k, v] : selector.labels()) {
      auto it = a.labels.find(k);
      if (it == a.labels.end() || it->second != v) {
        match = false;
        break;
      }
    }
    if (match && !selector.names().empty()) {
      match = std::find(selector.names().begin(), selector.names().end(), a.name) !=
              selector.names().end();
    }
    if (!match) continue;
    if (!a.healthy) {
      ++unhealthy;
      continue;
    }
    matching.push_back(a);
  }
  // A stable order first, so a seeded pick is reproducible.
  std::sort(matching.begin(), matching.end(),
            [](const AgentRef& a, const AgentRef& b) { return a.name < b.name; });
  size_t want = matching.size();
  if (selector.count() > 0) {
    want = static_cast<size_t>(selector.count());
  } else if (selector.has_percent()) {
    want = static_cast<size_t>(
        std::max(1.0, std::ceil(static_cast<double>(matching.size()) * selector.percent() / 100)));
  }
  if (matching.empty() || matching.size() < want) {
    return absl::FailedPreconditionError(fmt::format(
        "{}: {} healthy agent(s) match, {} needed{}", path, matching.size(),
        std::max<size_t>(want, 1),
        unhealthy > 0 ? fmt::format(" ({} matching agent(s) unhealthy)", unhealthy) : ""));
  }
  std::shuffle(matching.begin(), matching.end(), rng);
  matching.resize(want);
  std::sort(matching.begin(), matching.end(),
            [](const AgentRef& a, const AgentRef& b) { return a.name < b.name; });
  return matching;
}

absl::StatusOr<std::map<std::string, std::vector<AgentRef>>> ResolveTargets(
    const v1::Experiment& exp, const std::vector<AgentRef>& agents, std::mt19937_64& rng) {
  std::map<std::string, std::vector<AgentRef>> out;
  std::string errors;
  // std::map order: resolution is deterministic for a given seed.
  std::map<std::string, v1::TargetSelector> sorted(exp.targets().begin(), exp.targets().end());
  for (const auto& [name, selector] : sorted) {
    auto picked = ResolveSelector("targets." + name, selector, agents, rng);
    if (!picked.ok()) {
      errors += (errors.empty() ? "" : "\n") + std::string(picked.status().message());
      continue;
    }
    out[name] = std::move(*picked);
  }
  if (!errors.empty()) return absl::FailedPreconditionError(errors);
  return out;
}

}  // namespace faultline::controller
