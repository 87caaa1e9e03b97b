// Validation of partition and dns specs (spec::Validate, then the handlers'
// Validate): a table of inputs and the exact field-naming errors (no kernel
// access: neither touches it).
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <fstream>
#include <functional>
#include <string>

#include "agent/faults/nft/dns.h"
#include "agent/faults/nft/partition.h"
#include "agent/faults/netns.h"
#include "spec/fault_spec.h"

namespace faultline::agent::nft {
namespace {

using ::testing::HasSubstr;

v1::FaultSpec Partition(std::function<void(v1::FaultSpec*)> edit) {
  v1::FaultSpec s;
  s.set_duration("30s");
  s.mutable_partition()->add_peers("10.0.0.0/24");
  edit(&s);
  return s;
}

struct Case {
  const char* name;
  std::function<void(v1::FaultSpec*)> edit;
  const char* error;  // "" = valid
};

// The spec's rules are spec::Validate's (the FaultManager runs it first);
// the handler's Validate adds only host checks (the namespace exists), so it
// accepts every valid spec here.
void CheckTable(const FaultHandler& handler, const v1::FaultSpec& spec, const Case& c) {
  absl::Status st = spec::Validate(spec).status();
  if (std::string(c.error).empty()) {
    EXPECT_TRUE(st.ok()) << c.name << ": " << st;
    EXPECT_TRUE(handler.Validate(spec, FaultContext()).ok()) << c.name;
  } else {
    EXPECT_EQ(st.code(), absl::StatusCode::kInvalidArgument) << c.name << ": " << st;
    EXPECT_EQ(std::string(st.message()), c.error) << c.name;
  }
}

// (Text in protocol or direction, and fields of the other kind — resolvers on
// a partition; peers, ports, protocol on dns — cannot be written any more: the
// kinds are typed messages with enums. nft_rules_test checks that the text
// conversion refuses bad enum names.)
TEST(PartitionValidateTest, Table) {
  const Case cases[] = {
      {"minimal", [](v1::FaultSpec*) {}, ""},
      {"v6 and ports", [](v1::FaultSpec* s) { auto* p = s->mutable_partition(); p->add_peers("fd00::/64"); p->add_ports(80); p->set_protocol(v1::PROTOCOL_TCP); p->set_direction(v1::DIRECTION_EGRESS); p->set_reject(true); }, ""},
      {"ingress udp", [](v1::FaultSpec* s) { s->mutable_partition()->set_protocol(v1::PROTOCOL_UDP); s->mutable_partition()->set_direction(v1::DIRECTION_INGRESS); }, ""},
      {"bad cidr", [](v1::FaultSpec* s) { s->mutable_partition()->add_peers("10.0.0.300/24"); }, "partition.peers[1]: \"10.0.0.300/24\" is not a CIDR"},
      {"prefix too long", [](v1::FaultSpec* s) { s->mutable_partition()->add_peers("10.0.0.0/33"); }, "partition.peers[1]: \"10.0.0.0/33\" is not a CIDR"},
      {"injection in peer", [](v1::FaultSpec* s) { s->mutable_partition()->set_peers(0, "10.0.0.1; flush ruleset"); }, "partition.peers[0]: \"10.0.0.1; flush ruleset\" is not a CIDR"},
      {"injection with newline", [](v1::FaultSpec* s) { s->mutable_partition()->set_peers(0, "10.0.0.1\nflush ruleset"); }, "partition.peers[0]: \"10.0.0.1\\x0aflush ruleset\" is not a CIDR"},
      {"no peers", [](v1::FaultSpec* s) { s->mutable_partition()->clear_peers(); }, "partition.peers: at least one CIDR is required"},
      {"port zero", [](v1::FaultSpec* s) { s->mutable_partition()->add_ports(0); }, "partition.ports[0]: must be 1-65535"},
      {"port too big", [](v1::FaultSpec* s) { s->mutable_partition()->add_ports(80); s->mutable_partition()->add_ports(70000); }, "partition.ports[1]: must be 1-65535"},
      {"no duration", [](v1::FaultSpec* s) { s->clear_duration(); }, "duration: required for partition (e.g. 30s)"},
      {"zero duration", [](v1::FaultSpec* s) { s->set_duration("0s"); }, "duration: must be greater than 0"},
      {"negative duration", [](v1::FaultSpec* s) { s->set_duration("-5s"); }, "duration: invalid duration \"-5s\": must not be negative (use e.g. 250ms, 30s, 5m)"},
      {"bad netns name", [](v1::FaultSpec* s) { s->set_netns("../etc"); }, "netns: \"../etc\" is not a namespace name (letters, digits, _ . -) or an absolute path"},
      {"netns and pid", [](v1::FaultSpec* s) { s->set_netns("x"); s->set_netns_pid(1); }, "netns: give either netns or netns_pid, not both"},
  };
  PartitionHandler handler;
  for (const Case& c : cases) CheckTable(handler, Partition(c.edit), c);
}

v1::FaultSpec Dns(std::function<void(v1::FaultSpec*)> edit) {
  v1::FaultSpec s;
  s.set_duration("10s");
  s.mutable_dns();
  edit(&s);
  return s;
}

TEST(DnsValidateTest, Table) {
  const Case cases[] = {
      {"from resolv.conf", [](v1::FaultSpec*) {}, ""},
      {"resolvers", [](v1::FaultSpec* s) { s->mutable_dns()->add_resolvers("10.0.0.2"); s->mutable_dns()->add_resolvers("fd00::53"); }, ""},
      {"bad resolver", [](v1::FaultSpec* s) { s->mutable_dns()->add_resolvers("10.0.0.2"); s->mutable_dns()->add_resolvers("dns.example"); }, "dns.resolvers[1]: \"dns.example\" is not a CIDR"},
      {"injection in resolver", [](v1::FaultSpec* s) { s->mutable_dns()->add_resolvers("1.1.1.1 } ; flush ruleset"); }, "dns.resolvers[0]: \"1.1.1.1 } ; flush ruleset\" is not a CIDR"},
      {"no duration", [](v1::FaultSpec* s) { s->clear_duration(); }, "duration: required for dns (e.g. 30s)"},
  };
  DnsHandler handler;
  for (const Case& c : cases) CheckTable(handler, Dns(c.edit), c);
}

// `netns` must name a network namespace file (nsfs). A FIFO is refused at
// once (it used to block open() for ever), as are a regular file and another
// kind of namespace; /proc/PID/ns/net (a magic link) still works.
TEST(NetnsTest, OnlyNetworkNamespaceFilesAreOpenedAndNothingBlocks) {
  char dir[] = "/tmp/fltest-netns-XXXXXX";
  ASSERT_NE(mkdtemp(dir), nullptr);
  const std::string fifo = std::string(dir) + "/fifo";
  const std::string file = std::string(dir) + "/file";
  ASSERT_EQ(mkfifo(fifo.c_str(), 0600), 0);
  std::ofstream(file) << "x";
  const auto start = std::chrono::steady_clock::now();
  for (const std::string& path : {fifo, file, std::string("/proc/self/ns/mnt")}) {
    v1::FaultSpec spec = Partition([&](v1::FaultSpec* s) { s->set_netns(path); });
    auto resolved = ResolveNetnsPath(spec);
    ASSERT_FALSE(resolved.ok()) << path;
    EXPECT_EQ(resolved.status().code(), absl::StatusCode::kInvalidArgument) << path;
    EXPECT_THAT(std::string(resolved.status().message()), HasSubstr("netns: " + path)) << path;
    absl::Status run = RunInNetns(path, [] { return absl::OkStatus(); });
    EXPECT_THAT(std::string(run.message()), HasSubstr("netns")) << path;
  }
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(5));
  v1::FaultSpec own = Partition([](v1::FaultSpec* s) { s->set_netns_pid(getpid()); });
  EXPECT_TRUE(ResolveNetnsPath(own).ok());
  EXPECT_TRUE(RunInNetns("/proc/self/ns/net", [] { return absl::OkStatus(); }).ok());
  unlink(fifo.c_str());
  unlink(file.c_str());
  rmdir(dir);
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
  auto block = handler.MakeFullBlock(Partition([](v1::FaultSpec* s) { s->mutable_partition()->add_peers("10.0.0.5"); }),
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

// `keep` CIDRs join the policy's protected ones: exempt, accepted first.
TEST(NftTableFaultTest, PartitionKeepIsExemptLikeProtectedCidrs) {
  PartitionHandler handler;
  v1::Policy policy;
  policy.add_protected_cidrs("192.168.0.0/16");
  FaultContext ctx;
  ctx.policy = &policy;
  Detail detail;
  std::vector<std::string> notes;
  auto block = handler.MakeFullBlock(Partition([](v1::FaultSpec* s) {
                                       s->mutable_partition()->add_peers("10.0.0.0/8");
                                       s->mutable_partition()->add_keep("10.0.0.53");
                                       s->mutable_partition()->add_keep("192.168.1.0/24");
                                     }),
                                     ctx, "", &detail, &notes);
  ASSERT_TRUE(block.ok()) << block.status();
  ASSERT_EQ(block->protected_cidrs.size(), 2u);  // 192.168.1.0/24 is inside the policy's /16
  EXPECT_EQ(block->protected_cidrs[0].ToString(), "10.0.0.53");
  EXPECT_EQ(block->protected_cidrs[1].ToString(), "192.168.0.0/16");
  const std::string rules = BuildApplyCommands("faultline-t", *block, std::chrono::seconds(30));
  EXPECT_THAT(rules, HasSubstr("10.0.0.53"));
  EXPECT_LT(rules.find("10.0.0.53"), rules.find("drop")) << rules;
}

// A partition whose every peer is exempt would create a table and a ledger
// record yet drop nothing: refused at plan time, naming `peers` and the
// exemption. A peer only partly exempt stays legitimate.
TEST(NftTableFaultTest, PartitionOfOnlyExemptPeersIsRefused) {
  PartitionHandler handler;
  v1::Policy policy;
  policy.add_protected_cidrs("10.88.0.200/32");
  FaultContext ctx;
  ctx.policy = &policy;
  ctx.control_addresses = {"10.88.0.2:7500", "unix:/run/faultline/agent.sock"};
  Detail detail;
  std::vector<std::string> notes;
  auto only = [&](std::vector<std::string> peers, std::vector<std::string> keep = {}) {
    return handler.MakeFullBlock(Partition([&](v1::FaultSpec* s) {
                                   s->mutable_partition()->clear_peers();
                                   for (const auto& p : peers) s->mutable_partition()->add_peers(p);
                                   for (const auto& k : keep) s->mutable_partition()->add_keep(k);
                                 }),
                                 ctx, "", &detail, &notes);
  };
  struct Refused {
    absl::StatusOr<BlockSpec> block;
    const char* says;
  };
  for (auto& [block, says] : {Refused{only({"10.88.0.2/32"}), "the control address 10.88.0.2:7500"},
                              Refused{only({"10.88.0.200"}), "policy.protected_cidrs[0]"},
                              Refused{only({"10.88.0.2", "10.88.0.200"}), "protected_cidrs"},
                              Refused{only({"10.1.2.0/24"}, {"10.1.0.0/16"}), "inside keep"}}) {
    ASSERT_FALSE(block.ok()) << says;
    EXPECT_EQ(block.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_THAT(std::string(block.status().message()), HasSubstr("peers: every entry is exempt"));
    EXPECT_THAT(std::string(block.status().message()), HasSubstr(says));
  }
  for (const auto& peer : {"0.0.0.0/0", "10.88.0.0/24", "10.88.0.3"}) {
    EXPECT_TRUE(only({peer}).ok()) << peer;
  }
  EXPECT_TRUE(only({"10.88.0.2", "10.99.0.1"}).ok());
  // dns: port 53 on the controller's host is not its control channel.
  DnsHandler dns;
  auto resolvers = [&](const std::string& r) {
    return dns.MakeFullBlock(Dns([&](v1::FaultSpec* s) { s->mutable_dns()->add_resolvers(r); }),
                             ctx, "", &detail, &notes);
  };
  EXPECT_TRUE(resolvers("10.88.0.2").ok());
  auto protected_resolver = resolvers("10.88.0.200");
  ASSERT_FALSE(protected_resolver.ok());
  EXPECT_THAT(std::string(protected_resolver.status().message()),
              HasSubstr("resolvers: every entry is exempt"));
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
