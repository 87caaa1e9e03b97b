#include "agent/probes/probe_runner.h"

#include <fmt/format.h>
#include <time.h>

#include <cerrno>
#include <memory>

#include "agent/probes/probe.h"
#include "common/clock.h"
#include "common/status_macros.h"

namespace faultline {
namespace {

void SleepUntilMonotonic(int64_t when_ns) {
  timespec ts{};
  ts.tv_sec = static_cast<time_t>(when_ns / 1000000000LL);
  ts.tv_nsec = static_cast<long>(when_ns % 1000000000LL);
  while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, nullptr) == EINTR) {
  }
}

}  // namespace

absl::Status RunProbeLoop(const v1::ProbeSpec& spec, int64_t max_samples,
                          const std::function<bool(const v1::ProbeSample&)>& emit) {
  if (max_samples < 0) {
    return absl::InvalidArgumentError(
        fmt::format("max_samples: must not be negative, got {}", max_samples));
  }
  ASSIGN_OR_RETURN(ProbeTiming timing, ParseProbeTiming(spec));
  ASSIGN_OR_RETURN(std::unique_ptr<Probe> probe, MakeProbe(spec));
  const int64_t interval_ns = timing.interval.count();
  const int64_t t0 = NowMonotonicNs();
  int64_t slot = 0;
  for (int64_t seq = 0; max_samples == 0 || seq < max_samples; ++seq) {
    SleepUntilMonotonic(t0 + slot * interval_ns);
    v1::ProbeSample sample;
    sample.set_seq(seq);
    const int64_t start_mono = NowMonotonicNs();
    sample.set_start_unix_ns(NowRealtimeNs());
    sample.set_start_mono_ns(start_mono);
    ProbeResult result = probe->Check(timing.timeout);
    const int64_t end_mono = NowMonotonicNs();
    sample.set_ok(result.ok);
    sample.set_latency_ns(end_mono - start_mono);
    if (!result.ok) sample.set_error(result.error.empty() ? "failed" : result.error);
    if (!emit(sample)) break;

    // Next slot; if the check (or emit) ran past it by more than half an
    // interval, that slot is missed: skip to the first slot still ahead, keeping
    // the samples on the t0 + k*interval grid.
    ++slot;
    const int64_t now = NowMonotonicNs();
    if (now > t0 + slot * interval_ns + interval_ns / 2) {
      slot = (now - t0 + interval_ns - 1) / interval_ns;
    }
  }
  return absl::OkStatus();
}

}  // namespace faultline
