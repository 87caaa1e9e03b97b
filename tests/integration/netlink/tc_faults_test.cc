// The netem and bandwidth handlers against this machine's kernel, in network
// namespaces the test creates (A: va 10.77.0.1, B: vb 10.77.0.2 + 10.77.0.3).
// This kernel has tbf, htb and u32 but no sch_netem: netem must be refused with
// the module message and leave nothing behind (real netem runs in tests/lab).
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <net/if.h>

#include <memory>

#include "agent/faults/fault_handler.h"
#include "agent/faults/net/net_handlers.h"
#include "agent/faults/net/tc_spec.h"
#include "spec/fault_spec.h"
#include "tests/integration/netlink/test_net.h"

namespace faultline::agent {
namespace {

using faultline::testing::AddAddress;
using faultline::testing::CreateVethPair;
using faultline::testing::MeasureTcpThroughput;
using faultline::testing::RunCapture;
using faultline::testing::TcDump;
using faultline::testing::TestNetns;
using ::testing::HasSubstr;

constexpr double kOneMbit = 1e6 / 8;  // bytes/s
constexpr char kNetemMissing[] = "kernel lacks sch_netem: load the module or use a kernel that has it";

class TcFaultTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(a_.ok() && b_.ok()) << "cannot create network namespaces";
    ASSERT_TRUE(CreateVethPair(a_, "va", b_, "vb").ok());
    ASSERT_TRUE(AddAddress(a_, "va", "10.77.0.1/24").ok());
    ASSERT_TRUE(AddAddress(b_, "vb", "10.77.0.2/24").ok());
    ASSERT_TRUE(AddAddress(b_, "vb", "10.77.0.3/24").ok());
    auto dump = TcDump(a_, "va");
    ASSERT_TRUE(dump.ok()) << dump.status();
    baseline_ = *dump;
  }

  v1::FaultSpec Spec(const std::string& kind) const {
    v1::FaultSpec spec;
    if (kind == "netem") {
      spec.mutable_netem()->set_interface("va");
    } else {
      spec.mutable_bandwidth()->set_interface("va");
    }
    spec.set_duration("30s");
    spec.set_netns(a_.path());
    return spec;
  }

  // spec::Validate + Validate + Plan + Apply, as the FaultManager does.
  absl::Status Inject(const FaultHandler& h, const v1::FaultSpec& spec, v1::FaultRecord* record) {
    *record->mutable_spec() = spec;
    if (absl::Status s = spec::Validate(spec).status(); !s.ok()) return s;
    absl::Status s = h.Validate(spec, ctx_);
    if (!s.ok()) return s;
    auto lines = h.Plan(spec, ctx_, record);
    if (!lines.ok()) return lines.status();
    return h.Apply(record, ctx_);
  }

  std::string Dump() {
    auto d = TcDump(a_, "va");
    return d.ok() ? *d : std::string(d.status().message());
  }

  double Throughput(const std::string& addr, uint16_t port, double seconds = 2.5) {
    auto bps = MeasureTcpThroughput(a_, b_, addr, port, 0.5, seconds);
    EXPECT_TRUE(bps.ok()) << bps.status();
    return bps.ok() ? *bps : 0;
  }

  TestNetns a_{"a"};
  TestNetns b_{"b"};
  FaultContext ctx_;
  std::string baseline_;
  std::unique_ptr<FaultHandler> netem_ = MakeNetemHandler();
  std::unique_ptr<FaultHandler> bandwidth_ = MakeBandwidthHandler();
};

TEST_F(TcFaultTest, BandwidthOneMbitWithinTwentyPercentAndRevertRestoresDump) {
  v1::FaultSpec spec = Spec("bandwidth");
  spec.mutable_bandwidth()->set_rate("1mbit");
  v1::FaultRecord record;
  ASSERT_TRUE(Inject(*bandwidth_, spec, &record).ok());
  EXPECT_EQ(record.net().qdisc_handle(), net::kRootHandle);
  EXPECT_THAT(Dump(), HasSubstr("qdisc tbf fa17: root"));
  const double bps = Throughput("10.77.0.2", 5001, 3.0);
  EXPECT_GT(bps, 0.8 * kOneMbit) << bps * 8 / 1e6 << " mbit/s";
  EXPECT_LT(bps, 1.2 * kOneMbit) << bps * 8 / 1e6 << " mbit/s";
  ASSERT_TRUE(bandwidth_->Revert(record, ctx_).ok());
  EXPECT_EQ(Dump(), baseline_);
  // Unlimited again: far above the limit.
  EXPECT_GT(Throughput("10.77.0.2", 5001, 1.0), 10 * kOneMbit);
}

TEST_F(TcFaultTest, BandwidthToLimitsOnlyTheNamedDestination) {
  v1::FaultSpec spec = Spec("bandwidth");
  spec.mutable_bandwidth()->set_rate("1mbit");
  spec.mutable_bandwidth()->add_to("10.77.0.2/32");
  v1::FaultRecord record;
  ASSERT_TRUE(Inject(*bandwidth_, spec, &record).ok());
  const std::string dump = Dump();
  EXPECT_THAT(dump, HasSubstr("qdisc htb fa17: root"));
  EXPECT_THAT(dump, HasSubstr("class htb fa17:1"));
  EXPECT_THAT(dump, HasSubstr("flowid fa17:1"));
  const double limited = Throughput("10.77.0.2", 5001);
  const double other = Throughput("10.77.0.3", 5001);
  EXPECT_GT(limited, 0.8 * kOneMbit) << limited * 8 / 1e6 << " mbit/s";
  EXPECT_LT(limited, 1.2 * kOneMbit) << limited * 8 / 1e6 << " mbit/s";
  EXPECT_GT(other, 10 * kOneMbit) << other * 8 / 1e6 << " mbit/s";
  ASSERT_TRUE(bandwidth_->Revert(record, ctx_).ok());
  EXPECT_EQ(Dump(), baseline_);
}

TEST_F(TcFaultTest, BandwidthToWithPortLimitsOnlyThatPort) {
  v1::FaultSpec spec = Spec("bandwidth");
  spec.mutable_bandwidth()->set_rate("1mbit");
  spec.mutable_bandwidth()->add_to("10.77.0.2:5002");
  v1::FaultRecord record;
  ASSERT_TRUE(Inject(*bandwidth_, spec, &record).ok());
  const double limited = Throughput("10.77.0.2", 5002);
  const double other_port = Throughput("10.77.0.2", 5001);
  EXPECT_LT(limited, 1.2 * kOneMbit) << limited * 8 / 1e6 << " mbit/s";
  EXPECT_GT(limited, 0.8 * kOneMbit) << limited * 8 / 1e6 << " mbit/s";
  EXPECT_GT(other_port, 10 * kOneMbit) << other_port * 8 / 1e6 << " mbit/s";
  ASSERT_TRUE(bandwidth_->Revert(record, ctx_).ok());
  EXPECT_EQ(Dump(), baseline_);
}

TEST_F(TcFaultTest, MixedIpv4AndIpv6DestinationsInstallOneFilterEach) {
  v1::FaultSpec spec = Spec("bandwidth");
  spec.mutable_bandwidth()->set_rate("5mbit");
  spec.mutable_bandwidth()->add_to("10.77.0.2/32:5001");
  spec.mutable_bandwidth()->add_to("[fd00:77::/64]:443");
  spec.mutable_bandwidth()->add_to("fd00:78::1");
  v1::FaultRecord record;
  absl::Status s = Inject(*bandwidth_, spec, &record);
  ASSERT_TRUE(s.ok()) << s;
  auto filters = RunCapture({"nsenter", "--net=" + a_.path(), "tc", "filter", "show", "dev",
                             "va"});
  ASSERT_TRUE(filters.ok()) << filters.status();
  // tc prints each u32 key as "match VALUE/MASK at OFFSET".
  EXPECT_THAT(*filters, HasSubstr("match 0a4d0002/ffffffff at 16"));
  EXPECT_THAT(*filters, HasSubstr("match 00001389/0000ffff at 20"));  // port 5001
  EXPECT_THAT(*filters, HasSubstr("match fd000077/ffffffff at 24"));
  EXPECT_THAT(*filters, HasSubstr("match 000001bb/0000ffff at 40"));  // port 443
  EXPECT_THAT(*filters, HasSubstr("match 00000001/ffffffff at 36"));
  EXPECT_THAT(*filters, HasSubstr("protocol ipv6"));
  ASSERT_TRUE(bandwidth_->Revert(record, ctx_).ok());
  EXPECT_EQ(Dump(), baseline_);
}

TEST_F(TcFaultTest, OperatorRootQdiscIsRefusedAndSurvivesUntouched) {
  ASSERT_TRUE(RunCapture({"nsenter", "--net=" + a_.path(), "tc", "qdisc", "add", "dev", "va",
                          "root", "handle", "1:", "htb", "default", "10"})
                  .ok());
  ASSERT_TRUE(RunCapture({"nsenter", "--net=" + a_.path(), "tc", "class", "add", "dev", "va",
                          "parent", "1:", "classid", "1:10", "htb", "rate", "100mbit"})
                  .ok());
  const std::string operator_state = Dump();
  v1::FaultSpec spec = Spec("bandwidth");
  spec.mutable_bandwidth()->set_rate("1mbit");
  for (bool with_to : {false, true}) {
    if (with_to) spec.mutable_bandwidth()->add_to("10.77.0.2");
    v1::FaultRecord record;
    absl::Status s = Inject(*bandwidth_, spec, &record);
    EXPECT_EQ(s.code(), absl::StatusCode::kFailedPrecondition);
    EXPECT_EQ(s.message(),
              "interface: va already has root qdisc htb 1: (not Faultline's); refusing to "
              "replace it");
    EXPECT_EQ(Dump(), operator_state);
    // A revert of that failed fault must not touch the operator's qdisc.
    EXPECT_TRUE(bandwidth_->Revert(record, ctx_).ok());
    EXPECT_EQ(Dump(), operator_state);
  }
}

TEST_F(TcFaultTest, ApplyRacingAnOperatorQdiscFailsCleanly) {
  // Planned while the root was the default, then an operator adds a root.
  v1::FaultSpec spec = Spec("bandwidth");
  spec.mutable_bandwidth()->set_rate("1mbit");
  v1::FaultRecord record;
  *record.mutable_spec() = spec;
  ASSERT_TRUE(bandwidth_->Plan(spec, ctx_, &record).ok());
  ASSERT_TRUE(RunCapture({"nsenter", "--net=" + a_.path(), "tc", "qdisc", "add", "dev", "va",
                          "root", "handle", "1:", "tbf", "rate", "5mbit", "burst", "10kb",
                          "latency", "50ms"})
                  .ok());
  const std::string operator_state = Dump();
  absl::Status s = bandwidth_->Apply(&record, ctx_);
  EXPECT_EQ(s.code(), absl::StatusCode::kFailedPrecondition) << s;
  EXPECT_THAT(std::string(s.message()), HasSubstr("refusing to replace it"));
  EXPECT_EQ(Dump(), operator_state);
  EXPECT_TRUE(bandwidth_->Revert(record, ctx_).ok());
  EXPECT_EQ(Dump(), operator_state);
}

TEST_F(TcFaultTest, SecondFaultOnTheSameInterfaceIsRefused) {
  v1::FaultSpec spec = Spec("bandwidth");
  spec.mutable_bandwidth()->set_rate("1mbit");
  v1::FaultRecord first;
  ASSERT_TRUE(Inject(*bandwidth_, spec, &first).ok());
  const std::string active = Dump();
  v1::FaultRecord second;
  absl::Status s = Inject(*bandwidth_, spec, &second);
  EXPECT_EQ(s.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(std::string(s.message()), HasSubstr("already has Faultline's root qdisc tbf fa17:"));
  EXPECT_EQ(Dump(), active);
  ASSERT_TRUE(bandwidth_->Revert(first, ctx_).ok());
  EXPECT_EQ(Dump(), baseline_);
}

TEST_F(TcFaultTest, RevertFromTheRecordAloneIsIdempotent) {
  v1::FaultSpec spec = Spec("bandwidth");
  spec.mutable_bandwidth()->set_rate("2mbit");
  spec.mutable_bandwidth()->add_to("10.77.0.0/24");
  v1::FaultRecord record;
  ASSERT_TRUE(Inject(*bandwidth_, spec, &record).ok());
  ASSERT_NE(Dump(), baseline_);
  // A new process after a crash: a fresh handler and a copy of the record.
  const std::string bytes = record.SerializeAsString();
  v1::FaultRecord reloaded;
  ASSERT_TRUE(reloaded.ParseFromString(bytes));
  auto fresh = MakeBandwidthHandler();
  absl::Status first = fresh->Revert(reloaded, ctx_);
  EXPECT_TRUE(first.ok()) << first;
  EXPECT_EQ(Dump(), baseline_);
  absl::Status again = fresh->Revert(reloaded, ctx_);
  EXPECT_TRUE(again.ok()) << again;
  EXPECT_EQ(Dump(), baseline_);
  // A record that was never planned reverts to nothing.
  EXPECT_TRUE(fresh->Revert(v1::FaultRecord(), ctx_).ok());
}

TEST_F(TcFaultTest, SweepRemovesTaggedLeftoversOnly) {
  v1::FaultSpec spec = Spec("bandwidth");
  spec.mutable_bandwidth()->set_rate("1mbit");
  v1::FaultRecord record;
  ASSERT_TRUE(Inject(*bandwidth_, spec, &record).ok());
  // An operator qdisc on another interface must survive the sweep.
  ASSERT_TRUE(RunCapture({"nsenter", "--net=" + a_.path(), "tc", "qdisc", "add", "dev", "lo",
                          "root", "handle", "1:", "htb"})
                  .ok());
  // The ledger is lost: the sweep (run in the agent's namespace, here A) finds
  // the tagged qdisc by its handle.
  std::vector<std::string> removed;
  ASSERT_TRUE(a_.Run([&]() -> absl::Status {
                  auto r = netem_->Sweep(ctx_);
                  if (!r.ok()) return r.status();
                  removed = *r;
                  return absl::OkStatus();
                }).ok());
  ASSERT_EQ(removed.size(), 1u);
  EXPECT_EQ(removed[0], "qdisc tbf fa17: on va");
  EXPECT_EQ(Dump(), baseline_);
  auto lo = RunCapture({"nsenter", "--net=" + a_.path(), "tc", "qdisc", "show", "dev", "lo"});
  ASSERT_TRUE(lo.ok());
  EXPECT_THAT(*lo, HasSubstr("qdisc htb 1: root"));
}

TEST_F(TcFaultTest, NetemOnThisKernelFailsWithTheModuleMessageAndLeavesNothing) {
  absl::Status host = netem_->HostSupports(ctx_);
  EXPECT_EQ(host.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(host.message(), kNetemMissing);
  EXPECT_TRUE(bandwidth_->HostSupports(ctx_).ok());

  v1::FaultSpec spec = Spec("netem");
  spec.mutable_netem()->set_delay("100ms");
  v1::FaultRecord record;
  absl::Status s = Inject(*netem_, spec, &record);
  EXPECT_EQ(s.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(s.message(), kNetemMissing);
  EXPECT_EQ(Dump(), baseline_);

  // Apply reached directly (e.g. the module vanished after the plan): the
  // classful layout's htb root is rolled back before the error returns.
  for (bool with_to : {false, true}) {
    v1::FaultRecord planned;
    v1::FaultSpec s2 = spec;
    if (with_to) s2.mutable_netem()->add_to("10.77.0.2/32:5001");
    *planned.mutable_spec() = s2;
    auto* net = planned.mutable_net();
    net->set_netns_path(a_.path());
    unsigned index = 0;
    ASSERT_TRUE(a_.Run([&] {
                    index = if_nametoindex("va");
                    return absl::OkStatus();
                  }).ok());
    ASSERT_NE(index, 0u);
    net->set_ifindex(static_cast<int>(index));
    net->set_ifname("va");
    net->set_qdisc_handle(net::kRootHandle);
    net->set_qdisc_parent(net::kParentRoot);
    absl::Status applied = netem_->Apply(&planned, ctx_);
    EXPECT_EQ(applied.code(), absl::StatusCode::kFailedPrecondition) << with_to;
    EXPECT_EQ(applied.message(), kNetemMissing);
    EXPECT_EQ(Dump(), baseline_) << with_to;
    EXPECT_TRUE(netem_->Revert(planned, ctx_).ok());
  }
}

struct BadInput {
  std::string name;
  std::function<void(v1::FaultSpec*)> edit;
  absl::StatusCode code;
  std::string message;
};

TEST_F(TcFaultTest, BadInputsAreRefusedNamingTheField) {
  const std::vector<BadInput> cases = {
      {"bad cidr", [](v1::FaultSpec* s) { s->mutable_netem()->add_to("10.0.0.0/33"); },
       absl::StatusCode::kInvalidArgument,
       "netem.to[0]: invalid destination \"10.0.0.0/33\": prefix length 33 is larger than 32 (use "
       "CIDR[:PORT], e.g. 10.0.0.0/8, 10.1.2.3:443, [2001:db8::/32]:443)"},
      {"not an address", [](v1::FaultSpec* s) { s->mutable_netem()->add_to("10.0.0.0/8"); s->mutable_netem()->add_to("db.local"); },
       absl::StatusCode::kInvalidArgument,
       "netem.to[1]: invalid destination \"db.local\": \"db.local\" is not an IPv4 or IPv6 address "
       "(use CIDR[:PORT], e.g. 10.0.0.0/8, 10.1.2.3:443, [2001:db8::/32]:443)"},
      {"missing interface", [](v1::FaultSpec* s) { s->mutable_netem()->set_interface("eth9"); },
       absl::StatusCode::kInvalidArgument, ""},
      {"150% loss", [](v1::FaultSpec* s) { s->mutable_netem()->set_loss("150%"); },
       absl::StatusCode::kInvalidArgument, "netem.loss: must be between 0 and 100, got 150%"},
      {"negative delay", [](v1::FaultSpec* s) { s->mutable_netem()->set_delay("-5ms"); },
       absl::StatusCode::kInvalidArgument,
       "netem.delay: invalid duration \"-5ms\": must not be negative (use e.g. 250ms, 30s, 5m)"},
      {"no interface", [](v1::FaultSpec* s) { s->mutable_netem()->clear_interface(); },
       absl::StatusCode::kInvalidArgument, "netem.interface: required"},
      {"bad rate", [](v1::FaultSpec* s) { s->mutable_netem()->set_rate("fast"); },
       absl::StatusCode::kInvalidArgument,
       "netem.rate: invalid rate \"fast\": expected a number (use e.g. 1mbit, 500kbit)"},
      {"missing netns", [](v1::FaultSpec* s) { s->set_netns("fltest-0-nonexistent"); },
       absl::StatusCode::kInvalidArgument, ""},
  };
  for (const BadInput& c : cases) {
    SCOPED_TRACE(c.name);
    v1::FaultSpec spec = Spec("netem");
    spec.mutable_netem()->set_delay("10ms");
    c.edit(&spec);
    v1::FaultRecord record;
    absl::Status s = Inject(*netem_, spec, &record);
    EXPECT_EQ(s.code(), c.code) << s;
    if (c.name == "missing interface") {
      EXPECT_EQ(s.message(), "interface: no interface \"eth9\" in netns " + a_.path());
    } else if (c.name == "missing netns") {
      EXPECT_THAT(std::string(s.message()),
                  HasSubstr("netns: /run/netns/fltest-0-nonexistent does not exist"));
    } else {
      EXPECT_EQ(s.message(), c.message);
    }
    EXPECT_EQ(Dump(), baseline_);
  }
  v1::FaultSpec no_rate = Spec("bandwidth");
  v1::FaultRecord no_rate_record;
  absl::Status s = Inject(*bandwidth_, no_rate, &no_rate_record);
  EXPECT_EQ(s.message(), "bandwidth.rate: required for bandwidth, e.g. 1mbit");
}

}  // namespace
}  // namespace faultline::agent
