// When a schedule's ticks fall: cron or a fixed period, in an IANA zone, inside
// an optional daily window, each with a deterministic jittered start.
#ifndef FAULTLINE_SCHEDULE_SCHEDULE_TIMES_H_
#define FAULTLINE_SCHEDULE_SCHEDULE_TIMES_H_

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "schedule/cron.h"
#include "schedule/window.h"

namespace faultline::schedule {

// What `faultline schedule add` says about time. Exactly one of `cron` and
// `every` is set.
struct ScheduleOptions {
  // Every member has an initializer, so designated initializers may omit any.
  std::string name{};                            // seeds the jitter
  std::string cron{};                            // "0 10 * * 1-5", or empty
  absl::Duration every = absl::ZeroDuration();   // >= 1s, or zero
  absl::Time anchor{};                           // creation time (for `every`)
  std::string timezone{};                        // IANA name; empty = UTC
  std::string window{};                          // "HH:MM-HH:MM", or empty
  absl::Duration jitter = absl::ZeroDuration();  // >= 0
};

// One tick: `scheduled` is the schedule's own time (the run id comes from the
// schedule and it); `start` is when the run should begin (scheduled + jitter).
struct Tick {
  absl::Time scheduled;
  absl::Time start;
};

// Ticks in (last_handled, now]: at most `limit` of the oldest, whether there
// were more, and always the newest (for `--catch-up latest`).
struct MissedTicks {
  std::vector<absl::Time> oldest;
  bool more = false;
  std::optional<absl::Time> latest;
};

// The jitter seed: FNV-1a (64-bit) over the name's bytes, a zero byte and the
// scheduled time's Unix nanoseconds (8 bytes, little-endian), then mixed with
// splitmix64's finalizer. Our own arithmetic, not std::hash or absl::Hash
// (which differ between builds and processes), so a restarted or upgraded
// controller computes the same start for the same tick.
uint64_t JitterSeed(const std::string& name, absl::Time scheduled);

// Uniform in [0, range) at nanosecond resolution from JitterSeed; zero when
// range <= 0.
absl::Duration JitterOffset(const std::string& name, absl::Time scheduled, absl::Duration range);

// The times of one schedule: an immutable value built from ScheduleOptions,
// held by value by whoever runs the schedule (the controller's scheduler).
// Ticks are the cron's fire times (see CronExpr for DST days) or anchor +
// k·every for k >= 1 (the first tick is one period after creation); ticks
// whose local time is outside the window are not ticks at all. Start = tick +
// JitterOffset(name, tick, min(jitter, time until the window closes)), so a
// jittered start never leaves the window. Safe to share between threads.
class ScheduleTimes {
 public:
  // INVALID_ARGUMENT naming the field (`cron: ...`, `every: ...`,
  // `timezone: ...`, `window: ...`, `jitter: ...`), also when no tick can fall
  // inside the window.
  static absl::StatusOr<ScheduleTimes> Create(const ScheduleOptions& options);

  // The first tick strictly after `after`, with its start.
  absl::StatusOr<Tick> Next(absl::Time after) const;
  // The first tick strictly after `after`.
  absl::StatusOr<absl::Time> NextTick(absl::Time after) const;
  // The jittered start of a tick.
  absl::Time StartOf(absl::Time scheduled) const;
  // The ticks in (last_handled, now], bounded: at most `limit` listed, the
  // newest always given. The caller skips them (recording why) or runs the
  // newest. `last_handled` is the last handled tick, or the creation time for
  // a schedule that has not ticked yet (not InfinitePast).
  absl::StatusOr<MissedTicks> Missed(absl::Time last_handled, absl::Time now, int limit) const;

  absl::TimeZone zone() const { return zone_; }
  const std::optional<Window>& window() const { return window_; }

 private:
  ScheduleTimes() = default;
  absl::Status Check() const;
  absl::StatusOr<absl::Time> RawNext(absl::Time after) const;
  absl::StatusOr<std::optional<absl::Time>> Latest(absl::Time last_handled, absl::Time now) const;

  std::string name_;
  std::optional<CronExpr> cron_;
  absl::Duration every_;
  absl::Time anchor_;
  absl::TimeZone zone_;
  std::optional<Window> window_;
  absl::Duration jitter_;
};

}  // namespace faultline::schedule

#endif  // FAULTLINE_SCHEDULE_SCHEDULE_TIMES_H_
