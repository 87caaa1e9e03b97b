#include "agent/faults/registry.h"

#include "agent/faults/disk_fill_fault.h"
#include "agent/faults/net/net_handlers.h"
#include "agent/faults/nft/dns.h"
#include "agent/faults/nft/partition.h"
#include "agent/faults/process_faults.h"

namespace faultline::agent {

std::vector<std::unique_ptr<FaultHandler>> MakeDefaultHandlers() {
  std::vector<std::unique_ptr<FaultHandler>> handlers;
  handlers.push_back(MakeKillHandler());
  handlers.push_back(MakePauseHandler());
  handlers.push_back(MakeDiskFillHandler());
  handlers.push_back(MakeNetemHandler());
  handlers.push_back(MakeBandwidthHandler());
  handlers.push_back(std::make_unique<nft::PartitionHandler>());
  handlers.push_back(std::make_unique<nft::DnsHandler>());
  return handlers;
}

}  // namespace faultline::agent
