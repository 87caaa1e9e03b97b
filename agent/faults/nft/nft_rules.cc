#include "agent/faults/nft/nft_rules.h"

#include <arpa/inet.h>
#include <fmt/format.h>
#include <sys/socket.h>

#include <algorithm>
#include <cctype>
#include <sstream>

#include "absl/strings/str_join.h"
#include "common/endpoint.h"

namespace faultline::agent::nft {
namespace {

// "ip" or "ip6": the nft payload keyword for a family.
const char* FamilyKeyword(int family) { return family == AF_INET ? "ip" : "ip6"; }
const char* SetName(int family) { return family == AF_INET ? "peers4" : "peers6"; }


std::string PortSet(const std::vector<uint16_t>& ports) {
  if (ports.size() == 1) return std::to_string(ports[0]);
  std::string out = "{ ";
  for (size_t i = 0; i < ports.size(); ++i) {
    if (i > 0) out += ", ";
    out += std::to_string(ports[i]);
  }
  return out + " }";
}

std::string Join(std::initializer_list<std::string> parts) {
  std::string out;
  for (const auto& p : parts) {
    if (p.empty()) continue;
    if (!out.empty()) out += ' ';
    out += p;
  }
  return out;
}

// (layer-4 match, verdict) pairs a block rule is expanded into.
std::vector<std::pair<std::string, std::string>> L4Variants(const BlockSpec& spec) {
  auto verdict = [&](Protocol p) -> std::string {
    if (!spec.reject) return "drop";
    if (p == Protocol::kTcp) return "reject with tcp reset";
    return "reject with icmpx type port-unreachable";
  };
  std::vector<std::pair<std::string, std::string>> out;
  if (spec.ports.empty()) {
    switch (spec.protocol) {
      case Protocol::kAny:
        // A TCP peer gets a reset (a clean ECONNREFUSED) rather than an ICMP error.
        if (spec.reject) out.emplace_back("meta l4proto tcp", verdict(Protocol::kTcp));
        out.emplace_back("", verdict(Protocol::kAny));
        break;
      case Protocol::kTcp:
        out.emplace_back("meta l4proto tcp", verdict(Protocol::kTcp));
        break;
      case Protocol::kUdp:
        out.emplace_back("meta l4proto udp", verdict(Protocol::kUdp));
        break;
    }
    return out;
  }
  std::vector<Protocol> protos;
  if (spec.protocol == Protocol::kAny) {
    protos = {Protocol::kTcp, Protocol::kUdp};
  } else {
    protos = {spec.protocol};
  }
  const std::string set = PortSet(spec.ports);
  // A port matches at either end, so a flow to the peer's service and a flow
  // from the peer to ours are both cut.
  for (Protocol p : protos) {
    for (const char* key : {"dport", "sport"}) {
      out.emplace_back(fmt::format("{} {} {}", ProtocolName(p), key, set), verdict(p));
    }
  }
  return out;
}

}  // namespace

Direction FromProto(v1::Direction d) {
  switch (d) {
    case v1::DIRECTION_INGRESS: return Direction::kIngress;
    case v1::DIRECTION_EGRESS: return Direction::kEgress;
    default: return Direction::kBoth;
  }
}

Protocol FromProto(v1::Protocol p) {
  switch (p) {
    case v1::PROTOCOL_TCP: return Protocol::kTcp;
    case v1::PROTOCOL_UDP: return Protocol::kUdp;
    default: return Protocol::kAny;
  }
}

const char* DirectionName(Direction d) {
  switch (d) {
    case Direction::kIngress: return "ingress";
    case Direction::kEgress: return "egress";
    case Direction::kBoth: break;
  }
  return "both";
}

const char* ProtocolName(Protocol p) {
  switch (p) {
    case Protocol::kTcp: return "tcp";
    case Protocol::kUdp: return "udp";
    case Protocol::kAny: break;
  }
  return "any";
}

std::vector<Cidr> NormalizeCidrs(std::vector<Cidr> cidrs, std::vector<std::string>* dropped) {
  // Wider networks first, so a contained one always meets its container.
  std::sort(cidrs.begin(), cidrs.end(), [](const Cidr& a, const Cidr& b) {
    if (a.family != b.family) return a.family < b.family;
    if (a.prefix != b.prefix) return a.prefix < b.prefix;
    return a.addr < b.addr;
  });
  std::vector<Cidr> out;
  for (const Cidr& c : cidrs) {
    auto container = std::find_if(out.begin(), out.end(), [&](const Cidr& o) { return o.Contains(c); });
    if (container != out.end()) {
      if (dropped != nullptr && !(*container == c)) {
        dropped->push_back(fmt::format("{} is inside {}", c.ToString(), container->ToString()));
      }
      continue;
    }
    out.push_back(c);
  }
  // Render order: by family, then address.
  std::sort(out.begin(), out.end(), [](const Cidr& a, const Cidr& b) {
    if (a.family != b.family) return a.family < b.family;
    if (a.addr != b.addr) return a.addr < b.addr;
    return a.prefix < b.prefix;
  });
  return out;
}

absl::StatusOr<std::vector<ControlExemption>> ParseControlAddresses(
    const std::vector<std::string>& addresses) {
  std::vector<ControlExemption> out;
  for (size_t i = 0; i < addresses.size(); ++i) {
    auto ep = ParseEndpoint(fmt::format("control_addresses[{}]", i), addresses[i]);
    if (!ep.ok()) return ep.status();
    if (ep->is_unix || ep->port == 0) continue;
    ControlExemption ex;
    ex.port = static_cast<uint16_t>(ep->port);
    ex.source = addresses[i];
    std::optional<Cidr> host = ParseAddress(ep->host);
    if (host) {
      const bool wildcard = std::all_of(host->addr.begin(), host->addr.end(),
                                        [](uint8_t b) { return b == 0; });
      if (!wildcard) ex.host = host;
    }
    out.push_back(std::move(ex));
  }
  return out;
}

absl::StatusOr<std::string> TableNameForId(const std::string& id) {
  std::string clean;
  for (unsigned char c : id) {
    if (std::isalnum(c)) clean += static_cast<char>(std::tolower(c));
  }
  if (clean.empty()) {
    return absl::InvalidArgumentError(
        fmt::format("id: \"{}\" has no letter or digit to name an nftables table", id));
  }
  if (clean.size() > 32) {
    uint64_t h = 1469598103934665603ULL;  // FNV-1a over the whole id keeps names distinct
    for (unsigned char c : id) {
      h ^= c;
      h *= 1099511628211ULL;
    }
    clean = fmt::format("{}{:016x}", clean.substr(0, 16), h);
  }
  return fmt::format("{}-{}", kTablePrefix, clean);
}

bool IsOurTableName(const std::string& name) {
  const std::string prefix = kTablePrefix;
  if (name.size() > 64 || name.compare(0, prefix.size(), prefix) != 0) return false;
  return std::all_of(name.begin() + static_cast<long>(prefix.size()), name.end(),
                     [](unsigned char c) {
                       return std::islower(c) || std::isdigit(c) || c == '-';
                     });
}

std::string RenderTimeout(std::chrono::nanoseconds d) {
  int64_t ms = (d.count() + 999999) / 1000000;
  if (ms < 1) ms = 1;
  struct Unit {
    int64_t ms;
    const char* name;
  };
  static constexpr Unit kUnits[] = {
      {86400000, "d"}, {3600000, "h"}, {60000, "m"}, {1000, "s"}, {1, "ms"}};
  std::string out;
  for (const Unit& u : kUnits) {
    if (ms >= u.ms) {
      out += fmt::format("{}{}", ms / u.ms, u.name);
      ms %= u.ms;
    }
  }
  return out;
}

std::vector<std::pair<std::string, std::string>> RenderRuleBodies(const BlockSpec& spec) {
  std::vector<std::pair<std::string, std::string>> rules;
  bool families[2] = {false, false};  // v4, v6
  for (const Cidr& p : spec.peers) families[p.family == AF_INET ? 0 : 1] = true;

  struct ChainInfo {
    const char* name;
    bool ingress;
  };
  for (const ChainInfo chain : {ChainInfo{"input", true}, ChainInfo{"output", false}}) {
    if (chain.ingress && spec.direction == Direction::kEgress) continue;
    if (!chain.ingress && spec.direction == Direction::kIngress) continue;
    auto add = [&](const std::string& body) { rules.emplace_back(chain.name, body); };
    // The remote end of a packet: its source on the way in, its destination out.
    const char* remote = chain.ingress ? "saddr" : "daddr";
    const char* local = chain.ingress ? "daddr" : "saddr";
    const char* remote_port = chain.ingress ? "sport" : "dport";
    const char* local_port = chain.ingress ? "dport" : "sport";

    add(chain.ingress ? "iif \"lo\" accept" : "oif \"lo\" accept");
    for (const ControlExemption& c : spec.control) {
      if (c.host) {
        const char* fam = FamilyKeyword(c.host->family);
        const std::string host = c.host->ToString();
        // The controller (a remote server) and our own listener (a local one).
        add(fmt::format("{} {} {} tcp {} {} accept", fam, remote, host, remote_port, c.port));
        add(fmt::format("{} {} {} tcp {} {} accept", fam, local, host, local_port, c.port));
      } else {
        add(fmt::format("tcp {} {} accept", remote_port, c.port));
        add(fmt::format("tcp {} {} accept", local_port, c.port));
      }
    }
    for (const Cidr& p : spec.protected_cidrs) {
      add(fmt::format("{} {} {} accept", FamilyKeyword(p.family), remote, p.ToString()));
    }
    for (int family : {AF_INET, AF_INET6}) {
      if (!families[family == AF_INET ? 0 : 1]) continue;
      const std::string match =
          fmt::format("{} {} @{}", FamilyKeyword(family), remote, SetName(family));
      for (const auto& [l4, verdict] : L4Variants(spec)) add(Join({match, l4, verdict}));
    }
  }
  return rules;
}

std::string BuildApplyCommands(const std::string& table, const BlockSpec& spec,
                               std::chrono::nanoseconds timeout) {
  std::vector<std::string> cmds;
  cmds.push_back(fmt::format("create table inet {}", table));
  const std::string t = RenderTimeout(timeout);
  for (int family : {AF_INET, AF_INET6}) {
    std::vector<std::string> elements;
    for (const Cidr& p : spec.peers) {
      if (p.family == family) elements.push_back(fmt::format("{} timeout {}", p.ToString(), t));
    }
    if (elements.empty()) continue;
    cmds.push_back(fmt::format("add set inet {} {} {{ type {}; flags interval, timeout; }}", table,
                               SetName(family), family == AF_INET ? "ipv4_addr" : "ipv6_addr"));
    std::string joined;
    for (size_t i = 0; i < elements.size(); ++i) {
      if (i > 0) joined += ", ";
      joined += elements[i];
    }
    cmds.push_back(fmt::format("add element inet {} {} {{ {} }}", table, SetName(family), joined));
  }
  // Priority -300 (raw): before the usual filter chains (0), so a drop here
  // happens whatever they would accept; an accept here does not override
  // their drops (nftables verdicts: drop in any base chain is final).
  const auto rules = RenderRuleBodies(spec);
  for (const char* chain : {"input", "output"}) {
    const bool used = std::any_of(rules.begin(), rules.end(),
                                  [&](const auto& r) { return r.first == chain; });
    if (!used) continue;
    cmds.push_back(fmt::format(
        "add chain inet {} {} {{ type filter hook {} priority -300; policy accept; }}", table,
        chain, chain));
  }
  for (const auto& [chain, body] : rules) {
    cmds.push_back(fmt::format("add rule inet {} {} {}", table, chain, body));
  }
  std::string out;
  for (const auto& c : cmds) out += c + "\n";
  return out;
}

std::string BuildDeleteCommand(const std::string& table) {
  return fmt::format("delete table inet {}\n", table);
}

std::vector<std::pair<std::string, std::string>> ParseTableList(const std::string& output) {
  std::vector<std::pair<std::string, std::string>> out;
  std::istringstream in(output);
  std::string line;
  while (std::getline(in, line)) {
    std::istringstream words(line);
    std::string kw, family, name, extra;
    if (!(words >> kw >> family >> name) || kw != "table" || (words >> extra)) continue;
    out.emplace_back(family, name);
  }
  return out;
}

std::vector<std::string> ParseResolvConf(const std::string& text, std::vector<std::string>* skipped) {
  std::vector<std::string> out;
  std::istringstream in(text);
  std::string line;
  while (std::getline(in, line)) {
    const size_t comment = line.find_first_of("#;");
    if (comment != std::string::npos) line.resize(comment);
    std::istringstream words(line);
    std::string kw, addr;
    if (!(words >> kw) || kw != "nameserver") continue;
    if (!(words >> addr)) continue;
    if (ParseAddress(addr)) {
      out.push_back(addr);
    } else if (skipped != nullptr) {
      skipped->push_back(addr);
    }
  }
  return out;
}

absl::Status CheckSomethingBlocked(const std::vector<Cidr>& peers,
                                   const std::vector<Exemption>& exempt, const std::string& field) {
  std::vector<std::string> reasons;
  for (const Cidr& peer : peers) {
    auto it = std::find_if(exempt.begin(), exempt.end(),
                           [&](const Exemption& e) { return e.cidr.Contains(peer); });
    if (it == exempt.end()) return absl::OkStatus();
    if (reasons.size() < 4) reasons.push_back(fmt::format("{} is {}", peer.ToString(), it->why));
  }
  if (peers.empty()) return absl::OkStatus();
  return absl::InvalidArgumentError(fmt::format(
      "{}: every entry is exempt, so nothing would be blocked ({}{}); name an address outside "
      "the exemptions",
      field, absl::StrJoin(reasons, "; "), peers.size() > reasons.size() ? "; ..." : ""));
}

std::vector<std::string> ExemptionNotes(const BlockSpec& spec) {
  std::vector<std::string> notes;
  const Cidr loop4 = *ParseAddress("127.0.0.0");
  Cidr loop4net = loop4;
  loop4net.prefix = 8;
  const Cidr loop6 = *ParseAddress("::1");
  for (const Cidr& peer : spec.peers) {
    for (const ControlExemption& c : spec.control) {
      if (c.host && peer.Contains(*c.host)) {
        notes.push_back(fmt::format(
            "note: peer {} covers control address {}: its TCP port {} stays reachable (accept "
            "rules come first)",
            peer.ToString(), c.source, c.port));
      }
    }
    for (const Cidr& p : spec.protected_cidrs) {
      if (peer.Overlaps(p)) {
        notes.push_back(fmt::format(
            "note: peer {} overlaps protected CIDR {}: that traffic stays exempt (accept rules "
            "come first)",
            peer.ToString(), p.ToString()));
      }
    }
    if (peer.Overlaps(loop4net) || peer.Contains(loop6)) {
      notes.push_back(fmt::format("note: peer {} covers loopback: loopback traffic stays exempt",
                                  peer.ToString()));
    }
  }
  return notes;
}

}  // namespace faultline::agent::nft
