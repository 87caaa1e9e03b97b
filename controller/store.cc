#include "controller/store.h"

#include <fmt/format.h>

#include <algorithm>
#include <filesystem>

#include "common/files.h"
#include "common/status_macros.h"

namespace faultline::controller {
namespace {

constexpr char kSchema[] = R"sql(
PRAGMA journal_mode=WAL;
PRAGMA synchronous=FULL;
CREATE TABLE IF NOT EXISTS agents (
  name TEXT PRIMARY KEY,
  address TEXT NOT NULL,
  info BLOB NOT NULL,
  registered_unix_ns INTEGER NOT NULL,
  last_heartbeat_unix_ns INTEGER NOT NULL,
  identity TEXT NOT NULL DEFAULT ''
);
CREATE TABLE IF NOT EXISTS runs (
  id TEXT PRIMARY KEY,
  experiment TEXT NOT NULL,
  state TEXT NOT NULL,
  verdict TEXT NOT NULL,
  started_unix_ns INTEGER NOT NULL,
  ended_unix_ns INTEGER NOT NULL,
  report BLOB NOT NULL
);
CREATE TABLE IF NOT EXISTS results (
  run_id TEXT PRIMARY KEY REFERENCES runs(id),
  verdict TEXT NOT NULL,
  rto_target_ms REAL, time_to_detect_ms REAL, outage_ms REAL,
  time_to_recover_ms REAL, error_ms REAL, recovered_during_fault INTEGER
);
CREATE TABLE IF NOT EXISTS events (
  run_id TEXT NOT NULL REFERENCES runs(id),
  seq INTEGER NOT NULL,
  unix_ns INTEGER NOT NULL,
  kind TEXT NOT NULL,
  agent TEXT NOT NULL,
  detail TEXT NOT NULL,
  error_ms REAL NOT NULL,
  PRIMARY KEY (run_id, seq)
);
CREATE TABLE IF NOT EXISTS schedules (
  name TEXT PRIMARY KEY,
  spec BLOB NOT NULL,
  experiment TEXT NOT NULL,
  state TEXT NOT NULL,
  created_by TEXT NOT NULL,
  created_unix_ns INTEGER NOT NULL,
  anchor_unix_ns INTEGER NOT NULL,
  last_tick_unix_ns INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS schedule_ticks (
  schedule TEXT NOT NULL,
  scheduled_unix_ns INTEGER NOT NULL,
  tick BLOB NOT NULL,
  run_id TEXT NOT NULL,
  PRIMARY KEY (schedule, scheduled_unix_ns)
);
CREATE TABLE IF NOT EXISTS blackouts (
  name TEXT PRIMARY KEY,
  blackout BLOB NOT NULL
);
CREATE TABLE IF NOT EXISTS gamedays (
  id TEXT PRIMARY KEY,
  name TEXT NOT NULL,
  plan BLOB NOT NULL,
  state TEXT NOT NULL,
  started_by TEXT NOT NULL,
  started_unix_ns INTEGER NOT NULL,
  ended_unix_ns INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS gameday_events (
  gameday TEXT NOT NULL REFERENCES gamedays(id),
  seq INTEGER NOT NULL,
  event BLOB NOT NULL,
  PRIMARY KEY (gameday, seq)
);
)sql";

struct StmtFinalizer {
  void operator()(sqlite3_stmt* s) const { sqlite3_finalize(s); }
};
using Stmt = std::unique_ptr<sqlite3_stmt, StmtFinalizer>;

absl::Status SqlError(sqlite3* db, const std::string& what) {
  return absl::InternalError(fmt::format("sqlite: {}: {}", what, sqlite3_errmsg(db)));
}

absl::StatusOr<Stmt> Prepare(sqlite3* db, const char* sql) {
  sqlite3_stmt* s = nullptr;
  if (sqlite3_prepare_v2(db, sql, -1, &s, nullptr) != SQLITE_OK) return SqlError(db, sql);
  return Stmt(s);
}

void BindText(sqlite3_stmt* s, int i, const std::string& v) {
  sqlite3_bind_text(s, i, v.data(), static_cast<int>(v.size()), SQLITE_TRANSIENT);
}
void BindBlob(sqlite3_stmt* s, int i, const std::string& v) {
  sqlite3_bind_blob(s, i, v.data(), static_cast<int>(v.size()), SQLITE_TRANSIENT);
}
std::string ColumnBytes(sqlite3_stmt* s, int i) {
  const void* p = sqlite3_column_blob(s, i);
  return p == nullptr ? std::string()
                      : std::string(static_cast<const char*>(p), sqlite3_column_bytes(s, i));
}

absl::Status StepDone(sqlite3* db, sqlite3_stmt* s, const std::string& what) {
  if (sqlite3_step(s) != SQLITE_DONE) return SqlError(db, what);
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<std::unique_ptr<Store>> Store::Open(const std::string& path) {
  if (path != ":memory:") {
    std::string dir = std::filesystem::path(path).parent_path().string();
    if (!dir.empty()) RETURN_IF_ERROR(MakeDirs(dir, 0700));
  }
  sqlite3* db = nullptr;
  int rc = sqlite3_open_v2(path.c_str(), &db,
                           SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_FULLMUTEX,
                           nullptr);
  if (rc != SQLITE_OK) {
    std::string msg = db ? sqlite3_errmsg(db) : "out of memory";
    sqlite3_close(db);
    return absl::FailedPreconditionError(fmt::format("--db: cannot open {}: {}", path, msg));
  }
  sqlite3_busy_timeout(db, 5000);
  std::unique_ptr<Store> store(new Store(db));
  RETURN_IF_ERROR(store->Exec(kSchema));
  RETURN_IF_ERROR(store->Migrate());
  return store;
}

absl::Status Store::Migrate() {
  std::lock_guard<std::mutex> lock(mu_);
  ASSIGN_OR_RETURN(Stmt s, Prepare(db_.get(), "SELECT 1 FROM pragma_table_info('agents') "
                                              "WHERE name = 'identity'"));
  const int rc = sqlite3_step(s.get());
  if (rc == SQLITE_ROW) return absl::OkStatus();
  if (rc != SQLITE_DONE) return SqlError(db_.get(), "agents columns");
  return Exec("ALTER TABLE agents ADD COLUMN identity TEXT NOT NULL DEFAULT ''");
}

Store::~Store() = default;

absl::Status Store::Exec(const std::string& sql) {
  char* err = nullptr;
  if (sqlite3_exec(db_.get(), sql.c_str(), nullptr, nullptr, &err) != SQLITE_OK) {
    std::string msg = err ? err : "unknown error";
    sqlite3_free(err);
    return absl::InternalError(fmt::format("sqlite: {}", msg));
  }
  return absl::OkStatus();
}

absl::Status Store::Transaction(const std::function<absl::Status()>& body) {
  RETURN_IF_ERROR(Exec("BEGIN IMMEDIATE"));
  absl::Status st = body();
  if (!st.ok()) {
    (void)Exec("ROLLBACK");
    return st;
  }
  return Exec("COMMIT");
}

absl::Status Store::UpsertAgent(const StoredAgent& agent) {
  std::lock_guard<std::mutex> lock(mu_);
  ASSIGN_OR_RETURN(Stmt s, Prepare(db_.get(),
                                   "INSERT INTO agents(name, address, info, registered_unix_ns, "
                                   "last_heartbeat_unix_ns, identity) "
                                   "VALUES(?1, ?2, ?3, ?4, ?5, ?6) "
                                   "ON CONFLICT(name) DO UPDATE SET address=?2, info=?3, "
                                   "last_heartbeat_unix_ns=?5, identity=?6"));
  BindText(s.get(), 1, agent.info.name());
  BindText(s.get(), 2, agent.address);
  BindBlob(s.get(), 3, agent.info.SerializeAsString());
  sqlite3_bind_int64(s.get(), 4, agent.registered_unix_ns);
  sqlite3_bind_int64(s.get(), 5, agent.last_heartbeat_unix_ns);
  BindText(s.get(), 6, agent.identity);
  return StepDone(db_.get(), s.get(), "upsert agent");
}

absl::Status Store::DeleteAgent(const std::string& name) {
  std::lock_guard<std::mutex> lock(mu_);
  ASSIGN_OR_RETURN(Stmt s, Prepare(db_.get(), "DELETE FROM agents WHERE name = ?1"));
  BindText(s.get(), 1, name);
  return StepDone(db_.get(), s.get(), "delete agent");
}

absl::StatusOr<std::vector<StoredAgent>> Store::ListAgents() {
  std::lock_guard<std::mutex> lock(mu_);
  ASSIGN_OR_RETURN(Stmt s, Prepare(db_.get(),
                                   "SELECT address, info, registered_unix_ns, "
                                   "last_heartbeat_unix_ns, identity FROM agents ORDER BY name"));
  std::vector<StoredAgent> out;
  int rc;
  while ((rc = sqlite3_step(s.get())) == SQLITE_ROW) {
    StoredAgent a;
    a.address = reinterpret_cast<const char*>(sqlite3_column_text(s.get(), 0));
    if (!a.info.ParseFromString(ColumnBytes(s.get(), 1))) {
      return absl::DataLossError("sqlite: agents.info does not parse");
    }
    a.registered_unix_ns = sqlite3_column_int64(s.get(), 2);
    a.last_heartbeat_unix_ns = sqlite3_column_int64(s.get(), 3);
    const unsigned char* identity = sqlite3_column_text(s.get(), 4);
    a.identity = identity != nullptr ? reinterpret_cast<const char*>(identity) : "";
    out.push_back(std::move(a));
  }
  if (rc != SQLITE_DONE) return SqlError(db_.get(), "list agents");
  return out;
}

absl::Status Store::SaveRun(const v1::RunReport& run) {
  std::lock_guard<std::mutex> lock(mu_);
  return Transaction([&]() -> absl::Status {
    ASSIGN_OR_RETURN(Stmt s, Prepare(db_.get(),
                                     "INSERT OR REPLACE INTO runs(id, experiment, state, verdict, "
                                     "started_unix_ns, ended_unix_ns, report) "
                                     "VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7)"));
    BindText(s.get(), 1, run.run_id());
    BindText(s.get(), 2, run.experiment());
    BindText(s.get(), 3, run.state());
    BindText(s.get(), 4, run.verdict());
    sqlite3_bind_int64(s.get(), 5, run.started_unix_ns());
    sqlite3_bind_int64(s.get(), 6, run.ended_unix_ns());
    BindBlob(s.get(), 7, run.SerializeAsString());
    RETURN_IF_ERROR(StepDone(db_.get(), s.get(), "save run"));

    ASSIGN_OR_RETURN(Stmt r, Prepare(db_.get(),
                                     "INSERT OR REPLACE INTO results(run_id, verdict, "
                                     "rto_target_ms, time_to_detect_ms, outage_ms, "
                                     "time_to_recover_ms, error_ms, recovered_during_fault) "
                                     "VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)"));
    BindText(r.get(), 1, run.run_id());
    BindText(r.get(), 2, run.verdict());
    sqlite3_bind_double(r.get(), 3, run.rto_target_ms());
    sqlite3_bind_double(r.get(), 4, run.time_to_detect_ms());
    sqlite3_bind_double(r.get(), 5, run.outage_ms());
    sqlite3_bind_double(r.get(), 6, run.time_to_recover_ms());
    sqlite3_bind_double(r.get(), 7, run.error_ms());
    sqlite3_bind_int(r.get(), 8, run.recovered_during_fault() ? 1 : 0);
    RETURN_IF_ERROR(StepDone(db_.get(), r.get(), "save result"));

    ASSIGN_OR_RETURN(Stmt d, Prepare(db_.get(), "DELETE FROM events WHERE run_id = ?1"));
    BindText(d.get(), 1, run.run_id());
    RETURN_IF_ERROR(StepDone(db_.get(), d.get(), "clear events"));
    ASSIGN_OR_RETURN(Stmt e, Prepare(db_.get(),
                                     "INSERT INTO events(run_id, seq, unix_ns, kind, agent, "
                                     "detail, error_ms) VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7)"));
    for (int i = 0; i < run.timeline_size(); ++i) {
      const auto& ev = run.timeline(i);
      sqlite3_reset(e.get());
      BindText(e.get(), 1, run.run_id());
      sqlite3_bind_int(e.get(), 2, i);
      sqlite3_bind_int64(e.get(), 3, ev.unix_ns());
      BindText(e.get(), 4, ev.kind());
      BindText(e.get(), 5, ev.agent());
      BindText(e.get(), 6, ev.detail());
      sqlite3_bind_double(e.get(), 7, ev.error_ms());
      RETURN_IF_ERROR(StepDone(db_.get(), e.get(), "save event"));
    }
    return absl::OkStatus();
  });
}

absl::StatusOr<v1::RunReport> Store::GetRun(const std::string& run_id) {
  std::lock_guard<std::mutex> lock(mu_);
  ASSIGN_OR_RETURN(Stmt s, Prepare(db_.get(), "SELECT report FROM runs WHERE id = ?1"));
  BindText(s.get(), 1, run_id);
  int rc = sqlite3_step(s.get());
  if (rc == SQLITE_DONE) return absl::NotFoundError(fmt::format("run_id: no run \"{}\"", run_id));
  if (rc != SQLITE_ROW) return SqlError(db_.get(), "get run");
  v1::RunReport run;
  if (!run.ParseFromString(ColumnBytes(s.get(), 0))) {
    return absl::DataLossError("sqlite: runs.report does not parse");
  }
  return run;
}

absl::StatusOr<std::vector<v1::RunReport>> Store::ListRuns(int limit) {
  std::lock_guard<std::mutex> lock(mu_);
  ASSIGN_OR_RETURN(Stmt s, Prepare(db_.get(),
                                   "SELECT report FROM runs ORDER BY started_unix_ns DESC, id "
                                   "DESC LIMIT ?1"));
  sqlite3_bind_int(s.get(), 1, limit > 0 ? limit : -1);
  std::vector<v1::RunReport> out;
  int rc;
  while ((rc = sqlite3_step(s.get())) == SQLITE_ROW) {
    v1::RunReport run;
    if (!run.ParseFromString(ColumnBytes(s.get(), 0))) {
      return absl::DataLossError("sqlite: runs.report does not parse");
    }
    run.clear_timeline();
    out.push_back(std::move(run));
  }
  if (rc != SQLITE_DONE) return SqlError(db_.get(), "list runs");
  return out;
}

absl::StatusOr<std::vector<v1::RunReport>> Store::MarkInterrupted() {
  std::vector<v1::RunReport> running;
  {
    std::lock_guard<std::mutex> lock(mu_);
    ASSIGN_OR_RETURN(Stmt s, Prepare(db_.get(), "SELECT report FROM runs WHERE state = 'running'"));
    int rc;
    while ((rc = sqlite3_step(s.get())) == SQLITE_ROW) {
      v1::RunReport run;
      if (run.ParseFromString(ColumnBytes(s.get(), 0))) running.push_back(std::move(run));
    }
    if (rc != SQLITE_DONE) return SqlError(db_.get(), "find running runs");
  }
  for (auto& run : running) {
    run.set_state("interrupted");
    run.set_verdict("interrupted");
    run.set_reason("the controller stopped while the run was in flight");
    RETURN_IF_ERROR(SaveRun(run));
  }
  return running;
}

// ---- Schedules ----

namespace {

absl::StatusOr<StoredSchedule> ScheduleRow(sqlite3_stmt* s) {
  StoredSchedule out;
  if (!out.spec.ParseFromString(ColumnBytes(s, 0))) {
    return absl::DataLossError("sqlite: schedules.spec does not parse");
  }
  out.experiment = ColumnBytes(s, 1);
  out.state = ColumnBytes(s, 2);
  out.created_by = ColumnBytes(s, 3);
  out.created_unix_ns = sqlite3_column_int64(s, 4);
  out.anchor_unix_ns = sqlite3_column_int64(s, 5);
  out.last_tick_unix_ns = sqlite3_column_int64(s, 6);
  return out;
}

constexpr char kScheduleColumns[] =
    "spec, experiment, state, created_by, created_unix_ns, anchor_unix_ns, last_tick_unix_ns";

absl::Status NoSchedule(const std::string& name) {
  return absl::NotFoundError(fmt::format("name: no schedule \"{}\"", name));
}

}  // namespace

absl::Status Store::AddSchedule(const StoredSchedule& sc) {
  std::lock_guard<std::mutex> lock(mu_);
  ASSIGN_OR_RETURN(Stmt s, Prepare(db_.get(),
                                   "INSERT OR IGNORE INTO schedules(name, spec, experiment, state, "
                                   "created_by, created_unix_ns, anchor_unix_ns, "
                                   "last_tick_unix_ns) VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)"));
  BindText(s.get(), 1, sc.spec.name());
  BindBlob(s.get(), 2, sc.spec.SerializeAsString());
  BindText(s.get(), 3, sc.experiment);
  BindText(s.get(), 4, sc.state);
  BindText(s.get(), 5, sc.created_by);
  sqlite3_bind_int64(s.get(), 6, sc.created_unix_ns);
  sqlite3_bind_int64(s.get(), 7, sc.anchor_unix_ns);
  sqlite3_bind_int64(s.get(), 8, sc.last_tick_unix_ns);
  RETURN_IF_ERROR(StepDone(db_.get(), s.get(), "add schedule"));
  if (sqlite3_changes(db_.get()) == 0) {
    return absl::AlreadyExistsError(fmt::format(
        "name: a schedule \"{}\" exists (change it with `faultline schedule update`)",
        sc.spec.name()));
  }
  return absl::OkStatus();
}

absl::Status Store::UpdateSchedule(const StoredSchedule& sc) {
  std::lock_guard<std::mutex> lock(mu_);
  ASSIGN_OR_RETURN(Stmt s, Prepare(db_.get(),
                                   "UPDATE schedules SET spec = ?2, experiment = ?3, "
                                   "anchor_unix_ns = ?4, last_tick_unix_ns = ?5 WHERE name = ?1"));
  BindText(s.get(), 1, sc.spec.name());
  BindBlob(s.get(), 2, sc.spec.SerializeAsString());
  BindText(s.get(), 3, sc.experiment);
  sqlite3_bind_int64(s.get(), 4, sc.anchor_unix_ns);
  sqlite3_bind_int64(s.get(), 5, sc.last_tick_unix_ns);
  RETURN_IF_ERROR(StepDone(db_.get(), s.get(), "update schedule"));
  if (sqlite3_changes(db_.get()) == 0) return NoSchedule(sc.spec.name());
  return absl::OkStatus();
}

absl::StatusOr<StoredSchedule> Store::GetSchedule(const std::string& name) {
  std::lock_guard<std::mutex> lock(mu_);
  ASSIGN_OR_RETURN(Stmt s, Prepare(db_.get(), fmt::format("SELECT {} FROM schedules WHERE name = ?1",
                                                          kScheduleColumns)
                                                  .c_str()));
  BindText(s.get(), 1, name);
  const int rc = sqlite3_step(s.get());
  if (rc == SQLITE_DONE) return NoSchedule(name);
  if (rc != SQLITE_ROW) return SqlError(db_.get(), "get schedule");
  return ScheduleRow(s.get());
}

absl::StatusOr<std::vector<StoredSchedule>> Store::ListSchedules() {
  std::lock_guard<std::mutex> lock(mu_);
  ASSIGN_OR_RETURN(Stmt s, Prepare(db_.get(),
                                   fmt::format("SELECT {} FROM schedules ORDER BY name",
                                               kScheduleColumns)
                                       .c_str()));
  std::vector<StoredSchedule> out;
  int rc;
  while ((rc = sqlite3_step(s.get())) == SQLITE_ROW) {
    ASSIGN_OR_RETURN(StoredSchedule sc, ScheduleRow(s.get()));
    out.push_back(std::move(sc));
  }
  if (rc != SQLITE_DONE) return SqlError(db_.get(), "list schedules");
  return out;
}

absl::Status Store::SetScheduleState(const std::string& name, const std::string& state) {
  std::lock_guard<std::mutex> lock(mu_);
  ASSIGN_OR_RETURN(Stmt s, Prepare(db_.get(), "UPDATE schedules SET state = ?2 WHERE name = ?1"));
  BindText(s.get(), 1, name);
  BindText(s.get(), 2, state);
  RETURN_IF_ERROR(StepDone(db_.get(), s.get(), "set schedule state"));
  if (sqlite3_changes(db_.get()) == 0) return NoSchedule(name);
  return absl::OkStatus();
}

absl::Status Store::DeleteSchedule(const std::string& name) {
  std::lock_guard<std::mutex> lock(mu_);
  return Transaction([&]() -> absl::Status {
    ASSIGN_OR_RETURN(Stmt s, Prepare(db_.get(), "DELETE FROM schedules WHERE name = ?1"));
    BindText(s.get(), 1, name);
    RETURN_IF_ERROR(StepDone(db_.get(), s.get(), "delete schedule"));
    if (sqlite3_changes(db_.get()) == 0) return NoSchedule(name);
    ASSIGN_OR_RETURN(Stmt t, Prepare(db_.get(), "DELETE FROM schedule_ticks WHERE schedule = ?1"));
    BindText(t.get(), 1, name);
    return StepDone(db_.get(), t.get(), "delete ticks");
  });
}

absl::StatusOr<bool> Store::RecordTick(const std::string& schedule, const v1::ScheduleTick& tick) {
  std::lock_guard<std::mutex> lock(mu_);
  bool recorded = false;
  RETURN_IF_ERROR(Transaction([&]() -> absl::Status {
    ASSIGN_OR_RETURN(Stmt s, Prepare(db_.get(),
                                     "INSERT OR IGNORE INTO schedule_ticks(schedule, "
                                     "scheduled_unix_ns, tick, run_id) VALUES(?1, ?2, ?3, ?4)"));
    BindText(s.get(), 1, schedule);
    sqlite3_bind_int64(s.get(), 2, tick.scheduled_unix_ns());
    BindBlob(s.get(), 3, tick.SerializeAsString());
    BindText(s.get(), 4, tick.run_id());
    RETURN_IF_ERROR(StepDone(db_.get(), s.get(), "record tick"));
    recorded = sqlite3_changes(db_.get()) == 1;
    ASSIGN_OR_RETURN(Stmt u, Prepare(db_.get(),
                                     "UPDATE schedules SET last_tick_unix_ns = "
                                     "max(last_tick_unix_ns, ?2) WHERE name = ?1"));
    BindText(u.get(), 1, schedule);
    sqlite3_bind_int64(u.get(), 2, tick.scheduled_unix_ns());
    return StepDone(db_.get(), u.get(), "advance schedule");
  }));
  return recorded;
}

absl::Status Store::MarkTickSkipped(const std::string& schedule, int64_t scheduled_unix_ns,
                                    const std::string& reason, const std::string& detail) {
  std::lock_guard<std::mutex> lock(mu_);
  return Transaction([&]() -> absl::Status {
    ASSIGN_OR_RETURN(Stmt g, Prepare(db_.get(),
                                     "SELECT tick FROM schedule_ticks WHERE schedule = ?1 AND "
                                     "scheduled_unix_ns = ?2"));
    BindText(g.get(), 1, schedule);
    sqlite3_bind_int64(g.get(), 2, scheduled_unix_ns);
    if (sqlite3_step(g.get()) != SQLITE_ROW) return absl::OkStatus();  // pruned or deleted
    v1::ScheduleTick tick;
    if (!tick.ParseFromString(ColumnBytes(g.get(), 0))) {
      return absl::DataLossError("sqlite: schedule_ticks.tick does not parse");
    }
    tick.set_outcome("skipped");
    tick.set_reason(reason);
    tick.set_detail(detail);
    ASSIGN_OR_RETURN(Stmt u, Prepare(db_.get(),
                                     "UPDATE schedule_ticks SET tick = ?3 WHERE schedule = ?1 "
                                     "AND scheduled_unix_ns = ?2"));
    BindText(u.get(), 1, schedule);
    sqlite3_bind_int64(u.get(), 2, scheduled_unix_ns);
    BindBlob(u.get(), 3, tick.SerializeAsString());
    return StepDone(db_.get(), u.get(), "skip tick");
  });
}

absl::StatusOr<std::vector<v1::ScheduleTick>> Store::ListTicks(const std::string& schedule,
                                                               int limit) {
  std::lock_guard<std::mutex> lock(mu_);
  ASSIGN_OR_RETURN(Stmt s, Prepare(db_.get(),
                                   "SELECT t.tick, r.report FROM schedule_ticks t LEFT JOIN runs r "
                                   "ON r.id = t.run_id AND t.run_id != '' WHERE t.schedule = ?1 "
                                   "ORDER BY t.scheduled_unix_ns DESC LIMIT ?2"));
  BindText(s.get(), 1, schedule);
  sqlite3_bind_int(s.get(), 2, limit > 0 ? limit : -1);
  std::vector<v1::ScheduleTick> out;
  int rc;
  while ((rc = sqlite3_step(s.get())) == SQLITE_ROW) {
    v1::ScheduleTick tick;
    if (!tick.ParseFromString(ColumnBytes(s.get(), 0))) {
      return absl::DataLossError("sqlite: schedule_ticks.tick does not parse");
    }
    v1::RunReport run;
    if (sqlite3_column_type(s.get(), 1) != SQLITE_NULL &&
        run.ParseFromString(ColumnBytes(s.get(), 1))) {
      tick.set_verdict(run.verdict().empty() ? run.state() : run.verdict());
      tick.set_outage_observed(run.outage_observed());
      tick.set_time_to_recover_ms(run.time_to_recover_ms());
      tick.set_error_ms(run.error_ms());
      for (const auto& d : run.data()) {
        tick.set_rpo_measured(true);
        tick.set_rpo_ms(std::max(tick.rpo_ms(), d.rpo_ms()));
      }
      if (run.drill().rpo_measured()) {
        tick.set_rpo_measured(true);
        tick.set_rpo_ms(run.drill().restore_rpo_ms());
      }
    }
    out.push_back(std::move(tick));
  }
  if (rc != SQLITE_DONE) return SqlError(db_.get(), "list ticks");
  return out;
}

absl::Status Store::DeleteRunsLocked(const std::vector<std::string>& run_ids) {
  for (const char* sql : {"DELETE FROM events WHERE run_id = ?1",
                          "DELETE FROM results WHERE run_id = ?1", "DELETE FROM runs WHERE id = ?1"}) {
    ASSIGN_OR_RETURN(Stmt s, Prepare(db_.get(), sql));
    for (const std::string& id : run_ids) {
      sqlite3_reset(s.get());
      BindText(s.get(), 1, id);
      RETURN_IF_ERROR(StepDone(db_.get(), s.get(), "delete run"));
    }
  }
  return absl::OkStatus();
}

absl::Status Store::PruneTicks(const std::string& schedule, int keep) {
  std::lock_guard<std::mutex> lock(mu_);
  return Transaction([&]() -> absl::Status {
    ASSIGN_OR_RETURN(Stmt s, Prepare(db_.get(),
                                     "SELECT scheduled_unix_ns, run_id FROM schedule_ticks WHERE "
                                     "schedule = ?1 ORDER BY scheduled_unix_ns DESC LIMIT -1 "
                                     "OFFSET ?2"));
    BindText(s.get(), 1, schedule);
    sqlite3_bind_int(s.get(), 2, keep);
    std::vector<int64_t> ticks;
    std::vector<std::string> runs;
    int rc;
    while ((rc = sqlite3_step(s.get())) == SQLITE_ROW) {
      ticks.push_back(sqlite3_column_int64(s.get(), 0));
      std::string run = ColumnBytes(s.get(), 1);
      if (!run.empty()) runs.push_back(std::move(run));
    }
    if (rc != SQLITE_DONE) return SqlError(db_.get(), "old ticks");
    ASSIGN_OR_RETURN(Stmt d, Prepare(db_.get(),
                                     "DELETE FROM schedule_ticks WHERE schedule = ?1 AND "
                                     "scheduled_unix_ns = ?2"));
    for (int64_t t : ticks) {
      sqlite3_reset(d.get());
      BindText(d.get(), 1, schedule);
      sqlite3_bind_int64(d.get(), 2, t);
      RETURN_IF_ERROR(StepDone(db_.get(), d.get(), "prune tick"));
    }
    return DeleteRunsLocked(runs);
  });
}

// ---- Blackouts ----

absl::Status Store::AddBlackout(const v1::Blackout& blackout) {
  std::lock_guard<std::mutex> lock(mu_);
  ASSIGN_OR_RETURN(Stmt s, Prepare(db_.get(),
                                   "INSERT OR IGNORE INTO blackouts(name, blackout) VALUES(?1, ?2)"));
  BindText(s.get(), 1, blackout.name());
  BindBlob(s.get(), 2, blackout.SerializeAsString());
  RETURN_IF_ERROR(StepDone(db_.get(), s.get(), "add blackout"));
  if (sqlite3_changes(db_.get()) == 0) {
    return absl::AlreadyExistsError(
        fmt::format("name: a blackout \"{}\" exists", blackout.name()));
  }
  return absl::OkStatus();
}

absl::StatusOr<std::vector<v1::Blackout>> Store::ListBlackouts() {
  std::lock_guard<std::mutex> lock(mu_);
  ASSIGN_OR_RETURN(Stmt s, Prepare(db_.get(), "SELECT blackout FROM blackouts ORDER BY name"));
  std::vector<v1::Blackout> out;
  int rc;
  while ((rc = sqlite3_step(s.get())) == SQLITE_ROW) {
    v1::Blackout b;
    if (!b.ParseFromString(ColumnBytes(s.get(), 0))) {
      return absl::DataLossError("sqlite: blackouts.blackout does not parse");
    }
    out.push_back(std::move(b));
  }
  if (rc != SQLITE_DONE) return SqlError(db_.get(), "list blackouts");
  return out;
}

absl::Status Store::DeleteBlackout(const std::string& name) {
  std::lock_guard<std::mutex> lock(mu_);
  ASSIGN_OR_RETURN(Stmt s, Prepare(db_.get(), "DELETE FROM blackouts WHERE name = ?1"));
  BindText(s.get(), 1, name);
  RETURN_IF_ERROR(StepDone(db_.get(), s.get(), "delete blackout"));
  if (sqlite3_changes(db_.get()) == 0) {
    return absl::NotFoundError(fmt::format("name: no blackout \"{}\"", name));
  }
  return absl::OkStatus();
}

// ---- Game days ----

namespace {

absl::StatusOr<StoredGameDay> GameDayRow(sqlite3_stmt* s) {
  StoredGameDay gd;
  gd.id = reinterpret_cast<const char*>(sqlite3_column_text(s, 0));
  if (!gd.plan.ParseFromString(ColumnBytes(s, 1))) {
    return absl::DataLossError(fmt::format("sqlite: gamedays.plan of {} does not parse", gd.id));
  }
  gd.state = reinterpret_cast<const char*>(sqlite3_column_text(s, 2));
  gd.started_by = reinterpret_cast<const char*>(sqlite3_column_text(s, 3));
  gd.started_unix_ns = sqlite3_column_int64(s, 4);
  gd.ended_unix_ns = sqlite3_column_int64(s, 5);
  return gd;
}

absl::Status NoGameDay(const std::string& id) {
  return absl::NotFoundError(fmt::format("id: no game day \"{}\"", id));
}

constexpr char kGameDayColumns[] =
    "id, plan, state, started_by, started_unix_ns, ended_unix_ns FROM gamedays";

}  // namespace

absl::Status Store::AddGameDay(const StoredGameDay& gd) {
  std::lock_guard<std::mutex> lock(mu_);
  ASSIGN_OR_RETURN(Stmt s, Prepare(db_.get(),
                                   "INSERT OR IGNORE INTO gamedays(id, name, plan, state, "
                                   "started_by, started_unix_ns, ended_unix_ns) "
                                   "VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7)"));
  BindText(s.get(), 1, gd.id);
  BindText(s.get(), 2, gd.plan.spec().gameday());
  BindBlob(s.get(), 3, gd.plan.SerializeAsString());
  BindText(s.get(), 4, gd.state);
  BindText(s.get(), 5, gd.started_by);
  sqlite3_bind_int64(s.get(), 6, gd.started_unix_ns);
  sqlite3_bind_int64(s.get(), 7, gd.ended_unix_ns);
  RETURN_IF_ERROR(StepDone(db_.get(), s.get(), "add game day"));
  if (sqlite3_changes(db_.get()) == 0) {
    return absl::AlreadyExistsError(fmt::format("id: a game day \"{}\" exists", gd.id));
  }
  return absl::OkStatus();
}

absl::Status Store::EndGameDay(const std::string& id, const std::string& state,
                               int64_t ended_unix_ns) {
  std::lock_guard<std::mutex> lock(mu_);
  ASSIGN_OR_RETURN(Stmt s, Prepare(db_.get(), "UPDATE gamedays SET state = ?2, "
                                              "ended_unix_ns = ?3 WHERE id = ?1"));
  BindText(s.get(), 1, id);
  BindText(s.get(), 2, state);
  sqlite3_bind_int64(s.get(), 3, ended_unix_ns);
  RETURN_IF_ERROR(StepDone(db_.get(), s.get(), "end game day"));
  if (sqlite3_changes(db_.get()) == 0) return NoGameDay(id);
  return absl::OkStatus();
}

absl::Status Store::AppendGameDayEvent(const std::string& id, const v1::GameDayEvent& event) {
  std::lock_guard<std::mutex> lock(mu_);
  ASSIGN_OR_RETURN(Stmt s, Prepare(db_.get(),
                                   "INSERT INTO gameday_events(gameday, seq, event) "
                                   "SELECT ?1, COALESCE(MAX(seq), 0) + 1, ?2 FROM gameday_events "
                                   "WHERE gameday = ?1"));
  BindText(s.get(), 1, id);
  BindBlob(s.get(), 2, event.SerializeAsString());
  return StepDone(db_.get(), s.get(), "append game day event");
}

absl::StatusOr<StoredGameDay> Store::GetGameDay(const std::string& id) {
  std::lock_guard<std::mutex> lock(mu_);
  StoredGameDay gd;
  {
    ASSIGN_OR_RETURN(Stmt s, Prepare(db_.get(), (std::string("SELECT ") + kGameDayColumns +
                                                 " WHERE id = ?1").c_str()));
    BindText(s.get(), 1, id);
    const int rc = sqlite3_step(s.get());
    if (rc == SQLITE_DONE) return NoGameDay(id);
    if (rc != SQLITE_ROW) return SqlError(db_.get(), "get game day");
    ASSIGN_OR_RETURN(gd, GameDayRow(s.get()));
  }
  ASSIGN_OR_RETURN(Stmt s, Prepare(db_.get(), "SELECT event FROM gameday_events "
                                              "WHERE gameday = ?1 ORDER BY seq"));
  BindText(s.get(), 1, id);
  int rc;
  while ((rc = sqlite3_step(s.get())) == SQLITE_ROW) {
    v1::GameDayEvent ev;
    if (!ev.ParseFromString(ColumnBytes(s.get(), 0))) {
      return absl::DataLossError("sqlite: gameday_events.event does not parse");
    }
    gd.events.push_back(std::move(ev));
  }
  if (rc != SQLITE_DONE) return SqlError(db_.get(), "game day events");
  return gd;
}

absl::StatusOr<std::vector<StoredGameDay>> Store::ListGameDays(int limit, bool only_running) {
  std::lock_guard<std::mutex> lock(mu_);
  const std::string sql = std::string("SELECT ") + kGameDayColumns +
                          (only_running ? " WHERE state = 'running'" : "") +
                          " ORDER BY started_unix_ns DESC, id LIMIT ?1";
  ASSIGN_OR_RETURN(Stmt s, Prepare(db_.get(), sql.c_str()));
  sqlite3_bind_int64(s.get(), 1, limit <= 0 ? -1 : limit);
  std::vector<StoredGameDay> out;
  int rc;
  while ((rc = sqlite3_step(s.get())) == SQLITE_ROW) {
    ASSIGN_OR_RETURN(StoredGameDay gd, GameDayRow(s.get()));
    out.push_back(std::move(gd));
  }
  if (rc != SQLITE_DONE) return SqlError(db_.get(), "list game days");
  return out;
}

absl::StatusOr<int> Store::CountGameDayEvents(const std::string& id) {
  std::lock_guard<std::mutex> lock(mu_);
  ASSIGN_OR_RETURN(Stmt s, Prepare(db_.get(),
                                   "SELECT COUNT(*) FROM gameday_events WHERE gameday = ?1"));
  BindText(s.get(), 1, id);
  if (sqlite3_step(s.get()) != SQLITE_ROW) return SqlError(db_.get(), "count game day events");
  return static_cast<int>(sqlite3_column_int64(s.get(), 0));
}

}  // namespace faultline::controller
