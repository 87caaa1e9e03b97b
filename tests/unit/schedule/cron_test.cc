#include "schedule/cron.h"

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "absl/time/civil_time.h"
#include "absl/time/time.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace faultline::schedule {
namespace {

using ::testing::HasSubstr;

absl::TimeZone Zone(const std::string& name) {
  auto zone = LoadZone(name);
  EXPECT_TRUE(zone.ok()) << zone.status() << " (is tzdata installed?)";
  return zone.ok() ? *zone : absl::UTCTimeZone();
}

absl::Time Utc(int y, int mo, int d, int h = 0, int mi = 0, int s = 0) {
  return absl::FromCivil(absl::CivilSecond(y, mo, d, h, mi, s), absl::UTCTimeZone());
}

std::string Show(absl::Time t) {
  return absl::FormatTime("%Y-%m-%d %H:%M:%S UTC", t, absl::UTCTimeZone());
}

CronExpr MustParse(const std::string& text) {
  auto expr = CronExpr::Parse(text);
  EXPECT_TRUE(expr.ok()) << text << ": " << expr.status();
  return expr.ok() ? *expr : *CronExpr::Parse("* * * * *");
}

// The next `n` fire times after `after`, as UTC strings.
std::vector<std::string> NextN(const std::string& text, absl::Time after,
                               const std::string& zone, int n) {
  const CronExpr expr = MustParse(text);
  std::vector<std::string> out;
  for (int i = 0; i < n; ++i) {
    auto t = expr.Next(after, Zone(zone));
    if (!t.ok()) {
      out.push_back(std::string(t.status().message()));
      break;
    }
    out.push_back(Show(*t));
    after = *t;
  }
  return out;
}

TEST(CronParseTest, AcceptsTheStandardSyntax) {
  for (const char* text :
       {"* * * * *", "0 10 * * 1-5", "*/15 0-6/2 1,15 JAN-mar mon-FRI", "0 0 * * 7",
        "  5 4 * * sun  ", "0\t12 * * *", "5/10 * * * *", "0 0 * * FRI-SUN", "0 0 1-31/10 * *",
        "@daily", "@HOURLY", "@weekly", "@monthly", "@yearly", "@annually", "@midnight",
        "59 23 31 12 6", "0,30 2,3 * * *", "0 0 29 2 *"}) {
    auto expr = CronExpr::Parse(text);
    EXPECT_TRUE(expr.ok()) << text << ": " << expr.status();
  }
}

TEST(CronParseTest, EachBadInputNamesItsField) {
  struct Case {
    std::string text;
    std::string error;
  };
  const std::vector<Case> cases = {
      {"0 25 * * *", "cron: hour: 25 is outside 0-23"},
      {"60 * * * *", "cron: minute: 60 is outside 0-59"},
      {"* * 0 * *", "cron: day-of-month: 0 is outside 1-31"},
      {"* * 32 * *", "cron: day-of-month: 32 is outside 1-31"},
      {"* * * 13 *", "cron: month: 13 is outside 1-12"},
      {"* * * 0 *", "cron: month: 0 is outside 1-12"},
      {"* * * * 8", "cron: day-of-week: 8 is outside 0-7"},
      {"* * * FOO *", "cron: month: \"FOO\" is not a number or a name"},
      {"* * * JAN-MON *", "cron: month: \"MON\" is not a number or a name"},
      {"* * * * XYZ", "cron: day-of-week: \"XYZ\" is not a number or a name"},
      {"a * * * *", "cron: minute: \"a\" is not a number"},
      {"* * * * MON/x", "cron: day-of-week: step \"x\" is not a number"},
      {"-1 * * * *", "cron: minute: missing value"},
      {"99999999999 * * * *", "cron: minute: 99999999999 is outside 0-59"},
      {"*/0 * * * *", "cron: minute: step 0 is outside 1-59"},
      {"*/x * * * *", "cron: minute: step \"x\" is not a number"},
      {"* */ * * *", "cron: hour: step \"\" is not a number"},
      {"* */99 * * *", "cron: hour: step 99 is outside 1-23"},
      {"5-1 * * * *", "cron: minute: range 5-1 is reversed"},
      {"* * * * SAT-MON", "cron: day-of-week: range SAT-MON is reversed"},
      {"1,,2 * * * *", "cron: minute: empty list item"},
      {"1, * * * *", "cron: minute: empty list item"},
      {"1-2-3 * * * *", "cron: minute: \"2-3\" is not a number"},
      {"* * * *", "has 4 fields; want 5"},
      {"* * * * * *", "has 6 fields; want 5"},
      {"", "has 0 fields; want 5"},
      {"@reboot", "has 1 fields; want 5"},
      {std::string(300, '*'), "cron: longer than 256 characters"},
      {"0 0 30 2 *", "cron: day-of-month: \"0 0 30 2 *\" never fires"},
      {"0 0 31 4,6,9,11 *", "never fires"},
      {"0 0 31 FEB */2", "never fires"},
  };
  for (const Case& c : cases) {
    auto expr = CronExpr::Parse(c.text);
    ASSERT_FALSE(expr.ok()) << c.text;
    EXPECT_EQ(expr.status().code(), absl::StatusCode::kInvalidArgument) << c.text;
    EXPECT_THAT(std::string(expr.status().message()), HasSubstr(c.error)) << c.text;
  }
}

TEST(CronParseTest, ListsRangesStepsAndNames) {
  const CronExpr expr = MustParse("*/20 9-17/4 * jan,Mar-apr MON-fri");
  // 2026-03-02 is a Monday.
  EXPECT_TRUE(expr.Matches(absl::CivilMinute(2026, 3, 2, 9, 40)));
  EXPECT_TRUE(expr.Matches(absl::CivilMinute(2026, 4, 3, 17, 0)));
  EXPECT_FALSE(expr.Matches(absl::CivilMinute(2026, 3, 2, 9, 50)));   // minute
  EXPECT_FALSE(expr.Matches(absl::CivilMinute(2026, 3, 2, 10, 0)));   // hour
  EXPECT_FALSE(expr.Matches(absl::CivilMinute(2026, 2, 2, 9, 0)));    // month
  EXPECT_FALSE(expr.Matches(absl::CivilMinute(2026, 3, 1, 9, 0)));    // Sunday
  const CronExpr from_five = MustParse("5/20 * * * *");               // 5, 25, 45
  EXPECT_TRUE(from_five.Matches(absl::CivilMinute(2026, 1, 1, 0, 45)));
  EXPECT_FALSE(from_five.Matches(absl::CivilMinute(2026, 1, 1, 0, 40)));
}

TEST(CronParseTest, ZeroAndSevenAreBothSunday) {
  const absl::CivilMinute sunday(2026, 3, 1, 0, 0);
  const absl::CivilMinute monday(2026, 3, 2, 0, 0);
  for (const char* text : {"0 0 * * 0", "0 0 * * 7", "0 0 * * SUN", "0 0 * * sun",
                           "0 0 * * FRI-SUN", "0 0 * * 5-7"}) {
    EXPECT_TRUE(MustParse(text).Matches(sunday)) << text;
    EXPECT_FALSE(MustParse(text).Matches(monday)) << text;
  }
}

TEST(CronParseTest, MacrosExpand) {
  EXPECT_EQ(NextN("@daily", Utc(2026, 5, 5, 10), "UTC", 1)[0], "2026-05-06 00:00:00 UTC");
  EXPECT_EQ(NextN("@hourly", Utc(2026, 5, 5, 10, 1), "UTC", 1)[0], "2026-05-05 11:00:00 UTC");
  EXPECT_EQ(NextN("@weekly", Utc(2026, 5, 5), "UTC", 1)[0], "2026-05-10 00:00:00 UTC");
  EXPECT_EQ(NextN("@yearly", Utc(2026, 5, 5), "UTC", 1)[0], "2027-01-01 00:00:00 UTC");
}

TEST(CronNextTest, IsStrictlyAfterAndCrossesMonthAndYearEnds) {
  EXPECT_EQ(NextN("* * * * *", Utc(2026, 12, 31, 23, 59, 30), "UTC", 2),
            (std::vector<std::string>{"2027-01-01 00:00:00 UTC", "2027-01-01 00:01:00 UTC"}));
  EXPECT_EQ(NextN("0 10 * * *", Utc(2026, 5, 5, 10), "UTC", 1)[0], "2026-05-06 10:00:00 UTC");
  EXPECT_EQ(NextN("0 0 1 * *", Utc(2026, 1, 31, 12), "UTC", 2),
            (std::vector<std::string>{"2026-02-01 00:00:00 UTC", "2026-03-01 00:00:00 UTC"}));
  EXPECT_EQ(NextN("59 23 31 12 *", Utc(2026, 12, 31, 23, 59), "UTC", 1)[0],
            "2027-12-31 23:59:00 UTC");
  // April and June have no 31st.
  EXPECT_EQ(NextN("0 12 31 * *", Utc(2026, 4, 1), "UTC", 2),
            (std::vector<std::string>{"2026-05-31 12:00:00 UTC", "2026-07-31 12:00:00 UTC"}));
  EXPECT_EQ(NextN("0 10 * * 1-5", Utc(2026, 1, 2, 11), "UTC", 2),  // Friday 11:00
            (std::vector<std::string>{"2026-01-05 10:00:00 UTC", "2026-01-06 10:00:00 UTC"}));
}

TEST(CronNextTest, LeapYears) {
  EXPECT_EQ(NextN("0 0 29 2 *", Utc(2026, 3, 1), "UTC", 2),
            (std::vector<std::string>{"2028-02-29 00:00:00 UTC", "2032-02-29 00:00:00 UTC"}));
  // 2100 is not a leap year.
  EXPECT_EQ(NextN("0 0 29 2 *", Utc(2096, 3, 1), "UTC", 1)[0], "2104-02-29 00:00:00 UTC");
  // 29 February on a Sunday: 2088, then not until 2128.
  EXPECT_EQ(NextN("0 0 29 2 */7", Utc(2088, 3, 1), "UTC", 1)[0], "2128-02-29 00:00:00 UTC");
}

TEST(CronNextTest, DayOfMonthOrDayOfWeekWhenBothRestricted) {
  // 2026-01-01 is a Thursday: Fridays 2, 9, 16 and the 13th (a Tuesday).
  EXPECT_EQ(NextN("0 0 13 * FRI", Utc(2026, 1, 1), "UTC", 4),
            (std::vector<std::string>{"2026-01-02 00:00:00 UTC", "2026-01-09 00:00:00 UTC",
                                      "2026-01-13 00:00:00 UTC", "2026-01-16 00:00:00 UTC"}));
  // A field starting with `*` counts as unrestricted (cronie): both must match,
  // here odd days that are Mondays.
  EXPECT_EQ(NextN("0 0 */2 * MON", Utc(2026, 1, 1), "UTC", 3),
            (std::vector<std::string>{"2026-01-05 00:00:00 UTC", "2026-01-19 00:00:00 UTC",
                                      "2026-02-09 00:00:00 UTC"}));
  EXPECT_EQ(NextN("0 0 * * MON", Utc(2026, 1, 1), "UTC", 1)[0], "2026-01-05 00:00:00 UTC");
}

TEST(CronNextTest, LocalTimeInAZone) {
  // 10:00 in Berlin is 09:00 UTC in winter and 08:00 UTC in summer.
  EXPECT_EQ(NextN("0 10 * * *", Utc(2026, 1, 10), "Europe/Berlin", 1)[0],
            "2026-01-10 09:00:00 UTC");
  EXPECT_EQ(NextN("0 10 * * *", Utc(2026, 7, 10), "Europe/Berlin", 1)[0],
            "2026-07-10 08:00:00 UTC");
  EXPECT_EQ(NextN("0 10 * * *", Utc(2026, 7, 10), "America/New_York", 1)[0],
            "2026-07-10 14:00:00 UTC");
}

// Berlin, 2026-03-29: 02:00 CET becomes 03:00 CEST at 01:00 UTC; 02:00-02:59
// does not exist.
TEST(CronDstTest, BerlinSpringForwardFiresOnceAfterTheGap) {
  EXPECT_EQ(NextN("30 2 * * *", Utc(2026, 3, 28, 12), "Europe/Berlin", 2),
            (std::vector<std::string>{"2026-03-29 01:00:00 UTC",  // 03:00 CEST
                                      "2026-03-30 00:30:00 UTC"}));
  // Several skipped times still fire once; a match at 03:00 itself is the same.
  EXPECT_EQ(NextN("0,30 2,3 * * *", Utc(2026, 3, 29), "Europe/Berlin", 3),
            (std::vector<std::string>{"2026-03-29 01:00:00 UTC", "2026-03-29 01:30:00 UTC",
                                      "2026-03-30 00:00:00 UTC"}));
  // A wildcard hour follows elapsed time: 01:30 CET, then 03:30 CEST.
  EXPECT_EQ(NextN("30 * * * *", Utc(2026, 3, 29, 0), "Europe/Berlin", 3),
            (std::vector<std::string>{"2026-03-29 00:30:00 UTC", "2026-03-29 01:30:00 UTC",
                                      "2026-03-29 02:30:00 UTC"}));
}

// Berlin, 2026-10-25: 03:00 CEST becomes 02:00 CET at 01:00 UTC; 02:00-02:59
// occurs twice.
TEST(CronDstTest, BerlinFallBackFiresOnce) {
  EXPECT_EQ(NextN("30 2 * * *", Utc(2026, 10, 24, 12), "Europe/Berlin", 2),
            (std::vector<std::string>{"2026-10-25 00:30:00 UTC",  // 02:30 CEST
                                      "2026-10-26 01:30:00 UTC"}));
  // Asking from inside the repeated hour does not fire the second 02:30.
  EXPECT_EQ(NextN("30 2 * * *", Utc(2026, 10, 25, 1, 10), "Europe/Berlin", 1)[0],
            "2026-10-26 01:30:00 UTC");
  // A wildcard hour follows elapsed time and fires in both passes.
  EXPECT_EQ(NextN("30 * * * *", Utc(2026, 10, 25, 0), "Europe/Berlin", 3),
            (std::vector<std::string>{"2026-10-25 00:30:00 UTC", "2026-10-25 01:30:00 UTC",
                                      "2026-10-25 02:30:00 UTC"}));
  EXPECT_EQ(NextN("*/20 * * * *", Utc(2026, 10, 25, 0, 50), "Europe/Berlin", 4),
            (std::vector<std::string>{"2026-10-25 01:00:00 UTC", "2026-10-25 01:20:00 UTC",
                                      "2026-10-25 01:40:00 UTC", "2026-10-25 02:00:00 UTC"}));
}

// New York: 2026-03-08 02:00 EST -> 03:00 EDT (07:00 UTC); 2026-11-01 02:00
// EDT -> 01:00 EST (06:00 UTC).
TEST(CronDstTest, NewYork) {
  EXPECT_EQ(NextN("30 2 * * *", Utc(2026, 3, 7, 12), "America/New_York", 2),
            (std::vector<std::string>{"2026-03-08 07:00:00 UTC", "2026-03-09 06:30:00 UTC"}));
  EXPECT_EQ(NextN("30 1 * * *", Utc(2026, 10, 31, 12), "America/New_York", 2),
            (std::vector<std::string>{"2026-11-01 05:30:00 UTC",  // 01:30 EDT
                                      "2026-11-02 06:30:00 UTC"}));
  EXPECT_EQ(NextN("0 * * * *", Utc(2026, 11, 1, 4, 30), "America/New_York", 3),
            (std::vector<std::string>{"2026-11-01 05:00:00 UTC", "2026-11-01 06:00:00 UTC",
                                      "2026-11-01 07:00:00 UTC"}));
}

TEST(CronNextTest, NeverFiresIsFoundFast) {
  const auto begin = std::chrono::steady_clock::now();
  auto expr = CronExpr::Parse("0 0 30 2 *");
  ASSERT_FALSE(expr.ok());
  EXPECT_THAT(std::string(expr.status().message()), HasSubstr("never fires"));
  // Nothing after the end of time: the bounded search gives up at once.
  auto t = MustParse("* * * * *").Next(absl::InfiniteFuture(), absl::UTCTimeZone());
  ASSERT_FALSE(t.ok());
  EXPECT_THAT(std::string(t.status().message()), HasSubstr("never fires"));
  // The sparsest accepted expression, in a DST zone, is found well within 1 s.
  auto sparse = MustParse("0 0 29 2 */7").Next(Utc(2088, 3, 1), Zone("Europe/Berlin"));
  ASSERT_TRUE(sparse.ok()) << sparse.status();
  EXPECT_EQ(Show(*sparse), "2128-02-28 23:00:00 UTC");
  EXPECT_LT(std::chrono::steady_clock::now() - begin, std::chrono::seconds(1));
}

// A slow, obviously right reference: walk absolute minutes after `after` and
// apply the documented rules to each (a matching local minute fires, except a
// fixed-time expression's second pass of a repeated time; a fixed-time match
// inside a skipped stretch fires at the first minute after it).
std::optional<absl::Time> ReferenceNext(const CronExpr& expr, absl::Time after,
                                        absl::TimeZone zone, int max_minutes) {
  absl::Time t = absl::FromUnixSeconds((absl::ToUnixSeconds(after) / 60 + 1) * 60);
  if (t <= after) t += absl::Minutes(1);
  for (int i = 0; i < max_minutes; ++i, t += absl::Minutes(1)) {
    const absl::CivilMinute local(zone.At(t).cs);
    const absl::CivilMinute before(zone.At(t - absl::Minutes(1)).cs);
    const absl::TimeZone::TimeInfo info = zone.At(absl::CivilSecond(local));
    const bool second_pass = info.kind == absl::TimeZone::TimeInfo::REPEATED && t != info.pre;
    if (expr.Matches(local) && !(expr.fixed_time() && second_pass)) return t;
    for (absl::CivilMinute m = before + 1; expr.fixed_time() && m < local; ++m) {
      if (expr.Matches(m)) return t;
    }
  }
  return std::nullopt;
}

TEST(CronNextTest, AgreesWithAMinuteByMinuteReference) {
  const std::vector<const char*> minutes = {"*", "*/7", "0", "30", "0,15,45", "10-20/5"};
  const std::vector<const char*> hours = {"*", "2", "1-3", "*/5", "0,12", "2,3", "23"};
  const std::vector<const char*> days = {"*", "*/3", "1-15", "29", "31"};
  const std::vector<const char*> weekdays = {"*", "1-5", "SUN", "*/2", "6"};
  // Lord Howe moves by 30 minutes; Kolkata never moves; Sao Paulo has not
  // moved since 2019.
  const std::vector<const char*> zones = {"Europe/Berlin", "America/New_York",
                                          "Australia/Lord_Howe", "Asia/Kolkata", "UTC",
                                          "America/Sao_Paulo"};
  uint64_t state = 12345;
  auto pick = [&state](size_t n) {
    state = state * 6364136223846793005ULL + 1442695040888963407ULL;
    return static_cast<size_t>(state >> 33) % n;
  };
  int compared = 0;
  int across_a_change = 0;
  for (int i = 0; i < 600; ++i) {
    const std::string text = std::string(minutes[pick(minutes.size())]) + " " +
                             hours[pick(hours.size())] + " " + days[pick(days.size())] +
                             " * " + weekdays[pick(weekdays.size())];
    auto expr = CronExpr::Parse(text);
    ASSERT_TRUE(expr.ok()) << text << ": " << expr.status();
    const absl::TimeZone zone = Zone(zones[pick(zones.size())]);
    // Mostly up to six hours before the zone's next change after a day of 2026.
    absl::Time after = Utc(2026, 1, 1) + absl::Hours(24 * static_cast<int64_t>(pick(365)));
    absl::TimeZone::CivilTransition change;
    if (zone.NextTransition(after, &change)) after = zone.At(change.to).trans;
    after -= absl::Minutes(static_cast<int64_t>(pick(6 * 60)));
    const auto want = ReferenceNext(*expr, after, zone, 4 * 24 * 60);
    if (!want) continue;  // fires more than four days later: too slow for the reference
    auto got = expr->Next(after, zone);
    ASSERT_TRUE(got.ok()) << text << ": " << got.status();
    EXPECT_EQ(Show(*got), Show(*want)) << text << " in " << zone.name() << " after " << Show(after);
    ++compared;
    if (zone.At(after).offset != zone.At(*got).offset) ++across_a_change;
  }
  EXPECT_GT(compared, 300);
  EXPECT_GT(across_a_change, 30) << "compared " << compared;
}

TEST(LoadZoneTest, NamesTheTimezoneField) {
  EXPECT_TRUE(LoadZone("Europe/Berlin").ok()) << "tzdata (/usr/share/zoneinfo) is missing";
  EXPECT_TRUE(LoadZone("America/New_York").ok());
  EXPECT_TRUE(LoadZone("UTC").ok());
  auto empty = LoadZone("");
  ASSERT_TRUE(empty.ok());
  EXPECT_EQ(empty->name(), "UTC");
  for (const char* bad : {"Mars/Olympus_Mons", "../../etc/passwd", "/etc/localtime",
                          "Europe/Berlin\n", "Europe/../UTC"}) {
    auto zone = LoadZone(bad);
    ASSERT_FALSE(zone.ok()) << bad;
    EXPECT_THAT(std::string(zone.status().message()), HasSubstr("timezone: unknown time zone"));
  }
}

}  // namespace
}  // namespace faultline::schedule
