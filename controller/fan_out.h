// Fan-out: one function applied to every index of a set at once, on a bounded
// set of worker threads. The runner's phases use it to talk to every agent
// concurrently (clock sync, inject, revert, lease renewals).
#ifndef FAULTLINE_CONTROLLER_FAN_OUT_H_
#define FAULTLINE_CONTROLLER_FAN_OUT_H_

#include <cstddef>
#include <functional>

namespace faultline::controller {

// The most worker threads one ForEachParallel call starts, whatever it is asked.
inline constexpr size_t kMaxFanOut = 256;

// Calls fn(i) for every i in [0, n), at most `max_in_flight` calls at a time
// (0 = no limit: one worker per item, capped at kMaxFanOut), and returns when
// every call has returned. The workers are threads of this call only, started
// and joined here; with one worker (n == 1 or max_in_flight == 1) the calls run
// in index order on the caller's thread. Each index is passed exactly once; the
// order in which calls start is by index, the order in which they end is not.
// `fn` is called concurrently from several threads, so it must be thread-safe:
// have each call write only its own slot of a vector sized `n` beforehand, and
// take a lock for anything shared (the runner appends timeline events and
// report entries after this returns). `fn` must not throw.
void ForEachParallel(size_t n, size_t max_in_flight, const std::function<void(size_t)>& fn);

}  // namespace faultline::controller

#endif  // FAULTLINE_CONTROLLER_FAN_OUT_H_
