// The `partition` fault kind: drop or reject traffic to and/or from peer
// CIDRs (optionally only some ports and one protocol) with an nftables table
// of our own.
#ifndef FAULTLINE_AGENT_FAULTS_NFT_PARTITION_H_
#define FAULTLINE_AGENT_FAULTS_NFT_PARTITION_H_

#include "agent/faults/nft/nft_table_fault.h"

namespace faultline::agent::nft {

// Handler for kind "partition". Stateless; thread-safe.
class PartitionHandler : public NftTableFault {
 public:
  v1::FaultSpec::KindCase kind_case() const override { return v1::FaultSpec::kPartition; }

 protected:
  absl::StatusOr<BlockSpec> MakeBlock(const v1::FaultSpec& spec, const std::string& netns_path,
                                      Detail* detail, std::vector<std::string>* notes) const override;
};

}  // namespace faultline::agent::nft

#endif  // FAULTLINE_AGENT_FAULTS_NFT_PARTITION_H_
