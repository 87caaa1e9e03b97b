#include "agent/faults/nft/nft_table_fault.h"

#include <fmt/format.h>
#include <linux/capability.h>
#include <spdlog/spdlog.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <sstream>

#include "absl/strings/str_join.h"
#include "agent/faults/netns.h"
#include "agent/faults/nft/nft_session.h"
#include "common/clock.h"
#include "common/status_macros.h"
#include "common/units.h"

namespace faultline::agent::nft {
namespace {

std::string NetnsLabel(const std::string& netns_path) {
  return netns_path.empty() ? "the agent's network namespace"
                            : fmt::format("network namespace {}", netns_path);
}

absl::StatusOr<std::string> RandomTableName() {
  uint32_t r = 0;
  if (::getrandom(&r, sizeof(r), 0) != sizeof(r)) {
    return absl::InternalError(fmt::format("getrandom: {}", std::strerror(errno)));
  }
  return TableNameForId(fmt::format("{:08x}", r));
}

// The inode of a namespace file: tells, after a crash, whether
// /proc/PID/ns/net still names the namespace we changed.
std::string NetnsInode(const std::string& path) {
  if (path.empty()) return "";
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) return "";
  return std::to_string(st.st_ino);
}

bool TableListed(const std::string& list_output, const std::string& family,
                 const std::string& table) {
  for (const auto& [f, name] : ParseTableList(list_output)) {
    if (f == family && name == table) return true;
  }
  return false;
}

absl::Status CheckNetAdmin() {
  __user_cap_header_struct header{};
  header.version = _LINUX_CAPABILITY_VERSION_3;
  header.pid = 0;
  __user_cap_data_struct data[2] = {};
  if (::syscall(SYS_capget, &header, data) != 0) {
    return absl::FailedPreconditionError(
        fmt::format("capabilities: capget failed: {}", std::strerror(errno)));
  }
  if ((data[0].effective & (1u << CAP_NET_ADMIN)) == 0) {
    return absl::FailedPreconditionError(
        "capabilities: CAP_NET_ADMIN is not held (run the agent as root or grant it)");
  }
  return absl::OkStatus();
}

std::string Summary(const BlockSpec& b, const std::string& netns_path) {
  const std::string peers = absl::StrJoin(
      b.peers, ",", [](std::string* out, const Cidr& c) { out->append(c.ToString()); });
  const std::string ports = absl::StrJoin(b.ports, ",");
  std::string what;
  if (b.protocol != Protocol::kAny) what = ProtocolName(b.protocol);
  if (!ports.empty()) what += (what.empty() ? "ports " : " ports ") + ports;
  const char* dir = b.direction == Direction::kBoth      ? "to and from"
                    : b.direction == Direction::kIngress ? "from"
                                                         : "to";
  return fmt::format("{} traffic {} {}{}{}", b.reject ? "reject" : "drop", dir, peers,
                     what.empty() ? "" : " (" + what + ")",
                     netns_path.empty() ? "" : " in " + netns_path);
}

}  // namespace

std::string SerializeDetail(const Detail& detail) {
  std::string out;
  for (const auto& [k, v] : detail) out += fmt::format("{}={}\n", k, v);
  return out;
}

Detail ParseDetail(const std::string& text) {
  Detail out;
  std::istringstream in(text);
  std::string line;
  while (std::getline(in, line)) {
    const size_t eq = line.find('=');
    if (eq == std::string::npos) continue;
    out[line.substr(0, eq)] = line.substr(eq + 1);
  }
  return out;
}

absl::Status NftTableFault::Validate(const v1::FaultSpec& spec, const FaultContext& /*ctx*/) const {
  return ResolveNetnsPath(spec).status();
}

absl::StatusOr<BlockSpec> NftTableFault::MakeFullBlock(const v1::FaultSpec& spec,
                                                       const FaultContext& ctx,
                                                       const std::string& netns_path,
                                                       Detail* detail,
                                                       std::vector<std::string>* notes) const {
  ASSIGN_OR_RETURN(BlockSpec block, MakeBlock(spec, netns_path, detail, notes));
  std::vector<Exemption> exempt;
  for (const Cidr& c : block.protected_cidrs) exempt.push_back({c, "inside keep " + c.ToString()});
  if (ctx.policy != nullptr) {
    for (int i = 0; i < ctx.policy->protected_cidrs_size(); ++i) {
      const std::string field = fmt::format("policy.protected_cidrs[{}]", i);
      auto c = ParseCidr(field, ctx.policy->protected_cidrs(i));
      if (!c.ok()) return absl::FailedPreconditionError(std::string(c.status().message()));
      block.protected_cidrs.push_back(*c);
      exempt.push_back({*c, fmt::format("inside {} {}", field, c->ToString())});
    }
  }
  block.protected_cidrs = NormalizeCidrs(std::move(block.protected_cidrs), nullptr);
  auto control = ParseControlAddresses(ctx.control_addresses);
  // Without a parsable control address we could not keep it exempt: refuse.
  if (!control.ok()) return absl::FailedPreconditionError(std::string(control.status().message()));
  block.control = *std::move(control);
  for (const ControlExemption& c : block.control) {
    if (!c.host || !ControlHostsExempt()) continue;
    exempt.push_back({*c.host, fmt::format("the control address {} (the controller and the "
                                           "agent's own listeners are never partitioned)",
                                           c.source)});
  }
  RETURN_IF_ERROR(CheckSomethingBlocked(block.peers, exempt, PeersField()));
  return block;
}

absl::StatusOr<std::vector<std::string>> NftTableFault::Plan(const v1::FaultSpec& spec,
                                                             const FaultContext& ctx,
                                                             v1::FaultRecord* record) const {
  ASSIGN_OR_RETURN(const std::string netns_path, ResolveNetnsPath(spec));
  std::string table;
  if (record->id().empty()) {
    ASSIGN_OR_RETURN(table, RandomTableName());
  } else {
    ASSIGN_OR_RETURN(table, TableNameForId(record->id()));
  }
  Detail detail;
  std::vector<std::string> notes;
  ASSIGN_OR_RETURN(BlockSpec block, MakeFullBlock(spec, ctx, netns_path, &detail, &notes));
  ASSIGN_OR_RETURN(auto duration, ParseDuration("duration", spec.duration()));

  // Read-only probe in the target namespace: nftables usable, name free.
  auto tables = RunNft(netns_path, "list tables");
  if (!tables.ok()) {
    return absl::FailedPreconditionError(fmt::format(
        "nftables: not usable in {}: {}", NetnsLabel(netns_path), std::string(tables.status().message())));
  }
  if (TableListed(*tables, "inet", table)) {
    return absl::FailedPreconditionError(
        fmt::format("nftables: table inet {} already exists in {}", table, NetnsLabel(netns_path)));
  }
  const std::string ino = NetnsInode(netns_path);
  if (!ino.empty()) detail["netns_ino"] = ino;

  v1::NetState* net = record->mutable_net();
  net->set_netns_path(netns_path);
  net->set_nft_table(table);
  net->set_detail(SerializeDetail(detail));
  record->set_target(Summary(block, netns_path));

  std::vector<std::string> changes;
  changes.push_back(fmt::format("nftables: create table inet {} in {}; peers expire in the kernel after {}",
                                table, NetnsLabel(netns_path), FormatDuration(duration)));
  std::istringstream cmds(BuildApplyCommands(table, block, duration));
  std::string line;
  while (std::getline(cmds, line)) changes.push_back("nft " + line);
  for (auto& n : notes) changes.push_back(std::move(n));
  for (auto& n : ExemptionNotes(block)) changes.push_back(std::move(n));
  return changes;
}

absl::Status NftTableFault::Apply(v1::FaultRecord* record, const FaultContext& ctx) const {
  const v1::NetState& net = record->net();
  if (!IsOurTableName(net.nft_table())) {
    return absl::FailedPreconditionError(
        fmt::format("net.nft_table: \"{}\" is not a Faultline table (was Plan run?)", net.nft_table()));
  }
  Detail detail = ParseDetail(net.detail());
  std::vector<std::string> notes;
  ASSIGN_OR_RETURN(BlockSpec block,
                   MakeFullBlock(record->spec(), ctx, net.netns_path(), &detail, &notes));
  ASSIGN_OR_RETURN(std::chrono::nanoseconds timeout,
                   ParseDuration("duration", record->spec().duration()));
  if (record->deadline_unix_ns() > 0) {
    const int64_t left = record->deadline_unix_ns() - NowRealtimeNs();
    if (left <= 0) {
      return absl::FailedPreconditionError("deadline: already passed; nothing applied");
    }
    timeout = std::chrono::nanoseconds(left);
  }
  // One batch: nft commits all of it or none of it, so a failure leaves
  // nothing behind to undo.
  auto out = RunNft(net.netns_path(), BuildApplyCommands(net.nft_table(), block, timeout));
  if (!out.ok()) return out.status();
  spdlog::info("{} {}: table inet {} created in {}", Kind(), record->id(), net.nft_table(),
               NetnsLabel(net.netns_path()));
  return absl::OkStatus();
}

absl::Status NftTableFault::Revert(const v1::FaultRecord& record, const FaultContext& /*ctx*/) const {
  const v1::NetState& net = record.net();
  if (net.nft_table().empty()) return absl::OkStatus();  // Plan never ran: nothing was made
  if (!IsOurTableName(net.nft_table())) {
    return absl::InvalidArgumentError(
        fmt::format("net.nft_table: \"{}\" is not a Faultline table name", net.nft_table()));
  }
  const std::string& path = net.netns_path();
  if (!path.empty()) {
    const std::string ino = NetnsInode(path);
    if (ino.empty()) {
      spdlog::info("{} {}: {} is gone, and its nftables tables with it", Kind(), record.id(), path);
      return absl::OkStatus();
    }
    const Detail detail = ParseDetail(net.detail());
    auto it = detail.find("netns_ino");
    if (it != detail.end() && it->second != ino) {
      spdlog::info("{} {}: {} now names another namespace; the one we changed is gone", Kind(),
                   record.id(), path);
      return absl::OkStatus();
    }
  }
  const std::string& table = net.nft_table();
  return RunInNetns(path, [&]() -> absl::Status {
    ASSIGN_OR_RETURN(auto session, NftSession::Create());
    ASSIGN_OR_RETURN(std::string tables, session->Run("list tables"));
    if (!TableListed(tables, "inet", table)) return absl::OkStatus();
    auto deleted = session->Run(BuildDeleteCommand(table));
    if (!deleted.ok()) {
      // Someone else (a second Revert) may have won the race.
      ASSIGN_OR_RETURN(tables, session->Run("list tables"));
      if (TableListed(tables, "inet", table)) return deleted.status();
    }
    spdlog::info("{} {}: table inet {} deleted", Kind(), record.id(), table);
    return absl::OkStatus();
  });
}

absl::StatusOr<std::vector<std::string>> NftTableFault::Sweep(const FaultContext& /*ctx*/) const {
  static const char* kFamilies[] = {"ip", "ip6", "inet", "arp", "bridge", "netdev"};
  std::vector<std::string> removed;
  absl::Status status = RunInNetns("", [&]() -> absl::Status {
    ASSIGN_OR_RETURN(auto session, NftSession::Create());
    ASSIGN_OR_RETURN(std::string tables, session->Run("list tables"));
    for (const auto& table : ParseTableList(tables)) {
      // Named copies, not a structured binding: clang 14 (the sanitizer
      // build) cannot capture those in the lambda below.
      const std::string family = table.first;
      const std::string name = table.second;
      if (name.rfind(kTablePrefix, 0) != 0) continue;
      const bool known_family = std::find_if(std::begin(kFamilies), std::end(kFamilies),
                                             [&](const char* f) { return family == f; }) !=
                                std::end(kFamilies);
      if (!known_family || !IsOurTableName(name)) {
        spdlog::warn("sweep: leaving table {} {}: not a name Faultline makes", family, name);
        continue;
      }
      RETURN_IF_ERROR(session->Run(fmt::format("delete table {} {}\n", family, name)).status());
      removed.push_back(fmt::format("nftables table {} {}", family, name));
    }
    return absl::OkStatus();
  });
  if (!status.ok()) return status;
  return removed;
}

absl::Status NftTableFault::HostSupports(const FaultContext& /*ctx*/) const {
  RETURN_IF_ERROR(CheckNetAdmin());
  auto out = RunNft("", "list tables");
  if (!out.ok()) {
    return absl::FailedPreconditionError(
        fmt::format("nftables: not usable: {}", std::string(out.status().message())));
  }
  return absl::OkStatus();
}

}  // namespace faultline::agent::nft
