#include "spec/process.h"

#include <fmt/format.h>
#include <re2/re2.h>

#include "common/status_macros.h"
#include "common/text.h"

namespace faultline::spec {
namespace {

bool HasSelector(const v1::ProcessSelector& s) {
  return s.pid() != 0 || !s.name().empty() || !s.cmdline().empty() || !s.pidfile().empty() ||
         !s.cgroup().empty();
}

// A back-reference (`\1`..`\9` outside a bracket expression) has no
// linear-time match; RE2 refuses it too, but this names the reason.
bool HasBackReference(const std::string& pattern) {
  bool in_class = false;
  for (size_t i = 0; i + 1 < pattern.size(); ++i) {
    const char c = pattern[i];
    if (c == '\\') {
      const char n = pattern[i + 1];
      if (!in_class && n >= '1' && n <= '9') return true;
      ++i;  // skip the escaped character
    } else if (c == '[') {
      in_class = true;
    } else if (c == ']') {
      in_class = false;
    }
  }
  return false;
}

}  // namespace

absl::StatusOr<ProcessSelection> SelectionOf(const v1::FaultSpec& spec) {
  if (spec.has_kill()) return ProcessSelection::Of(spec.kill());
  if (spec.has_pause()) return ProcessSelection::Of(spec.pause());
  return absl::InvalidArgumentError("process: only kill and pause select processes");
}

std::string ModeName(v1::SelectionMode mode) {
  switch (mode) {
    case v1::SELECTION_MODE_ALL:
      return "all";
    case v1::SELECTION_MODE_COUNT:
      return "count";
    case v1::SELECTION_MODE_PERCENT:
      return "percent";
    default:
      return "one";
  }
}

absl::StatusOr<std::unique_ptr<const re2::RE2>> CompileCmdline(const std::string& pattern) {
  if (pattern.size() > kMaxCmdlinePatternBytes) {
    return absl::InvalidArgumentError(fmt::format(
        "process.cmdline: the pattern is {} bytes long; at most {}", pattern.size(),
        kMaxCmdlinePatternBytes));
  }
  if (HasBackReference(pattern)) {
    return absl::InvalidArgumentError(fmt::format(
        "process.cmdline: back-references are not supported (the match must run in linear "
        "time), got \"{}\"",
        Printable(pattern)));
  }
  re2::RE2::Options options;
  options.set_log_errors(false);
  options.set_never_capture(true);
  options.set_max_mem(kMaxCmdlineProgramBytes);
  auto re = std::make_unique<const re2::RE2>(pattern, options);
  if (!re->ok()) {
    // ErrorPatternTooLarge: the compiled program would exceed max_mem.
    const std::string why =
        re->error_code() == re2::RE2::ErrorPatternTooLarge
            ? fmt::format("too costly a regular expression (its program would exceed {} KiB)",
                          kMaxCmdlineProgramBytes / 1024)
            : "invalid regular expression";
    return absl::InvalidArgumentError(fmt::format("process.cmdline: {} \"{}\": {}", why,
                                                  Printable(pattern), Printable(re->error())));
  }
  if (re->ProgramSize() > kMaxCmdlineInstructions) {
    return absl::InvalidArgumentError(fmt::format(
        "process.cmdline: too costly a regular expression \"{}\": {} instructions, at most {}",
        Printable(pattern), re->ProgramSize(), kMaxCmdlineInstructions));
  }
  return re;
}

absl::Status ValidateSelection(const ProcessSelection& s) {
  const v1::ProcessSelector& sel = *s.process;
  if (!HasSelector(sel)) {
    return absl::InvalidArgumentError(
        "process: give at least one of pid, name, cmdline, pidfile, cgroup");
  }
  if (sel.pid() < 0) {
    return absl::InvalidArgumentError(
        fmt::format("process.pid: must be a positive pid, got {}", sel.pid()));
  }
  if (sel.pid() == 1) return absl::PermissionDeniedError("process.pid: 1 is protected (init)");
  if (sel.name().size() > kMaxCommLength) {
    return absl::InvalidArgumentError(fmt::format(
        "process.name: \"{}\" is longer than {} characters, so no process name (comm) can equal "
        "it; use cmdline for longer names",
        Printable(sel.name()), kMaxCommLength));
  }
  if (!sel.cmdline().empty()) RETURN_IF_ERROR(CompileCmdline(sel.cmdline()).status());
  if (!sel.pidfile().empty() && sel.pidfile()[0] != '/') {
    return absl::InvalidArgumentError(
        fmt::format("process.pidfile: must be an absolute path, got \"{}\"", Printable(sel.pidfile())));
  }
  if (!sel.cgroup().empty() && sel.cgroup()[0] != '/') {
    return absl::InvalidArgumentError(fmt::format(
        "process.cgroup: must be an absolute cgroup v2 path such as /system.slice/redis.service, "
        "got \"{}\"",
        Printable(sel.cgroup())));
  }
  if (!v1::SelectionMode_IsValid(s.mode)) {
    return absl::InvalidArgumentError(fmt::format("mode: unknown value {}", static_cast<int>(s.mode)));
  }
  const std::string mode = ModeName(s.mode);
  if (s.mode == v1::SELECTION_MODE_COUNT) {
    if (s.count <= 0) {
      return absl::InvalidArgumentError(
          fmt::format("count: must be greater than 0 with mode count, got {}", s.count));
    }
  } else if (s.count != 0) {
    return absl::InvalidArgumentError(
        fmt::format("count: only valid with mode count, got mode \"{}\"", mode));
  }
  if (s.mode == v1::SELECTION_MODE_PERCENT) {
    if (!s.percent.has_value()) return absl::InvalidArgumentError("percent: required with mode percent");
    const double p = *s.percent;
    if (!(p > 0 && p <= 100)) {  // also rejects NaN
      return absl::InvalidArgumentError(
          fmt::format("percent: must be above 0 and at most 100, got {:g}", p));
    }
  } else if (s.percent.has_value()) {
    return absl::InvalidArgumentError(
        fmt::format("percent: only valid with mode percent, got mode \"{}\"", mode));
  }
  return absl::OkStatus();
}

}  // namespace faultline::spec
