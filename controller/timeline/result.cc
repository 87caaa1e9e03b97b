#include "controller/timeline/result.h"

#include <fmt/format.h>

#include <algorithm>
#include <utility>

namespace faultline::timeline {
namespace {

constexpr int64_t kNsPerMs = 1000000;

int64_t RoundMs(int64_t ns) {
  return ns >= 0 ? (ns + kNsPerMs / 2) / kNsPerMs : -((-ns + kNsPerMs / 2) / kNsPerMs);
}
int64_t CeilMs(int64_t ns) { return (ns + kNsPerMs - 1) / kNsPerMs; }

absl::Status Validate(const ResultInput& in) {
  if (in.probes.empty()) {
    return absl::InvalidArgumentError("probes: at least one probe is needed");
  }
  if (in.recovered_after < 1) {
    return absl::InvalidArgumentError(
        fmt::format("recovered_after: must be at least 1, got {}", in.recovered_after));
  }
  if (in.rto_ns < 0) {
    return absl::InvalidArgumentError(fmt::format("rto: must not be negative, got {} ns",
                                                  in.rto_ns));
  }
  if (in.injected_error_ns < 0) {
    return absl::InvalidArgumentError("injected_error_ns: must not be negative");
  }
  if (in.experiment_end_ns < in.injected_ns) {
    return absl::InvalidArgumentError(
        "experiment_end_ns: the experiment cannot end before the injection");
  }
  for (size_t i = 0; i < in.probes.size(); ++i) {
    if (in.probes[i].interval_ns <= 0) {
      return absl::InvalidArgumentError(fmt::format(
          "probes[{}].interval_ns: must be positive, got {}", i, in.probes[i].interval_ns));
    }
    if (in.probes[i].clock_error_ns < 0) {
      return absl::InvalidArgumentError(
          fmt::format("probes[{}].clock_error_ns: must not be negative", i));
    }
  }
  return absl::OkStatus();
}

// First failure after `injected` and the first run of `n` successes after it.
ProbeOutcome Analyze(const ProbeSeries& series, int64_t injected_ns, int n,
                     int64_t* last_sample_ns) {
  std::vector<ProbeObservation> samples;
  for (const ProbeObservation& s : series.samples) {
    if (s.time_ns >= injected_ns) samples.push_back(s);
  }
  std::stable_sort(samples.begin(), samples.end(),
                   [](const ProbeObservation& a, const ProbeObservation& b) {
                     return a.time_ns < b.time_ns;
                   });
  ProbeOutcome out;
  out.name = series.name;
  out.samples = static_cast<int64_t>(samples.size());
  int run = 0;
  int64_t run_start = 0;
  for (const ProbeObservation& s : samples) {
    *last_sample_ns = std::max(*last_sample_ns, s.time_ns);
    if (!s.ok) {
      ++out.failures;
      if (!out.failed) {
        out.failed = true;
        out.first_failure_ns = s.time_ns;
      }
      run = 0;
      continue;
    }
    if (!out.failed || out.recovered) continue;
    if (run++ == 0) run_start = s.time_ns;
    if (run >= n) {
      out.recovered = true;
      out.recovered_ns = run_start;
    }
  }
  return out;
}

}  // namespace

ProbeSeries MapProbeSeries(std::string name, int64_t interval_ns,
                           const std::vector<ProbeObservation>& agent_samples,
                           const ClockOffset& offset) {
  ProbeSeries series;
  series.name = std::move(name);
  series.interval_ns = interval_ns;
  series.clock_error_ns = offset.error_ns;
  series.samples.reserve(agent_samples.size());
  for (const ProbeObservation& s : agent_samples) {
    series.samples.push_back({ToControllerClock(s.time_ns, offset).ns, s.ok});
  }
  return series;
}

const char* VerdictName(Verdict verdict) {
  return verdict == Verdict::kPass ? "pass" : "fail";
}

absl::StatusOr<RunResult> ComputeResult(const ResultInput& in) {
  if (absl::Status s = Validate(in); !s.ok()) return s;
  RunResult r;
  r.rto_target_ms = RoundMs(in.rto_ns);

  // The fault is active until the earliest end among the faults: recovery
  // before that cannot be the revert's doing.
  r.fault_active_until_ns = in.experiment_end_ns;
  if (!in.faults.empty()) {
    int64_t until = INT64_MAX;
    for (const FaultWindow& f : in.faults) {
      const bool ends_with_experiment = f.is_action || f.reverted_ns <= 0;
      until = std::min(until, ends_with_experiment ? in.experiment_end_ns : f.reverted_ns);
    }
    r.fault_active_until_ns = until;
  }

  int64_t worst_probe_error = 0;
  int64_t last_sample_ns = in.injected_ns;
  std::string silent_probe;
  std::string unrecovered_probe;
  for (const ProbeSeries& series : in.probes) {
    worst_probe_error = std::max(worst_probe_error, series.interval_ns + series.clock_error_ns);
    ProbeOutcome o = Analyze(series, in.injected_ns, in.recovered_after, &last_sample_ns);
    if (o.samples == 0 && silent_probe.empty()) silent_probe = o.name;
    if (o.failed) {
      if (!r.outage_observed || o.first_failure_ns < r.outage_start_ns) {
        r.outage_start_ns = o.first_failure_ns;
      }
      r.outage_observed = true;
      if (!o.recovered && unrecovered_probe.empty()) unrecovered_probe = o.name;
      r.recovered_ns = std::max(r.recovered_ns, o.recovered ? o.recovered_ns : 0);
    }
    r.probes.push_back(std::move(o));
  }
  r.error_ms = CeilMs(worst_probe_error + in.injected_error_ns);

  if (!r.outage_observed) {
    // Nothing failed: the measured RTO is 0. A probe that sent nothing proves
    // nothing, though.
    if (!silent_probe.empty()) {
      r.verdict = Verdict::kFail;
      r.reason = fmt::format("probe {} sent no samples after the injection", silent_probe);
      return r;
    }
    r.recovered_ns = 0;
    r.verdict = Verdict::kPass;
    r.reason = "no probe failed: the service rode through the fault";
    return r;
  }

  r.time_to_detect_ms = RoundMs(r.outage_start_ns - in.injected_ns);
  if (!unrecovered_probe.empty()) {
    r.recovered = false;
    r.recovered_ns = 0;
    r.outage_ms = RoundMs(last_sample_ns - r.outage_start_ns);
    r.time_to_recover_ms = -1;
    r.verdict = Verdict::kFail;
    r.reason = fmt::format("probe {} never had {} consecutive successes after it failed",
                           unrecovered_probe, in.recovered_after);
    return r;
  }
  r.recovered = true;
  r.outage_ms = RoundMs(r.recovered_ns - r.outage_start_ns);
  r.time_to_recover_ms = RoundMs(r.recovered_ns - in.injected_ns);
  r.recovered_during_fault = r.recovered_ns < r.fault_active_until_ns;
  if (!r.recovered_during_fault) {
    r.verdict = Verdict::kFail;
    r.reason = "recovered only after the fault ended: no failover while it was active";
  } else if (in.rto_ns > 0 && r.recovered_ns - in.injected_ns > in.rto_ns) {
    r.verdict = Verdict::kFail;
    r.reason = fmt::format("time to recover {} ms exceeds the RTO of {} ms",
                           r.time_to_recover_ms, r.rto_target_ms);
  } else {
    r.verdict = Verdict::kPass;
    r.reason = in.rto_ns > 0 ? fmt::format("recovered during the fault in {} ms, within the "
                                           "RTO of {} ms",
                                           r.time_to_recover_ms, r.rto_target_ms)
                             : fmt::format("recovered during the fault in {} ms (no RTO set)",
                                           r.time_to_recover_ms);
  }
  return r;
}

}  // namespace faultline::timeline
