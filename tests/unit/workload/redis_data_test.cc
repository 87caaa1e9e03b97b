// The data workload against real redis-server processes on loopback (kernel-
// chosen ports, a temporary folder, SIGKILLed at the end): a server without
// persistence killed and restarted comes back empty, and the writer's lost
// writes are exactly the ones the server held when it was killed; with
// appendfsync always, none are lost.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <map>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "tests/unit/probes/redis_process.h"
#include "tests/unit/workload/data_test_util.h"
#include "workload/data_driver.h"
#include "workload/data_log.h"
#include "workload/data_writer.h"

namespace faultline::workload {
namespace {

using testing_util::FreePort;
using testing_util::RedisProcess;
using Ms = std::chrono::milliseconds;

constexpr char kPrefix[] = "faultline:test-run:orders:";

class RedisDataTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char pattern[] = "/tmp/fltest-redis-data-XXXXXX";
    ASSERT_NE(::mkdtemp(pattern), nullptr);
    dir_ = pattern;
    port_ = FreePort();
  }
  void TearDown() override {
    server_.reset();
    std::error_code ignored;
    std::filesystem::remove_all(dir_, ignored);
  }

  void StartServer(bool durable) {
    std::vector<std::string> argv = {"redis-server", "--port", std::to_string(port_), "--bind",
                                     "127.0.0.1", "--save", "", "--dir", dir_};
    if (durable) {
      argv.insert(argv.end(), {"--appendonly", "yes", "--appendfsync", "always"});
    } else {
      argv.insert(argv.end(), {"--appendonly", "no"});
    }
    server_ = std::make_unique<RedisProcess>(argv, port_);
    ASSERT_TRUE(server_->WaitReady()) << "redis-server did not start (scripts/setup installs it)";
  }

  std::unique_ptr<DataDriver> Driver() {
    return testing_util::MakeOrdersDriver(
        [&](v1::DataWorkload& spec) { spec.mutable_redis()->set_address(server_->address()); });
  }

  // The workload's keys on the server now, seq -> the unix ns of its write
  // (from the value "<seq>:<ns>"): the test's own truth, read independently
  // of the writer's records.
  std::map<int64_t, int64_t> KeysOnServer() {
    std::map<int64_t, int64_t> out;
    std::string cursor = "0";
    do {
      probes::RedisValue reply = server_->Run({"SCAN", cursor, "MATCH", std::string(kPrefix) + "*",
                                               "COUNT", "1000"});
      if (reply.elements.size() != 2) break;
      cursor = reply.elements[0].str;
      for (const auto& key : reply.elements[1].elements) {
        const std::string value = server_->Run({"GET", key.str}).str;
        const size_t colon = value.find(':');
        out[std::stoll(value.substr(0, colon))] = std::stoll(value.substr(colon + 1));
      }
    } while (cursor != "0");
    return out;
  }

  // Writes for `before`; holds the server's writes (CLIENT PAUSE ... WRITE)
  // and takes the truth; kills it and starts it again; writes for `after`.
  // Returns the truth taken before the kill.
  std::map<int64_t, int64_t> KillAndRestartDuring(DataWriter& writer, bool durable, Ms before,
                                                  Ms after) {
    writer.Start();
    std::this_thread::sleep_for(before);
    server_->Run({"CLIENT", "PAUSE", "5000", "WRITE"});
    std::map<int64_t, int64_t> truth = KeysOnServer();
    server_->Kill();
    StartServer(durable);
    std::this_thread::sleep_for(after);
    return truth;
  }

  std::string dir_;
  int port_ = 0;
  std::unique_ptr<RedisProcess> server_;
};

TEST_F(RedisDataTest, AServerWithoutPersistenceLosesExactlyWhatItHeld) {
  StartServer(/*durable=*/false);
  std::unique_ptr<DataDriver> driver = Driver();
  ASSERT_NE(driver, nullptr);
  DataSettings settings;  // 100/s: a 10 ms period
  DataWriter writer(driver.get(), settings);
  const std::map<int64_t, int64_t> truth =
      KillAndRestartDuring(writer, /*durable=*/false, Ms(800), Ms(500));
  const std::vector<v1::WriteRecord> records = writer.Stop();
  ASSERT_GE(truth.size(), 20u) << "too few writes before the kill to measure anything";

  ReadBackResult read = ReadBack(*driver, testing_util::SentSeqs(records), std::chrono::seconds(5));
  ASSERT_TRUE(read.stable) << read.error;
  v1::DataResult result = Analyze(records, read.present, driver->CanList(), settings.period);

  EXPECT_EQ(result.writes_lost(), static_cast<int64_t>(truth.size()));
  EXPECT_EQ(result.first_lost(0), truth.begin()->first);
  EXPECT_EQ(result.writes_unexpected(), 0);
  EXPECT_GT(result.writes_acked(), result.writes_lost()) << "nothing was acked after the restart";
  // The RPO (ack times of the lost writes) against the truth (their send
  // times, from the server's own copies): within one writer period.
  const double truth_span_ms =
      static_cast<double>(truth.rbegin()->second - truth.begin()->second) / 1e6;
  EXPECT_NEAR(result.rpo_ms(), truth_span_ms, result.rpo_error_ms())
      << "lost " << result.writes_lost() << " writes";
  std::printf("no persistence: writes_lost %lld (truth %zu), rpo_ms %.1f ± %.0f (truth %.1f), "
              "acked %lld of %lld\n",
              static_cast<long long>(result.writes_lost()), truth.size(), result.rpo_ms(),
              result.rpo_error_ms(), truth_span_ms, static_cast<long long>(result.writes_acked()),
              static_cast<long long>(result.writes_attempted()));
  ASSERT_TRUE(driver->Cleanup(std::chrono::steady_clock::now() + Ms(2000)).ok());
  EXPECT_TRUE(KeysOnServer().empty()) << "cleanup left keys behind";
}

TEST_F(RedisDataTest, AppendfsyncAlwaysLosesNothing) {
  StartServer(/*durable=*/true);
  std::unique_ptr<DataDriver> driver = Driver();
  ASSERT_NE(driver, nullptr);
  DataSettings settings;
  settings.period = Ms(5);
  DataWriter writer(driver.get(), settings);
  const std::map<int64_t, int64_t> truth =
      KillAndRestartDuring(writer, /*durable=*/true, Ms(600), Ms(400));
  const std::vector<v1::WriteRecord> records = writer.Stop();
  ASSERT_GE(truth.size(), 20u);

  ReadBackResult read = ReadBack(*driver, testing_util::SentSeqs(records), std::chrono::seconds(5));
  ASSERT_TRUE(read.stable) << read.error;
  v1::DataResult result = Analyze(records, read.present, driver->CanList(), settings.period);
  EXPECT_EQ(result.writes_lost(), 0);
  EXPECT_EQ(result.rpo_ms(), 0);
  EXPECT_GE(static_cast<int64_t>(read.present.size()), static_cast<int64_t>(truth.size()));
  EXPECT_EQ(result.writes_unexpected(), 0);
}

// A server that is gone: every write fails or is unknown, none is acked, and
// the writer keeps its pace (it never bursts, never blocks past the timeout).
TEST_F(RedisDataTest, WritesToAStoppedServerFailAndTheReaderSaysWhy) {
  StartServer(/*durable=*/false);
  std::unique_ptr<DataDriver> driver = Driver();
  ASSERT_NE(driver, nullptr);
  server_->Kill();
  DataSettings settings;
  settings.timeout = Ms(100);
  DataWriter writer(driver.get(), settings);
  writer.Start();
  std::this_thread::sleep_for(Ms(300));
  const std::vector<v1::WriteRecord> records = writer.Stop();
  ASSERT_FALSE(records.empty());
  for (const auto& r : records) EXPECT_NE(r.outcome(), v1::WriteRecord::ACKED) << r.seq();
  ReadBackResult read = ReadBack(*driver, {}, Ms(500));
  EXPECT_FALSE(read.stable);
  EXPECT_EQ(read.reads, 0);
  EXPECT_FALSE(read.error.ok());
}

}  // namespace
}  // namespace faultline::workload
