#include "controller/blast_radius.h"

#include <fmt/format.h>

#include <cmath>
#include <set>

#include "absl/strings/str_join.h"

namespace faultline::controller {
namespace {

std::vector<std::string> Names(const std::vector<AgentRef>& agents) {
  std::set<std::string> names;
  for (const AgentRef& a : agents) names.insert(a.name);
  return {names.begin(), names.end()};
}

std::string List(const std::vector<std::string>& names) {
  constexpr size_t kListed = 10;
  std::vector<std::string> shown(names.begin(), names.begin() + std::min(names.size(), kListed));
  std::string out = absl::StrJoin(shown, ", ");
  if (names.size() > kListed) out += fmt::format(" and {} more", names.size() - kListed);
  return out;
}

}  // namespace

absl::StatusOr<std::pair<std::string, std::string>> ParseLabelFlag(const std::string& flag,
                                                                   const std::string& text) {
  const size_t eq = text.find('=');
  if (eq == std::string::npos || eq == 0) {
    return absl::InvalidArgumentError(fmt::format("{}: expected KEY=VALUE, got \"{}\"", flag, text));
  }
  return std::make_pair(text.substr(0, eq), text.substr(eq + 1));
}

absl::Status CheckBlastRadius(const v1::Limits& limits, const FleetLimits& fleet,
                              const RunFootprint& run) {
  const std::vector<std::string> affected = Names(run.affected);
  const size_t n = affected.size();
  const double percent =
      run.registered == 0 ? 0 : 100.0 * static_cast<double>(n) / static_cast<double>(run.registered);
  auto refuse = [&](const std::string& limit) {
    return absl::FailedPreconditionError(fmt::format(
        "{}: the run would take out {} of {} registered agents ({:.0f}%): {}", limit, n,
        run.registered, percent, List(affected)));
  };
  if (limits.max_agents() > 0 && n > static_cast<size_t>(limits.max_agents())) {
    return refuse(fmt::format("limits.max_agents {}", limits.max_agents()));
  }
  if (limits.has_max_percent() && percent > limits.max_percent() + 1e-9) {
    return refuse(fmt::format("limits.max_percent {:g}", limits.max_percent()));
  }
  if (fleet.max_fleet_percent > 0 && percent > fleet.max_fleet_percent + 1e-9) {
    return refuse(fmt::format("--max-fleet-percent {:g}", fleet.max_fleet_percent));
  }
  std::vector<std::string> protected_hit;
  for (const AgentRef& a : run.held) {
    for (const auto& [k, v] : fleet.protected_labels) {
      auto it = a.labels.find(k);
      if (it != a.labels.end() && it->second == v) protected_hit.push_back(fmt::format("{} ({}={})", a.name, k, v));
    }
  }
  if (!protected_hit.empty()) {
    std::set<std::string> unique(protected_hit.begin(), protected_hit.end());
    return absl::FailedPreconditionError(fmt::format(
        "--protected-label: the run would give faults to protected agents: {}",
        List({unique.begin(), unique.end()})));
  }
  return absl::OkStatus();
}

absl::Status FleetGuard::Admit(const std::string& run_id, const v1::Limits& limits,
                               const RunFootprint& run) {
  if (absl::Status st = CheckBlastRadius(limits, limits_, run); !st.ok()) return st;
  absl::MutexLock lock(&mu_);
  if (limits_.max_concurrent_runs > 0 &&
      runs_.size() >= static_cast<size_t>(limits_.max_concurrent_runs)) {
    // Which runs are in the way, and what this one wanted.
    std::map<std::string, std::vector<std::string>> held;  // run id -> agent names
    for (const auto& entry : runs_) held[entry.first];
    for (const auto& [agent, id] : holder_) held[id].push_back(agent);
    std::vector<std::string> in_the_way;
    for (const auto& [id, agents] : held) {
      in_the_way.push_back(fmt::format("{}: {}", id, agents.empty() ? "no agents" : List(agents)));
    }
    return absl::ResourceExhaustedError(fmt::format(
        "--max-concurrent-runs {}: {} runs hold agents now ({}); the run would hold {}",
        limits_.max_concurrent_runs, runs_.size(), absl::StrJoin(in_the_way, "; "),
        List(Names(run.held))));
  }
  std::vector<std::string> taken;
  for (const std::string& name : Names(run.held)) {
    auto it = holder_.find(name);
    if (it != holder_.end() && it->second != run_id) taken.push_back(fmt::format("{} (run {})", name, it->second));
  }
  if (!taken.empty()) {
    return absl::FailedPreconditionError(
        fmt::format("agents held by another run: {}", List(taken)));
  }
  for (const std::string& name : Names(run.held)) holder_[name] = run_id;
  runs_[run_id] = static_cast<int>(run.held.size());
  return absl::OkStatus();
}

void FleetGuard::Release(const std::string& run_id) {
  absl::MutexLock lock(&mu_);
  runs_.erase(run_id);
  for (auto it = holder_.begin(); it != holder_.end();) {
    it = it->second == run_id ? holder_.erase(it) : std::next(it);
  }
}

}  // namespace faultline::controller
