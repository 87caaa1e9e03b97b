// The rules of the network fault kinds (netem, bandwidth, partition, dns) and
// the parsed values they turn into: destinations and CIDRs (through
// inet_pton, host bits cleared), ports, netem settings in kernel units, rates.
// Pure: nothing here touches the kernel. The agent's tc and nft layers build
// kernel objects from these values only, never from the spec's text.
#ifndef FAULTLINE_SPEC_NET_H_
#define FAULTLINE_SPEC_NET_H_

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "faultline/v1/faults.pb.h"

namespace faultline::spec {

// An IPv4 or IPv6 network: address bytes (host bits cleared) and prefix length.
struct Cidr {
  int family = 0;                   // AF_INET or AF_INET6
  std::array<uint8_t, 16> addr{};   // first 4 bytes used for AF_INET
  int prefix = 0;                   // 0..32 or 0..128

  int MaxPrefix() const;
  // "10.0.0.0/24"; a full-length prefix renders as the bare address.
  std::string ToString() const;
  // Whether every address of `other` is inside this network.
  bool Contains(const Cidr& other) const;
  bool Overlaps(const Cidr& other) const;
  bool operator==(const Cidr& other) const = default;
};

// Parses "ADDR" or "ADDR/PREFIX". Host bits are cleared. Errors name `field`:
// `peers[1]: "10.0.0.300/24" is not a CIDR`.
absl::StatusOr<Cidr> ParseCidr(const std::string& field, const std::string& text);
// A bare IPv4/IPv6 address (no prefix) as a full-length Cidr.
std::optional<Cidr> ParseAddress(const std::string& text);
// Clears the bits past c->prefix.
void MaskHostBits(Cidr* c);

// Checks ports (field "ports[i]": 1-65535) and returns them sorted, without
// duplicates.
absl::StatusOr<std::vector<uint16_t>> ParsePorts(const std::vector<uint32_t>& ports);

// One `to` entry: a destination prefix and optional port.
struct Destination {
  int family = 0;                     // AF_INET or AF_INET6
  std::array<uint8_t, 16> addr{};     // network order, host bits cleared
  int prefix = 0;                     // 0..32 or 0..128
  uint16_t port = 0;                  // 0 = any port
  std::string Canonical() const;      // "10.0.0.0/8:80", "[2001:db8::/32]:80"
};

// "CIDR[:PORT]": 10.0.0.0/8, 10.1.2.3 (= /32), 10.1.2.3/32:443, 2001:db8::/32,
// [2001:db8::1]:443, [2001:db8::/32]:443. Errors name `field`.
absl::StatusOr<Destination> ParseDestination(const std::string& field, const std::string& text);

// Percent (0..100) as netem's u32 fixed point, 0xFFFFFFFF = 100%.
uint32_t PercentToProb(double percent);

// Netem settings in kernel units.
struct NetemParams {
  uint32_t delay_us = 0;
  uint32_t jitter_us = 0;
  uint32_t delay_correlation = 0;  // u32 fixed point
  uint32_t loss = 0;
  uint32_t duplicate = 0;
  uint32_t corrupt = 0;
  uint32_t reorder = 0;
};

// A parsed netem or bandwidth spec.
struct TcPlan {
  bool netem = false;        // netem (true) or bandwidth (false)
  std::string interface;
  NetemParams params;        // netem only
  uint64_t rate = 0;         // bytes/s; 0 = none (netem without rate)
  std::vector<Destination> to;
  // Whether the fault needs the classful layout (htb root + class + filters):
  // with `to`, or netem with a rate (libnl's netem has no rate option, so the
  // rate becomes the htb class's).
  bool Classful() const;
};

// Parses the netem or bandwidth kind of `spec`; INVALID_ARGUMENT naming the
// field relative to the kind's message (`delay: ...`, `to[1]: ...`).
absl::StatusOr<TcPlan> ParseTcSpec(const v1::FaultSpec& spec);

// The largest rate tbf/htb take through libnl's int arguments, bytes/s.
inline constexpr uint64_t kMaxRate = 0x7FFFFFFF;
// netem delay/jitter limit (psched ticks in 32 bits overflow near 274 s).
inline constexpr uint64_t kMaxDelayUs = 60ull * 1000 * 1000;

// The parsed peers of a partition or the given resolvers of a dns fault
// (`field[i]` in errors).
absl::StatusOr<std::vector<Cidr>> ParseCidrList(const std::string& field,
                                                const std::vector<std::string>& items);

// netns and netns_pid: not both; a positive pid; a name of letters, digits,
// _ . - or an absolute path. Does not look at the host.
absl::Status ValidateNetnsFields(const v1::FaultSpec& spec);

// "both", "ingress", "egress"; "any", "tcp", "udp".
const char* DirectionName(v1::Direction d);
const char* ProtocolName(v1::Protocol p);

}  // namespace faultline::spec

#endif  // FAULTLINE_SPEC_NET_H_
