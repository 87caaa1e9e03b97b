// Parsing and rendering of nft command text (no kernel access).
#include "agent/faults/nft/nft_rules.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <sys/socket.h>

#include <chrono>

#include "spec/fault_spec.h"

namespace faultline::agent::nft {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using namespace std::chrono_literals;

Cidr C(const std::string& text) {
  auto c = ParseCidr("test", text);
  EXPECT_TRUE(c.ok()) << c.status();
  return c.ok() ? *c : Cidr{};
}

TEST(ParseCidrTest, RendersThroughInetNtop) {
  EXPECT_EQ(C("10.0.0.0/24").ToString(), "10.0.0.0/24");
  EXPECT_EQ(C("10.0.0.7/24").ToString(), "10.0.0.0/24");  // host bits cleared
  EXPECT_EQ(C("10.1.2.3").ToString(), "10.1.2.3");
  EXPECT_EQ(C("10.1.2.3/32").ToString(), "10.1.2.3");
  EXPECT_EQ(C("0.0.0.0/0").ToString(), "0.0.0.0/0");
  EXPECT_EQ(C("10.128.0.0/9").ToString(), "10.128.0.0/9");
  EXPECT_EQ(C("10.255.255.255/9").ToString(), "10.128.0.0/9");
  EXPECT_EQ(C("FD00:0:0:0::1/64").ToString(), "fd00::/64");
  EXPECT_EQ(C("2001:db8::1").ToString(), "2001:db8::1");
  EXPECT_EQ(C("2001:db8::ff/121").ToString(), "2001:db8::80/121");
  EXPECT_EQ(C("::/0").ToString(), "::/0");
  EXPECT_EQ(C("10.0.0.0/24").family, AF_INET);
  EXPECT_EQ(C("::1").family, AF_INET6);
}

TEST(ParseCidrTest, RejectsWithFieldName) {
  for (const std::string bad :
       {"10.0.0.300/24", "10.0.0.0/33", "fd00::/129", "10.0.0/24", "10.0.0.0/", "10.0.0.0/-1",
        "10.0.0.0/+8", "10.0.0.0/08x", "", " 10.0.0.1", "10.0.0.1 ", "010.0.0.1",
        "host.example", "10.0.0.1/24/8", "fe80::1%eth0", "10.0.0.1/0024"}) {
    auto c = ParseCidr("peers[1]", bad);
    ASSERT_FALSE(c.ok()) << bad;
    EXPECT_EQ(c.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_EQ(std::string(c.status().message()), "peers[1]: \"" + bad + "\" is not a CIDR");
  }
}

TEST(ParseCidrTest, InjectionAttemptsAreNotCidrs) {
  for (const std::string& bad : std::vector<std::string>{
           "10.0.0.1; flush ruleset", "10.0.0.1\nflush ruleset", "10.0.0.1/24; delete table inet x",
        "10.0.0.1 } ; flush ruleset ; {", "@peers4", "$var", "10.0.0.1/24 timeout 1d",
        "10.0.0.1,10.0.0.2", "{ 10.0.0.1 }", "10.0.0.1/24\"", std::string("10.0.0.1\0x", 10)}) {
    EXPECT_FALSE(ParseCidr("peers[0]", bad).ok()) << bad;
  }
}

TEST(CidrTest, ContainsAndOverlaps) {
  EXPECT_TRUE(C("10.0.0.0/8").Contains(C("10.1.0.0/16")));
  EXPECT_FALSE(C("10.1.0.0/16").Contains(C("10.0.0.0/8")));
  EXPECT_TRUE(C("10.1.0.0/16").Overlaps(C("10.0.0.0/8")));
  EXPECT_FALSE(C("10.0.0.0/24").Overlaps(C("10.0.1.0/24")));
  EXPECT_TRUE(C("0.0.0.0/0").Contains(C("192.168.1.1")));
  EXPECT_FALSE(C("0.0.0.0/0").Contains(C("::1")));
  EXPECT_TRUE(C("fd00::/8").Contains(C("fd12::1")));
}

TEST(NormalizeCidrsTest, DropsDuplicatesAndNested) {
  std::vector<std::string> dropped;
  auto out = NormalizeCidrs({C("10.1.0.0/16"), C("fd00::/64"), C("10.0.0.0/8"), C("192.168.1.1"),
                             C("10.0.0.0/8"), C("fd00::5")},
                            &dropped);
  std::vector<std::string> rendered;
  for (const auto& c : out) rendered.push_back(c.ToString());
  EXPECT_THAT(rendered, ElementsAre("10.0.0.0/8", "192.168.1.1", "fd00::/64"));
  EXPECT_THAT(dropped, ElementsAre("10.1.0.0/16 is inside 10.0.0.0/8", "fd00::5 is inside fd00::/64"));
}

TEST(ParsePortsTest, RangeAndDedup) {
  auto ok = ParsePorts({443, 80, 443, 65535, 1});
  ASSERT_TRUE(ok.ok());
  EXPECT_THAT(*ok, ElementsAre(1, 80, 443, 65535));
  auto zero = ParsePorts({80, 0});
  ASSERT_FALSE(zero.ok());
  EXPECT_EQ(std::string(zero.status().message()), "ports[1]: must be 1-65535");
  auto big = ParsePorts({65536});
  ASSERT_FALSE(big.ok());
  EXPECT_EQ(std::string(big.status().message()), "ports[0]: must be 1-65535");
}

// Builds a partition spec from one CLI flag's text, as `faultline inject
// partition --FLAG VALUE` does (YAML takes the same path).
absl::StatusOr<v1::FaultSpec> PartitionWithFlag(const std::string& flag, const std::string& value) {
  const spec::FaultKind* kind = spec::FindKind("partition");
  for (const spec::Flag& f : kind->flags) {
    if (f.name == flag) return spec::BuildFromFlags(*kind, {{&f, {value}}});
  }
  return absl::NotFoundError(flag);
}

TEST(EnumsTest, ProtocolAndDirection) {
  EXPECT_EQ(FromProto(v1::PROTOCOL_UNSPECIFIED), Protocol::kAny);
  EXPECT_EQ(FromProto(v1::PROTOCOL_ANY), Protocol::kAny);
  EXPECT_EQ(FromProto(v1::PROTOCOL_TCP), Protocol::kTcp);
  EXPECT_EQ(FromProto(v1::PROTOCOL_UDP), Protocol::kUdp);
  EXPECT_EQ(FromProto(v1::DIRECTION_UNSPECIFIED), Direction::kBoth);
  EXPECT_EQ(FromProto(v1::DIRECTION_BOTH), Direction::kBoth);
  EXPECT_EQ(FromProto(v1::DIRECTION_INGRESS), Direction::kIngress);
  EXPECT_EQ(FromProto(v1::DIRECTION_EGRESS), Direction::kEgress);
  // Text becomes an enum only through the spec's conversion (flags, YAML),
  // which refuses anything but the names (in any case: "TCP" is tcp).
  EXPECT_EQ(PartitionWithFlag("protocol", "tcp")->partition().protocol(), v1::PROTOCOL_TCP);
  EXPECT_EQ(PartitionWithFlag("protocol", "udp")->partition().protocol(), v1::PROTOCOL_UDP);
  for (const char* bad : {"icmp", "tcp; flush ruleset", "sctp"}) {
    auto p = PartitionWithFlag("protocol", bad);
    ASSERT_FALSE(p.ok()) << bad;
    EXPECT_EQ(p.status().code(), absl::StatusCode::kInvalidArgument) << bad;
    EXPECT_THAT(std::string(p.status().message()), HasSubstr("partition.protocol: must be one of"))
        << bad;
  }
  EXPECT_EQ(PartitionWithFlag("direction", "both")->partition().direction(), v1::DIRECTION_BOTH);
  EXPECT_EQ(PartitionWithFlag("direction", "ingress")->partition().direction(),
            v1::DIRECTION_INGRESS);
  EXPECT_EQ(PartitionWithFlag("direction", "egress")->partition().direction(), v1::DIRECTION_EGRESS);
  for (const char* bad : {"in", "egress; flush ruleset"}) {
    auto d = PartitionWithFlag("direction", bad);
    ASSERT_FALSE(d.ok()) << bad;
    EXPECT_EQ(d.status().code(), absl::StatusCode::kInvalidArgument) << bad;
    EXPECT_THAT(std::string(d.status().message()), HasSubstr("partition.direction: must be one of"))
        << bad;
  }
}

TEST(TableNameTest, FromIdOnly) {
  EXPECT_EQ(*TableNameForId("3F2A9C1B"), "faultline-3f2a9c1b");
  EXPECT_EQ(*TableNameForId("f-0001"), "faultline-f0001");
  EXPECT_EQ(*TableNameForId("x; flush ruleset"), "faultline-xflushruleset");
  EXPECT_FALSE(TableNameForId("").ok());
  EXPECT_FALSE(TableNameForId(";-_ ").ok());
  const std::string long_a(40, 'a');
  const std::string long_b = std::string(39, 'a') + "b";
  auto a = TableNameForId(long_a);
  auto b = TableNameForId(long_b);
  ASSERT_TRUE(a.ok() && b.ok());
  EXPECT_NE(*a, *b);
  EXPECT_EQ(a->size(), std::string("faultline-").size() + 32);
  EXPECT_TRUE(IsOurTableName(*a));
}

TEST(TableNameTest, IsOurTableName) {
  EXPECT_TRUE(IsOurTableName("faultline-abc123"));
  EXPECT_TRUE(IsOurTableName("faultline"));
  EXPECT_FALSE(IsOurTableName("filter"));
  EXPECT_FALSE(IsOurTableName("faultline-ABC"));
  EXPECT_FALSE(IsOurTableName("faultline-a;flush ruleset"));
  EXPECT_FALSE(IsOurTableName("faultline-a b"));
  EXPECT_FALSE(IsOurTableName("xfaultline"));
  EXPECT_FALSE(IsOurTableName("faultline-" + std::string(60, 'a')));
}

TEST(RenderTimeoutTest, Integers) {
  EXPECT_EQ(RenderTimeout(2s), "2s");
  EXPECT_EQ(RenderTimeout(30s), "30s");
  EXPECT_EQ(RenderTimeout(90s), "1m30s");
  EXPECT_EQ(RenderTimeout(1500ms), "1s500ms");
  EXPECT_EQ(RenderTimeout(std::chrono::hours(25) + 1ms), "1d1h1ms");
  EXPECT_EQ(RenderTimeout(1ns), "1ms");  // never zero
  EXPECT_EQ(RenderTimeout(0ns), "1ms");
  EXPECT_EQ(RenderTimeout(2000000001ns), "2s1ms");  // rounds up
}

BlockSpec Spec() {
  BlockSpec b;
  b.peers = {C("10.0.0.0/24")};
  return b;
}

TEST(BuildApplyCommandsTest, DropBothDirectionsAllTraffic) {
  EXPECT_EQ(BuildApplyCommands("faultline-abc", Spec(), 30s),
            "create table inet faultline-abc\n"
            "add set inet faultline-abc peers4 { type ipv4_addr; flags interval, timeout; }\n"
            "add element inet faultline-abc peers4 { 10.0.0.0/24 timeout 30s }\n"
            "add chain inet faultline-abc input { type filter hook input priority -300; policy accept; }\n"
            "add chain inet faultline-abc output { type filter hook output priority -300; policy accept; }\n"
            "add rule inet faultline-abc input iif \"lo\" accept\n"
            "add rule inet faultline-abc input ip saddr @peers4 drop\n"
            "add rule inet faultline-abc output oif \"lo\" accept\n"
            "add rule inet faultline-abc output ip daddr @peers4 drop\n");
}

TEST(BuildApplyCommandsTest, PortsProtocolEgressRejectWithExemptions) {
  BlockSpec b;
  b.peers = {C("10.0.0.0/24"), C("fd00::/64")};
  b.ports = {80, 443};
  b.protocol = Protocol::kTcp;
  b.direction = Direction::kEgress;
  b.reject = true;
  b.protected_cidrs = {C("10.0.0.5/32")};
  b.control = *ParseControlAddresses({"10.0.0.9:7100", "unix:/run/faultline.sock", "[::]:7200"});
  EXPECT_EQ(BuildApplyCommands("faultline-x1", b, 2500ms),
            "create table inet faultline-x1\n"
            "add set inet faultline-x1 peers4 { type ipv4_addr; flags interval, timeout; }\n"
            "add element inet faultline-x1 peers4 { 10.0.0.0/24 timeout 2s500ms }\n"
            "add set inet faultline-x1 peers6 { type ipv6_addr; flags interval, timeout; }\n"
            "add element inet faultline-x1 peers6 { fd00::/64 timeout 2s500ms }\n"
            "add chain inet faultline-x1 output { type filter hook output priority -300; policy accept; }\n"
            "add rule inet faultline-x1 output oif \"lo\" accept\n"
            "add rule inet faultline-x1 output ip daddr 10.0.0.9 tcp dport 7100 accept\n"
            "add rule inet faultline-x1 output ip saddr 10.0.0.9 tcp sport 7100 accept\n"
            "add rule inet faultline-x1 output tcp dport 7200 accept\n"
            "add rule inet faultline-x1 output tcp sport 7200 accept\n"
            "add rule inet faultline-x1 output ip daddr 10.0.0.5 accept\n"
            "add rule inet faultline-x1 output ip daddr @peers4 tcp dport { 80, 443 } reject with tcp reset\n"
            "add rule inet faultline-x1 output ip daddr @peers4 tcp sport { 80, 443 } reject with tcp reset\n"
            "add rule inet faultline-x1 output ip6 daddr @peers6 tcp dport { 80, 443 } reject with tcp reset\n"
            "add rule inet faultline-x1 output ip6 daddr @peers6 tcp sport { 80, 443 } reject with tcp reset\n");
}

TEST(RenderRuleBodiesTest, IngressUdpAndAnyProtocolPorts) {
  BlockSpec b = Spec();
  b.direction = Direction::kIngress;
  b.protocol = Protocol::kUdp;
  EXPECT_THAT(RenderRuleBodies(b),
              ElementsAre(std::pair<std::string, std::string>("input", "iif \"lo\" accept"),
                          std::pair<std::string, std::string>(
                              "input", "ip saddr @peers4 meta l4proto udp drop")));
  b.protocol = Protocol::kAny;
  b.ports = {53};
  b.reject = true;
  std::vector<std::string> bodies;
  for (const auto& r : RenderRuleBodies(b)) bodies.push_back(r.second);
  EXPECT_THAT(bodies,
              ElementsAre("iif \"lo\" accept",
                          "ip saddr @peers4 tcp dport 53 reject with tcp reset",
                          "ip saddr @peers4 tcp sport 53 reject with tcp reset",
                          "ip saddr @peers4 udp dport 53 reject with icmpx type port-unreachable",
                          "ip saddr @peers4 udp sport 53 reject with icmpx type port-unreachable"));
}

TEST(RenderRuleBodiesTest, RejectAllProtocolsResetsTcpFirst) {
  BlockSpec b;
  b.peers = {C("fd00::/64")};
  b.direction = Direction::kEgress;
  b.reject = true;
  std::vector<std::string> bodies;
  for (const auto& r : RenderRuleBodies(b)) bodies.push_back(r.second);
  EXPECT_THAT(bodies, ElementsAre("oif \"lo\" accept",
                                  "ip6 daddr @peers6 meta l4proto tcp reject with tcp reset",
                                  "ip6 daddr @peers6 reject with icmpx type port-unreachable"));
}

TEST(ControlAddressesTest, HostsWildcardsAndUnix) {
  auto ex = ParseControlAddresses(
      {"10.0.0.9:7100", "unix:/run/x.sock", "0.0.0.0:7200", "ctl.example:7300", "[fd00::9]:7400"});
  ASSERT_TRUE(ex.ok()) << ex.status();
  ASSERT_EQ(ex->size(), 4u);
  EXPECT_EQ((*ex)[0].host->ToString(), "10.0.0.9");
  EXPECT_EQ((*ex)[0].port, 7100);
  EXPECT_FALSE((*ex)[1].host.has_value());
  EXPECT_EQ((*ex)[1].port, 7200);
  EXPECT_FALSE((*ex)[2].host.has_value());
  EXPECT_EQ((*ex)[2].port, 7300);
  EXPECT_EQ((*ex)[3].host->ToString(), "fd00::9");
  auto bad = ParseControlAddresses({"10.0.0.1:99999"});
  ASSERT_FALSE(bad.ok());
  EXPECT_THAT(std::string(bad.status().message()), HasSubstr("control_addresses[0]"));
}

TEST(BuildDeleteCommandTest, OnlyOurTable) {
  EXPECT_EQ(BuildDeleteCommand("faultline-abc"), "delete table inet faultline-abc\n");
}

TEST(ParseTableListTest, Lines) {
  auto t = ParseTableList("table inet filter\ntable ip faultline-a\n\ngarbage line here extra\n");
  EXPECT_THAT(t, ElementsAre(std::pair<std::string, std::string>("inet", "filter"),
                             std::pair<std::string, std::string>("ip", "faultline-a")));
}

TEST(ParseResolvConfTest, Nameservers) {
  std::vector<std::string> skipped;
  auto ns = ParseResolvConf(
      "# comment\nsearch example.com\nnameserver 10.0.0.2\nnameserver  fd00::53 # x\n"
      "nameserver fe80::1%eth0\n;nameserver 9.9.9.9\noptions ndots:2\nnameserver 1.1.1.1; x\n",
      &skipped);
  EXPECT_THAT(ns, ElementsAre("10.0.0.2", "fd00::53", "1.1.1.1"));
  EXPECT_THAT(skipped, ElementsAre("fe80::1%eth0"));
}

TEST(ExemptionNotesTest, PeersCoveringExemptAddresses) {
  BlockSpec b;
  b.peers = {C("10.0.0.0/8"), C("127.0.0.0/16")};
  b.protected_cidrs = {C("10.9.0.0/16")};
  b.control = *ParseControlAddresses({"10.0.0.9:7100"});
  EXPECT_THAT(
      ExemptionNotes(b),
      ElementsAre(
          "note: peer 10.0.0.0/8 covers control address 10.0.0.9:7100: its TCP port 7100 stays "
          "reachable (accept rules come first)",
          "note: peer 10.0.0.0/8 overlaps protected CIDR 10.9.0.0/16: that traffic stays exempt "
          "(accept rules come first)",
          "note: peer 127.0.0.0/16 covers loopback: loopback traffic stays exempt"));
}

}  // namespace
}  // namespace faultline::agent::nft
