#include "tests/integration/netlink/test_net.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <fmt/format.h>
#include <net/if.h>
#include <netinet/in.h>
#include <netlink/netlink.h>
#include <netlink/route/addr.h>
#include <netlink/route/link.h>
#include <netlink/route/link/veth.h>
#include <netlink/socket.h>
#include <poll.h>
#include <sched.h>
#include <spawn.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <memory>
#include <thread>

#include "agent/faults/netns.h"

extern char** environ;

namespace faultline::testing {
namespace {

using Clock = std::chrono::steady_clock;

struct SockDeleter {
  void operator()(nl_sock* s) const { nl_socket_free(s); }
};
struct LinkDeleter {
  void operator()(rtnl_link* l) const { rtnl_link_put(l); }
};
struct AddrDeleter {
  void operator()(rtnl_addr* a) const { rtnl_addr_put(a); }
};
struct NlAddrDeleter {
  void operator()(nl_addr* a) const { nl_addr_put(a); }
};
using SockPtr = std::unique_ptr<nl_sock, SockDeleter>;
using LinkPtr = std::unique_ptr<rtnl_link, LinkDeleter>;

absl::StatusOr<SockPtr> Connect() {
  SockPtr sock(nl_socket_alloc());
  if (!sock) return absl::InternalError("nl_socket_alloc");
  if (int err = nl_connect(sock.get(), NETLINK_ROUTE); err < 0) {
    return absl::InternalError(fmt::format("nl_connect: {}", nl_geterror(err)));
  }
  return sock;
}

absl::Status SetUp(nl_sock* sock, const std::string& ifname) {
  rtnl_link* raw = nullptr;
  if (int err = rtnl_link_get_kernel(sock, 0, ifname.c_str(), &raw); err < 0) {
    return absl::InternalError(fmt::format("get link {}: {}", ifname, nl_geterror(err)));
  }
  LinkPtr orig(raw);
  LinkPtr change(rtnl_link_alloc());
  rtnl_link_set_flags(change.get(), IFF_UP);
  if (int err = rtnl_link_change(sock, orig.get(), change.get(), 0); err < 0) {
    return absl::InternalError(fmt::format("set {} up: {}", ifname, nl_geterror(err)));
  }
  return absl::OkStatus();
}

absl::Status Errno(const std::string& what) {
  return absl::InternalError(fmt::format("{}: {}", what, std::strerror(errno)));
}

absl::StatusOr<sockaddr_in> Addr(const std::string& addr, uint16_t port) {
  sockaddr_in sa{};
  sa.sin_family = AF_INET;
  sa.sin_port = htons(port);
  if (::inet_pton(AF_INET, addr.c_str(), &sa.sin_addr) != 1) {
    return absl::InvalidArgumentError("bad address " + addr);
  }
  return sa;
}

double Seconds(Clock::duration d) { return std::chrono::duration<double>(d).count(); }

}  // namespace

TestNetns::TestNetns(const std::string& suffix)
    : label_(fmt::format("fltest-{}-{}", ::getpid(), suffix)) {
  std::thread worker([this] {
    if (::unshare(CLONE_NEWNET) != 0) return;
    fd_ = ::open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC);
  });
  worker.join();
  if (fd_ >= 0) {
    absl::Status up = Run([] {
      auto sock = Connect();
      if (!sock.ok()) return sock.status();
      return SetUp(sock->get(), "lo");
    });
    if (!up.ok()) {
      ::close(fd_);
      fd_ = -1;
    }
  }
}

TestNetns::~TestNetns() {
  if (fd_ >= 0) ::close(fd_);
}

std::string TestNetns::path() const { return fmt::format("/proc/{}/fd/{}", ::getpid(), fd_); }

absl::Status TestNetns::Run(const std::function<absl::Status()>& fn) const {
  return agent::RunInNetns(path(), fn);
}

absl::Status CreateVethPair(const TestNetns& a, const std::string& name_a, const TestNetns& b,
                            const std::string& name_b) {
  absl::Status s = a.Run([&]() -> absl::Status {
    auto sock = Connect();
    if (!sock.ok()) return sock.status();
    LinkPtr link(rtnl_link_veth_alloc());
    if (!link) return absl::InternalError("rtnl_link_veth_alloc");
    rtnl_link_set_name(link.get(), name_a.c_str());
    rtnl_link* peer = rtnl_link_veth_get_peer(link.get());
    rtnl_link_set_name(peer, name_b.c_str());
    rtnl_link_set_ns_fd(peer, b.fd());
    rtnl_link_put(peer);
    if (int err = rtnl_link_add(sock->get(), link.get(), NLM_F_CREATE | NLM_F_EXCL); err < 0) {
      return absl::InternalError(fmt::format("add veth {}: {}", name_a, nl_geterror(err)));
    }
    return SetUp(sock->get(), name_a);
  });
  if (!s.ok()) return s;
  return b.Run([&]() -> absl::Status {
    auto sock = Connect();
    if (!sock.ok()) return sock.status();
    return SetUp(sock->get(), name_b);
  });
}

absl::Status AddAddress(const TestNetns& ns, const std::string& ifname, const std::string& cidr) {
  return ns.Run([&]() -> absl::Status {
    auto sock = Connect();
    if (!sock.ok()) return sock.status();
    const unsigned index = ::if_nametoindex(ifname.c_str());
    if (index == 0) return Errno("if_nametoindex " + ifname);
    nl_addr* raw = nullptr;
    if (int err = nl_addr_parse(cidr.c_str(), AF_INET, &raw); err < 0) {
      return absl::InvalidArgumentError(fmt::format("{}: {}", cidr, nl_geterror(err)));
    }
    std::unique_ptr<nl_addr, NlAddrDeleter> local(raw);
    std::unique_ptr<rtnl_addr, AddrDeleter> addr(rtnl_addr_alloc());
    rtnl_addr_set_ifindex(addr.get(), static_cast<int>(index));
    rtnl_addr_set_local(addr.get(), local.get());
    // Usable at once: no duplicate address detection wait.
    if (int err = rtnl_addr_add(sock->get(), addr.get(), 0); err < 0) {
      return absl::InternalError(fmt::format("add {} to {}: {}", cidr, ifname, nl_geterror(err)));
    }
    return absl::OkStatus();
  });
}

absl::StatusOr<int> SocketIn(const TestNetns& ns, int type) {
  int fd = -1;
  absl::Status s = ns.Run([&]() -> absl::Status {
    fd = ::socket(AF_INET, type | SOCK_CLOEXEC, 0);
    if (fd < 0) return Errno("socket");
    return absl::OkStatus();
  });
  if (!s.ok()) return s;
  return fd;
}

absl::StatusOr<double> MeasureTcpThroughput(const TestNetns& from_ns, const TestNetns& to_ns,
                                            const std::string& addr, uint16_t port,
                                            double warmup_seconds, double seconds) {
  auto sa = Addr(addr, port);
  if (!sa.ok()) return sa.status();
  auto listener = SocketIn(to_ns, SOCK_STREAM);
  if (!listener.ok()) return listener.status();
  const int lfd = *listener;
  int one = 1;
  ::setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
  if (::bind(lfd, reinterpret_cast<const sockaddr*>(&*sa), sizeof(*sa)) != 0 ||
      ::listen(lfd, 1) != 0) {
    absl::Status e = Errno(fmt::format("bind/listen {}:{}", addr, port));
    ::close(lfd);
    return e;
  }
  auto sender = SocketIn(from_ns, SOCK_STREAM);
  if (!sender.ok()) {
    ::close(lfd);
    return sender.status();
  }
  const int sfd = *sender;
  if (::connect(sfd, reinterpret_cast<const sockaddr*>(&*sa), sizeof(*sa)) != 0) {
    absl::Status e = Errno(fmt::format("connect {}:{}", addr, port));
    ::close(sfd);
    ::close(lfd);
    return e;
  }
  const int rfd = ::accept4(lfd, nullptr, nullptr, SOCK_CLOEXEC);
  ::close(lfd);
  if (rfd < 0) {
    ::close(sfd);
    return Errno("accept");
  }
  const auto start = Clock::now();
  const auto measure_from = start + std::chrono::duration_cast<Clock::duration>(
                                        std::chrono::duration<double>(warmup_seconds));
  const auto end = measure_from + std::chrono::duration_cast<Clock::duration>(
                                      std::chrono::duration<double>(seconds));
  std::atomic<bool> stop{false};
  // Small send buffer: the sender stays close to what the link carries.
  int sndbuf = 16 * 1024;
  ::setsockopt(sfd, SOL_SOCKET, SO_SNDBUF, &sndbuf, sizeof(sndbuf));
  timeval tv{0, 100 * 1000};
  ::setsockopt(sfd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
  std::thread writer([&] {
    std::vector<char> buf(16 * 1024, 'x');
    while (!stop.load()) {
      if (::send(sfd, buf.data(), buf.size(), MSG_NOSIGNAL) < 0 && errno != EAGAIN &&
          errno != EINTR) {
        break;
      }
    }
  });
  uint64_t counted = 0;
  std::vector<char> buf(64 * 1024);
  double first_counted = -1;
  Clock::time_point last_read;
  while (Clock::now() < end) {
    pollfd p{rfd, POLLIN, 0};
    const int remaining_ms =
        static_cast<int>(std::chrono::duration_cast<std::chrono::milliseconds>(end - Clock::now())
                             .count());
    if (::poll(&p, 1, std::max(1, std::min(remaining_ms, 100))) <= 0) continue;
    const ssize_t n = ::recv(rfd, buf.data(), buf.size(), MSG_DONTWAIT);
    if (n <= 0) {
      if (n < 0 && (errno == EAGAIN || errno == EINTR)) continue;
      break;
    }
    const auto now = Clock::now();
    if (now >= measure_from) {
      if (first_counted < 0) first_counted = Seconds(now - start);
      counted += static_cast<uint64_t>(n);
      last_read = now;
    }
  }
  stop = true;
  ::shutdown(sfd, SHUT_RDWR);
  ::shutdown(rfd, SHUT_RDWR);
  writer.join();
  ::close(sfd);
  ::close(rfd);
  return static_cast<double>(counted) / seconds;
}

UdpEchoServer::UdpEchoServer(const TestNetns& ns, const std::string& addr, uint16_t port) {
  auto sa = Addr(addr, port);
  if (!sa.ok()) {
    status_ = sa.status();
    return;
  }
  auto fd = SocketIn(ns, SOCK_DGRAM);
  if (!fd.ok()) {
    status_ = fd.status();
    return;
  }
  fd_ = *fd;
  if (::bind(fd_, reinterpret_cast<const sockaddr*>(&*sa), sizeof(*sa)) != 0) {
    status_ = Errno(fmt::format("bind udp {}:{}", addr, port));
    return;
  }
  if (::pipe2(stop_pipe_, O_CLOEXEC) != 0) {
    status_ = Errno("pipe");
    return;
  }
  thread_ = std::thread([this] {
    char buf[2048];
    for (;;) {
      pollfd p[2] = {{fd_, POLLIN, 0}, {stop_pipe_[0], POLLIN, 0}};
      if (::poll(p, 2, 1000) < 0 && errno != EINTR) return;
      if (p[1].revents) return;
      if (!(p[0].revents & POLLIN)) continue;
      sockaddr_storage from{};
      socklen_t len = sizeof(from);
      const ssize_t n = ::recvfrom(fd_, buf, sizeof(buf), MSG_DONTWAIT,
                                   reinterpret_cast<sockaddr*>(&from), &len);
      if (n > 0) ::sendto(fd_, buf, static_cast<size_t>(n), 0, reinterpret_cast<sockaddr*>(&from), len);
    }
  });
}

UdpEchoServer::~UdpEchoServer() {
  if (thread_.joinable()) {
    char c = 'q';
    (void)!::write(stop_pipe_[1], &c, 1);
    thread_.join();
  }
  for (int fd : {fd_, stop_pipe_[0], stop_pipe_[1]}) {
    if (fd >= 0) ::close(fd);
  }
}

absl::StatusOr<double> MeasureUdpRtt(const TestNetns& from_ns, const std::string& addr,
                                     uint16_t port, int count, int timeout_ms, int* received) {
  auto sa = Addr(addr, port);
  if (!sa.ok()) return sa.status();
  auto fd = SocketIn(from_ns, SOCK_DGRAM);
  if (!fd.ok()) return fd.status();
  const int s = *fd;
  if (::connect(s, reinterpret_cast<const sockaddr*>(&*sa), sizeof(*sa)) != 0) {
    absl::Status e = Errno("connect udp");
    ::close(s);
    return e;
  }
  std::vector<double> rtts;
  for (uint32_t seq = 0; seq < static_cast<uint32_t>(count); ++seq) {
    const auto sent = Clock::now();
    if (::send(s, &seq, sizeof(seq), 0) < 0) continue;
    const auto deadline = sent + std::chrono::milliseconds(timeout_ms);
    while (Clock::now() < deadline) {
      pollfd p{s, POLLIN, 0};
      const int left = static_cast<int>(
          std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()).count());
      if (::poll(&p, 1, std::max(1, left)) <= 0) continue;
      uint32_t got = 0;
      if (::recv(s, &got, sizeof(got), MSG_DONTWAIT) == sizeof(got) && got == seq) {
        rtts.push_back(Seconds(Clock::now() - sent) * 1000.0);
        break;
      }
    }
  }
  ::close(s);
  *received = static_cast<int>(rtts.size());
  if (rtts.empty()) return -1.0;
  std::sort(rtts.begin(), rtts.end());
  return rtts[rtts.size() / 2];
}

absl::StatusOr<std::string> RunCapture(const std::vector<std::string>& argv) {
  int out[2];
  if (::pipe2(out, O_CLOEXEC) != 0) return Errno("pipe");
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_adddup2(&actions, out[1], 1);
  posix_spawn_file_actions_adddup2(&actions, out[1], 2);
  std::vector<char*> args;
  for (const std::string& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  pid_t pid = 0;
  const int rc = ::posix_spawnp(&pid, args[0], &actions, nullptr, args.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  ::close(out[1]);
  if (rc != 0) {
    ::close(out[0]);
    return absl::InternalError(fmt::format("spawn {}: {}", argv[0], std::strerror(rc)));
  }
  std::string output;
  char buf[4096];
  ssize_t n;
  while ((n = ::read(out[0], buf, sizeof(buf))) > 0) output.append(buf, static_cast<size_t>(n));
  ::close(out[0]);
  int status = 0;
  ::waitpid(pid, &status, 0);
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
    return absl::InternalError(fmt::format("{} failed ({}): {}", argv[0], status, output));
  }
  return output;
}

absl::StatusOr<std::string> TcDump(const TestNetns& ns, const std::string& dev) {
  std::string all;
  for (const char* what : {"qdisc", "class", "filter"}) {
    auto out = RunCapture({"nsenter", "--net=" + ns.path(), "tc", what, "show", "dev", dev});
    if (!out.ok()) return out.status();
    all += fmt::format("== tc {} show dev {}\n{}", what, dev, *out);
  }
  return all;
}

}  // namespace faultline::testing
