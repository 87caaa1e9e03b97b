#include "probes/redis_client.h"

#include <fmt/format.h>
#include <fmt/ranges.h>
#include <hiredis/hiredis.h>

#include <utility>

#include "common/status_macros.h"

namespace faultline::probes {
namespace {

constexpr size_t kMaxSentinels = 16;
constexpr size_t kMaxNameBytes = 512;

RedisValue Copy(const redisReply& reply) {
  RedisValue value;
  switch (reply.type) {
    case REDIS_REPLY_STRING:
      value.type = RedisValue::Type::kString;
      break;
    case REDIS_REPLY_ARRAY:
      value.type = RedisValue::Type::kArray;
      break;
    case REDIS_REPLY_INTEGER:
      value.type = RedisValue::Type::kInteger;
      break;
    case REDIS_REPLY_STATUS:
      value.type = RedisValue::Type::kStatus;
      break;
    case REDIS_REPLY_ERROR:
      value.type = RedisValue::Type::kError;
      break;
    default:
      value.type = RedisValue::Type::kNil;
      break;
  }
  if (reply.str != nullptr) value.str.assign(reply.str, reply.len);
  value.integer = reply.integer;
  for (size_t i = 0; i < reply.elements; ++i) value.elements.push_back(Copy(*reply.element[i]));
  return value;
}

}  // namespace

void RedisConnection::ReaderFree::operator()(redisReader* r) const { redisReaderFree(r); }

RedisConnection::RedisConnection(UniqueFd fd, std::string peer, size_t max_reply_bytes)
    : fd_(std::move(fd)),
      peer_(std::move(peer)),
      max_reply_bytes_(max_reply_bytes),
      reader_(redisReaderCreate()) {}
RedisConnection::RedisConnection(RedisConnection&&) noexcept = default;
RedisConnection& RedisConnection::operator=(RedisConnection&&) noexcept = default;
RedisConnection::~RedisConnection() = default;

absl::StatusOr<RedisConnection> RedisConnection::Connect(const HostPort& target,
                                                         Resolver& resolver,
                                                         Clock::time_point deadline,
                                                         size_t max_reply_bytes) {
  ASSIGN_OR_RETURN(auto addresses, resolver.Resolve(target, deadline));
  ASSIGN_OR_RETURN(UniqueFd fd, ConnectTcp(addresses, deadline));
  RedisConnection connection(std::move(fd), fmt::format("{}:{}", target.host, target.port),
                             max_reply_bytes);
  if (connection.reader_ == nullptr) return absl::ResourceExhaustedError("redisReaderCreate");
  return connection;
}

absl::StatusOr<RedisValue> RedisConnection::Command(const std::vector<std::string>& argv,
                                                    Clock::time_point deadline) {
  std::vector<const char*> args;
  std::vector<size_t> lengths;
  for (const std::string& arg : argv) {
    args.push_back(arg.data());
    lengths.push_back(arg.size());
  }
  char* encoded = nullptr;
  const int len = redisFormatCommandArgv(&encoded, static_cast<int>(args.size()), args.data(),
                                         lengths.data());
  if (len < 0 || encoded == nullptr) return absl::ResourceExhaustedError("redisFormatCommandArgv");
  const std::string request(encoded, static_cast<size_t>(len));
  redisFreeCommand(encoded);
  const std::string what = fmt::format("sending {} to {}", argv.front(), peer_);
  RETURN_IF_ERROR(SendAll(fd_.get(), request, deadline, what.c_str()));
  const std::string reading = fmt::format("waiting for {}'s reply to {}", peer_, argv.front());
  size_t received = 0;
  for (;;) {
    void* raw = nullptr;
    if (redisReaderGetReply(reader_.get(), &raw) != REDIS_OK) {
      return absl::DataLossError(
          fmt::format("{}: bad reply: {}", peer_, reader_->errstr[0] ? reader_->errstr : "?"));
    }
    if (raw != nullptr) {
      auto* reply = static_cast<redisReply*>(raw);
      RedisValue value = Copy(*reply);
      freeReplyObject(reply);
      return value;
    }
    std::string data;
    ASSIGN_OR_RETURN(const bool open, RecvSome(fd_.get(), &data, deadline, reading.c_str()));
    if (!open) return absl::UnavailableError(fmt::format("{} closed the connection", peer_));
    received += data.size();
    if (received > max_reply_bytes_) {
      return absl::ResourceExhaustedError(
          fmt::format("{}: reply larger than {} KiB", peer_, max_reply_bytes_ / 1024));
    }
    if (redisReaderFeed(reader_.get(), data.data(), data.size()) != REDIS_OK) {
      return absl::DataLossError(fmt::format("{}: bad reply", peer_));
    }
  }
}

std::string DescribeRedisValue(const RedisValue& value) {
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

absl::StatusOr<RedisPrimary> RedisPrimary::Make(const std::string& field,
                                                const std::string& address,
                                                const std::vector<std::string>& sentinels,
                                                const std::string& master) {
  if (address.empty() == sentinels.empty()) {
    return absl::InvalidArgumentError(fmt::format(
        "{}: exactly one of address (a server) and sentinels (with master) is required", field));
  }
  if (!address.empty()) {
    ASSIGN_OR_RETURN(HostPort server, ParseHostPort(field + ".address", address));
    if (!master.empty()) {
      return absl::InvalidArgumentError(fmt::format(
          "{}.master: only with sentinels (address names the server itself)", field));
    }
    return RedisPrimary(std::move(server), {}, "");
  }
  if (sentinels.size() > kMaxSentinels) {
    return absl::InvalidArgumentError(
        fmt::format("{}.sentinels: at most {}, got {}", field, kMaxSentinels, sentinels.size()));
  }
  std::vector<HostPort> parsed;
  for (size_t i = 0; i < sentinels.size(); ++i) {
    ASSIGN_OR_RETURN(HostPort sentinel,
                     ParseHostPort(fmt::format("{}.sentinels[{}]", field, i), sentinels[i]));
    parsed.push_back(std::move(sentinel));
  }
  if (master.empty()) {
    return absl::InvalidArgumentError(fmt::format(
        "{}.master: required with sentinels (the name they monitor, e.g. mymaster)", field));
  }
  if (master.size() > kMaxNameBytes) {
    return absl::InvalidArgumentError(
        fmt::format("{}.master: at most {} bytes", field, kMaxNameBytes));
  }
  return RedisPrimary(HostPort{}, std::move(parsed), master);
}

RedisPrimary::RedisPrimary(HostPort address, std::vector<HostPort> sentinels, std::string master)
    : address_(std::move(address)),
      sentinels_(std::move(sentinels)),
      master_(std::move(master)),
      resolver_(std::make_unique<Resolver>()) {}
RedisPrimary::RedisPrimary(RedisPrimary&&) noexcept = default;
RedisPrimary::~RedisPrimary() = default;

absl::StatusOr<RedisConnection> RedisPrimary::Connect(Clock::time_point deadline,
                                                      size_t max_reply_bytes) {
  if (sentinels_.empty()) {
    return RedisConnection::Connect(address_, *resolver_, deadline, max_reply_bytes);
  }
  ASSIGN_OR_RETURN(HostPort primary, AskSentinels(deadline));
  ASSIGN_OR_RETURN(RedisConnection connection,
                   RedisConnection::Connect(primary, *resolver_, deadline, max_reply_bytes));
  ASSIGN_OR_RETURN(RedisValue role, connection.Command({"ROLE"}, deadline));
  if (role.type != RedisValue::Type::kArray || role.elements.empty() ||
      role.elements[0].str != "master") {
    return absl::FailedPreconditionError(fmt::format(
        "{}:{}, which Sentinel names as {}'s primary, answers ROLE with {}", primary.host,
        primary.port, master_,
        DescribeRedisValue(role.elements.empty() ? role : role.elements[0])));
  }
  return connection;
}

// SENTINEL get-master-addr-by-name, to each Sentinel in turn until one
// answers; each gets an equal share of the time left (keeping one share for
// the primary). The one that answered is asked first next time.
absl::StatusOr<HostPort> RedisPrimary::AskSentinels(Clock::time_point deadline) {
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

absl::StatusOr<HostPort> RedisPrimary::AskOne(const HostPort& sentinel,
                                              Clock::time_point deadline) {
  ASSIGN_OR_RETURN(RedisConnection connection,
                   RedisConnection::Connect(sentinel, *resolver_, deadline));
  ASSIGN_OR_RETURN(RedisValue reply,
                   connection.Command({"SENTINEL", "get-master-addr-by-name", master_}, deadline));
  if (reply.type == RedisValue::Type::kNil) {
    return absl::NotFoundError(fmt::format("does not monitor {}", master_));
  }
  if (reply.type != RedisValue::Type::kArray || reply.elements.size() != 2) {
    return absl::DataLossError(fmt::format("unexpected answer {}", DescribeRedisValue(reply)));
  }
  const std::string& host = reply.elements[0].str;
  const std::string address = host.find(':') == std::string::npos
                                  ? fmt::format("{}:{}", host, reply.elements[1].str)
                                  : fmt::format("[{}]:{}", host, reply.elements[1].str);
  auto primary = ParseHostPort("primary", address);
  if (!primary.ok()) return absl::DataLossError(fmt::format("unusable address {}", address));
  return primary;
}

}  // namespace faultline::probes
