// Restore drills in experiment files (controller/drill.h): what parses, the
// defaults, and every refusal naming its field.
#include "controller/drill.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <string>

#include "absl/strings/str_replace.h"
#include "controller/experiment.h"

namespace faultline::controller {
namespace {

using ::testing::HasSubstr;

constexpr char kDrill[] = R"(
name: pg-restore-drill
targets:
  db: {names: [db1]}
  scratch: {names: [scratch1]}
drill:
  backup:  {on: db, exec: {argv: [/usr/bin/pg_dump, -Fc, -f, /var/backups/app.dump, app]}}
  restore: {on: scratch, exec: {argv: [/usr/bin/pg_restore, -d, app_restore, /var/backups/app.dump]}, timeout: 1h}
  verify:  {on: scratch, exec: {argv: [/usr/local/bin/verify-restore]}}
  marker:  {postgres: {dsn: "host=10.20.1.10 dbname=app"}, every: 250ms, restored: {dsn: "host=10.20.1.11 dbname=app_restore"}}
objectives: {rto: 10m, rpo: 1h}
)";

// kDrill with `from` replaced by `to` (the first occurrence must exist).
std::string With(const std::string& from, const std::string& to) {
  std::string yaml = kDrill;
  EXPECT_NE(yaml.find(from), std::string::npos) << from;
  return absl::StrReplaceAll(yaml, {{from, to}});
}

std::string Problems(const std::string& yaml) {
  auto exp = LoadExperiment(yaml);
  return exp.ok() ? "" : std::string(exp.status().message());
}

TEST(Drill, ParsesWithDefaults) {
  auto exp = LoadExperiment(kDrill);
  ASSERT_TRUE(exp.ok()) << exp.status();
  ASSERT_TRUE(exp->has_drill());
  EXPECT_EQ(exp->drill().restore().on(), "scratch");
  EXPECT_EQ(exp->drill().backup().exec().argv(0), "/usr/bin/pg_dump");
  EXPECT_EQ(StepTimeout(exp->drill().restore()), std::chrono::hours(1));
  EXPECT_EQ(StepTimeout(exp->drill().verify()), std::chrono::minutes(30));
  EXPECT_EQ(MarkerEvery(exp->drill().marker()), std::chrono::milliseconds(250));
  v1::DrillMarker no_every;
  EXPECT_EQ(MarkerEvery(no_every), std::chrono::seconds(1));
}

TEST(Drill, BackupIsOptionalWithoutMarker) {
  const std::string yaml = With(
      "  backup:  {on: db, exec: {argv: [/usr/bin/pg_dump, -Fc, -f, /var/backups/app.dump, app]}}\n",
      "");
  EXPECT_THAT(Problems(yaml), HasSubstr("drill.marker: needs drill.backup"));
  const std::string no_marker = absl::StrReplaceAll(
      yaml, {{"  marker:  {postgres: {dsn: \"host=10.20.1.10 dbname=app\"}, every: 250ms, "
              "restored: {dsn: \"host=10.20.1.11 dbname=app_restore\"}}\n",
              ""},
             {", rpo: 1h", ""}});
  EXPECT_EQ(Problems(no_marker), "");
}

TEST(Drill, RestoreAndVerifyAreRequired) {
  EXPECT_THAT(Problems(With("  restore: {on: scratch, exec: {argv: [/usr/bin/pg_restore, -d, "
                            "app_restore, /var/backups/app.dump]}, timeout: 1h}\n",
                            "")),
              HasSubstr("drill.restore: required"));
  EXPECT_THAT(
      Problems(With("  verify:  {on: scratch, exec: {argv: [/usr/local/bin/verify-restore]}}\n", "")),
      HasSubstr("drill.verify: required"));
}

TEST(Drill, StepFieldsAreChecked) {
  EXPECT_THAT(Problems(With("verify:  {on: scratch", "verify:  {on: nowhere")),
              HasSubstr("drill.verify.on: unknown target \"nowhere\" (targets: db, scratch)"));
  EXPECT_THAT(Problems(With("verify:  {on: scratch, ", "verify:  {")),
              HasSubstr("drill.verify.on: required"));
  EXPECT_THAT(Problems(With("[/usr/local/bin/verify-restore]", "[verify-restore]")),
              HasSubstr("drill.verify.exec.argv[0]: must be an absolute path"));
  EXPECT_THAT(Problems(With("[/usr/local/bin/verify-restore]", "[]")),
              HasSubstr("drill.verify.exec.argv: must not be empty"));
  EXPECT_THAT(Problems(With("exec: {argv: [/usr/local/bin/verify-restore]}", "timeout: 1s")),
              HasSubstr("drill.verify.exec: required"));
  EXPECT_THAT(Problems(With("timeout: 1h", "timeout: 7h")),
              HasSubstr("drill.restore.timeout: must be between 1ms and 6h, got 7h"));
  EXPECT_THAT(Problems(With("timeout: 1h", "timeout: soon")), HasSubstr("drill.restore.timeout"));
  EXPECT_THAT(Problems(With("timeout: 1h", "timeout: 1h, shell: true")), HasSubstr("shell"));
}

TEST(Drill, MarkerFieldsAreChecked) {
  EXPECT_THAT(Problems(With("host=10.20.1.10 dbname=app", "host=db.example dbname=app")),
              HasSubstr("drill.marker.postgres.dsn: host \"db.example\" is a name"));
  EXPECT_THAT(Problems(With(", restored: {dsn: \"host=10.20.1.11 dbname=app_restore\"}", "")),
              HasSubstr("drill.marker.restored: required"));
  EXPECT_THAT(Problems(With("host=10.20.1.11 dbname=app_restore", "dbname=app_restore")),
              HasSubstr("drill.marker.restored.dsn: name the server"));
  EXPECT_THAT(Problems(With("every: 250ms", "every: 1ms")),
              HasSubstr("drill.marker.every: must be between 10ms and 1h, got 1ms"));
}

TEST(Drill, OtherFieldsAreRefusedByName) {
  const std::string probes = With("drill:\n", R"(probes:
  - {name: p, tcp: {address: "10.0.0.1:1"}}
faults:
  - {on: db, kill: {process: {name: x}}}
data:
  - {name: d, redis: {address: "10.0.0.1:6379"}}
duration: 1m
drill:
)");
  const std::string problems = Problems(probes);
  EXPECT_THAT(problems, HasSubstr("faults: not with drill"));
  EXPECT_THAT(problems, HasSubstr("probes: not with drill"));
  EXPECT_THAT(problems, HasSubstr("data: not with drill"));
  EXPECT_THAT(problems, HasSubstr("duration: not with drill"));
}

TEST(Drill, ObjectivesAreChecked) {
  EXPECT_THAT(Problems(With("objectives: {rto: 10m, rpo: 1h}", "objectives: {rpo: 1h}")),
              HasSubstr("objectives.rto: required"));
  const std::string no_marker = With(
      "  marker:  {postgres: {dsn: \"host=10.20.1.10 dbname=app\"}, every: 250ms, restored: "
      "{dsn: \"host=10.20.1.11 dbname=app_restore\"}}\n",
      "");
  EXPECT_THAT(Problems(no_marker), HasSubstr("objectives.rpo: a drill measures it from marker rows"));
}

}  // namespace
}  // namespace faultline::controller
