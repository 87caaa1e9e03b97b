#include "workload/redis_driver.h"

#include <fmt/format.h>

#include <charconv>
#include <optional>
#include <utility>
#include <vector>

#include "common/clock.h"
#include "common/status_macros.h"
#include "probes/redis_client.h"

namespace faultline::workload {
namespace {

using probes::RedisConnection;
using probes::RedisPrimary;
using probes::RedisValue;

// SCAN replies of 1000 keys and UNLINK batches fit well inside this.
constexpr size_t kMaxReplyBytes = 4 << 20;
constexpr int kScanCount = 1000;

// Writes and reads one workload's keys. Keeps one connection to the primary
// between writes, as a client does, and connects again (asking the Sentinels
// again) after any failure.
class RedisDriver final : public DataDriver {
 public:
  RedisDriver(RedisPrimary primary, std::string prefix)
      : primary_(std::move(primary)), prefix_(std::move(prefix)) {}

  std::string Kind() const override { return "redis"; }
  bool CanList() const override { return true; }

  v1::WriteRecord::Outcome Write(int64_t seq, Clock::time_point deadline,
                                 std::string* error) override {
    if (!connection_) {
      auto connection = primary_.Connect(deadline, kMaxReplyBytes);
      if (!connection.ok()) {
        *error = std::string(connection.status().message());
        return v1::WriteRecord::FAILED;  // never sent
      }
      connection_ = std::move(*connection);
    }
    // The value says when it was sent: "<seq>:<unix ns>" (tests read it).
    auto reply = connection_->Command(
        {"SET", prefix_ + std::to_string(seq), fmt::format("{}:{}", seq, NowRealtimeNs())},
        deadline);
    if (!reply.ok()) {
      // Sent, perhaps applied: no answer in time, or the connection broke.
      connection_.reset();
      *error = std::string(reply.status().message());
      return v1::WriteRecord::UNKNOWN;
    }
    if (reply->type == RedisValue::Type::kStatus && reply->str == "OK") return v1::WriteRecord::ACKED;
    connection_.reset();  // e.g. READONLY: this server is no longer the primary
    *error = fmt::format("SET answered {}", probes::DescribeRedisValue(*reply));
    return v1::WriteRecord::FAILED;
  }

  absl::StatusOr<std::set<int64_t>> ReadAll(const std::vector<int64_t>&,
                                            Clock::time_point deadline) override {
    std::set<int64_t> present;
    RETURN_IF_ERROR(Scan(deadline, [&](const std::string& key) {
      int64_t seq = 0;
      const char* begin = key.data() + prefix_.size();
      const char* end = key.data() + key.size();
      auto [ptr, ec] = std::from_chars(begin, end, seq);
      if (ec == std::errc() && ptr == end && seq >= 0) present.insert(seq);
      return absl::OkStatus();
    }));
    return present;
  }

  absl::Status Cleanup(Clock::time_point deadline) override {
    std::vector<std::string> batch = {"UNLINK"};
    ASSIGN_OR_RETURN(RedisConnection connection, primary_.Connect(deadline, kMaxReplyBytes));
    auto flush = [&]() -> absl::Status {
      if (batch.size() == 1) return absl::OkStatus();
      ASSIGN_OR_RETURN(RedisValue reply, connection.Command(batch, deadline));
      if (reply.type != RedisValue::Type::kInteger) {
        return absl::FailedPreconditionError(
            fmt::format("UNLINK answered {}", probes::DescribeRedisValue(reply)));
      }
      batch.resize(1);
      return absl::OkStatus();
    };
    RETURN_IF_ERROR(Scan(deadline, [&](const std::string& key) {
      batch.push_back(key);
      return batch.size() > static_cast<size_t>(kScanCount) ? flush() : absl::OkStatus();
    }));
    return flush();
  }

 private:
  // SCAN MATCH <prefix>* over the whole key space, on a fresh connection to
  // the primary; calls `each` for every key (a key may come twice).
  template <typename Each>
  absl::Status Scan(Clock::time_point deadline, Each each) {
    ASSIGN_OR_RETURN(RedisConnection connection, primary_.Connect(deadline, kMaxReplyBytes));
    std::string cursor = "0";
    do {
      ASSIGN_OR_RETURN(RedisValue reply,
                       connection.Command({"SCAN", cursor, "MATCH", prefix_ + "*", "COUNT",
                                           std::to_string(kScanCount)},
                                          deadline));
      if (reply.type != RedisValue::Type::kArray || reply.elements.size() != 2 ||
          reply.elements[1].type != RedisValue::Type::kArray) {
        return absl::DataLossError(
            fmt::format("SCAN answered {}", probes::DescribeRedisValue(reply)));
      }
      cursor = reply.elements[0].str;
      for (const RedisValue& key : reply.elements[1].elements) RETURN_IF_ERROR(each(key.str));
    } while (cursor != "0");
    return absl::OkStatus();
  }

  RedisPrimary primary_;
  const std::string prefix_;
  std::optional<RedisConnection> connection_;
};

}  // namespace

absl::StatusOr<std::unique_ptr<DataDriver>> MakeRedisDriver(const std::string& field,
                                                            const v1::RedisData& spec,
                                                            const std::string& prefix) {
  ASSIGN_OR_RETURN(RedisPrimary primary,
                   RedisPrimary::Make(field, spec.address(),
                                      {spec.sentinels().begin(), spec.sentinels().end()},
                                      spec.master()));
  return std::unique_ptr<DataDriver>(std::make_unique<RedisDriver>(std::move(primary), prefix));
}

}  // namespace faultline::workload
