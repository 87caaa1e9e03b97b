// partition through the real faultline-agent, running inside namespace
// fltest-<pid>-a (a SimHost there): inject over gRPC, dry run, SIGKILL and
// restart (the ledger's recovery deletes the table), leftover sweep, RPC revert.
#include <arpa/inet.h>
#include <fcntl.h>
#include <fmt/format.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <functional>
#include <thread>

#include "agent/faults/netns.h"
#include "agent/faults/nft/nft_session.h"
#include "agent/faults/nft/partition.h"
#include "harness/agent_process.h"
#include "harness/netns.h"
#include "harness/sim_host.h"
#include "harness/status_matchers.h"
#include "harness/test_dir.h"

namespace faultline::agent::nft {
namespace {

using ::testing::Contains;
using ::testing::HasSubstr;
using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

constexpr char kAddrB[] = "10.77.0.2";

// A TCP listener fd inside `netns` (closed by the destructor).
struct Listener {
  int fd = -1;
  ~Listener() {
    if (fd >= 0) ::close(fd);
  }
  void Drain() const {
    for (int i = 0; i < 256; ++i) {
      int c = ::accept4(fd, nullptr, nullptr, SOCK_CLOEXEC);
      if (c < 0) return;
      ::close(c);
    }
  }
};

absl::Status Listen(const std::string& netns, int port, Listener* out) {
  return RunInNetns(netns, [&]() -> absl::Status {
    out->fd = ::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    int one = 1;
    ::setsockopt(out->fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    sockaddr_in sa{};
    sa.sin_family = AF_INET;
    sa.sin_port = htons(static_cast<uint16_t>(port));
    if (out->fd < 0 || ::bind(out->fd, reinterpret_cast<sockaddr*>(&sa), sizeof(sa)) != 0 ||
        ::listen(out->fd, 128) != 0) {
      return absl::InternalError(std::strerror(errno));
    }
    return absl::OkStatus();
  });
}

// 0 when a TCP connection from inside `netns` succeeds, else the errno.
int TcpConnect(const std::string& netns, const std::string& ip, int port,
               std::chrono::milliseconds timeout) {
  int result = EBADF;
  (void)RunInNetns(netns, [&]() -> absl::Status {
    int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) return absl::OkStatus();
    sockaddr_in sa{};
    sa.sin_family = AF_INET;
    sa.sin_port = htons(static_cast<uint16_t>(port));
    ::inet_pton(AF_INET, ip.c_str(), &sa.sin_addr);
    if (::connect(fd, reinterpret_cast<sockaddr*>(&sa), sizeof(sa)) == 0) {
      result = 0;
    } else if (errno != EINPROGRESS) {
      result = errno;
    } else {
      pollfd p{fd, POLLOUT, 0};
      if (::poll(&p, 1, static_cast<int>(timeout.count())) <= 0) {
        result = ETIMEDOUT;
      } else {
        socklen_t len = sizeof(result);
        ::getsockopt(fd, SOL_SOCKET, SO_ERROR, &result, &len);
      }
    }
    ::close(fd);
    return absl::OkStatus();
  });
  return result;
}

bool WaitFor(const std::function<bool()>& cond, std::chrono::milliseconds timeout) {
  const auto end = Clock::now() + timeout;
  while (Clock::now() < end) {
    if (cond()) return true;
    std::this_thread::sleep_for(50ms);
  }
  return cond();
}

std::string Describe(const grpc::Status& s) {
  return fmt::format("code {}: {}", static_cast<int>(s.error_code()), s.error_message());
}

class NftAgentTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto link = itest::MakeLinkedPair("a", "10.77.0.1/24", "b", std::string(kAddrB) + "/24");
    ASSERT_TRUE(link.ok()) << link.status().message();
    link_ = std::move(*link);
    ASSERT_OK(RunNft(a(), "add table inet operator\n"
                          "add chain inet operator output { type filter hook output priority 0; policy accept; }\n"
                          "add rule inet operator output tcp dport 9999 accept\n")
                  .status());
    auto before = RunNft(a(), "list ruleset");
    ASSERT_TRUE(before.ok()) << before.status().message();
    ruleset_before_ = *before;
    ASSERT_OK_AND_ASSIGN(dir_, itest::TestDir::Create("nft-agent"));
    ASSERT_OK_AND_ASSIGN(host_, itest::SimHost::CreateInNetns("ha", *link_.a));
    auto agent = itest::AgentProcess::Start(*host_, *dir_);
    ASSERT_TRUE(agent.ok()) << agent.status().message();
    agent_ = std::move(*agent);
  }

  void TearDown() override {
    if (HasFailure() && agent_ != nullptr) std::printf("agent log:\n%s\n", agent_->Log().c_str());
  }

  std::string a() const { return link_.a->path(); }
  std::string b() const { return link_.b->path(); }
  std::string RulesetA() {
    auto r = RunNft(a(), "list ruleset");
    return r.ok() ? *r : "ERROR: " + std::string(r.status().message());
  }
  std::string TablesA() {
    auto r = RunNft(a(), "list tables");
    return r.ok() ? *r : "ERROR: " + std::string(r.status().message());
  }

  grpc::Status Inject(const v1::FaultSpec& spec, bool dry_run, v1::InjectResponse* resp) {
    v1::InjectRequest req;
    *req.mutable_spec() = spec;
    req.set_dry_run(dry_run);
    req.set_owner("fltest");
    auto ctx = itest::ContextWithDeadline(15s);
    return agent_->stub().Inject(ctx.get(), req, resp);
  }

  static v1::FaultSpec Partition() {
    v1::FaultSpec s;
    s.set_duration("10m");
    s.mutable_partition()->add_peers(std::string(kAddrB) + "/32");
    return s;
  }

  itest::NetLink2 link_;  // outlives the host and the agent inside it
  std::string ruleset_before_;
  std::unique_ptr<itest::TestDir> dir_;
  std::unique_ptr<itest::SimHost> host_;
  std::unique_ptr<itest::AgentProcess> agent_;
};

TEST_F(NftAgentTest, InfoListsTheNftKinds) {
  v1::InfoResponse info;
  ASSERT_OK(itest::WaitForInfo(agent_->stub(), 5s, &info));
  EXPECT_THAT(info.capabilities(), Contains("partition"));
  EXPECT_THAT(info.capabilities(), Contains("dns"));
}

TEST_F(NftAgentTest, DryRunListsRulesAndChangesNothing) {
  v1::InjectResponse resp;
  grpc::Status s = Inject(Partition(), /*dry_run=*/true, &resp);
  ASSERT_TRUE(s.ok()) << Describe(s);
  EXPECT_THAT(resp.changes(), Contains(HasSubstr("ip daddr @peers4 drop")));
  EXPECT_EQ(RulesetA(), ruleset_before_);
}

TEST_F(NftAgentTest, SigkilledAgentsPartitionIsRemovedOnRestart) {
  Listener l;
  ASSERT_OK(Listen(b(), 8080, &l));
  ASSERT_EQ(TcpConnect(a(), kAddrB, 8080, 2s), 0);
  v1::InjectResponse resp;
  grpc::Status s = Inject(Partition(), false, &resp);
  ASSERT_TRUE(s.ok()) << Describe(s);
  const std::string table = resp.fault().net().nft_table();
  EXPECT_THAT(table, testing::StartsWith("faultline-"));
  EXPECT_EQ(TcpConnect(a(), kAddrB, 8080, 500ms), ETIMEDOUT);

  ASSERT_OK(agent_->Kill());
  std::this_thread::sleep_for(200ms);
  EXPECT_EQ(TcpConnect(a(), kAddrB, 8080, 500ms), ETIMEDOUT);  // outlives the agent
  // A tagged leftover no ledger record names: the restart sweeps it too.
  ASSERT_OK(RunNft(a(), "add table inet faultline-stale\n").status());

  ASSERT_OK(agent_->Restart());
  EXPECT_TRUE(WaitFor([&] { return TcpConnect(a(), kAddrB, 8080, 200ms) == 0; }, 3s));
  EXPECT_THAT(TablesA(), testing::Not(HasSubstr("faultline")));
  EXPECT_EQ(RulesetA(), ruleset_before_);
  l.Drain();
}

TEST_F(NftAgentTest, RevertRpcRestoresTraffic) {
  Listener l;
  ASSERT_OK(Listen(b(), 8080, &l));
  v1::InjectResponse resp;
  grpc::Status s = Inject(Partition(), false, &resp);
  ASSERT_TRUE(s.ok()) << Describe(s);
  EXPECT_EQ(TcpConnect(a(), kAddrB, 8080, 500ms), ETIMEDOUT);
  v1::RevertRequest req;
  req.set_id(resp.fault().id());
  v1::RevertResponse rresp;
  auto ctx = itest::ContextWithDeadline(10s);
  s = agent_->stub().Revert(ctx.get(), req, &rresp);
  ASSERT_TRUE(s.ok()) << Describe(s);
  EXPECT_EQ(TcpConnect(a(), kAddrB, 8080, 2s), 0);
  EXPECT_EQ(RulesetA(), ruleset_before_);
  l.Drain();
}

TEST_F(NftAgentTest, BadPeerIsRefusedWithTheFieldNamed) {
  v1::FaultSpec spec = Partition();
  spec.mutable_partition()->add_peers("10.0.0.1; flush ruleset");
  v1::InjectResponse resp;
  grpc::Status s = Inject(spec, false, &resp);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << Describe(s);
  EXPECT_THAT(s.error_message(), HasSubstr("partition.peers[1]: \"10.0.0.1; flush ruleset\" is not a CIDR"));
  EXPECT_EQ(RulesetA(), ruleset_before_);
}

// netns_pid: the handler finds the namespace through /proc/PID/ns/net (here
// the SimHost's init, which lives in a).
TEST_F(NftAgentTest, NetnsPidTargetsThatProcesssNamespace) {
  Listener l;
  ASSERT_OK(Listen(b(), 8080, &l));
  PartitionHandler handler;
  FaultContext ctx;
  v1::FaultSpec spec = Partition();
  spec.set_netns_pid(host_->init_pid());
  v1::FaultRecord rec;
  rec.set_id("bypid");
  *rec.mutable_spec() = spec;
  auto changes = handler.Plan(spec, ctx, &rec);
  ASSERT_TRUE(changes.ok()) << changes.status().message();
  EXPECT_EQ(rec.net().netns_path(), fmt::format("/proc/{}/ns/net", host_->init_pid()));
  ASSERT_OK(handler.Apply(&rec, ctx));
  EXPECT_THAT(TablesA(), HasSubstr("table inet faultline-bypid"));
  EXPECT_EQ(TcpConnect(a(), kAddrB, 8080, 500ms), ETIMEDOUT);
  ASSERT_OK(handler.Revert(rec, ctx));
  EXPECT_EQ(TcpConnect(a(), kAddrB, 8080, 2s), 0);
  EXPECT_EQ(RulesetA(), ruleset_before_);
  l.Drain();
}

}  // namespace
}  // namespace faultline::agent::nft
