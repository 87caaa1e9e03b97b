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
namespace {

absl::Status Invalid(const std::string& field, const std::string& what) {
  return absl::InvalidArgumentError(fmt::format("{}: {}", field, what));
}

bool AllDigits(const std::string& s) {
  if (s.empty()) return false;
  for (char c : s) {
    if (!std::isdigit(static_cast<unsigned char>(c))) return false;
  }
  return true;
}

absl::StatusOr<uint64_t> DurationUs(const std::string& field, const std::string& text) {
  ASSIGN_OR_RETURN(auto d, ParseDuration(field, text));
  const uint64_t us = static_cast<uint64_t>(d.count()) / 1000;
  if (us > kMaxDelayUs) return Invalid(field, fmt::format("must be at most 60s, got {}", text));
  return us;
}

absl::StatusOr<uint32_t> Prob(const std::string& field, const std::string& text) {
  ASSIGN_OR_RETURN(double pct, ParsePercent(field, text));
  return PercentToProb(pct);
}

}  // namespace

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

uint32_t PercentToProb(double percent) {
  if (!(percent > 0)) return 0;
  if (percent >= 100) return 0xFFFFFFFFu;
  return static_cast<uint32_t>(std::llround(percent / 100.0 * 4294967295.0));
}

std::string Destination::Canonical() const {
  char buf[INET6_ADDRSTRLEN] = {};
  ::inet_ntop(family, addr.data(), buf, sizeof(buf));
  std::string cidr = fmt::format("{}/{}", buf, prefix);
  if (port == 0) return cidr;
  if (family == AF_INET6) return fmt::format("[{}]:{}", cidr, port);
  return fmt::format("{}:{}", cidr, port);
}

absl::StatusOr<Destination> ParseDestination(const std::string& field, const std::string& text) {
  auto bad = [&](const std::string& why) {
    return Invalid(field, fmt::format("invalid destination \"{}\": {} (use CIDR[:PORT], e.g. "
                                      "10.0.0.0/8, 10.1.2.3:443, [2001:db8::/32]:443)",
                                      text, why));
  };
  if (text.empty()) return bad("empty");
  std::string cidr = text;
  std::string port_text;
  if (text[0] == '[') {
    const size_t close = text.find(']');
    if (close == std::string::npos) return bad("missing ']'");
    cidr = text.substr(1, close - 1);
    const std::string rest = text.substr(close + 1);
    if (!rest.empty()) {
      if (rest[0] != ':') return bad("expected ':PORT' after ']'");
      port_text = rest.substr(1);
      if (port_text.empty()) return bad("empty port");
    }
  } else if (std::count(text.begin(), text.end(), ':') == 1) {
    // IPv4 with a port. (Bare IPv6 has at least two colons; with a port it
    // needs brackets.)
    const size_t colon = text.find(':');
    cidr = text.substr(0, colon);
    port_text = text.substr(colon + 1);
    if (port_text.empty()) return bad("empty port");
  }
  Destination dest;
  std::string addr_text = cidr;
  std::string prefix_text;
  if (const size_t slash = cidr.find('/'); slash != std::string::npos) {
    addr_text = cidr.substr(0, slash);
    prefix_text = cidr.substr(slash + 1);
    if (!AllDigits(prefix_text) || prefix_text.size() > 3) {
      return bad(fmt::format("prefix length \"{}\" is not a number", prefix_text));
    }
  }
  if (::inet_pton(AF_INET, addr_text.c_str(), dest.addr.data()) == 1) {
    dest.family = AF_INET;
  } else if (::inet_pton(AF_INET6, addr_text.c_str(), dest.addr.data()) == 1) {
    dest.family = AF_INET6;
  } else {
    return bad(fmt::format("\"{}\" is not an IPv4 or IPv6 address", addr_text));
  }
  const int max_prefix = dest.family == AF_INET ? 32 : 128;
  dest.prefix = prefix_text.empty() ? max_prefix : std::stoi(prefix_text);
  if (dest.prefix > max_prefix) {
    return bad(fmt::format("prefix length {} is larger than {}", dest.prefix, max_prefix));
  }
  // Clear host bits so the key equals what the kernel compares.
  const int bytes = max_prefix / 8;
  for (int i = 0; i < bytes; ++i) {
    const int keep = std::min(8, std::max(0, dest.prefix - i * 8));
    dest.addr[i] &= static_cast<uint8_t>(keep == 0 ? 0 : (0xFF << (8 - keep)) & 0xFF);
  }
  if (!port_text.empty()) {
    if (!AllDigits(port_text) || port_text.size() > 5 || std::stoi(port_text) < 1 ||
        std::stoi(port_text) > 65535) {
      return bad(fmt::format("port \"{}\" is not a number between 1 and 65535", port_text));
    }
    dest.port = static_cast<uint16_t>(std::stoi(port_text));
  }
  return dest;
}

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

bool TcPlan::Classful() const { return !to.empty() || (kind == "netem" && rate != 0); }

absl::StatusOr<TcPlan> ParseTcSpec(const v1::FaultSpec& spec) {
  TcPlan plan;
  plan.kind = spec.kind();
  if (plan.kind != "netem" && plan.kind != "bandwidth") {
    return Invalid("kind", fmt::format("\"{}\" is not netem or bandwidth", spec.kind()));
  }
  if (spec.interface().empty()) return Invalid("interface", "required");
  // IFNAMSIZ-1 characters, and none that the kernel refuses.
  if (spec.interface().size() > 15 || spec.interface() == "." || spec.interface() == "..") {
    return Invalid("interface", fmt::format("\"{}\" is not an interface name", spec.interface()));
  }
  for (char c : spec.interface()) {
    if (c == '/' || c == ':' || std::isspace(static_cast<unsigned char>(c)) ||
        !std::isprint(static_cast<unsigned char>(c))) {
      return Invalid("interface",
                     fmt::format("\"{}\" is not an interface name", spec.interface()));
    }
  }
  plan.interface = spec.interface();

  if (!spec.rate().empty()) {
    ASSIGN_OR_RETURN(plan.rate, ParseRate("rate", spec.rate()));
    if (plan.rate > kMaxRate) {
      return Invalid("rate", fmt::format("at most 17gbit is supported, got {}", spec.rate()));
    }
  }
  for (int i = 0; i < spec.to_size(); ++i) {
    ASSIGN_OR_RETURN(Destination d, ParseDestination(fmt::format("to[{}]", i), spec.to(i)));
    plan.to.push_back(d);
  }

  if (plan.kind == "bandwidth") {
    if (spec.rate().empty()) return Invalid("rate", "required for bandwidth, e.g. 1mbit");
    const std::pair<const char*, const std::string*> netem_only[] = {
        {"delay", &spec.delay()},     {"jitter", &spec.jitter()},
        {"delay_correlation", &spec.delay_correlation()},
        {"loss", &spec.loss()},       {"duplicate", &spec.duplicate()},
        {"corrupt", &spec.corrupt()}, {"reorder", &spec.reorder()},
    };
    for (const auto& [field, value] : netem_only) {
      if (!value->empty()) return Invalid(field, "not a bandwidth setting (use kind netem)");
    }
    return plan;
  }

  NetemParams& n = plan.netem;
  if (!spec.delay().empty()) {
    ASSIGN_OR_RETURN(uint64_t us, DurationUs("delay", spec.delay()));
    n.delay_us = static_cast<uint32_t>(us);
  }
  if (!spec.jitter().empty()) {
    if (spec.delay().empty()) return Invalid("jitter", "needs delay");
    ASSIGN_OR_RETURN(uint64_t us, DurationUs("jitter", spec.jitter()));
    n.jitter_us = static_cast<uint32_t>(us);
  }
  if (!spec.delay_correlation().empty()) {
    if (spec.delay().empty()) return Invalid("delay_correlation", "needs delay");
    ASSIGN_OR_RETURN(n.delay_correlation, Prob("delay_correlation", spec.delay_correlation()));
  }
  if (!spec.loss().empty()) {
    ASSIGN_OR_RETURN(n.loss, Prob("loss", spec.loss()));
  }
  if (!spec.duplicate().empty()) {
    ASSIGN_OR_RETURN(n.duplicate, Prob("duplicate", spec.duplicate()));
  }
  if (!spec.corrupt().empty()) {
    ASSIGN_OR_RETURN(n.corrupt, Prob("corrupt", spec.corrupt()));
  }
  if (!spec.reorder().empty()) {
    // netem reorders by sending some packets at once while the rest wait for
    // the delay; without a delay there is nothing to reorder against.
    if (n.delay_us == 0) return Invalid("reorder", "needs a non-zero delay");
    ASSIGN_OR_RETURN(n.reorder, Prob("reorder", spec.reorder()));
  }
  if (spec.delay().empty() && spec.loss().empty() && spec.duplicate().empty() &&
      spec.corrupt().empty() && spec.reorder().empty() && spec.rate().empty()) {
    return Invalid("netem",
                   "give at least one of delay, loss, duplicate, corrupt, reorder, rate");
  }
  return plan;
}

}  // namespace faultline::agent::net
