// The redis probe against real servers on loopback: redis-server (a primary and
// a replica of it) and redis-sentinel, started by the test on kernel-chosen
// ports with no persistence, in a temporary directory, and SIGKILLed at the end.
#include <fcntl.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "probes/probe.h"
#include "probes/redis_client.h"
#include "tests/unit/probes/loopback_server.h"
#include "tests/unit/probes/redis_process.h"

namespace faultline {
namespace {

using ::testing::HasSubstr;
using probes::Clock;
using probes::HostPort;
using probes::RedisConnection;
using probes::RedisValue;
using Ms = std::chrono::milliseconds;
using testing_util::FreePort;
using testing_util::RedisProcess;

class RedisProbeTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char pattern[] = "/tmp/fl-redis-probe-XXXXXX";
    ASSERT_NE(::mkdtemp(pattern), nullptr);
    dir_ = pattern;
    primary_ = StartServer({});
    ASSERT_TRUE(primary_->WaitReady()) << "redis-server did not start (scripts/setup installs it)";
  }
  void TearDown() override {
    sentinel_.reset();
    replica_.reset();
    primary_.reset();
    std::error_code ignored;
    std::filesystem::remove_all(dir_, ignored);
  }

  std::unique_ptr<RedisProcess> StartServer(std::vector<std::string> extra) {
    const int port = FreePort();
    std::vector<std::string> argv = {"redis-server", "--port", std::to_string(port),
                                     "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
                                     "--dir", dir_};
    argv.insert(argv.end(), extra.begin(), extra.end());
    return std::make_unique<RedisProcess>(argv, port);
  }

  // A Sentinel watching the primary as "mymaster" (quorum 1).
  void StartSentinel() {
    const int port = FreePort();
    const std::string conf = dir_ + "/sentinel.conf";
    std::ofstream(conf) << "port " << port << "\nbind 127.0.0.1\ndir " << dir_
                        << "\nsentinel monitor mymaster 127.0.0.1 " << primary_->port()
                        << " 1\n";
    sentinel_ = std::make_unique<RedisProcess>(
        std::vector<std::string>{"redis-sentinel", conf}, port);
    ASSERT_TRUE(sentinel_->WaitReady()) << "redis-sentinel did not start";
  }

  static std::unique_ptr<Probe> Make(const v1::RedisProbe& redis) {
    v1::ProbeSpec spec;
    *spec.mutable_redis() = redis;
    auto probe = MakeProbe(spec);
    EXPECT_TRUE(probe.ok()) << probe.status();
    return probe.ok() ? std::move(probe).value() : nullptr;
  }

  std::string dir_;
  std::unique_ptr<RedisProcess> primary_;
  std::unique_ptr<RedisProcess> replica_;
  std::unique_ptr<RedisProcess> sentinel_;
};

TEST_F(RedisProbeTest, PingsAServer) {
  v1::RedisProbe spec;
  spec.set_address(primary_->address());
  auto probe = Make(spec);
  ASSERT_NE(probe, nullptr);
  ProbeResult result = probe->Check(Ms(500));
  EXPECT_TRUE(result.ok) << result.error;
}

TEST_F(RedisProbeTest, WriteSetsTheKeyWithAnExpiry) {
  v1::RedisProbe spec;
  spec.set_address(primary_->address());
  spec.set_write(true);
  spec.set_key("faultline:test");
  auto probe = Make(spec);
  ASSERT_NE(probe, nullptr);
  ProbeResult result = probe->Check(Ms(500));
  ASSERT_TRUE(result.ok) << result.error;
  RedisValue value = primary_->Run({"GET", "faultline:test"});
  EXPECT_EQ(value.type, RedisValue::Type::kString);
  const long long now_ns = std::chrono::duration_cast<std::chrono::nanoseconds>(
                               std::chrono::system_clock::now().time_since_epoch())
                               .count();
  const long long written_ns = std::atoll(value.str.c_str());
  EXPECT_GT(written_ns, now_ns - 5'000'000'000LL) << value.str;
  EXPECT_LE(written_ns, now_ns);
  RedisValue ttl = primary_->Run({"PTTL", "faultline:test"});
  EXPECT_GT(ttl.integer, 0);
  EXPECT_LE(ttl.integer, 600000);
}

TEST_F(RedisProbeTest, WriteToAReplicaFails) {
  replica_ = StartServer({"--replicaof", "127.0.0.1", std::to_string(primary_->port())});
  ASSERT_TRUE(replica_->WaitReady());
  v1::RedisProbe spec;
  spec.set_address(replica_->address());
  spec.set_write(true);
  auto probe = Make(spec);
  ASSERT_NE(probe, nullptr);
  ProbeResult result = probe->Check(Ms(500));
  EXPECT_FALSE(result.ok);
  EXPECT_THAT(result.error, HasSubstr("SET answered READONLY"));
}

TEST_F(RedisProbeTest, AStoppedServerFailsWithinTheTimeout) {
  v1::RedisProbe spec;
  spec.set_address(primary_->address());
  auto probe = Make(spec);
  ASSERT_NE(probe, nullptr);
  primary_->Kill();
  const auto start = Clock::now();
  ProbeResult result = probe->Check(Ms(300));
  EXPECT_LT(Clock::now() - start, Ms(400));
  EXPECT_FALSE(result.ok);
  EXPECT_THAT(result.error, HasSubstr("connect"));
}

TEST_F(RedisProbeTest, AServerThatNeverAnswersTimesOut) {
  testing_util::Listener silent;  // accepts (backlog), never replies
  v1::RedisProbe spec;
  spec.set_address("127.0.0.1:" + std::to_string(silent.port()));
  auto probe = Make(spec);
  ASSERT_NE(probe, nullptr);
  const auto start = Clock::now();
  ProbeResult result = probe->Check(Ms(200));
  const auto took = Clock::now() - start;
  EXPECT_FALSE(result.ok);
  EXPECT_THAT(result.error, HasSubstr("timed out waiting for"));
  EXPECT_GE(took, Ms(190));
  EXPECT_LT(took, Ms(300));
}

TEST_F(RedisProbeTest, WritesThroughSentinelToThePrimary) {
  ASSERT_NO_FATAL_FAILURE(StartSentinel());
  v1::RedisProbe spec;
  spec.add_sentinels(sentinel_->address());
  spec.set_master("mymaster");
  spec.set_write(true);
  auto probe = Make(spec);
  ASSERT_NE(probe, nullptr);
  ProbeResult result = probe->Check(Ms(500));
  ASSERT_TRUE(result.ok) << result.error;
  EXPECT_EQ(primary_->Run({"EXISTS", "faultline:probe"}).integer, 1);
}

TEST_F(RedisProbeTest, ADeadOrSilentSentinelCostsOnlyItsShare) {
  ASSERT_NO_FATAL_FAILURE(StartSentinel());
  testing_util::Listener silent;
  v1::RedisProbe spec;
  spec.add_sentinels("127.0.0.1:" + std::to_string(silent.port()));
  spec.add_sentinels("127.0.0.1:" + std::to_string(FreePort()));  // refuses
  spec.add_sentinels(sentinel_->address());
  spec.set_master("mymaster");
  auto probe = Make(spec);
  ASSERT_NE(probe, nullptr);
  // The silent one gets a quarter of 800 ms, the refusing one fails at once,
  // the live one answers.
  const auto start = Clock::now();
  ProbeResult result = probe->Check(Ms(800));
  EXPECT_TRUE(result.ok) << result.error;
  EXPECT_GE(Clock::now() - start, Ms(190));
  // Next time the Sentinel that answered is asked first: no wait at all.
  const auto again = Clock::now();
  result = probe->Check(Ms(800));
  EXPECT_TRUE(result.ok) << result.error;
  EXPECT_LT(Clock::now() - again, Ms(150));
}

TEST_F(RedisProbeTest, ASentinelThatDoesNotKnowTheNameFails) {
  ASSERT_NO_FATAL_FAILURE(StartSentinel());
  v1::RedisProbe spec;
  spec.add_sentinels(sentinel_->address());
  spec.set_master("other");
  auto probe = Make(spec);
  ASSERT_NE(probe, nullptr);
  ProbeResult result = probe->Check(Ms(500));
  EXPECT_FALSE(result.ok);
  EXPECT_THAT(result.error, HasSubstr("no Sentinel named other's primary: sentinel 127.0.0.1:"));
  EXPECT_THAT(result.error, HasSubstr("does not monitor other"));
}

}  // namespace
}  // namespace faultline
