// The metrics registry's text exposition, checked by a strict parser, and the
// HTTP listener that serves it.
#include <arpa/inet.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <httplib.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>

#include "metrics/http_endpoint.h"
#include "metrics/registry.h"
#include "tests/unit/metrics/exposition.h"

namespace faultline::metrics {
namespace {

using ::faultline::testing::ParseExposition;
using ::testing::HasSubstr;

TEST(Registry, RendersCountersGaugesAndHistogramsAParserAccepts) {
  Registry r;
  Family* runs = r.AddCounter("faultline_runs_total", "Runs ended.", {"experiment", "verdict"});
  Family* agents = r.AddGauge("faultline_agents", "Agents.", {"zone", "health"});
  Family* ttr = r.AddHistogram("faultline_time_to_recover_seconds", "TTR.", {"experiment"},
                               SecondsBuckets());
  Family* plain = r.AddCounter("faultline_stop_conditions_total", "Stops.");
  runs->Add({"zone \"a\"\\out\nage", "pass"});
  runs->Add({"zone \"a\"\\out\nage", "pass"});
  runs->Add({"other", "fail"}, 3);
  runs->Add({"other", "fail"}, -1);  // a counter never goes down
  agents->Set({"a", "healthy"}, 2);
  ttr->Observe({"x"}, 0.3);
  ttr->Observe({"x"}, 7);
  ttr->Observe({"x"}, 1e9);
  plain->Add({});
  auto e = ParseExposition(r.Render());
  ASSERT_TRUE(e.ok()) << e.status() << "\n" << r.Render();
  EXPECT_EQ(e->Value("faultline_runs_total", {{"experiment", "zone \"a\"\\out\nage"}, {"verdict", "pass"}}), 2);
  EXPECT_EQ(e->Value("faultline_runs_total", {{"experiment", "other"}, {"verdict", "fail"}}), 3);
  EXPECT_EQ(e->Value("faultline_agents", {{"zone", "a"}, {"health", "healthy"}}), 2);
  EXPECT_EQ(e->Value("faultline_stop_conditions_total"), 1);
  EXPECT_EQ(e->Value("faultline_time_to_recover_seconds_count", {{"experiment", "x"}}), 3);
  EXPECT_EQ(e->Value("faultline_time_to_recover_seconds_bucket", {{"experiment", "x"}, {"le", "0.5"}}), 1);
  EXPECT_EQ(e->Value("faultline_time_to_recover_seconds_bucket", {{"experiment", "x"}, {"le", "10"}}), 2);
  EXPECT_EQ(e->Value("faultline_time_to_recover_seconds_bucket", {{"experiment", "x"}, {"le", "+Inf"}}), 3);
  EXPECT_DOUBLE_EQ(e->Value("faultline_time_to_recover_seconds_sum", {{"experiment", "x"}}), 1e9 + 7.3);
  EXPECT_EQ(e->types.at("faultline_time_to_recover_seconds"), "histogram");
}

TEST(Registry, GaugesAreRefreshedAtEachScrapeAndSeriesAreCapped) {
  Registry r;
  Family* g = r.AddGauge("faultline_faults_active", "Active.", {"kind"});
  int scrapes = 0;
  r.OnScrape([&] {
    g->Clear();
    g->Set({"pause"}, ++scrapes);
  });
  EXPECT_EQ(ParseExposition(r.Render())->Value("faultline_faults_active", {{"kind", "pause"}}), 1);
  EXPECT_EQ(ParseExposition(r.Render())->Value("faultline_faults_active", {{"kind", "pause"}}), 2);
  Family* c = r.AddCounter("faultline_runs_total", "Runs.", {"experiment"});
  for (size_t i = 0; i < Registry::kMaxSeries + 50; ++i) c->Add({std::to_string(i)});
  c->Add({"a", "b"});  // a wrong label count is dropped, not rendered
  auto e = ParseExposition(r.Render());
  ASSERT_TRUE(e.ok()) << e.status();
  size_t series = 0;
  for (const auto& [k, v] : e->samples) series += k.rfind("faultline_runs_total{", 0) == 0;
  EXPECT_EQ(series, Registry::kMaxSeries);
}

TEST(Exposition, TheParserRefusesWhatPrometheusWould) {
  EXPECT_FALSE(ParseExposition("x 1\n").ok());  // no TYPE
  EXPECT_FALSE(ParseExposition("# TYPE x counter\nx{a=\"b} 1\n").ok());
  EXPECT_FALSE(ParseExposition("# TYPE x counter\nx{a=\"\\t\"} 1\n").ok());
  EXPECT_FALSE(ParseExposition("# TYPE x counter\nx 1\nx 2\n").ok());
  EXPECT_FALSE(ParseExposition("# TYPE x counter\nx one\n").ok());
  EXPECT_FALSE(ParseExposition(
                   "# TYPE h histogram\nh_bucket{le=\"1\"} 2\nh_bucket{le=\"+Inf\"} 1\nh_count 1\n")
                   .ok());
  EXPECT_FALSE(ParseExposition("# TYPE h histogram\nh_bucket{le=\"+Inf\"} 2\nh_count 1\n").ok());
  EXPECT_TRUE(ParseExposition("# TYPE h histogram\nh_bucket{le=\"+Inf\"} 1\nh_count 1\n").ok());
}

TEST(HttpEndpoint, ServesMetricsAnd404sTheRest) {
  Registry r;
  r.AddCounter("faultline_revert_failures_total", "Failures.")->Add({});
  auto ep = HttpEndpoint::Start("--metrics", "127.0.0.1:0", {MetricsRoute(&r)});
  ASSERT_TRUE(ep.ok()) << ep.status();
  httplib::Client cli("http://" + (*ep)->address());
  cli.set_connection_timeout(2, 0);
  cli.set_read_timeout(5, 0);
  auto res = cli.Get("/metrics");
  ASSERT_TRUE(res) << httplib::to_string(res.error());
  EXPECT_EQ(res->status, 200);
  EXPECT_THAT(res->get_header_value("Content-Type"), HasSubstr("version=0.0.4"));
  auto e = ParseExposition(res->body);
  ASSERT_TRUE(e.ok()) << e.status();
  EXPECT_EQ(e->Value("faultline_revert_failures_total"), 1);
  EXPECT_EQ(cli.Get("/metrics/../etc")->status, 404);
  EXPECT_EQ(cli.Get("/")->status, 404);
  EXPECT_EQ(cli.Post("/metrics", "x", "text/plain")->status, 404);
}

// Clients that connect and send nothing hold a worker only until the read
// timeout; others still get answers meanwhile (no hang).
TEST(HttpEndpoint, SilentClientsDoNotBlockAScrape) {
  Registry r;
  r.AddGauge("faultline_agents", "Agents.", {"zone", "health"});
  auto ep = HttpEndpoint::Start("--http", "127.0.0.1:0", {MetricsRoute(&r)});
  ASSERT_TRUE(ep.ok()) << ep.status();
  const std::string& a = (*ep)->address();
  const int port = std::stoi(a.substr(a.rfind(':') + 1));
  std::vector<int> silent;
  for (int i = 0; i < HttpEndpoint::kWorkers; ++i) {
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in sa{};
    sa.sin_family = AF_INET;
    sa.sin_port = htons(port);
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ASSERT_EQ(connect(fd, reinterpret_cast<sockaddr*>(&sa), sizeof sa), 0);
    silent.push_back(fd);
  }
  httplib::Client cli("http://" + a);
  cli.set_read_timeout(15, 0);
  const auto t0 = std::chrono::steady_clock::now();
  auto res = cli.Get("/metrics");
  const auto waited = std::chrono::steady_clock::now() - t0;
  ASSERT_TRUE(res);
  EXPECT_EQ(res->status, 200);
  EXPECT_LT(waited, std::chrono::seconds(10));
  for (int fd : silent) close(fd);
}

TEST(HttpEndpoint, BadAddressesAreRefusedNamingTheFlag) {
  for (const char* bad : {"", "127.0.0.1", "127.0.0.1:99999", "unix:/tmp/x", "nohost:80"}) {
    auto ep = HttpEndpoint::Start("--http", bad, {});
    ASSERT_FALSE(ep.ok()) << bad;
    EXPECT_THAT(std::string(ep.status().message()), HasSubstr("--http")) << bad;
  }
  auto first = HttpEndpoint::Start("--http", "127.0.0.1:0", {});
  ASSERT_TRUE(first.ok());
  auto again = HttpEndpoint::Start("--http", (*first)->address(), {});
  ASSERT_FALSE(again.ok());
  EXPECT_THAT(std::string(again.status().message()), HasSubstr("cannot listen"));
}

}  // namespace
}  // namespace faultline::metrics
