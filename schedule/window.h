// Daily local-time windows ("09:00-17:00", "22:00-06:00") in which scheduled
// runs may start.
#ifndef FAULTLINE_SCHEDULE_WINDOW_H_
#define FAULTLINE_SCHEDULE_WINDOW_H_

#include <string>
#include <utility>

#include "absl/status/statusor.h"
#include "absl/time/civil_time.h"
#include "absl/time/time.h"

namespace faultline::schedule {

// The first instant after `t` at which the wall clock of `zone` shows `local`:
// its only instant, the first of a repeated time that is after `t` (else the
// second), or for a time skipped by a spring-forward the transition itself.
// May be <= t when the local time lies before `t`.
absl::Time FirstInstantAfter(absl::CivilSecond local, absl::TimeZone zone, absl::Time t);

// A daily window `HH:MM-HH:MM` in local wall-clock time: start inclusive, end
// exclusive; it crosses midnight when end < start ("22:00-06:00"); "24:00" is
// accepted as an end. Immutable value type held by its user (e.g.
// ScheduleTimes); const methods are safe to call from several threads.
class Window {
 public:
  // INVALID_ARGUMENT naming `window`, e.g. `window: "9-17" is not HH:MM-HH:MM`.
  static absl::StatusOr<Window> Parse(const std::string& text);

  // Whether the wall clock of `zone` at `t` is inside the window.
  bool Contains(absl::Time t, absl::TimeZone zone) const;
  // The first instant after `t` at which the window opens.
  absl::Time NextOpen(absl::Time t, absl::TimeZone zone) const;
  // For `t` inside the window: the instant that occurrence of the window closes.
  absl::Time CloseAfter(absl::Time t, absl::TimeZone zone) const;

  // Whether a local time of day (seconds after midnight) is inside.
  bool ContainsSecondOfDay(int second) const;

  bool crosses_midnight() const { return end_ < start_; }
  const std::string& text() const { return text_; }

 private:
  Window(std::string text, int start, int end)
      : text_(std::move(text)), start_(start), end_(end) {}

  std::string text_;
  int start_;  // seconds after local midnight
  int end_;    // seconds after local midnight, up to 86400
};

}  // namespace faultline::schedule

#endif  // FAULTLINE_SCHEDULE_WINDOW_H_
