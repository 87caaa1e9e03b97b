#include "common/units.h"

#include <gtest/gtest.h>

#include "common/endpoint.h"

namespace faultline {
namespace {

using std::chrono::milliseconds;
using std::chrono::nanoseconds;
using std::chrono::seconds;

TEST(ParseDuration, AcceptsUnitsAndChains) {
  EXPECT_EQ(*ParseDuration("d", "250ms"), milliseconds(250));
  EXPECT_EQ(*ParseDuration("d", "30s"), seconds(30));
  EXPECT_EQ(*ParseDuration("d", "5m"), seconds(300));
  EXPECT_EQ(*ParseDuration("d", "1h"), seconds(3600));
  EXPECT_EQ(*ParseDuration("d", "1m30s"), seconds(90));
  EXPECT_EQ(*ParseDuration("d", "1.5s"), milliseconds(1500));
  EXPECT_EQ(*ParseDuration("d", "10us"), nanoseconds(10000));
  EXPECT_EQ(*ParseDuration("d", "500µs"), nanoseconds(500000));  // as documented
  EXPECT_EQ(*ParseDuration("d", "0s"), nanoseconds(0));
}

TEST(ParseDuration, RejectsBadInputNamingTheField) {
  for (const char* bad : {"", "10", "-5s", "abc", "5 parsecs", "5x", "s"}) {
    auto d = ParseDuration("duration", bad);
    ASSERT_FALSE(d.ok()) << bad;
    EXPECT_EQ(d.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_EQ(d.status().message().rfind("duration: ", 0), 0u) << d.status().message();
  }
}

TEST(FormatDuration, RoundTrips) {
  for (const char* s : {"250ms", "30s", "5m", "2h", "10us", "7ns"}) {
    EXPECT_EQ(FormatDuration(*ParseDuration("d", s)), s);
  }
}

TEST(ParseSize, BinaryUnits) {
  EXPECT_EQ(*ParseSize("s", "4096"), 4096u);
  EXPECT_EQ(*ParseSize("s", "1k"), 1024u);
  EXPECT_EQ(*ParseSize("s", "100M"), 100u * 1024 * 1024);
  EXPECT_EQ(*ParseSize("s", "2GiB"), 2ull * 1024 * 1024 * 1024);
  EXPECT_EQ(*ParseSize("s", "1.5K"), 1536u);
  for (const char* bad : {"", "-1", "1Q", "M", "1M2"}) {
    auto s = ParseSize("bytes", bad);
    ASSERT_FALSE(s.ok()) << bad;
    EXPECT_EQ(s.status().message().rfind("bytes: ", 0), 0u);
  }
}

TEST(ParsePercent, RangeChecked) {
  EXPECT_DOUBLE_EQ(*ParsePercent("loss", "5%"), 5.0);
  EXPECT_DOUBLE_EQ(*ParsePercent("loss", "0.5"), 0.5);
  EXPECT_DOUBLE_EQ(*ParsePercent("loss", "100%"), 100.0);
  auto bad = ParsePercent("loss", "150%");
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.status().message(), "loss: must be between 0 and 100, got 150%");
  EXPECT_FALSE(ParsePercent("loss", "-1%").ok());
  EXPECT_FALSE(ParsePercent("loss", "x").ok());
}

TEST(ParseRate, TcUnits) {
  EXPECT_EQ(*ParseRate("rate", "1mbit"), 125000u);
  EXPECT_EQ(*ParseRate("rate", "500kbit"), 62500u);
  EXPECT_EQ(*ParseRate("rate", "1mbps"), 1000000u);
  EXPECT_FALSE(ParseRate("rate", "1").ok());
  EXPECT_FALSE(ParseRate("rate", "-1mbit").ok());
  EXPECT_FALSE(ParseRate("rate", "1furlong").ok());
}

TEST(ParseEndpoint, UnixAndTcp) {
  auto u = ParseEndpoint("--listen", "unix:/run/x.sock");
  ASSERT_TRUE(u.ok());
  EXPECT_TRUE(u->is_unix);
  EXPECT_EQ(u->GrpcTarget(), "unix:/run/x.sock");
  auto t = ParseEndpoint("--listen", "127.0.0.1:7100");
  ASSERT_TRUE(t.ok());
  EXPECT_EQ(t->port, 7100);
  EXPECT_EQ(t->GrpcTarget(), "127.0.0.1:7100");
  auto v6 = ParseEndpoint("--listen", "[::1]:80");
  ASSERT_TRUE(v6.ok());
  EXPECT_EQ(v6->host, "::1");
  EXPECT_EQ(v6->GrpcTarget(), "[::1]:80");
  EXPECT_FALSE(ParseEndpoint("--listen", "unix:relative").ok());
  EXPECT_FALSE(ParseEndpoint("--listen", "nohostport").ok());
  EXPECT_FALSE(ParseEndpoint("--listen", "h:99999").ok());
}

}  // namespace
}  // namespace faultline
