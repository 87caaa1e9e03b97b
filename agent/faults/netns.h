// Running code inside another network namespace. setns() changes the calling
// thread only, so the work runs on a short-lived thread of its own and the
// gRPC threads never leave the agent's namespace.
#ifndef FAULTLINE_AGENT_FAULTS_NETNS_H_
#define FAULTLINE_AGENT_FAULTS_NETNS_H_

#include <functional>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "common/unique_fd.h"
#include "faultline/v1/faults.pb.h"

namespace faultline::agent {

// The namespace path a spec targets: "" for the agent's own namespace,
// /run/netns/NAME for `netns: NAME`, the path itself for `netns: /a/path`, and
// /proc/PID/ns/net for `netns_pid`. INVALID_ARGUMENT naming the field when both
// are set, the name is malformed, or the target does not exist.
absl::StatusOr<std::string> ResolveNetnsPath(const v1::FaultSpec& spec);

// Opens the network namespace file at `path` for setns(): it must be an nsfs
// file (/run/netns/NAME, /proc/PID/ns/net) of a network namespace. Never
// blocks (a FIFO is refused, not waited on). INVALID_ARGUMENT naming `field`
// for anything else.
absl::StatusOr<UniqueFd> OpenNetns(const std::string& path, const std::string& field);

// Runs `fn` with the calling context switched to the network namespace at
// `netns_path` ("" = run it right here). Blocks until `fn` returns.
absl::Status RunInNetns(const std::string& netns_path, const std::function<absl::Status()>& fn);

}  // namespace faultline::agent

#endif  // FAULTLINE_AGENT_FAULTS_NETNS_H_
