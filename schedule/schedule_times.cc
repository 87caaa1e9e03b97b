#include "schedule/schedule_times.h"

#include <algorithm>
#include <string>

#include "absl/status/status.h"
#include "common/status_macros.h"
#include "fmt/format.h"

namespace faultline::schedule {
namespace {

// Each step of the window search moves to the window's next opening, about a
// day; this covers more than ten years.
constexpr int kMaxWindowSteps = 4000;
// Ticks walked to find the newest missed one (a second-long period over a
// day is 86400).
constexpr int kMaxScannedTicks = 1000000;

uint64_t Fnv1a(uint64_t hash, unsigned char byte) {
  return (hash ^ byte) * 0x100000001b3ULL;
}

uint64_t SplitMix64(uint64_t z) {
  z += 0x9e3779b97f4a7c15ULL;
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

std::string Format(absl::Duration d) { return absl::FormatDuration(d); }

}  // namespace

uint64_t JitterSeed(const std::string& name, absl::Time scheduled) {
  uint64_t hash = 0xcbf29ce484222325ULL;
  for (char c : name) hash = Fnv1a(hash, static_cast<unsigned char>(c));
  hash = Fnv1a(hash, 0);
  const auto nanos = static_cast<uint64_t>(absl::ToUnixNanos(scheduled));
  for (int i = 0; i < 8; ++i) hash = Fnv1a(hash, static_cast<unsigned char>(nanos >> (8 * i)));
  return SplitMix64(hash);
}

absl::Duration JitterOffset(const std::string& name, absl::Time scheduled, absl::Duration range) {
  const int64_t range_ns = absl::ToInt64Nanoseconds(range);
  if (range_ns <= 0) return absl::ZeroDuration();
  const uint64_t seed = JitterSeed(name, scheduled);
  return absl::Nanoseconds(static_cast<int64_t>(seed % static_cast<uint64_t>(range_ns)));
}

absl::StatusOr<ScheduleTimes> ScheduleTimes::Create(const ScheduleOptions& options) {
  ScheduleTimes times;
  times.name_ = options.name;
  times.every_ = options.every;
  times.anchor_ = options.anchor;
  times.jitter_ = options.jitter;
  ASSIGN_OR_RETURN(times.zone_, LoadZone(options.timezone));
  if (!options.cron.empty()) {
    ASSIGN_OR_RETURN(times.cron_, CronExpr::Parse(options.cron));
  }
  if (!options.window.empty()) {
    ASSIGN_OR_RETURN(times.window_, Window::Parse(options.window));
  }
  RETURN_IF_ERROR(times.Check());
  return times;
}

absl::Status ScheduleTimes::Check() const {
  if (cron_.has_value() == (every_ != absl::ZeroDuration())) {
    return absl::InvalidArgumentError("schedule: give exactly one of cron and every");
  }
  if (!cron_ && (every_ < absl::Seconds(1) || every_ == absl::InfiniteDuration())) {
    return absl::InvalidArgumentError(
        fmt::format("every: {} is outside 1s and up (a finite period)", Format(every_)));
  }
  if (!cron_ && (anchor_ == absl::InfinitePast() || anchor_ == absl::InfiniteFuture())) {
    return absl::InvalidArgumentError("every: the anchor (creation time) must be finite");
  }
  if (jitter_ < absl::ZeroDuration() || jitter_ == absl::InfiniteDuration()) {
    return absl::InvalidArgumentError(
        fmt::format("jitter: {} must be zero or a finite positive duration", Format(jitter_)));
  }
  if (!cron_ || !window_) return absl::OkStatus();
  for (int s = 0; s < 24 * 3600; s += 60) {
    if (cron_->MatchesTimeOfDay(s / 3600, s / 60 % 60) && window_->ContainsSecondOfDay(s)) {
      return absl::OkStatus();
    }
  }
  return absl::InvalidArgumentError(fmt::format(
      "window: no time of cron \"{}\" falls inside {}; it would never fire", cron_->text(),
      window_->text()));
}

absl::StatusOr<absl::Time> ScheduleTimes::RawNext(absl::Time after) const {
  if (cron_) return cron_->Next(after, zone_);
  if (after < anchor_) return anchor_ + every_;
  absl::Duration rest;
  const int64_t k = absl::IDivDuration(after - anchor_, every_, &rest) + 1;
  return anchor_ + k * every_;
}

// A tick outside the window moves the search to the window's next opening.
absl::StatusOr<absl::Time> ScheduleTimes::NextTick(absl::Time after) const {
  absl::Time t = after;
  for (int i = 0; i < kMaxWindowSteps; ++i) {
    ASSIGN_OR_RETURN(absl::Time tick, RawNext(t));
    if (!window_ || window_->Contains(tick, zone_)) return tick;
    t = window_->NextOpen(tick, zone_) - absl::Nanoseconds(1);
  }
  return absl::InvalidArgumentError(fmt::format(
      "window: no tick falls inside {} in {} openings; the schedule never fires",
      window_->text(), kMaxWindowSteps));
}

absl::Time ScheduleTimes::StartOf(absl::Time scheduled) const {
  absl::Duration range = jitter_;
  if (window_) range = std::min(range, window_->CloseAfter(scheduled, zone_) - scheduled);
  return scheduled + JitterOffset(name_, scheduled, range);
}

absl::StatusOr<Tick> ScheduleTimes::Next(absl::Time after) const {
  ASSIGN_OR_RETURN(absl::Time tick, NextTick(after));
  return Tick{tick, StartOf(tick)};
}

absl::StatusOr<MissedTicks> ScheduleTimes::Missed(absl::Time last_handled, absl::Time now,
                                                  int limit) const {
  MissedTicks missed;
  for (absl::Time t = last_handled; t < now;) {
    ASSIGN_OR_RETURN(absl::Time tick, NextTick(t));
    if (tick > now) break;
    if (static_cast<int>(missed.oldest.size()) >= limit) {
      missed.more = true;
      break;
    }
    missed.oldest.push_back(tick);
    t = tick;
  }
  if (!missed.more) {
    if (!missed.oldest.empty()) missed.latest = missed.oldest.back();
    return missed;
  }
  ASSIGN_OR_RETURN(missed.latest, Latest(last_handled, now));
  return missed;
}

// Walks the ticks of ever longer stretches before `now` until one has a tick,
// so a dense schedule far behind costs about one stretch of ticks.
absl::StatusOr<std::optional<absl::Time>> ScheduleTimes::Latest(absl::Time last_handled,
                                                                absl::Time now) const {
  int scanned = 0;
  for (absl::Duration span : {absl::Hours(1), absl::Hours(24), absl::Hours(24 * 32),
                              absl::Hours(24 * 400), absl::InfiniteDuration()}) {
    const absl::Time from = std::max(last_handled, now - span);
    std::optional<absl::Time> latest;
    for (absl::Time t = from; t < now && ++scanned <= kMaxScannedTicks;) {
      ASSIGN_OR_RETURN(absl::Time tick, NextTick(t));
      if (tick > now) break;
      latest = t = tick;
    }
    if (scanned > kMaxScannedTicks) {
      return absl::ResourceExhaustedError("schedule: too many missed ticks to find the newest");
    }
    if (latest || from == last_handled) return latest;
  }
  return std::nullopt;
}

}  // namespace faultline::schedule
