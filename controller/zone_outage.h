// The zone outage, a controller-level fault (DESIGN.md, "Fleet runs"): its
// rules, and its expansion into the agent faults that enforce it, on both
// sides of the cut. Pure: no I/O.
#ifndef FAULTLINE_CONTROLLER_ZONE_OUTAGE_H_
#define FAULTLINE_CONTROLLER_ZONE_OUTAGE_H_

#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "controller/targets.h"
#include "faultline/v1/experiment.pb.h"
#include "faultline/v1/faults.pb.h"

namespace faultline::controller {

inline constexpr char kDefaultZoneLabel[] = "zone";

// The fields' rules; errors name the field relative to the message
// ("zone: required", "extra_peers[1]: ... is not a CIDR").
absl::Status ValidateZoneOutage(const v1::ZoneOutageFault& outage);

// One agent's part of an outage.
struct ZonePart {
  AgentRef agent;
  std::string role;    // "zone a" (inside) or "outside zone a"
  bool inside = false; // the zone's own agents: the ones the outage takes out
  v1::FaultSpec spec;  // a partition, or (mode power, inside) a pause or kill
};

// The faults that enforce `outage` for `duration` among the registered
// `agents`: each healthy agent of the zone partitions itself from the IP of
// every registered agent outside it (and extra_peers); each healthy agent
// outside partitions the zone's IPs; with mode power, each healthy agent of
// the zone also pauses (or kills) `services`. FAILED_PRECONDITION when the zone
// has no registered agent, nothing is outside it, or an agent advertises a
// host name instead of an IP address.
absl::StatusOr<std::vector<ZonePart>> ExpandZoneOutage(const v1::ZoneOutageFault& outage,
                                                       const std::string& duration,
                                                       const std::vector<AgentRef>& agents);

}  // namespace faultline::controller

#endif  // FAULTLINE_CONTROLLER_ZONE_OUTAGE_H_
