// Cron expressions (5 fields, Vixie/cronie dialect) and the next time one
// fires in an IANA time zone, with cronie's rules on daylight-saving days.
#ifndef FAULTLINE_SCHEDULE_CRON_H_
#define FAULTLINE_SCHEDULE_CRON_H_

#include <bitset>
#include <optional>
#include <string>

#include "absl/status/statusor.h"
#include "absl/time/civil_time.h"
#include "absl/time/time.h"

namespace faultline::schedule {

// Loads an IANA zone ("Europe/Berlin", "UTC") from the system's tzdata. An
// empty name is UTC. INVALID_ARGUMENT `timezone: unknown time zone "X"` for a
// name tzdata does not have or one that is not a plain zone name.
absl::StatusOr<absl::TimeZone> LoadZone(const std::string& name);

// A parsed cron expression: "minute hour day-of-month month day-of-week".
//
// Syntax per field: `*`, numbers, lists `a,b`, ranges `a-b`, steps `*/n`,
// `a-b/n` and `a/n` (= a to the field's maximum, step n). Months JAN-DEC and
// days SUN-SAT by name, any case; day-of-week 0 and 7 are both Sunday
// (`FRI-SUN` is Friday to Sunday). Also @yearly, @annually, @monthly, @weekly,
// @daily, @midnight, @hourly.
//
// Day rule (Vixie/cronie): when neither day field starts with `*`, a day matches
// if EITHER field matches; otherwise both must (so `*/2` in one day field
// counts as unrestricted for this rule, as in cronie and crontab.guru).
//
// Daylight-saving rule (cronie): a *fixed-time* expression (neither the minute
// nor the hour field starts with `*`) whose local time falls into a spring-
// forward gap fires once, at the first instant after the gap; at a fall-back it
// fires only at the first occurrence of a repeated local time. A *wildcard*
// expression (minute or hour starts with `*`, e.g. `*/15 * * * *`, `0 * * * *`)
// follows elapsed time: it does not fire for local times inside a gap and does
// fire again in the repeated hour.
//
// Parse rejects expressions that can never fire (`0 0 30 2 *`). Immutable value
// type held by its user (e.g. ScheduleTimes); copies are independent; const
// methods are safe to call from several threads.
class CronExpr {
 public:
  // INVALID_ARGUMENT naming the field, e.g. `cron: hour: 25 is outside 0-23`.
  static absl::StatusOr<CronExpr> Parse(const std::string& text);

  // The first fire time strictly after `after`, local times read in `zone`.
  // Bounded search (about ten years ahead); INVALID_ARGUMENT "never fires"
  // when nothing is found within it.
  absl::StatusOr<absl::Time> Next(absl::Time after, absl::TimeZone zone) const;

  // Whether the local civil minute matches all fields (no DST rules applied).
  bool Matches(absl::CivilMinute minute) const;

  // Whether the minute and hour fields allow this local time of day.
  bool MatchesTimeOfDay(int hour, int minute) const {
    return hours_[static_cast<size_t>(hour)] && minutes_[static_cast<size_t>(minute)];
  }

  // True when neither the minute nor the hour field starts with `*`.
  bool fixed_time() const { return !minute_star_ && !hour_star_; }
  const std::string& text() const { return text_; }

 private:
  CronExpr() = default;
  absl::Status ParseFields(const std::string& text);
  bool DayMatches(absl::CivilDay day) const;
  // First matching civil minute in [from, limit), if any.
  std::optional<absl::CivilMinute> FirstMatch(absl::CivilMinute from,
                                              absl::CivilMinute limit) const;
  // First fire time in the constant-offset stretch [start, end) of `zone`
  // that is after `after`.
  std::optional<absl::Time> NextInSegment(absl::Time after, absl::Time start,
                                          absl::CivilSecond civil_end,
                                          absl::TimeZone zone) const;
  absl::Status CheckCanFire() const;

  std::string text_;
  std::bitset<60> minutes_;
  std::bitset<24> hours_;
  std::bitset<32> days_;     // 1-31
  std::bitset<13> months_;   // 1-12
  std::bitset<7> weekdays_;  // 0 = Sunday
  bool minute_star_ = false;
  bool hour_star_ = false;
  bool day_star_ = false;
  bool weekday_star_ = false;
};

}  // namespace faultline::schedule

#endif  // FAULTLINE_SCHEDULE_CRON_H_
