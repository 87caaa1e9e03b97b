#include "probes/probe_net.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <fmt/format.h>
#include <netdb.h>
#include <netinet/in.h>
#include <poll.h>
#include <unistd.h>

#include <cerrno>
#include <condition_variable>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <thread>
#include <utility>

#include "common/endpoint.h"
#include "common/status_macros.h"

namespace faultline::probes {

absl::StatusOr<HostPort> ParseHostPort(const std::string& field, const std::string& text) {
  if (text.empty()) {
    return absl::InvalidArgumentError(fmt::format("{}: required (HOST:PORT)", field));
  }
  if (text.rfind("unix:", 0) == 0) {
    return absl::InvalidArgumentError(
        fmt::format("{}: expected HOST:PORT, got a unix socket \"{}\"", field, text));
  }
  if (text.find(':') == std::string::npos) {
    return absl::InvalidArgumentError(
        fmt::format("{}: expected HOST:PORT, got \"{}\"", field, text));
  }
  ASSIGN_OR_RETURN(Endpoint ep, ParseEndpoint(field, text));
  if (ep.host.empty()) {
    return absl::InvalidArgumentError(
        fmt::format("{}: missing host in \"{}\" (expected HOST:PORT)", field, text));
  }
  // "::1:80" is ambiguous; IPv6 literals need brackets.
  if (ep.host.find(':') != std::string::npos && text.front() != '[') {
    return absl::InvalidArgumentError(fmt::format(
        "{}: IPv6 addresses need brackets, e.g. \"[::1]:80\", got \"{}\"", field, text));
  }
  if (ep.host.find_first_of(" \t[]/@") != std::string::npos) {
    return absl::InvalidArgumentError(
        fmt::format("{}: invalid host \"{}\" in \"{}\"", field, ep.host, text));
  }
  if (ep.port < 1 || ep.port > 65535) {
    return absl::InvalidArgumentError(
        fmt::format("{}: port must be between 1 and 65535, got {}", field, ep.port));
  }
  return HostPort{ep.host, static_cast<uint16_t>(ep.port)};
}

int PollTimeoutMs(Clock::time_point deadline) {
  auto left = deadline - Clock::now();
  if (left <= Clock::duration::zero()) return 0;
  auto ms = std::chrono::ceil<std::chrono::milliseconds>(left).count();
  return ms > 1000000 ? 1000000 : static_cast<int>(ms);
}

namespace {

bool ParseLiteral(const HostPort& target, sockaddr_storage* out) {
  *out = {};
  auto* v4 = reinterpret_cast<sockaddr_in*>(out);
  if (inet_pton(AF_INET, target.host.c_str(), &v4->sin_addr) == 1) {
    v4->sin_family = AF_INET;
    v4->sin_port = htons(target.port);
    return true;
  }
  *out = {};
  auto* v6 = reinterpret_cast<sockaddr_in6*>(out);
  if (inet_pton(AF_INET6, target.host.c_str(), &v6->sin6_addr) == 1) {
    v6->sin6_family = AF_INET6;
    v6->sin6_port = htons(target.port);
    return true;
  }
  return false;
}

}  // namespace

// State shared between a Resolver and its helper thread (which may outlive it).
struct Resolver::Lookup {
  std::string host;
  uint16_t port = 0;
  std::mutex mu;
  std::condition_variable done_cv;
  bool done = false;
  int gai_error = 0;
  std::vector<sockaddr_storage> addresses;
};

Resolver::Resolver() = default;
Resolver::~Resolver() = default;

absl::StatusOr<std::vector<sockaddr_storage>> Resolver::Resolve(const HostPort& target,
                                                                Clock::time_point deadline) {
  sockaddr_storage literal;
  if (ParseLiteral(target, &literal)) return std::vector<sockaddr_storage>{literal};

  if (in_flight_ == nullptr || in_flight_->host != target.host ||
      in_flight_->port != target.port) {
    auto lookup = std::make_shared<Lookup>();
    lookup->host = target.host;
    lookup->port = target.port;
    std::thread([lookup] {
      addrinfo hints{};
      hints.ai_family = AF_UNSPEC;
      hints.ai_socktype = SOCK_STREAM;
      hints.ai_flags = AI_ADDRCONFIG;
      addrinfo* res = nullptr;
      const std::string port = std::to_string(lookup->port);
      int rc = getaddrinfo(lookup->host.c_str(), port.c_str(), &hints, &res);
      std::vector<sockaddr_storage> addresses;
      if (rc == 0) {
        for (addrinfo* ai = res; ai != nullptr; ai = ai->ai_next) {
          if (ai->ai_addrlen > sizeof(sockaddr_storage)) continue;
          sockaddr_storage ss{};
          std::memcpy(&ss, ai->ai_addr, ai->ai_addrlen);
          addresses.push_back(ss);
        }
        freeaddrinfo(res);
      }
      std::lock_guard<std::mutex> lock(lookup->mu);
      lookup->gai_error = rc;
      lookup->addresses = std::move(addresses);
      lookup->done = true;
      lookup->done_cv.notify_all();
    }).detach();
    in_flight_ = std::move(lookup);
  }

  std::shared_ptr<Lookup> lookup = in_flight_;
  std::unique_lock<std::mutex> lock(lookup->mu);
  if (!lookup->done_cv.wait_until(lock, deadline, [&] { return lookup->done; })) {
    return absl::DeadlineExceededError(
        fmt::format("resolving {}: no answer before the timeout", target.host));
  }
  // Each check resolves afresh (a DNS fault must show), so forget this lookup.
  in_flight_.reset();
  if (lookup->gai_error != 0) {
    return absl::UnavailableError(
        fmt::format("resolving {}: {}", target.host, gai_strerror(lookup->gai_error)));
  }
  if (lookup->addresses.empty()) {
    return absl::UnavailableError(fmt::format("resolving {}: no addresses", target.host));
  }
  return lookup->addresses;
}

std::string FormatSockaddr(const sockaddr_storage& address) {
  char buf[INET6_ADDRSTRLEN] = {};
  if (address.ss_family == AF_INET) {
    const auto* v4 = reinterpret_cast<const sockaddr_in*>(&address);
    inet_ntop(AF_INET, &v4->sin_addr, buf, sizeof(buf));
    return fmt::format("{}:{}", buf, ntohs(v4->sin_port));
  }
  if (address.ss_family == AF_INET6) {
    const auto* v6 = reinterpret_cast<const sockaddr_in6*>(&address);
    inet_ntop(AF_INET6, &v6->sin6_addr, buf, sizeof(buf));
    return fmt::format("[{}]:{}", buf, ntohs(v6->sin6_port));
  }
  return "?";
}

absl::StatusOr<UniqueFd> ConnectTcp(const std::vector<sockaddr_storage>& addresses,
                                    Clock::time_point deadline) {
  std::string last_error = "no addresses";
  for (const sockaddr_storage& address : addresses) {
    const std::string name = FormatSockaddr(address);
    UniqueFd fd(::socket(address.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
    if (!fd.is_valid()) {
      last_error = fmt::format("socket for {}: {}", name, std::strerror(errno));
      continue;
    }
    const socklen_t len = address.ss_family == AF_INET ? sizeof(sockaddr_in)
                                                       : sizeof(sockaddr_in6);
    int rc = ::connect(fd.get(), reinterpret_cast<const sockaddr*>(&address), len);
    if (rc == 0) return fd;
    if (errno != EINPROGRESS) {
      last_error = fmt::format("connect {}: {}", name, std::strerror(errno));
      continue;
    }
    pollfd pfd{fd.get(), POLLOUT, 0};
    for (;;) {
      rc = ::poll(&pfd, 1, PollTimeoutMs(deadline));
      if (rc < 0 && errno == EINTR) continue;
      break;
    }
    if (rc == 0) {
      return absl::DeadlineExceededError(
          fmt::format("connect {}: timed out", name));
    }
    if (rc < 0) {
      last_error = fmt::format("connect {}: poll: {}", name, std::strerror(errno));
      continue;
    }
    int so_error = 0;
    socklen_t so_len = sizeof(so_error);
    if (::getsockopt(fd.get(), SOL_SOCKET, SO_ERROR, &so_error, &so_len) != 0) {
      so_error = errno;
    }
    if (so_error == 0) return fd;
    last_error = fmt::format("connect {}: {}", name, std::strerror(so_error));
    if (Clock::now() >= deadline) break;
  }
  return absl::UnavailableError(last_error);
}

absl::Status WaitReady(int fd, short events, Clock::time_point deadline, const char* what) {
  pollfd pfd{fd, events, 0};
  for (;;) {
    int rc = ::poll(&pfd, 1, PollTimeoutMs(deadline));
    if (rc < 0 && errno == EINTR) continue;
    if (rc < 0) return absl::UnavailableError(fmt::format("poll: {}", std::strerror(errno)));
    if (rc == 0) return absl::DeadlineExceededError(fmt::format("timed out {}", what));
    return absl::OkStatus();
  }
}

absl::Status SendAll(int fd, std::string_view data, Clock::time_point deadline,
                     const char* what) {
  size_t sent = 0;
  while (sent < data.size()) {
    ssize_t n = ::send(fd, data.data() + sent, data.size() - sent, MSG_NOSIGNAL);
    if (n > 0) {
      sent += static_cast<size_t>(n);
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK) {
      return absl::UnavailableError(fmt::format("send: {}", std::strerror(errno)));
    }
    RETURN_IF_ERROR(WaitReady(fd, POLLOUT, deadline, what));
  }
  return absl::OkStatus();
}

absl::StatusOr<bool> RecvSome(int fd, std::string* out, Clock::time_point deadline,
                              const char* what) {
  char buf[16384];
  for (;;) {
    ssize_t n = ::recv(fd, buf, sizeof(buf), 0);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
      RETURN_IF_ERROR(WaitReady(fd, POLLIN, deadline, what));
      continue;
    }
    if (n < 0) return absl::UnavailableError(fmt::format("recv: {}", std::strerror(errno)));
    out->append(buf, static_cast<size_t>(n));
    return n > 0;
  }
}

}  // namespace faultline::probes
