// The controller's read-only web dashboard (docs/dashboard.md): the overview
// (agents by zone with health and active faults, running and recent runs,
// schedules with their next run and trend, game days), a run's page (its
// report and an SVG timeline) and a game day's page that updates live. Served
// on the controller's --http listener beside /metrics; actions stay in the CLI.
#ifndef FAULTLINE_WEB_DASHBOARD_H_
#define FAULTLINE_WEB_DASHBOARD_H_

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "faultline/v1/controller.pb.h"
#include "metrics/http_endpoint.h"

namespace faultline::web {

// Runs and game days the overview lists at most.
inline constexpr int kOverviewRuns = 25;
inline constexpr int kOverviewGameDays = 10;
// How often a game day's page asks for its live part (ms).
inline constexpr int kLiveRefreshMs = 1000;

// What the pages show, read from the controller (its service implements it).
// Every method is called on the HTTP listener's threads.
class DashboardData {
 public:
  virtual ~DashboardData() = default;
  virtual absl::StatusOr<v1::ListAgentsResponse> DashboardAgents() = 0;
  virtual absl::StatusOr<std::vector<v1::RunReport>> DashboardRuns(int limit) = 0;  // newest first
  virtual absl::StatusOr<v1::RunReport> DashboardRun(const std::string& run_id) = 0;
  virtual absl::StatusOr<std::vector<v1::ScheduleStatus>> DashboardSchedules() = 0;
  virtual absl::StatusOr<std::vector<v1::GameDayStatus>> DashboardGameDays(int limit) = 0;
  virtual absl::StatusOr<v1::GameDayStatus> DashboardGameDay(const std::string& id) = 0;
};

// The pages, as pure functions of what they show (tests render them directly).
std::string OverviewPage(const v1::ListAgentsResponse& agents, const std::vector<v1::RunReport>& runs,
                         const std::vector<v1::ScheduleStatus>& schedules,
                         const std::vector<v1::GameDayStatus>& gamedays, int64_t now_unix_ns);
std::string RunPage(const v1::RunReport& run);
// The run's timeline as an SVG: each probe's samples as a strip, each agent's
// faults as a bar, the detect and recover marks with their error bands.
std::string RunTimelineSvg(const v1::RunReport& run);
std::string GameDayPage(const v1::GameDayStatus& gd);

// GET /, /runs/ID, /gamedays/ID and /gamedays/ID/live (the page's live part).
// Unknown ids are 404; a read that fails is 500 with the error. `data` is
// borrowed and must outlive the listener.
std::vector<metrics::HttpRoute> DashboardRoutes(DashboardData* data);

}  // namespace faultline::web

#endif  // FAULTLINE_WEB_DASHBOARD_H_
