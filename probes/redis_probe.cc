// redis probe: PING, or SET with `write`, on one server or on the primary that
// Sentinel names (RedisPrimary: a fresh connect per check, as a Sentinel-aware
// client does at each connect). So a sample is healthy exactly when a client
// that follows Sentinel could have written at that moment.
#include <fmt/format.h>

#include <chrono>
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "common/status_macros.h"
#include "probes/probe_internal.h"
#include "probes/redis_client.h"

namespace faultline::probes {
namespace {

constexpr char kDefaultKey[] = "faultline:probe";
constexpr size_t kMaxKeyBytes = 512;
// A key the probe writes expires after ten minutes: a probe leaves nothing lasting.
constexpr char kWriteExpiryMs[] = "600000";

// Checks one Redis deployment. Owned by the runner; not thread-safe.
class RedisProbe final : public Probe {
 public:
  RedisProbe(RedisPrimary primary, bool write, std::string key)
      : primary_(std::move(primary)), write_(write), key_(std::move(key)) {}

  ProbeResult Check(std::chrono::nanoseconds timeout) override {
    const Clock::time_point deadline =
        Clock::now() + std::chrono::duration_cast<Clock::duration>(timeout);
    absl::Status status = Send(deadline);
    if (!status.ok()) return {false, std::string(status.message())};
    return {true, ""};
  }

 private:
  absl::Status Send(Clock::time_point deadline) {
    ASSIGN_OR_RETURN(RedisConnection connection, primary_.Connect(deadline));
    std::vector<std::string> command = {"PING"};
    std::string expected = "PONG";
    if (write_) {
      const auto now = std::chrono::system_clock::now().time_since_epoch();
      command = {"SET", key_,
                 std::to_string(std::chrono::duration_cast<std::chrono::nanoseconds>(now).count()),
                 "PX", kWriteExpiryMs};
      expected = "OK";
    }
    ASSIGN_OR_RETURN(RedisValue reply, connection.Command(command, deadline));
    if (reply.type != RedisValue::Type::kStatus || reply.str != expected) {
      return absl::FailedPreconditionError(
          fmt::format("{} answered {}", command.front(), DescribeRedisValue(reply)));
    }
    return absl::OkStatus();
  }

  RedisPrimary primary_;
  const bool write_;
  const std::string key_;
};

}  // namespace

absl::StatusOr<std::unique_ptr<Probe>> MakeRedisProbe(const v1::RedisProbe& spec) {
  ASSIGN_OR_RETURN(RedisPrimary primary,
                   RedisPrimary::Make("redis", spec.address(),
                                      {spec.sentinels().begin(), spec.sentinels().end()},
                                      spec.master()));
  std::string key = spec.key().empty() ? kDefaultKey : spec.key();
  if (key.size() > kMaxKeyBytes) {
    return absl::InvalidArgumentError(fmt::format("redis.key: at most {} bytes", kMaxKeyBytes));
  }
  if (!spec.write() && !spec.key().empty()) {
    return absl::InvalidArgumentError("redis.key: only with write: true (PING writes no key)");
  }
  return std::unique_ptr<Probe>(
      std::make_unique<RedisProbe>(std::move(primary), spec.write(), std::move(key)));
}

}  // namespace faultline::probes
