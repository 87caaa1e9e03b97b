// The `dns` fault kind: the resolvers become unreachable (udp and tcp port 53
// to and from them blocked) with an nftables table of our own.
#ifndef FAULTLINE_AGENT_FAULTS_NFT_DNS_H_
#define FAULTLINE_AGENT_FAULTS_NFT_DNS_H_

#include <string>

#include "agent/faults/nft/nft_table_fault.h"

namespace faultline::agent::nft {

// Handler for kind "dns". Without `resolvers` it blocks the nameservers of the
// target's resolv.conf: /proc/PID/root/etc/resolv.conf for netns_pid,
// /etc/netns/NAME/resolv.conf for a named namespace that has one (what
// `ip netns exec` shows), else `resolv_conf` (default /etc/resolv.conf).
// Stateless; thread-safe.
class DnsHandler : public NftTableFault {
 public:
  explicit DnsHandler(std::string resolv_conf = "/etc/resolv.conf")
      : resolv_conf_(std::move(resolv_conf)) {}

  v1::FaultSpec::KindCase kind_case() const override { return v1::FaultSpec::kDns; }

 protected:
  absl::StatusOr<BlockSpec> MakeBlock(const v1::FaultSpec& spec, const std::string& netns_path,
                                      Detail* detail, std::vector<std::string>* notes) const override;
  const char* PeersField() const override { return "resolvers"; }
  bool ControlHostsExempt() const override { return false; }

 private:
  std::string ResolvConfPath(const v1::FaultSpec& spec) const;

  const std::string resolv_conf_;
};

}  // namespace faultline::agent::nft

#endif  // FAULTLINE_AGENT_FAULTS_NFT_DNS_H_
