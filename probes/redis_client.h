// A minimal Redis client for probes: one connection, one command at a time,
// every step bounded by the caller's deadline. Commands are encoded and replies
// parsed by hiredis (its RESP reader); the socket work is ours (probe_net.h), so
// connect, send and read never wait past the deadline.
#ifndef FAULTLINE_PROBES_REDIS_CLIENT_H_
#define FAULTLINE_PROBES_REDIS_CLIENT_H_

#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "probes/probe_net.h"

struct redisReader;

namespace faultline::probes {

// One reply, copied out of hiredis's reply tree.
struct RedisValue {
  enum class Type { kString, kArray, kInteger, kNil, kStatus, kError };
  Type type = Type::kNil;
  std::string str;                 // string, status or error text
  long long integer = 0;
  std::vector<RedisValue> elements;
};

// A connection to one server. Owned by one caller; not thread-safe. Replies
// larger than `max_reply_bytes` (64 KiB by default: a probe never needs more)
// are refused.
class RedisConnection {
 public:
  static constexpr size_t kDefaultMaxReplyBytes = 64 * 1024;

  // Resolves and connects to `target` before `deadline`.
  static absl::StatusOr<RedisConnection> Connect(const HostPort& target, Resolver& resolver,
                                                 Clock::time_point deadline,
                                                 size_t max_reply_bytes = kDefaultMaxReplyBytes);
  const std::string& peer() const { return peer_; }
  RedisConnection(RedisConnection&&) noexcept;
  RedisConnection& operator=(RedisConnection&&) noexcept;
  ~RedisConnection();

  // Sends `argv` as one command and reads its reply. A Redis error reply is a
  // value (Type::kError), not a failed status; timeouts and broken connections
  // are.
  absl::StatusOr<RedisValue> Command(const std::vector<std::string>& argv,
                                     Clock::time_point deadline);

 private:
  struct ReaderFree {
    void operator()(redisReader* r) const;
  };
  RedisConnection(UniqueFd fd, std::string peer, size_t max_reply_bytes);

  UniqueFd fd_;
  std::string peer_;  // "HOST:PORT", for messages
  size_t max_reply_bytes_;
  std::unique_ptr<redisReader, ReaderFree> reader_;
};

// One reply in words, for messages: "nil", "3", "an array of 2", the text.
std::string DescribeRedisValue(const RedisValue& value);

// A Redis deployment's primary: one server (`address`), or the server that
// Sentinels name for `master`. Through Sentinel, Connect does what a
// Sentinel-aware client does at each connect: asks the Sentinels in turn (the
// one that answered last first) for the primary's address and checks with
// ROLE that the server there is a primary. The redis probe and the data
// workload's Redis driver both reach Redis through one. Owned by one caller;
// not thread-safe.
class RedisPrimary {
 public:
  // Validates the fields (errors name them under `field`, e.g. "redis"):
  // exactly one of an address and Sentinels (at most 16) with a master name.
  static absl::StatusOr<RedisPrimary> Make(const std::string& field, const std::string& address,
                                           const std::vector<std::string>& sentinels,
                                           const std::string& master);
  RedisPrimary(RedisPrimary&&) noexcept;
  ~RedisPrimary();

  absl::StatusOr<RedisConnection> Connect(
      Clock::time_point deadline,
      size_t max_reply_bytes = RedisConnection::kDefaultMaxReplyBytes);

 private:
  RedisPrimary(HostPort address, std::vector<HostPort> sentinels, std::string master);
  absl::StatusOr<HostPort> AskSentinels(Clock::time_point deadline);
  absl::StatusOr<HostPort> AskOne(const HostPort& sentinel, Clock::time_point deadline);

  HostPort address_;
  std::vector<HostPort> sentinels_;
  std::string master_;
  size_t first_ = 0;  // the Sentinel asked first
  std::unique_ptr<Resolver> resolver_;
};

}  // namespace faultline::probes

#endif  // FAULTLINE_PROBES_REDIS_CLIENT_H_
