#include "probes/probe_runner.h"

#include <fmt/format.h>
#include <sched.h>
#include <spdlog/spdlog.h>
#include <time.h>

#include <cerrno>
#include <cstring>
#include <memory>

#include "probes/probe.h"
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

// Intervals this short cannot absorb the few ms of wake-up delay a busy host
// adds to an ordinary thread, so the loop's thread runs SCHED_FIFO (lowest RT
// priority) while it loops. SCHED_RESET_ON_FORK keeps commands of exec probes
// and threads started from here at normal priority. Without the privilege
// (CAP_SYS_NICE) the loop runs as it is. Restores the thread's policy on exit.
constexpr int64_t kRealtimeBelowNs = 100'000'000;
constexpr int64_t kCancelPollNs = 100'000'000;

class RealtimeScope {
 public:
  RealtimeScope() {
    old_policy_ = sched_getscheduler(0);
    if (old_policy_ < 0 || sched_getparam(0, &old_param_) != 0) return;
    if ((old_policy_ & ~SCHED_RESET_ON_FORK) != SCHED_OTHER) return;  // leave RT callers be
    sched_param param{};
    param.sched_priority = sched_get_priority_min(SCHED_FIFO);
    if (sched_setscheduler(0, SCHED_FIFO | SCHED_RESET_ON_FORK, &param) == 0) {
      raised_ = true;
    } else {
      spdlog::debug("probe loop stays at normal priority: sched_setscheduler: {}",
                    std::strerror(errno));
    }
  }
  ~RealtimeScope() {
    if (raised_) sched_setscheduler(0, old_policy_, &old_param_);
  }
  RealtimeScope(const RealtimeScope&) = delete;
  RealtimeScope& operator=(const RealtimeScope&) = delete;

 private:
  int old_policy_ = -1;
  sched_param old_param_{};
  bool raised_ = false;
};

}  // namespace

absl::Status RunProbeLoop(const v1::ProbeSpec& spec, int64_t max_samples,
                          const std::function<bool(const v1::ProbeSample&)>& emit) {
  return RunProbeLoop(spec, max_samples, emit, nullptr);
}

absl::Status RunProbeLoop(const v1::ProbeSpec& spec, int64_t max_samples,
                          const std::function<bool(const v1::ProbeSample&)>& emit,
                          const std::function<bool()>& cancelled, const ExecPolicy& exec) {
  if (max_samples < 0) {
    return absl::InvalidArgumentError(
        fmt::format("max_samples: must not be negative, got {}", max_samples));
  }
  ASSIGN_OR_RETURN(ProbeTiming timing, ParseProbeTiming(spec));
  ASSIGN_OR_RETURN(std::unique_ptr<Probe> probe, MakeProbe(spec, exec));
  const int64_t interval_ns = timing.interval.count();
  std::unique_ptr<RealtimeScope> realtime;
  if (interval_ns < kRealtimeBelowNs) realtime = std::make_unique<RealtimeScope>();
  const int64_t t0 = NowMonotonicNs();
  int64_t slot = 0;
  for (int64_t seq = 0; max_samples == 0 || seq < max_samples; ++seq) {
    const int64_t slot_start = t0 + slot * interval_ns;
    if (cancelled) {
      // Wake up now and then to notice a cancelled caller; the last sleep is
      // still to the slot's absolute time.
      bool stop = cancelled();
      for (int64_t now = NowMonotonicNs(); !stop && now + kCancelPollNs < slot_start;
           now = NowMonotonicNs()) {
        SleepUntilMonotonic(now + kCancelPollNs);
        stop = cancelled();
      }
      if (stop) break;
    }
    SleepUntilMonotonic(slot_start);
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
