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
// larger than 64 KiB in all are refused (a probe never needs more).
class RedisConnection {
 public:
  // Resolves and connects to `target` before `deadline`.
  static absl::StatusOr<RedisConnection> Connect(const HostPort& target, Resolver& resolver,
                                                 Clock::time_point deadline);
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
  RedisConnection(UniqueFd fd, std::string peer);

  UniqueFd fd_;
  std::string peer_;  // "HOST:PORT", for messages
  std::unique_ptr<redisReader, ReaderFree> reader_;
};

}  // namespace faultline::probes

#endif  // FAULTLINE_PROBES_REDIS_CLIENT_H_
