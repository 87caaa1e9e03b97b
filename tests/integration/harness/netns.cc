#include "harness/netns.h"

#include <fmt/format.h>

#include "absl/status/status.h"
#include "common/status_macros.h"
#include "harness/test_dir.h"

namespace faultline::itest {
namespace {

absl::Status ToStatus(const CommandResult& r) {
  if (r.ok()) return absl::OkStatus();
  return absl::InternalError(r.Describe());
}

}  // namespace

absl::StatusOr<std::unique_ptr<NetNs>> NetNs::Create(const std::string& suffix) {
  std::string name = TestName(suffix);
  RETURN_IF_ERROR(ToStatus(RunCommand({"ip", "netns", "add", name})));
  std::unique_ptr<NetNs> ns(new NetNs(name));
  RETURN_IF_ERROR(ns->LoUp());
  return ns;
}

NetNs::~NetNs() { RunCommand({"ip", "netns", "del", name_}); }

CommandResult NetNs::Ip(const std::vector<std::string>& args) const {
  std::vector<std::string> argv = {"ip", "-n", name_};
  argv.insert(argv.end(), args.begin(), args.end());
  return RunCommand(argv);
}

CommandResult NetNs::Run(const std::vector<std::string>& argv,
                         std::chrono::milliseconds timeout) const {
  std::vector<std::string> full = {"ip", "netns", "exec", name_};
  full.insert(full.end(), argv.begin(), argv.end());
  return RunCommand(full, timeout);
}

absl::Status NetNs::LoUp() const { return LinkUp("lo"); }

absl::Status NetNs::LinkUp(const std::string& ifname) const {
  return ToStatus(Ip({"link", "set", "dev", ifname, "up"}));
}

absl::Status NetNs::AddAddress(const std::string& ifname, const std::string& cidr) const {
  return ToStatus(Ip({"addr", "add", cidr, "dev", ifname}));
}

absl::StatusOr<std::unique_ptr<VethPair>> VethPair::Create(const NetNs& ns_a,
                                                           const std::string& name_a,
                                                           const NetNs& ns_b,
                                                           const std::string& name_b) {
  if (name_a.size() > 15 || name_b.size() > 15) {
    return absl::InvalidArgumentError(
        fmt::format("veth names must be at most 15 characters: {} {}", name_a, name_b));
  }
  RETURN_IF_ERROR(ToStatus(RunCommand({"ip", "link", "add", name_a, "netns", ns_a.name(),
                                       "type", "veth", "peer", "name", name_b, "netns",
                                       ns_b.name()})));
  return std::unique_ptr<VethPair>(new VethPair(ns_a, name_a, name_b));
}

VethPair::~VethPair() { ns_a_.Ip({"link", "del", name_a_}); }

absl::StatusOr<NetLink2> MakeLinkedPair(const std::string& suffix_a, const std::string& cidr_a,
                                        const std::string& suffix_b, const std::string& cidr_b) {
  NetLink2 link;
  ASSIGN_OR_RETURN(link.a, NetNs::Create(suffix_a));
  ASSIGN_OR_RETURN(link.b, NetNs::Create(suffix_b));
  ASSIGN_OR_RETURN(link.veth, VethPair::Create(*link.a, "veth-a", *link.b, "veth-b"));
  RETURN_IF_ERROR(link.a->AddAddress("veth-a", cidr_a));
  RETURN_IF_ERROR(link.b->AddAddress("veth-b", cidr_b));
  RETURN_IF_ERROR(link.a->LinkUp("veth-a"));
  RETURN_IF_ERROR(link.b->LinkUp("veth-b"));
  return link;
}

absl::Status AddBridge(const NetNs& ns, const std::string& bridge) {
  RETURN_IF_ERROR(ToStatus(ns.Ip({"link", "add", "name", bridge, "type", "bridge"})));
  return ns.LinkUp(bridge);
}

absl::StatusOr<std::unique_ptr<VethPair>> JoinBridge(const NetNs& sw, const std::string& bridge,
                                                     const std::string& port_if,
                                                     const NetNs& host,
                                                     const std::string& host_if,
                                                     const std::string& cidr) {
  ASSIGN_OR_RETURN(auto veth, VethPair::Create(host, host_if, sw, port_if));
  RETURN_IF_ERROR(ToStatus(sw.Ip({"link", "set", "dev", port_if, "master", bridge})));
  RETURN_IF_ERROR(sw.LinkUp(port_if));
  RETURN_IF_ERROR(host.AddAddress(host_if, cidr));
  RETURN_IF_ERROR(host.LinkUp(host_if));
  return veth;
}

}  // namespace faultline::itest
