// The shared machinery of the nftables fault kinds (partition, dns): each
// fault is one table of our own, `inet faultline-<id>`, created in one nft
// batch and removed by deleting the table. The blocked addresses sit in sets
// whose elements carry `timeout`, so the kernel lifts the fault at its
// deadline even if the agent is dead; the (then inert) table is removed by
// Revert or Sweep.
#ifndef FAULTLINE_AGENT_FAULTS_NFT_NFT_TABLE_FAULT_H_
#define FAULTLINE_AGENT_FAULTS_NFT_NFT_TABLE_FAULT_H_

#include <map>
#include <string>
#include <vector>

#include "agent/faults/fault_handler.h"
#include "agent/faults/nft/nft_rules.h"

namespace faultline::agent::nft {

// What Plan() decided beyond the spec, kept in NetState.detail as key=value
// lines (e.g. "resolvers=10.0.0.2,10.0.0.3", "netns_ino=4026532",).
using Detail = std::map<std::string, std::string>;
std::string SerializeDetail(const Detail& detail);
Detail ParseDetail(const std::string& text);

// Base of the nftables handlers. Stateless; thread-safe (libnftables calls are
// serialized inside NftSession).
class NftTableFault : public FaultHandler {
 public:
  // The namespace exists.
  absl::Status Validate(const v1::FaultSpec& spec, const FaultContext& ctx) const final;
  absl::StatusOr<std::vector<std::string>> Plan(const v1::FaultSpec& spec, const FaultContext& ctx,
                                                v1::FaultRecord* record) const final;
  absl::Status Apply(v1::FaultRecord* record, const FaultContext& ctx) const final;
  absl::Status Revert(const v1::FaultRecord& record, const FaultContext& ctx) const final;
  // Deletes every table named faultline* in the agent's own network namespace.
  absl::StatusOr<std::vector<std::string>> Sweep(const FaultContext& ctx) const final;
  // CAP_NET_ADMIN held, and a `list tables` through libnftables succeeds.
  absl::Status HostSupports(const FaultContext& ctx) const final;

  // The full block description for `spec`, exemptions included. `detail`
  // carries Plan's decisions into Apply (Plan may add to it). INVALID_ARGUMENT
  // naming PeersField() when every peer is exempt (keep, the policy's
  // protected_cidrs, and for ControlHostsExempt() kinds the control hosts):
  // such a fault would drop nothing.
  absl::StatusOr<BlockSpec> MakeFullBlock(const v1::FaultSpec& spec, const FaultContext& ctx,
                                          const std::string& netns_path, Detail* detail,
                                          std::vector<std::string>* notes) const;

 protected:
  // The kind-specific part: peers, ports, protocol, direction, reject.
  virtual absl::StatusOr<BlockSpec> MakeBlock(const v1::FaultSpec& spec,
                                              const std::string& netns_path, Detail* detail,
                                              std::vector<std::string>* notes) const = 0;
  // The spec field that holds the blocked addresses, for messages.
  virtual const char* PeersField() const { return "peers"; }
  // Whether a peer on a control host (the controller, our listeners) counts
  // as exempt as a whole, not just its control port: a partition never cuts
  // the controller; a dns fault on its port 53 is fine.
  virtual bool ControlHostsExempt() const { return true; }
};


}  // namespace faultline::agent::nft

#endif  // FAULTLINE_AGENT_FAULTS_NFT_NFT_TABLE_FAULT_H_
