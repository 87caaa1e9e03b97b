// The pure half of the nftables faults (partition, dns): parsing of the spec's
// fields into typed values, and rendering of those values into nft command
// text. Nothing here touches the kernel, so all of it is unit-tested.
//
// nft takes a language, so its input is treated like SQL: every token that
// reaches a command is rendered by this file from a parsed value (addresses
// through inet_pton/inet_ntop with an integer prefix, ports and timeouts as
// integers, protocol and direction from fixed lists, the table name from our
// own id). No text from a spec is ever copied into a command.
#ifndef FAULTLINE_AGENT_FAULTS_NFT_NFT_RULES_H_
#define FAULTLINE_AGENT_FAULTS_NFT_NFT_RULES_H_

#include <array>
#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "faultline/v1/faults.pb.h"
#include "spec/net.h"

namespace faultline::agent::nft {

// Every table Faultline creates starts with this; Sweep looks for it.
inline constexpr char kTablePrefix[] = "faultline";

using spec::Cidr;
using spec::ParseAddress;
using spec::ParseCidr;
using spec::ParsePorts;

enum class Direction { kBoth, kIngress, kEgress };
enum class Protocol { kAny, kTcp, kUdp };

// The spec's enums as the rules' (UNSPECIFIED = both / any).
Direction FromProto(v1::Direction d);
Protocol FromProto(v1::Protocol p);
const char* DirectionName(Direction d);
const char* ProtocolName(Protocol p);

// Sorts, removes duplicates and networks inside other networks (nftables
// rejects overlapping intervals in one set). `dropped` receives a note per
// removed entry.
std::vector<Cidr> NormalizeCidrs(std::vector<Cidr> cidrs, std::vector<std::string>* dropped);

// A TCP endpoint whose traffic stays exempt (the agent's control listeners and
// the controller). `host` empty = any address (wildcard listen or a host name).
struct ControlExemption {
  std::optional<Cidr> host;
  uint16_t port = 0;
  std::string source;  // as configured, for messages
};

// Turns FaultContext::control_addresses into exemptions: unix sockets need
// none; host names and wildcard addresses exempt the port on any address.
absl::StatusOr<std::vector<ControlExemption>> ParseControlAddresses(
    const std::vector<std::string>& addresses);

// Everything a table's rules are made of, already parsed.
struct BlockSpec {
  std::vector<Cidr> peers;          // normalized (see NormalizeCidrs)
  std::vector<uint16_t> ports;      // empty = every port
  Protocol protocol = Protocol::kAny;
  Direction direction = Direction::kBoth;
  bool reject = false;
  std::vector<Cidr> protected_cidrs;
  std::vector<ControlExemption> control;
};

// Table names: "faultline-" + the id's lower-cased letters and digits (ids
// longer than 32 such characters are shortened with a hash of the rest).
// INVALID_ARGUMENT when the id holds no letter or digit.
absl::StatusOr<std::string> TableNameForId(const std::string& id);
// Strict check of a name read back from a record or the kernel before it is
// put into a command: "faultline" followed by [a-z0-9-]*, at most 64 chars.
bool IsOurTableName(const std::string& name);

// nft's time format, e.g. "1h2m3s500ms". Sub-millisecond parts round up so a
// timeout is never zero.
std::string RenderTimeout(std::chrono::nanoseconds d);

// The rules of one table, in evaluation order, as "add rule ..." lines without
// the "add rule inet TABLE CHAIN" head: pairs of (chain, rule body).
std::vector<std::pair<std::string, std::string>> RenderRuleBodies(const BlockSpec& spec);

// The whole transaction that creates the table: the table, its sets (with the
// peers, each element carrying `timeout`), its two base chains and their rules.
// nft applies one buffer as one batch: all of it or nothing.
std::string BuildApplyCommands(const std::string& table, const BlockSpec& spec,
                               std::chrono::nanoseconds timeout);

std::string BuildDeleteCommand(const std::string& table);

// Parses `list tables` output ("table inet NAME" lines) into (family, name).
std::vector<std::pair<std::string, std::string>> ParseTableList(const std::string& output);

// The nameserver addresses in resolv.conf text, in order; lines that are not
// a plain IP address (e.g. with a %scope) are reported in `skipped`.
std::vector<std::string> ParseResolvConf(const std::string& text, std::vector<std::string>* skipped);

// An address range a block never drops traffic to or from, and why (for
// messages): "inside keep 10.0.0.0/8".
struct Exemption {
  Cidr cidr;
  std::string why;
};

// INVALID_ARGUMENT naming `field` when every peer lies wholly inside one of
// `exempt`: such a block would drop nothing (a peer only partly covered, e.g.
// 0.0.0.0/0 or a /24 holding the controller, still blocks the rest).
absl::Status CheckSomethingBlocked(const std::vector<Cidr>& peers,
                                   const std::vector<Exemption>& exempt, const std::string& field);

// Human notes for dry runs: which peers cover exempt addresses.
std::vector<std::string> ExemptionNotes(const BlockSpec& spec);

}  // namespace faultline::agent::nft

#endif  // FAULTLINE_AGENT_FAULTS_NFT_NFT_RULES_H_
