#include "schedule/window.h"

#include <cctype>
#include <string>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/ascii.h"
#include "fmt/format.h"

namespace faultline::schedule {
namespace {

// "HH:MM" as seconds after midnight; -1 when malformed or out of range.
int ParseClock(const std::string& text, int max_hour) {
  if (text.size() != 5 || text[2] != ':') return -1;
  for (size_t i : {0, 1, 3, 4}) {
    if (!std::isdigit(static_cast<unsigned char>(text[i]))) return -1;
  }
  const int hour = (text[0] - '0') * 10 + (text[1] - '0');
  const int minute = (text[3] - '0') * 10 + (text[4] - '0');
  if (hour > max_hour || minute > 59 || (hour == 24 && minute != 0)) return -1;
  return hour * 3600 + minute * 60;
}

int SecondOfDay(absl::CivilSecond s) { return s.hour() * 3600 + s.minute() * 60 + s.second(); }

}  // namespace

absl::Time FirstInstantAfter(absl::CivilSecond local, absl::TimeZone zone, absl::Time t) {
  const absl::TimeZone::TimeInfo info = zone.At(local);
  switch (info.kind) {
    case absl::TimeZone::TimeInfo::SKIPPED:
      return info.trans;
    case absl::TimeZone::TimeInfo::REPEATED:
      return info.pre > t ? info.pre : info.post;
    case absl::TimeZone::TimeInfo::UNIQUE:
      break;
  }
  return info.pre;
}

absl::StatusOr<Window> Window::Parse(const std::string& text) {
  const std::string trimmed(absl::StripAsciiWhitespace(text));
  const size_t dash = trimmed.find('-');
  const int start = dash == std::string::npos ? -1 : ParseClock(trimmed.substr(0, dash), 23);
  const int end = dash == std::string::npos ? -1 : ParseClock(trimmed.substr(dash + 1), 24);
  if (start < 0 || end < 0) {
    return absl::InvalidArgumentError(fmt::format(
        "window: \"{}\" is not HH:MM-HH:MM (local times, e.g. 09:00-17:00 or 22:00-06:00)",
        trimmed.substr(0, 32)));
  }
  if (start == end) {
    return absl::InvalidArgumentError(
        fmt::format("window: \"{}\" is empty (start and end are the same time)", trimmed));
  }
  return Window(trimmed, start, end);
}

bool Window::Contains(absl::Time t, absl::TimeZone zone) const {
  return ContainsSecondOfDay(SecondOfDay(zone.At(t).cs));
}

bool Window::ContainsSecondOfDay(int s) const {
  if (crosses_midnight()) return s >= start_ || s < end_;
  return s >= start_ && s < end_;
}

absl::Time Window::NextOpen(absl::Time t, absl::TimeZone zone) const {
  const absl::CivilDay today(zone.At(t).cs);
  const absl::Time open = FirstInstantAfter(absl::CivilSecond(today) + start_, zone, t);
  if (open > t) return open;
  return FirstInstantAfter(absl::CivilSecond(today + 1) + start_, zone, t);
}

absl::Time Window::CloseAfter(absl::Time t, absl::TimeZone zone) const {
  const absl::CivilSecond local = zone.At(t).cs;
  absl::CivilDay day(local);
  if (crosses_midnight() && SecondOfDay(local) >= start_) day += 1;
  return FirstInstantAfter(absl::CivilSecond(day) + end_, zone, t);
}

}  // namespace faultline::schedule
