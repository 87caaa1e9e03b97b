// The controller's SQLite store: agents, runs, events (each run's timeline) and
// results. One file; runs survive a controller restart.
#ifndef FAULTLINE_CONTROLLER_STORE_H_
#define FAULTLINE_CONTROLLER_STORE_H_

#include <sqlite3.h>

#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "faultline/v1/agent.pb.h"
#include "faultline/v1/controller.pb.h"

namespace faultline::controller {

// The most runs one ListRuns returns (`faultline runs --limit`; a request's
// limit 0 means this many): a reply stays far below gRPC's message limit.
inline constexpr int kMaxListRuns = 1000;

// An agent as the store keeps it.
struct StoredAgent {
  std::string address;
  // The principal that registered the agent (auth::Caller::Principal(): its
  // certificate's SPIFFE ID, "unix:uid=N" or "insecure"); only it may
  // re-register or heartbeat the name.
  std::string identity;
  v1::InfoResponse info;  // the last registration or heartbeat
  int64_t registered_unix_ns = 0;
  int64_t last_heartbeat_unix_ns = 0;
};

// A schedule as the store keeps it (the scheduler's own fields beside the
// spec the user gave).
struct StoredSchedule {
  v1::ScheduleSpec spec;
  std::string experiment;  // the experiment's name
  std::string state = "active";  // active | suspended
  std::string created_by;
  int64_t created_unix_ns = 0;
  // `every` ticks count from here (the add or the last update).
  int64_t anchor_unix_ns = 0;
  // The newest tick handled (run or skipped), or the anchor before any.
  int64_t last_tick_unix_ns = 0;
};

// A game day as the store keeps it: the plan it runs and its timeline.
struct StoredGameDay {
  std::string id;
  v1::GameDayPlan plan;
  std::string state = "running";  // running | completed | aborted
  std::string started_by;
  int64_t started_unix_ns = 0;
  int64_t ended_unix_ns = 0;
  std::vector<v1::GameDayEvent> events;  // in order (GetGameDay only)
};

// One open database. Owned by the controller; thread-safe (one connection
// behind a mutex: writes are small and rare).
class Store {
 public:
  // Opens (creating folders, file and tables as needed) the database at `path`;
  // ":memory:" for tests.
  static absl::StatusOr<std::unique_ptr<Store>> Open(const std::string& path);
  ~Store();
  Store(const Store&) = delete;
  Store& operator=(const Store&) = delete;

  // Stores an agent whose registration the controller accepted (authenticated
  // and validated); nothing else may reach the agents table.
  absl::Status UpsertAgent(const StoredAgent& agent);
  absl::StatusOr<std::vector<StoredAgent>> ListAgents();
  // Removes the agent called `name` (missing is fine).
  absl::Status DeleteAgent(const std::string& name);

  // Writes the whole run: its row, its result and its timeline (replacing what
  // was stored for that run id).
  absl::Status SaveRun(const v1::RunReport& run);
  absl::StatusOr<v1::RunReport> GetRun(const std::string& run_id);
  // Newest first; without timelines. limit <= 0: all.
  absl::StatusOr<std::vector<v1::RunReport>> ListRuns(int limit);
  // Marks every run still `running` as interrupted and returns them (called at
  // start-up, before any new run starts).
  absl::StatusOr<std::vector<v1::RunReport>> MarkInterrupted();

  // Schedules. AddSchedule: ALREADY_EXISTS for a taken name; the others
  // NOT_FOUND for an unknown one. UpdateSchedule replaces the spec, the
  // experiment, the anchor and the last tick (the state and creation stay).
  absl::Status AddSchedule(const StoredSchedule& schedule);
  absl::Status UpdateSchedule(const StoredSchedule& schedule);
  absl::StatusOr<StoredSchedule> GetSchedule(const std::string& name);
  absl::StatusOr<std::vector<StoredSchedule>> ListSchedules();
  absl::Status SetScheduleState(const std::string& name, const std::string& state);
  // Removes the schedule and its ticks (its runs stay in the run history).
  absl::Status DeleteSchedule(const std::string& name);
  // Records what became of one tick, once: false when (schedule, scheduled
  // time) is already recorded, which a unique key guarantees, so no tick runs
  // twice whatever restarts. Advances the schedule's last tick with it.
  absl::StatusOr<bool> RecordTick(const std::string& schedule, const v1::ScheduleTick& tick);
  // Turns a recorded `started` tick into a `skipped` one (a run the blast
  // radius refused: reason `limit`).
  absl::Status MarkTickSkipped(const std::string& schedule, int64_t scheduled_unix_ns,
                               const std::string& reason, const std::string& detail);
  // The newest `limit` ticks, newest first, each with its run's figures.
  absl::StatusOr<std::vector<v1::ScheduleTick>> ListTicks(const std::string& schedule, int limit);
  // Keeps the newest `keep` ticks of a schedule; older ones go, with their runs.
  absl::Status PruneTicks(const std::string& schedule, int keep);

  // Blackouts. AddBlackout: ALREADY_EXISTS; DeleteBlackout: NOT_FOUND.
  absl::Status AddBlackout(const v1::Blackout& blackout);
  absl::StatusOr<std::vector<v1::Blackout>> ListBlackouts();
  absl::Status DeleteBlackout(const std::string& name);

  // Game days. AddGameDay: ALREADY_EXISTS for a taken id; the others NOT_FOUND
  // for an unknown one. AppendGameDayEvent numbers the event after the last.
  absl::Status AddGameDay(const StoredGameDay& gameday);
  absl::Status EndGameDay(const std::string& id, const std::string& state, int64_t ended_unix_ns);
  absl::Status AppendGameDayEvent(const std::string& id, const v1::GameDayEvent& event);
  absl::StatusOr<StoredGameDay> GetGameDay(const std::string& id);
  // Newest first, without events; `only_running` for those still running.
  absl::StatusOr<std::vector<StoredGameDay>> ListGameDays(int limit, bool only_running);
  // Events of a game day (for its step count on a list).
  absl::StatusOr<int> CountGameDayEvents(const std::string& id);

 private:
  struct DbCloser {
    void operator()(sqlite3* db) const { sqlite3_close(db); }
  };
  explicit Store(sqlite3* db) : db_(db) {}
  absl::Status Exec(const std::string& sql);
  // Runs `body` inside BEGIN IMMEDIATE .. COMMIT (ROLLBACK on an error); mu_ held.
  absl::Status Transaction(const std::function<absl::Status()>& body);
  // Deletes runs (row, result, events); mu_ held, inside a transaction.
  absl::Status DeleteRunsLocked(const std::vector<std::string>& run_ids);
  // Adds columns that databases made by older versions lack.
  absl::Status Migrate();

  std::mutex mu_;
  std::unique_ptr<sqlite3, DbCloser> db_;
};

}  // namespace faultline::controller

#endif  // FAULTLINE_CONTROLLER_STORE_H_
