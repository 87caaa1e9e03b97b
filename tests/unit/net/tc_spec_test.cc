#include "agent/faults/net/tc_spec.h"

#include <arpa/inet.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <sys/socket.h>

#include "spec/fault_spec.h"

namespace faultline::agent::net {
namespace {

TEST(PercentToProbTest, FixedPointEnds) {
  EXPECT_EQ(PercentToProb(0), 0u);
  EXPECT_EQ(PercentToProb(100), 0xFFFFFFFFu);
  EXPECT_EQ(PercentToProb(50), 0x80000000u);  // 2147483647.5 rounds up
  EXPECT_EQ(PercentToProb(25), 0x40000000u);
  EXPECT_EQ(PercentToProb(1), 42949673u);
  EXPECT_EQ(PercentToProb(0.1), 4294967u);
  EXPECT_EQ(PercentToProb(-3), 0u);
  EXPECT_EQ(PercentToProb(250), 0xFFFFFFFFu);
}

TEST(HandleTest, TagAndFormatting) {
  EXPECT_EQ(kRootHandle, 0xFA170000u);
  EXPECT_TRUE(IsFaultlineHandle(kRootHandle));
  EXPECT_TRUE(IsFaultlineHandle(kShapedClass));
  EXPECT_TRUE(IsFaultlineHandle(kChildHandle));
  EXPECT_FALSE(IsFaultlineHandle(0x00010000));
  EXPECT_FALSE(IsFaultlineHandle(0));
  EXPECT_FALSE(IsFaultlineHandle(0xFA160000));
  EXPECT_EQ(FormatHandle(kRootHandle), "fa17:");
  EXPECT_EQ(FormatHandle(kShapedClass), "fa17:1");
  EXPECT_EQ(FormatHandle(0x00010000), "1:");
  EXPECT_EQ(FormatHandle(0), "0:");
  EXPECT_EQ(FormatHandle(kParentRoot), "root");
  EXPECT_TRUE(IsKernelDefaultRoot(0));
  EXPECT_FALSE(IsKernelDefaultRoot(0x00010000));
  EXPECT_FALSE(IsKernelDefaultRoot(kRootHandle));
}

TEST(DestinationTest, ParsesForms) {
  struct Case {
    std::string text;
    std::string canonical;
  };
  const Case cases[] = {
      {"10.0.0.0/8", "10.0.0.0/8"},
      {"10.1.2.3", "10.1.2.3/32"},
      {"10.1.2.3/24", "10.1.2.0/24"},  // host bits cleared
      {"10.1.2.3:443", "10.1.2.3/32:443"},
      {"10.1.2.3/32:443", "10.1.2.3/32:443"},
      {"0.0.0.0/0", "0.0.0.0/0"},
      {"2001:db8::/32", "2001:db8::/32"},
      {"2001:db8::1", "2001:db8::1/128"},
      {"[2001:db8::1]:443", "[2001:db8::1/128]:443"},
      {"[2001:db8:ffff::/33]:80", "[2001:db8:8000::/33]:80"},
  };
  for (const Case& c : cases) {
    auto d = ParseDestination("to[0]", c.text);
    ASSERT_TRUE(d.ok()) << c.text << ": " << d.status();
    EXPECT_EQ(d->Canonical(), c.canonical) << c.text;
  }
}

TEST(DestinationTest, RejectsBadInputNamingTheField) {
  const std::pair<std::string, std::string> cases[] = {
      {"", "empty"},
      {"10.0.0.0/33", "prefix length 33 is larger than 32"},
      {"10.0.0/8", "\"10.0.0\" is not an IPv4 or IPv6 address"},
      {"10.0.0.0/x", "prefix length \"x\" is not a number"},
      {"10.0.0.1:0", "port \"0\" is not a number between 1 and 65535"},
      {"10.0.0.1:70000", "port \"70000\" is not a number between 1 and 65535"},
      {"10.0.0.1:", "empty port"},
      {"[2001:db8::1", "missing ']'"},
      {"2001:db8::/129", "prefix length 129 is larger than 128"},
      {"example.com", "is not an IPv4 or IPv6 address"},
  };
  for (const auto& [text, why] : cases) {
    auto d = ParseDestination("to[3]", text);
    ASSERT_FALSE(d.ok()) << text;
    EXPECT_EQ(d.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_THAT(std::string(d.status().message()), ::testing::StartsWith("to[3]: "));
    EXPECT_THAT(std::string(d.status().message()), ::testing::HasSubstr(why)) << text;
  }
}

TEST(U32KeyTest, Ipv4PrefixAndPort) {
  auto d = ParseDestination("to[0]", "10.20.0.0/16:5432");
  ASSERT_TRUE(d.ok());
  const std::vector<U32Key> keys = BuildU32Keys(*d);
  ASSERT_EQ(keys.size(), 2u);
  EXPECT_EQ(keys[0], (U32Key{htonl(0x0A140000), htonl(0xFFFF0000), 16}));
  EXPECT_EQ(keys[1], (U32Key{htonl(5432), htonl(0x0000FFFF), 20}));
}

TEST(U32KeyTest, Ipv4HostWithoutPort) {
  auto d = ParseDestination("to[0]", "192.168.1.7");
  ASSERT_TRUE(d.ok());
  EXPECT_EQ(BuildU32Keys(*d),
            (std::vector<U32Key>{{htonl(0xC0A80107), htonl(0xFFFFFFFF), 16}}));
}

TEST(U32KeyTest, OddPrefixMasksHostBits) {
  auto d = ParseDestination("to[0]", "10.1.2.3/23");
  ASSERT_TRUE(d.ok());
  EXPECT_EQ(BuildU32Keys(*d), (std::vector<U32Key>{{htonl(0x0A010200), htonl(0xFFFFFE00), 16}}));
}

TEST(U32KeyTest, DefaultRouteMatchesEverything) {
  auto d = ParseDestination("to[0]", "0.0.0.0/0");
  ASSERT_TRUE(d.ok());
  EXPECT_EQ(BuildU32Keys(*d), (std::vector<U32Key>{{0, 0, 0}}));
  auto with_port = ParseDestination("to[0]", "0.0.0.0/0:53");
  ASSERT_TRUE(with_port.ok());
  EXPECT_EQ(BuildU32Keys(*with_port), (std::vector<U32Key>{{htonl(53), htonl(0xFFFF), 20}}));
}

TEST(U32KeyTest, Ipv6WordsAndPort) {
  auto d = ParseDestination("to[0]", "[2001:db8:ab00::/40]:443");
  ASSERT_TRUE(d.ok());
  const std::vector<U32Key> keys = BuildU32Keys(*d);
  ASSERT_EQ(keys.size(), 3u);
  EXPECT_EQ(keys[0], (U32Key{htonl(0x20010DB8), htonl(0xFFFFFFFF), 24}));
  EXPECT_EQ(keys[1], (U32Key{htonl(0xAB000000), htonl(0xFF000000), 28}));
  EXPECT_EQ(keys[2], (U32Key{htonl(443), htonl(0xFFFF), 40}));
  auto host = ParseDestination("to[0]", "2001:db8::1");
  ASSERT_TRUE(host.ok());
  const std::vector<U32Key> host_keys = BuildU32Keys(*host);
  ASSERT_EQ(host_keys.size(), 4u);
  EXPECT_EQ(host_keys[3], (U32Key{htonl(1), htonl(0xFFFFFFFF), 36}));
}

TEST(TbfParamsTest, SaneBurstAndLimit) {
  const TbfParams slow = TbfParamsForRate(125000);  // 1mbit
  EXPECT_EQ(slow.rate, 125000u);
  EXPECT_EQ(slow.burst, 3028u);  // two frames beat 10 ms (1250 B)
  EXPECT_EQ(slow.limit, 6250u + 3028u);
  const TbfParams fast = TbfParamsForRate(125'000'000);  // 1gbit
  EXPECT_EQ(fast.burst, 1'250'000u);
  EXPECT_EQ(fast.limit, 6'250'000u + 1'250'000u);
  EXPECT_EQ(TbfParamsForRate(1ull << 40).rate, kMaxRate);
}

v1::FaultSpec Netem() {
  v1::FaultSpec s;
  s.mutable_netem()->set_interface("eth0");
  return s;
}

TEST(ParseTcSpecTest, NetemValuesInKernelUnits) {
  v1::FaultSpec s = Netem();
  s.mutable_netem()->set_delay("100ms");
  s.mutable_netem()->set_jitter("10ms");
  s.mutable_netem()->set_delay_correlation("25%");
  s.mutable_netem()->set_loss("5%");
  s.mutable_netem()->set_duplicate("1%");
  s.mutable_netem()->set_corrupt("0.1%");
  s.mutable_netem()->set_reorder("50%");
  auto plan = ParseTcSpec(s);
  ASSERT_TRUE(plan.ok()) << plan.status();
  EXPECT_TRUE(plan->netem);
  EXPECT_EQ(plan->interface, "eth0");
  EXPECT_EQ(plan->params.delay_us, 100000u);
  EXPECT_EQ(plan->params.jitter_us, 10000u);
  EXPECT_EQ(plan->params.delay_correlation, PercentToProb(25));
  EXPECT_EQ(plan->params.loss, PercentToProb(5));
  EXPECT_EQ(plan->params.duplicate, PercentToProb(1));
  EXPECT_EQ(plan->params.corrupt, PercentToProb(0.1));
  EXPECT_EQ(plan->params.reorder, 0x80000000u);
  EXPECT_FALSE(plan->Classful());
}

TEST(ParseTcSpecTest, ClassfulWithToOrNetemRate) {
  v1::FaultSpec s = Netem();
  s.mutable_netem()->set_delay("1ms");
  EXPECT_FALSE(ParseTcSpec(s)->Classful());
  s.mutable_netem()->set_rate("1mbit");
  EXPECT_TRUE(ParseTcSpec(s)->Classful());
  EXPECT_EQ(ParseTcSpec(s)->rate, 125000u);
  v1::FaultSpec b;
  b.mutable_bandwidth()->set_interface("eth0");
  b.mutable_bandwidth()->set_rate("1mbit");
  EXPECT_FALSE(ParseTcSpec(b)->Classful());
  b.mutable_bandwidth()->add_to("10.0.0.0/8");
  EXPECT_TRUE(ParseTcSpec(b)->Classful());
}

struct ValidationCase {
  std::string name;
  std::function<void(v1::NetemFault*)> edit;
  std::string message;
};

TEST(ParseTcSpecTest, ValidationTable) {
  const std::vector<ValidationCase> cases = {
      {"loss over 100", [](v1::NetemFault* s) { s->set_loss("150%"); },
       "loss: must be between 0 and 100, got 150%"},
      {"negative delay", [](v1::NetemFault* s) { s->set_delay("-1ms"); },
       "delay: invalid duration \"-1ms\": must not be negative (use e.g. 250ms, 30s, 5m)"},
      {"huge delay", [](v1::NetemFault* s) { s->set_delay("5m"); },
       "delay: must be at most 60s, got 5m"},
      {"jitter alone", [](v1::NetemFault* s) { s->clear_delay(); s->set_loss("1%"); s->set_jitter("1ms"); },
       "jitter: needs delay"},
      {"reorder without delay",
       [](v1::NetemFault* s) { s->clear_delay(); s->set_loss("1%"); s->set_reorder("10%"); },
       "reorder: needs a non-zero delay"},
      {"nothing to do", [](v1::NetemFault* s) { s->clear_delay(); },
       "netem: give at least one of delay, loss, duplicate, corrupt, reorder, rate"},
      {"no interface", [](v1::NetemFault* s) { s->clear_interface(); }, "interface: required"},
      {"slash in interface", [](v1::NetemFault* s) { s->set_interface("../eth0"); },
       "interface: \"../eth0\" is not an interface name"},
      {"long interface", [](v1::NetemFault* s) { s->set_interface("abcdefghijklmnop"); },
       "interface: \"abcdefghijklmnop\" is not an interface name"},
      {"bad to", [](v1::NetemFault* s) { s->add_to("10.0.0.0/8"); s->add_to("10.0.0.0/40"); },
       "to[1]: invalid destination \"10.0.0.0/40\": prefix length 40 is larger than 32 (use "
       "CIDR[:PORT], e.g. 10.0.0.0/8, 10.1.2.3:443, [2001:db8::/32]:443)"},
      {"bad rate", [](v1::NetemFault* s) { s->set_rate("1 furlong"); },
       "rate: invalid rate \"1 furlong\": expected a number (use e.g. 1mbit, 500kbit)"},
      {"huge rate", [](v1::NetemFault* s) { s->set_rate("100gbit"); },
       "rate: at most 17gbit is supported, got 100gbit"},
      {"bad percent", [](v1::NetemFault* s) { s->set_corrupt("lots"); },
       "corrupt: invalid percentage \"lots\" (use e.g. 5%)"},
  };
  for (const ValidationCase& c : cases) {
    v1::FaultSpec s = Netem();
    s.mutable_netem()->set_delay("10ms");
    c.edit(s.mutable_netem());
    auto plan = ParseTcSpec(s);
    ASSERT_FALSE(plan.ok()) << c.name;
    EXPECT_EQ(plan.status().code(), absl::StatusCode::kInvalidArgument) << c.name;
    EXPECT_EQ(plan.status().message(), c.message) << c.name;
    // spec::Validate, the one validation, names the field's path in FaultSpec.
    s.set_duration("30s");
    const std::string path = c.message.rfind("netem:", 0) == 0 ? c.message : "netem." + c.message;
    EXPECT_EQ(spec::Validate(s).status().message(), path) << c.name;
  }
}

// (A bandwidth spec cannot carry netem settings: BandwidthFault has no such fields.)
TEST(ParseTcSpecTest, BandwidthNeedsRate) {
  v1::FaultSpec b;
  b.mutable_bandwidth()->set_interface("eth0");
  EXPECT_EQ(ParseTcSpec(b).status().message(), "rate: required for bandwidth, e.g. 1mbit");
  b.mutable_bandwidth()->set_rate("10mbit");
  ASSERT_TRUE(ParseTcSpec(b).ok());
  EXPECT_FALSE(ParseTcSpec(b)->netem);
  EXPECT_EQ(ParseTcSpec(b)->rate, 1250000u);
}

}  // namespace
}  // namespace faultline::agent::net
