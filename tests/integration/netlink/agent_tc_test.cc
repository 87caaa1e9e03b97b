// netem and bandwidth end to end: a real faultline-agent inside a simulated host
// with its own network namespace, driven through gRPC and the `faultline` CLI.
// The shaped interface is the host's own loopback (inside its namespace).
#include <gtest/gtest.h>

#include <chrono>
#include <thread>

#include "faultline/v1/agent.grpc.pb.h"
#include "harness/agent_process.h"
#include "harness/sim_host.h"
#include "harness/status_matchers.h"
#include "harness/subprocess.h"
#include "harness/test_dir.h"

namespace faultline::itest {
namespace {

using namespace std::chrono_literals;
using faultline::v1::FaultSpec;
using faultline::v1::InjectRequest;
using faultline::v1::InjectResponse;

constexpr char kNetemMissing[] =
    "kernel lacks sch_netem: load the module or use a kernel that has it";

class AgentTcTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto dir = TestDir::Create("agenttc");
    ASSERT_TRUE(dir.ok()) << dir.status().message();
    dir_ = std::move(*dir);
    auto host = SimHost::Create("tc", HostNet::kPrivate);
    ASSERT_TRUE(host.ok()) << host.status().message();
    host_ = std::move(*host);
    baseline_ = TcState();
    ASSERT_NE(baseline_.find("qdisc"), std::string::npos) << baseline_;
    auto agent = AgentProcess::Start(*host_, *dir_);
    ASSERT_TRUE(agent.ok()) << agent.status().message();
    agent_ = std::move(*agent);
  }

  void TearDown() override {
    if (HasFailure() && agent_ != nullptr) std::printf("agent log:\n%s\n", agent_->Log().c_str());
  }

  // qdiscs, classes and filters of the host's loopback.
  std::string TcState() {
    std::string all;
    for (const char* what : {"qdisc", "class", "filter"}) {
      CommandResult r = host_->Run({"tc", what, "show", "dev", "lo"});
      EXPECT_TRUE(r.ok()) << r.Describe();
      all += r.out;
    }
    return all;
  }

  CommandResult Cli(const std::vector<std::string>& args) {
    auto cli = CliBinary();
    if (!cli.ok()) {
      CommandResult r;
      r.start_error = std::string(cli.status().message());
      return r;
    }
    std::vector<std::string> argv = {*cli, "--agent", agent_->address()};
    argv.insert(argv.end(), args.begin(), args.end());
    return RunCommand(argv, 30s);
  }

  grpc::Status Inject(const FaultSpec& spec, InjectResponse* response) {
    InjectRequest req;
    *req.mutable_spec() = spec;
    req.set_owner("fltest");
    auto ctx = ContextWithDeadline(15s);
    return agent_->stub().Inject(ctx.get(), req, response);
  }

  std::unique_ptr<TestDir> dir_;
  std::unique_ptr<SimHost> host_;
  std::unique_ptr<AgentProcess> agent_;
  std::string baseline_;
};

TEST_F(AgentTcTest, NetemThroughTheCliFailsWithTheModuleMessageAndLeavesNothing) {
  CommandResult r = Cli({"inject", "netem", "--interface", "lo", "--delay", "100ms",
                         "--duration", "30s"});
  EXPECT_FALSE(r.ok());
  EXPECT_NE((r.out + r.err).find(kNetemMissing), std::string::npos) << r.Describe();
  EXPECT_EQ(TcState(), baseline_);
  CommandResult faults = Cli({"faults"});
  ASSERT_TRUE(faults.ok()) << faults.Describe();
  EXPECT_EQ(faults.out.find("netem"), std::string::npos) << faults.out;

  InjectResponse resp;
  FaultSpec spec;
  spec.mutable_netem()->set_interface("lo");
  spec.mutable_netem()->set_loss("5%");
  spec.mutable_netem()->add_to("10.0.0.0/8");
  spec.set_duration("30s");
  grpc::Status s = Inject(spec, &resp);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::FAILED_PRECONDITION);
  EXPECT_EQ(s.error_message(), kNetemMissing);
  EXPECT_EQ(TcState(), baseline_);
}

TEST_F(AgentTcTest, BandwidthThroughTheCliAppliesAndRevertRestoresTheDump) {
  CommandResult r = Cli({"inject", "bandwidth", "--interface", "lo", "--rate", "1mbit",
                         "--to", "127.0.0.2/32", "--duration", "60s"});
  ASSERT_TRUE(r.ok()) << r.Describe();
  const std::string active = TcState();
  EXPECT_NE(active.find("qdisc htb fa17: root"), std::string::npos) << active;
  EXPECT_NE(active.find("flowid fa17:1"), std::string::npos) << active;
  CommandResult revert = Cli({"revert", "--all"});
  ASSERT_TRUE(revert.ok()) << revert.Describe();
  EXPECT_TRUE(WaitFor([&] { return TcState() == baseline_; }, 2s)) << TcState();
}

TEST_F(AgentTcTest, BadInterfaceIsRefusedNamingTheField) {
  CommandResult r = Cli({"inject", "bandwidth", "--interface", "eth9", "--rate", "1mbit",
                         "--duration", "30s"});
  EXPECT_FALSE(r.ok());
  EXPECT_NE((r.out + r.err).find("interface: no interface \"eth9\" in the agent's network "
                                 "namespace"),
            std::string::npos)
      << r.Describe();
  EXPECT_EQ(TcState(), baseline_);
}

TEST_F(AgentTcTest, SigkilledAgentsBandwidthIsRemovedWhenItStartsAgain) {
  InjectResponse resp;
  FaultSpec spec;
  spec.mutable_bandwidth()->set_interface("lo");
  spec.mutable_bandwidth()->set_rate("1mbit");
  spec.set_duration("10m");
  grpc::Status s = Inject(spec, &resp);
  ASSERT_TRUE(s.ok()) << s.error_message();
  EXPECT_NE(TcState().find("qdisc tbf fa17: root"), std::string::npos) << TcState();

  ASSERT_OK(agent_->Kill());
  // A SIGKILLed agent cleans nothing up: the qdisc outlives it.
  std::this_thread::sleep_for(200ms);
  EXPECT_NE(TcState().find("qdisc tbf fa17: root"), std::string::npos) << TcState();

  ASSERT_OK(agent_->Restart());
  EXPECT_TRUE(WaitFor([&] { return TcState() == baseline_; }, 2s)) << TcState();
}

}  // namespace
}  // namespace faultline::itest
