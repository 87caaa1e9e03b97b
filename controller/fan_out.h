// Fan-out: one function applied to every index of a set at once. The runner's
// phases talk to every agent concurrently (clock sync, prepare, commit, revert,
// lease renewals) with ForEachAsync: asynchronous gRPC calls started from one
// thread, no thread per agent. ForEachParallel runs blocking functions on a
// bounded set of worker threads.
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

// Tells ForEachAsync that one item has finished. Callable from any thread.
using AsyncDone = std::function<void()>;

// Calls start(i, done) for every i in [0, n), in index order on the caller's
// thread, with at most `max_in_flight` items unfinished at a time (0 = no
// limit), and returns once every item has finished. `start` begins item i's
// asynchronous work (e.g. AgentClient::InfoAsync, possibly a chain of calls)
// and must see to it that `done` is called exactly once when that work is
// over, from any thread (also from inside `start`). The work writes only its
// own slot of a vector sized `n` beforehand; the caller reads the slots after
// this returns (the return happens after every `done`). No threads are started
// here: on a 2-core machine, 200 threads blocked in one gRPC call each cost
// more than the calls themselves (scripts/bench, the fleet bench).
void ForEachAsync(size_t n, size_t max_in_flight,
                  const std::function<void(size_t, AsyncDone)>& start);

}  // namespace faultline::controller

#endif  // FAULTLINE_CONTROLLER_FAN_OUT_H_
