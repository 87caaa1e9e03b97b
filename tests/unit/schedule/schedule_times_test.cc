#include "schedule/schedule_times.h"

#include <algorithm>
#include <chrono>
#include <string>
#include <vector>

#include "absl/time/civil_time.h"
#include "absl/time/time.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "schedule/window.h"

namespace faultline::schedule {
namespace {

using ::testing::HasSubstr;

absl::Time Utc(int y, int mo, int d, int h = 0, int mi = 0, int s = 0) {
  return absl::FromCivil(absl::CivilSecond(y, mo, d, h, mi, s), absl::UTCTimeZone());
}

std::string Show(absl::Time t) {
  return absl::FormatTime("%Y-%m-%d %H:%M:%S UTC", t, absl::UTCTimeZone());
}

absl::TimeZone Berlin() {
  auto zone = LoadZone("Europe/Berlin");
  EXPECT_TRUE(zone.ok()) << zone.status() << " (is tzdata installed?)";
  return zone.ok() ? *zone : absl::UTCTimeZone();
}

ScheduleTimes MustCreate(const ScheduleOptions& options) {
  auto times = ScheduleTimes::Create(options);
  EXPECT_TRUE(times.ok()) << times.status();
  if (times.ok()) return *times;
  return *ScheduleTimes::Create(ScheduleOptions{.cron = "* * * * *"});
}

std::vector<std::string> NextTicks(const ScheduleTimes& times, absl::Time after, int n) {
  std::vector<std::string> out;
  for (int i = 0; i < n; ++i) {
    auto t = times.NextTick(after);
    if (!t.ok()) {
      out.push_back(std::string(t.status().message()));
      break;
    }
    out.push_back(Show(*t));
    after = *t;
  }
  return out;
}

std::string CreateError(const ScheduleOptions& options) {
  auto times = ScheduleTimes::Create(options);
  if (times.ok()) return "ok";
  EXPECT_EQ(times.status().code(), absl::StatusCode::kInvalidArgument);
  return std::string(times.status().message());
}

TEST(WindowTest, ParsesAndRejects) {
  for (const char* text : {"09:00-17:00", "22:00-06:00", "18:00-24:00", " 00:00-23:59 "}) {
    EXPECT_TRUE(Window::Parse(text).ok()) << text;
  }
  EXPECT_TRUE(Window::Parse("22:00-06:00")->crosses_midnight());
  EXPECT_FALSE(Window::Parse("09:00-17:00")->crosses_midnight());
  for (const char* text : {"9-17", "9:00-17:00", "25:00-26:00", "09:60-10:00", "24:00-01:00",
                           "09:00-24:01", "09:00", "", "09:00-17:00-18:00", "ab:cd-ef:gh"}) {
    auto w = Window::Parse(text);
    ASSERT_FALSE(w.ok()) << text;
    EXPECT_THAT(std::string(w.status().message()), HasSubstr("window: ")) << text;
  }
  EXPECT_THAT(std::string(Window::Parse("09:00-09:00").status().message()),
              HasSubstr("window: \"09:00-09:00\" is empty"));
  EXPECT_TRUE(Window::Parse("00:00-24:00")->Contains(Utc(2026, 6, 1, 23, 59, 59),
                                                     absl::UTCTimeZone()));
}

TEST(WindowTest, ContainsAcrossMidnightInLocalTime) {
  const Window w = *Window::Parse("22:00-06:00");
  const absl::TimeZone berlin = Berlin();
  auto at = [&](int h, int m) {
    return absl::FromCivil(absl::CivilSecond(2026, 6, 1, h, m, 0), berlin);
  };
  EXPECT_TRUE(w.Contains(at(22, 0), berlin));
  EXPECT_TRUE(w.Contains(at(23, 30), berlin));
  EXPECT_TRUE(w.Contains(at(0, 0), berlin));
  EXPECT_TRUE(w.Contains(at(5, 59), berlin));
  EXPECT_FALSE(w.Contains(at(6, 0), berlin));
  EXPECT_FALSE(w.Contains(at(21, 59), berlin));
  EXPECT_FALSE(w.Contains(at(12, 0), berlin));
  // 22:00 in Berlin is 20:00 UTC in summer: the zone matters.
  EXPECT_FALSE(w.Contains(Utc(2026, 6, 1, 21), absl::UTCTimeZone()));
  EXPECT_TRUE(w.Contains(Utc(2026, 6, 1, 21), berlin));
  EXPECT_EQ(Show(w.NextOpen(Utc(2026, 6, 1, 10), berlin)), "2026-06-01 20:00:00 UTC");
  EXPECT_EQ(Show(w.CloseAfter(Utc(2026, 6, 1, 21), berlin)), "2026-06-02 04:00:00 UTC");
  EXPECT_EQ(Show(w.CloseAfter(Utc(2026, 6, 2, 1), berlin)), "2026-06-02 04:00:00 UTC");
}

TEST(ScheduleTimesTest, CronInsideAWindowAcrossMidnight) {
  const ScheduleTimes times = MustCreate(
      {.name = "n", .cron = "0 * * * *", .timezone = "Europe/Berlin", .window = "22:00-06:00"});
  // 12:00 CEST: the next hourly tick in the window is 22:00 CEST (20:00 UTC);
  // the last of the night is 05:00 CEST, then 22:00 again.
  const std::vector<std::string> ticks = NextTicks(times, Utc(2026, 6, 1, 10), 9);
  EXPECT_EQ(ticks.front(), "2026-06-01 20:00:00 UTC");
  EXPECT_EQ(ticks[7], "2026-06-02 03:00:00 UTC");
  EXPECT_EQ(ticks[8], "2026-06-02 20:00:00 UTC");
}

TEST(ScheduleTimesTest, EveryTicksFromTheAnchor) {
  const absl::Time anchor = Utc(2026, 6, 1, 10) + absl::Milliseconds(500);
  const ScheduleTimes times =
      MustCreate({.name = "e", .every = absl::Minutes(30), .anchor = anchor});
  EXPECT_EQ(*times.NextTick(anchor), anchor + absl::Minutes(30));
  EXPECT_EQ(*times.NextTick(anchor + absl::Minutes(30)), anchor + absl::Minutes(60));
  EXPECT_EQ(*times.NextTick(anchor + absl::Minutes(31)), anchor + absl::Minutes(60));
  EXPECT_EQ(*times.NextTick(anchor - absl::Hours(5)), anchor + absl::Minutes(30));
  EXPECT_EQ(*times.NextTick(anchor + absl::Hours(24 * 365)),
            anchor + absl::Hours(24 * 365) + absl::Minutes(30));
  const ScheduleTimes second =
      MustCreate({.name = "s", .every = absl::Seconds(1), .anchor = anchor});
  EXPECT_EQ(*second.NextTick(anchor + absl::Milliseconds(1)), anchor + absl::Seconds(1));
}

TEST(ScheduleTimesTest, EveryInsideAWindow) {
  // Every 5 h from midnight UTC: 05, 10, 15, 20, 01, 06, 11; the window keeps
  // 10, 15 and 11.
  const ScheduleTimes times = MustCreate(
      {.name = "w", .every = absl::Hours(5), .anchor = Utc(2026, 6, 1), .window = "09:00-17:00"});
  EXPECT_EQ(NextTicks(times, Utc(2026, 6, 1), 3),
            (std::vector<std::string>{"2026-06-01 10:00:00 UTC", "2026-06-01 15:00:00 UTC",
                                      "2026-06-02 11:00:00 UTC"}));
}

TEST(ScheduleTimesTest, BadOptionsNameTheirField) {
  const absl::Time anchor = Utc(2026, 6, 1);
  EXPECT_THAT(CreateError({.cron = "0 25 * * *"}), HasSubstr("cron: hour: 25 is outside 0-23"));
  EXPECT_THAT(CreateError({.every = absl::Milliseconds(500), .anchor = anchor}),
              HasSubstr("every: 500ms is outside 1s"));
  EXPECT_THAT(CreateError({.every = -absl::Seconds(5), .anchor = anchor}), HasSubstr("every: "));
  EXPECT_THAT(CreateError({.cron = "* * * * *", .every = absl::Seconds(5)}),
              HasSubstr("schedule: give exactly one of cron and every"));
  EXPECT_THAT(CreateError({}), HasSubstr("schedule: give exactly one of cron and every"));
  EXPECT_THAT(CreateError({.cron = "* * * * *", .timezone = "Mars/Olympus"}),
              HasSubstr("timezone: unknown time zone \"Mars/Olympus\""));
  EXPECT_THAT(CreateError({.cron = "* * * * *", .window = "9-17"}), HasSubstr("window: "));
  EXPECT_THAT(CreateError({.cron = "* * * * *", .jitter = -absl::Seconds(1)}),
              HasSubstr("jitter: "));
  EXPECT_THAT(CreateError({.cron = "0 3 * * *", .window = "09:00-17:00"}),
              HasSubstr("window: no time of cron \"0 3 * * *\" falls inside 09:00-17:00"));
  EXPECT_EQ(CreateError({.cron = "0 3 * * *", .window = "22:00-06:00"}), "ok");
}

TEST(ScheduleTimesTest, EveryThatNeverMeetsTheWindowIsBounded) {
  // Every 24 h at 03:00 UTC never falls inside 09:00-17:00 UTC.
  const ScheduleTimes times = MustCreate({.name = "d",
                                          .every = absl::Hours(24),
                                          .anchor = Utc(2026, 6, 1, 3),
                                          .window = "09:00-17:00"});
  const auto begin = std::chrono::steady_clock::now();
  auto tick = times.NextTick(Utc(2026, 6, 1));
  ASSERT_FALSE(tick.ok());
  EXPECT_THAT(std::string(tick.status().message()), HasSubstr("never fires"));
  EXPECT_LT(std::chrono::steady_clock::now() - begin, std::chrono::seconds(1));
}

TEST(JitterTest, PinnedSeedSoRestartsAndUpgradesAgree) {
  // Computed independently (Python) from the documented recipe.
  EXPECT_EQ(JitterSeed("nightly", Utc(2026, 1, 1)), 0x43871b207c1703caULL);
  EXPECT_EQ(JitterOffset("nightly", Utc(2026, 1, 1), absl::Minutes(10)),
            absl::Nanoseconds(548731896778));
  EXPECT_EQ(JitterOffset("nightly", Utc(2026, 1, 1), absl::ZeroDuration()),
            absl::ZeroDuration());
}

TEST(JitterTest, DeterministicAndWithinBounds) {
  const ScheduleOptions options = {.name = "db-failover", .cron = "0 10 * * *",
                                   .jitter = absl::Minutes(10)};
  const ScheduleTimes a = MustCreate(options);
  const ScheduleTimes b = MustCreate(options);  // a "restarted controller"
  ScheduleOptions renamed = options;
  renamed.name = "db-failover-2";
  const ScheduleTimes other = MustCreate(renamed);
  absl::Time after = Utc(2026, 1, 1);
  absl::Duration lowest = absl::InfiniteDuration();
  absl::Duration highest = absl::ZeroDuration();
  absl::Duration sum = absl::ZeroDuration();
  int differ = 0;
  constexpr int kTicks = 1000;
  for (int i = 0; i < kTicks; ++i) {
    auto tick = a.Next(after);
    ASSERT_TRUE(tick.ok()) << tick.status();
    const absl::Duration offset = tick->start - tick->scheduled;
    ASSERT_GE(offset, absl::ZeroDuration());
    ASSERT_LT(offset, absl::Minutes(10));
    EXPECT_EQ(b.Next(after)->start, tick->start);
    if (other.Next(after)->start != tick->start) ++differ;
    lowest = std::min(lowest, offset);
    highest = std::max(highest, offset);
    sum += offset;
    after = tick->scheduled;
  }
  EXPECT_GT(differ, kTicks - 5);
  EXPECT_LT(lowest, absl::Minutes(1));
  EXPECT_GT(highest, absl::Minutes(9));
  const absl::Duration mean = sum / kTicks;
  EXPECT_GT(mean, absl::Minutes(4));
  EXPECT_LT(mean, absl::Minutes(6));
}

TEST(JitterTest, StaysInsideTheWindow) {
  // Ticks at 09:50 and 23:50 local; a 1 h jitter is cut to what is left of
  // the window (10 min), across midnight too.
  for (const char* window : {"09:00-10:00", "23:00-00:00"}) {
    SCOPED_TRACE(window);
    const ScheduleTimes times = MustCreate({.name = "w",
                                            .cron = "50 9,23 * * *",
                                            .timezone = "Europe/Berlin",
                                            .window = window,
                                            .jitter = absl::Hours(1)});
    absl::Time after = Utc(2026, 3, 1);
    for (int i = 0; i < 200; ++i) {
      auto tick = times.Next(after);
      ASSERT_TRUE(tick.ok()) << tick.status();
      EXPECT_LT(tick->start - tick->scheduled, absl::Minutes(10)) << Show(tick->scheduled);
      EXPECT_TRUE(times.window()->Contains(tick->start, times.zone())) << Show(tick->start);
      after = tick->scheduled;
    }
  }
}

// Berlin, 2026-10-25: 02:00-02:59 occurs twice (00:00-00:59 and 01:00-01:59
// UTC). An hourly (wildcard) cron fires in both passes; in each the jitter is
// cut to that pass's 02:30.
TEST(JitterTest, WindowClosingInARepeatedHour) {
  const ScheduleTimes times = MustCreate({.name = "fall",
                                          .cron = "15 * * * *",
                                          .timezone = "Europe/Berlin",
                                          .window = "01:00-02:30",
                                          .jitter = absl::Hours(1)});
  absl::Time after = Utc(2026, 10, 24, 23, 30);
  for (const char* want : {"2026-10-25 00:15:00 UTC", "2026-10-25 01:15:00 UTC"}) {
    auto tick = times.Next(after);
    ASSERT_TRUE(tick.ok()) << tick.status();
    EXPECT_EQ(Show(tick->scheduled), want);
    EXPECT_GE(tick->start, tick->scheduled);
    EXPECT_LT(tick->start - tick->scheduled, absl::Minutes(15)) << want;
    after = tick->scheduled;
  }
  // The next is 01:15 CET on the 26th (00:15 UTC).
  EXPECT_EQ(Show(*times.NextTick(after)), "2026-10-26 00:15:00 UTC");
}

// Berlin, 2026-03-29: a window opening at 02:30 opens when the clock jumps to
// 03:00 CEST (01:00 UTC).
TEST(WindowTest, OpeningInsideASpringForwardGap) {
  const Window w = *Window::Parse("02:30-04:00");
  EXPECT_EQ(Show(w.NextOpen(Utc(2026, 3, 28, 23), Berlin())), "2026-03-29 01:00:00 UTC");
  // Hourly on the UTC hour: 01:00 UTC is 03:00 CEST, the first tick inside.
  const ScheduleTimes times = MustCreate({.name = "gap",
                                          .every = absl::Hours(1),
                                          .anchor = Utc(2026, 3, 28),
                                          .timezone = "Europe/Berlin",
                                          .window = "02:30-04:00"});
  EXPECT_EQ(NextTicks(times, Utc(2026, 3, 28, 5), 2),
            (std::vector<std::string>{"2026-03-29 01:00:00 UTC", "2026-03-30 01:00:00 UTC"}));
}

TEST(MissedTicksTest, ListsBoundedAndGivesTheNewest) {
  const absl::Time anchor = Utc(2026, 6, 1);
  const ScheduleTimes times =
      MustCreate({.name = "m", .every = absl::Minutes(1), .anchor = anchor});
  auto all = times.Missed(anchor, anchor + absl::Seconds(630), 100);
  ASSERT_TRUE(all.ok()) << all.status();
  ASSERT_EQ(all->oldest.size(), 10u);
  EXPECT_EQ(all->oldest.front(), anchor + absl::Minutes(1));
  EXPECT_FALSE(all->more);
  EXPECT_EQ(*all->latest, anchor + absl::Minutes(10));
  auto few = times.Missed(anchor, anchor + absl::Seconds(630), 3);
  ASSERT_TRUE(few.ok()) << few.status();
  ASSERT_EQ(few->oldest.size(), 3u);
  EXPECT_EQ(few->oldest.back(), anchor + absl::Minutes(3));
  EXPECT_TRUE(few->more);
  EXPECT_EQ(*few->latest, anchor + absl::Minutes(10));
  // The tick at `now` itself counts; none when nothing fell due.
  EXPECT_EQ(times.Missed(anchor, anchor + absl::Minutes(2), 5)->oldest.size(), 2u);
  auto none = times.Missed(anchor, anchor + absl::Seconds(59), 5);
  EXPECT_TRUE(none->oldest.empty());
  EXPECT_FALSE(none->latest.has_value());
  EXPECT_FALSE(times.Missed(anchor + absl::Hours(1), anchor, 5)->latest.has_value());
}

TEST(MissedTicksTest, FarBehindIsFast) {
  const absl::Time anchor = Utc(2026, 1, 1);
  const ScheduleTimes every_second =
      MustCreate({.name = "s", .every = absl::Seconds(1), .anchor = anchor});
  const ScheduleTimes office = MustCreate({.name = "o",
                                           .cron = "0 * * * *",
                                           .timezone = "Europe/Berlin",
                                           .window = "09:00-17:00"});
  const auto begin = std::chrono::steady_clock::now();
  const absl::Time now = anchor + absl::Hours(24 * 30) + absl::Milliseconds(1500);
  auto s = every_second.Missed(anchor, now, 20);
  ASSERT_TRUE(s.ok()) << s.status();
  EXPECT_EQ(s->oldest.size(), 20u);
  EXPECT_TRUE(s->more);
  EXPECT_EQ(*s->latest, anchor + absl::Hours(24 * 30) + absl::Seconds(1));
  // 2026-03-10 20:00 UTC is 21:00 CET: the newest tick is 16:00 CET.
  auto o = office.Missed(Utc(2025, 3, 10), Utc(2026, 3, 10, 20), 20);
  ASSERT_TRUE(o.ok()) << o.status();
  EXPECT_TRUE(o->more);
  EXPECT_EQ(Show(*o->latest), "2026-03-10 15:00:00 UTC");
  EXPECT_EQ(Show(o->oldest.front()), "2025-03-10 08:00:00 UTC");  // 09:00 CET
  EXPECT_LT(std::chrono::steady_clock::now() - begin, std::chrono::seconds(2));
}

}  // namespace
}  // namespace faultline::schedule
