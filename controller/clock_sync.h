// Clock sync for a run: NTP-style Info exchanges with every agent involved,
// through a window of concurrent calls that adapts to the round trips it sees
// (docs/experiments.md, "Clocks"). A clock's error is half the round trip of
// its best exchange, so a sync that floods the fleet (and the controller's own
// cores) with calls measures every clock worse and needs more exchanges; one
// that asks agents one at a time is exact but slow on a fleet whose round trips
// are long. The window grows while round trips stay close to the best one seen
// and halves when they stretch (short ones only: a far agent's long round trip
// is distance, not crowding).
#ifndef FAULTLINE_CONTROLLER_CLOCK_SYNC_H_
#define FAULTLINE_CONTROLLER_CLOCK_SYNC_H_

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "controller/agent_client.h"
#include "controller/timeline/clock_offset.h"

namespace faultline::controller {

struct ClockSyncOptions {
  int exchanges = 5;                        // at most this many per agent
  size_t max_in_flight = 0;                 // the window's ceiling (0 = the agents' count)
  std::chrono::milliseconds timeout{2000};  // one Info call
  // A round trip this short is good whatever the fleet (the error is half of
  // it). The runner sets it from the experiment's finest probe interval.
  std::chrono::nanoseconds good_rtt{std::chrono::milliseconds(1)};
};

// One agent's result: its offset (or why there is none) and when it was known,
// on the controller's realtime clock.
struct ClockSyncResult {
  absl::StatusOr<timeline::ClockOffset> offset = absl::UnknownError("not synced");
  int64_t synced_ns = 0;
  int exchanges = 0;
};

// What the sync did as a whole, for the run's timeline and scripts/bench.
struct ClockSyncStats {
  size_t exchanges = 0;     // Info calls made (connects included)
  size_t connects = 0;      // first calls on channels not connected yet
  std::chrono::steady_clock::duration connect{0};  // until the last of those ended
  size_t widest = 0;        // the largest window used
  int64_t best_rtt_ns = 0;  // the shortest round trip seen
};

// Measures the clock of each agent `clients[i]`, at most `options.exchanges`
// measured Info calls each, stopping an agent's exchanges at the first round
// trip that is good: at most options.good_rtt, or at most 1.5 times the best
// round trip of the whole sync (a fleet far away cannot do better). A channel not connected
// yet first gets one call of its own, all of them at once (up to
// max_in_flight), before any measured one: a round trip holding a connect says
// nothing about the window (its sample still counts for the offset).
// Blocks until every agent is done; a failed call ends that agent's sync with
// its error. Thread-safe; no threads are started (asynchronous gRPC calls).
std::vector<ClockSyncResult> SyncClocks(const std::vector<std::shared_ptr<AgentClient>>& clients,
                                        const ClockSyncOptions& options,
                                        ClockSyncStats* stats = nullptr);

}  // namespace faultline::controller

#endif  // FAULTLINE_CONTROLLER_CLOCK_SYNC_H_
