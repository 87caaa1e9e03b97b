// The traffic-control fault kinds: `netem` (delay, jitter, loss, duplicate,
// corrupt, reorder, rate) and `bandwidth` (a tbf rate limit), both optionally
// only towards `to` destinations, both through libnl-route.
//
// Layout in the kernel (every handle tagged with major 0xFA17/0xFA18):
//   whole interface:  root netem fa17:   or   root tbf fa17:
//   with `to` (or netem with rate):
//     root htb fa17: (unclassified traffic: htb's direct queue, unshaped;
//                     without `to`, everything goes to fa17:1)
//       class htb fa17:1 (the rate, or 10gbit for netem without rate)
//         netem fa18: (netem only)
//       u32 filters: dst CIDR (and port) -> fa17:1
// Only a kernel-default root (handle 0: noqueue, pfifo_fast, mq, fq_codel) is
// replaced; deleting our root brings the kernel default back. Any other root is
// refused with FAILED_PRECONDITION naming it.
#ifndef FAULTLINE_AGENT_FAULTS_NET_NET_HANDLERS_H_
#define FAULTLINE_AGENT_FAULTS_NET_NET_HANDLERS_H_

#include <memory>

#include "agent/faults/fault_handler.h"

namespace faultline::agent {

std::unique_ptr<FaultHandler> MakeNetemHandler();
std::unique_ptr<FaultHandler> MakeBandwidthHandler();

}  // namespace faultline::agent

#endif  // FAULTLINE_AGENT_FAULTS_NET_NET_HANDLERS_H_
