// The pure kernel-side layout of the netem and bandwidth faults: the u32
// classifier keys for `to` destinations, tbf sizing and Faultline's qdisc
// handle tag. The spec is parsed by spec/net.h (re-exported here). Nothing
// here touches the kernel, so all of it is unit-tested.
#ifndef FAULTLINE_AGENT_FAULTS_NET_TC_SPEC_H_
#define FAULTLINE_AGENT_FAULTS_NET_TC_SPEC_H_

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "faultline/v1/faults.pb.h"
#include "spec/net.h"

namespace faultline::agent::net {

using spec::Destination;
using spec::kMaxDelayUs;
using spec::kMaxRate;
using spec::NetemParams;
using spec::ParseDestination;
using spec::ParseTcSpec;
using spec::PercentToProb;
using spec::TcPlan;

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

}  // namespace faultline::agent::net

#endif  // FAULTLINE_AGENT_FAULTS_NET_TC_SPEC_H_
