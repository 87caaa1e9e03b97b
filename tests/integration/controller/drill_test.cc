// Restore drills end to end (issue 10, part 3; docs/experiments.md, "Restore
// drills"): a real PostgreSQL 15 (tests/unit/workload/postgres_process.h)
// loaded by `pgbench -i -s 10` (1,000,000 rows in pgbench_accounts), a real
// agent in a host of a datacenter made of namespaces (harness/datacenter.h)
// whose exec policy allows pg_dump, pg_restore and psql, and the controller's
// drill code through `faultline run -o json`.
//
//   ctl  10.88.0.2    faultline-controller (the marker writer)
//   db1  10.88.0.11   the agent that runs the steps, as user nobody
//
// PostgreSQL runs in the test's own namespace; the hosts reach it through its
// unix socket (a path in /tmp/fltest-<pid>-pg-*, which every host's mount
// namespace sees). The test's truth for the restored data's age: its own
// stamper inserts a row every 10 ms into table `truth` during the drill; the
// newest one in the restored copy dates pg_dump's snapshot to 10 ms.
#include <fmt/format.h>
#include <fmt/ranges.h>
#include <gmock/gmock.h>
#include <google/protobuf/util/json_util.h>
#include <gtest/gtest.h>
#include <signal.h>

#include <atomic>
#include <chrono>
#include <filesystem>
#include <cstdio>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "common/clock.h"
#include "common/files.h"
#include "faultline/v1/controller.pb.h"
#include "harness/datacenter.h"
#include "harness/status_matchers.h"
#include "harness/subprocess.h"
#include "tests/unit/workload/postgres_process.h"

namespace faultline::itest {
namespace {

using namespace std::chrono_literals;
using ::testing::HasSubstr;

const std::string kBin = testing_util::kPostgresBin;
constexpr int64_t kRows = 1'000'000;
constexpr int kTruthEveryMs = 10;
constexpr int kMarkerEveryMs = 200;

// The test's own clock of the source database: a row (its wall-clock time)
// every 10 ms into `truth`, on a thread of its own from construction to
// destruction. Owned by the test; not thread-safe beyond that.
class TruthStamper {
 public:
  explicit TruthStamper(std::string dsn) : dsn_(std::move(dsn)) {
    thread_ = std::thread([this] { Loop(); });
  }
  ~TruthStamper() {
    stop_ = true;
    thread_.join();
  }
  int written() const { return written_; }

 private:
  void Loop() {
    auto conn = workload::PgConnection::Connect(dsn_, workload::Clock::now() + 5s);
    if (!conn.ok()) return;
    while (!stop_) {
      const auto deadline = workload::Clock::now() + 2s;
      if (conn->Exec("INSERT INTO truth (ns) VALUES ($1)", {std::to_string(NowRealtimeNs())},
                     deadline)
              .ok()) {
        ++written_;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(kTruthEveryMs));
    }
  }

  const std::string dsn_;
  std::atomic<bool> stop_{false};
  std::atomic<int> written_{0};
  std::thread thread_;
};

// The suite's PostgreSQL (one server and one pgbench load, shared; removed in
// TearDownTestSuite) and each test's datacenter (removed with the test, as are
// the databases it created and the dump). Not thread-safe.
class RestoreDrill : public ::testing::Test {
 protected:
  // One server and one pgbench load for the suite (the load takes a while).
  static void SetUpTestSuite() {
    pg_ = new testing_util::PostgresProcess();
    setup_error_ = pg_->Start();
    if (!setup_error_.empty()) return;
    pg_->Query("CREATE DATABASE app");
    CommandResult load = RunCommand({kBin + "/pgbench", "-i", "-q", "-s", "10", "-h", pg_->dir(),
                                     "-p", std::to_string(pg_->port()), "-U", "faultline", "app"},
                                    600s);
    if (!load.ok()) setup_error_ = "pgbench -i: " + load.Describe();
  }
  static void TearDownTestSuite() {
    delete pg_;
    pg_ = nullptr;
  }

  void SetUp() override {
    ASSERT_EQ(setup_error_, "");
    ASSERT_OK_AND_ASSIGN(dc_, Datacenter::Create("drill", {{"db1", "10.88.0.11", {{"role", "db"}}, {}}}));
    ASSERT_OK(dc_->dir().WriteFile("policy.yaml", fmt::format(R"(exec:
  user: nobody
  allow:
    - argv_prefix: [{0}/pg_dump]
    - argv_prefix: [{0}/pg_restore]
    - argv_prefix: [{0}/psql]
)",
                                                             kBin)));
    dc_->Find("db1")->spec.agent_args = {"--policy", dc_->dir().Path("policy.yaml")};
    ASSERT_OK(dc_->StartController());
    ASSERT_OK(dc_->StartAgent(*dc_->Find("db1")));
    ASSERT_OK(dc_->WaitForHealthyAgents({"db1"}, 30s));
  }

  void TearDown() override {
    if (run_) run_->KillGroup(SIGKILL);
    for (const std::string& db : created_) pg_->Query(("DROP DATABASE IF EXISTS " + db).c_str());
    std::error_code ignored;
    std::filesystem::remove(Dump(), ignored);
  }

  std::string Port() const { return std::to_string(pg_->port()); }
  std::string Dump() const { return pg_->dir() + "/app.dump"; }
  std::string Dsn(const std::string& db) const {
    return fmt::format("host={} port={} user=faultline dbname={}", pg_->dir(), Port(), db);
  }
  // An empty database for a restore, dropped by TearDown.
  void CreateDb(const std::string& name) {
    pg_->Query(("CREATE DATABASE " + name).c_str());
    created_.push_back(name);
  }
  // "[bin/NAME, -h, dir, -p, port, -U, faultline, args...]" as YAML.
  std::string Argv(const std::string& program, const std::vector<std::string>& args) const {
    std::vector<std::string> all = {"\"" + kBin + "/" + program + "\"", "-h", pg_->dir(), "-p",
                                    Port(), "-U", "faultline"};
    for (const auto& a : args) all.push_back("\"" + a + "\"");
    return "[" + fmt::format("{}", fmt::join(all, ", ")) + "]";
  }
  std::string VerifyArgv(const std::string& db) const {
    return Argv("psql", {"-d", db, "-v", "ON_ERROR_STOP=1", "-Atc",
                         fmt::format("SELECT 1/(count(*) = {})::int FROM pgbench_accounts", kRows)});
  }

  // pg_dump of app -> pg_restore `restore_args` -> the row count in
  // `verify_db`, all on db1; `tail` ends the file (marker, objectives).
  std::string PgDrill(const std::string& name, const std::vector<std::string>& restore_args,
                      const std::string& verify_db, const std::string& tail) const {
    return fmt::format(R"(name: {}
targets:
  db: {{names: [db1]}}
drill:
  backup:  {{on: db, exec: {{argv: {}}}, timeout: 5m}}
  restore: {{on: db, exec: {{argv: {}}}, timeout: 10m}}
  verify:  {{on: db, exec: {{argv: {}}}, timeout: 2m}}
)",
                       name, Argv("pg_dump", {"-Fc", "-f", Dump(), "app"}),
                       Argv("pg_restore", restore_args), VerifyArgv(verify_db)) +
           tail;
  }

  // A drill of restore and verify only (argv as YAML lists) on db1.
  static std::string TwoSteps(const std::string& name, const std::string& restore,
                              const std::string& verify, const std::string& verify_extra,
                              const std::string& rto) {
    return fmt::format(R"(name: {}
targets:
  db: {{names: [db1]}}
drill:
  restore: {{on: db, exec: {{argv: {}}}}}
  verify:  {{on: db, exec: {{argv: {}}}{}}}
objectives: {{rto: {}}}
)",
                       name, restore, verify, verify_extra, rto);
  }

  // Runs `yaml` through `faultline run -o json` and parses the report.
  void Run(const std::string& yaml, v1::RunReport* report) {
    ASSERT_OK(dc_->dir().WriteFile("drill.yaml", yaml));
    SubprocessOptions so;
    so.stdout_file = dc_->dir().Path("run.out");
    so.stderr_file = dc_->dir().Path("run.err");
    ASSERT_OK_AND_ASSIGN(run_, Subprocess::Start(dc_->Cli({"run", dc_->dir().Path("drill.yaml"),
                                                           "-o", "json"}),
                                                 so));
    ASSERT_TRUE(run_->Wait(500s)) << "the drill did not finish in 500 s";
    const std::string out = run_->Stdout();
    ASSERT_TRUE(google::protobuf::util::JsonStringToMessage(out, report).ok())
        << "exit " << run_->exit_code() << "\n" << out << run_->Stderr() << "\ncontroller: "
        << dc_->ControllerLog();
    for (const auto& s : report->drill().steps()) {
      std::printf("step %-8s %-9s exit %d signal %d  %.0f ms  on %s  %s\n", s.step().c_str(),
                  s.state().c_str(), s.exit_code(), s.signal(), s.duration_ms(), s.agent().c_str(),
                  s.error().c_str());
    }
    std::printf("verdict %s: %s\nrestore_rto_ms %.0f ± %.0f, restore_rpo_ms %.1f ± %.1f "
                "(measured %d), markers %ld\n",
                report->verdict().c_str(), report->reason().c_str(), report->drill().restore_rto_ms(),
                report->drill().restore_rto_error_ms(), report->drill().restore_rpo_ms(),
                report->drill().restore_rpo_error_ms(), report->drill().rpo_measured(),
                static_cast<long>(report->drill().markers_written()));
  }

  static const v1::DrillStepResult* Step(const v1::RunReport& r, const std::string& name) {
    for (const auto& s : r.drill().steps()) {
      if (s.step() == name) return &s;
    }
    return nullptr;
  }

  static testing_util::PostgresProcess* pg_;
  static std::string setup_error_;
  std::unique_ptr<Datacenter> dc_;
  std::unique_ptr<Subprocess> run_;
  std::vector<std::string> created_;
};

testing_util::PostgresProcess* RestoreDrill::pg_ = nullptr;
std::string RestoreDrill::setup_error_;

TEST_F(RestoreDrill, DumpRestoreVerifyWithMarkers) {
  CreateDb("app_restore");
  {
    auto conn = workload::PgConnection::Connect(Dsn("app"), workload::Clock::now() + 5s);
    ASSERT_OK(conn.status());
    ASSERT_OK(conn->Exec("CREATE TABLE IF NOT EXISTS truth (ns bigint NOT NULL)", {},
                         workload::Clock::now() + 5s)
                  .status());
  }
  const std::string yaml = PgDrill(
      "pg-restore-drill", {"-j", "2", "-d", "app_restore", Dump()}, "app_restore",
      fmt::format("  marker:  {{postgres: {{dsn: \"{}\"}}, every: {}ms, restored: {{dsn: \"{}\"}}}}\n"
                  "objectives: {{rto: 10m, rpo: 1h}}\n",
                  Dsn("app"), kMarkerEveryMs, Dsn("app_restore")));
  v1::RunReport report;
  {
    TruthStamper truth(Dsn("app"));
    ASSERT_NO_FATAL_FAILURE(Run(yaml, &report));
    EXPECT_GT(truth.written(), 0);
  }
  EXPECT_EQ(report.verdict(), "pass") << report.reason();
  for (const char* name : {"backup", "restore", "verify"}) {
    const v1::DrillStepResult* s = Step(report, name);
    ASSERT_NE(s, nullptr) << name;
    EXPECT_EQ(s->state(), "ok") << name << ": " << s->error() << "\n" << s->output_tail();
    EXPECT_EQ(s->agent(), "db1");
    EXPECT_GT(s->duration_ms(), 0) << name;
    EXPECT_LE(s->output_tail().size(), 4096u);
  }
  EXPECT_EQ(Step(report, "verify")->output_tail(), "1\n");
  EXPECT_NEAR(report.drill().restore_rto_ms(),
              Step(report, "restore")->duration_ms() + Step(report, "verify")->duration_ms(), 0.01);
  // The restored copy really holds the rows (the test's own count).
  auto rows = workload::PgConnection::Connect(Dsn("app_restore"), workload::Clock::now() + 5s);
  ASSERT_OK(rows.status());
  auto count = rows->Exec("SELECT count(*) FROM pgbench_accounts", {}, workload::Clock::now() + 30s);
  ASSERT_OK(count.status());
  EXPECT_EQ(std::string(PQgetvalue(count->get(), 0, 0)), std::to_string(kRows));
  // The age of the restored data against the test's truth: restore end -
  // the newest truth row in the copy (pg_dump's snapshot, to 10 ms).
  ASSERT_TRUE(report.drill().rpo_measured()) << report.drill().marker_error();
  auto newest = rows->Exec("SELECT max(ns) FROM truth", {}, workload::Clock::now() + 5s);
  ASSERT_OK(newest.status());
  ASSERT_FALSE(PQgetisnull(newest->get(), 0, 0)) << "no truth row made it into the backup";
  const int64_t truth_ns = std::stoll(PQgetvalue(newest->get(), 0, 0));
  const double truth_ms = (Step(report, "restore")->ended_unix_ns() - truth_ns) / 1e6;
  std::printf("truth: restored data age %.1f ms (newest truth row), reported %.1f ± %.1f ms\n",
              truth_ms, report.drill().restore_rpo_ms(), report.drill().restore_rpo_error_ms());
  EXPECT_NEAR(report.drill().restore_rpo_ms(), truth_ms,
              report.drill().restore_rpo_error_ms() + kTruthEveryMs);
  EXPECT_EQ(report.drill().restore_rpo_error_ms() >= kMarkerEveryMs, true);
  // The markers were removed from both databases (keep: false).
  // Stored, and shown in the text and Markdown reports.
  const std::string md = dc_->dir().Path("drill.md");
  CommandResult show = RunCommand(dc_->Cli({"runs", "show", report.run_id(), "--report", md}));
  ASSERT_TRUE(show.ok()) << show.Describe();
  EXPECT_THAT(show.out, HasSubstr("restore RTO"));
  EXPECT_THAT(show.out, HasSubstr("restore RPO"));
  auto markdown = ReadFileToString(md);
  ASSERT_OK(markdown.status());
  EXPECT_THAT(*markdown, HasSubstr("## Restore drill"));
  EXPECT_THAT(*markdown, HasSubstr("| restore_rpo_ms (age of the restored data) |"));
  for (const char* db : {"app", "app_restore"}) {
    auto conn = workload::PgConnection::Connect(Dsn(db), workload::Clock::now() + 5s);
    ASSERT_OK(conn.status());
    auto left = conn->Exec("SELECT count(*) FROM faultline_markers", {}, workload::Clock::now() + 5s);
    ASSERT_OK(left.status());
    EXPECT_EQ(std::string(PQgetvalue(left->get(), 0, 0)), "0") << db;
  }
}

TEST_F(RestoreDrill, BrokenRestoreFailsVerify) {
  CreateDb("app_broken");
  // The "restore" brings the schema only: verify counts 0 rows and exits 1.
  const std::string yaml = PgDrill("pg-restore-drill-broken",
                                   {"--schema-only", "-d", "app_broken", Dump()}, "app_broken",
                                   "objectives: {rto: 10m}\n");
  v1::RunReport report;
  ASSERT_NO_FATAL_FAILURE(Run(yaml, &report));
  EXPECT_EQ(report.verdict(), "fail");
  EXPECT_THAT(report.reason(), HasSubstr("verify failed"));
  const v1::DrillStepResult* verify = Step(report, "verify");
  ASSERT_NE(verify, nullptr);
  EXPECT_EQ(verify->state(), "failed");
  EXPECT_EQ(verify->exit_code(), 1);
  EXPECT_THAT(verify->output_tail(), HasSubstr("division by zero"));
  EXPECT_EQ(run_->exit_code() != 0, true) << "a failed drill exits non-zero";
}

TEST_F(RestoreDrill, StepOutsideThePolicyIsRefused) {
  const std::string yaml =
      TwoSteps("pg-restore-drill-refused", "[/bin/sh, -c, \"pg_restore -d app /tmp/x\"]",
               "[/bin/true]", "", "1m");
  v1::RunReport report;
  ASSERT_NO_FATAL_FAILURE(Run(yaml, &report));
  EXPECT_EQ(report.verdict(), "fail");
  const v1::DrillStepResult* restore = Step(report, "restore");
  ASSERT_NE(restore, nullptr);
  EXPECT_EQ(restore->state(), "refused");
  EXPECT_THAT(restore->error(), HasSubstr("argv[0] \"/bin/sh\""));
  EXPECT_THAT(restore->error(), HasSubstr("not allowed by the exec policy"));
  ASSERT_NE(Step(report, "verify"), nullptr);
  EXPECT_EQ(Step(report, "verify")->state(), "skipped");
}

// A restore slower than objectives.rto fails the drill; a step past its
// timeout is killed (with its process group) and fails it too.
TEST_F(RestoreDrill, RtoOverTheObjectiveAndATimeoutFail) {
  const std::string sleep_restore = TwoSteps(
      "pg-restore-drill-slow", Argv("psql", {"-d", "app", "-Atc", "SELECT pg_sleep(0.4)"}),
      Argv("psql", {"-d", "app", "-Atc", "SELECT 1"}), "", "200ms");
  v1::RunReport slow;
  ASSERT_NO_FATAL_FAILURE(Run(sleep_restore, &slow));
  EXPECT_EQ(slow.verdict(), "fail");
  EXPECT_THAT(slow.reason(), HasSubstr("over objectives.rto 200 ms"));
  EXPECT_GE(slow.drill().restore_rto_ms(), 400);

  const std::string timeout = TwoSteps(
      "pg-restore-drill-timeout", Argv("psql", {"-d", "app", "-Atc", "SELECT 1"}),
      Argv("psql", {"-d", "app", "-Atc", "SELECT pg_sleep(30)"}), ", timeout: 500ms", "1m");
  v1::RunReport killed;
  ASSERT_NO_FATAL_FAILURE(Run(timeout, &killed));
  EXPECT_EQ(killed.verdict(), "fail");
  const v1::DrillStepResult* verify = Step(killed, "verify");
  ASSERT_NE(verify, nullptr);
  EXPECT_EQ(verify->state(), "timed_out");
  EXPECT_EQ(verify->signal(), SIGKILL);
  EXPECT_LT(verify->duration_ms(), 5000);
}

}  // namespace
}  // namespace faultline::itest
