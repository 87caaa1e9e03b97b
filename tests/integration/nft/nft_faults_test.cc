// The partition and dns handlers against the real kernel: two network
// namespaces fltest-<pid>-a/b joined by a veth pair (10.77.0.1 <-> 10.77.0.2),
// the handlers called directly with `netns` set to "a". Every socket and every
// nft command of these tests runs inside those namespaces.
#include <arpa/inet.h>
#include <fcntl.h>
#include <fmt/format.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <functional>
#include <regex>
#include <thread>

#include "agent/faults/netns.h"
#include "agent/faults/nft/dns.h"
#include "agent/faults/nft/nft_rules.h"
#include "agent/faults/nft/nft_session.h"
#include "agent/faults/nft/partition.h"
#include "spec/fault_spec.h"
#include "harness/netns.h"
#include "harness/status_matchers.h"
#include "harness/test_dir.h"

namespace faultline::agent::nft {
namespace {

using ::testing::Contains;
using ::testing::HasSubstr;
using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

constexpr char kAddrA[] = "10.77.0.1";
constexpr char kAddrB[] = "10.77.0.2";
constexpr char kAddrB2[] = "10.77.0.3";  // a second address of b

// An fd closed on destruction.
class Fd {
 public:
  explicit Fd(int fd = -1) : fd_(fd) {}
  ~Fd() {
    if (fd_ >= 0) ::close(fd_);
  }
  Fd(Fd&& o) noexcept : fd_(o.fd_) { o.fd_ = -1; }
  Fd& operator=(Fd&& o) noexcept {
    std::swap(fd_, o.fd_);
    return *this;
  }
  int get() const { return fd_; }

 private:
  int fd_;
};

sockaddr_in Addr(const std::string& ip, int port) {
  sockaddr_in sa{};
  sa.sin_family = AF_INET;
  sa.sin_port = htons(static_cast<uint16_t>(port));
  ::inet_pton(AF_INET, ip.c_str(), &sa.sin_addr);
  return sa;
}

// A socket made inside `netns` belongs to that namespace for good.
absl::StatusOr<Fd> SocketIn(const std::string& netns, int type) {
  int fd = -1;
  absl::Status st = RunInNetns(netns, [&]() -> absl::Status {
    fd = ::socket(AF_INET, type | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) return absl::InternalError(std::strerror(errno));
    return absl::OkStatus();
  });
  if (!st.ok()) return st;
  return Fd(fd);
}

// A TCP listener on 0.0.0.0:port inside `netns`; accepted connections are
// drained by DrainAccepts().
absl::StatusOr<Fd> ListenTcp(const std::string& netns, int port) {
  auto fd = SocketIn(netns, SOCK_STREAM);
  if (!fd.ok()) return fd.status();
  int one = 1;
  ::setsockopt(fd->get(), SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
  sockaddr_in sa = Addr("0.0.0.0", port);
  if (::bind(fd->get(), reinterpret_cast<sockaddr*>(&sa), sizeof(sa)) != 0 ||
      ::listen(fd->get(), 128) != 0) {
    return absl::InternalError(fmt::format("listen :{}: {}", port, std::strerror(errno)));
  }
  return std::move(*fd);
}

void DrainAccepts(const Fd& listener) {
  for (int i = 0; i < 256; ++i) {
    int c = ::accept4(listener.get(), nullptr, nullptr, SOCK_CLOEXEC);
    if (c < 0) return;
    ::close(c);
  }
}

// Connects from inside `netns`; 0 on success, else the errno (ETIMEDOUT when
// nothing came back within `timeout`).
int TcpConnect(const std::string& netns, const std::string& ip, int port,
               std::chrono::milliseconds timeout) {
  auto fd = SocketIn(netns, SOCK_STREAM);
  if (!fd.ok()) return EBADF;
  sockaddr_in sa = Addr(ip, port);
  if (::connect(fd->get(), reinterpret_cast<sockaddr*>(&sa), sizeof(sa)) == 0) return 0;
  if (errno != EINPROGRESS) return errno;
  pollfd p{fd->get(), POLLOUT, 0};
  if (::poll(&p, 1, static_cast<int>(timeout.count())) <= 0) return ETIMEDOUT;
  int err = 0;
  socklen_t len = sizeof(err);
  ::getsockopt(fd->get(), SOL_SOCKET, SO_ERROR, &err, &len);
  return err;
}

// IPv6 variants: a listener on [::]:port (v6 only) and a connect to [ip]:port.
absl::StatusOr<Fd> ListenTcp6(const std::string& netns, int port) {
  int fd = -1;
  absl::Status st = RunInNetns(netns, [&]() -> absl::Status {
    fd = ::socket(AF_INET6, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    return fd < 0 ? absl::InternalError(std::strerror(errno)) : absl::OkStatus();
  });
  if (!st.ok()) return st;
  Fd owned(fd);
  int one = 1;
  ::setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one));
  ::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
  sockaddr_in6 sa{};
  sa.sin6_family = AF_INET6;
  sa.sin6_port = htons(static_cast<uint16_t>(port));
  if (::bind(fd, reinterpret_cast<sockaddr*>(&sa), sizeof(sa)) != 0 || ::listen(fd, 128) != 0) {
    return absl::InternalError(fmt::format("listen [::]:{}: {}", port, std::strerror(errno)));
  }
  return owned;
}

int TcpConnect6(const std::string& netns, const std::string& ip, int port,
                std::chrono::milliseconds timeout) {
  int fd = -1;
  if (!RunInNetns(netns, [&]() -> absl::Status {
        fd = ::socket(AF_INET6, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        return absl::OkStatus();
      }).ok() || fd < 0) {
    return EBADF;
  }
  Fd owned(fd);
  sockaddr_in6 sa{};
  sa.sin6_family = AF_INET6;
  sa.sin6_port = htons(static_cast<uint16_t>(port));
  ::inet_pton(AF_INET6, ip.c_str(), &sa.sin6_addr);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&sa), sizeof(sa)) == 0) return 0;
  if (errno != EINPROGRESS) return errno;
  pollfd p{fd, POLLOUT, 0};
  if (::poll(&p, 1, static_cast<int>(timeout.count())) <= 0) return ETIMEDOUT;
  int err = 0;
  socklen_t len = sizeof(err);
  ::getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len);
  return err;
}

// A UDP echo server on ip:port inside `netns`, answering on its own thread
// until destroyed.
class UdpEcho {
 public:
  static absl::StatusOr<std::unique_ptr<UdpEcho>> Start(const std::string& netns,
                                                        const std::string& ip, int port) {
    auto fd = SocketIn(netns, SOCK_DGRAM);
    if (!fd.ok()) return fd.status();
    sockaddr_in sa = Addr(ip, port);
    if (::bind(fd->get(), reinterpret_cast<sockaddr*>(&sa), sizeof(sa)) != 0) {
      return absl::InternalError(fmt::format("bind udp {}:{}: {}", ip, port, std::strerror(errno)));
    }
    return std::unique_ptr<UdpEcho>(new UdpEcho(std::move(*fd)));
  }
  int received() const { return received_; }
  ~UdpEcho() {
    stop_ = true;
    thread_.join();
  }

 private:
  explicit UdpEcho(Fd fd) : fd_(std::move(fd)), thread_([this] { Loop(); }) {}
  void Loop() {
    while (!stop_) {
      pollfd p{fd_.get(), POLLIN, 0};
      if (::poll(&p, 1, 50) <= 0) continue;
      char buf[512];
      sockaddr_in from{};
      socklen_t len = sizeof(from);
      ssize_t n = ::recvfrom(fd_.get(), buf, sizeof(buf), 0, reinterpret_cast<sockaddr*>(&from), &len);
      if (n > 0) ++received_;
      if (n > 0) ::sendto(fd_.get(), buf, n, 0, reinterpret_cast<sockaddr*>(&from), len);
    }
  }
  Fd fd_;
  std::atomic<bool> stop_{false};
  std::atomic<int> received_{0};
  std::thread thread_;
};

// Sends a datagram from inside `netns` and waits for the echo.
bool UdpRoundTrip(const std::string& netns, const std::string& ip, int port,
                  std::chrono::milliseconds timeout) {
  auto fd = SocketIn(netns, SOCK_DGRAM);
  if (!fd.ok()) return false;
  sockaddr_in sa = Addr(ip, port);
  const char msg[] = "fltest";
  if (::sendto(fd->get(), msg, sizeof(msg), 0, reinterpret_cast<sockaddr*>(&sa), sizeof(sa)) < 0) {
    return false;
  }
  pollfd p{fd->get(), POLLIN, 0};
  if (::poll(&p, 1, static_cast<int>(timeout.count())) <= 0) return false;
  char buf[64];
  return ::recv(fd->get(), buf, sizeof(buf), 0) == static_cast<ssize_t>(sizeof(msg));
}

class NftFaultsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto link = itest::MakeLinkedPair("a", std::string(kAddrA) + "/24", "b",
                                      std::string(kAddrB) + "/24");
    ASSERT_TRUE(link.ok()) << link.status().message();
    link_ = std::move(*link);
    ASSERT_OK(link_.b->AddAddress("veth-b", std::string(kAddrB2) + "/24"));
    // An operator's own table in a, which every fault must leave alone.
    ASSERT_OK(Nft(a(), "add table inet operator\n"
                       "add chain inet operator input { type filter hook input priority 0; policy accept; }\n"
                       "add rule inet operator input tcp dport 9999 accept\n"
                       "add table ip opnat\n")
                  .status());
    auto before = Nft(a(), "list ruleset");
    ASSERT_TRUE(before.ok()) << before.status().message();
    ruleset_before_ = *before;
    ASSERT_THAT(ruleset_before_, HasSubstr("table inet operator"));
  }

  std::string a() const { return link_.a->path(); }
  std::string b() const { return link_.b->path(); }

  static absl::StatusOr<std::string> Nft(const std::string& netns, const std::string& cmd) {
    return RunNft(netns, cmd);
  }
  std::string RulesetA() {
    auto r = Nft(a(), "list ruleset");
    return r.ok() ? *r : "ERROR: " + std::string(r.status().message());
  }
  bool TableInA(const std::string& table) {
    auto t = Nft(a(), "list tables");
    return t.ok() && t->find("table inet " + table + "\n") != std::string::npos;
  }

  v1::FaultSpec PartitionSpec(const std::vector<std::string>& peers) {
    v1::FaultSpec s;
    s.set_duration("60s");
    for (const auto& p : peers) s.mutable_partition()->add_peers(p);
    s.set_netns(link_.a->name());
    return s;
  }

  // spec::Validate + Validate + Plan + Apply as the FaultManager does it;
  // returns the record.
  absl::StatusOr<v1::FaultRecord> Inject(const FaultHandler& h, const v1::FaultSpec& spec,
                                         const std::string& id,
                                         std::vector<std::string>* changes = nullptr) {
    if (absl::Status st = spec::Validate(spec).status(); !st.ok()) return st;
    if (absl::Status st = h.Validate(spec, ctx_); !st.ok()) return st;
    v1::FaultRecord rec;
    rec.set_id(id);
    *rec.mutable_spec() = spec;
    auto plan = h.Plan(spec, ctx_, &rec);
    if (!plan.ok()) return plan.status();
    if (changes != nullptr) *changes = *plan;
    absl::Status st = h.Apply(&rec, ctx_);
    if (!st.ok()) return st;
    return rec;
  }

  itest::NetLink2 link_;
  std::string ruleset_before_;
  v1::Policy policy_;
  FaultContext ctx_{&policy_, nullptr, 0, {}, {}};
  PartitionHandler partition_;
};

TEST_F(NftFaultsTest, PartitionBlocksTcpBothWaysAndRevertRestores) {
  ASSERT_OK_AND_ASSIGN(Fd lb, ListenTcp(b(), 8080));
  ASSERT_OK_AND_ASSIGN(Fd la, ListenTcp(a(), 8081));
  ASSERT_EQ(TcpConnect(a(), kAddrB, 8080, 2s), 0);
  ASSERT_EQ(TcpConnect(b(), kAddrA, 8081, 2s), 0);

  std::vector<std::string> changes;
  ASSERT_OK_AND_ASSIGN(v1::FaultRecord rec,
                       Inject(partition_, PartitionSpec({"10.77.0.2/32"}), "p1", &changes));
  EXPECT_EQ(rec.net().nft_table(), "faultline-p1");
  EXPECT_EQ(rec.net().netns_path(), a());
  EXPECT_THAT(changes, Contains("nft add rule inet faultline-p1 output ip daddr @peers4 drop"));
  EXPECT_NE(RulesetA(), ruleset_before_);
  EXPECT_EQ(TcpConnect(a(), kAddrB, 8080, 500ms), ETIMEDOUT);  // egress dropped
  EXPECT_EQ(TcpConnect(b(), kAddrA, 8081, 500ms), ETIMEDOUT);  // ingress dropped
  // Other addresses of b are not peers.
  EXPECT_EQ(TcpConnect(a(), kAddrB2, 8080, 2s), 0);

  ASSERT_OK(partition_.Revert(rec, ctx_));
  EXPECT_EQ(TcpConnect(a(), kAddrB, 8080, 2s), 0);
  EXPECT_EQ(TcpConnect(b(), kAddrA, 8081, 2s), 0);
  EXPECT_EQ(RulesetA(), ruleset_before_);
  // Idempotent, and works from the stored record alone (a new process after a
  // crash: fresh handler, record parsed back from bytes).
  v1::FaultRecord reloaded;
  ASSERT_TRUE(reloaded.ParseFromString(rec.SerializeAsString()));
  PartitionHandler fresh;
  EXPECT_OK(fresh.Revert(reloaded, FaultContext{}));
  EXPECT_EQ(RulesetA(), ruleset_before_);
  DrainAccepts(lb);
  DrainAccepts(la);
}

TEST_F(NftFaultsTest, PlanChangesNothing) {
  v1::FaultRecord rec;
  rec.set_id("plan1");
  auto changes = partition_.Plan(PartitionSpec({"10.77.0.0/24"}), ctx_, &rec);
  ASSERT_TRUE(changes.ok()) << changes.status().message();
  EXPECT_EQ(rec.net().nft_table(), "faultline-plan1");
  EXPECT_THAT(*changes, Contains("nft create table inet faultline-plan1"));
  EXPECT_THAT(*changes, Contains("nft add element inet faultline-plan1 peers4 { 10.77.0.0/24 timeout 1m }"));
  EXPECT_EQ(RulesetA(), ruleset_before_);
  EXPECT_OK(partition_.Revert(rec, ctx_));  // a record whose Apply never ran
}

TEST_F(NftFaultsTest, PortsBlockOnlyThosePorts) {
  ASSERT_OK_AND_ASSIGN(Fd l1, ListenTcp(b(), 8080));
  ASSERT_OK_AND_ASSIGN(Fd l2, ListenTcp(b(), 8081));
  v1::FaultSpec spec = PartitionSpec({"10.77.0.0/24"});
  spec.mutable_partition()->add_ports(8080);
  spec.mutable_partition()->set_protocol(v1::PROTOCOL_TCP);
  ASSERT_OK_AND_ASSIGN(v1::FaultRecord rec, Inject(partition_, spec, "ports1"));
  EXPECT_EQ(TcpConnect(a(), kAddrB, 8080, 500ms), ETIMEDOUT);
  EXPECT_EQ(TcpConnect(a(), kAddrB, 8081, 2s), 0);
  ASSERT_OK(partition_.Revert(rec, ctx_));
  EXPECT_EQ(TcpConnect(a(), kAddrB, 8080, 2s), 0);
  EXPECT_EQ(RulesetA(), ruleset_before_);
  DrainAccepts(l1);
  DrainAccepts(l2);
}

TEST_F(NftFaultsTest, RejectRefusesAtOnce) {
  ASSERT_OK_AND_ASSIGN(Fd l, ListenTcp(b(), 8080));
  v1::FaultSpec spec = PartitionSpec({"10.77.0.2"});
  spec.mutable_partition()->set_reject(true);
  spec.mutable_partition()->set_direction(v1::DIRECTION_EGRESS);
  ASSERT_OK_AND_ASSIGN(v1::FaultRecord rec, Inject(partition_, spec, "rej1"));
  const auto start = Clock::now();
  EXPECT_EQ(TcpConnect(a(), kAddrB, 8080, 2s), ECONNREFUSED);
  EXPECT_LT(Clock::now() - start, 1s);
  // Egress only: b's datagrams still reach a; a's answers do not leave.
  ASSERT_OK_AND_ASSIGN(auto echo_a, UdpEcho::Start(a(), kAddrA, 7000));
  EXPECT_FALSE(UdpRoundTrip(b(), kAddrA, 7000, 500ms));
  EXPECT_EQ(echo_a->received(), 1);
  ASSERT_OK(partition_.Revert(rec, ctx_));
  EXPECT_EQ(TcpConnect(a(), kAddrB, 8080, 2s), 0);
  EXPECT_TRUE(UdpRoundTrip(b(), kAddrA, 7000, 2s));
  EXPECT_EQ(RulesetA(), ruleset_before_);
  DrainAccepts(l);
}

TEST_F(NftFaultsTest, ControlAddressAndProtectedCidrStayReachable) {
  ASSERT_OK_AND_ASSIGN(Fd control, ListenTcp(b(), 9000));
  ASSERT_OK_AND_ASSIGN(Fd service, ListenTcp(b(), 8080));
  ctx_.control_addresses = {fmt::format("{}:9000", kAddrB), "unix:/run/fltest-agent.sock"};
  policy_.add_protected_cidrs(std::string(kAddrB2) + "/32");
  std::vector<std::string> changes;
  ASSERT_OK_AND_ASSIGN(v1::FaultRecord rec,
                       Inject(partition_, PartitionSpec({"10.77.0.0/24"}), "ctl1", &changes));
  EXPECT_THAT(changes, Contains(HasSubstr("covers control address 10.77.0.2:9000")));
  EXPECT_THAT(changes, Contains(HasSubstr("overlaps protected CIDR 10.77.0.3")));
  EXPECT_EQ(TcpConnect(a(), kAddrB, 9000, 2s), 0);         // the controller
  EXPECT_EQ(TcpConnect(a(), kAddrB2, 8080, 2s), 0);        // protected
  EXPECT_EQ(TcpConnect(a(), kAddrB, 8080, 500ms), ETIMEDOUT);  // partitioned
  ASSERT_OK(partition_.Revert(rec, ctx_));
  EXPECT_EQ(TcpConnect(a(), kAddrB, 8080, 2s), 0);
  EXPECT_EQ(RulesetA(), ruleset_before_);
  DrainAccepts(control);
  DrainAccepts(service);
}

TEST_F(NftFaultsTest, KernelLiftsPartitionAtDeadlineWithoutRevert) {
  ASSERT_OK_AND_ASSIGN(Fd l, ListenTcp(b(), 8080));
  v1::FaultSpec spec = PartitionSpec({"10.77.0.2"});
  spec.set_duration("2s");
  const auto start = Clock::now();
  ASSERT_OK_AND_ASSIGN(v1::FaultRecord rec, Inject(partition_, spec, "exp1"));
  EXPECT_EQ(TcpConnect(a(), kAddrB, 8080, 300ms), ETIMEDOUT);
  // Nobody calls Revert: the set element's timeout ends the partition.
  bool restored = false;
  while (Clock::now() - start < 8s) {
    if (TcpConnect(a(), kAddrB, 8080, 200ms) == 0) {
      restored = true;
      break;
    }
    std::this_thread::sleep_for(100ms);
  }
  const auto elapsed = Clock::now() - start;
  ASSERT_TRUE(restored) << "partition still in force 8s after a 2s fault";
  EXPECT_GE(elapsed, 1500ms);
  // The inert table is still there (empty set) until Sweep removes it.
  EXPECT_TRUE(TableInA("faultline-exp1"));
  std::vector<std::string> swept;
  ASSERT_OK(RunInNetns(a(), [&]() -> absl::Status {
    auto r = partition_.Sweep(FaultContext{});  // the "agent's namespace" is a here
    if (!r.ok()) return r.status();
    swept = *r;
    return absl::OkStatus();
  }));
  EXPECT_THAT(swept, testing::ElementsAre("nftables table inet faultline-exp1"));
  EXPECT_FALSE(TableInA("faultline-exp1"));
  EXPECT_EQ(RulesetA(), ruleset_before_);
  EXPECT_OK(partition_.Revert(rec, ctx_));  // nothing left: still fine
  DrainAccepts(l);
}

TEST_F(NftFaultsTest, TwoFaultsHaveTheirOwnTables) {
  ASSERT_OK_AND_ASSIGN(Fd l, ListenTcp(b(), 8080));
  ASSERT_OK_AND_ASSIGN(v1::FaultRecord r1, Inject(partition_, PartitionSpec({kAddrB}), "two1"));
  ASSERT_OK_AND_ASSIGN(v1::FaultRecord r2, Inject(partition_, PartitionSpec({kAddrB2}), "two2"));
  EXPECT_EQ(TcpConnect(a(), kAddrB2, 8080, 500ms), ETIMEDOUT);
  ASSERT_OK(partition_.Revert(r2, ctx_));
  EXPECT_EQ(TcpConnect(a(), kAddrB2, 8080, 2s), 0);
  EXPECT_EQ(TcpConnect(a(), kAddrB, 8080, 500ms), ETIMEDOUT);  // r1 untouched
  EXPECT_TRUE(TableInA("faultline-two1"));
  ASSERT_OK(partition_.Revert(r1, ctx_));
  EXPECT_EQ(RulesetA(), ruleset_before_);
  DrainAccepts(l);
}

TEST_F(NftFaultsTest, DnsBlocksResolverAndRevertRestores) {
  ASSERT_OK_AND_ASSIGN(auto echo, UdpEcho::Start(b(), kAddrB, 53));
  ASSERT_OK_AND_ASSIGN(auto echo_other, UdpEcho::Start(b(), kAddrB, 5353));
  ASSERT_OK_AND_ASSIGN(Fd tcp53, ListenTcp(b(), 53));
  ASSERT_TRUE(UdpRoundTrip(a(), kAddrB, 53, 2s));

  // No `resolvers`: the nameservers of a resolv.conf (a test file here).
  ASSERT_OK_AND_ASSIGN(auto dir, itest::TestDir::Create("nft-dns"));
  ASSERT_OK(dir->WriteFile("resolv.conf", fmt::format("search example\nnameserver {}\n", kAddrB)));
  DnsHandler dns(dir->Path("resolv.conf"));
  v1::FaultSpec spec;
  spec.mutable_dns();
  spec.set_duration("60s");
  spec.set_netns(link_.a->name());
  std::vector<std::string> changes;
  ASSERT_OK_AND_ASSIGN(v1::FaultRecord rec, Inject(dns, spec, "dns1", &changes));
  EXPECT_THAT(changes, Contains(HasSubstr("udp dport 53 drop")));
  EXPECT_FALSE(UdpRoundTrip(a(), kAddrB, 53, 500ms));
  EXPECT_EQ(TcpConnect(a(), kAddrB, 53, 500ms), ETIMEDOUT);
  EXPECT_TRUE(UdpRoundTrip(a(), kAddrB, 5353, 2s));  // only port 53
  ASSERT_OK(dns.Revert(rec, ctx_));
  EXPECT_TRUE(UdpRoundTrip(a(), kAddrB, 53, 2s));
  EXPECT_EQ(TcpConnect(a(), kAddrB, 53, 2s), 0);
  EXPECT_EQ(RulesetA(), ruleset_before_);
  DrainAccepts(tcp53);
}

TEST_F(NftFaultsTest, DnsWithExplicitResolver) {
  ASSERT_OK_AND_ASSIGN(auto echo, UdpEcho::Start(b(), kAddrB, 53));
  DnsHandler dns("/nonexistent/fltest-resolv.conf");  // must not be needed
  v1::FaultSpec spec;
  spec.set_duration("60s");
  spec.set_netns(link_.a->name());
  spec.mutable_dns()->add_resolvers(kAddrB);
  ASSERT_OK_AND_ASSIGN(v1::FaultRecord rec, Inject(dns, spec, "dns2"));
  EXPECT_FALSE(UdpRoundTrip(a(), kAddrB, 53, 500ms));
  ASSERT_OK(dns.Revert(rec, ctx_));
  EXPECT_TRUE(UdpRoundTrip(a(), kAddrB, 53, 2s));
  EXPECT_EQ(RulesetA(), ruleset_before_);
}

TEST_F(NftFaultsTest, Ipv6PeerIsBlockedAndIpv4Untouched) {
  ASSERT_OK(link_.a->Ip({"addr", "add", "fd77::1/64", "dev", "veth-a", "nodad"}).ok()
                ? absl::OkStatus() : absl::InternalError("ip addr add fd77::1"));
  ASSERT_OK(link_.b->Ip({"addr", "add", "fd77::2/64", "dev", "veth-b", "nodad"}).ok()
                ? absl::OkStatus() : absl::InternalError("ip addr add fd77::2"));
  ASSERT_OK_AND_ASSIGN(Fd l6, ListenTcp6(b(), 8080));
  ASSERT_OK_AND_ASSIGN(Fd l4, ListenTcp(b(), 8080));
  bool up = false;
  for (int i = 0; i < 30 && !up; ++i) {  // neighbour discovery may take a moment
    up = TcpConnect6(a(), "fd77::2", 8080, 300ms) == 0;
  }
  ASSERT_TRUE(up) << "no IPv6 connectivity between the test namespaces";
  const std::string before = RulesetA();  // the v6 addresses change nothing in nft
  ASSERT_OK_AND_ASSIGN(v1::FaultRecord rec,
                       Inject(partition_, PartitionSpec({"fd77::2/128"}), "v6a"));
  EXPECT_EQ(TcpConnect6(a(), "fd77::2", 8080, 500ms), ETIMEDOUT);
  EXPECT_EQ(TcpConnect(a(), kAddrB, 8080, 2s), 0);
  ASSERT_OK(partition_.Revert(rec, ctx_));
  EXPECT_EQ(TcpConnect6(a(), "fd77::2", 8080, 2s), 0);
  EXPECT_EQ(RulesetA(), before);
  DrainAccepts(l6);
  DrainAccepts(l4);
}

TEST_F(NftFaultsTest, HostSupportsInsideTheNamespace) {
  EXPECT_OK(RunInNetns(a(), [&] { return partition_.HostSupports(ctx_); }));
}

TEST_F(NftFaultsTest, ExistingTableOfTheSameIdIsRefusedAndKept) {
  ASSERT_OK_AND_ASSIGN(v1::FaultRecord r1, Inject(partition_, PartitionSpec({kAddrB}), "dup1"));
  // Set elements show a running "expires" countdown: compare without it.
  const std::regex expires(" expires [0-9a-z]+");
  auto stable = [&] { return std::regex_replace(RulesetA(), expires, ""); };
  const std::string with_fault = stable();
  auto again = Inject(partition_, PartitionSpec({kAddrB2}), "dup1");
  ASSERT_FALSE(again.ok());
  EXPECT_EQ(again.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(std::string(again.status().message()), HasSubstr("already exists"));
  // Apply straight on a record naming an existing table: refused as one batch.
  v1::FaultRecord copy = r1;
  absl::Status st = partition_.Apply(&copy, ctx_);
  EXPECT_EQ(st.code(), absl::StatusCode::kFailedPrecondition) << st;
  EXPECT_EQ(stable(), with_fault);
  ASSERT_OK(partition_.Revert(r1, ctx_));
  EXPECT_EQ(RulesetA(), ruleset_before_);
}

TEST_F(NftFaultsTest, RevertAfterTheNamespaceIsGone) {
  auto c = itest::NetNs::Create("c");
  ASSERT_TRUE(c.ok()) << c.status().message();
  v1::FaultSpec spec = PartitionSpec({kAddrB});
  spec.set_netns((*c)->name());
  ASSERT_OK_AND_ASSIGN(v1::FaultRecord rec, Inject(partition_, spec, "gone1"));
  c->reset();  // ip netns del: the table goes with the namespace
  EXPECT_OK(partition_.Revert(rec, ctx_));
}

TEST_F(NftFaultsTest, BadInputsAreRefusedWithTheFieldNamed) {
  struct Case {
    const char* name;
    std::function<void(v1::FaultSpec*)> edit;
    std::string error;
  };
  const std::string missing_ns = itest::TestName("nosuch");
  const Case cases[] = {
      {"bad cidr", [](v1::FaultSpec* s) { s->mutable_partition()->add_peers("10.0.0.300/24"); }, "partition.peers[1]: \"10.0.0.300/24\" is not a CIDR"},
      {"injection", [](v1::FaultSpec* s) { s->mutable_partition()->add_peers("10.0.0.1; flush ruleset"); }, "partition.peers[1]: \"10.0.0.1; flush ruleset\" is not a CIDR"},
      {"port", [](v1::FaultSpec* s) { s->mutable_partition()->add_ports(0); }, "partition.ports[0]: must be 1-65535"},
      // (protocol and direction are enums now: no text reaches them; the
      // flag/YAML conversion's refusal of "sctp" or "up" is unit-tested.)
      {"no peers", [](v1::FaultSpec* s) { s->mutable_partition()->clear_peers(); }, "partition.peers: at least one CIDR is required"},
      {"missing netns", [&](v1::FaultSpec* s) { s->set_netns(missing_ns); }, "netns: /run/netns/" + missing_ns + " does not exist: No such file or directory"},
  };
  for (const Case& c : cases) {
    v1::FaultSpec spec = PartitionSpec({kAddrB});
    c.edit(&spec);
    auto rec = Inject(partition_, spec, "bad1");
    ASSERT_FALSE(rec.ok()) << c.name;
    EXPECT_EQ(rec.status().code(), absl::StatusCode::kInvalidArgument) << c.name;
    EXPECT_EQ(std::string(rec.status().message()), c.error) << c.name;
  }
  EXPECT_EQ(RulesetA(), ruleset_before_);
}

}  // namespace
}  // namespace faultline::agent::nft
