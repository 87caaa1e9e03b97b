// redis probe: PING, or SET with `write`, on one server or on the primary that
// Sentinel names. Through Sentinel the check does what a Sentinel-aware client
// does at each connect: ask a Sentinel for the primary's address (the Sentinel
// that last answered first, the others in turn), check with ROLE that the server
// there is a primary, then send the command. So a sample is healthy exactly when
// a client that follows Sentinel could have written at that moment.
#include <fmt/format.h>
#include <fmt/ranges.h>

#include <algorithm>
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
constexpr size_t kMaxSentinels = 16;
// A key the probe writes expires after ten minutes: a probe leaves nothing lasting.
constexpr char kWriteExpiryMs[] = "600000";

std::string Describe(const RedisValue& value) {
  switch (value.type) {
    case RedisValue::Type::kNil:
      return "nil";
    case RedisValue::Type::kInteger:
      return std::to_string(value.integer);
    case RedisValue::Type::kArray:
      return fmt::format("an array of {}", value.elements.size());
    default:
      return value.str.size() > 200 ? value.str.substr(0, 200) + "..." : value.str;
  }
}

// Checks one Redis deployment. Owned by the runner; not thread-safe.
class RedisProbe final : public Probe {
 public:
  RedisProbe(HostPort address, std::vector<HostPort> sentinels, std::string master, bool write,
             std::string key)
      : address_(std::move(address)),
        sentinels_(std::move(sentinels)),
        master_(std::move(master)),
        write_(write),
        key_(std::move(key)) {}

  ProbeResult Check(std::chrono::nanoseconds timeout) override {
    const Clock::time_point deadline =
        Clock::now() + std::chrono::duration_cast<Clock::duration>(timeout);
    absl::Status status = sentinels_.empty() ? Send(address_, deadline) : ViaSentinel(deadline);
    if (!status.ok()) return {false, std::string(status.message())};
    return {true, ""};
  }

 private:
  // Asks the Sentinels for the primary, then checks it is one and sends.
  absl::Status ViaSentinel(Clock::time_point deadline) {
    ASSIGN_OR_RETURN(HostPort primary, AskSentinels(deadline));
    ASSIGN_OR_RETURN(RedisConnection connection,
                     RedisConnection::Connect(primary, resolver_, deadline));
    ASSIGN_OR_RETURN(RedisValue role, connection.Command({"ROLE"}, deadline));
    if (role.type != RedisValue::Type::kArray || role.elements.empty() ||
        role.elements[0].str != "master") {
      return absl::FailedPreconditionError(fmt::format(
          "{}:{}, which Sentinel names as {}'s primary, answers ROLE with {}", primary.host,
          primary.port, master_,
          role.elements.empty() ? Describe(role) : Describe(role.elements[0])));
    }
    return SendOn(connection, deadline);
  }

  // SENTINEL get-master-addr-by-name, to each Sentinel in turn until one
  // answers; each gets an equal share of the time left (keeping one share for
  // the primary). The one that answered is asked first next time.
  absl::StatusOr<HostPort> AskSentinels(Clock::time_point deadline) {
    std::vector<std::string> errors;
    for (size_t tried = 0; tried < sentinels_.size(); ++tried) {
      const size_t index = (first_ + tried) % sentinels_.size();
      const HostPort& sentinel = sentinels_[index];
      const auto left = deadline - Clock::now();
      if (left <= Clock::duration::zero()) break;
      const Clock::time_point own_deadline =
          Clock::now() + left / static_cast<int64_t>(sentinels_.size() - tried + 1);
      auto primary = AskOne(sentinel, own_deadline);
      if (primary.ok()) {
        first_ = index;
        return primary;
      }
      errors.push_back(fmt::format("sentinel {}:{}: {}", sentinel.host, sentinel.port,
                                   std::string(primary.status().message())));
    }
    if (errors.empty()) errors.push_back("no time left to ask a Sentinel");
    first_ = (first_ + 1) % sentinels_.size();
    return absl::UnavailableError(fmt::format("no Sentinel named {}'s primary: {}", master_,
                                              fmt::join(errors, "; ")));
  }

  absl::StatusOr<HostPort> AskOne(const HostPort& sentinel, Clock::time_point deadline) {
    ASSIGN_OR_RETURN(RedisConnection connection,
                     RedisConnection::Connect(sentinel, resolver_, deadline));
    ASSIGN_OR_RETURN(RedisValue reply,
                     connection.Command({"SENTINEL", "get-master-addr-by-name", master_},
                                        deadline));
    if (reply.type == RedisValue::Type::kNil) {
      return absl::NotFoundError(fmt::format("does not monitor {}", master_));
    }
    if (reply.type != RedisValue::Type::kArray || reply.elements.size() != 2) {
      return absl::DataLossError(fmt::format("unexpected answer {}", Describe(reply)));
    }
    const std::string& host = reply.elements[0].str;
    const std::string address = host.find(':') == std::string::npos
                                    ? fmt::format("{}:{}", host, reply.elements[1].str)
                                    : fmt::format("[{}]:{}", host, reply.elements[1].str);
    auto primary = ParseHostPort("primary", address);
    if (!primary.ok()) {
      return absl::DataLossError(fmt::format("unusable address {}", address));
    }
    return primary;
  }

  absl::Status Send(const HostPort& server, Clock::time_point deadline) {
    ASSIGN_OR_RETURN(RedisConnection connection,
                     RedisConnection::Connect(server, resolver_, deadline));
    return SendOn(connection, deadline);
  }

  absl::Status SendOn(RedisConnection& connection, Clock::time_point deadline) {
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
          fmt::format("{} answered {}", command.front(), Describe(reply)));
    }
    return absl::OkStatus();
  }

  const HostPort address_;
  const std::vector<HostPort> sentinels_;
  const std::string master_;
  const bool write_;
  const std::string key_;
  size_t first_ = 0;  // the Sentinel asked first
  Resolver resolver_;
};

}  // namespace

absl::StatusOr<std::unique_ptr<Probe>> MakeRedisProbe(const v1::RedisProbe& spec) {
  const bool has_address = !spec.address().empty();
  const bool has_sentinels = spec.sentinels_size() > 0;
  if (has_address == has_sentinels) {
    return absl::InvalidArgumentError(
        "redis: exactly one of address (a server) and sentinels (with master) is required");
  }
  HostPort address;
  std::vector<HostPort> sentinels;
  if (has_address) {
    ASSIGN_OR_RETURN(address, ParseHostPort("redis.address", spec.address()));
    if (!spec.master().empty()) {
      return absl::InvalidArgumentError(
          "redis.master: only with sentinels (address names the server itself)");
    }
  } else {
    if (spec.sentinels_size() > static_cast<int>(kMaxSentinels)) {
      return absl::InvalidArgumentError(fmt::format("redis.sentinels: at most {}, got {}",
                                                    kMaxSentinels, spec.sentinels_size()));
    }
    for (int i = 0; i < spec.sentinels_size(); ++i) {
      ASSIGN_OR_RETURN(HostPort sentinel,
                       ParseHostPort(fmt::format("redis.sentinels[{}]", i), spec.sentinels(i)));
      sentinels.push_back(std::move(sentinel));
    }
    if (spec.master().empty()) {
      return absl::InvalidArgumentError(
          "redis.master: required with sentinels (the name they monitor, e.g. mymaster)");
    }
    if (spec.master().size() > kMaxKeyBytes) {
      return absl::InvalidArgumentError(
          fmt::format("redis.master: at most {} bytes", kMaxKeyBytes));
    }
  }
  std::string key = spec.key().empty() ? kDefaultKey : spec.key();
  if (key.size() > kMaxKeyBytes) {
    return absl::InvalidArgumentError(fmt::format("redis.key: at most {} bytes", kMaxKeyBytes));
  }
  if (!spec.write() && !spec.key().empty()) {
    return absl::InvalidArgumentError("redis.key: only with write: true (PING writes no key)");
  }
  return std::unique_ptr<Probe>(std::make_unique<RedisProbe>(
      std::move(address), std::move(sentinels), spec.master(), spec.write(), std::move(key)));
}

}  // namespace faultline::probes
