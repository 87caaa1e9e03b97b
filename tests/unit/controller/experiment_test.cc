#include "controller/experiment.h"

#include <fmt/format.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <chrono>
#include <filesystem>
#include <set>

#include "spec/fault_spec.h"

namespace faultline::controller {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

constexpr char kValid[] = R"(
name: kill-redis-primary
description: Sentinel must promote a replica within the RTO.
targets:
  primary: {labels: {role: redis-primary}, count: 1}
  observer: {labels: {zone: b}, count: 1}
probes:
  - name: redis-ping
    from: observer
    tcp: {address: "10.20.0.10:6379"}
    interval: 50ms
    timeout: 200ms
faults:
  - on: primary
    kill: {process: {name: redis-server}, signal: KILL}
objectives: {rto: 30s, recovered_after: 5}
duration: 60s
)";

TEST(Experiment, ParsesTheDesignExample) {
  auto exp = LoadExperiment(kValid);
  ASSERT_TRUE(exp.ok()) << exp.status();
  EXPECT_EQ(exp->name(), "kill-redis-primary");
  EXPECT_EQ(exp->targets().at("primary").labels().at("role"), "redis-primary");
  EXPECT_EQ(exp->targets().at("primary").count(), 1);
  ASSERT_EQ(exp->probes_size(), 1);
  EXPECT_EQ(exp->probes(0).from(), "observer");
  EXPECT_EQ(exp->probes(0).tcp().address(), "10.20.0.10:6379");
  ASSERT_EQ(exp->faults_size(), 1);
  EXPECT_EQ(exp->faults(0).on(), "primary");
  ASSERT_TRUE(exp->faults(0).has_kill());
  EXPECT_EQ(exp->faults(0).kill().process().name(), "redis-server");
  EXPECT_EQ(exp->faults(0).kill().signal(), "KILL");
  EXPECT_EQ(RecoveredAfter(*exp), 5);
  EXPECT_EQ(RtoTarget(*exp), std::chrono::seconds(30));
  EXPECT_EQ(ExperimentDuration(*exp), std::chrono::seconds(60));
  EXPECT_EQ(ProbeInterval(exp->probes(0)), std::chrono::milliseconds(50));
  v1::ProbeSpec spec = ToProbeSpec(exp->probes(0));
  EXPECT_EQ(spec.name(), "redis-ping");
  EXPECT_EQ(spec.tcp().address(), "10.20.0.10:6379");
  EXPECT_EQ(spec.interval(), "50ms");
}

TEST(Experiment, RecoveredAfterDefaultsToThree) {
  std::string yaml = kValid;
  yaml.replace(yaml.find(", recovered_after: 5"), std::string(", recovered_after: 5").size(), "");
  auto exp = LoadExperiment(yaml);
  ASSERT_TRUE(exp.ok()) << exp.status();
  EXPECT_EQ(RecoveredAfter(*exp), 3);
}

TEST(Experiment, SchemaErrorsCarryTheirPath) {
  auto exp = ParseExperimentYaml(R"(
name: x
duraton: 60s
targets:
  a: {labels: {role: db}, count: many}
probes:
  - name: p
    tcp: {adress: "1.2.3.4:5"}
faults:
  - on: a
    disk_fill: {percent: lots, size: 1G}
    colour: red
  - on: a
    kill: {process: {name: x}}
    pause: {process: {name: x}}
objectives: {rto: [1, 2]}
)");
  ASSERT_FALSE(exp.ok());
  EXPECT_EQ(exp.status().code(), absl::StatusCode::kInvalidArgument);
  const std::string msg(exp.status().message());
  EXPECT_THAT(msg, HasSubstr("duraton: unknown field"));
  EXPECT_THAT(msg, HasSubstr("targets.a.count: expected a whole number, got \"many\""));
  EXPECT_THAT(msg, HasSubstr("probes[0].tcp.adress: unknown field"));
  // Fault fields are reported where the user wrote them, under their kind.
  EXPECT_THAT(msg, HasSubstr("faults[0].disk_fill.percent: expected a number, got \"lots\""));
  EXPECT_THAT(msg, HasSubstr("faults[0].disk_fill.size: unknown field (known: path, percent,"));
  EXPECT_THAT(msg, HasSubstr("faults[0].colour: unknown field (known: on, duration,"));
  EXPECT_THAT(msg, HasSubstr("faults[1]: kill and pause are exclusive"));
  EXPECT_THAT(msg, HasSubstr("objectives.rto: expected a single value"));
  EXPECT_THAT(msg, Not(HasSubstr(".spec")));
}

TEST(Experiment, YamlSyntaxErrorHasALine) {
  auto exp = ParseExperimentYaml("name: [unclosed\n");
  ASSERT_FALSE(exp.ok());
  EXPECT_THAT(exp.status().message(), HasSubstr("line "));
}

TEST(Experiment, TopLevelMustBeAMapping) {
  auto exp = ParseExperimentYaml("- a\n- b\n");
  ASSERT_FALSE(exp.ok());
  EXPECT_THAT(exp.status().message(), HasSubstr("(top): expected a mapping"));
}

TEST(Experiment, SemanticProblemsAreAllReportedWithPaths) {
  auto exp = LoadExperiment(R"(
name: "bad name!"
targets:
  db: {labels: {role: db}, count: 1, percent: 50}
  everyone: {}
probes:
  - name: p
    from: nowhere
    tcp: {address: "1.2.3.4:5"}
    http: {url: "http://x/"}
    interval: 5ms
  - name: p
    interval: soon
  - name: q
    exec: {argv: []}
    timeout: 1x
faults:
  - kill: {process: {name: redis}}
    duration: 10s
  - on: db
  - on: ghost
    pause: {process: {}}
    duration: 2m
  - on: db
    disk_fill: {path: relative/dir, percent: 150}
  - on: db
    disk_fill: {path: /data, percent: 150}
  - on: db
    disk_fill: {path: /data, percent: 50, bytes: 1G}
objectives: {recovered_after: -1}
duration: 1m
)");
  ASSERT_FALSE(exp.ok());
  EXPECT_EQ(exp.status().code(), absl::StatusCode::kInvalidArgument);
  const std::string msg(exp.status().message());
  for (const char* want : {
           "name: letters, digits",
           "targets.db: count and percent are exclusive",
           "targets.everyone: needs labels or names",
           "probes[0].from: unknown target \"nowhere\"",
           "probes[0]: needs exactly one of tcp, http, exec, grpc_health, redis, got 2",
           "probes[0].interval: must be at least 10ms, got 5ms",
           "probes[1].name: \"p\" is used twice",
           "probes[1]: needs exactly one of tcp, http, exec, grpc_health, redis, got 0",
           "probes[1].interval:",
           "probes[2].exec.argv: must not be empty",
           "probes[2].timeout:",
           "faults[0].on: required",
           "faults[0].duration: kill is a one-off action and takes no duration",
           "faults[1].kind: give one fault kind (kill, pause, disk_fill,",
           "faults[2].on: unknown target \"ghost\"",
           "faults[2].pause.process: give at least one of",
           "faults[2].duration: 2m is longer than the experiment's duration 1m",
           "faults[3].disk_fill.path: must be an absolute path",
           "faults[4].disk_fill.percent: must be between 1 and 100, got 150",
           "faults[5].disk_fill.bytes: give only one of percent, leave_free, bytes",
           "objectives.rto: required",
           "objectives.recovered_after: must be between 1 and 1000, got -1",
       }) {
    EXPECT_THAT(msg, HasSubstr(want));
  }
}

TEST(Experiment, MissingEverythingIsReported) {
  auto exp = LoadExperiment("description: nothing else\n");
  ASSERT_FALSE(exp.ok());
  const std::string msg(exp.status().message());
  for (const char* want : {"name: required", "targets: at least one", "probes: at least one",
                           "faults: at least one", "duration: required", "objectives.rto: required"}) {
    EXPECT_THAT(msg, HasSubstr(want));
  }
}

TEST(Experiment, ControllerIsAReservedTargetButAValidProbeOrigin) {
  auto exp = LoadExperiment(R"(
name: x
targets:
  controller: {labels: {a: b}}
  db: {names: [db-1]}
probes:
  - {name: p, from: controller, tcp: {address: "127.0.0.1:1"}}
faults:
  - {on: db, pause: {process: {name: x}}}
objectives: {rto: 1s}
duration: 5s
)");
  ASSERT_FALSE(exp.ok());
  EXPECT_THAT(exp.status().message(), HasSubstr("targets.controller: \"controller\" is reserved"));
  EXPECT_THAT(exp.status().message(), Not(HasSubstr("probes[0]")));
}

// A data workload's `from` is the controller or a target, as a probe's.
TEST(Experiment, DataFromNamesATargetOrTheController) {
  const std::string base = R"(
name: x
targets:
  client: {names: [c-1]}
probes:
  - {name: p, from: client, tcp: {address: "127.0.0.1:1"}}
faults:
  - {on: client, pause: {process: {name: x}}}
objectives: {rto: 1s}
duration: 5s
data:
)";
  for (const char* from : {"client", "controller"}) {
    auto exp = LoadExperiment(base + fmt::format(
        "  - {{name: orders, from: {}, redis: {{address: \"127.0.0.1:1\"}}}}\n", from));
    EXPECT_TRUE(exp.ok()) << from << ": " << exp.status();
  }
  auto exp = LoadExperiment(base + "  - {name: orders, from: nowhere, redis: {address: \"127.0.0.1:1\"}}\n");
  ASSERT_FALSE(exp.ok());
  EXPECT_THAT(exp.status().message(),
              HasSubstr("data[0].from: unknown target \"nowhere\" (targets: client; or controller)"));
}

// Every example in experiments/ must load and validate; the design's four named
// experiments and one per fault kind must be there.
TEST(ExperimentsFolder, EveryFileValidates) {
  namespace fs = std::filesystem;
  std::set<std::string> files;
  std::set<std::string> kinds;
  for (const auto& entry : fs::directory_iterator(FAULTLINE_EXPERIMENTS_DIR)) {
    if (entry.path().extension() != ".yaml") continue;
    // Game-day runbooks: loaded with their files by controller_gameday.
    if (entry.path().filename().string().starts_with("gameday-")) continue;
    files.insert(entry.path().filename().string());
    auto exp = LoadExperimentFile(entry.path().string());
    EXPECT_TRUE(exp.ok()) << entry.path() << ":\n" << exp.status().message();
    if (!exp.ok()) continue;
    for (int i = 0; i < exp->faults_size(); ++i) kinds.insert(spec::KindName(FaultSpecFor(*exp, i)));
  }
  for (const char* want : {"kill-and-restart.yaml", "kill-database-primary.yaml",
                           "latency-between-services.yaml", "disk-fill-100.yaml",
                           "zone-outage.yaml"}) {
    EXPECT_TRUE(files.contains(want)) << want;
  }
  for (const auto& kind : spec::Kinds()) EXPECT_TRUE(kinds.contains(kind.name)) << kind.name;
}

}  // namespace
}  // namespace faultline::controller

namespace faultline::controller {
namespace {

TEST(Experiment, ProbeLibraryChecksApply) {
  auto exp = LoadExperiment(R"(
name: x
targets:
  db: {names: [db-1]}
probes:
  - {name: p, http: {url: "http://[bad/"}}
faults:
  - {on: db, pause: {process: {name: x}}}
objectives: {rto: 1s}
duration: 5s
)");
  ASSERT_FALSE(exp.ok());
  EXPECT_THAT(exp.status().message(), ::testing::HasSubstr("probes[0].http.url"));
}

}  // namespace
}  // namespace faultline::controller

namespace faultline::controller {
namespace {

TEST(Experiment, OldFlatFaultsAreRefusedWithTheNewForm) {
  auto exp = ParseExperimentYaml(R"(
name: x
targets:
  db: {names: [db-1]}
probes:
  - {name: p, tcp: {address: "127.0.0.1:1"}}
faults:
  - kind: disk-fill
    on: db
    path: /var/lib/db
    percent: 95
    duration: 30s
objectives: {rto: 1s}
duration: 1m
)");
  ASSERT_FALSE(exp.ok());
  EXPECT_EQ(exp.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(exp.status().message(), HasSubstr("faults[0].kind: the kind is now a key"));
  EXPECT_THAT(exp.status().message(),
              HasSubstr("{on: db, duration: 30s, disk_fill: {path: /var/lib/db, percent: 95}}"));
}

TEST(Experiment, EnumsTakeTheirShortNamesInAnyCase) {
  std::string yaml = kValid;
  yaml.replace(yaml.find("signal: KILL"), std::string("signal: KILL").size(), "mode: ALL, signal: 15");
  auto exp = LoadExperiment(yaml);
  ASSERT_TRUE(exp.ok()) << exp.status();
  EXPECT_EQ(exp->faults(0).kill().mode(), v1::SELECTION_MODE_ALL);
  yaml.replace(yaml.find("mode: ALL"), std::string("mode: ALL").size(), "mode: most");
  exp = LoadExperiment(yaml);
  ASSERT_FALSE(exp.ok());
  EXPECT_THAT(exp.status().message(),
              HasSubstr("faults[0].kill.mode: must be one of one, all, count, percent, got \"most\""));
}

TEST(Experiment, TargetsTakeSelectorExcludeSeedAndOnEmpty) {
  std::string yaml = kValid;
  const std::string from = "primary: {labels: {role: redis-primary}, count: 1}";
  yaml.replace(yaml.find(from), from.size(),
               "primary: {selector: \"zone in (a,b), role!=db, !canary\", exclude: [n1, n2], "
               "count: 1, seed: 9223372036854775807, on_empty: SKIP}");
  auto exp = LoadExperiment(yaml);
  ASSERT_TRUE(exp.ok()) << exp.status();
  const v1::TargetSelector& t = exp->targets().at("primary");
  EXPECT_EQ(t.selector(), "zone in (a,b), role!=db, !canary");
  EXPECT_EQ(t.exclude_size(), 2);
  ASSERT_TRUE(t.has_seed());
  EXPECT_EQ(t.seed(), 9223372036854775807ull);  // the loader reads int64 range
  EXPECT_EQ(t.on_empty(), v1::TargetSelector::ON_EMPTY_SKIP);
  EXPECT_FALSE(exp->targets().at("observer").has_seed());
  EXPECT_EQ(exp->targets().at("observer").on_empty(), v1::TargetSelector::ON_EMPTY_UNSPECIFIED);

  yaml.replace(yaml.find("on_empty: SKIP"), std::string("on_empty: SKIP").size(), "on_empty: fail");
  exp = LoadExperiment(yaml);
  ASSERT_TRUE(exp.ok()) << exp.status();
  EXPECT_EQ(exp->targets().at("primary").on_empty(), v1::TargetSelector::ON_EMPTY_FAIL);
  yaml.replace(yaml.find("on_empty: fail"), std::string("on_empty: fail").size(), "on_empty: maybe");
  exp = LoadExperiment(yaml);
  ASSERT_FALSE(exp.ok());
  EXPECT_THAT(exp.status().message(), HasSubstr("targets.primary.on_empty"));
}

TEST(Experiment, TargetProblemsCarryTheirPaths) {
  auto exp = LoadExperiment(R"(
name: x
targets:
  web: {selector: "zone in (a,b", count: 1}
  db: {selector: "role=db", exclude: [db-1, ""], percent: 0}
  nothing: {exclude: [a], seed: 3, on_empty: skip}
  ok: {selector: "!canary"}
probes:
  - {name: p, from: ok, tcp: {address: "127.0.0.1:1"}}
faults:
  - {on: web, pause: {process: {name: x}}}
objectives: {rto: 1s}
duration: 5s
)");
  ASSERT_FALSE(exp.ok());
  const std::string msg(exp.status().message());
  for (const char* want : {
           "targets.web.selector: expected \")\" after \"zone in (a,b\" at 12",
           "targets.db.exclude[1]: empty agent name",
           "targets.db.percent: must be between 1 and 100, got 0",
           "targets.nothing: needs labels or names, or a selector",
       }) {
    EXPECT_THAT(msg, HasSubstr(want));
  }
  EXPECT_THAT(msg, Not(HasSubstr("targets.ok")));
  EXPECT_THAT(msg, Not(HasSubstr("targets.db.selector")));
}

TEST(Experiment, BoundsOnSizesDurationsAndNames) {
  std::string yaml = kValid;
  yaml.replace(yaml.find("recovered_after: 5"), std::string("recovered_after: 5").size(),
               "recovered_after: 2147483647");
  yaml.replace(yaml.find("duration: 60s"), std::string("duration: 60s").size(), "duration: 25h");
  yaml.replace(yaml.find("rto: 30s"), std::string("rto: 30s").size(), "rto: 1000000h");
  yaml.replace(yaml.find("name: redis-ping"), std::string("name: redis-ping").size(),
               "name: \"ping\\e[31m\"");
  yaml += "stop_when:\n";
  for (int i = 0; i < 65; ++i) yaml += "  - {agents_lost: 1}\n";
  auto exp = LoadExperiment(yaml);
  ASSERT_FALSE(exp.ok());
  const std::string msg(exp.status().message());
  for (const char* want : {
           "objectives.recovered_after: must be between 1 and 1000, got 2147483647",
           "duration: at most 24h, got 25h",
           "objectives.rto: at most 24h, got 1000000h",
           "probes[0].name: letters, digits, '.', '_' and '-' only",
           "stop_when: at most 64, got 65",
       }) {
    EXPECT_THAT(msg, HasSubstr(want));
  }
  // A fault's own duration is bounded by spec::Validate, on the agent too.
  v1::FaultSpec spec;
  spec.set_duration("146y");
  spec.mutable_pause()->mutable_process()->set_name("x");
  EXPECT_FALSE(spec::Validate(spec).ok());
  spec.set_duration("25h");
  EXPECT_THAT(std::string(spec::Validate(spec).status().message()),
              HasSubstr("duration: at most 24h"));
}

// Experiment files go through the same bounded YAML loading as the policy: an
// alias (even in a known field), an alias bomb and an oversized file are
// refused before any tree is built.
TEST(Experiment, AliasesAndOversizedFilesAreRefusedBeforeParsing) {
  std::string alias = std::string(kValid);
  alias.replace(alias.find("name: kill-redis-primary\ndescription: Sentinel must promote a "
                           "replica within the RTO."),
                std::string("name: kill-redis-primary\ndescription: Sentinel must promote a "
                            "replica within the RTO.").size(),
                "name: &n kill-redis-primary\ndescription: *n");
  auto exp = LoadExperiment(alias);
  ASSERT_FALSE(exp.ok());
  EXPECT_EQ(exp.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(exp.status().message(), HasSubstr("YAML aliases (*name) are not supported"));

  std::string bomb = "a: &a [x, x, x, x, x, x, x, x, x]\n";
  for (char c = 'b'; c <= 'j'; ++c) {
    bomb += fmt::format("{0}: &{0} [*{1}, *{1}, *{1}, *{1}, *{1}, *{1}, *{1}, *{1}, *{1}]\n", c,
                        static_cast<char>(c - 1));
  }
  const auto start = std::chrono::steady_clock::now();
  exp = ParseExperimentYaml(bomb + kValid);
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(1));
  ASSERT_FALSE(exp.ok());
  EXPECT_THAT(exp.status().message(), HasSubstr("aliases"));

  exp = LoadExperiment(std::string(kValid) + "extra: \"" + std::string(2 << 20, 'x') + "\"\n");
  ASSERT_FALSE(exp.ok());
  EXPECT_THAT(exp.status().message(), HasSubstr("at most 1024 KiB"));
}

// A problem echoes at most 64 bytes of what the file said, escaped.
TEST(Experiment, ProblemsEchoAtMost64BytesOfAValue) {
  std::string yaml = kValid;
  yaml.replace(yaml.find("from: observer"), std::string("from: observer").size(),
               "from: \"" + std::string(100000, 'o') + "\\n\"");
  auto exp = LoadExperiment(yaml);
  ASSERT_FALSE(exp.ok());
  EXPECT_THAT(exp.status().message(),
              HasSubstr("probes[0].from: unknown target \"" + std::string(64, 'o') +
                        "...(100001 bytes)\""));
  EXPECT_LT(exp.status().message().size(), 400u);
}

}  // namespace
}  // namespace faultline::controller
