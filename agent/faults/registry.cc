#include "agent/faults/registry.h"

#include "agent/faults/net/net_handlers.h"

namespace faultline::agent {

std::vector<std::unique_ptr<FaultHandler>> MakeDefaultHandlers() {
  std::vector<std::unique_ptr<FaultHandler>> handlers;
  handlers.push_back(MakeNetemHandler());
  handlers.push_back(MakeBandwidthHandler());
  return handlers;
}

}  // namespace faultline::agent
