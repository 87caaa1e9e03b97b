#include "agent/faults/process_selector.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstring>
#include <map>
#include <set>
#include <utility>

#include <re2/re2.h>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_join.h"
#include "common/status_macros.h"
#include "common/unique_fd.h"
#include "spec/process.h"
#include "faultline/v1/policy.pb.h"
#include "fmt/format.h"

namespace faultline::agent {
namespace {

// Cmdlines may be megabytes long (ARG_MAX); matching is linear in the text
// (RE2, see CompileCmdline), and this bound keeps each process's match short.
// Real cmdlines, long Java class paths included, fit.
constexpr size_t kMaxCmdlineSearched = 64 * 1024;
// Pidfiles hold one number; refuse to slurp anything large (or /dev/zero).
constexpr size_t kMaxPidfileBytes = 64;

bool PolicyProtects(const FaultContext& ctx, const std::string& comm) {
  if (ctx.policy == nullptr) return false;
  const auto& names = ctx.policy->protected_processes();
  return std::find(names.begin(), names.end(), comm) != names.end();
}

// Exclusions that need no process table: pid 1 and the agent.
std::optional<std::string> PidExclusion(pid_t pid, const FaultContext& ctx) {
  if (pid == 1) return "is protected (init)";
  if (ctx.agent_pid != 0 && pid == ctx.agent_pid) return "is the agent itself";
  return std::nullopt;
}

std::string StripTrailingSlashes(std::string path) {
  while (path.size() > 1 && path.back() == '/') path.pop_back();
  return path;
}

bool CgroupContains(const std::string& selector, const std::string& cgroup) {
  const std::string base = StripTrailingSlashes(selector);
  if (cgroup.empty()) return false;  // no cgroup v2 membership known
  if (base == "/") return true;
  return cgroup == base || (cgroup.size() > base.size() && cgroup.compare(0, base.size(), base) == 0 &&
                            cgroup[base.size()] == '/');
}

absl::StatusOr<pid_t> ReadPidfile(const std::string& path) {
  UniqueFd fd(open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK));
  if (!fd) {
    return absl::FailedPreconditionError(
        fmt::format("process.pidfile: cannot read {}: {}", path, std::strerror(errno)));
  }
  char buf[kMaxPidfileBytes + 1];
  ssize_t n;
  do {
    n = read(fd.get(), buf, sizeof buf);
  } while (n < 0 && errno == EINTR);
  const int read_errno = errno;
  fd.reset();
  if (n < 0) {
    return absl::FailedPreconditionError(
        fmt::format("process.pidfile: cannot read {}: {}", path, std::strerror(read_errno)));
  }
  const std::string text(buf, static_cast<size_t>(n));
  pid_t pid = 0;
  if (static_cast<size_t>(n) > kMaxPidfileBytes ||
      !absl::SimpleAtoi(absl::StripAsciiWhitespace(text), &pid) || pid <= 0) {
    return absl::FailedPreconditionError(
        fmt::format("process.pidfile: {} does not hold a pid", path));
  }
  return pid;
}

// Whether `p` satisfies every selector that is set (pid and pidfile are
// resolved by the caller).
bool Matches(const v1::ProcessSelector& sel, const re2::RE2* re, const ProcessInfo& p) {
  if (!sel.name().empty() && p.comm != sel.name()) return false;
  if (!sel.cgroup().empty() && !CgroupContains(sel.cgroup(), p.cgroup)) return false;
  if (re != nullptr) {
    const re2::StringPiece text(p.cmdline.data(), std::min(p.cmdline.size(), kMaxCmdlineSearched));
    if (!re2::RE2::PartialMatch(text, *re)) return false;
  }
  return true;
}

}  // namespace

absl::Status ValidateProcessSelection(const v1::FaultSpec& spec, const FaultContext& ctx) {
  ASSIGN_OR_RETURN(const spec::ProcessSelection selection, spec::SelectionOf(spec));
  const v1::ProcessSelector& sel = *selection.process;
  if (sel.pid() > 0) {
    if (auto why = PidExclusion(sel.pid(), ctx)) {
      return absl::PermissionDeniedError(fmt::format("process.pid: {} {}", sel.pid(), *why));
    }
  }
  if (!sel.name().empty() && PolicyProtects(ctx, sel.name())) {
    return absl::PermissionDeniedError(
        fmt::format("process.name: \"{}\" is protected by the agent's policy", sel.name()));
  }
  return absl::OkStatus();
}

std::optional<std::string> ExclusionReason(const ProcessInfo& p, const FaultContext& ctx,
                                           const SelectionOptions& options) {
  if (auto why = PidExclusion(p.pid, ctx)) return why;
  if (p.kernel_thread) return "is a kernel thread";
  if (p.state == 'Z' || p.state == 'X' || p.state == 'x') return "is a zombie";
  if (PolicyProtects(ctx, p.comm)) {
    return fmt::format("is protected by the agent's policy (\"{}\")", p.comm);
  }
  if (options.exclude_stopped && (p.state == 'T' || p.state == 't')) return "is already stopped";
  return std::nullopt;
}

std::string DescribeSelector(const v1::ProcessSelector& sel) {
  std::vector<std::string> parts;
  if (sel.pid() != 0) parts.push_back(fmt::format("pid={}", sel.pid()));
  if (!sel.name().empty()) parts.push_back(fmt::format("name=\"{}\"", sel.name()));
  if (!sel.cmdline().empty()) parts.push_back(fmt::format("cmdline=\"{}\"", sel.cmdline()));
  if (!sel.pidfile().empty()) parts.push_back(fmt::format("pidfile=\"{}\"", sel.pidfile()));
  if (!sel.cgroup().empty()) parts.push_back(fmt::format("cgroup=\"{}\"", sel.cgroup()));
  return absl::StrJoin(parts, " ");
}

std::string DescribeProcesses(const std::vector<v1::ProcessRef>& refs) {
  constexpr size_t kMaxListed = 20;
  std::vector<std::string> pids;
  std::vector<std::string> names;
  std::set<std::string> seen;
  for (const auto& r : refs) {
    if (pids.size() < kMaxListed) pids.push_back(std::to_string(r.pid()));
    if (seen.insert(r.comm()).second) names.push_back(r.comm());
  }
  std::string list = absl::StrJoin(pids, ",");
  if (refs.size() > kMaxListed) list += fmt::format(" and {} more", refs.size() - kMaxListed);
  return fmt::format("{} {} ({})", refs.size() == 1 ? "pid" : "pids", list,
                     absl::StrJoin(names, ", "));
}

absl::StatusOr<std::vector<ProcessInfo>> SelectProcesses(const v1::FaultSpec& spec,
                                                         const FaultContext& ctx,
                                                         const SelectionOptions& options,
                                                         std::mt19937_64& rng) {
  RETURN_IF_ERROR(ValidateProcessSelection(spec, ctx));
  ASSIGN_OR_RETURN(const spec::ProcessSelection selection, spec::SelectionOf(spec));
  if (ctx.processes == nullptr) return absl::InternalError("no process table");
  const v1::ProcessSelector& sel = *selection.process;
  std::unique_ptr<const re2::RE2> re;
  if (!sel.cmdline().empty()) {
    ASSIGN_OR_RETURN(re, spec::CompileCmdline(sel.cmdline()));
  }
  auto no_match = [&](const std::string& note) {
    return absl::FailedPreconditionError(
        fmt::format("process: no process matches {}{}", DescribeSelector(sel), note));
  };

  // An explicit pid (given, or read from the pidfile) narrows the candidates to
  // one process, and its exclusion is an error of its own.
  std::optional<pid_t> explicit_pid;
  std::string explicit_field;
  if (sel.pid() > 0) {
    explicit_pid = sel.pid();
    explicit_field = "process.pid";
  }
  if (!sel.pidfile().empty()) {
    ASSIGN_OR_RETURN(const pid_t from_file, ReadPidfile(sel.pidfile()));
    if (explicit_pid.has_value() && *explicit_pid != from_file) {
      return no_match(fmt::format(" ({} holds pid {})", sel.pidfile(), from_file));
    }
    if (!explicit_pid.has_value()) {
      explicit_pid = from_file;
      explicit_field = "process.pidfile";
    }
  }

  std::vector<ProcessInfo> candidates;
  if (explicit_pid.has_value()) {
    const pid_t pid = *explicit_pid;
    const std::string who = explicit_field == "process.pidfile"
                                ? fmt::format("pid {} (from {})", pid, sel.pidfile())
                                : std::to_string(pid);
    if (auto why = PidExclusion(pid, ctx)) {
      return absl::PermissionDeniedError(fmt::format("{}: {} {}", explicit_field, who, *why));
    }
    absl::StatusOr<ProcessInfo> info = ctx.processes->Get(pid);
    if (absl::IsNotFound(info.status())) {
      return absl::FailedPreconditionError(
          fmt::format("{}: no process with pid {} is running", explicit_field, pid));
    }
    if (!info.ok()) return info.status();
    if (auto why = ExclusionReason(*info, ctx, options)) {
      return absl::PermissionDeniedError(fmt::format("{}: {} {}", explicit_field, who, *why));
    }
    candidates.push_back(std::move(*info));
  } else {
    ASSIGN_OR_RETURN(candidates, ctx.processes->List());
  }

  std::vector<ProcessInfo> matches;
  std::map<std::string, int> excluded;  // reason -> how many matching processes
  for (auto& p : candidates) {
    if (!Matches(sel, re.get(), p)) continue;
    if (auto why = ExclusionReason(p, ctx, options)) {
      ++excluded[*why];
      continue;
    }
    matches.push_back(std::move(p));
  }
  if (matches.empty()) {
    std::string note;
    if (!excluded.empty()) {
      int total = 0;
      std::vector<std::string> reasons;
      for (const auto& [why, n] : excluded) {
        total += n;
        // "is a kernel thread" -> "a kernel thread"
        reasons.push_back(why.rfind("is ", 0) == 0 ? why.substr(3) : why);
      }
      note = fmt::format(" that may be targeted ({} matching {} excluded: {})", total,
                         total == 1 ? "process" : "processes", absl::StrJoin(reasons, "; "));
    }
    return no_match(note);
  }

  size_t want = 1;
  switch (selection.mode) {
    case v1::SELECTION_MODE_ALL:
      want = matches.size();
      break;
    case v1::SELECTION_MODE_COUNT:
      want = static_cast<size_t>(selection.count);
      break;
    case v1::SELECTION_MODE_PERCENT: {
      // A small epsilon keeps 100/3 % of 9 at 3, not 4, despite rounding.
      const double exact = selection.percent.value_or(100) / 100.0 * static_cast<double>(matches.size());
      want = static_cast<size_t>(std::ceil(exact - 1e-9));
      want = std::max<size_t>(want, 1);
      break;
    }
    default:  // one
      want = 1;
  }
  want = std::min(want, matches.size());
  if (want < matches.size()) {
    std::shuffle(matches.begin(), matches.end(), rng);
    matches.resize(want);
  }
  std::sort(matches.begin(), matches.end(),
            [](const ProcessInfo& a, const ProcessInfo& b) { return a.pid < b.pid; });
  return matches;
}

absl::StatusOr<std::vector<ProcessInfo>> SelectProcesses(const v1::FaultSpec& spec,
                                                         const FaultContext& ctx,
                                                         const SelectionOptions& options) {
  std::random_device rd;
  std::mt19937_64 rng((static_cast<uint64_t>(rd()) << 32) ^ rd());
  return SelectProcesses(spec, ctx, options, rng);
}

}  // namespace faultline::agent
