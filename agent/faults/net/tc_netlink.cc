#include "agent/faults/net/tc_netlink.h"

#include <fcntl.h>
#include <fmt/format.h>
#include <linux/if_ether.h>
#include <linux/pkt_sched.h>
#include <netlink/errno.h>
#include <netlink/netlink.h>
#include <netlink/route/classifier.h>
#include <netlink/route/cls/u32.h>
#include <netlink/route/class.h>
#include <netlink/route/link.h>
#include <netlink/route/qdisc.h>
#include <netlink/route/qdisc/htb.h>
#include <netlink/route/qdisc/netem.h>
#include <netlink/route/qdisc/tbf.h>
#include <netlink/route/tc.h>
#include <netlink/socket.h>
#include <sched.h>
#include <sys/socket.h>

#include <cerrno>
#include <cstring>
#include <algorithm>
#include <chrono>
#include <map>
#include <mutex>
#include <set>
#include <thread>

#include "common/status_macros.h"

namespace faultline::agent::net {
namespace {

struct QdiscDeleter {
  void operator()(rtnl_qdisc* q) const { rtnl_qdisc_put(q); }
};
struct ClassDeleter {
  void operator()(rtnl_class* c) const { rtnl_class_put(c); }
};
struct ClsDeleter {
  void operator()(rtnl_cls* c) const { rtnl_cls_put(c); }
};
struct CacheDeleter {
  void operator()(nl_cache* c) const { nl_cache_free(c); }
};
struct LinkDeleter {
  void operator()(rtnl_link* l) const { rtnl_link_put(l); }
};
using QdiscPtr = std::unique_ptr<rtnl_qdisc, QdiscDeleter>;

// libnl error -> absl status; `what` says which object the call was about.
absl::Status NlError(int err, const std::string& what) {
  const int e = err < 0 ? -err : err;
  const std::string msg = fmt::format("{}: {}", what, nl_geterror(e));
  switch (e) {
    case NLE_EXIST:
      return absl::AlreadyExistsError(msg);
    case NLE_OBJ_NOTFOUND:
    case NLE_NODEV:
      return absl::NotFoundError(msg);
    case NLE_PERM:
    case NLE_NOACCESS:
      return absl::PermissionDeniedError(msg);
    case NLE_INVAL:
    case NLE_RANGE:
      return absl::InvalidArgumentError(msg);
    default:
      return absl::InternalError(msg);
  }
}

// A qdisc with ifindex, parent and handle set (libnl aborts without them), kind
// set first (the kind-specific setters need it).
absl::StatusOr<QdiscPtr> NewQdisc(int ifindex, uint32_t parent, uint32_t handle,
                                  const char* kind) {
  QdiscPtr q(rtnl_qdisc_alloc());
  if (!q) return absl::ResourceExhaustedError("out of memory allocating a qdisc");
  rtnl_tc* tc = TC_CAST(q.get());
  if (int err = rtnl_tc_set_kind(tc, kind); err < 0) {
    return NlError(err, fmt::format("qdisc kind {}", kind));
  }
  rtnl_tc_set_ifindex(tc, ifindex);
  rtnl_tc_set_parent(tc, parent);
  rtnl_tc_set_handle(tc, handle);
  return q;
}

constexpr int kCreateFlags = NLM_F_CREATE | NLM_F_EXCL;

}  // namespace

void TcSocket::SockDeleter::operator()(nl_sock* s) const { nl_socket_free(s); }

absl::StatusOr<TcSocket> TcSocket::Connect() {
  std::unique_ptr<nl_sock, SockDeleter> sock(nl_socket_alloc());
  if (!sock) return absl::ResourceExhaustedError("out of memory allocating a netlink socket");
  if (int err = nl_connect(sock.get(), NETLINK_ROUTE); err < 0) {
    return NlError(err, "netlink: connect");
  }
  // The socket must not outlive an exec'ed child's view of it.
  ::fcntl(nl_socket_get_fd(sock.get()), F_SETFD, FD_CLOEXEC);
  return TcSocket(std::move(sock));
}

absl::StatusOr<int> TcSocket::LinkIndex(const std::string& name) const {
  rtnl_link* raw = nullptr;
  int err = rtnl_link_get_kernel(sock_.get(), 0, name.c_str(), &raw);
  if (err < 0) return NlError(err, fmt::format("interface {}", name));
  std::unique_ptr<rtnl_link, LinkDeleter> link(raw);
  return rtnl_link_get_ifindex(link.get());
}

absl::StatusOr<std::string> TcSocket::LinkName(int ifindex) const {
  rtnl_link* raw = nullptr;
  int err = rtnl_link_get_kernel(sock_.get(), ifindex, nullptr, &raw);
  if (err < 0) return NlError(err, fmt::format("interface index {}", ifindex));
  std::unique_ptr<rtnl_link, LinkDeleter> link(raw);
  return std::string(rtnl_link_get_name(link.get()));
}

absl::StatusOr<std::vector<QdiscInfo>> TcSocket::Qdiscs(int ifindex) const {
  nl_cache* raw = nullptr;
  if (int err = rtnl_qdisc_alloc_cache(sock_.get(), &raw); err < 0) {
    return NlError(err, "netlink: dump qdiscs");
  }
  std::unique_ptr<nl_cache, CacheDeleter> cache(raw);
  std::vector<QdiscInfo> out;
  for (nl_object* obj = nl_cache_get_first(cache.get()); obj != nullptr;
       obj = nl_cache_get_next(obj)) {
    rtnl_tc* tc = TC_CAST(obj);
    QdiscInfo info;
    info.ifindex = rtnl_tc_get_ifindex(tc);
    if (ifindex != 0 && info.ifindex != ifindex) continue;
    info.handle = rtnl_tc_get_handle(tc);
    info.parent = rtnl_tc_get_parent(tc);
    const char* kind = rtnl_tc_get_kind(tc);
    info.kind = kind ? kind : "";
    out.push_back(info);
  }
  return out;
}

absl::Status TcSocket::AddNetem(int ifindex, uint32_t parent, uint32_t handle,
                                const NetemParams& p) const {
  ASSIGN_OR_RETURN(QdiscPtr q, NewQdisc(ifindex, parent, handle, "netem"));
  rtnl_qdisc* raw = q.get();
  // libnl takes microseconds for delay/jitter and the raw u32 fixed point for
  // probabilities (through int parameters).
  if (p.delay_us) rtnl_netem_set_delay(raw, static_cast<int>(p.delay_us));
  if (p.jitter_us) rtnl_netem_set_jitter(raw, static_cast<int>(p.jitter_us));
  if (p.delay_correlation) rtnl_netem_set_delay_correlation(raw, static_cast<int>(p.delay_correlation));
  if (p.loss) rtnl_netem_set_loss(raw, static_cast<int>(p.loss));
  if (p.duplicate) rtnl_netem_set_duplicate(raw, static_cast<int>(p.duplicate));
  if (p.corrupt) rtnl_netem_set_corruption_probability(raw, static_cast<int>(p.corrupt));
  if (p.reorder) {
    rtnl_netem_set_reorder_probability(raw, static_cast<int>(p.reorder));
    rtnl_netem_set_gap(raw, 1);
  }
  rtnl_netem_set_limit(raw, 10000);
  if (int err = rtnl_qdisc_add(sock_.get(), raw, kCreateFlags); err < 0) {
    return NlError(err, fmt::format("add netem qdisc {}", FormatHandle(handle)));
  }
  return absl::OkStatus();
}

absl::Status TcSocket::AddTbf(int ifindex, uint32_t parent, uint32_t handle,
                              const TbfParams& p) const {
  ASSIGN_OR_RETURN(QdiscPtr q, NewQdisc(ifindex, parent, handle, "tbf"));
  rtnl_qdisc_tbf_set_rate(q.get(), static_cast<int>(p.rate), static_cast<int>(p.burst), 0);
  rtnl_qdisc_tbf_set_limit(q.get(), static_cast<int>(p.limit));
  if (int err = rtnl_qdisc_add(sock_.get(), q.get(), kCreateFlags); err < 0) {
    return NlError(err, fmt::format("add tbf qdisc {}", FormatHandle(handle)));
  }
  return absl::OkStatus();
}

absl::Status TcSocket::AddHtb(int ifindex, uint32_t parent, uint32_t handle,
                              uint32_t default_minor) const {
  ASSIGN_OR_RETURN(QdiscPtr q, NewQdisc(ifindex, parent, handle, "htb"));
  rtnl_htb_set_defcls(q.get(), default_minor);
  if (int err = rtnl_qdisc_add(sock_.get(), q.get(), kCreateFlags); err < 0) {
    return NlError(err, fmt::format("add htb qdisc {}", FormatHandle(handle)));
  }
  return absl::OkStatus();
}

absl::Status TcSocket::AddHtbClass(int ifindex, uint32_t parent, uint32_t classid,
                                   uint64_t rate) const {
  std::unique_ptr<rtnl_class, ClassDeleter> c(rtnl_class_alloc());
  if (!c) return absl::ResourceExhaustedError("out of memory allocating a class");
  rtnl_tc* tc = TC_CAST(c.get());
  if (int err = rtnl_tc_set_kind(tc, "htb"); err < 0) return NlError(err, "class kind htb");
  rtnl_tc_set_ifindex(tc, ifindex);
  rtnl_tc_set_parent(tc, parent);
  rtnl_tc_set_handle(tc, classid);
  rtnl_htb_set_rate64(c.get(), rate);
  rtnl_htb_set_ceil64(c.get(), rate);
  // 10 ms of traffic (at least two frames) per round, as for tbf.
  const TbfParams sizing = TbfParamsForRate(rate);
  rtnl_htb_set_rbuffer(c.get(), sizing.burst);
  rtnl_htb_set_cbuffer(c.get(), sizing.burst);
  if (int err = rtnl_class_add(sock_.get(), c.get(), kCreateFlags); err < 0) {
    return NlError(err, fmt::format("add htb class {}", FormatHandle(classid)));
  }
  return absl::OkStatus();
}

absl::Status TcSocket::AddU32Filter(int ifindex, uint32_t parent, uint16_t prio,
                                    const Destination& dest, uint32_t classid) const {
  std::unique_ptr<rtnl_cls, ClsDeleter> cls(rtnl_cls_alloc());
  if (!cls) return absl::ResourceExhaustedError("out of memory allocating a filter");
  rtnl_tc* tc = TC_CAST(cls.get());
  if (int err = rtnl_tc_set_kind(tc, "u32"); err < 0) return NlError(err, "filter kind u32");
  rtnl_tc_set_ifindex(tc, ifindex);
  rtnl_tc_set_parent(tc, parent);
  rtnl_cls_set_prio(cls.get(), prio);
  rtnl_cls_set_protocol(cls.get(), dest.family == AF_INET ? ETH_P_IP : ETH_P_IPV6);
  for (const U32Key& key : BuildU32Keys(dest)) {
    if (int err = rtnl_u32_add_key(cls.get(), key.val, key.mask, key.off, 0); err < 0) {
      return NlError(err, "u32 key");
    }
  }
  rtnl_u32_set_classid(cls.get(), classid);
  rtnl_u32_set_cls_terminal(cls.get());
  if (int err = rtnl_cls_add(sock_.get(), cls.get(), kCreateFlags); err < 0) {
    return NlError(err, fmt::format("add u32 filter for {}", dest.Canonical()));
  }
  return absl::OkStatus();
}

absl::Status TcSocket::DeleteQdisc(int ifindex, uint32_t parent, uint32_t handle) const {
  // Look first: the kernel answers EINVAL, not ENOENT, when another qdisc sits
  // at `parent`, and only a qdisc with exactly our handle may go.
  ASSIGN_OR_RETURN(auto present, Qdiscs(ifindex));
  const bool found = std::any_of(present.begin(), present.end(), [&](const QdiscInfo& q) {
    return q.handle == handle && q.parent == parent;
  });
  if (!found) {
    return absl::NotFoundError(
        fmt::format("no qdisc {} under {}", FormatHandle(handle), FormatHandle(parent)));
  }
  // The kind is not needed to delete; libnl still wants parent and handle.
  QdiscPtr q(rtnl_qdisc_alloc());
  if (!q) return absl::ResourceExhaustedError("out of memory allocating a qdisc");
  rtnl_tc* tc = TC_CAST(q.get());
  rtnl_tc_set_ifindex(tc, ifindex);
  rtnl_tc_set_parent(tc, parent);
  rtnl_tc_set_handle(tc, handle);
  if (int err = rtnl_qdisc_delete(sock_.get(), q.get()); err < 0) {
    return NlError(err, fmt::format("delete qdisc {}", FormatHandle(handle)));
  }
  return absl::OkStatus();
}

std::string MissingModuleMessage(const std::string& module) {
  return fmt::format("kernel lacks {}: load the module or use a kernel that has it", module);
}

absl::Status ProbeQdiscKind(const std::string& kind) {
  // A kind once found stays (modules are not unloaded under a running agent);
  // a missing one is remembered for a few seconds only (Info asks on every
  // call), so loading the module helps soon.
  static std::mutex mu;
  static std::set<std::string> supported;
  static std::map<std::string, std::pair<std::chrono::steady_clock::time_point, absl::Status>>
      missing;
  constexpr auto kMissingTtl = std::chrono::seconds(5);
  {
    std::lock_guard<std::mutex> lock(mu);
    if (supported.count(kind) != 0) return absl::OkStatus();
    auto it = missing.find(kind);
    if (it != missing.end() && std::chrono::steady_clock::now() - it->second.first < kMissingTtl) {
      return it->second.second;
    }
  }
  absl::Status result;
  // unshare(CLONE_NEWNET) moves only this thread; the namespace dies with it.
  std::thread worker([&] {
    if (::unshare(CLONE_NEWNET) != 0) {
      result = absl::FailedPreconditionError(fmt::format(
          "cannot create a private network namespace to probe for sch_{}: {}", kind,
          std::strerror(errno)));
      return;
    }
    auto sock = TcSocket::Connect();
    if (!sock.ok()) {
      result = sock.status();
      return;
    }
    auto lo = sock->LinkIndex("lo");
    if (!lo.ok()) {
      result = lo.status();
      return;
    }
    absl::Status added;
    if (kind == "netem") {
      NetemParams p;
      p.delay_us = 1000;
      added = sock->AddNetem(*lo, TC_H_ROOT, kRootHandle, p);
    } else if (kind == "tbf") {
      added = sock->AddTbf(*lo, TC_H_ROOT, kRootHandle, TbfParamsForRate(125000));
    } else if (kind == "htb") {
      added = sock->AddHtb(*lo, TC_H_ROOT, kRootHandle, 0);
    } else {
      added = absl::InvalidArgumentError(fmt::format("no probe for qdisc kind {}", kind));
    }
    if (absl::IsNotFound(added)) {
      result = absl::FailedPreconditionError(MissingModuleMessage("sch_" + kind));
    } else if (!added.ok()) {
      result = absl::FailedPreconditionError(
          fmt::format("cannot probe for sch_{}: {}", kind, std::string(added.message())));
    }
  });
  worker.join();
  std::lock_guard<std::mutex> lock(mu);
  if (result.ok()) {
    supported.insert(kind);
    missing.erase(kind);
  } else {
    missing[kind] = {std::chrono::steady_clock::now(), result};
  }
  return result;
}

}  // namespace faultline::agent::net
