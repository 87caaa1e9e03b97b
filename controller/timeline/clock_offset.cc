#include "controller/timeline/clock_offset.h"

#include <fmt/format.h>

namespace faultline::timeline {

absl::StatusOr<ClockOffset> OffsetFromExchange(const ClockExchange& e) {
  if (e.t2_ns < e.t0_ns) {
    return absl::InvalidArgumentError(fmt::format(
        "t2: the reply ({} ns) came before the request ({} ns)", e.t2_ns, e.t0_ns));
  }
  const int64_t rtt = e.t2_ns - e.t0_ns;
  ClockOffset out;
  // t0 + rtt/2 avoids overflowing t0 + t2 with realtime nanoseconds.
  const int64_t midpoint = e.t0_ns + rtt / 2;
  out.offset_ns = e.t1_ns - midpoint;
  out.error_ns = (rtt + 1) / 2;
  out.rtt_ns = rtt;
  return out;
}

absl::StatusOr<ClockOffset> EstimateClockOffset(const std::vector<ClockExchange>& exchanges) {
  if (exchanges.empty()) {
    return absl::InvalidArgumentError("exchanges: at least one clock sample is needed");
  }
  ClockOffset best;
  bool have = false;
  for (size_t i = 0; i < exchanges.size(); ++i) {
    auto offset = OffsetFromExchange(exchanges[i]);
    if (!offset.ok()) {
      return absl::InvalidArgumentError(
          fmt::format("exchanges[{}]: {}", i, std::string(offset.status().message())));
    }
    if (!have || offset->rtt_ns < best.rtt_ns) {
      best = *offset;
      have = true;
    }
  }
  return best;
}

MappedTime ToControllerClock(int64_t agent_ns, const ClockOffset& offset) {
  return MappedTime{agent_ns - offset.offset_ns, offset.error_ns};
}

MappedTime ToAgentClock(int64_t controller_ns, const ClockOffset& offset) {
  return MappedTime{controller_ns + offset.offset_ns, offset.error_ns};
}

}  // namespace faultline::timeline
