// Clock offsets between the controller and an agent, estimated NTP-style, and
// the mapping of agent timestamps onto the controller's clock (DESIGN.md,
// "Timing model"). Pure functions, no I/O.
#ifndef FAULTLINE_CONTROLLER_TIMELINE_CLOCK_OFFSET_H_
#define FAULTLINE_CONTROLLER_TIMELINE_CLOCK_OFFSET_H_

#include <cstdint>
#include <vector>

#include "absl/status/statusor.h"

namespace faultline::timeline {

// One exchange: the controller reads its clock (t0), asks the agent for its
// clock (t1, e.g. InfoResponse.clock), and reads its clock again when the answer
// arrives (t2). All in ns; t0 and t2 on the controller's clock, t1 on the agent's
// clock of the same kind (realtime with realtime, monotonic with monotonic).
struct ClockExchange {
  int64_t t0_ns = 0;
  int64_t t1_ns = 0;
  int64_t t2_ns = 0;
};

// agent_clock = controller_clock + offset_ns, true within ± error_ns.
struct ClockOffset {
  int64_t offset_ns = 0;
  int64_t error_ns = 0;
  int64_t rtt_ns = 0;  // of the exchange used
};

// The offset of one exchange: offset = t1 - (t0 + t2) / 2, error = (t2 - t0) / 2
// rounded up (the agent read its clock somewhere between t0 and t2).
// INVALID_ARGUMENT when t2 < t0.
absl::StatusOr<ClockOffset> OffsetFromExchange(const ClockExchange& exchange);

// The best estimate from several exchanges: the one with the smallest round trip
// (the tightest bound). INVALID_ARGUMENT when `exchanges` is empty or one of them
// has t2 < t0 (named by index: "exchanges[2]: ...").
absl::StatusOr<ClockOffset> EstimateClockOffset(const std::vector<ClockExchange>& exchanges);

// A time on the controller's clock, true within ± error_ns.
struct MappedTime {
  int64_t ns = 0;
  int64_t error_ns = 0;
};

// Maps an agent timestamp onto the controller's clock: ns = agent_ns - offset,
// error = the offset's error.
MappedTime ToControllerClock(int64_t agent_ns, const ClockOffset& offset);

// Maps a controller time onto the agent's clock (e.g. to compare with ledger times).
MappedTime ToAgentClock(int64_t controller_ns, const ClockOffset& offset);

}  // namespace faultline::timeline

#endif  // FAULTLINE_CONTROLLER_TIMELINE_CLOCK_OFFSET_H_
