// Socket helpers shared by the tcp and http probes: an owned fd, host name
// resolution bounded by a deadline, and a non-blocking connect with poll.
#ifndef FAULTLINE_PROBES_PROBE_NET_H_
#define FAULTLINE_PROBES_PROBE_NET_H_

#include <sys/socket.h>

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "common/unique_fd.h"

namespace faultline::probes {

using Clock = std::chrono::steady_clock;  // CLOCK_MONOTONIC on Linux

using ::faultline::UniqueFd;

// HOST:PORT, IPv6 in brackets ("[::1]:80"). Port 1..65535, host non-empty.
struct HostPort {
  std::string host;  // without brackets
  uint16_t port = 0;
};
absl::StatusOr<HostPort> ParseHostPort(const std::string& field, const std::string& text);

// Milliseconds left until `deadline` for poll(), at least 0, rounded up so a
// sub-millisecond remainder still waits.
int PollTimeoutMs(Clock::time_point deadline);

// Resolves one host name to socket addresses, never waiting past a deadline.
// Address literals are converted in place. Names go through getaddrinfo() on a
// helper thread (glibc's resolver cannot be given a deadline); if the deadline
// passes first, the lookup keeps running and the next Resolve() of the same name
// joins it instead of starting another, so a dead DNS server costs at most one
// thread per resolver. Owned by one probe; not thread-safe.
class Resolver {
 public:
  Resolver();
  ~Resolver();
  Resolver(const Resolver&) = delete;
  Resolver& operator=(const Resolver&) = delete;

  absl::StatusOr<std::vector<sockaddr_storage>> Resolve(const HostPort& target,
                                                        Clock::time_point deadline);

 private:
  struct Lookup;
  std::shared_ptr<Lookup> in_flight_;
};

// Connects to the first address that accepts before `deadline` (non-blocking
// connect + poll). The returned socket is non-blocking and close-on-exec.
absl::StatusOr<UniqueFd> ConnectTcp(const std::vector<sockaddr_storage>& addresses,
                                    Clock::time_point deadline);

std::string FormatSockaddr(const sockaddr_storage& address);

// Waits until `fd` is ready for `events` (POLLIN, POLLOUT) or the deadline
// passes (DEADLINE_EXCEEDED "timed out <what>").
absl::Status WaitReady(int fd, short events, Clock::time_point deadline, const char* what);

// Sends all of `data` on a non-blocking socket before the deadline.
absl::Status SendAll(int fd, std::string_view data, Clock::time_point deadline,
                     const char* what);

// Appends what the non-blocking socket has to `*out`, waiting for data until the
// deadline; returns false at end of stream. At most 16 KiB per call: the caller
// bounds the total.
absl::StatusOr<bool> RecvSome(int fd, std::string* out, Clock::time_point deadline,
                              const char* what);

}  // namespace faultline::probes

#endif  // FAULTLINE_PROBES_PROBE_NET_H_
