#include "controller/stop_conditions.h"

#include <fmt/format.h>

#include <algorithm>
#include <utility>

#include "common/units.h"

namespace faultline::controller {
namespace {

double Seconds(int64_t ns) { return static_cast<double>(ns) / 1e9; }

int64_t DurationNs(const std::string& text) {
  if (text.empty()) return 0;
  auto d = ParseDuration("duration", text);
  return d.ok() ? d->count() : 0;
}

}  // namespace

StopConditions::StopConditions(const v1::Experiment& exp) {
  for (int i = 0; i < exp.stop_when_size(); ++i) {
    const v1::StopCondition& s = exp.stop_when(i);
    Condition c;
    c.index = i;
    if (s.agents_lost() > 0) {
      c.kind = Condition::kAgentsLost;
      c.agents = s.agents_lost();
      conditions_.push_back(std::move(c));
      continue;
    }
    int probe = -1;
    for (int p = 0; p < exp.probes_size(); ++p) {
      if (exp.probes(p).name() == s.probe()) probe = p;
    }
    if (probe < 0) continue;
    c.probe = static_cast<size_t>(probe);
    c.probe_name = s.probe();
    if (!s.failing_for().empty()) {
      c.kind = Condition::kFailingFor;
      c.span_ns = DurationNs(s.failing_for());
    } else if (s.has_failure_ratio() && !s.window().empty()) {
      c.kind = Condition::kRatio;
      c.span_ns = DurationNs(s.window());
      c.ratio = s.failure_ratio();
      if (!(c.ratio > 0 && c.ratio <= 1)) continue;
    } else {
      continue;
    }
    if (c.span_ns <= 0) continue;
    conditions_.push_back(std::move(c));
  }
}

void StopConditions::Arm(int64_t since_ns) {
  armed_ = true;
  since_ns_ = since_ns;
}

std::optional<StopTrigger> StopConditions::Fire(const Condition& c, int64_t at_ns,
                                                std::string reason) {
  fired_ = StopTrigger{c.index, at_ns, std::move(reason)};
  armed_ = false;
  return fired_;
}

std::optional<StopTrigger> StopConditions::AddSample(size_t probe, int64_t time_ns, bool ok) {
  if (!armed_ || fired_ || time_ns < since_ns_) return std::nullopt;
  std::optional<StopTrigger> trigger;
  for (Condition& c : conditions_) {
    if (c.kind == Condition::kAgentsLost || c.probe != probe) continue;
    std::optional<StopTrigger> t =
        c.kind == Condition::kFailingFor ? CheckFailingFor(c, time_ns, ok) : CheckRatio(c, time_ns, ok);
    if (t && !trigger) trigger = std::move(t);
  }
  return trigger;
}

// Failing continuously: from the first failure stamped after the latest
// success to the latest failure, on the samples' own times (they may arrive a
// little out of order: a success is stamped when it completed).
std::optional<StopTrigger> StopConditions::CheckFailingFor(Condition& c, int64_t time_ns, bool ok) {
  if (ok) {
    if (time_ns <= c.last_ok_ns) return std::nullopt;
    c.last_ok_ns = time_ns;
    while (!c.failures.empty() && c.failures.front() <= time_ns) c.failures.pop_front();
    return std::nullopt;
  }
  if (time_ns <= c.last_ok_ns) return std::nullopt;
  c.failures.insert(std::upper_bound(c.failures.begin(), c.failures.end(), time_ns), time_ns);
  if (fired_ || c.failures.back() - c.failures.front() < c.span_ns) return std::nullopt;
  return Fire(c, c.failures.back(),
              fmt::format("stop_when[{}]: probe {} failing for {:.1f} s", c.index, c.probe_name,
                          Seconds(c.span_ns)));
}

// The failed share of the samples stamped in the last window (T - window, T],
// T the latest sample; only once the samples since arming span the window.
std::optional<StopTrigger> StopConditions::CheckRatio(Condition& c, int64_t time_ns, bool ok) {
  c.first_ns = std::min(c.first_ns, time_ns);
  const int64_t latest = c.window.empty() ? time_ns : std::max(c.window.back().time_ns, time_ns);
  const int64_t from = latest - c.span_ns;  // exclusive
  if (time_ns > from) {
    auto at = std::upper_bound(c.window.begin(), c.window.end(), time_ns,
                               [](int64_t t, const Sample& s) { return t < s.time_ns; });
    c.window.insert(at, Sample{time_ns, ok});
    if (!ok) ++c.window_failures;
  }
  while (!c.window.empty() && c.window.front().time_ns <= from) {
    if (!c.window.front().ok) --c.window_failures;
    c.window.pop_front();
  }
  if (fired_ || c.window.empty() || latest - c.first_ns < c.span_ns) return std::nullopt;
  const int64_t total = static_cast<int64_t>(c.window.size());
  if (static_cast<double>(c.window_failures) < c.ratio * static_cast<double>(total)) {
    return std::nullopt;
  }
  return Fire(c, latest,
              fmt::format("stop_when[{}]: probe {} failed {} of {} samples ({:.0f}%) in the last "
                          "{:.1f} s (failure_ratio {:g})",
                          c.index, c.probe_name, c.window_failures, total,
                          100.0 * static_cast<double>(c.window_failures) / static_cast<double>(total),
                          Seconds(c.span_ns), c.ratio));
}

std::optional<StopTrigger> StopConditions::AgentReachable(const std::string& agent, bool reachable,
                                                          int64_t now_ns, const std::string& why) {
  agents_[agent] = AgentState{reachable, why};
  if (!armed_ || fired_) return std::nullopt;
  std::vector<std::string> lost;
  for (const auto& [name, state] : agents_) {
    if (!state.reachable) {
      lost.push_back(state.why.empty() ? name : fmt::format("{} ({})", name, state.why));
    }
  }
  for (const Condition& c : conditions_) {
    if (c.kind != Condition::kAgentsLost || static_cast<int>(lost.size()) < c.agents) continue;
    return Fire(c, now_ns,
                fmt::format("stop_when[{}]: {} target agent{} lost: {}", c.index, lost.size(),
                            lost.size() == 1 ? "" : "s", fmt::join(lost, ", ")));
  }
  return std::nullopt;
}

}  // namespace faultline::controller
