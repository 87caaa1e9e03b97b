// Experiment files: YAML -> v1::Experiment (schema errors with their path), then
// semantic validation (every problem with its path, all at once).
#ifndef FAULTLINE_CONTROLLER_EXPERIMENT_H_
#define FAULTLINE_CONTROLLER_EXPERIMENT_H_

#include <chrono>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "faultline/v1/agent.pb.h"
#include "faultline/v1/experiment.pb.h"

namespace faultline::controller {

// The target name probes use to run on the controller itself.
inline constexpr char kFromController[] = "controller";
inline constexpr int kDefaultRecoveredAfter = 3;

// Parses `text` as a duration into `out` (optional); records the problem
// under `path` ("path: required (e.g. \"30s\")" when empty and `required`).
bool CheckDuration(const std::string& path, const std::string& text, bool required,
                   std::vector<std::string>* problems, std::chrono::nanoseconds* out = nullptr);

// "" when `name` can start run ids ([a-z0-9][a-z0-9-]{0,62}: schedules, game
// days); else the problem, "FIELD: must match ...".
std::string IdNameProblem(const std::string& field, const std::string& name);

// Parses the YAML text of an experiment. Unknown fields and wrong types are
// INVALID_ARGUMENT, one "path: reason" per line. Does not validate semantics.
absl::StatusOr<v1::Experiment> ParseExperimentYaml(const std::string& yaml);

// The semantic problems of `exp`, each "path: reason"; empty when it is valid.
std::vector<std::string> ValidateExperiment(const v1::Experiment& exp);

// ParseExperimentYaml + ValidateExperiment: every problem in one
// INVALID_ARGUMENT status, one a line.
absl::StatusOr<v1::Experiment> LoadExperiment(const std::string& yaml);
absl::StatusOr<v1::Experiment> LoadExperimentFile(const std::string& path);

// The FaultSpec sent for faults[i]: its fields less `on`, with the
// experiment's duration when a reversible fault gives none.
v1::FaultSpec FaultSpecFor(const v1::Experiment& exp, int i);

// The agent-side probe spec of an experiment probe.
v1::ProbeSpec ToProbeSpec(const v1::ExperimentProbe& probe);

// A validated duration field's value; `dflt` when it is empty.
std::chrono::nanoseconds DurationOr(const std::string& text, std::chrono::nanoseconds dflt);
// Parsed durations of a validated experiment (call ValidateExperiment first;
// unparsable values come back as zero).
std::chrono::nanoseconds ExperimentDuration(const v1::Experiment& exp);
std::chrono::nanoseconds RtoTarget(const v1::Experiment& exp);
std::chrono::nanoseconds ProbeInterval(const v1::ExperimentProbe& probe);
int RecoveredAfter(const v1::Experiment& exp);

}  // namespace faultline::controller

#endif  // FAULTLINE_CONTROLLER_EXPERIMENT_H_
