// The process fault kinds: `kill` (send a signal; an action, nothing to revert)
// and `pause` (SIGSTOP, reverted with SIGCONT).
#ifndef FAULTLINE_AGENT_FAULTS_PROCESS_FAULTS_H_
#define FAULTLINE_AGENT_FAULTS_PROCESS_FAULTS_H_

#include <memory>

#include "agent/faults/fault_handler.h"

namespace faultline::agent {

std::unique_ptr<FaultHandler> MakeKillHandler();
std::unique_ptr<FaultHandler> MakePauseHandler();

}  // namespace faultline::agent

#endif  // FAULTLINE_AGENT_FAULTS_PROCESS_FAULTS_H_
