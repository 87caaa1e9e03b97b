// exec probe: runs a command (argv, no shell, no PATH lookup: argv[0] is an
// absolute path); healthy when it exits 0 within the timeout. It runs as the
// exec policy's unprivileged user, from /, with a minimal environment. A command
// that overruns is killed (its process group, which we created for it) and
// reaped before Check() returns.
#include <fmt/format.h>

#include <string>
#include <optional>
#include <utility>
#include <vector>

#include "probes/exec_runner.h"
#include "probes/probe_internal.h"
#include "common/status_macros.h"

namespace faultline::probes {
namespace {

constexpr size_t kMaxOutputKept = 512;

// First line of the command's output, for the error message.
std::string Summarize(const std::string& output) {
  std::string line = output.substr(0, output.find('\n'));
  for (char& c : line) {
    if (static_cast<unsigned char>(c) < 0x20) c = ' ';
  }
  return line.size() > 200 ? line.substr(0, 200) + "..." : line;
}

// Runs argv once per check (exec_runner.h). Owned by the runner; not thread-safe.
class ExecProbe final : public Probe {
 public:
  ExecProbe(std::vector<std::string> argv, std::optional<ExecCredentials> run_as)
      : argv_(std::move(argv)), run_as_(std::move(run_as)) {}

  ProbeResult Check(std::chrono::nanoseconds timeout) override {
    ExecOptions options;
    options.run_as = run_as_;
    options.timeout = timeout;
    options.keep_bytes = kMaxOutputKept;
    absl::StatusOr<ExecOutcome> ran = RunCommand(argv_, options);
    if (!ran.ok()) return {false, std::string(ran.status().message())};
    if (ran->ok()) return {true, ""};
    std::string what = ran->Describe();
    const std::string summary = Summarize(ran->output);
    if (!summary.empty() && !ran->timed_out) what += ": " + summary;
    return {false, what};
  }

 private:
  const std::vector<std::string> argv_;
  const std::optional<ExecCredentials> run_as_;
};

}  // namespace

absl::StatusOr<std::unique_ptr<Probe>> MakeExecProbe(const v1::ExecProbe& spec,
                                                     const ExecPolicy* exec) {
  std::vector<std::string> argv(spec.argv().begin(), spec.argv().end());
  RETURN_IF_ERROR(ValidateArgv("exec.argv", argv));
  std::optional<ExecCredentials> run_as;
  if (exec != nullptr) {
    RETURN_IF_ERROR(exec->Check(argv));
    run_as = exec->credentials();
  }
  return std::unique_ptr<Probe>(std::make_unique<ExecProbe>(std::move(argv), std::move(run_as)));
}

}  // namespace faultline::probes
