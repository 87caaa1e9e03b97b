#include "agent/faults/net/tc_spec.h"

#include <arpa/inet.h>
#include <fmt/format.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <cctype>
#include <algorithm>
#include <cmath>
#include <cstring>

#include "common/status_macros.h"
#include "common/units.h"

namespace faultline::agent::net {

bool IsFaultlineHandle(uint32_t handle) {
  const uint32_t major = handle >> 16;
  return major == kTagMajor || major == kChildMajor;
}

std::string FormatHandle(uint32_t handle) {
  if (handle == kParentRoot) return "root";
  const uint32_t major = handle >> 16;
  const uint32_t minor = handle & 0xFFFF;
  if (minor == 0) return fmt::format("{:x}:", major);
  return fmt::format("{:x}:{:x}", major, minor);
}

bool IsKernelDefaultRoot(uint32_t handle) { return (handle >> 16) == 0; }

std::vector<U32Key> BuildU32Keys(const Destination& dest) {
  std::vector<U32Key> keys;
  const int words = dest.family == AF_INET ? 1 : 4;
  const int base = dest.family == AF_INET ? 16 : 24;
  for (int w = 0; w < words; ++w) {
    const int bits = std::min(32, std::max(0, dest.prefix - 32 * w));
    if (bits == 0) break;
    const uint32_t host_mask = bits == 32 ? 0xFFFFFFFFu : ~(0xFFFFFFFFu >> bits);
    uint32_t val;
    std::memcpy(&val, dest.addr.data() + 4 * w, 4);
    const uint32_t mask = htonl(host_mask);
    keys.push_back({val & mask, mask, base + 4 * w});
  }
  if (dest.port != 0) {
    // The 32-bit word holding source and destination port; keep the latter.
    keys.push_back({htonl(dest.port), htonl(0x0000FFFFu), dest.family == AF_INET ? 20 : 40});
  }
  if (keys.empty()) keys.push_back({0, 0, 0});  // 0.0.0.0/0: match everything
  return keys;
}

TbfParams TbfParamsForRate(uint64_t bytes_per_second) {
  constexpr uint64_t kMinBurst = 2 * 1514;
  TbfParams p;
  p.rate = static_cast<uint32_t>(std::min(bytes_per_second, kMaxRate));
  const uint64_t burst = std::max<uint64_t>(p.rate / 100, kMinBurst);
  p.burst = static_cast<uint32_t>(std::min<uint64_t>(burst, 0x7FFFFFFF));
  const uint64_t limit = p.rate / 20 + p.burst;
  p.limit = static_cast<uint32_t>(std::min<uint64_t>(limit, 0x7FFFFFFF));
  return p;
}

}  // namespace faultline::agent::net
