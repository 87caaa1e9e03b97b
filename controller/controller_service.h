// The faultline.v1.Controller service: agent registry (registration,
// heartbeats, health), experiment runs, run history and abort.
#ifndef FAULTLINE_CONTROLLER_CONTROLLER_SERVICE_H_
#define FAULTLINE_CONTROLLER_CONTROLLER_SERVICE_H_

#include <atomic>
#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "auth/audit_log.h"
#include "auth/caller.h"
#include "controller/agent_client.h"
#include "controller/controller_metrics.h"
#include "controller/gameday.h"
#include "controller/runner.h"
#include "controller/scheduler.h"
#include "controller/store.h"
#include "web/dashboard.h"
#include "faultline/v1/controller.grpc.pb.h"

namespace faultline::controller {

struct ControllerOptions {
  // Asked of agents; an agent is unhealthy after `unhealthy_after` without one.
  std::chrono::milliseconds heartbeat_interval{1000};
  std::chrono::milliseconds unhealthy_after{3500};
  // Registered agents at most (--max-agents): a registration of a new name
  // past it is refused with RESOURCE_EXHAUSTED; known agents keep theirs.
  size_t max_agents = 10000;
  RunnerOptions runner;
  FleetLimits fleet;  // blast-radius caps of every run
  // Who may call what (borrowed; must outlive the service). Null: every call
  // must carry a certificate (no --insecure, no unix socket peers).
  const auth::Authorizer* authorizer = nullptr;
  auth::AuditLog* audit = nullptr;  // --audit-log (borrowed); null: none
  // --http's /metrics (borrowed); null: none. Its registry's scrapes call
  // into the service, so scraping must stop before the service goes.
  ControllerMetrics* metrics = nullptr;
};

// Checks a registration's fields before anything is stored: info.name is
// [a-z0-9][a-z0-9.-]{0,62}; address is unix:/PATH or HOST:PORT with an IP
// address or a host name and a port 1-65535; labels, version and
// capabilities are short and printable. INVALID_ARGUMENT naming the field.
absl::Status ValidateRegistration(const v1::RegisterRequest& request);

// One controller's service. Owned by main (or a test); thread-safe (gRPC calls
// it from many threads). The store must outlive it. Every call is authorized
// first: Register and Heartbeat only for `agent` callers whose certificate
// names the agent (and only the principal that registered a name may use it
// again), runs and aborts for `operator`, reads for `viewer` and `operator`.
// Only accepted registrations reach the store.
class ControllerService final : public v1::Controller::Service,
                                public ScheduledRuns,
                                public GameDayRuns,
                                public web::DashboardData {
 public:
  ControllerService(Store* store, ControllerOptions options);
  ~ControllerService() override;

  // Start-up: loads the agents, marks runs that were in flight `interrupted`
  // and tells their agents (in the background) to revert the runs' leases.
  absl::Status Recover();
  // Aborts every running experiment; returns how many.
  int AbortRuns();
  // Shutdown: the scheduler and the game days stop (no new run starts; a
  // running game day resumes at the next start), then AbortRuns.
  int Shutdown();
  Scheduler& scheduler() { return *scheduler_; }
  GameDays& gamedays() { return *gamedays_; }

  // ScheduledRuns (the scheduler's runs: each on a thread of the service's).
  absl::Status StartScheduledRun(const std::string& run_id, const v1::Experiment& exp,
                                 const std::string& schedule, int64_t scheduled_unix_ns) override;
  bool RunActive(const std::string& run_id) override;
  void AbortRun(const std::string& run_id, const std::string& why) override;
  // GameDayRuns (a game day's runs: on the game day's thread).
  v1::RunReport RunForGameDay(const std::string& run_id, const v1::Experiment& exp,
                              const std::string& gameday,
                              const std::function<bool()>& cancelled) override;

  // web::DashboardData (the dashboard's pages; no caller check: the HTTP
  // listener is read-only and bound where the operator chose).
  absl::StatusOr<v1::ListAgentsResponse> DashboardAgents() override;
  absl::StatusOr<std::vector<v1::RunReport>> DashboardRuns(int limit) override;
  absl::StatusOr<v1::RunReport> DashboardRun(const std::string& run_id) override;
  absl::StatusOr<std::vector<v1::ScheduleStatus>> DashboardSchedules() override;
  absl::StatusOr<std::vector<v1::GameDayStatus>> DashboardGameDays(int limit) override;
  absl::StatusOr<v1::GameDayStatus> DashboardGameDay(const std::string& id) override;

  grpc::Status Register(grpc::ServerContext*, const v1::RegisterRequest*,
                        v1::RegisterResponse*) override;
  grpc::Status Heartbeat(grpc::ServerContext*, const v1::RegisterRequest*,
                         v1::RegisterResponse*) override;
  grpc::Status ListAgents(grpc::ServerContext*, const v1::ListAgentsRequest*,
                          v1::ListAgentsResponse*) override;
  grpc::Status RunExperiment(grpc::ServerContext*, const v1::RunExperimentRequest*,
                             grpc::ServerWriter<v1::RunUpdate>*) override;
  grpc::Status ListRuns(grpc::ServerContext*, const v1::ListRunsRequest*,
                        v1::ListRunsResponse*) override;
  grpc::Status GetRun(grpc::ServerContext*, const v1::GetRunRequest*, v1::RunReport*) override;
  grpc::Status Abort(grpc::ServerContext*, const v1::AbortRequest*, v1::AbortResponse*) override;
  grpc::Status AddSchedule(grpc::ServerContext*, const v1::AddScheduleRequest*,
                           v1::ScheduleStatus*) override;
  grpc::Status UpdateSchedule(grpc::ServerContext*, const v1::AddScheduleRequest*,
                              v1::ScheduleStatus*) override;
  grpc::Status ListSchedules(grpc::ServerContext*, const v1::ListSchedulesRequest*,
                             v1::ListSchedulesResponse*) override;
  grpc::Status GetSchedule(grpc::ServerContext*, const v1::GetScheduleRequest*,
                           v1::ScheduleStatus*) override;
  grpc::Status SetScheduleState(grpc::ServerContext*, const v1::SetScheduleStateRequest*,
                                v1::ScheduleStatus*) override;
  grpc::Status DeleteSchedule(grpc::ServerContext*, const v1::DeleteScheduleRequest*,
                              v1::DeleteScheduleResponse*) override;
  grpc::Status AddBlackout(grpc::ServerContext*, const v1::Blackout*,
                           v1::AddBlackoutResponse*) override;
  grpc::Status ListBlackouts(grpc::ServerContext*, const v1::ListBlackoutsRequest*,
                             v1::ListBlackoutsResponse*) override;
  grpc::Status DeleteBlackout(grpc::ServerContext*, const v1::DeleteBlackoutRequest*,
                              v1::DeleteBlackoutResponse*) override;
  grpc::Status StartGameDay(grpc::ServerContext*, const v1::StartGameDayRequest*,
                            v1::GameDayStatus*) override;
  grpc::Status GetGameDay(grpc::ServerContext*, const v1::GetGameDayRequest*,
                          v1::GameDayStatus*) override;
  grpc::Status ListGameDays(grpc::ServerContext*, const v1::ListGameDaysRequest*,
                            v1::ListGameDaysResponse*) override;
  grpc::Status ApproveGameDay(grpc::ServerContext*, const v1::GameDayActionRequest*,
                              v1::GameDayStatus*) override;
  grpc::Status NoteGameDay(grpc::ServerContext*, const v1::GameDayActionRequest*,
                           v1::GameDayStatus*) override;
  grpc::Status AbortGameDay(grpc::ServerContext*, const v1::GameDayActionRequest*,
                            v1::GameDayStatus*) override;

 private:
  struct Agent {
    StoredAgent stored;
    std::chrono::steady_clock::time_point last_seen;
    bool seen = false;  // a heartbeat arrived since start-up
  };
  // Checks and records a registration or heartbeat from `caller`; returns what
  // changed ("" when nothing but the heartbeat time did).
  absl::StatusOr<std::string> Upsert(const v1::RegisterRequest& req, const auth::Caller& caller,
                                     v1::RegisterResponse* resp);
  grpc::Status RegisterOrHeartbeat(grpc::ServerContext* ctx, const char* method,
                                   const v1::RegisterRequest* req, v1::RegisterResponse* resp);
  bool Healthy(const Agent& a) const;
  // Every agent with its health, and its active faults asked of it.
  v1::ListAgentsResponse AgentsNow();
  std::vector<AgentRef> Snapshot();
  // The registered name of the agent at `address` (the address if none).
  std::string NameAt(const std::string& address);
  // The gauges read off live state, at each scrape.
  void RefreshMetrics();
  // An operator's schedule or blackout change: authorizes, runs `change`,
  // audits `what_json` with its outcome.
  grpc::Status Change(grpc::ServerContext* ctx, const char* method, const std::string& what_json,
                      const std::function<absl::Status(const std::string& who)>& change);
  // A reader's query.
  grpc::Status Read(grpc::ServerContext* ctx, const char* method,
                    const std::function<absl::Status()>& read);
  // Joins the threads of scheduled runs that have ended; mu_ held.
  void ReapLocked();

  Store* const store_;
  const ControllerOptions options_;
  const auth::Authorizer certificates_only_;  // used when options_.authorizer is null
  const auth::Authorizer* const authorizer_;
  AgentClients clients_;  // shared by every run and by the service's own calls
  FleetGuard fleet_;      // the agents runs hold; the blast-radius caps
  const RunnerOptions run_options_;  // every run's: options_.runner with fleet_

  std::mutex mu_;
  std::map<std::string, Agent> agents_;                 // by name
  std::map<std::string, ExperimentRun*> runs_;          // running, by id
  std::vector<std::thread> background_;                 // interrupted-run reverts
  struct RunThread {
    std::thread thread;
    std::shared_ptr<std::atomic<bool>> done;
  };
  std::vector<RunThread> scheduled_;  // scheduled runs' threads
  bool shutting_down_ = false;        // no scheduled run starts
  std::unique_ptr<Scheduler> scheduler_;
  std::unique_ptr<GameDays> gamedays_;
};

}  // namespace faultline::controller

#endif  // FAULTLINE_CONTROLLER_CONTROLLER_SERVICE_H_
