#include "agent/faults/nft/partition.h"

#include <fmt/format.h>

#include "agent/faults/netns.h"
#include "common/status_macros.h"

namespace faultline::agent::nft {

absl::Status PartitionHandler::Validate(const v1::FaultSpec& spec, const FaultContext& /*ctx*/) const {
  RETURN_IF_ERROR(ValidateDuration(spec));
  if (spec.peers().empty()) {
    return absl::InvalidArgumentError("peers: at least one CIDR is required");
  }
  if (!spec.resolvers().empty()) {
    return absl::InvalidArgumentError("resolvers: only dns faults take resolvers (use peers)");
  }
  Detail unused_detail;
  std::vector<std::string> unused_notes;
  RETURN_IF_ERROR(MakeBlock(spec, "", &unused_detail, &unused_notes).status());
  return ResolveNetnsPath(spec).status();
}

absl::StatusOr<BlockSpec> PartitionHandler::MakeBlock(const v1::FaultSpec& spec,
                                                      const std::string& /*netns_path*/,
                                                      Detail* /*detail*/,
                                                      std::vector<std::string>* notes) const {
  BlockSpec block;
  if (spec.peers().empty()) {
    return absl::InvalidArgumentError("peers: at least one CIDR is required");
  }
  std::vector<Cidr> peers;
  for (int i = 0; i < spec.peers_size(); ++i) {
    ASSIGN_OR_RETURN(Cidr c, ParseCidr(fmt::format("peers[{}]", i), spec.peers(i)));
    peers.push_back(c);
  }
  std::vector<std::string> dropped;
  block.peers = NormalizeCidrs(std::move(peers), &dropped);
  for (const auto& d : dropped) notes->push_back(fmt::format("note: peer {}", d));
  ASSIGN_OR_RETURN(block.ports, ParsePorts({spec.ports().begin(), spec.ports().end()}));
  ASSIGN_OR_RETURN(block.protocol, ParseProtocol(spec.protocol()));
  ASSIGN_OR_RETURN(block.direction, ParseDirection(spec.direction()));
  block.reject = spec.reject();
  return block;
}

}  // namespace faultline::agent::nft
