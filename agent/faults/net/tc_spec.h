// The pure part of the netem and bandwidth faults: parsing and validating a
// FaultSpec into kernel-ready numbers, the u32 classifier keys for `to`
// destinations, fixed-point probabilities, tbf sizing and Faultline's qdisc
// handle tag. Nothing here touches the kernel, so all of it is unit-tested.
#ifndef FAULTLINE_AGENT_FAULTS_NET_TC_SPEC_H_
#define FAULTLINE_AGENT_FAULTS_NET_TC_SPEC_H_

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "faultline/v1/faults.pb.h"

namespace faultline::agent::net {

// Every qdisc Faultline creates carries one of these handle majors, so a sweep
// can find leftovers without the ledger. The root (netem, tbf or htb) is
// kTagMajor:, a netem child under the htb class is kChildMajor:.
inline constexpr uint32_t kTagMajor = 0xFA17;
inline constexpr uint32_t kChildMajor = 0xFA18;
inline constexpr uint32_t kRootHandle = kTagMajor << 16;
inline constexpr uint32_t kChildHandle = kChildMajor << 16;
// The htb class that `to` traffic is steered into.
inline constexpr uint32_t kShapedClass = kRootHandle | 1;
// TC_H_ROOT, spelled out to keep linux headers out of this file.
inline constexpr uint32_t kParentRoot = 0xFFFFFFFF;

// Whether `handle` is one Faultline creates (major kTagMajor or kChildMajor).
bool IsFaultlineHandle(uint32_t handle);
// A handle the way tc prints it: "fa17:", "1:", "fa17:1", "0:".
std::string FormatHandle(uint32_t handle);
// Whether a root qdisc with this handle is the kernel's own default (noqueue,
// pfifo_fast, mq, fq_codel ...): the kernel attaches those with handle 0, while
// anything an operator adds gets a non-zero handle.
bool IsKernelDefaultRoot(uint32_t handle);

// Percent (0..100) as netem's u32 fixed point, 0xFFFFFFFF = 100%.
uint32_t PercentToProb(double percent);

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

// One u32 match: 32 bits at byte offset `off` of the network header, val and
// mask in network byte order (as rtnl_u32_add_key wants them).
struct U32Key {
  uint32_t val = 0;
  uint32_t mask = 0;
  int off = 0;
  bool operator==(const U32Key&) const = default;
};
// The keys matching `dest`: destination address words (IPv4 offset 16, IPv6
// 24..36) and, with a port, the destination port of a header-option-free
// TCP/UDP header (IPv4 offset 20, IPv6 offset 40; lower 16 bits), like tc's
// `match ip dport`.
std::vector<U32Key> BuildU32Keys(const Destination& dest);

// Token bucket sizing for a rate in bytes/s: burst holds 10 ms of traffic but
// at least two full frames (so the bucket can pass one packet at any rate);
// limit queues 50 ms of traffic on top of the burst.
struct TbfParams {
  uint32_t rate = 0;   // bytes/s
  uint32_t burst = 0;  // bytes
  uint32_t limit = 0;  // bytes
};
TbfParams TbfParamsForRate(uint64_t bytes_per_second);

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

// A validated netem or bandwidth spec.
struct TcPlan {
  std::string kind;          // "netem" or "bandwidth"
  std::string interface;
  NetemParams netem;         // netem only
  uint64_t rate = 0;         // bytes/s; 0 = none (netem without rate)
  std::vector<Destination> to;
  // Whether the fault needs the classful layout (htb root + class + filters):
  // with `to`, or netem with a rate (libnl's netem has no rate option, so the
  // rate becomes the htb class's).
  bool Classful() const;
};

// Validates the kind-specific fields (not netns, not whether the interface
// exists). INVALID_ARGUMENT naming the field.
absl::StatusOr<TcPlan> ParseTcSpec(const v1::FaultSpec& spec);

// The largest rate tbf/htb take through libnl's int arguments, bytes/s.
inline constexpr uint64_t kMaxRate = 0x7FFFFFFF;
// netem delay/jitter limit (psched ticks in 32 bits overflow near 274 s).
inline constexpr uint64_t kMaxDelayUs = 60ull * 1000 * 1000;

}  // namespace faultline::agent::net

#endif  // FAULTLINE_AGENT_FAULTS_NET_TC_SPEC_H_
