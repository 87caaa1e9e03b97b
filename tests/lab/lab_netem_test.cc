// Real netem, inside the VM lab (tests/lab/run-lab boots a Debian cloud kernel
// that has sch_netem). Two network namespaces joined by veth: A (va 10.77.0.1)
// sends UDP echoes to B (vb 10.77.0.2 and 10.77.0.3); netem sits on va.
// Not run on the host: this machine's kernel has no sch_netem.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <fcntl.h>
#include <grpcpp/grpcpp.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>

#include <chrono>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <thread>

#include "agent/faults/fault_handler.h"
#include "agent/faults/net/net_handlers.h"
#include "agent/faults/net/tc_netlink.h"
#include "faultline/v1/agent.grpc.pb.h"
#include "spec/fault_spec.h"
#include "tests/integration/netlink/test_net.h"

namespace faultline::agent {
namespace {

using faultline::testing::AddAddress;
using faultline::testing::CreateVethPair;
using faultline::testing::MeasureUdpRtt;
using faultline::testing::TestNetns;
using faultline::testing::UdpEchoServer;

constexpr uint16_t kEchoPort = 7007;

std::string QdiscState(const TestNetns& ns) {
  std::string out;
  absl::Status s = ns.Run([&]() -> absl::Status {
    auto sock = net::TcSocket::Connect();
    if (!sock.ok()) return sock.status();
    auto qdiscs = sock->Qdiscs(0);
    if (!qdiscs.ok()) return qdiscs.status();
    for (const auto& q : *qdiscs) {
      out += q.kind + " " + net::FormatHandle(q.handle) + " parent " +
             net::FormatHandle(q.parent) + " dev " + std::to_string(q.ifindex) + "\n";
    }
    return absl::OkStatus();
  });
  return s.ok() ? out : std::string(s.message());
}

class LabNetemTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(a_.ok() && b_.ok());
    ASSERT_TRUE(CreateVethPair(a_, "va", b_, "vb").ok());
    ASSERT_TRUE(AddAddress(a_, "va", "10.77.0.1/24").ok());
    ASSERT_TRUE(AddAddress(b_, "vb", "10.77.0.2/24").ok());
    ASSERT_TRUE(AddAddress(b_, "vb", "10.77.0.3/24").ok());
    echo2_ = std::make_unique<UdpEchoServer>(b_, "10.77.0.2", kEchoPort);
    echo3_ = std::make_unique<UdpEchoServer>(b_, "10.77.0.3", kEchoPort);
    ASSERT_TRUE(echo2_->status().ok()) << echo2_->status();
    ASSERT_TRUE(echo3_->status().ok()) << echo3_->status();
    baseline_state_ = QdiscState(a_);
    base2_ = Rtt("10.77.0.2");
    base3_ = Rtt("10.77.0.3");
    ASSERT_GT(base2_, 0);
    ASSERT_GT(base3_, 0);
  }

  // Median RTT in ms; -1 when nothing came back.
  double Rtt(const std::string& addr, int count = 15) {
    int received = 0;
    auto rtt = MeasureUdpRtt(a_, addr, kEchoPort, count, 1000, &received);
    EXPECT_TRUE(rtt.ok()) << rtt.status();
    return rtt.ok() ? *rtt : -1;
  }

  v1::FaultSpec Spec() const {
    v1::FaultSpec spec;
    spec.set_duration("30s");
    spec.mutable_netem()->set_interface("va");
    spec.set_netns(a_.path());
    return spec;
  }

  absl::Status Inject(const v1::FaultSpec& spec, v1::FaultRecord* record) {
    *record->mutable_spec() = spec;
    if (absl::Status s = spec::Validate(spec).status(); !s.ok()) return s;  // as the agent does
    absl::Status s = netem_->Validate(spec, ctx_);
    if (!s.ok()) return s;
    auto lines = netem_->Plan(spec, ctx_, record);
    if (!lines.ok()) return lines.status();
    return netem_->Apply(record, ctx_);
  }

  TestNetns a_{"a"};
  TestNetns b_{"b"};
  std::unique_ptr<UdpEchoServer> echo2_, echo3_;
  FaultContext ctx_;
  std::string baseline_state_;
  double base2_ = 0, base3_ = 0;
  std::unique_ptr<FaultHandler> netem_ = MakeNetemHandler();
};

TEST_F(LabNetemTest, KernelHasNetem) { EXPECT_TRUE(netem_->HostSupports(ctx_).ok()); }

TEST_F(LabNetemTest, Delay100msRaisesRttBy100msAndRevertRestoresIt) {
  v1::FaultSpec spec = Spec();
  spec.mutable_netem()->set_delay("100ms");
  v1::FaultRecord record;
  ASSERT_TRUE(Inject(spec, &record).ok());
  const double delayed = Rtt("10.77.0.2");
  EXPECT_NEAR(delayed - base2_, 100.0, 10.0) << "baseline " << base2_ << " ms";
  ASSERT_TRUE(netem_->Revert(record, ctx_).ok());
  EXPECT_EQ(QdiscState(a_), baseline_state_);
  const double after = Rtt("10.77.0.2");
  EXPECT_LT(std::fabs(after - base2_), 10.0) << "baseline " << base2_ << " after " << after;
}

TEST_F(LabNetemTest, Loss100PercentBlocksAndRevertUnblocks) {
  v1::FaultSpec spec = Spec();
  spec.mutable_netem()->set_loss("100%");
  v1::FaultRecord record;
  ASSERT_TRUE(Inject(spec, &record).ok());
  int received = -1;
  ASSERT_TRUE(MeasureUdpRtt(a_, "10.77.0.2", kEchoPort, 5, 300, &received).ok());
  EXPECT_EQ(received, 0);
  ASSERT_TRUE(netem_->Revert(record, ctx_).ok());
  EXPECT_EQ(QdiscState(a_), baseline_state_);
  ASSERT_TRUE(MeasureUdpRtt(a_, "10.77.0.2", kEchoPort, 5, 1000, &received).ok());
  EXPECT_EQ(received, 5);
}

TEST_F(LabNetemTest, ToAffectsOnlyTheNamedDestination) {
  v1::FaultSpec spec = Spec();
  spec.mutable_netem()->set_delay("100ms");
  spec.mutable_netem()->add_to("10.77.0.2/32");
  v1::FaultRecord record;
  ASSERT_TRUE(Inject(spec, &record).ok());
  const double named = Rtt("10.77.0.2");
  const double other = Rtt("10.77.0.3");
  EXPECT_NEAR(named - base2_, 100.0, 10.0);
  EXPECT_LT(std::fabs(other - base3_), 10.0) << "baseline " << base3_ << " with fault " << other;
  ASSERT_TRUE(netem_->Revert(record, ctx_).ok());
  EXPECT_EQ(QdiscState(a_), baseline_state_);
  EXPECT_LT(std::fabs(Rtt("10.77.0.2") - base2_), 10.0);
}

TEST_F(LabNetemTest, ToWithPortAffectsOnlyThatPort) {
  UdpEchoServer other_port(b_, "10.77.0.2", kEchoPort + 1);
  ASSERT_TRUE(other_port.status().ok());
  v1::FaultSpec spec = Spec();
  spec.mutable_netem()->set_loss("100%");
  spec.mutable_netem()->add_to("10.77.0.2:" + std::to_string(kEchoPort));
  v1::FaultRecord record;
  ASSERT_TRUE(Inject(spec, &record).ok());
  int received = -1;
  ASSERT_TRUE(MeasureUdpRtt(a_, "10.77.0.2", kEchoPort, 5, 300, &received).ok());
  EXPECT_EQ(received, 0);
  ASSERT_TRUE(MeasureUdpRtt(a_, "10.77.0.2", kEchoPort + 1, 5, 1000, &received).ok());
  EXPECT_EQ(received, 5);
  ASSERT_TRUE(netem_->Revert(record, ctx_).ok());
  EXPECT_EQ(QdiscState(a_), baseline_state_);
}

TEST_F(LabNetemTest, EveryOptionIsAcceptedByTheKernel) {
  v1::FaultSpec spec = Spec();
  spec.mutable_netem()->set_delay("20ms");
  spec.mutable_netem()->set_jitter("5ms");
  spec.mutable_netem()->set_delay_correlation("25%");
  spec.mutable_netem()->set_loss("1%");
  spec.mutable_netem()->set_duplicate("1%");
  spec.mutable_netem()->set_corrupt("1%");
  spec.mutable_netem()->set_reorder("10%");
  spec.mutable_netem()->set_rate("10mbit");
  v1::FaultRecord record;
  absl::Status s = Inject(spec, &record);
  ASSERT_TRUE(s.ok()) << s;
  const std::string state = QdiscState(a_);
  EXPECT_THAT(state, ::testing::HasSubstr("htb fa17: parent root"));
  EXPECT_THAT(state, ::testing::HasSubstr("netem fa18: parent fa17:1"));
  ASSERT_TRUE(netem_->Revert(record, ctx_).ok());
  EXPECT_EQ(QdiscState(a_), baseline_state_);
}

TEST_F(LabNetemTest, SweepRemovesALeftoverNetem) {
  v1::FaultSpec spec = Spec();
  spec.mutable_netem()->set_delay("100ms");
  v1::FaultRecord record;
  ASSERT_TRUE(Inject(spec, &record).ok());
  std::vector<std::string> removed;
  ASSERT_TRUE(a_.Run([&]() -> absl::Status {
                  auto r = netem_->Sweep(ctx_);
                  if (!r.ok()) return r.status();
                  removed = *r;
                  return absl::OkStatus();
                }).ok());
  EXPECT_EQ(removed, std::vector<std::string>{"qdisc netem fa17: on va"});
  EXPECT_EQ(QdiscState(a_), baseline_state_);
  EXPECT_LT(std::fabs(Rtt("10.77.0.2") - base2_), 10.0);
}

// faultline-agent (from $FAULTLINE_AGENT, which run-lab sets) started inside a
// namespace: it is spawned from a thread in that namespace, so the agent's own
// namespace is the one it shapes. SIGKILLed by the destructor if still running.
class LabAgent {
 public:
  LabAgent(const TestNetns& ns, std::string binary) : ns_(ns), binary_(std::move(binary)) {}
  ~LabAgent() {
    if (pid_ > 0) Kill();
  }

  absl::Status Start() {
    std::vector<std::string> argv = {binary_, "--state-dir", "/run/fllab-agent",
                                     "--listen", "unix:/run/fllab-agent.sock"};
    std::vector<char*> args;
    for (auto& a : argv) args.push_back(a.data());
    args.push_back(nullptr);
    absl::Status spawned = ns_.Run([&]() -> absl::Status {
      posix_spawn_file_actions_t fa;
      posix_spawn_file_actions_init(&fa);
      posix_spawn_file_actions_addopen(&fa, 1, "/run/fllab-agent.log", O_WRONLY | O_CREAT | O_APPEND, 0644);
      posix_spawn_file_actions_adddup2(&fa, 1, 2);
      const int rc = ::posix_spawn(&pid_, args[0], &fa, nullptr, args.data(), environ);
      posix_spawn_file_actions_destroy(&fa);
      if (rc != 0) return absl::InternalError(std::string("spawn agent: ") + std::strerror(rc));
      return absl::OkStatus();
    });
    if (!spawned.ok()) return spawned;
    auto channel = grpc::CreateChannel("unix:/run/fllab-agent.sock", grpc::InsecureChannelCredentials());
    stub_ = v1::Agent::NewStub(channel);
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
    while (std::chrono::steady_clock::now() < deadline) {
      grpc::ClientContext ctx;
      ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(2));
      v1::InfoRequest req;
      v1::InfoResponse resp;
      if (stub_->Info(&ctx, req, &resp).ok()) return absl::OkStatus();
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    std::string log;
    if (FILE* f = std::fopen("/run/fllab-agent.log", "r")) {
      char buf[4096];
      size_t n;
      while ((n = std::fread(buf, 1, sizeof(buf), f)) > 0) log.append(buf, n);
      std::fclose(f);
    }
    return absl::DeadlineExceededError("agent did not answer Info within 30 s; its log:\n" + log);
  }

  void Kill() {
    ::kill(pid_, SIGKILL);
    int status = 0;
    ::waitpid(pid_, &status, 0);
    pid_ = 0;
  }

  v1::Agent::Stub& stub() { return *stub_; }

 private:
  const TestNetns& ns_;
  std::string binary_;
  pid_t pid_ = 0;
  std::unique_ptr<v1::Agent::Stub> stub_;
};

TEST_F(LabNetemTest, SigkilledAgentsNetemIsRemovedWhenItStartsAgain) {
  const char* binary = std::getenv("FAULTLINE_AGENT");
  ASSERT_NE(binary, nullptr) << "run-lab sets FAULTLINE_AGENT";
  LabAgent agent(a_, binary);
  absl::Status started = agent.Start();
  ASSERT_TRUE(started.ok()) << started;

  v1::InjectRequest req;
  v1::FaultSpec& spec = *req.mutable_spec();
  spec.mutable_netem()->set_interface("va");
  spec.mutable_netem()->set_delay("100ms");
  spec.set_duration("10m");
  v1::InjectResponse resp;
  grpc::ClientContext ctx;
  grpc::Status s = agent.stub().Inject(&ctx, req, &resp);
  ASSERT_TRUE(s.ok()) << s.error_message();
  EXPECT_NEAR(Rtt("10.77.0.2", 7) - base2_, 100.0, 10.0);

  agent.Kill();
  // Nothing cleaned up by a SIGKILLed agent: the delay outlives it.
  EXPECT_NE(QdiscState(a_), baseline_state_);
  EXPECT_NEAR(Rtt("10.77.0.2", 5) - base2_, 100.0, 10.0);

  started = agent.Start();
  ASSERT_TRUE(started.ok()) << started;
  // Start-up recovery reverts the ledger's netem (within 2 s of answering).
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(2);
  while (QdiscState(a_) != baseline_state_ && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  EXPECT_EQ(QdiscState(a_), baseline_state_);
  EXPECT_LT(std::fabs(Rtt("10.77.0.2") - base2_), 10.0);
}

}  // namespace
}  // namespace faultline::agent
