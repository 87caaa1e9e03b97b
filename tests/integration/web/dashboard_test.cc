// The dashboard in a real browser: headless Chromium (Debian's `chromium`)
// loads the controller's pages from its --http listener, the DOM it built is
// checked (the verdict, the SVG timeline's strips, bars and marks, the
// overview's sections), screenshots of the run page and the game-day page are
// taken, and the game-day page's script updates it live (the page arrives
// waiting at a gate; the gate is approved before the page's first poll; the
// DOM Chromium ends with shows the game day completed). Also prints each
// page's weight and Chromium's time to render it (for the closing note; no
// bound on either).
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <thread>

#include "harness/subprocess.h"
#include "metrics/http_endpoint.h"
#include "tests/unit/controller/test_controller.h"
#include "web/dashboard.h"

namespace faultline::controller {
namespace {

using ::testing::HasSubstr;

// Chromium with everything that would talk to the outside switched off; its
// profile in `dir`. Loads `url`, then dumps the DOM or saves a screenshot.
struct Browser {
  std::string dir;

  std::vector<std::string> Argv(const std::string& url, const std::vector<std::string>& extra) {
    std::vector<std::string> argv = {
        "chromium", "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync",
        "--disable-default-apps", "--disable-extensions", "--disable-breakpad",
        "--disable-domain-reliability", "--no-pings", "--dns-prefetch-disable",
        "--user-data-dir=" + dir + "/profile", "--window-size=1280,1000", "--hide-scrollbars"};
    argv.insert(argv.end(), extra.begin(), extra.end());
    argv.push_back(url);
    return argv;
  }
  // The DOM after `budget_ms` of the page's (virtual) time; `ms` gets the wall time.
  std::string Dom(const std::string& url, int budget_ms, double* ms = nullptr) {
    const auto t0 = std::chrono::steady_clock::now();
    itest::CommandResult r = itest::RunCommand(
        Argv(url, {"--virtual-time-budget=" + std::to_string(budget_ms), "--dump-dom"}),
        std::chrono::seconds(60));
    if (ms != nullptr) {
      *ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
    }
    EXPECT_EQ(r.exit_code, 0) << r.Describe();
    return r.out;
  }
  // A PNG of the page; returns its size in bytes (0: none).
  size_t Screenshot(const std::string& url, const std::string& png) {
    itest::CommandResult r = itest::RunCommand(
        Argv(url, {"--virtual-time-budget=2000", "--screenshot=" + png}), std::chrono::seconds(60));
    EXPECT_EQ(r.exit_code, 0) << r.Describe();
    std::ifstream in(png, std::ios::binary);
    std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    EXPECT_EQ(bytes.substr(0, 8), std::string("\x89PNG\r\n\x1a\n", 8)) << png;
    return bytes.size();
  }
};

class DashboardTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::filesystem::remove_all(dir_);
    std::filesystem::create_directories(dir_);
    browser_.dir = dir_;
    // FAULTLINE_SCREENSHOT_DIR keeps the screenshots (docs/dashboard.md);
    // otherwise they go with the test's folder.
    const char* keep = std::getenv("FAULTLINE_SCREENSHOT_DIR");
    shots_ = keep != nullptr ? keep : dir_;
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  static std::string Get(const std::string& address, const std::string& path, int* status) {
    httplib::Client cli("http://" + address);
    cli.set_read_timeout(10, 0);
    auto res = cli.Get(path);
    *status = res ? res->status : -1;
    return res ? res->body : "";
  }

  const std::string dir_ = "/tmp/fltest-dashboard-" + std::to_string(getpid());
  std::string shots_;
  Browser browser_;
};

TEST_F(DashboardTest, TheRunPageShowsTheVerdictAndTheTimelineInChromium) {
  Fleet f;
  f.service.outage_length_ns = 400'000'000;
  TestController c;
  c.RegisterAndBeat(f.victim);
  c.RegisterAndBeat(f.observer);
  v1::RunReport run = c.Run(Experiment("50ms", "5s", "1s"));
  ASSERT_EQ(run.verdict(), "pass") << run.reason();
  ASSERT_TRUE(run.outage_observed());
  // A schedule for the overview.
  {
    grpc::ClientContext ctx;
    v1::AddScheduleRequest req;
    req.mutable_spec()->set_name("nightly");
    req.mutable_spec()->set_experiment_yaml(Experiment("50ms", "5s", "1s"));
    req.mutable_spec()->set_cron("0 3 * * *");
    v1::ScheduleStatus st;
    ASSERT_TRUE(c.stub()->AddSchedule(&ctx, req, &st).ok());
  }
  const std::string base = "http://" + c.http_address();

  // The run page: the report's verdict, the strip of the probe's samples,
  // the victim's fault bar, detect and recover with their errors.
  double ms = 0;
  int status = 0;
  const std::string served = Get(c.http_address(), "/runs/" + run.run_id(), &status);
  ASSERT_EQ(status, 200);
  const std::string dom = browser_.Dom(base + "/runs/" + run.run_id(), 500, &ms);
  EXPECT_THAT(dom, HasSubstr("id=\"verdict\" class=\"pass\">pass</b>"));
  EXPECT_THAT(dom, HasSubstr("<svg id=\"timeline\""));
  EXPECT_THAT(dom, HasSubstr("class=\"probe\" data-probe=\"svc\""));
  EXPECT_THAT(dom, HasSubstr("class=\"failed\""));  // the outage in the probe's strip
  EXPECT_THAT(dom, HasSubstr("class=\"fault\" data-agent=\"db-1\""));
  EXPECT_THAT(dom, HasSubstr("id=\"detect\""));
  EXPECT_THAT(dom, HasSubstr("id=\"recover\""));
  std::printf("run page: %zu bytes, rendered by chromium in %.0f ms\n", served.size(), ms);
  EXPECT_GT(browser_.Screenshot(base + "/runs/" + run.run_id(), shots_ + "/dashboard-run.png"),
            10000u);

  // The overview: agents by zone, the run, the schedule.
  const std::string overview = browser_.Dom(base + "/", 500, &ms);
  EXPECT_THAT(overview, HasSubstr("data-zone=\"a\""));
  EXPECT_THAT(overview, HasSubstr("data-agent=\"db-1\""));
  EXPECT_THAT(overview, HasSubstr(run.run_id()));
  EXPECT_THAT(overview, HasSubstr("data-schedule=\"nightly\""));
  const std::string overview_served = Get(c.http_address(), "/", &status);
  std::printf("overview: %zu bytes, rendered by chromium in %.0f ms\n", overview_served.size(), ms);
  browser_.Screenshot(base + "/", shots_ + "/dashboard-overview.png");

  // Unknown ids are 404; nothing else is served.
  Get(c.http_address(), "/runs/no-such-run", &status);
  EXPECT_EQ(status, 404);
  Get(c.http_address(), "/runs/..%2F..%2Fetc%2Fpasswd", &status);
  EXPECT_EQ(status, 404);
  Get(c.http_address(), "/gamedays/no-such", &status);
  EXPECT_EQ(status, 404);
}

// Serves the service's reads, except that once the game-day page itself has
// been served, the gate is approved and the game day run to its end before
// the answer goes out: the page's first poll then finds it completed.
class ApproveAfterThePage : public web::DashboardData {
 public:
  explicit ApproveAfterThePage(ControllerService* s) : s_(s) {}
  absl::StatusOr<v1::ListAgentsResponse> DashboardAgents() override { return s_->DashboardAgents(); }
  absl::StatusOr<std::vector<v1::RunReport>> DashboardRuns(int n) override {
    return s_->DashboardRuns(n);
  }
  absl::StatusOr<v1::RunReport> DashboardRun(const std::string& id) override {
    return s_->DashboardRun(id);
  }
  absl::StatusOr<std::vector<v1::ScheduleStatus>> DashboardSchedules() override {
    return s_->DashboardSchedules();
  }
  absl::StatusOr<std::vector<v1::GameDayStatus>> DashboardGameDays(int n) override {
    return s_->DashboardGameDays(n);
  }
  absl::StatusOr<v1::GameDayStatus> DashboardGameDay(const std::string& id) override {
    auto st = s_->DashboardGameDay(id);
    if (calls_++ == 0 && st.ok() && st->state() == "waiting") {
      served_state_ = st->state();
      EXPECT_TRUE(s_->gamedays().Approve(id, "spiffe://faultline/operator/alice", "go").ok());
      for (int i = 0; i < 100; ++i) {
        auto now = s_->DashboardGameDay(id);
        if (now.ok() && now->state() == "completed") break;
        std::this_thread::sleep_for(std::chrono::milliseconds(20));
      }
    }
    return st;
  }
  std::atomic<int> calls_{0};
  std::string served_state_;

 private:
  ControllerService* s_;
};

TEST_F(DashboardTest, TheGameDayPageUpdatesLive) {
  TestController c;
  grpc::ClientContext ctx;
  v1::StartGameDayRequest req;
  req.set_yaml(R"(
gameday: live-page
description: The page must follow the game day without a reload.
steps:
  - note: Announce it.
  - gate: {prompt: "Ready?", timeout: 60s}
  - wait: 100ms
)");
  v1::GameDayStatus started;
  ASSERT_TRUE(c.stub()->StartGameDay(&ctx, req, &started).ok());
  for (int i = 0; i < 100 && c.service()->gamedays().Get(started.id())->state() != "waiting"; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  ApproveAfterThePage data(c.service());
  auto http = metrics::HttpEndpoint::Start("--http", "127.0.0.1:0", web::DashboardRoutes(&data));
  ASSERT_TRUE(http.ok()) << http.status();
  const std::string url = "http://" + (*http)->address() + "/gamedays/" + started.id();
  double ms = 0;
  const std::string dom = browser_.Dom(url, 5000, &ms);
  EXPECT_EQ(data.served_state_, "waiting");  // the page arrived waiting at the gate
  EXPECT_GE(data.calls_.load(), 2);            // and its script asked again
  EXPECT_THAT(dom, HasSubstr("id=\"state\" class=\"completed\""));
  EXPECT_THAT(dom, HasSubstr("<b id=\"result\">pass</b>"));
  EXPECT_THAT(dom, HasSubstr("approved: go"));
  EXPECT_THAT(dom, HasSubstr("data-live=\"no\""));  // it stopped polling at the end
  std::printf("game-day page: rendered and followed by chromium in %.0f ms\n", ms);
  // The finished page, as a picture.
  EXPECT_GT(browser_.Screenshot(url, shots_ + "/dashboard-gameday.png"), 10000u);
}

}  // namespace
}  // namespace faultline::controller
