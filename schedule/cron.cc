#include "schedule/cron.h"

#include <array>
#include <cctype>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/ascii.h"
#include "absl/strings/str_split.h"
#include "common/status_macros.h"
#include "fmt/format.h"

namespace faultline::schedule {
namespace {

constexpr size_t kMaxTextLength = 256;
constexpr size_t kMaxZoneNameLength = 64;
// How far ahead Next looks. A date such as "Feb 29 that is a Sunday" (`0 0 29
// 2 */7`) can be 40 years away; sixty covers every expression Parse accepts.
constexpr int kHorizonYears = 60;
// Offset changes within the horizon: two a year for DST zones, with margin.
constexpr int kMaxSegments = 4 * kHorizonYears + 16;

constexpr std::array<const char*, 12> kMonthNames = {"JAN", "FEB", "MAR", "APR", "MAY", "JUN",
                                                     "JUL", "AUG", "SEP", "OCT", "NOV", "DEC"};
constexpr std::array<const char*, 7> kDayNames = {"SUN", "MON", "TUE", "WED",
                                                  "THU", "FRI", "SAT"};
// Longest month lengths, leap years included (index 1-12).
constexpr std::array<int, 13> kMaxDays = {0, 31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};

// One of the five fields: its name in errors, accepted values, and names.
struct Field {
  const char* name;
  int low;
  int high;
  const char* const* names;  // nullptr: numbers only
  int name_count;
  int name_base;  // value of names[0]
};

constexpr Field kMinute = {"minute", 0, 59, nullptr, 0, 0};
constexpr Field kHour = {"hour", 0, 23, nullptr, 0, 0};
constexpr Field kDayOfMonth = {"day-of-month", 1, 31, nullptr, 0, 0};
constexpr Field kMonth = {"month", 1, 12, kMonthNames.data(), 12, 1};
constexpr Field kDayOfWeek = {"day-of-week", 0, 7, kDayNames.data(), 7, 0};

absl::Status FieldError(const Field& field, const std::string& message) {
  return absl::InvalidArgumentError(fmt::format("cron: {}: {}", field.name, message));
}

bool AllDigits(const std::string& s) {
  if (s.empty()) return false;
  for (char c : s) {
    if (!std::isdigit(static_cast<unsigned char>(c))) return false;
  }
  return true;
}

std::optional<int> NameValue(const Field& field, const std::string& text) {
  const std::string upper = absl::AsciiStrToUpper(text);
  for (int i = 0; i < field.name_count; ++i) {
    if (upper == field.names[i]) return field.name_base + i;
  }
  return std::nullopt;
}

// A number or (month, day-of-week) a name, within the field's range.
absl::StatusOr<int> ParseValue(const Field& field, const std::string& text) {
  if (text.empty()) return FieldError(field, "missing value");
  if (!AllDigits(text)) {
    if (auto v = NameValue(field, text)) return *v;
    return FieldError(field, fmt::format("\"{}\" is not a number{}", text,
                                         field.names != nullptr ? " or a name" : ""));
  }
  const int value = text.size() > 4 ? 99999 : std::stoi(text);
  if (value < field.low || value > field.high) {
    return FieldError(field, fmt::format("{} is outside {}-{}", text, field.low, field.high));
  }
  return value;
}

absl::StatusOr<int> ParseStep(const Field& field, const std::string& text) {
  if (!AllDigits(text)) {
    return FieldError(field, fmt::format("step \"{}\" is not a number", text));
  }
  const int step = text.size() > 4 ? 99999 : std::stoi(text);
  if (step < 1 || step > field.high) {
    return FieldError(field, fmt::format("step {} is outside 1-{}", text, field.high));
  }
  return step;
}

// Sets the bits of one list item: `*`, `v`, `a-b`, `*/n`, `a-b/n`, `a/n`.
template <size_t N>
absl::Status ParseItem(const Field& field, const std::string& item, std::bitset<N>& bits) {
  const size_t slash = item.find('/');
  const std::string range = item.substr(0, slash);
  int low = field.low;
  int high = field.high;
  if (range != "*") {
    const size_t dash = range.find('-');
    ASSIGN_OR_RETURN(low, ParseValue(field, range.substr(0, dash)));
    high = low;
    if (dash != std::string::npos) {
      ASSIGN_OR_RETURN(high, ParseValue(field, range.substr(dash + 1)));
      if (&field == &kDayOfWeek && high == 0 && low > 0) high = 7;  // FRI-SUN
    } else if (slash != std::string::npos) {
      high = field.high;
    }
    if (low > high) return FieldError(field, fmt::format("range {} is reversed", range));
  }
  int step = 1;
  if (slash != std::string::npos) {
    ASSIGN_OR_RETURN(step, ParseStep(field, item.substr(slash + 1)));
  }
  for (int v = low; v <= high; v += step) bits.set(static_cast<size_t>(v) % N);
  return absl::OkStatus();
}

template <size_t N>
absl::Status ParseField(const Field& field, const std::string& text, std::bitset<N>& bits,
                        bool& star) {
  star = !text.empty() && text[0] == '*';
  for (absl::string_view item : absl::StrSplit(text, ',')) {
    if (item.empty()) return FieldError(field, fmt::format("empty list item in \"{}\"", text));
    RETURN_IF_ERROR(ParseItem(field, std::string(item), bits));
  }
  return absl::OkStatus();
}

// The five-field form of an @macro, or the text itself.
std::string ExpandMacro(const std::string& text) {
  const std::string lower = absl::AsciiStrToLower(text);
  if (lower == "@yearly" || lower == "@annually") return "0 0 1 1 *";
  if (lower == "@monthly") return "0 0 1 * *";
  if (lower == "@weekly") return "0 0 * * 0";
  if (lower == "@daily" || lower == "@midnight") return "0 0 * * *";
  if (lower == "@hourly") return "0 * * * *";
  return text;
}

absl::CivilMinute CeilMinute(absl::CivilSecond s) {
  const absl::CivilMinute floor(s);
  return absl::CivilSecond(floor) == s ? floor : floor + 1;
}

bool ValidZoneName(const std::string& name) {
  if (name.size() > kMaxZoneNameLength || name[0] == '/' || name.find("..") != std::string::npos) {
    return false;
  }
  for (char c : name) {
    if (!std::isalnum(static_cast<unsigned char>(c)) && c != '/' && c != '_' && c != '+' &&
        c != '-') {
      return false;
    }
  }
  return true;
}

}  // namespace

absl::StatusOr<absl::TimeZone> LoadZone(const std::string& name) {
  absl::TimeZone zone = absl::UTCTimeZone();
  if (name.empty()) return zone;
  if (!ValidZoneName(name) || !absl::LoadTimeZone(name, &zone)) {
    return absl::InvalidArgumentError(
        fmt::format("timezone: unknown time zone \"{}\" (an IANA name such as Europe/Berlin)",
                    name.size() > kMaxZoneNameLength ? name.substr(0, kMaxZoneNameLength) : name));
  }
  return zone;
}

absl::StatusOr<CronExpr> CronExpr::Parse(const std::string& text) {
  if (text.size() > kMaxTextLength) {
    return absl::InvalidArgumentError(
        fmt::format("cron: longer than {} characters", kMaxTextLength));
  }
  CronExpr expr;
  expr.text_ = std::string(absl::StripAsciiWhitespace(text));
  RETURN_IF_ERROR(expr.ParseFields(ExpandMacro(expr.text_)));
  RETURN_IF_ERROR(expr.CheckCanFire());
  return expr;
}

absl::Status CronExpr::ParseFields(const std::string& text) {
  std::vector<std::string> fields =
      absl::StrSplit(text, absl::ByAnyChar(" \t"), absl::SkipEmpty());
  if (fields.size() != 5) {
    return absl::InvalidArgumentError(fmt::format(
        "cron: \"{}\" has {} fields; want 5 (minute hour day-of-month month day-of-week)", text,
        fields.size()));
  }
  RETURN_IF_ERROR(ParseField(kMinute, fields[0], minutes_, minute_star_));
  RETURN_IF_ERROR(ParseField(kHour, fields[1], hours_, hour_star_));
  RETURN_IF_ERROR(ParseField(kDayOfMonth, fields[2], days_, day_star_));
  bool month_star = false;
  RETURN_IF_ERROR(ParseField(kMonth, fields[3], months_, month_star));
  return ParseField(kDayOfWeek, fields[4], weekdays_, weekday_star_);
}

// With the OR rule any weekday in any month fires; with the AND rule some
// listed month must have a listed day (each date meets every weekday in time).
absl::Status CronExpr::CheckCanFire() const {
  if (!day_star_ && !weekday_star_) return absl::OkStatus();
  for (int m = 1; m <= 12; ++m) {
    for (int d = 1; months_[m] && d <= kMaxDays[m]; ++d) {
      if (days_[d]) return absl::OkStatus();
    }
  }
  return FieldError(kDayOfMonth, fmt::format("\"{}\" never fires: no month it names has such a day",
                                             text_));
}

bool CronExpr::DayMatches(absl::CivilDay day) const {
  const bool dom = days_[static_cast<size_t>(day.day())];
  // absl: Monday = 0 ... Sunday = 6; cron: Sunday = 0.
  const int weekday = (static_cast<int>(absl::GetWeekday(day)) + 1) % 7;
  const bool dow = weekdays_[static_cast<size_t>(weekday)];
  if (day_star_ || weekday_star_) return dom && dow;
  return dom || dow;
}

bool CronExpr::Matches(absl::CivilMinute minute) const {
  return months_[static_cast<size_t>(minute.month())] && DayMatches(absl::CivilDay(minute)) &&
         hours_[static_cast<size_t>(minute.hour())] &&
         minutes_[static_cast<size_t>(minute.minute())];
}

// Skips whole months, days and hours that cannot match; bounded by `limit`.
std::optional<absl::CivilMinute> CronExpr::FirstMatch(absl::CivilMinute from,
                                                      absl::CivilMinute limit) const {
  absl::CivilMinute c = from;
  while (c < limit) {
    if (!months_[static_cast<size_t>(c.month())]) {
      c = absl::CivilMinute(absl::CivilMonth(c) + 1);
    } else if (!DayMatches(absl::CivilDay(c))) {
      c = absl::CivilMinute(absl::CivilDay(c) + 1);
    } else if (!hours_[static_cast<size_t>(c.hour())]) {
      c = absl::CivilMinute(absl::CivilHour(c) + 1);
    } else if (!minutes_[static_cast<size_t>(c.minute())]) {
      c += 1;
    } else {
      return c;
    }
  }
  return std::nullopt;
}

// In one stretch the zone's offset is constant, so local and absolute time
// move together. Instants are computed from that offset, not from the zone, so
// the second pass of a repeated hour maps to its own instants. `start` is
// inclusive unless it is `after` itself.
std::optional<absl::Time> CronExpr::NextInSegment(absl::Time after, absl::Time start,
                                                  absl::CivilSecond civil_end,
                                                  absl::TimeZone zone) const {
  const absl::TimeZone::CivilInfo info = zone.At(start);
  const absl::Duration offset = absl::Seconds(info.offset);
  absl::CivilMinute c = start == after ? absl::CivilMinute(info.cs) + 1 : CeilMinute(info.cs);
  const absl::CivilMinute limit = CeilMinute(civil_end);
  while (auto match = FirstMatch(c, limit)) {
    const absl::Time t = absl::FromCivil(*match, absl::UTCTimeZone()) - offset;
    const absl::TimeZone::TimeInfo local = zone.At(absl::CivilSecond(*match));
    if (fixed_time() && local.kind == absl::TimeZone::TimeInfo::REPEATED && t != local.pre) {
      c = *match + 1;  // second pass of a repeated time: a fixed time fired already
      continue;
    }
    return t;
  }
  return std::nullopt;
}

// Walks the zone's constant-offset stretches in time order. At a spring-
// forward transition a fixed-time expression matching a skipped local minute
// fires at the transition itself.
absl::StatusOr<absl::Time> CronExpr::Next(absl::Time after, absl::TimeZone zone) const {
  const absl::Time limit = after + absl::Hours(24 * 366 * kHorizonYears);
  absl::Time start = after;
  for (int i = 0; i < kMaxSegments && start < limit; ++i) {
    absl::TimeZone::CivilTransition tr;
    const bool more = zone.NextTransition(start, &tr);
    const absl::Time end = more ? zone.At(tr.to).trans : absl::InfiniteFuture();
    const bool end_in_range = more && end <= limit;
    const absl::CivilSecond civil_end = end_in_range ? tr.from : zone.At(limit).cs;
    if (auto t = NextInSegment(after, start, civil_end, zone)) return *t;
    if (!end_in_range || end <= start) break;
    if (fixed_time() && tr.to > tr.from && FirstMatch(CeilMinute(tr.from), CeilMinute(tr.to))) {
      return end;
    }
    start = end;
  }
  return absl::InvalidArgumentError(
      fmt::format("cron: \"{}\" never fires (searched {} years ahead)", text_, kHorizonYears));
}

}  // namespace faultline::schedule
