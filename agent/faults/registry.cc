#include "agent/faults/registry.h"

#include "agent/faults/nft/dns.h"
#include "agent/faults/nft/partition.h"

namespace faultline::agent {

std::vector<std::unique_ptr<FaultHandler>> MakeDefaultHandlers() {
  std::vector<std::unique_ptr<FaultHandler>> handlers;
  handlers.push_back(std::make_unique<nft::PartitionHandler>());
  handlers.push_back(std::make_unique<nft::DnsHandler>());
  return handlers;
}

}  // namespace faultline::agent
