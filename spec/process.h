// The rules of the process fault kinds (kill, pause): which processes a spec
// selects and how many of them. Pure: nothing here reads the host; the agent's
// process selector applies them to its process table.
#ifndef FAULTLINE_SPEC_PROCESS_H_
#define FAULTLINE_SPEC_PROCESS_H_

#include <optional>
#include <cstdint>
#include <memory>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "faultline/v1/faults.pb.h"

namespace re2 {
class RE2;
}  // namespace re2

namespace faultline::spec {

// comm is at most TASK_COMM_LEN - 1 bytes.
inline constexpr size_t kMaxCommLength = 15;
// process.cmdline: the longest pattern accepted, the most memory RE2 may
// use for it (max_mem), and the most instructions its program may have: a
// search costs up to (instructions x bytes searched), so this bounds one
// process's match (64 KiB of cmdline) to about a second even when RE2's DFA
// gives up and it falls back to its NFA. `.` is ~8 instructions (UTF-8).
inline constexpr size_t kMaxCmdlinePatternBytes = 1024;
inline constexpr int64_t kMaxCmdlineProgramBytes = 1 << 20;
inline constexpr int kMaxCmdlineInstructions = 2000;

// The selection fields kill and pause share, read from either message.
// Refers into the spec it was made from; does not own it.
struct ProcessSelection {
  const v1::ProcessSelector* process = nullptr;
  v1::SelectionMode mode = v1::SELECTION_MODE_ONE;  // UNSPECIFIED is read as ONE
  int32_t count = 0;
  std::optional<double> percent;

  template <typename KindMessage>
  static ProcessSelection Of(const KindMessage& m) {
    ProcessSelection s;
    s.process = &m.process();
    s.mode = m.mode() == v1::SELECTION_MODE_UNSPECIFIED ? v1::SELECTION_MODE_ONE : m.mode();
    s.count = m.count();
    if (m.has_percent()) s.percent = m.percent();
    return s;
  }
};

// The selection of a kill or pause spec; INVALID_ARGUMENT for other kinds.
absl::StatusOr<ProcessSelection> SelectionOf(const v1::FaultSpec& spec);

// "one", "all", "count", "percent".
std::string ModeName(v1::SelectionMode mode);

// Checks the selector and the mode, field names relative to the kind's message
// (`process: give at least one of ...`, `process.cmdline: ...`, `count: ...`).
// PERMISSION_DENIED for pid 1, which no fault may target.
absl::Status ValidateSelection(const ProcessSelection& selection);

// process.cmdline is an RE2 regular expression searched in a cmdline
// (RE2::PartialMatch; anchor with ^ and $): matching is linear in the text,
// with a bounded stack. Refused (INVALID_ARGUMENT naming process.cmdline): a
// pattern over kMaxCmdlinePatternBytes, a back-reference, a syntax error, a
// repetition over 1000, and a program over kMaxCmdlineProgramBytes or
// kMaxCmdlineInstructions.
absl::StatusOr<std::unique_ptr<const re2::RE2>> CompileCmdline(const std::string& pattern);

}  // namespace faultline::spec

#endif  // FAULTLINE_SPEC_PROCESS_H_
