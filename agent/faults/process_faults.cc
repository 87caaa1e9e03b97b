#include "agent/faults/process_faults.h"

#include <csignal>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/str_join.h"
#include "agent/faults/process_selector.h"
#include "agent/faults/process_table.h"
#include "common/status_macros.h"
#include "spec/signals.h"
#include "fmt/format.h"
#include "spdlog/spdlog.h"

namespace faultline::agent {
namespace {

std::vector<v1::ProcessRef> Refs(const v1::FaultRecord& record) {
  return {record.processes().begin(), record.processes().end()};
}

std::string Who(const v1::ProcessRef& ref) { return fmt::format("pid {} ({})", ref.pid(), ref.comm()); }

// Fills record->processes and record->target from a selection.
void RecordSelection(const std::vector<ProcessInfo>& picked, v1::FaultRecord* record) {
  record->clear_processes();
  for (const auto& p : picked) {
    v1::ProcessRef* ref = record->add_processes();
    ref->set_pid(p.pid);
    ref->set_start_time(p.start_time);
    ref->set_comm(p.comm);
  }
  record->set_target(DescribeProcesses(Refs(*record)));
}

// Signals `ref` if it is still the process that was planned: its start time
// (/proc/PID/stat field 22) equals the recorded one. NOT_FOUND when it is
// gone; FAILED_PRECONDITION when the pid now belongs to another process, or
// the record has no start time (an old or crafted record): never signalled.
absl::Status SignalIfSame(const ProcessTable& table, const v1::ProcessRef& ref, int signo) {
  absl::StatusOr<ProcessInfo> now = table.Get(ref.pid());
  if (absl::IsNotFound(now.status())) {
    return absl::NotFoundError(fmt::format("{} has exited", Who(ref)));
  }
  if (!now.ok()) return now.status();
  if (ref.start_time() == 0) {
    return absl::FailedPreconditionError(fmt::format(
        "{}: the record has no start time, so nothing says it is the process planned", Who(ref)));
  }
  if (now->start_time != ref.start_time()) {
    return absl::FailedPreconditionError(fmt::format(
        "{}: the pid now belongs to another process (start time {}, recorded {})", Who(ref),
        now->start_time, ref.start_time()));
  }
  absl::Status s = table.Signal(ref.pid(), signo);
  if (absl::IsNotFound(s)) return absl::NotFoundError(fmt::format("{} has exited", Who(ref)));
  if (!s.ok()) {
    return absl::Status(s.code(), fmt::format("{}: {}", Who(ref), std::string(s.message())));
  }
  return absl::OkStatus();
}

absl::Status NeedTable(const FaultContext& ctx) {
  if (ctx.processes == nullptr) return absl::InternalError("no process table");
  return absl::OkStatus();
}

// Sends a signal to processes picked by the selectors. An action: once a
// signal is delivered there is nothing to undo. Stateless: thread-safe.
class KillHandler : public FaultHandler {
 public:
  v1::FaultSpec::KindCase kind_case() const override { return v1::FaultSpec::kKill; }

  absl::Status Validate(const v1::FaultSpec& spec, const FaultContext& ctx) const override {
    return ValidateProcessSelection(spec, ctx);
  }

  absl::StatusOr<std::vector<std::string>> Plan(const v1::FaultSpec& spec, const FaultContext& ctx,
                                                v1::FaultRecord* record) const override {
    RETURN_IF_ERROR(NeedTable(ctx));
    ASSIGN_OR_RETURN(const int signo, ParseSignalOf(spec));
    ASSIGN_OR_RETURN(const std::vector<ProcessInfo> picked, SelectProcesses(spec, ctx));
    RecordSelection(picked, record);
    std::vector<std::string> lines;
    for (const auto& ref : record->processes()) {
      lines.push_back(fmt::format("send {} to {}", spec::SignalName(signo), Who(ref)));
    }
    return lines;
  }

  // Signals every recorded process that is still the same process. Fails only
  // if none could be signalled; the record then keeps just the signalled ones.
  absl::Status Apply(v1::FaultRecord* record, const FaultContext& ctx) const override {
    RETURN_IF_ERROR(NeedTable(ctx));
    ASSIGN_OR_RETURN(const int signo, ParseSignalOf(record->spec()));
    if (record->processes().empty()) {
      return absl::FailedPreconditionError("process: no process was planned");
    }
    std::vector<v1::ProcessRef> signalled;
    std::vector<std::string> failures;
    absl::StatusCode first_code = absl::StatusCode::kOk;
    for (const auto& ref : record->processes()) {
      absl::Status s = SignalIfSame(*ctx.processes, ref, signo);
      if (s.ok()) {
        signalled.push_back(ref);
        continue;
      }
      if (first_code == absl::StatusCode::kOk) first_code = s.code();
      failures.push_back(std::string(s.message()));
    }
    if (signalled.empty()) {
      // A process that exited by itself is host state, not an internal error.
      const absl::StatusCode code =
          first_code == absl::StatusCode::kNotFound ? absl::StatusCode::kFailedPrecondition : first_code;
      return absl::Status(code, fmt::format("process: could not send {} to any process: {}",
                                            spec::SignalName(signo), absl::StrJoin(failures, "; ")));
    }
    if (!failures.empty()) {
      spdlog::warn("kill {}: sent {} to {} of {} processes; not to: {}", record->id(),
                   spec::SignalName(signo), signalled.size(), record->processes_size(),
                   absl::StrJoin(failures, "; "));
      record->clear_processes();
      for (auto& ref : signalled) *record->add_processes() = std::move(ref);
      record->set_target(DescribeProcesses(Refs(*record)));
    }
    return absl::OkStatus();
  }

  absl::Status Revert(const v1::FaultRecord& /*record*/, const FaultContext& /*ctx*/) const override {
    return absl::OkStatus();
  }

 private:
  static absl::StatusOr<int> ParseSignalOf(const v1::FaultSpec& spec) {
    return spec::ParseSignal(spec.kill().signal().empty() ? "KILL" : spec.kill().signal());
  }
};

// Stops processes with SIGSTOP and resumes them with SIGCONT on revert.
// Stateless: thread-safe.
class PauseHandler : public FaultHandler {
 public:
  v1::FaultSpec::KindCase kind_case() const override { return v1::FaultSpec::kPause; }

  absl::Status Validate(const v1::FaultSpec& spec, const FaultContext& ctx) const override {
    return ValidateProcessSelection(spec, ctx);
  }

  absl::StatusOr<std::vector<std::string>> Plan(const v1::FaultSpec& spec, const FaultContext& ctx,
                                                v1::FaultRecord* record) const override {
    RETURN_IF_ERROR(NeedTable(ctx));
    SelectionOptions options;
    options.exclude_stopped = true;
    ASSIGN_OR_RETURN(const std::vector<ProcessInfo> picked, SelectProcesses(spec, ctx, options));
    RecordSelection(picked, record);
    std::vector<std::string> lines;
    for (const auto& ref : record->processes()) {
      lines.push_back(fmt::format("send SIGSTOP to {} (SIGCONT at revert)", Who(ref)));
    }
    return lines;
  }

  // All-or-nothing: if any process cannot be stopped, the ones already stopped
  // are resumed before the error is returned.
  absl::Status Apply(v1::FaultRecord* record, const FaultContext& ctx) const override {
    RETURN_IF_ERROR(NeedTable(ctx));
    if (record->processes().empty()) {
      return absl::FailedPreconditionError("process: no process was planned");
    }
    std::vector<const v1::ProcessRef*> stopped;
    for (const auto& ref : record->processes()) {
      absl::Status s = SignalIfSame(*ctx.processes, ref, SIGSTOP);
      if (s.ok()) {
        stopped.push_back(&ref);
        continue;
      }
      for (const v1::ProcessRef* done : stopped) {
        absl::Status undo = SignalIfSame(*ctx.processes, *done, SIGCONT);
        if (!undo.ok() && !absl::IsNotFound(undo)) {
          spdlog::error("pause {}: could not resume {} after a failed apply: {}", record->id(),
                        Who(*done), std::string(undo.message()));
        }
      }
      const absl::StatusCode code =
          absl::IsNotFound(s) ? absl::StatusCode::kFailedPrecondition : s.code();
      return absl::Status(code, fmt::format("process: could not pause {}; resumed the {} already "
                                            "paused",
                                            std::string(s.message()), stopped.size()));
    }
    return absl::OkStatus();
  }

  // Resumes every recorded process that is still the same process (same
  // start time); processes that have exited are fine, and a pid whose start
  // time differs or was never recorded is skipped with a warning. Idempotent (SIGCONT to a running process is a
  // no-op). Tries them all before reporting a failure.
  absl::Status Revert(const v1::FaultRecord& record, const FaultContext& ctx) const override {
    RETURN_IF_ERROR(NeedTable(ctx));
    std::vector<std::string> failures;
    absl::StatusCode code = absl::StatusCode::kOk;
    for (const auto& ref : record.processes()) {
      absl::Status s = SignalIfSame(*ctx.processes, ref, SIGCONT);
      if (s.ok() || absl::IsNotFound(s)) continue;
      if (absl::IsFailedPrecondition(s)) {
        // Not ours to resume: reported, skipped, and the revert goes on.
        spdlog::warn("pause {}: skipped {}", record.id(), std::string(s.message()));
        continue;
      }
      if (code == absl::StatusCode::kOk) code = s.code();
      failures.push_back(std::string(s.message()));
    }
    if (!failures.empty()) {
      return absl::Status(code, fmt::format("could not resume: {}", absl::StrJoin(failures, "; ")));
    }
    return absl::OkStatus();
  }
};

}  // namespace

std::unique_ptr<FaultHandler> MakeKillHandler() { return std::make_unique<KillHandler>(); }
std::unique_ptr<FaultHandler> MakePauseHandler() { return std::make_unique<PauseHandler>(); }

}  // namespace faultline::agent
