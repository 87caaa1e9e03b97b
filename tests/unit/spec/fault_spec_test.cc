// The registry of kinds and the one validation of a FaultSpec.
#include "spec/fault_spec.h"

#include <google/protobuf/descriptor.h>

#include <set>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace faultline::spec {
namespace {

using ::testing::HasSubstr;

// ExperimentFault is FaultSpec plus `on`: FromExperimentFault converts on the
// wire, so every FaultSpec field must have the same name, number and type there.
TEST(FaultSpecSchema, ExperimentFaultCarriesEveryFaultSpecField) {
  const auto* spec = v1::FaultSpec::descriptor();
  const auto* entry = v1::ExperimentFault::descriptor();
  for (int i = 0; i < spec->field_count(); ++i) {
    const auto* f = spec->field(i);
    const auto* g = entry->FindFieldByName(f->name());
    ASSERT_NE(g, nullptr) << f->name();
    EXPECT_EQ(g->number(), f->number()) << f->name();
    EXPECT_EQ(g->type(), f->type()) << f->name();
    if (f->message_type() != nullptr) {
      EXPECT_EQ(g->message_type(), f->message_type()) << f->name();
    }
  }
  // Its own fields: `on` and the controller-level zone_outage, which FaultSpec
  // does not have (their numbers are unknown to it, and dropped on conversion).
  EXPECT_EQ(entry->field_count(), spec->field_count() + 2);
  for (const char* own : {"on", "zone_outage"}) {
    const auto* f = entry->FindFieldByName(own);
    ASSERT_NE(f, nullptr) << own;
    EXPECT_EQ(spec->FindFieldByNumber(f->number()), nullptr) << own;
  }
}

TEST(FaultSpecSchema, EveryOneofMemberIsAKindAndBack) {
  const auto* oneof = v1::FaultSpec::descriptor()->FindOneofByName("kind");
  ASSERT_NE(oneof, nullptr);
  ASSERT_EQ(static_cast<size_t>(oneof->field_count()), Kinds().size());
  std::set<std::string> fields;
  for (int i = 0; i < oneof->field_count(); ++i) fields.insert(oneof->field(i)->name());
  for (const FaultKind& k : Kinds()) {
    EXPECT_TRUE(fields.contains(k.field)) << k.field;
    EXPECT_EQ(&KindFor(k.kind_case), &k);
    EXPECT_EQ(FindKind(k.name), &k);
    EXPECT_EQ(FindKind(k.field), &k);
    EXPECT_EQ(oneof->field(0)->containing_oneof(), oneof);
  }
  EXPECT_EQ(KindNames(), "kill, pause, disk-fill, netem, bandwidth, partition, dns");
}

TEST(FromExperimentFault, KeepsEverythingButOn) {
  v1::ExperimentFault f;
  f.set_on("db");
  f.set_duration("30s");
  f.mutable_pause()->mutable_process()->set_name("redis-server");
  f.mutable_pause()->set_mode(v1::SELECTION_MODE_ALL);
  v1::FaultSpec spec = FromExperimentFault(f);
  EXPECT_EQ(spec.duration(), "30s");
  v1::ExperimentFault zone;
  zone.mutable_zone_outage()->set_zone("a");
  EXPECT_EQ(FromExperimentFault(zone).kind_case(), v1::FaultSpec::KIND_NOT_SET);
  EXPECT_EQ(FromExperimentFault(zone).ByteSizeLong(), 0u);
  EXPECT_EQ(spec.pause().process().name(), "redis-server");
  EXPECT_EQ(spec.pause().mode(), v1::SELECTION_MODE_ALL);
  EXPECT_TRUE(spec.GetReflection()->GetUnknownFields(spec).empty());
}

TEST(Validate, NamesTheFieldUnderItsKind) {
  v1::FaultSpec spec;
  spec.set_duration("1m");
  spec.mutable_disk_fill()->set_path("/data");
  spec.mutable_disk_fill()->set_percent(150);
  auto st = Validate(spec);
  EXPECT_EQ(st.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(st.status().message(), "disk_fill.percent: must be between 1 and 100, got 150");

  v1::FaultSpec none;
  EXPECT_THAT(Validate(none).status().message(), HasSubstr("kind: give one fault kind"));

  v1::FaultSpec netns_on_pause;
  netns_on_pause.set_duration("1s");
  netns_on_pause.set_netns("blue");
  netns_on_pause.mutable_pause()->mutable_process()->set_name("x");
  EXPECT_THAT(Validate(netns_on_pause).status().message(),
              HasSubstr("netns: only network faults take a network namespace, not pause"));
}

// A refusal echoes at most 64 bytes of a user's string, escaped: a 1 MiB
// value once made a reply larger than gRPC's metadata limit, so the caller saw
// RESOURCE_EXHAUSTED naming no field.
TEST(Validate, EchoesAtMost64BytesOfAValue) {
  v1::FaultSpec kill;
  kill.mutable_kill()->mutable_process()->set_name(std::string(1 << 20, 'n'));
  auto st = Validate(kill).status();
  EXPECT_EQ(st.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(st.message(), HasSubstr("kill.process.name: \"" + std::string(64, 'n') +
                                      "...(1048576 bytes)\" is longer than 15 characters"));
  EXPECT_LT(st.message().size(), 300u);

  v1::FaultSpec partition;
  partition.set_duration("1s");
  partition.mutable_partition()->add_peers("10.0.0.1\n" + std::string(1 << 20, 'x'));
  st = Validate(partition).status();
  EXPECT_THAT(st.message(), HasSubstr("partition.peers[0]: \"10.0.0.1\\x0axxx"));
  EXPECT_LT(st.message().size(), 300u);

  v1::FaultSpec fill;
  fill.set_duration("1s");
  fill.mutable_disk_fill()->set_path("data");
  fill.mutable_disk_fill()->set_percent(50);
  EXPECT_THAT(Validate(fill).status().message(),
              HasSubstr("path: must be an absolute path, got \"data\""));
}

// Flag values land in proto string fields: a value that is not UTF-8 is
// refused naming its flag (protobuf's own error names nothing).
TEST(BuildFromFlags, RefusesValuesThatAreNotUtf8NamingTheFlag) {
  const FaultKind* pause = FindKind("pause");
  ASSERT_NE(pause, nullptr);
  const Flag* duration = nullptr;
  for (const Flag& f : pause->flags) {
    if (f.name == "duration") duration = &f;
  }
  ASSERT_NE(duration, nullptr);
  auto spec = BuildFromFlags(*pause, {{duration, {"\xff\xfe"}}});
  ASSERT_FALSE(spec.ok());
  EXPECT_EQ(spec.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(spec.status().message(), "--duration: \"\\xff\\xfe\" is not valid UTF-8");
  spec = BuildFromFlags(*pause, {{duration, {"30s"}}});
  ASSERT_TRUE(spec.ok()) << spec.status();
  EXPECT_EQ(spec->duration(), "30s");
}

TEST(Validate, ReturnsTheDurationOfReversibleKindsOnly) {
  v1::FaultSpec pause;
  pause.set_duration("1500ms");
  pause.mutable_pause()->mutable_process()->set_name("x");
  auto checked = Validate(pause);
  ASSERT_TRUE(checked.ok()) << checked.status();
  EXPECT_EQ(checked->kind->name, "pause");
  EXPECT_EQ(checked->duration, std::chrono::milliseconds(1500));

  v1::FaultSpec kill;
  kill.mutable_kill()->mutable_process()->set_name("x");
  checked = Validate(kill);
  ASSERT_TRUE(checked.ok()) << checked.status();
  EXPECT_FALSE(checked->kind->reversible);
  EXPECT_EQ(checked->duration.count(), 0);
}

TEST(Validate, KillRefusesSignalsThatStopOrResume) {
  for (const char* sig : {"STOP", "SIGTSTP", "ttin", "TTOU", "CONT", "19"}) {
    v1::FaultSpec kill;
    kill.mutable_kill()->mutable_process()->set_name("x");
    kill.mutable_kill()->set_signal(sig);
    auto st = Validate(kill).status();
    EXPECT_EQ(st.code(), absl::StatusCode::kInvalidArgument) << sig;
    EXPECT_THAT(st.message(), HasSubstr("kill.signal: ")) << sig;
    EXPECT_THAT(st.message(), HasSubstr("use the pause fault")) << sig;
  }
}

// proto3 keeps enum numbers the enum does not define; they are refused, not
// read as the default (an unknown protocol must not block every protocol).
TEST(Validate, RefusesEnumNumbersTheEnumDoesNotDefine) {
  v1::FaultSpec pause;
  pause.set_duration("1s");
  pause.mutable_pause()->mutable_process()->set_name("x");
  pause.mutable_pause()->set_mode(static_cast<v1::SelectionMode>(99));
  EXPECT_EQ(Validate(pause).status().message(), "pause.mode: unknown value 99");

  v1::FaultSpec partition;
  partition.set_duration("1s");
  partition.mutable_partition()->add_peers("10.0.0.0/8");
  partition.mutable_partition()->set_protocol(static_cast<v1::Protocol>(17));
  EXPECT_EQ(Validate(partition).status().message(), "partition.protocol: unknown value 17");
  partition.mutable_partition()->set_protocol(v1::PROTOCOL_TCP);
  partition.mutable_partition()->set_direction(static_cast<v1::Direction>(-1));
  EXPECT_EQ(Validate(partition).status().message(), "partition.direction: unknown value -1");

  v1::FaultSpec dns;
  dns.set_duration("1s");
  dns.mutable_dns()->set_direction(static_cast<v1::Direction>(7));
  EXPECT_EQ(Validate(dns).status().message(), "dns.direction: unknown value 7");
}

TEST(QualifyField, PrefixesFieldsOfTheKindOnly) {
  const FaultKind& pause = KindFor(v1::FaultSpec::kPause);
  EXPECT_EQ(QualifyField(pause, absl::PermissionDeniedError("process.name: \"sshd\" is protected")),
            absl::PermissionDeniedError("pause.process.name: \"sshd\" is protected"));
  EXPECT_EQ(QualifyField(pause, absl::InvalidArgumentError("netns: /x does not exist")),
            absl::InvalidArgumentError("netns: /x does not exist"));
  EXPECT_EQ(QualifyField(pause, absl::InvalidArgumentError("pause.mode: x")),
            absl::InvalidArgumentError("pause.mode: x"));
  EXPECT_EQ(QualifyField(KindFor(v1::FaultSpec::kPartition),
                         absl::InvalidArgumentError("peers[2]: covers the controller")),
            absl::InvalidArgumentError("partition.peers[2]: covers the controller"));
  EXPECT_TRUE(QualifyField(pause, absl::OkStatus()).ok());
}

TEST(BuildFromFlags, TextGoesThroughTheExperimentFilesConversion) {
  const FaultKind* partition = FindKind("partition");
  ASSERT_NE(partition, nullptr);
  auto flag = [&](const std::string& name) -> const Flag* {
    for (const Flag& f : partition->flags) {
      if (f.name == name) return &f;
    }
    return nullptr;
  };
  auto spec = BuildFromFlags(*partition, {{flag("peer"), {"10.0.0.0/8", "10.1.0.0/16"}},
                                          {flag("port"), {"6379"}},
                                          {flag("direction"), {"EGRESS"}},
                                          {flag("reject"), {"true"}},
                                          {flag("duration"), {"30s"}}});
  ASSERT_TRUE(spec.ok()) << spec.status();
  EXPECT_THAT(spec->partition().peers(), ::testing::ElementsAre("10.0.0.0/8", "10.1.0.0/16"));
  EXPECT_THAT(spec->partition().ports(), ::testing::ElementsAre(6379u));
  EXPECT_EQ(spec->partition().direction(), v1::DIRECTION_EGRESS);
  EXPECT_TRUE(spec->partition().reject());
  EXPECT_EQ(spec->duration(), "30s");
  EXPECT_EQ(Describe(*spec),
            "partition peers=10.0.0.0/8,10.1.0.0/16 ports=6379 direction=egress reject=true "
            "duration=30s");

  auto bad = BuildFromFlags(*partition, {{flag("protocol"), {"sctp"}}});
  EXPECT_EQ(bad.status().message(), "partition.protocol: must be one of any, tcp, udp, got \"sctp\"");
}

}  // namespace
}  // namespace faultline::spec
