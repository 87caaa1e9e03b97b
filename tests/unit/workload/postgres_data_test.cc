// The data workload's postgres driver against a real PostgreSQL 15 on
// loopback (tests/unit/workload/postgres_process.h): with synchronous_commit
// on, a SIGKILLed postmaster loses no acknowledged write; with the table
// UNLOGGED (truncated by crash recovery), the lost writes are exactly the rows
// the server held when it was killed. Also each write outcome, the deadlines
// and the dsn rules.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <map>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "common/clock.h"
#include "tests/unit/probes/loopback_server.h"
#include "tests/unit/workload/data_test_util.h"
#include "tests/unit/workload/postgres_process.h"
#include "workload/data_driver.h"
#include "workload/data_log.h"
#include "workload/data_writer.h"
#include "workload/postgres_driver.h"

namespace faultline::workload {
namespace {

using testing::HasSubstr;
using testing_util::PostgresProcess;
using Ms = std::chrono::milliseconds;

using testing_util::kDataRun;
using testing_util::SentSeqs;

std::unique_ptr<DataDriver> Driver(const std::string& dsn) {
  return testing_util::MakeOrdersDriver(
      [&](v1::DataWorkload& spec) { spec.mutable_postgres()->set_dsn(dsn); });
}

std::map<v1::WriteRecord::Outcome, int> Outcomes(const std::vector<v1::WriteRecord>& records) {
  std::map<v1::WriteRecord::Outcome, int> out;
  for (const auto& r : records) ++out[r.outcome()];
  return out;
}

int64_t RowsOfRun(PostgresProcess& server) {
  auto rows = server.Query("SELECT count(*) FROM faultline_writes WHERE run = $1", {kDataRun});
  return rows.empty() ? -1 : std::stoll(rows[0]);
}

TEST(PostgresData, SynchronousCommitLosesNothingWhenThePostmasterIsKilled) {
  PostgresProcess server({"synchronous_commit=on"});
  ASSERT_EQ(server.Start(), "");
  std::unique_ptr<DataDriver> driver = Driver(server.dsn());
  ASSERT_NE(driver, nullptr);
  DataSettings settings;
  settings.period = Ms(5);  // 200/s
  DataWriter writer(driver.get(), settings);
  writer.Start();
  std::this_thread::sleep_for(Ms(1000));
  server.Kill();  // kill -9 of the postmaster, by pid
  const int64_t killed_ns = NowRealtimeNs();
  std::this_thread::sleep_for(Ms(300));
  ASSERT_EQ(server.Start(), "");  // the same data folder: crash recovery
  std::this_thread::sleep_for(Ms(700));
  const std::vector<v1::WriteRecord> records = writer.Stop();

  ReadBackResult read = ReadBack(*driver, SentSeqs(records), std::chrono::seconds(10));
  ASSERT_TRUE(read.stable) << read.error;
  v1::DataResult result = Analyze(records, read.present, driver->CanList(), settings.period);
  auto outcomes = Outcomes(records);
  int acked_after_restart = 0;
  for (const auto& r : records) {
    if (r.outcome() == v1::WriteRecord::ACKED && r.invoke_unix_ns() > killed_ns) ++acked_after_restart;
  }
  std::printf("synchronous_commit on, postmaster SIGKILLed: attempted %lld, acked %lld, "
              "failed %d, unknown %d, lost %lld, recovered %lld, acked after the restart %d\n",
              static_cast<long long>(result.writes_attempted()),
              static_cast<long long>(result.writes_acked()), outcomes[v1::WriteRecord::FAILED],
              outcomes[v1::WriteRecord::UNKNOWN], static_cast<long long>(result.writes_lost()),
              static_cast<long long>(result.writes_recovered()), acked_after_restart);
  EXPECT_EQ(result.writes_lost(), 0) << "first lost " << (result.first_lost_size() ? result.first_lost(0) : 0);
  EXPECT_EQ(result.rpo_ms(), 0);
  EXPECT_GE(result.writes_acked(), 100) << "too few writes before the kill to measure anything";
  EXPECT_GT(outcomes[v1::WriteRecord::FAILED] + outcomes[v1::WriteRecord::UNKNOWN], 0)
      << "no write failed while the server was down";
  EXPECT_GT(acked_after_restart, 0) << "the writer did not reconnect after the restart";
  EXPECT_EQ(result.writes_unexpected(), 0);

  ASSERT_TRUE(driver->Cleanup(Clock::now() + Ms(2000)).ok());
  EXPECT_EQ(RowsOfRun(server), 0) << "cleanup left rows behind";
}

// The control: a table that crash recovery empties (UNLOGGED), writes held
// (the test locks the table) while it takes the truth, then the postmaster is
// SIGKILLed and started again. Lost = exactly the rows it held.
TEST(PostgresData, AnUnloggedTableLosesExactlyTheRowsItHeld) {
  PostgresProcess server;
  ASSERT_EQ(server.Start(), "");
  server.Query(
      "CREATE UNLOGGED TABLE faultline_writes (run text NOT NULL, name text NOT NULL, seq bigint "
      "NOT NULL, written_unix_ns bigint NOT NULL, PRIMARY KEY (run, name, seq))");
  std::unique_ptr<DataDriver> driver = Driver(server.dsn());
  ASSERT_NE(driver, nullptr);
  DataSettings settings;  // 100/s
  settings.timeout = Ms(300);
  DataWriter writer(driver.get(), settings);
  writer.Start();
  std::this_thread::sleep_for(Ms(800));

  // Hold the writes and take the truth in the same transaction.
  const auto deadline = Clock::now() + Ms(2000);
  auto holder = PgConnection::Connect(server.dsn(), deadline);
  ASSERT_TRUE(holder.ok()) << holder.status();
  ASSERT_TRUE(holder->Exec("BEGIN", {}, deadline).ok());
  ASSERT_TRUE(holder->Exec("LOCK TABLE faultline_writes IN EXCLUSIVE MODE", {}, deadline).ok());
  auto rows = holder->Exec(
      "SELECT seq, written_unix_ns FROM faultline_writes WHERE run = $1 ORDER BY seq", {kDataRun},
      deadline);
  ASSERT_TRUE(rows.ok()) << rows.status();
  std::map<int64_t, int64_t> truth;
  for (int i = 0; i < PQntuples(rows->get()); ++i) {
    truth[std::stoll(PQgetvalue(rows->get(), i, 0))] = std::stoll(PQgetvalue(rows->get(), i, 1));
  }
  server.Kill(/*whole_group=*/true);
  ASSERT_EQ(server.Start(), "");
  std::this_thread::sleep_for(Ms(500));
  const std::vector<v1::WriteRecord> records = writer.Stop();
  ASSERT_GE(truth.size(), 20u) << "too few writes before the kill to measure anything";

  ReadBackResult read = ReadBack(*driver, SentSeqs(records), std::chrono::seconds(10));
  ASSERT_TRUE(read.stable) << read.error;
  v1::DataResult result = Analyze(records, read.present, driver->CanList(), settings.period);
  const double truth_span_ms =
      static_cast<double>(truth.rbegin()->second - truth.begin()->second) / 1e6;
  std::printf("unlogged table, postmaster group SIGKILLed: writes_lost %lld (truth %zu), rpo_ms "
              "%.1f ± %.0f (truth %.1f), acked %lld of %lld\n",
              static_cast<long long>(result.writes_lost()), truth.size(), result.rpo_ms(),
              result.rpo_error_ms(), truth_span_ms, static_cast<long long>(result.writes_acked()),
              static_cast<long long>(result.writes_attempted()));
  EXPECT_EQ(result.writes_lost(), static_cast<int64_t>(truth.size()));
  ASSERT_GT(result.first_lost_size(), 0);
  EXPECT_EQ(result.first_lost(0), truth.begin()->first);
  // rpo_ms spans ack times, the truth send times: they differ by the two
  // writes' latencies (the first write's includes connecting), beyond the
  // writer's period.
  double latency_ms = 0;
  for (const auto& r : records) {
    if (r.seq() == truth.begin()->first || r.seq() == truth.rbegin()->first) {
      latency_ms = std::max(latency_ms, static_cast<double>(r.done_unix_ns() - r.invoke_unix_ns()) / 1e6);
    }
  }
  EXPECT_NEAR(result.rpo_ms(), truth_span_ms, result.rpo_error_ms() + latency_ms);
  EXPECT_GT(result.writes_acked(), result.writes_lost()) << "nothing was acked after the restart";
  EXPECT_EQ(result.writes_unexpected(), 0);
  ASSERT_TRUE(driver->Cleanup(Clock::now() + Ms(2000)).ok());
  EXPECT_EQ(RowsOfRun(server), 0);
}

// Each outcome, over the unix socket: acked; a statement held by a lock past
// the deadline is UNKNOWN (sent, unanswered) and returns on time; a server
// ERROR is FAILED and the next write goes through; a closed port and a server
// that never answers the start-up are FAILED (never sent), on time.
TEST(PostgresData, OutcomesAndDeadlines) {
  PostgresProcess server;
  ASSERT_EQ(server.Start(), "");
  std::unique_ptr<DataDriver> driver = Driver(server.socket_dsn());
  ASSERT_NE(driver, nullptr);
  EXPECT_TRUE(driver->CanList());
  EXPECT_EQ(driver->Kind(), "postgres");
  std::string error;
  EXPECT_EQ(driver->Write(1, Clock::now() + Ms(2000), &error), v1::WriteRecord::ACKED) << error;

  {
    const auto deadline = Clock::now() + Ms(5000);
    auto holder = PgConnection::Connect(server.dsn(), deadline);
    ASSERT_TRUE(holder.ok()) << holder.status();
    ASSERT_TRUE(holder->Exec("BEGIN", {}, deadline).ok());
    ASSERT_TRUE(holder->Exec("LOCK TABLE faultline_writes IN EXCLUSIVE MODE", {}, deadline).ok());
    const auto start = Clock::now();
    EXPECT_EQ(driver->Write(2, start + Ms(300), &error), v1::WriteRecord::UNKNOWN);
    EXPECT_LT(Clock::now() - start, testing_util::OnTime(Ms(600))) << "the write outlived its deadline";
    EXPECT_THAT(error, HasSubstr("timed out"));
    ASSERT_TRUE(holder->Exec("ROLLBACK", {}, deadline).ok());
  }

  server.Query("ALTER TABLE faultline_writes ADD CONSTRAINT no_seven CHECK (seq <> 7)");
  EXPECT_EQ(driver->Write(7, Clock::now() + Ms(2000), &error), v1::WriteRecord::FAILED);
  EXPECT_THAT(error, HasSubstr("no_seven"));
  EXPECT_EQ(driver->Write(8, Clock::now() + Ms(2000), &error), v1::WriteRecord::ACKED) << error;

  auto read = driver->ReadAll({}, Clock::now() + Ms(2000));
  ASSERT_TRUE(read.ok()) << read.status();
  EXPECT_TRUE(read->contains(1));
  EXPECT_FALSE(read->contains(7));
  EXPECT_TRUE(read->contains(8));
  ASSERT_TRUE(driver->Cleanup(Clock::now() + Ms(2000)).ok());
  EXPECT_EQ(RowsOfRun(server), 0);

  std::unique_ptr<DataDriver> closed = Driver(
      "hostaddr=127.0.0.1 port=" + std::to_string(testing_util::ClosedPort()) + " user=x");
  ASSERT_NE(closed, nullptr);
  EXPECT_EQ(closed->Write(1, Clock::now() + Ms(500), &error), v1::WriteRecord::FAILED);
  EXPECT_THAT(error, HasSubstr("connect"));

  testing_util::Listener silent;  // the kernel completes the handshake; nobody answers
  std::unique_ptr<DataDriver> hung =
      Driver("hostaddr=127.0.0.1 port=" + std::to_string(silent.port()) + " user=x");
  ASSERT_NE(hung, nullptr);
  const auto start = Clock::now();
  EXPECT_EQ(hung->Write(1, start + Ms(200), &error), v1::WriteRecord::FAILED);
  EXPECT_LT(Clock::now() - start, testing_util::OnTime(Ms(500))) << "connecting outlived the deadline";
  EXPECT_FALSE(hung->ReadAll({}, Clock::now() + Ms(200)).ok());
}

TEST(PostgresData, BadDsnsAreRefusedNamingTheField) {
  const std::vector<std::pair<std::string, std::string>> bad = {
      {"", "required"},
      {"host=127.0.0.1 bogus=1", "invalid connection option \"bogus\""},
      {"host='127.0.0.1", "unterminated quoted string"},
      {"dbname=app user=x", "name the server"},
      {"host=db.example.com dbname=app", "host \"db.example.com\" is a name"},
      {"postgresql://db.example.com/app", "host \"db.example.com\" is a name"},
      {"host=127.0.0.1,db.example.com", "host \"db.example.com\" is a name"},
      {"hostaddr=db.example.com", "hostaddr \"db.example.com\" is not a numeric"},
      {"host=127.0.0.1 port=99999", "port \"99999\""},
      {"host=127.0.0.1 port=5432x", "port \"5432x\""},
      {"host=bad\x1b[2Jname", "bad\\x1b[2Jname"},
  };
  auto with = [](const std::string& dsn) {
    return [dsn](v1::DataWorkload& spec) { spec.mutable_postgres()->set_dsn(dsn); };
  };
  for (const auto& [dsn, reason] : bad) {
    testing_util::ExpectRefused(with(dsn), "data[0].postgres.dsn", reason, dsn);
  }
  for (const std::string dsn :
       {"hostaddr=10.0.0.5 port=5432 dbname=app", "host=/var/run/postgresql dbname=app",
        "postgresql://127.0.0.1:5432/app", "host=db.example hostaddr=10.0.0.1",
        "host=::1 port=5432", "host=10.0.0.1,10.0.0.2 port=5432,5433"}) {
    testing_util::ExpectAccepted(with(dsn), dsn);
  }
}

}  // namespace
}  // namespace faultline::workload
