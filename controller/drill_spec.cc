#include "controller/drill_spec.h"

#include <fmt/format.h>

#include <algorithm>

#include "absl/strings/str_join.h"
#include "common/text.h"
#include "common/units.h"
#include "controller/experiment.h"
#include "probes/exec_runner.h"
#include "workload/postgres_driver.h"

namespace faultline::controller {
namespace {

constexpr std::chrono::milliseconds kMinMarkerEvery{10};
constexpr std::chrono::hours kMaxMarkerEvery{1};
constexpr std::chrono::hours kMaxStepTimeout{6};

// The fields a drill does not take, each named.
void RefuseOtherFields(const v1::Experiment& exp, std::vector<std::string>* problems) {
  const char* kWhy = "not with drill (a drill runs its backup, restore and verify steps only)";
  if (!exp.faults().empty()) problems->push_back(fmt::format("faults: {}", kWhy));
  if (!exp.probes().empty()) problems->push_back(fmt::format("probes: {}", kWhy));
  if (!exp.data().empty()) problems->push_back(fmt::format("data: {}", kWhy));
  if (!exp.stop_when().empty()) problems->push_back(fmt::format("stop_when: {}", kWhy));
  if (!exp.duration().empty()) {
    problems->push_back("duration: not with drill (each step has its own timeout)");
  }
  if (exp.objectives().has_max_lost_writes()) {
    problems->push_back("objectives.max_lost_writes: measured by a data workload, not a drill");
  }
}

// One step (`path` = "drill.restore"): its target, argv and timeout.
void ValidateStep(const std::string& path, const v1::DrillStep& step, const v1::Experiment& exp,
                  std::vector<std::string>* problems) {
  std::vector<std::string> targets;
  for (const auto& [name, _] : exp.targets()) targets.push_back(name);
  std::sort(targets.begin(), targets.end());
  const std::string known = targets.empty() ? "none defined" : absl::StrJoin(targets, ", ");
  if (step.on().empty()) {
    problems->push_back(fmt::format("{}.on: required (targets: {})", path, known));
  } else if (!exp.targets().contains(step.on())) {
    problems->push_back(fmt::format("{}.on: unknown target \"{}\" (targets: {})", path,
                                    Printable(step.on()), known));
  }
  if (!step.has_exec()) {
    problems->push_back(fmt::format("{}.exec: required ({{argv: [/absolute/path, args...]}})", path));
  } else {
    absl::Status argv = probes::ValidateArgv(
        path + ".exec.argv", {step.exec().argv().begin(), step.exec().argv().end()});
    if (!argv.ok()) problems->push_back(std::string(argv.message()));
  }
  std::chrono::nanoseconds timeout{0};
  if (CheckDuration(path + ".timeout", step.timeout(), false, problems, &timeout) &&
      (timeout < std::chrono::milliseconds(1) || timeout > kMaxStepTimeout)) {
    problems->push_back(fmt::format("{}.timeout: must be between 1ms and 6h, got {}", path,
                                    Printable(step.timeout())));
  }
}

void ValidateMarker(const v1::Drill& drill, std::vector<std::string>* problems) {
  const v1::DrillMarker& m = drill.marker();
  if (!drill.has_backup()) {
    problems->push_back(
        "drill.marker: needs drill.backup (markers are written while the backup runs)");
  }
  if (absl::Status st = workload::ValidatePostgresDsn("drill.marker.postgres.dsn",
                                                      m.postgres().dsn());
      !st.ok()) {
    problems->push_back(std::string(st.message()));
  }
  if (!m.has_restored()) {
    problems->push_back(
        "drill.marker.restored: required ({dsn: ...} of the restored copy, where the newest "
        "marker is looked for)");
  } else if (absl::Status st = workload::ValidatePostgresDsn("drill.marker.restored.dsn",
                                                             m.restored().dsn());
             !st.ok()) {
    problems->push_back(std::string(st.message()));
  }
  std::chrono::nanoseconds every{0};
  if (CheckDuration("drill.marker.every", m.every(), false, problems, &every) &&
      (every < kMinMarkerEvery || every > kMaxMarkerEvery)) {
    problems->push_back(fmt::format("drill.marker.every: must be between 10ms and 1h, got {}",
                                    Printable(m.every())));
  }
}

void ValidateDrillObjectives(const v1::Experiment& exp, std::vector<std::string>* problems) {
  std::chrono::nanoseconds rto{0};
  if (CheckDuration("objectives.rto", exp.objectives().rto(), true, problems, &rto) &&
      rto.count() <= 0) {
    problems->push_back("objectives.rto: must be above 0");
  }
  if (!exp.objectives().rpo().empty() && !exp.drill().has_marker()) {
    problems->push_back(
        "objectives.rpo: a drill measures it from marker rows; add drill.marker "
        "(docs/experiments.md, \"Restore drills\")");
  } else {
    CheckDuration("objectives.rpo", exp.objectives().rpo(), false, problems);
  }
}

}  // namespace

void ValidateDrillExperiment(const v1::Experiment& exp, std::vector<std::string>* problems) {
  RefuseOtherFields(exp, problems);
  const v1::Drill& drill = exp.drill();
  if (drill.has_backup()) ValidateStep("drill.backup", drill.backup(), exp, problems);
  if (!drill.has_restore()) {
    problems->push_back("drill.restore: required (the step that restores the backup)");
  } else {
    ValidateStep("drill.restore", drill.restore(), exp, problems);
  }
  if (!drill.has_verify()) {
    problems->push_back("drill.verify: required (a check of the restored data; exit 0 = good)");
  } else {
    ValidateStep("drill.verify", drill.verify(), exp, problems);
  }
  if (drill.has_marker()) ValidateMarker(drill, problems);
  ValidateDrillObjectives(exp, problems);
}

std::chrono::milliseconds StepTimeout(const v1::DrillStep& step) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
      DurationOr(step.timeout(), kDefaultStepTimeout));
}

std::chrono::nanoseconds MarkerEvery(const v1::DrillMarker& marker) {
  return DurationOr(marker.every(), kDefaultMarkerEvery);
}

}  // namespace faultline::controller
