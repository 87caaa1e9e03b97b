#include "spec/net.h"

#include <arpa/inet.h>
#include <fmt/format.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <algorithm>
#include <cctype>
#include <cmath>
#include <regex>

#include "common/status_macros.h"
#include "common/text.h"
#include "common/units.h"

namespace faultline::spec {
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
  if (us > kMaxDelayUs) return Invalid(field, fmt::format("must be at most 60s, got {}", Printable(text)));
  return us;
}

absl::StatusOr<uint32_t> Prob(const std::string& field, const std::string& text) {
  ASSIGN_OR_RETURN(double pct, ParsePercent(field, text));
  return PercentToProb(pct);
}

// IFNAMSIZ-1 characters, and none that the kernel refuses.
absl::Status CheckInterface(const std::string& name) {
  if (name.empty()) return Invalid("interface", "required");
  bool ok = name.size() <= 15 && name != "." && name != "..";
  for (char c : name) {
    if (c == '/' || c == ':' || std::isspace(static_cast<unsigned char>(c)) ||
        !std::isprint(static_cast<unsigned char>(c))) {
      ok = false;
    }
  }
  if (!ok) return Invalid("interface", fmt::format("\"{}\" is not an interface name", Printable(name)));
  return absl::OkStatus();
}

// The fields netem and bandwidth share: interface, rate, to.
template <typename KindMessage>
absl::Status ParseShape(const KindMessage& m, TcPlan* plan) {
  RETURN_IF_ERROR(CheckInterface(m.interface()));
  plan->interface = m.interface();
  if (!m.rate().empty()) {
    ASSIGN_OR_RETURN(plan->rate, ParseRate("rate", m.rate()));
    if (plan->rate > kMaxRate) {
      return Invalid("rate", fmt::format("at most 17gbit is supported, got {}", m.rate()));
    }
  }
  for (int i = 0; i < m.to_size(); ++i) {
    ASSIGN_OR_RETURN(Destination d, ParseDestination(fmt::format("to[{}]", i), m.to(i)));
    plan->to.push_back(d);
  }
  return absl::OkStatus();
}

absl::Status ParseNetemParams(const v1::NetemFault& s, NetemParams* n) {
  if (!s.delay().empty()) {
    ASSIGN_OR_RETURN(uint64_t us, DurationUs("delay", s.delay()));
    n->delay_us = static_cast<uint32_t>(us);
  }
  if (!s.jitter().empty()) {
    if (s.delay().empty()) return Invalid("jitter", "needs delay");
    ASSIGN_OR_RETURN(uint64_t us, DurationUs("jitter", s.jitter()));
    n->jitter_us = static_cast<uint32_t>(us);
  }
  if (!s.delay_correlation().empty()) {
    if (s.delay().empty()) return Invalid("delay_correlation", "needs delay");
    ASSIGN_OR_RETURN(n->delay_correlation, Prob("delay_correlation", s.delay_correlation()));
  }
  if (!s.loss().empty()) {
    ASSIGN_OR_RETURN(n->loss, Prob("loss", s.loss()));
  }
  if (!s.duplicate().empty()) {
    ASSIGN_OR_RETURN(n->duplicate, Prob("duplicate", s.duplicate()));
  }
  if (!s.corrupt().empty()) {
    ASSIGN_OR_RETURN(n->corrupt, Prob("corrupt", s.corrupt()));
  }
  if (!s.reorder().empty()) {
    // netem reorders by sending some packets at once while the rest wait for
    // the delay; without a delay there is nothing to reorder against.
    if (n->delay_us == 0) return Invalid("reorder", "needs a non-zero delay");
    ASSIGN_OR_RETURN(n->reorder, Prob("reorder", s.reorder()));
  }
  if (s.delay().empty() && s.loss().empty() && s.duplicate().empty() && s.corrupt().empty() &&
      s.reorder().empty() && s.rate().empty()) {
    return Invalid("netem", "give at least one of delay, loss, duplicate, corrupt, reorder, rate");
  }
  return absl::OkStatus();
}

}  // namespace

void MaskHostBits(Cidr* c) {
  const int bytes = c->family == AF_INET ? 4 : 16;
  for (int i = 0; i < bytes; ++i) {
    const int bit_start = i * 8;
    if (bit_start >= c->prefix) {
      c->addr[i] = 0;
    } else if (bit_start + 8 > c->prefix) {
      const int keep = c->prefix - bit_start;
      c->addr[i] &= static_cast<uint8_t>(0xFF << (8 - keep));
    }
  }
}

std::optional<Cidr> ParseAddress(const std::string& text) {
  Cidr c;
  if (::inet_pton(AF_INET, text.c_str(), c.addr.data()) == 1) {
    c.family = AF_INET;
    c.prefix = 32;
    return c;
  }
  if (::inet_pton(AF_INET6, text.c_str(), c.addr.data()) == 1) {
    c.family = AF_INET6;
    c.prefix = 128;
    return c;
  }
  return std::nullopt;
}

int Cidr::MaxPrefix() const { return family == AF_INET ? 32 : 128; }

std::string Cidr::ToString() const {
  char buf[INET6_ADDRSTRLEN] = {};
  ::inet_ntop(family, addr.data(), buf, sizeof(buf));
  if (prefix == MaxPrefix()) return buf;
  return fmt::format("{}/{}", buf, prefix);
}

bool Cidr::Contains(const Cidr& other) const {
  if (family != other.family || prefix > other.prefix) return false;
  Cidr masked = other;
  masked.prefix = prefix;
  MaskHostBits(&masked);
  return masked.addr == addr;
}

bool Cidr::Overlaps(const Cidr& other) const { return Contains(other) || other.Contains(*this); }

absl::StatusOr<Cidr> ParseCidr(const std::string& field, const std::string& text) {
  auto bad = [&] {
    return absl::InvalidArgumentError(fmt::format("{}: \"{}\" is not a CIDR", field, Printable(text)));
  };
  if (text.find('\0') != std::string::npos) return bad();  // inet_pton would stop there
  const size_t slash = text.find('/');
  const std::string addr_text = text.substr(0, slash);
  std::optional<Cidr> c = ParseAddress(addr_text);
  if (!c) return bad();
  if (slash != std::string::npos) {
    const std::string prefix_text = text.substr(slash + 1);
    if (!AllDigits(prefix_text) || prefix_text.size() > 3) return bad();
    const int prefix = std::stoi(prefix_text);
    if (prefix > c->MaxPrefix()) return bad();
    c->prefix = prefix;
  }
  MaskHostBits(&*c);
  return *c;
}

absl::StatusOr<std::vector<uint16_t>> ParsePorts(const std::vector<uint32_t>& ports) {
  std::vector<uint16_t> out;
  for (size_t i = 0; i < ports.size(); ++i) {
    if (ports[i] < 1 || ports[i] > 65535) {
      return absl::InvalidArgumentError(fmt::format("ports[{}]: must be 1-65535", i));
    }
    out.push_back(static_cast<uint16_t>(ports[i]));
  }
  std::sort(out.begin(), out.end());
  out.erase(std::unique(out.begin(), out.end()), out.end());
  return out;
}

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
                                      Printable(text), why));
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
      return bad(fmt::format("prefix length \"{}\" is not a number", Printable(prefix_text)));
    }
  }
  if (::inet_pton(AF_INET, addr_text.c_str(), dest.addr.data()) == 1) {
    dest.family = AF_INET;
  } else if (::inet_pton(AF_INET6, addr_text.c_str(), dest.addr.data()) == 1) {
    dest.family = AF_INET6;
  } else {
    return bad(fmt::format("\"{}\" is not an IPv4 or IPv6 address", Printable(addr_text)));
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
      return bad(fmt::format("port \"{}\" is not a number between 1 and 65535", Printable(port_text)));
    }
    dest.port = static_cast<uint16_t>(std::stoi(port_text));
  }
  return dest;
}

bool TcPlan::Classful() const { return !to.empty() || (netem && rate != 0); }

absl::StatusOr<TcPlan> ParseTcSpec(const v1::FaultSpec& spec) {
  TcPlan plan;
  if (spec.has_netem()) {
    plan.netem = true;
    RETURN_IF_ERROR(ParseShape(spec.netem(), &plan));
    RETURN_IF_ERROR(ParseNetemParams(spec.netem(), &plan.params));
    return plan;
  }
  if (!spec.has_bandwidth()) return absl::InvalidArgumentError("kind: not netem or bandwidth");
  RETURN_IF_ERROR(ParseShape(spec.bandwidth(), &plan));
  if (spec.bandwidth().rate().empty()) return Invalid("rate", "required for bandwidth, e.g. 1mbit");
  return plan;
}

absl::StatusOr<std::vector<Cidr>> ParseCidrList(const std::string& field,
                                                const std::vector<std::string>& items) {
  std::vector<Cidr> out;
  for (size_t i = 0; i < items.size(); ++i) {
    ASSIGN_OR_RETURN(Cidr c, ParseCidr(fmt::format("{}[{}]", field, i), items[i]));
    out.push_back(c);
  }
  return out;
}

absl::Status ValidateNetnsFields(const v1::FaultSpec& spec) {
  if (!spec.netns().empty() && spec.netns_pid() != 0) {
    return absl::InvalidArgumentError("netns: give either netns or netns_pid, not both");
  }
  if (spec.netns_pid() < 0) {
    return absl::InvalidArgumentError(
        fmt::format("netns_pid: must be a positive pid, got {}", spec.netns_pid()));
  }
  if (!spec.netns().empty() && spec.netns()[0] != '/') {
    static const std::regex kName("[A-Za-z0-9][A-Za-z0-9_.-]{0,63}");
    if (!std::regex_match(spec.netns(), kName)) {
      return absl::InvalidArgumentError(fmt::format(
          "netns: \"{}\" is not a namespace name (letters, digits, _ . -) or an absolute path",
          Printable(spec.netns())));
    }
  }
  return absl::OkStatus();
}

const char* DirectionName(v1::Direction d) {
  switch (d) {
    case v1::DIRECTION_INGRESS: return "ingress";
    case v1::DIRECTION_EGRESS: return "egress";
    default: return "both";
  }
}

const char* ProtocolName(v1::Protocol p) {
  switch (p) {
    case v1::PROTOCOL_TCP: return "tcp";
    case v1::PROTOCOL_UDP: return "udp";
    default: return "any";
  }
}

}  // namespace faultline::spec
