#include "controller/zone_outage.h"

#include <fmt/format.h>

#include <set>

#include "absl/strings/str_join.h"
#include "common/endpoint.h"
#include "common/status_macros.h"
#include "spec/net.h"
#include "spec/process.h"

namespace faultline::controller {
namespace {

const std::string& LabelOf(const v1::ZoneOutageFault& outage) {
  static const std::string kDefault = kDefaultZoneLabel;
  return outage.label().empty() ? kDefault : outage.label();
}

bool InZone(const AgentRef& agent, const v1::ZoneOutageFault& outage) {
  auto it = agent.labels.find(LabelOf(outage));
  return it != agent.labels.end() && it->second == outage.zone();
}

// The IP of an agent's advertised address, as a host CIDR.
absl::StatusOr<std::string> AgentIp(const AgentRef& agent) {
  auto ep = ParseEndpoint("address", agent.address);
  if (!ep.ok() || ep->is_unix || !spec::ParseAddress(ep->host).has_value()) {
    return absl::FailedPreconditionError(fmt::format(
        "zone_outage: agent {} advertises \"{}\", not an IP address and port; a zone outage cuts "
        "agents by IP",
        agent.name, agent.address));
  }
  return spec::ParseAddress(ep->host)->ToString();
}

v1::FaultSpec Partition(const std::set<std::string>& peers, const v1::ZoneOutageFault& outage,
                        const std::string& duration) {
  v1::FaultSpec spec;
  spec.set_duration(duration);
  v1::PartitionFault* p = spec.mutable_partition();
  for (const auto& peer : peers) p->add_peers(peer);
  for (const auto& k : outage.keep()) p->add_keep(k);
  return spec;
}

v1::FaultSpec PowerLoss(const v1::ZoneService& service, bool kill, const std::string& duration) {
  v1::FaultSpec spec;
  if (kill) {
    v1::KillFault* k = spec.mutable_kill();
    *k->mutable_process() = service.process();
    k->set_mode(v1::SELECTION_MODE_ALL);
    k->set_signal("KILL");
  } else {
    spec.set_duration(duration);
    v1::PauseFault* p = spec.mutable_pause();
    *p->mutable_process() = service.process();
    p->set_mode(v1::SELECTION_MODE_ALL);
  }
  return spec;
}

}  // namespace

absl::Status ValidateZoneOutage(const v1::ZoneOutageFault& outage) {
  if (outage.zone().empty()) return absl::InvalidArgumentError("zone: required (a label value)");
  RETURN_IF_ERROR(spec::ParseCidrList("extra_peers", {outage.extra_peers().begin(),
                                                      outage.extra_peers().end()})
                      .status());
  RETURN_IF_ERROR(
      spec::ParseCidrList("keep", {outage.keep().begin(), outage.keep().end()}).status());
  if (!v1::ZoneOutageMode_IsValid(outage.mode())) {
    return absl::InvalidArgumentError(fmt::format("mode: unknown value {}", static_cast<int>(outage.mode())));
  }
  if (!v1::PowerAction_IsValid(outage.action())) {
    return absl::InvalidArgumentError(fmt::format("action: unknown value {}", static_cast<int>(outage.action())));
  }
  const bool power = outage.mode() == v1::ZONE_OUTAGE_MODE_POWER;
  if (power && outage.services().empty()) {
    return absl::InvalidArgumentError(
        "services: mode power needs the processes to stop, e.g. [{process: {name: redis-server}}]");
  }
  if (!power && (!outage.services().empty() || outage.action() != v1::POWER_ACTION_UNSPECIFIED)) {
    return absl::InvalidArgumentError(
        fmt::format("{}: only with mode power", outage.services().empty() ? "action" : "services"));
  }
  for (int i = 0; i < outage.services_size(); ++i) {
    spec::ProcessSelection selection;
    selection.process = &outage.services(i).process();
    selection.mode = v1::SELECTION_MODE_ALL;
    absl::Status st = spec::ValidateSelection(selection);
    if (!st.ok()) {
      return absl::Status(st.code(), fmt::format("services[{}].{}", i, std::string(st.message())));
    }
  }
  return absl::OkStatus();
}

absl::StatusOr<std::vector<ZonePart>> ExpandZoneOutage(const v1::ZoneOutageFault& outage,
                                                       const std::string& duration,
                                                       const std::vector<AgentRef>& agents) {
  std::set<std::string> inside_ips, outside_ips(outage.extra_peers().begin(),
                                                outage.extra_peers().end());
  std::vector<const AgentRef*> inside, outside;
  for (const AgentRef& a : agents) {
    ASSIGN_OR_RETURN(const std::string ip, AgentIp(a));
    if (InZone(a, outage)) {
      inside_ips.insert(ip);
      inside.push_back(&a);
    } else {
      outside_ips.insert(ip);
      outside.push_back(&a);
    }
  }
  const std::string zone = fmt::format("{}={}", LabelOf(outage), outage.zone());
  if (inside.empty()) {
    return absl::FailedPreconditionError(
        fmt::format("zone_outage: no registered agent has the label {}", zone));
  }
  if (outside_ips.empty()) {
    return absl::FailedPreconditionError(fmt::format(
        "zone_outage: every registered agent is in {}; there is nothing to cut it from", zone));
  }
  // An IP shared by hosts on both sides cannot be cut from itself.
  for (const auto& ip : inside_ips) {
    if (outside_ips.contains(ip)) {
      return absl::FailedPreconditionError(fmt::format(
          "zone_outage: {} is the address of agents inside and outside {}", ip, zone));
    }
  }
  std::vector<ZonePart> parts;
  const bool power = outage.mode() == v1::ZONE_OUTAGE_MODE_POWER;
  const bool kill = outage.action() == v1::POWER_ACTION_KILL;
  for (const AgentRef* a : inside) {
    if (!a->healthy) continue;
    const std::string role = fmt::format("zone {}", outage.zone());
    parts.push_back({*a, role, true, Partition(outside_ips, outage, duration)});
    if (!power) continue;
    for (const auto& service : outage.services()) {
      parts.push_back({*a, role, true, PowerLoss(service, kill, duration)});
    }
  }
  for (const AgentRef* a : outside) {
    if (!a->healthy) continue;
    parts.push_back({*a, fmt::format("outside zone {}", outage.zone()), false,
                     Partition(inside_ips, outage, duration)});
  }
  return parts;
}

}  // namespace faultline::controller
