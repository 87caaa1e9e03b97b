// Validate() of the partition and dns handlers: a table of inputs and the
// exact field-naming errors (no kernel access: Validate never touches it).
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <functional>
#include <string>

#include "agent/faults/nft/dns.h"
#include "agent/faults/nft/partition.h"

namespace faultline::agent::nft {
namespace {

using ::testing::HasSubstr;

v1::FaultSpec Partition(std::function<void(v1::FaultSpec*)> edit) {
  v1::FaultSpec s;
  s.set_kind("partition");
  s.set_duration("30s");
  s.add_peers("10.0.0.0/24");
  edit(&s);
  return s;
}

struct Case {
  const char* name;
  std::function<void(v1::FaultSpec*)> edit;
  const char* error;  // "" = valid
};

TEST(PartitionValidateTest, Table) {
  const Case cases[] = {
      {"minimal", [](v1::FaultSpec*) {}, ""},
      {"v6 and ports", [](v1::FaultSpec* s) { s->add_peers("fd00::/64"); s->add_ports(80); s->set_protocol("tcp"); s->set_direction("egress"); s->set_reject(true); }, ""},
      {"ingress udp", [](v1::FaultSpec* s) { s->set_protocol("udp"); s->set_direction("ingress"); }, ""},
      {"bad cidr", [](v1::FaultSpec* s) { s->add_peers("10.0.0.300/24"); }, "peers[1]: \"10.0.0.300/24\" is not a CIDR"},
      {"prefix too long", [](v1::FaultSpec* s) { s->add_peers("10.0.0.0/33"); }, "peers[1]: \"10.0.0.0/33\" is not a CIDR"},
      {"injection in peer", [](v1::FaultSpec* s) { s->set_peers(0, "10.0.0.1; flush ruleset"); }, "peers[0]: \"10.0.0.1; flush ruleset\" is not a CIDR"},
      {"injection with newline", [](v1::FaultSpec* s) { s->set_peers(0, "10.0.0.1\nflush ruleset"); }, "peers[0]: \"10.0.0.1\nflush ruleset\" is not a CIDR"},
      {"no peers", [](v1::FaultSpec* s) { s->clear_peers(); }, "peers: at least one CIDR is required"},
      {"port zero", [](v1::FaultSpec* s) { s->add_ports(0); }, "ports[0]: must be 1-65535"},
      {"port too big", [](v1::FaultSpec* s) { s->add_ports(80); s->add_ports(70000); }, "ports[1]: must be 1-65535"},
      {"bad protocol", [](v1::FaultSpec* s) { s->set_protocol("icmp"); }, "protocol: must be tcp or udp"},
      {"injection in protocol", [](v1::FaultSpec* s) { s->set_protocol("tcp; flush ruleset"); }, "protocol: must be tcp or udp"},
      {"bad direction", [](v1::FaultSpec* s) { s->set_direction("inbound"); }, "direction: must be both, ingress or egress"},
      {"no duration", [](v1::FaultSpec* s) { s->clear_duration(); }, "duration: required for partition faults (e.g. 30s)"},
      {"zero duration", [](v1::FaultSpec* s) { s->set_duration("0s"); }, "duration: must be greater than 0"},
      {"negative duration", [](v1::FaultSpec* s) { s->set_duration("-5s"); }, "duration: invalid duration \"-5s\": must not be negative (use e.g. 250ms, 30s, 5m)"},
      {"resolvers", [](v1::FaultSpec* s) { s->add_resolvers("10.0.0.2"); }, "resolvers: only dns faults take resolvers (use peers)"},
      {"bad netns name", [](v1::FaultSpec* s) { s->set_netns("../etc"); }, "netns: \"../etc\" is not a namespace name (letters, digits, _ . -) or an absolute path"},
      {"netns and pid", [](v1::FaultSpec* s) { s->set_netns("x"); s->set_netns_pid(1); }, "netns: give either netns or netns_pid, not both"},
  };
  PartitionHandler handler;
  FaultContext ctx;
  for (const Case& c : cases) {
    absl::Status st = handler.Validate(Partition(c.edit), ctx);
    if (std::string(c.error).empty()) {
      EXPECT_TRUE(st.ok()) << c.name << ": " << st;
    } else {
      EXPECT_EQ(st.code(), absl::StatusCode::kInvalidArgument) << c.name << ": " << st;
      EXPECT_EQ(std::string(st.message()), c.error) << c.name;
    }
  }
}

v1::FaultSpec Dns(std::function<void(v1::FaultSpec*)> edit) {
  v1::FaultSpec s;
  s.set_kind("dns");
  s.set_duration("10s");
  edit(&s);
  return s;
}

TEST(DnsValidateTest, Table) {
  const Case cases[] = {
      {"from resolv.conf", [](v1::FaultSpec*) {}, ""},
      {"resolvers", [](v1::FaultSpec* s) { s->add_resolvers("10.0.0.2"); s->add_resolvers("fd00::53"); }, ""},
      {"bad resolver", [](v1::FaultSpec* s) { s->add_resolvers("10.0.0.2"); s->add_resolvers("dns.example"); }, "resolvers[1]: \"dns.example\" is not a CIDR"},
      {"injection in resolver", [](v1::FaultSpec* s) { s->add_resolvers("1.1.1.1 } ; flush ruleset"); }, "resolvers[0]: \"1.1.1.1 } ; flush ruleset\" is not a CIDR"},
      {"peers", [](v1::FaultSpec* s) { s->add_peers("10.0.0.0/8"); }, "peers: not used by dns faults (give resolvers)"},
      {"ports", [](v1::FaultSpec* s) { s->add_ports(5353); }, "ports: not used by dns faults (they block port 53)"},
      {"protocol", [](v1::FaultSpec* s) { s->set_protocol("udp"); }, "protocol: not used by dns faults (they block udp and tcp)"},
      {"direction", [](v1::FaultSpec* s) { s->set_direction("sideways"); }, "direction: must be both, ingress or egress"},
      {"no duration", [](v1::FaultSpec* s) { s->clear_duration(); }, "duration: required for dns faults (e.g. 30s)"},
  };
  DnsHandler handler;
  FaultContext ctx;
  for (const Case& c : cases) {
    absl::Status st = handler.Validate(Dns(c.edit), ctx);
    if (std::string(c.error).empty()) {
      EXPECT_TRUE(st.ok()) << c.name << ": " << st;
    } else {
      EXPECT_EQ(st.code(), absl::StatusCode::kInvalidArgument) << c.name << ": " << st;
      EXPECT_EQ(std::string(st.message()), c.error) << c.name;
    }
  }
}

TEST(NftTableFaultTest, FullBlockIncludesPolicyAndControl) {
  PartitionHandler handler;
  v1::Policy policy;
  policy.add_protected_cidrs("192.168.0.0/16");
  FaultContext ctx;
  ctx.policy = &policy;
  ctx.control_addresses = {"10.0.0.9:7100"};
  Detail detail;
  std::vector<std::string> notes;
  auto block = handler.MakeFullBlock(Partition([](v1::FaultSpec* s) { s->add_peers("10.0.0.5"); }),
                                     ctx, "", &detail, &notes);
  ASSERT_TRUE(block.ok()) << block.status();
  ASSERT_EQ(block->peers.size(), 1u);  // 10.0.0.5 is inside 10.0.0.0/24
  EXPECT_THAT(notes, testing::ElementsAre("note: peer 10.0.0.5 is inside 10.0.0.0/24"));
  ASSERT_EQ(block->protected_cidrs.size(), 1u);
  EXPECT_EQ(block->protected_cidrs[0].ToString(), "192.168.0.0/16");
  ASSERT_EQ(block->control.size(), 1u);

  policy.add_protected_cidrs("not-a-cidr");
  auto bad = handler.MakeFullBlock(Partition([](v1::FaultSpec*) {}), ctx, "", &detail, &notes);
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(std::string(bad.status().message()), HasSubstr("policy.protected_cidrs[1]"));
}

TEST(DnsBlockTest, ResolvConfAndDetailRoundTrip) {
  char path[] = "/tmp/fltest-resolv-XXXXXX";
  int fd = mkstemp(path);
  ASSERT_GE(fd, 0);
  const std::string text = "nameserver 10.77.0.2\nnameserver fd77::2\nnameserver 10.77.0.2\n";
  ASSERT_EQ(write(fd, text.data(), text.size()), static_cast<ssize_t>(text.size()));
  close(fd);
  DnsHandler handler(path);
  FaultContext ctx;
  Detail detail;
  std::vector<std::string> notes;
  auto block = handler.MakeFullBlock(Dns([](v1::FaultSpec*) {}), ctx, "", &detail, &notes);
  unlink(path);
  ASSERT_TRUE(block.ok()) << block.status();
  EXPECT_EQ(detail["resolvers"], "10.77.0.2,fd77::2");
  EXPECT_THAT(block->ports, testing::ElementsAre(53));
  EXPECT_EQ(block->protocol, Protocol::kAny);
  // Apply reads Plan's pick back from the record, not the file (now gone).
  auto again = handler.MakeFullBlock(Dns([](v1::FaultSpec*) {}), ctx, "", &detail, &notes);
  ASSERT_TRUE(again.ok()) << again.status();
  EXPECT_EQ(again->peers, block->peers);
  // A tampered record is parsed, not trusted.
  detail["resolvers"] = "10.77.0.2; flush ruleset";
  auto tampered = handler.MakeFullBlock(Dns([](v1::FaultSpec*) {}), ctx, "", &detail, &notes);
  EXPECT_FALSE(tampered.ok());
}

TEST(DnsBlockTest, MissingResolvConfIsAPrecondition) {
  DnsHandler handler("/nonexistent/fltest/resolv.conf");
  FaultContext ctx;
  Detail detail;
  std::vector<std::string> notes;
  auto block = handler.MakeFullBlock(Dns([](v1::FaultSpec*) {}), ctx, "", &detail, &notes);
  ASSERT_FALSE(block.ok());
  EXPECT_EQ(block.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(std::string(block.status().message()), HasSubstr("resolvers: none given and"));
}

TEST(DetailTest, RoundTrip) {
  Detail d{{"netns_ino", "4026532"}, {"resolvers", "10.0.0.2"}};
  EXPECT_EQ(SerializeDetail(d), "netns_ino=4026532\nresolvers=10.0.0.2\n");
  EXPECT_EQ(ParseDetail(SerializeDetail(d)), d);
}

}  // namespace
}  // namespace faultline::agent::nft
