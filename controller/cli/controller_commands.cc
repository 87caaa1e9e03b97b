// Commands that go through the controller (--controller ADDR): agents, run,
// runs, runs show, abort; and validate (local, no controller needed).
#include <fmt/format.h>
#include <grpcpp/client_context.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <ctime>
#include <fstream>

#include "absl/strings/str_join.h"
#include "common/clock.h"
#include "common/endpoint.h"
#include "common/files.h"
#include "common/grpc_status.h"
#include "common/yaml_proto.h"
#include "controller/cli/cli.h"
#include "controller/cli/report.h"
#include "controller/experiment.h"
#include "controller/store.h"
#include "faultline/v1/controller.grpc.pb.h"

namespace faultline::cli {
namespace {

std::string Labels(const google::protobuf::Map<std::string, std::string>& labels) {
  if (labels.empty()) return "-";
  const std::map<std::string, std::string> sorted(labels.begin(), labels.end());
  return absl::StrJoin(sorted, ",", absl::PairFormatter("="));
}

std::string Ago(int64_t unix_ns) {
  if (unix_ns == 0) return "never";
  const double s = static_cast<double>(NowRealtimeNs() - unix_ns) / 1e9;
  if (s < 60) return fmt::format("{:.1f}s ago", s);
  if (s < 3600) return fmt::format("{:.0f}m ago", s / 60);
  return fmt::format("{:.1f}h ago", s / 3600);
}

void CmdAgents(CliContext& ctx) {
  auto stub = ControllerStub(ctx);
  if (!stub.ok()) return ctx.Fail(stub.status());
  grpc::ClientContext c;
  Deadline(&c);
  v1::ListAgentsResponse resp;
  grpc::Status st = (*stub)->ListAgents(&c, v1::ListAgentsRequest(), &resp);
  if (!st.ok()) return ctx.Fail(FromGrpcStatus(st));
  if (ctx.Json()) return (void)std::printf("%s\n", ToJson(resp).c_str());
  if (resp.agents().empty()) {
    std::printf("no agents registered\n");
    return;
  }
  std::printf("%-16s %-24s %-30s %-10s %-7s %s\n", "NAME", "ADDRESS", "LABELS", "HEALTH",
              "FAULTS", "LAST HEARTBEAT");
  for (const auto& a : resp.agents()) {
    std::string faults = a.active_faults() < 0 ? "?" : std::to_string(a.active_faults());
    // Whatever the controller stored, never let it drive the terminal.
    std::printf("%-16s %-24s %-30s %-10s %-7s %s\n", Printable(a.name()).c_str(),
                Printable(a.address()).c_str(), Printable(Labels(a.labels())).c_str(),
                Printable(a.health()).c_str(), faults.c_str(),
                Ago(a.last_heartbeat_unix_ns()).c_str());
  }
}

void CmdValidate(CliContext& ctx, const std::string& file) {
  auto exp = controller::LoadExperimentFile(file);
  if (ctx.Json()) {
    std::string problems;
    if (!exp.ok()) {
      const std::string msg(exp.status().message());
      size_t start = 0;
      while (start <= msg.size()) {
        size_t end = msg.find('\n', start);
        if (end == std::string::npos) end = msg.size();
        problems += (problems.empty() ? "" : ",") + JsonQuote(msg.substr(start, end - start));
        start = end + 1;
      }
    }
    std::printf("{\"file\":%s,\"valid\":%s,\"problems\":[%s]}\n", JsonQuote(file).c_str(),
                exp.ok() ? "true" : "false", problems.c_str());
    if (!exp.ok()) ctx.exit_code = 1;
    return;
  }
  if (!exp.ok()) {
    const std::string msg(exp.status().message());
    size_t start = 0;
    while (start <= msg.size()) {
      size_t end = msg.find('\n', start);
      if (end == std::string::npos) end = msg.size();
      std::fprintf(stderr, "%s: %s\n", file.c_str(), msg.substr(start, end - start).c_str());
      start = end + 1;
    }
    ctx.exit_code = 1;
    return;
  }
  if (exp->has_drill()) {
    std::printf("%s: ok (%s: restore drill, %d target(s), %s steps, rto %s%s%s)\n", file.c_str(),
                exp->name().c_str(), exp->targets_size(),
                exp->drill().has_backup() ? "backup, restore and verify" : "restore and verify",
                exp->objectives().rto().c_str(), exp->drill().has_marker() ? ", marker" : "",
                exp->objectives().rpo().empty() ? "" : (", rpo " + exp->objectives().rpo()).c_str());
    return;
  }
  std::printf("%s: ok (%s: %d target(s), %d probe(s), %d fault(s), duration %s, rto %s)\n",
              file.c_str(), exp->name().c_str(), exp->targets_size(), exp->probes_size(),
              exp->faults_size(), exp->duration().c_str(), exp->objectives().rto().c_str());
}

// One live status line on a terminal (rewritten in place), phase changes
// otherwise.
class ProgressPrinter {
 public:
  explicit ProgressPrinter(bool quiet) : quiet_(quiet), tty_(isatty(STDERR_FILENO) == 1) {}
  ~ProgressPrinter() { Clear(); }

  void Show(const v1::RunProgress& p) {
    if (quiet_) return;
    if (!tty_) {
      if (p.phase() != last_phase_) {
        std::fprintf(stderr, "[%7.1fs] %s%s%s\n", p.elapsed_ms() / 1000, p.phase().c_str(),
                     p.message().empty() ? "" : ": ", p.message().c_str());
      }
      last_phase_ = p.phase();
      return;
    }
    std::string line = fmt::format("\r\033[K[{:7.1f}s] {:<12}", p.elapsed_ms() / 1000, p.phase());
    for (const auto& pr : p.probes()) {
      line += fmt::format(" | {} {} ({} samples, {} failed)", pr.name(),
                          pr.samples() == 0 ? "…" : (pr.ok() ? "ok" : "FAILING"), pr.samples(),
                          pr.failures());
    }
    std::fputs(line.c_str(), stderr);
    std::fflush(stderr);
    shown_ = true;
  }
  void Clear() {
    if (tty_ && shown_) std::fputs("\r\033[K", stderr);
    shown_ = false;
  }

 private:
  const bool quiet_;
  const bool tty_;
  bool shown_ = false;
  std::string last_phase_;
};

int VerdictExitCode(const std::string& verdict) {
  return verdict == "pass" || verdict == "dry_run" ? 0 : 2;
}

void CmdRun(CliContext& ctx, const std::string& file, bool dry_run, const std::string& report) {
  auto text = ReadFileToString(file);
  if (!text.ok()) return ctx.Fail(text.status());
  // Validate locally first: every problem at once, without a controller.
  auto exp = controller::LoadExperiment(*text);
  if (!exp.ok()) {
    return ctx.Fail(absl::InvalidArgumentError(
        fmt::format("{}:\n{}", file, std::string(exp.status().message()))));
  }
  auto stub = ControllerStub(ctx);
  if (!stub.ok()) return ctx.Fail(stub.status());
  grpc::ClientContext c;  // no deadline: a run lasts as long as its experiment
  v1::RunExperimentRequest req;
  req.set_yaml(*text);
  req.set_file(file);
  req.set_dry_run(dry_run);
  auto reader = (*stub)->RunExperiment(&c, req);
  v1::RunUpdate u;
  v1::RunReport result;
  bool have_result = false;
  {
    ProgressPrinter progress(ctx.Json());
    while (reader->Read(&u)) {
      if (u.has_progress()) progress.Show(u.progress());
      if (u.has_report()) {
        result = u.report();
        have_result = true;
      }
    }
  }
  grpc::Status st = reader->Finish();
  if (!st.ok()) return ctx.Fail(FromGrpcStatus(st));
  if (!have_result) {
    return ctx.Fail(absl::UnavailableError("the controller ended the run without a report"));
  }
  if (!report.empty()) {
    absl::Status w = WriteFileDurably(report, MarkdownReport(result));
    if (!w.ok()) {
      ctx.Fail(w);
    } else if (!ctx.Json()) {
      std::fprintf(stderr, "report written to %s\n", report.c_str());
    }
  }
  if (ctx.Json()) {
    std::printf("%s\n", ToJson(result).c_str());
  } else {
    std::fputs(TextReport(result).c_str(), stdout);
  }
  if (ctx.exit_code == 0) ctx.exit_code = VerdictExitCode(result.verdict());
}

void CmdRuns(CliContext& ctx, int limit) {
  auto stub = ControllerStub(ctx);
  if (!stub.ok()) return ctx.Fail(stub.status());
  grpc::ClientContext c;
  Deadline(&c);
  v1::ListRunsRequest req;
  req.set_limit(limit);
  v1::ListRunsResponse resp;
  grpc::Status st = (*stub)->ListRuns(&c, req, &resp);
  if (!st.ok()) return ctx.Fail(FromGrpcStatus(st));
  if (ctx.Json()) return (void)std::printf("%s\n", ToJson(resp).c_str());
  if (resp.runs().empty()) {
    std::printf("no runs\n");
    return;
  }
  std::printf("%-22s %-28s %-20s %-12s %-14s %s\n", "RUN", "EXPERIMENT", "STARTED (UTC)",
              "VERDICT", "RECOVER (ms)", "RTO (ms)");
  for (const auto& r : resp.runs()) {
    std::string ttr = r.outage_observed() ? fmt::format("{:.0f}±{:.0f}", r.time_to_recover_ms(),
                                                        r.error_ms())
                                          : "-";
    std::printf("%-22s %-28s %-20s %-12s %-14s %.0f\n", r.run_id().c_str(),
                r.experiment().c_str(), FormatUtc(r.started_unix_ns()).c_str(),
                r.verdict().empty() ? r.state().c_str() : r.verdict().c_str(), ttr.c_str(),
                r.rto_target_ms());
  }
}

void CmdRunsShow(CliContext& ctx, const std::string& id, const std::string& report) {
  auto stub = ControllerStub(ctx);
  if (!stub.ok()) return ctx.Fail(stub.status());
  grpc::ClientContext c;
  Deadline(&c);
  v1::GetRunRequest req;
  req.set_run_id(id);
  v1::RunReport r;
  grpc::Status st = (*stub)->GetRun(&c, req, &r);
  if (!st.ok()) return ctx.Fail(FromGrpcStatus(st));
  if (!report.empty()) {
    absl::Status w = WriteFileDurably(report, MarkdownReport(r));
    if (!w.ok()) return ctx.Fail(w);
  }
  if (ctx.Json()) return (void)std::printf("%s\n", ToJson(r).c_str());
  std::fputs(TextReport(r).c_str(), stdout);
}

void CmdAbort(CliContext& ctx) {
  auto stub = ControllerStub(ctx);
  if (!stub.ok()) return ctx.Fail(stub.status());
  grpc::ClientContext c;
  Deadline(&c);
  v1::AbortResponse resp;
  grpc::Status st = (*stub)->Abort(&c, v1::AbortRequest(), &resp);
  if (!st.ok()) return ctx.Fail(FromGrpcStatus(st));
  if (!resp.errors().empty()) ctx.exit_code = 1;
  if (ctx.Json()) return (void)std::printf("%s\n", ToJson(resp).c_str());
  std::printf("aborted %d run(s); reverted %d fault(s)\n", resp.runs_aborted(),
              resp.faults_reverted());
  for (const auto& e : resp.errors()) std::printf("  unreachable: %s\n", e.c_str());
}

}  // namespace

void AddControllerCommands(CLI::App& app, CliContext& ctx) {
  app.add_subcommand("agents", "agents registered with the controller")
      ->callback([&ctx] { CmdAgents(ctx); });

  static std::string validate_file;
  auto* validate = app.add_subcommand("validate", "check an experiment file (no controller needed)");
  validate->add_option("file", validate_file, "experiment YAML")->required();
  validate->callback([&ctx] { CmdValidate(ctx, validate_file); });

  static std::string run_file, run_report;
  static bool run_dry = false;
  auto* run = app.add_subcommand("run", "run an experiment through the controller");
  run->add_option("file", run_file, "experiment YAML")->required();
  run->add_flag("--dry-run", run_dry, "resolve targets and plan the faults; inject nothing");
  run->add_option("--report", run_report, "also write a Markdown report to this file");
  run->callback([&ctx] { CmdRun(ctx, run_file, run_dry, run_report); });

  static int runs_limit = 50;
  static std::string show_id, show_report;
  auto* runs = app.add_subcommand("runs", "past runs, newest first");
  runs->add_option("--limit", runs_limit, "at most this many (1 to 1000)")
      ->check(CLI::Range(1, controller::kMaxListRuns))
      ->capture_default_str();
  auto* show = runs->add_subcommand("show", "one run with its timeline");
  show->add_option("id", show_id, "run id")->required();
  show->add_option("--report", show_report, "also write a Markdown report to this file");
  runs->callback([&ctx, show] {
    if (show->parsed()) {
      CmdRunsShow(ctx, show_id, show_report);
    } else {
      CmdRuns(ctx, runs_limit);
    }
  });

  app.add_subcommand("abort", "stop every running experiment and revert every fault on every agent")
      ->callback([&ctx] { CmdAbort(ctx); });
}

}  // namespace faultline::cli
