// Commands that talk straight to one agent (--agent ADDR).
#include <fmt/format.h>
#include <grpcpp/client_context.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <ctime>
#include <deque>
#include <optional>

#include "absl/strings/str_join.h"
#include "common/clock.h"
#include "common/grpc_status.h"
#include "common/status_macros.h"
#include "common/units.h"
#include "controller/cli/cli.h"
#include "spec/fault_spec.h"
#include "faultline/v1/agent.grpc.pb.h"

namespace faultline::cli {
namespace {

// One kind's flags on one subcommand (inject or preflight), bound from
// spec::FaultKind::flags; read after parsing. Lives as long as the app.
struct KindCommand {
  const spec::FaultKind* kind = nullptr;
  std::vector<std::pair<const spec::Flag*, CLI::Option*>> options;
  bool dry_run = false;

  void Bind(CLI::App* sub, const spec::FaultKind& k) {
    kind = &k;
    for (const spec::Flag& f : k.flags) {
      CLI::Option* opt = f.is_switch ? sub->add_flag("--" + f.name, f.help)
                                     : sub->add_option("--" + f.name, f.help);
      if (!f.is_switch) {
        opt->multi_option_policy(f.repeated ? CLI::MultiOptionPolicy::TakeAll
                                            : CLI::MultiOptionPolicy::TakeLast);
      }
      options.emplace_back(&f, opt);
    }
  }

  // The spec the flags describe; with `validate`, checked by the rules the
  // agent runs (so a refusal needs no agent).
  absl::StatusOr<v1::FaultSpec> Spec(bool validate = true) const {
    std::vector<std::pair<const spec::Flag*, std::vector<std::string>>> values;
    for (const auto& [flag, opt] : options) {
      if (opt->count() == 0) continue;
      values.emplace_back(flag, flag->is_switch ? std::vector<std::string>{"true"} : opt->results());
    }
    ASSIGN_OR_RETURN(v1::FaultSpec built, spec::BuildFromFlags(*kind, values));
    if (validate) RETURN_IF_ERROR(spec::Validate(built).status());
    return built;
  }
};

std::unique_ptr<grpc::ClientContext> RpcContext() {
  auto c = std::make_unique<grpc::ClientContext>();
  c->set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(kRpcTimeoutSeconds));
  return c;
}

std::string LocalTime(int64_t unix_ns) {
  if (unix_ns == 0) return "-";
  std::time_t t = static_cast<std::time_t>(unix_ns / 1000000000LL);
  std::tm tm{};
  localtime_r(&t, &tm);
  char buf[32];
  std::strftime(buf, sizeof(buf), "%H:%M:%S", &tm);
  return buf;
}

std::string Remaining(int64_t deadline_unix_ns) {
  if (deadline_unix_ns == 0) return "-";
  int64_t left = deadline_unix_ns - NowRealtimeNs();
  if (left < 0) left = 0;
  return FormatDuration(std::chrono::seconds((left + 999999999) / 1000000000));
}

void PrintFaultTable(const google::protobuf::RepeatedPtrField<v1::FaultRecord>& faults) {
  if (faults.empty()) {
    std::printf("no active faults\n");
    return;
  }
  std::printf("%-14s %-10s %-9s %-9s %-10s %s\n", "ID", "KIND", "DEADLINE", "LEFT", "LEASE", "TARGET");
  for (const auto& f : faults) {
    std::printf("%-14s %-10s %-9s %-9s %-10s %s\n", f.id().c_str(), spec::KindName(f.spec()).c_str(),
                LocalTime(f.deadline_unix_ns()).c_str(), Remaining(f.deadline_unix_ns()).c_str(),
                f.lease_id().empty() ? "-" : f.lease_id().substr(0, 10).c_str(), f.target().c_str());
  }
}

// Runs `fn` with an Agent stub, reporting channel errors.
template <typename Fn>
void WithAgent(CliContext& ctx, Fn fn) {
  auto channel = ctx.AgentChannel();
  if (!channel.ok()) return ctx.Fail(channel.status());
  auto stub = v1::Agent::NewStub(*channel);
  fn(*stub);
}

void CmdInfo(CliContext& ctx) {
  WithAgent(ctx, [&](v1::Agent::Stub& stub) {
    v1::InfoResponse resp;
    auto st = stub.Info(RpcContext().get(), v1::InfoRequest(), &resp);
    if (!st.ok()) return ctx.Fail(FromGrpcStatus(st));
    if (ctx.Json()) return (void)std::printf("%s\n", ToJson(resp).c_str());
    const std::map<std::string, std::string> sorted(resp.labels().begin(), resp.labels().end());
    const std::string labels = absl::StrJoin(sorted, ",", absl::PairFormatter("="));
    const std::string caps = absl::StrJoin(resp.capabilities(), ", ");
    std::printf("name:         %s\nversion:      %s\nlabels:       %s\ncapabilities: %s\npid:          %d\n",
                resp.name().c_str(), resp.version().c_str(), labels.empty() ? "-" : labels.c_str(),
                caps.empty() ? "-" : caps.c_str(), resp.pid());
  });
}

void CmdInject(CliContext& ctx, const KindCommand& cmd) {
  auto spec = cmd.Spec();
  if (!spec.ok()) return ctx.Fail(spec.status());
  const std::string& kind = cmd.kind->name;
  WithAgent(ctx, [&](v1::Agent::Stub& stub) {
    v1::InjectRequest req;
    *req.mutable_spec() = *spec;
    req.set_dry_run(cmd.dry_run);
    const char* user = std::getenv("USER");
    req.set_owner(fmt::format("cli:{}", user ? user : "unknown"));
    v1::InjectResponse resp;
    auto st = stub.Inject(RpcContext().get(), req, &resp);
    if (!st.ok()) return ctx.Fail(FromGrpcStatus(st));
    if (ctx.Json()) return (void)std::printf("%s\n", ToJson(resp).c_str());
    const auto& f = resp.fault();
    if (cmd.dry_run) {
      std::printf("dry run: %s would change:\n", spec::Describe(*spec).c_str());
      for (const auto& c : resp.changes()) std::printf("  - %s\n", c.c_str());
      return;
    }
    if (f.state() == v1::FAULT_STATE_DONE) {
      std::printf("%s %s: %s\n", kind.c_str(), f.id().c_str(), f.target().c_str());
    } else {
      std::printf("injected %s (%s) on %s until %s\n", f.id().c_str(), kind.c_str(),
                  f.target().c_str(), LocalTime(f.deadline_unix_ns()).c_str());
    }
  });
}

void CmdPreflight(CliContext& ctx, const KindCommand& cmd) {
  auto spec = cmd.Spec();
  if (!spec.ok()) return ctx.Fail(spec.status());
  WithAgent(ctx, [&](v1::Agent::Stub& stub) {
    v1::PreflightRequest req;
    *req.mutable_spec() = *spec;
    v1::PreflightResponse resp;
    auto st = stub.Preflight(RpcContext().get(), req, &resp);
    if (!st.ok()) return ctx.Fail(FromGrpcStatus(st));
    if (!resp.ok()) ctx.exit_code = 1;
    if (ctx.Json()) return (void)std::printf("%s\n", ToJson(resp).c_str());
    std::printf("%s: %s\n", spec::Describe(*spec).c_str(),
                resp.ok() ? "can be injected" : "cannot be injected");
    for (const auto& c : resp.checks()) {
      std::printf("  [%s] %-6s %s\n", c.ok() ? "ok" : "!!", c.name().c_str(), c.detail().c_str());
    }
    if (!resp.changes().empty()) std::printf("would change:\n");
    for (const auto& c : resp.changes()) std::printf("  - %s\n", c.c_str());
  });
}

void CmdFaults(CliContext& ctx) {
  WithAgent(ctx, [&](v1::Agent::Stub& stub) {
    v1::ListFaultsResponse resp;
    auto st = stub.ListFaults(RpcContext().get(), v1::ListFaultsRequest(), &resp);
    if (!st.ok()) return ctx.Fail(FromGrpcStatus(st));
    if (ctx.Json()) return (void)std::printf("%s\n", ToJson(resp).c_str());
    PrintFaultTable(resp.faults());
  });
}

void CmdRevert(CliContext& ctx, const std::string& id, bool all) {
  if (all == !id.empty()) {
    return ctx.Fail(absl::InvalidArgumentError("revert: give a fault ID or --all"));
  }
  WithAgent(ctx, [&](v1::Agent::Stub& stub) {
    if (all) {
      v1::RevertAllResponse resp;
      auto st = stub.RevertAll(RpcContext().get(), v1::RevertAllRequest(), &resp);
      if (!st.ok()) return ctx.Fail(FromGrpcStatus(st));
      if (ctx.Json()) return (void)std::printf("%s\n", ToJson(resp).c_str());
      std::printf("reverted %d fault(s)\n", resp.faults_size());
      for (const auto& f : resp.faults()) {
        std::printf("  %s (%s) %s\n", f.id().c_str(), spec::KindName(f.spec()).c_str(), f.target().c_str());
      }
      return;
    }
    v1::RevertRequest req;
    req.set_id(id);
    v1::RevertResponse resp;
    auto st = stub.Revert(RpcContext().get(), req, &resp);
    if (!st.ok()) return ctx.Fail(FromGrpcStatus(st));
    if (ctx.Json()) return (void)std::printf("%s\n", ToJson(resp).c_str());
    std::printf("reverted %s (%s) %s\n", resp.fault().id().c_str(), spec::KindName(resp.fault().spec()).c_str(),
                resp.fault().target().c_str());
  });
}

}  // namespace

absl::StatusOr<v1::FaultSpec> FaultSpecFromFlags(const std::string& kind_name,
                                                 std::vector<std::string> args, bool validate) {
  const spec::FaultKind* kind = spec::FindKind(kind_name);
  if (kind == nullptr) {
    return absl::InvalidArgumentError(
        fmt::format("kind: unknown fault kind \"{}\" (known: {})", kind_name, spec::KindNames()));
  }
  CLI::App app;
  KindCommand cmd;
  cmd.Bind(&app, *kind);
  std::reverse(args.begin(), args.end());  // CLI11 takes the arguments last first
  try {
    app.parse(args);
  } catch (const CLI::ParseError& e) {
    return absl::InvalidArgumentError(e.what());
  }
  return cmd.Spec(validate);
}

absl::Status UnknownKindError(CLI::App& app) {
  for (const char* verb : {"inject", "preflight"}) {
    CLI::App* sub = app.get_subcommand(verb);
    if (sub->count() == 0 || !sub->get_subcommands().empty()) continue;
    std::string given;
    for (const std::vector<std::string>& left : {sub->remaining(), app.remaining()}) {
      for (const std::string& a : left) {
        if (given.empty() && !a.empty() && a[0] != '-') given = a;
      }
    }
    if (given == "zone-outage" || given == "zone_outage") {
      return absl::InvalidArgumentError(fmt::format(
          "{}: zone-outage is a controller-level fault, not one agent's: write "
          "`zone_outage: {{zone: a}}` in an experiment file's faults and use `faultline run` "
          "(kinds here: {})", verb, spec::KindNames()));
    }
    if (given.empty()) {
      return absl::InvalidArgumentError(
          fmt::format("{}: give a fault kind ({})", verb, spec::KindNames()));
    }
    return absl::InvalidArgumentError(fmt::format("{}: unknown fault kind \"{}\" (known: {})",
                                                  verb, Printable(given), spec::KindNames()));
  }
  return absl::OkStatus();
}

void AddAgentCommands(CLI::App& app, CliContext& ctx) {
  app.add_subcommand("info", "the agent's name, labels, version and capabilities")
      ->callback([&ctx] { CmdInfo(ctx); });

  // Flags outlive parsing: they are read in the callbacks.
  static std::deque<KindCommand> commands;
  auto* inject = app.add_subcommand("inject", "inject a fault")->require_subcommand(1);
  auto* preflight = app.add_subcommand("preflight", "what a fault would change, and whether it can")
                        ->require_subcommand(1);
  for (const spec::FaultKind& kind : spec::Kinds()) {
    KindCommand& ci = commands.emplace_back();
    auto* si = inject->add_subcommand(kind.name, "inject a " + kind.name + " fault");
    ci.Bind(si, kind);
    si->add_flag("--dry-run", ci.dry_run, "validate and show what would change; change nothing");
    si->callback([&ctx, &ci] { CmdInject(ctx, ci); });
    if (!kind.reversible) continue;
    KindCommand& cp = commands.emplace_back();
    auto* sp = preflight->add_subcommand(kind.name, "preflight a " + kind.name + " fault");
    cp.Bind(sp, kind);
    sp->callback([&ctx, &cp] { CmdPreflight(ctx, cp); });
  }

  app.add_subcommand("faults", "the agent's active faults")->callback([&ctx] { CmdFaults(ctx); });

  static std::string revert_id;
  static bool revert_all = false;
  auto* revert = app.add_subcommand("revert", "revert one fault, or --all");
  revert->add_option("id", revert_id, "fault id");
  revert->add_flag("--all", revert_all, "revert every active fault");
  revert->callback([&ctx] { CmdRevert(ctx, revert_id, revert_all); });
}

}  // namespace faultline::cli
