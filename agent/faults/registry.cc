#include "agent/faults/registry.h"

namespace faultline::agent {

std::vector<std::unique_ptr<FaultHandler>> MakeDefaultHandlers() {
  std::vector<std::unique_ptr<FaultHandler>> handlers;
  return handlers;
}

}  // namespace faultline::agent
