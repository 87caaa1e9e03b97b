#include "probes/redis_client.h"

#include <fmt/format.h>
#include <hiredis/hiredis.h>

#include <utility>

#include "common/status_macros.h"

namespace faultline::probes {
namespace {

constexpr size_t kMaxReplyBytes = 64 * 1024;

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

RedisConnection::RedisConnection(UniqueFd fd, std::string peer)
    : fd_(std::move(fd)), peer_(std::move(peer)), reader_(redisReaderCreate()) {}
RedisConnection::RedisConnection(RedisConnection&&) noexcept = default;
RedisConnection& RedisConnection::operator=(RedisConnection&&) noexcept = default;
RedisConnection::~RedisConnection() = default;

absl::StatusOr<RedisConnection> RedisConnection::Connect(const HostPort& target,
                                                         Resolver& resolver,
                                                         Clock::time_point deadline) {
  ASSIGN_OR_RETURN(auto addresses, resolver.Resolve(target, deadline));
  ASSIGN_OR_RETURN(UniqueFd fd, ConnectTcp(addresses, deadline));
  RedisConnection connection(std::move(fd), fmt::format("{}:{}", target.host, target.port));
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
    if (received > kMaxReplyBytes) {
      return absl::ResourceExhaustedError(fmt::format("{}: reply larger than 64 KiB", peer_));
    }
    if (redisReaderFeed(reader_.get(), data.data(), data.size()) != REDIS_OK) {
      return absl::DataLossError(fmt::format("{}: bad reply", peer_));
    }
  }
}

}  // namespace faultline::probes
