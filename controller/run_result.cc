#include "controller/run_result.h"

#include <fmt/format.h>

#include <algorithm>
#include <limits>

namespace faultline::controller {
namespace {
double Ms(int64_t ns) { return static_cast<double>(ns) / 1e6; }
}  // namespace

ClockOffset EstimateClockOffset(const std::vector<ClockExchange>& exchanges) {
  const ClockExchange* best = &exchanges.front();
  for (const auto& e : exchanges) {
    if (e.t2_ns - e.t0_ns < best->t2_ns - best->t0_ns) best = &e;
  }
  ClockOffset o;
  // (t0 + t2) / 2 without overflow.
  const int64_t mid = best->t0_ns + (best->t2_ns - best->t0_ns) / 2;
  o.offset_ns = best->t1_ns - mid;
  o.error_ns = (best->t2_ns - best->t0_ns + 1) / 2;
  return o;
}

ResultFigures ComputeResult(const ResultInputs& in) {
  ResultFigures r;
  int64_t max_interval = 0;
  for (const auto& p : in.probes) max_interval = std::max(max_interval, p.interval_ns);
  r.error_ms = Ms(max_interval + in.clock_error_ns);
  const int need = std::max(1, in.recovered_after);

  int64_t outage_start = std::numeric_limits<int64_t>::max();
  int64_t recovered = 0;
  // The uncertainty of an edge is the gap between the sample that saw it and
  // the one before (the nominal interval, unless the prober ran late).
  int64_t edge_gap = 0;
  auto gap_before = [](const ProbeSeries& p, size_t i) {
    return i == 0 ? p.interval_ns : p.samples[i].t_ns - p.samples[i - 1].t_ns;
  };
  bool all_recovered = true;
  for (const auto& p : in.probes) {
    size_t first_fail = p.samples.size();
    for (size_t i = 0; i < p.samples.size(); ++i) {
      if (p.samples[i].t_ns >= in.injected_ns && !p.samples[i].ok) {
        first_fail = i;
        break;
      }
    }
    if (first_fail == p.samples.size()) continue;
    outage_start = std::min(outage_start, p.samples[first_fail].t_ns);
    edge_gap = std::max(edge_gap, gap_before(p, first_fail));
    int run = 0;
    int64_t run_start = 0;
    size_t run_start_index = 0;
    bool probe_recovered = false;
    for (size_t i = first_fail + 1; i < p.samples.size(); ++i) {
      if (!p.samples[i].ok) {
        run = 0;
        continue;
      }
      if (run++ == 0) {
        run_start = p.samples[i].t_ns;
        run_start_index = i;
      }
      if (run >= need) {
        probe_recovered = true;
        break;
      }
    }
    if (probe_recovered) {
      recovered = std::max(recovered, run_start);
      edge_gap = std::max(edge_gap, gap_before(p, run_start_index));
    } else {
      all_recovered = false;
    }
  }

  const double rto_ms = Ms(in.rto_ns);
  if (outage_start == std::numeric_limits<int64_t>::max()) {
    r.recovered = true;
    r.recovered_during_fault = true;
    r.verdict = "pass";
    r.reason = "no probe failed during the fault";
    return r;
  }
  r.outage_observed = true;
  r.error_ms = Ms(std::max(max_interval, edge_gap) + in.clock_error_ns);
  r.outage_start_ns = outage_start;
  r.time_to_detect_ms = Ms(outage_start - in.injected_ns);
  if (!all_recovered) {
    int64_t last = outage_start;
    for (const auto& p : in.probes) {
      if (!p.samples.empty()) last = std::max(last, p.samples.back().t_ns);
    }
    r.outage_ms = Ms(last - outage_start);
    r.time_to_recover_ms = Ms(last - in.injected_ns);
    r.verdict = "fail";
    r.reason = fmt::format("the service did not recover (still failing {:.0f} ms after the fault)",
                           Ms(last - in.injected_ns));
    return r;
  }
  r.recovered = true;
  r.recovered_ns = recovered;
  r.outage_ms = Ms(recovered - outage_start);
  r.time_to_recover_ms = Ms(recovered - in.injected_ns);
  r.recovered_during_fault = recovered < in.fault_end_ns;
  if (!r.recovered_during_fault) {
    r.verdict = "fail";
    r.reason = "the service recovered only after the fault was reverted (no failover)";
  } else if (r.time_to_recover_ms > rto_ms) {
    r.verdict = "fail";
    r.reason = fmt::format("time to recover {:.0f} ms exceeds the RTO of {:.0f} ms",
                           r.time_to_recover_ms, rto_ms);
  } else {
    r.verdict = "pass";
    r.reason = fmt::format("recovered during the fault in {:.0f} ms (RTO {:.0f} ms)",
                           r.time_to_recover_ms, rto_ms);
  }
  return r;
}

}  // namespace faultline::controller
