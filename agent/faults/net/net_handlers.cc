#include "agent/faults/net/net_handlers.h"

#include <fmt/format.h>
#include <fmt/ranges.h>
#include <linux/pkt_sched.h>
#include <spdlog/spdlog.h>
#include <sys/socket.h>
#include <sys/stat.h>

#include <algorithm>

#include "agent/faults/net/tc_netlink.h"
#include "agent/faults/net/tc_spec.h"
#include "agent/faults/netns.h"
#include "common/status_macros.h"
#include "common/units.h"

namespace faultline::agent {
namespace {

using net::Destination;
using net::QdiscInfo;
using net::TcPlan;
using net::TcSocket;

// The htb class rate for netem without a rate: far above what the shaped
// traffic can reach, so the class only carries packets to the netem child.
constexpr uint64_t kPassRate = 10'000'000'000ull / 8;

std::string NetnsDescription(const v1::FaultSpec& spec) {
  if (spec.netns_pid() > 0) return fmt::format("the network namespace of pid {}", spec.netns_pid());
  if (!spec.netns().empty()) return fmt::format("netns {}", spec.netns());
  return "the agent's network namespace";
}

// The rate as written, for messages.
const std::string& RateText(const v1::FaultSpec& spec) {
  return spec.has_netem() ? spec.netem().rate() : spec.bandwidth().rate();
}

std::string Describe(const TcPlan& plan, const v1::FaultSpec& spec) {
  std::vector<std::string> parts;
  if (!plan.netem) {
    parts.push_back("rate " + spec.bandwidth().rate());
  } else {
    const v1::NetemFault& n = spec.netem();
    for (const auto& [label, value] :
         {std::pair{"delay", &n.delay()}, std::pair{"jitter", &n.jitter()},
          std::pair{"correlation", &n.delay_correlation()}, std::pair{"loss", &n.loss()},
          std::pair{"duplicate", &n.duplicate()}, std::pair{"corrupt", &n.corrupt()},
          std::pair{"reorder", &n.reorder()}, std::pair{"rate", &n.rate()}}) {
      if (!value->empty()) parts.push_back(fmt::format("{} {}", label, *value));
    }
  }
  std::string out = fmt::format("{} {}", spec::KindName(spec), fmt::join(parts, " "));
  if (!plan.to.empty()) {
    std::vector<std::string> dests;
    for (const Destination& d : plan.to) dests.push_back(d.Canonical());
    out += fmt::format(" to {}", fmt::join(dests, ","));
  }
  return out;
}

// The kernel said NOT_FOUND while adding a `kind` object: the module is missing.
absl::Status MissingKind(const absl::Status& s, const std::string& module) {
  if (absl::IsNotFound(s)) return absl::FailedPreconditionError(net::MissingModuleMessage(module));
  return s;
}

// The netem and bandwidth handlers; stateless, so thread-safe. Owned by the
// FaultManager's registry.
class TcFaultHandler : public FaultHandler {
 public:
  explicit TcFaultHandler(v1::FaultSpec::KindCase kind_case) : kind_case_(kind_case) {}

  v1::FaultSpec::KindCase kind_case() const override { return kind_case_; }

  absl::Status Validate(const v1::FaultSpec& spec, const FaultContext& /*ctx*/) const override {
    return ResolveNetnsPath(spec).status();
  }

  absl::StatusOr<std::vector<std::string>> Plan(const v1::FaultSpec& spec,
                                                const FaultContext& ctx,
                                                v1::FaultRecord* record) const override {
    RETURN_IF_ERROR(Validate(spec, ctx));
    ASSIGN_OR_RETURN(TcPlan plan, net::ParseTcSpec(spec));
    ASSIGN_OR_RETURN(std::string netns_path, ResolveNetnsPath(spec));

    int ifindex = 0;
    QdiscInfo prior_root;
    bool has_root = false;
    RETURN_IF_ERROR(RunInNetns(netns_path, [&]() -> absl::Status {
      ASSIGN_OR_RETURN(TcSocket sock, TcSocket::Connect());
      auto index = sock.LinkIndex(plan.interface);
      if (absl::IsNotFound(index.status())) {
        return absl::InvalidArgumentError(fmt::format("interface: no interface \"{}\" in {}",
                                                      plan.interface, NetnsDescription(spec)));
      }
      RETURN_IF_ERROR(index.status());
      ifindex = *index;
      ASSIGN_OR_RETURN(auto qdiscs, sock.Qdiscs(ifindex));
      for (const QdiscInfo& q : qdiscs) {
        if (q.parent == TC_H_ROOT) {
          prior_root = q;
          has_root = true;
        }
      }
      return absl::OkStatus();
    }));
    RETURN_IF_ERROR(CheckRoot(plan.interface, has_root, prior_root));
    // After the input checks, so a typo is reported as such on any kernel.
    RETURN_IF_ERROR(SupportsPlan(plan));

    const std::string prior =
        has_root ? fmt::format("{} {}", prior_root.kind, net::FormatHandle(prior_root.handle))
                 : "none";
    v1::NetState* state = record->mutable_net();
    state->set_netns_path(netns_path);
    state->set_ifindex(ifindex);
    state->set_ifname(plan.interface);
    state->set_qdisc_handle(net::kRootHandle);
    state->set_qdisc_parent(TC_H_ROOT);
    state->set_detail(fmt::format("prior root qdisc: {}", prior));
    const std::string what = Describe(plan, spec);
    record->set_target(spec.netns().empty() && spec.netns_pid() == 0
                           ? fmt::format("{}: {}", plan.interface, what)
                           : fmt::format("{} in {}: {}", plan.interface, NetnsDescription(spec),
                                         what));

    std::vector<std::string> lines;
    const std::string on = fmt::format("on {} in {}", plan.interface, NetnsDescription(spec));
    if (!plan.Classful()) {
      lines.push_back(fmt::format("add root qdisc {} fa17: {} (in place of the kernel default {})",
                                  plan.netem ? "netem" : "tbf", on, prior));
    } else {
      lines.push_back(fmt::format("add root qdisc htb fa17: {} (in place of the kernel default {})",
                                  on, prior));
      lines.push_back(fmt::format("add class htb fa17:1 rate {}",
                                  plan.rate ? RateText(spec) : std::string("10gbit (pass-through)")));
      if (plan.netem) lines.push_back("add qdisc netem fa18: under fa17:1");
      for (const Destination& d : plan.to) {
        lines.push_back(fmt::format("add u32 filter dst {} -> fa17:1", d.Canonical()));
      }
      if (plan.to.empty()) lines.push_back("all traffic -> fa17:1");
      else lines.push_back("other traffic: unchanged (htb direct queue)");
    }
    lines.push_back(fmt::format("effect: {}", what));
    return lines;
  }

  absl::Status Apply(v1::FaultRecord* record, const FaultContext& /*ctx*/) const override {
    ASSIGN_OR_RETURN(TcPlan plan, net::ParseTcSpec(record->spec()));
    const v1::NetState& state = record->net();
    if (state.ifindex() == 0) return absl::FailedPreconditionError("net: record was not planned");
    return RunInNetns(state.netns_path(), [&]() -> absl::Status {
      ASSIGN_OR_RETURN(TcSocket sock, TcSocket::Connect());
      auto name = sock.LinkName(state.ifindex());
      if (!name.ok() || *name != state.ifname()) {
        return absl::FailedPreconditionError(fmt::format(
            "interface: {} (index {}) is gone or was renamed since the plan", state.ifname(),
            state.ifindex()));
      }
      absl::Status s = Build(sock, state.ifindex(), plan);
      if (s.ok()) return s;
      // All or nothing: the root qdisc carries everything else we added.
      absl::Status undo = sock.DeleteQdisc(state.ifindex(), TC_H_ROOT, net::kRootHandle);
      if (!undo.ok() && !absl::IsNotFound(undo)) {
        spdlog::error("{} on {}: rollback after failed apply failed: {}", Kind(), state.ifname(),
                      std::string(undo.message()));
      }
      return s;
    });
  }

  absl::Status Revert(const v1::FaultRecord& record, const FaultContext& /*ctx*/) const override {
    const v1::NetState& state = record.net();
    if (state.ifindex() == 0 && state.ifname().empty()) return absl::OkStatus();  // never planned
    if (!net::IsFaultlineHandle(state.qdisc_handle())) {
      return absl::FailedPreconditionError(fmt::format(
          "net: record names qdisc {}, which is not Faultline's; not deleting it",
          net::FormatHandle(state.qdisc_handle())));
    }
    if (!state.netns_path().empty()) {
      struct stat st {};
      if (::stat(state.netns_path().c_str(), &st) != 0) {
        return absl::OkStatus();  // the namespace, and its qdiscs, are gone
      }
    }
    return RunInNetns(state.netns_path(), [&]() -> absl::Status {
      ASSIGN_OR_RETURN(TcSocket sock, TcSocket::Connect());
      // The index may have been reused by another interface; trust it only
      // while the name matches.
      int ifindex = state.ifindex();
      auto name = sock.LinkName(ifindex);
      if (!name.ok() || *name != state.ifname()) {
        auto by_name = sock.LinkIndex(state.ifname());
        if (absl::IsNotFound(by_name.status())) return absl::OkStatus();  // gone with its qdiscs
        RETURN_IF_ERROR(by_name.status());
        ifindex = *by_name;
      }
      absl::Status s = sock.DeleteQdisc(ifindex, state.qdisc_parent(), state.qdisc_handle());
      if (absl::IsNotFound(s)) return absl::OkStatus();
      return s;
    });
  }

  absl::StatusOr<std::vector<std::string>> Sweep(const FaultContext& /*ctx*/) const override {
    ASSIGN_OR_RETURN(TcSocket sock, TcSocket::Connect());
    ASSIGN_OR_RETURN(auto qdiscs, sock.Qdiscs(0));
    // Roots first: deleting one takes its children with it.
    std::stable_sort(qdiscs.begin(), qdiscs.end(), [](const QdiscInfo& a, const QdiscInfo& b) {
      return (a.parent == TC_H_ROOT) > (b.parent == TC_H_ROOT);
    });
    std::vector<std::string> removed;
    for (const QdiscInfo& q : qdiscs) {
      if (!net::IsFaultlineHandle(q.handle)) continue;
      absl::Status s = sock.DeleteQdisc(q.ifindex, q.parent, q.handle);
      if (absl::IsNotFound(s)) continue;
      RETURN_IF_ERROR(s);
      auto name = sock.LinkName(q.ifindex);
      removed.push_back(fmt::format("qdisc {} {} on {}", q.kind, net::FormatHandle(q.handle),
                                    name.ok() ? *name : std::to_string(q.ifindex)));
    }
    return removed;
  }

  absl::Status HostSupports(const FaultContext& /*ctx*/) const override {
    return net::ProbeQdiscKind(kind_case_ == v1::FaultSpec::kNetem ? "netem" : "tbf");
  }

 private:
  // The kernel modules this plan needs.
  absl::Status SupportsPlan(const TcPlan& plan) const {
    if (plan.netem) RETURN_IF_ERROR(net::ProbeQdiscKind("netem"));
    if (plan.Classful()) RETURN_IF_ERROR(net::ProbeQdiscKind("htb"));
    if (!plan.netem && !plan.Classful()) RETURN_IF_ERROR(net::ProbeQdiscKind("tbf"));
    return absl::OkStatus();
  }

  static absl::Status CheckRoot(const std::string& ifname, bool has_root, const QdiscInfo& root) {
    if (!has_root || net::IsKernelDefaultRoot(root.handle)) return absl::OkStatus();
    if (net::IsFaultlineHandle(root.handle)) {
      return absl::FailedPreconditionError(fmt::format(
          "interface: {} already has Faultline's root qdisc {} {} (another netem or bandwidth "
          "fault is active there); revert that fault first",
          ifname, root.kind, net::FormatHandle(root.handle)));
    }
    return absl::FailedPreconditionError(fmt::format(
        "interface: {} already has root qdisc {} {} (not Faultline's); refusing to replace it",
        ifname, root.kind, net::FormatHandle(root.handle)));
  }

  absl::Status Build(const TcSocket& sock, int ifindex, const TcPlan& plan) const {
    if (!plan.Classful()) {
      absl::Status s = plan.netem
                           ? MissingKind(sock.AddNetem(ifindex, TC_H_ROOT, net::kRootHandle,
                                                       plan.params),
                                         "sch_netem")
                           : MissingKind(sock.AddTbf(ifindex, TC_H_ROOT, net::kRootHandle,
                                                     net::TbfParamsForRate(plan.rate)),
                                         "sch_tbf");
      return RootAddError(s, plan.interface);
    }
    RETURN_IF_ERROR(RootAddError(
        MissingKind(sock.AddHtb(ifindex, TC_H_ROOT, net::kRootHandle, plan.to.empty() ? 1 : 0),
                    "sch_htb"),
        plan.interface));
    RETURN_IF_ERROR(MissingKind(
        sock.AddHtbClass(ifindex, net::kRootHandle, net::kShapedClass,
                         plan.rate ? plan.rate : kPassRate),
        "sch_htb"));
    if (plan.netem) {
      RETURN_IF_ERROR(MissingKind(
          sock.AddNetem(ifindex, net::kShapedClass, net::kChildHandle, plan.params), "sch_netem"));
    }
    for (const Destination& d : plan.to) {
      // One u32 table per protocol: the kernel wants distinct priorities.
      const uint16_t prio = d.family == AF_INET ? 1 : 2;
      RETURN_IF_ERROR(MissingKind(
          sock.AddU32Filter(ifindex, net::kRootHandle, prio, d, net::kShapedClass), "cls_u32"));
    }
    return absl::OkStatus();
  }

  // A root already there when we add ours (appeared after the plan).
  static absl::Status RootAddError(const absl::Status& s, const std::string& ifname) {
    if (absl::IsAlreadyExists(s)) {
      return absl::FailedPreconditionError(fmt::format(
          "interface: {} has a root qdisc that is not the kernel default (someone else's); "
          "refusing to replace it",
          ifname));
    }
    return s;
  }

  const v1::FaultSpec::KindCase kind_case_;
};

}  // namespace

std::unique_ptr<FaultHandler> MakeNetemHandler() {
  return std::make_unique<TcFaultHandler>(v1::FaultSpec::kNetem);
}
std::unique_ptr<FaultHandler> MakeBandwidthHandler() {
  return std::make_unique<TcFaultHandler>(v1::FaultSpec::kBandwidth);
}

}  // namespace faultline::agent
