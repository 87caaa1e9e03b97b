// The fault kinds this agent build knows.
#ifndef FAULTLINE_AGENT_FAULTS_REGISTRY_H_
#define FAULTLINE_AGENT_FAULTS_REGISTRY_H_

#include <memory>
#include <vector>

#include "agent/faults/fault_handler.h"

namespace faultline::agent {

// One handler per kind; the FaultManager owns them.
std::vector<std::unique_ptr<FaultHandler>> MakeDefaultHandlers();

}  // namespace faultline::agent

#endif  // FAULTLINE_AGENT_FAULTS_REGISTRY_H_
