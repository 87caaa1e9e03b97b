// Commands that talk straight to one agent (--agent ADDR).
#include <fmt/format.h>
#include <grpcpp/client_context.h>

#include <chrono>
#include <cstdio>
#include <ctime>
#include <optional>

#include "common/clock.h"
#include "common/grpc_status.h"
#include "common/units.h"
#include "controller/cli/cli.h"
#include "faultline/v1/agent.grpc.pb.h"

namespace faultline::cli {
namespace {

// Every fault flag any kind takes; each kind's subcommand binds its subset.
struct FaultFlags {
  // kill, pause
  std::string process_name, cmdline, pidfile, cgroup, signal, mode;
  int pid = 0;
  int count = 0;
  std::optional<double> percent;
  // disk-fill
  std::string path, leave_free, bytes;
  // netem, bandwidth
  std::string interface, delay, jitter, delay_correlation, loss, duplicate, corrupt, reorder, rate;
  std::vector<std::string> to;
  // partition, dns
  std::vector<std::string> peers, resolvers;
  std::vector<uint32_t> ports;
  std::string protocol, direction;
  bool reject = false;
  // network faults
  std::string netns;
  int netns_pid = 0;

  std::string duration;
  bool dry_run = false;
};

void AddProcessFlags(CLI::App* sub, FaultFlags& f) {
  sub->add_option("--process-name", f.process_name, "exact process name (comm)");
  sub->add_option("--pid", f.pid, "process id");
  sub->add_option("--cmdline", f.cmdline, "regex searched in the command line");
  sub->add_option("--pidfile", f.pidfile, "file holding the pid");
  sub->add_option("--cgroup", f.cgroup, "cgroup v2 path");
  sub->add_option("--mode", f.mode, "one|all|count|percent (default one)");
  sub->add_option("--count", f.count, "processes to pick with --mode count");
  sub->add_option("--percent", f.percent, "share of processes to pick with --mode percent");
}

void AddNetnsFlags(CLI::App* sub, FaultFlags& f) {
  sub->add_option("--netns", f.netns, "target network namespace: NAME or PATH");
  sub->add_option("--netns-pid", f.netns_pid, "use the network namespace of this pid");
}

void AddShapeFlags(CLI::App* sub, FaultFlags& f) {
  sub->add_option("--interface", f.interface, "network interface");
  sub->add_option("--to", f.to, "only traffic to CIDR[:PORT] (repeatable)");
  AddNetnsFlags(sub, f);
}

// Registers the per-kind flags on `sub` (one of the inject/preflight kinds).
void AddKindFlags(CLI::App* sub, const std::string& kind, FaultFlags& f) {
  if (kind == "kill") {
    AddProcessFlags(sub, f);
    sub->add_option("--signal", f.signal, "KILL (default), TERM, INT, HUP, ...");
    return;
  }
  sub->add_option("--duration", f.duration, "how long the fault lasts, e.g. 30s");
  if (kind == "pause") {
    AddProcessFlags(sub, f);
  } else if (kind == "disk-fill") {
    sub->add_option("--path", f.path, "a folder on the filesystem to fill");
    sub->add_option("--percent", f.percent, "fill until the filesystem is P% used");
    sub->add_option("--leave-free", f.leave_free, "fill until SIZE is left free (e.g. 100M)");
    sub->add_option("--bytes", f.bytes, "allocate SIZE (e.g. 1G)");
  } else if (kind == "netem") {
    AddShapeFlags(sub, f);
    sub->add_option("--delay", f.delay, "added delay, e.g. 100ms");
    sub->add_option("--jitter", f.jitter, "delay jitter, e.g. 10ms");
    sub->add_option("--delay-correlation", f.delay_correlation, "e.g. 25%");
    sub->add_option("--loss", f.loss, "packet loss, e.g. 5%");
    sub->add_option("--duplicate", f.duplicate, "e.g. 1%");
    sub->add_option("--corrupt", f.corrupt, "e.g. 1%");
    sub->add_option("--reorder", f.reorder, "e.g. 25%");
    sub->add_option("--rate", f.rate, "e.g. 1mbit");
  } else if (kind == "bandwidth") {
    AddShapeFlags(sub, f);
    sub->add_option("--rate", f.rate, "rate limit, e.g. 1mbit");
  } else if (kind == "partition") {
    sub->add_option("--peer", f.peers, "CIDR to cut off (repeatable)");
    sub->add_option("--port", f.ports, "only this port (repeatable)");
    sub->add_option("--protocol", f.protocol, "tcp|udp (default both)");
    sub->add_option("--direction", f.direction, "both|ingress|egress (default both)");
    sub->add_flag("--reject", f.reject, "reject instead of silently dropping");
    AddNetnsFlags(sub, f);
  } else if (kind == "dns") {
    sub->add_option("--resolver", f.resolvers, "resolver address (default: /etc/resolv.conf)");
    AddNetnsFlags(sub, f);
  }
}

v1::FaultSpec BuildSpec(const std::string& kind, const FaultFlags& f) {
  v1::FaultSpec s;
  s.set_kind(kind);
  s.set_duration(f.duration);
  auto* p = s.mutable_process();
  p->set_name(f.process_name);
  p->set_pid(f.pid);
  p->set_cmdline(f.cmdline);
  p->set_pidfile(f.pidfile);
  p->set_cgroup(f.cgroup);
  if (!s.has_process() || p->ByteSizeLong() == 0) s.clear_process();
  s.set_mode(f.mode);
  s.set_count(f.count);
  s.set_signal(f.signal);
  if (f.percent) s.set_percent(*f.percent);
  s.set_path(f.path);
  s.set_leave_free(f.leave_free);
  s.set_bytes(f.bytes);
  s.set_interface(f.interface);
  s.set_delay(f.delay);
  s.set_jitter(f.jitter);
  s.set_delay_correlation(f.delay_correlation);
  s.set_loss(f.loss);
  s.set_duplicate(f.duplicate);
  s.set_corrupt(f.corrupt);
  s.set_reorder(f.reorder);
  s.set_rate(f.rate);
  for (const auto& t : f.to) s.add_to(t);
  for (const auto& t : f.peers) s.add_peers(t);
  for (auto port : f.ports) s.add_ports(port);
  s.set_protocol(f.protocol);
  s.set_direction(f.direction);
  s.set_reject(f.reject);
  for (const auto& r : f.resolvers) s.add_resolvers(r);
  s.set_netns(f.netns);
  s.set_netns_pid(f.netns_pid);
  return s;
}

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
    std::printf("%-14s %-10s %-9s %-9s %-10s %s\n", f.id().c_str(), f.spec().kind().c_str(),
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
    std::string labels, caps;
    for (const auto& [k, v] : resp.labels()) labels += (labels.empty() ? "" : ",") + k + "=" + v;
    for (const auto& c : resp.capabilities()) caps += (caps.empty() ? "" : ", ") + c;
    std::printf("name:         %s\nversion:      %s\nlabels:       %s\ncapabilities: %s\npid:          %d\n",
                resp.name().c_str(), resp.version().c_str(), labels.empty() ? "-" : labels.c_str(),
                caps.empty() ? "-" : caps.c_str(), resp.pid());
  });
}

void CmdInject(CliContext& ctx, const std::string& kind, const FaultFlags& flags) {
  WithAgent(ctx, [&](v1::Agent::Stub& stub) {
    v1::InjectRequest req;
    *req.mutable_spec() = BuildSpec(kind, flags);
    req.set_dry_run(flags.dry_run);
    const char* user = std::getenv("USER");
    req.set_owner(fmt::format("cli:{}", user ? user : "unknown"));
    v1::InjectResponse resp;
    auto st = stub.Inject(RpcContext().get(), req, &resp);
    if (!st.ok()) return ctx.Fail(FromGrpcStatus(st));
    if (ctx.Json()) return (void)std::printf("%s\n", ToJson(resp).c_str());
    const auto& f = resp.fault();
    if (flags.dry_run) {
      std::printf("dry run: %s would change:\n", kind.c_str());
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

void CmdPreflight(CliContext& ctx, const std::string& kind, const FaultFlags& flags) {
  WithAgent(ctx, [&](v1::Agent::Stub& stub) {
    v1::PreflightRequest req;
    *req.mutable_spec() = BuildSpec(kind, flags);
    v1::PreflightResponse resp;
    auto st = stub.Preflight(RpcContext().get(), req, &resp);
    if (!st.ok()) return ctx.Fail(FromGrpcStatus(st));
    if (!resp.ok()) ctx.exit_code = 1;
    if (ctx.Json()) return (void)std::printf("%s\n", ToJson(resp).c_str());
    std::printf("%s: %s\n", kind.c_str(), resp.ok() ? "can be injected" : "cannot be injected");
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
        std::printf("  %s (%s) %s\n", f.id().c_str(), f.spec().kind().c_str(), f.target().c_str());
      }
      return;
    }
    v1::RevertRequest req;
    req.set_id(id);
    v1::RevertResponse resp;
    auto st = stub.Revert(RpcContext().get(), req, &resp);
    if (!st.ok()) return ctx.Fail(FromGrpcStatus(st));
    if (ctx.Json()) return (void)std::printf("%s\n", ToJson(resp).c_str());
    std::printf("reverted %s (%s) %s\n", resp.fault().id().c_str(), resp.fault().spec().kind().c_str(),
                resp.fault().target().c_str());
  });
}

const std::vector<std::string> kKinds = {"kill", "pause", "disk-fill", "netem", "bandwidth",
                                         "partition", "dns"};

}  // namespace

void AddAgentCommands(CLI::App& app, CliContext& ctx) {
  app.add_subcommand("info", "the agent's name, labels, version and capabilities")
      ->callback([&ctx] { CmdInfo(ctx); });

  // Flags outlive parsing: they are read in the callbacks.
  static std::map<std::string, FaultFlags> inject_flags, preflight_flags;
  auto* inject = app.add_subcommand("inject", "inject a fault")->require_subcommand(1);
  auto* preflight = app.add_subcommand("preflight", "what a fault would change, and whether it can")
                        ->require_subcommand(1);
  for (const auto& kind : kKinds) {
    FaultFlags& fi = inject_flags[kind];
    auto* si = inject->add_subcommand(kind, "inject a " + kind + " fault");
    AddKindFlags(si, kind, fi);
    si->add_flag("--dry-run", fi.dry_run, "validate and show what would change; change nothing");
    si->callback([&ctx, kind, &fi] { CmdInject(ctx, kind, fi); });
    if (kind == "kill") continue;
    FaultFlags& fp = preflight_flags[kind];
    auto* sp = preflight->add_subcommand(kind, "preflight a " + kind + " fault");
    AddKindFlags(sp, kind, fp);
    sp->callback([&ctx, kind, &fp] { CmdPreflight(ctx, kind, fp); });
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
