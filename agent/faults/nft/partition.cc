#include "agent/faults/nft/partition.h"

#include <fmt/format.h>

#include "agent/faults/netns.h"
#include "common/status_macros.h"

namespace faultline::agent::nft {

absl::StatusOr<BlockSpec> PartitionHandler::MakeBlock(const v1::FaultSpec& spec,
                                                      const std::string& /*netns_path*/,
                                                      Detail* /*detail*/,
                                                      std::vector<std::string>* notes) const {
  const v1::PartitionFault& p = spec.partition();
  BlockSpec block;
  ASSIGN_OR_RETURN(std::vector<Cidr> peers,
                   spec::ParseCidrList("peers", {p.peers().begin(), p.peers().end()}));
  if (peers.empty()) return absl::InvalidArgumentError("peers: at least one CIDR is required");
  std::vector<std::string> dropped;
  block.peers = NormalizeCidrs(std::move(peers), &dropped);
  for (const auto& d : dropped) notes->push_back(fmt::format("note: peer {}", d));
  ASSIGN_OR_RETURN(block.ports, ParsePorts({p.ports().begin(), p.ports().end()}));
  block.protocol = FromProto(p.protocol());
  block.direction = FromProto(p.direction());
  block.reject = p.reject();
  // `keep`: never blocked; exempt like the policy's protected CIDRs.
  ASSIGN_OR_RETURN(block.protected_cidrs,
                   spec::ParseCidrList("keep", {p.keep().begin(), p.keep().end()}));
  return block;
}

}  // namespace faultline::agent::nft
