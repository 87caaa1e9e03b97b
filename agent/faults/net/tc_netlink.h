// Traffic-control operations through libnl-route: one rtnetlink socket in the
// calling thread's network namespace, and the handful of qdisc, class and
// filter changes the netem and bandwidth faults make. Add calls use
// NLM_F_CREATE|NLM_F_EXCL (never NLM_F_REPLACE): an existing qdisc in the way is
// someone else's and is reported, not replaced.
#ifndef FAULTLINE_AGENT_FAULTS_NET_TC_NETLINK_H_
#define FAULTLINE_AGENT_FAULTS_NET_TC_NETLINK_H_

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "agent/faults/net/tc_spec.h"

struct nl_sock;

namespace faultline::agent::net {

// One qdisc as the kernel reports it.
struct QdiscInfo {
  int ifindex = 0;
  uint32_t handle = 0;
  uint32_t parent = 0;
  std::string kind;
};

// A connected NETLINK_ROUTE socket, bound to the network namespace of the
// thread that created it. Owned by one caller; not thread-safe.
class TcSocket {
 public:
  static absl::StatusOr<TcSocket> Connect();

  // ifindex of `name`, or NOT_FOUND.
  absl::StatusOr<int> LinkIndex(const std::string& name) const;
  // Name of `ifindex`, or NOT_FOUND.
  absl::StatusOr<std::string> LinkName(int ifindex) const;
  // All qdiscs of the namespace (ifindex 0) or of one interface.
  absl::StatusOr<std::vector<QdiscInfo>> Qdiscs(int ifindex = 0) const;

  // The qdisc kind is given by the call; `parent` and `handle` are always set.
  // ALREADY_EXISTS when a qdisc is in the way; NOT_FOUND when the kernel does
  // not know the kind (or the parent).
  absl::Status AddNetem(int ifindex, uint32_t parent, uint32_t handle, const NetemParams& p) const;
  absl::Status AddTbf(int ifindex, uint32_t parent, uint32_t handle, const TbfParams& p) const;
  // htb qdisc whose unclassified traffic goes to class minor `default_minor`
  // (0 = htb's direct queue, which passes packets unshaped).
  absl::Status AddHtb(int ifindex, uint32_t parent, uint32_t handle, uint32_t default_minor) const;
  absl::Status AddHtbClass(int ifindex, uint32_t parent, uint32_t classid, uint64_t rate) const;
  // A u32 filter on qdisc `parent` sending packets that match `dest` to `classid`.
  absl::Status AddU32Filter(int ifindex, uint32_t parent, uint16_t prio, const Destination& dest,
                            uint32_t classid) const;
  // Deletes the qdisc with exactly this handle under `parent` (with all its
  // classes, filters and children). NOT_FOUND when it is not there.
  absl::Status DeleteQdisc(int ifindex, uint32_t parent, uint32_t handle) const;

 private:
  struct SockDeleter {
    void operator()(nl_sock* s) const;
  };
  explicit TcSocket(std::unique_ptr<nl_sock, SockDeleter> sock) : sock_(std::move(sock)) {}
  std::unique_ptr<nl_sock, SockDeleter> sock_;
};

// Whether the running kernel can create a qdisc of `kind`: tries it on the
// loopback device of a fresh, private network namespace (made by a throwaway
// thread, gone when it ends), so nothing on the host changes. OK, or
// FAILED_PRECONDITION "kernel lacks sch_<kind>: ...".
absl::Status ProbeQdiscKind(const std::string& kind);

// The message for a kernel without `module` (e.g. "sch_netem").
std::string MissingModuleMessage(const std::string& module);

}  // namespace faultline::agent::net

#endif  // FAULTLINE_AGENT_FAULTS_NET_TC_NETLINK_H_
