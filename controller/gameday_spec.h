// Game-day runbooks (docs/gamedays.md): the file's schema and rules, apart
// from their execution (gameday.h), so the loader is fuzzed alone.
#ifndef FAULTLINE_CONTROLLER_GAMEDAY_SPEC_H_
#define FAULTLINE_CONTROLLER_GAMEDAY_SPEC_H_

#include <chrono>
#include <cstddef>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "faultline/v1/controller.pb.h"

namespace faultline::controller {

inline constexpr int kMaxGameDaySteps = 100;
inline constexpr int kMaxParallelBranches = 16;
inline constexpr int kMaxActiveGameDays = 20;
// Events one game day keeps (notes past it are refused; its own steps fit).
inline constexpr int kMaxGameDayEvents = 2000;
inline constexpr size_t kMaxGameDayTextBytes = 4096;
inline constexpr std::chrono::hours kDefaultGateTimeout{1};
// A gate, a wait or a check's `within` at most.
inline constexpr std::chrono::hours kMaxGameDayWait{24};
inline constexpr int kDefaultListGameDays = 50;

// Parses a runbook's YAML into its spec (the schema only): INVALID_ARGUMENT,
// one "path: reason" a line.
absl::StatusOr<v1::GameDaySpec> ParseGameDayYaml(const std::string& yaml);
// The experiment and drill files a runbook names, as written, each once, in
// step order.
std::vector<std::string> GameDayFiles(const v1::GameDaySpec& spec);
// Checks every field of the runbook in `req` and loads each file it names from
// `req.files` as an experiment (a `drill:` step's must hold a drill):
// INVALID_ARGUMENT listing every problem ("steps[2].gate.timeout: ...").
absl::StatusOr<v1::GameDayPlan> LoadGameDay(const v1::StartGameDayRequest& req);
// The CLI's side: reads the runbook at `path` and each file it names
// (relative to the runbook's folder; regular files of at most 1 MiB).
absl::StatusOr<v1::StartGameDayRequest> ReadGameDayFiles(const std::string& path);

// A step's kind (note, gate, experiment, drill, wait, check, parallel) and
// its one-line title (the note, the prompt, the file, ...).
std::string StepKindOf(const v1::GameDayStep& step);
std::string StepTitleOf(const v1::GameDayStep& step);
// A validated duration field's value (0 when empty).
std::chrono::nanoseconds GameDayDuration(const std::string& text);
// A free text's problem (required, at most kMaxGameDayTextBytes), appended as
// "path: reason".
void CheckGameDayText(const std::string& path, const std::string& text, bool required,
                      std::vector<std::string>* problems);

}  // namespace faultline::controller

#endif  // FAULTLINE_CONTROLLER_GAMEDAY_SPEC_H_
