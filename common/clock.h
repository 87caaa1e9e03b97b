// Clock readings used to stamp events (DESIGN.md, "Timing model").
#ifndef FAULTLINE_COMMON_CLOCK_H_
#define FAULTLINE_COMMON_CLOCK_H_

#include <time.h>

#include <cstdint>

namespace faultline {

inline int64_t ClockNs(clockid_t id) {
  timespec ts{};
  clock_gettime(id, &ts);
  return static_cast<int64_t>(ts.tv_sec) * 1000000000LL + ts.tv_nsec;
}
inline int64_t NowRealtimeNs() { return ClockNs(CLOCK_REALTIME); }
inline int64_t NowMonotonicNs() { return ClockNs(CLOCK_MONOTONIC); }

}  // namespace faultline

#endif  // FAULTLINE_COMMON_CLOCK_H_
