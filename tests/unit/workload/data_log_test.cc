// The data workload's figures (workload/data_log) and the validation of its
// settings (workload/data_driver): pure, no servers.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "workload/data_driver.h"
#include "workload/data_log.h"

namespace faultline::workload {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

constexpr int64_t kMs = 1'000'000;

v1::WriteRecord Write(int64_t seq, v1::WriteRecord::Outcome outcome, int64_t done_ms) {
  v1::WriteRecord w;
  w.set_seq(seq);
  w.set_invoke_unix_ns(done_ms * kMs - kMs / 2);
  w.set_done_unix_ns(done_ms * kMs);
  w.set_outcome(outcome);
  return w;
}

TEST(DataLog, NothingLostWhenEveryAckIsReadBack) {
  const std::vector<v1::WriteRecord> writes = {Write(1, v1::WriteRecord::ACKED, 10),
                                               Write(2, v1::WriteRecord::ACKED, 20)};
  v1::DataResult r = Analyze(writes, {1, 2}, true, std::chrono::milliseconds(10));
  EXPECT_EQ(r.writes_attempted(), 2);
  EXPECT_EQ(r.writes_acked(), 2);
  EXPECT_EQ(r.writes_lost(), 0);
  EXPECT_EQ(r.rpo_ms(), 0);
  EXPECT_EQ(r.rpo_error_ms(), 10);
  EXPECT_TRUE(r.first_lost().empty());
}

// Lost: acked, not read back. Recovered: failed or unknown, yet present.
// Unexpected: present, never sent. RPO: last lost ack - first lost ack.
TEST(DataLog, CountsLostRecoveredAndUnexpected) {
  const std::vector<v1::WriteRecord> writes = {
      Write(1, v1::WriteRecord::ACKED, 100),  Write(2, v1::WriteRecord::ACKED, 110),
      Write(3, v1::WriteRecord::ACKED, 120),  Write(4, v1::WriteRecord::UNKNOWN, 1200),
      Write(5, v1::WriteRecord::FAILED, 1300), Write(6, v1::WriteRecord::FAILED, 1400),
      Write(7, v1::WriteRecord::ACKED, 1500)};
  v1::DataResult r = Analyze(writes, {1, 4, 7, 99, 100}, true, std::chrono::milliseconds(10));
  EXPECT_EQ(r.writes_attempted(), 7);
  EXPECT_EQ(r.writes_acked(), 4);
  EXPECT_EQ(r.writes_lost(), 2);
  EXPECT_THAT(r.first_lost(), ElementsAre(2, 3));
  EXPECT_EQ(r.writes_recovered(), 1);
  EXPECT_EQ(r.writes_unexpected(), 2);
  EXPECT_DOUBLE_EQ(r.rpo_ms(), 10);
  EXPECT_EQ(r.first_lost_ack_unix_ns(), 110 * kMs);
  EXPECT_EQ(r.last_lost_ack_unix_ns(), 120 * kMs);
}

TEST(DataLog, ListsTheFirstTwentyLostAndUnexpectedOnlyWhenListed) {
  std::vector<v1::WriteRecord> writes;
  for (int i = 1; i <= 50; ++i) writes.push_back(Write(i, v1::WriteRecord::ACKED, 10 * i));
  v1::DataResult r = Analyze(writes, {}, false, std::chrono::milliseconds(5));
  EXPECT_EQ(r.writes_lost(), 50);
  ASSERT_EQ(r.first_lost_size(), kMaxFirstLost);
  EXPECT_EQ(r.first_lost(0), 1);
  EXPECT_EQ(r.first_lost(19), 20);
  EXPECT_DOUBLE_EQ(r.rpo_ms(), 490);
  EXPECT_EQ(r.writes_unexpected(), -1);
}

TEST(DataSettings, DefaultsAndBounds) {
  v1::DataWorkload spec;
  spec.set_name("orders");
  spec.mutable_redis()->set_address("127.0.0.1:6379");
  auto s = ValidateDataWorkload("data[0]", spec);
  ASSERT_TRUE(s.ok()) << s.status();
  EXPECT_EQ(s->rate_per_s, 100);
  EXPECT_EQ(s->period, std::chrono::milliseconds(10));
  EXPECT_EQ(s->timeout, std::chrono::seconds(1));
  EXPECT_EQ(s->read_timeout, std::chrono::seconds(30));
  spec.set_rate("200/s");
  EXPECT_EQ(ValidateDataWorkload("data[0]", spec)->period, std::chrono::milliseconds(5));
}

TEST(DataSettings, BadFieldsAreNamed) {
  struct Case {
    std::function<void(v1::DataWorkload&)> change;
    std::string field;
  };
  const std::vector<Case> cases = {
      {[](v1::DataWorkload& s) { s.set_name(""); }, "data[1].name"},
      {[](v1::DataWorkload& s) { s.set_name("Orders"); }, "data[1].name"},
      {[](v1::DataWorkload& s) { s.set_name(std::string(33, 'a')); }, "data[1].name"},
      {[](v1::DataWorkload& s) { s.set_name("a:b"); }, "data[1].name"},
      {[](v1::DataWorkload& s) { s.set_rate("0/s"); }, "data[1].rate"},
      {[](v1::DataWorkload& s) { s.set_rate("1001/s"); }, "data[1].rate"},
      {[](v1::DataWorkload& s) { s.set_rate("200"); }, "data[1].rate"},
      {[](v1::DataWorkload& s) { s.set_rate("1e3/s"); }, "data[1].rate"},
      {[](v1::DataWorkload& s) { s.set_rate("nan/s"); }, "data[1].rate"},
      {[](v1::DataWorkload& s) { s.set_timeout("11s"); }, "data[1].timeout"},
      {[](v1::DataWorkload& s) { s.set_read_timeout("1h"); }, "data[1].read_timeout"},
      {[](v1::DataWorkload& s) { s.clear_redis(); }, "exactly one of redis, postgres and http"},
      {[](v1::DataWorkload& s) { s.mutable_http()->set_url("http://x/"); },
       "exactly one of redis, postgres and http"},
      {[](v1::DataWorkload& s) { s.mutable_redis()->set_master("m"); }, "data[1].redis.master"},
      {[](v1::DataWorkload& s) { s.mutable_redis()->set_address("no-port"); },
       "data[1].redis.address"},
  };
  for (const Case& c : cases) {
    v1::DataWorkload spec;
    spec.set_name("orders");
    spec.mutable_redis()->set_address("127.0.0.1:6379");
    c.change(spec);
    auto driver = MakeDataDriver("data[1]", spec, "run-1");
    ASSERT_FALSE(driver.ok()) << c.field;
    EXPECT_THAT(driver.status().message(), HasSubstr(c.field));
  }
}

}  // namespace
}  // namespace faultline::workload
