#include "agent/daemon.h"

#include <fmt/format.h>
#include <grpcpp/health_check_service_interface.h>
#include <grpcpp/server.h>
#include <grpcpp/server_builder.h>
#include <signal.h>
#include <spdlog/spdlog.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>
#include <memory>

#include "agent/agent_service.h"
#include "agent/fault_manager.h"
#include "agent/faults/proc_process_table.h"
#include "agent/faults/registry.h"
#include "agent/policy.h"
#include "agent/registration.h"
#include "auth/audit_log.h"
#include "auth/caller.h"
#include "auth/identity.h"
#include "auth/unix_listener.h"
#include "common/files.h"
#include "common/status_macros.h"
#include "metrics/http_endpoint.h"
#include "metrics/registry.h"
#include "spec/fault_spec.h"

#ifndef FAULTLINE_VERSION
#define FAULTLINE_VERSION "dev"
#endif

namespace faultline::agent {
namespace {

// The agent's Prometheus families (docs/metrics.md): faults active by kind and
// reverts that failed, read off the manager at each scrape; leftovers swept
// at start-up (ledger records reverted and tagged leftovers removed).
void AddAgentMetrics(metrics::Registry* registry, const FaultManager* manager, size_t swept) {
  metrics::Family* active = registry->AddGauge(
      "faultline_faults_active", "Faults active on this agent, by kind.", {"kind"});
  metrics::Family* failures = registry->AddCounter(
      "faultline_revert_failures_total", "Reverts that failed (each is retried).");
  registry
      ->AddCounter("faultline_leftovers_swept_total",
                   "Faults a previous run of the agent left behind, reverted or removed at start-up.")
      ->Add({}, static_cast<double>(swept));
  registry->OnScrape([=] {
    std::map<std::string, int> by_kind;
    for (const auto& f : manager->List()) {
      if (f.state() == v1::FAULT_STATE_ACTIVE) ++by_kind[spec::KindName(f.spec())];
    }
    active->Clear();
    for (const auto& [kind, n] : by_kind) active->Set({kind}, n);
    failures->Set({}, static_cast<double>(manager->revert_failures()));
  });
}

// Everything the agent runs on, in destruction order (the manager reverts its
// faults when destroyed).
struct Core {
  v1::Policy policy;
  ProcProcessTable processes;
  std::unique_ptr<FaultManager> manager;
};

absl::StatusOr<std::unique_ptr<Core>> MakeCore(const AgentOptions& options) {
  auto core = std::make_unique<Core>();
  auto handlers = MakeDefaultHandlers();
  std::vector<std::string> kinds;
  for (const auto& h : handlers) kinds.push_back(h->Kind());
  ASSIGN_OR_RETURN(core->policy, LoadPolicy(options.policy_file, kinds));
  ASSIGN_OR_RETURN(auto ledger, Ledger::Open(options.state_dir));
  FaultContext ctx;
  ctx.policy = &core->policy;
  ctx.agent_pid = ::getpid();
  for (const auto& l : options.listen) {
    if (l.rfind("unix:", 0) != 0) ctx.control_addresses.push_back(l);
  }
  if (!options.controller.empty() && options.controller.rfind("unix:", 0) != 0) {
    ctx.control_addresses.push_back(options.controller);
  }
  ctx.processes = &core->processes;
  core->manager = std::make_unique<FaultManager>(std::move(ledger), std::move(handlers), ctx);
  return core;
}

std::string Hostname() {
  char buf[256] = {};
  if (::gethostname(buf, sizeof(buf) - 1) != 0) return "unknown";
  return buf;
}

// Blocks the termination signals in every thread (call before any thread
// starts) so that main can sigwait for them.
sigset_t BlockTerminationSignals() {
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGTERM);
  sigaddset(&set, SIGINT);
  pthread_sigmask(SIG_BLOCK, &set, nullptr);
  ::signal(SIGPIPE, SIG_IGN);
  return set;
}

// The controller link's settings from the flags. Without --advertise, a
// single TCP listener is the obvious address.
RegistrationOptions RegistrationFrom(const AgentOptions& options) {
  RegistrationOptions reg;
  reg.controller = options.controller;
  reg.advertise = options.advertise;
  if (reg.advertise.empty()) {
    std::vector<std::string> tcp;
    for (const auto& l : options.listen) {
      if (l.rfind("unix:", 0) != 0) tcp.push_back(l);
    }
    if (tcp.size() == 1) reg.advertise = tcp[0];
  }
  reg.tls = options.tls;
  if (!options.controller_tls_cert.empty()) reg.tls.cert = options.controller_tls_cert;
  if (!options.controller_tls_key.empty()) reg.tls.key = options.controller_tls_key;
  reg.insecure = options.insecure;
  return reg;
}

// Every flag that can be checked without side effects, before anything
// starts (state folder, recovery, listeners): the name, --controller and
// --advertise, and --listen (returned parsed).
absl::StatusOr<std::vector<Endpoint>> CheckFlags(const AgentOptions& options,
                                                 const std::string& name) {
  if (!options.controller.empty()) {
    // The controller refuses any other name; say so before serving.
    RETURN_IF_ERROR(auth::ValidateName(
        options.name.empty() ? "--name (default: the host name)" : "--name", name));
    RETURN_IF_ERROR(Registrar::CheckAddresses(RegistrationFrom(options)));
  }
  if (!options.metrics.empty()) RETURN_IF_ERROR(metrics::CheckHttpAddress("--metrics", options.metrics));
  std::vector<Endpoint> endpoints;
  for (const auto& l : options.listen) {
    ASSIGN_OR_RETURN(Endpoint ep, ParseEndpoint("--listen", l));
    if (!ep.is_unix && !options.insecure && !options.tls.All()) {
      return absl::InvalidArgumentError(fmt::format(
          "--listen {}: TCP needs --tls-cert, --tls-key and --tls-ca (mutual TLS); "
          "pass --insecure to serve plain TCP",
          l));
    }
    endpoints.push_back(std::move(ep));
  }
  return endpoints;
}

int Fail(const absl::Status& st) {
  spdlog::error("{}", std::string(st.message()));
  std::fprintf(stderr, "faultline-agent: %s\n", std::string(st.message()).c_str());
  return 1;
}

}  // namespace

int RevertAllOffline(const AgentOptions& options) {
  auto core = MakeCore(options);
  if (!core.ok()) return Fail(core.status());
  std::vector<std::string> swept;
  auto reverted = (*core)->manager->Recover(&swept);
  if (reverted.ok()) {
    for (const auto& r : *reverted) {
      std::printf("reverted %s (%s) %s\n", r.id().c_str(), spec::KindName(r.spec()).c_str(), r.target().c_str());
    }
  }
  for (const auto& s : swept) std::printf("swept %s\n", s.c_str());
  if (!reverted.ok()) return Fail(reverted.status());
  std::printf("ledger clean: %zu reverted, %zu leftovers swept\n", reverted->size(), swept.size());
  return 0;
}

int RunAgent(const AgentOptions& options) {
  sigset_t signals = BlockTerminationSignals();

  const std::string name = options.name.empty() ? Hostname() : options.name;
  auto checked = CheckFlags(options, name);
  if (!checked.ok()) return Fail(checked.status());
  const std::vector<Endpoint> endpoints = *std::move(checked);
  std::unique_ptr<auth::AuditLog> audit;
  if (!options.audit_log.empty()) {
    auto opened = auth::AuditLog::Open(options.audit_log, "agent");
    if (!opened.ok()) return Fail(opened.status());
    audit = std::move(*opened);
  }
  // Unix sockets are bound now, before any thread: their mode is never looser
  // than 0600 (0660 with --socket-group).
  auth::UnixPeerTable unix_peers;
  std::vector<std::unique_ptr<auth::UnixListener>> unix_listeners;
  for (const auto& ep : endpoints) {
    if (!ep.is_unix) continue;
    auto listener = auth::UnixListener::Create(ep.path, options.socket_group, &unix_peers);
    if (!listener.ok()) return Fail(listener.status());
    unix_listeners.push_back(std::move(*listener));
  }

  auto core = MakeCore(options);
  if (!core.ok()) return Fail(core.status());
  FaultManager& manager = *(*core)->manager;
  std::vector<std::string> swept;
  auto recovered = manager.Recover(&swept);
  if (!recovered.ok()) {
    // Serve anyway: the operator needs the agent to see and retry what is left.
    spdlog::error("{}", std::string(recovered.status().message()));
  } else if (!recovered->empty() || !swept.empty()) {
    spdlog::warn("reverted {} fault(s) left by a previous run, swept {} leftover(s)",
                 recovered->size(), swept.size());
  }
  manager.Start();
  metrics::Registry registry;
  AddAgentMetrics(&registry, &manager, swept.size() + (recovered.ok() ? recovered->size() : 0));

  AgentIdentity identity{name, options.labels, FAULTLINE_VERSION};
  auth::AuthorizerOptions auth_options;
  auth_options.insecure = options.insecure;
  auth_options.unix_peers = &unix_peers;
  auth_options.local_roles = {auth::Role::kOperator};
  const auth::Authorizer authorizer(auth_options);
  AgentService service(&manager, identity, &authorizer, audit.get());
  grpc::EnableDefaultHealthCheckService(true);
  grpc::ServerBuilder builder;
  for (const auto& ep : endpoints) {
    if (ep.is_unix) continue;  // served through the UnixListeners
    auto creds = MakeServerCredentials(ep, options.tls, options.insecure);
    if (!creds.ok()) return Fail(creds.status());
    builder.AddListeningPort(ep.GrpcTarget(), *creds);
  }
  builder.RegisterService(&service);
  std::unique_ptr<grpc::Server> server = builder.BuildAndStart();
  if (!server) {
    return Fail(absl::UnavailableError("cannot listen on the --listen addresses (in use?)"));
  }
  for (auto& listener : unix_listeners) listener->Start(server.get());
  spdlog::info("faultline-agent {} \"{}\" serving on {}{}{}", FAULTLINE_VERSION, identity.name,
               fmt::join(options.listen, ", "), options.insecure ? " (--insecure)" : "",
               audit ? ", audit log " + options.audit_log : "");

  std::unique_ptr<metrics::HttpEndpoint> metrics_endpoint;
  if (!options.metrics.empty()) {
    auto started = metrics::HttpEndpoint::Start("--metrics", options.metrics,
                                                {metrics::MetricsRoute(&registry)});
    if (!started.ok()) {
      for (auto& listener : unix_listeners) listener->Stop();
      server->Shutdown();
      return Fail(started.status());
    }
    metrics_endpoint = *std::move(started);
  }

  std::unique_ptr<Registrar> registrar;
  if (!options.controller.empty()) {
    RegistrationOptions reg = RegistrationFrom(options);
    reg.info = [&service] { return service.MakeInfo(); };
    auto started = Registrar::Start(std::move(reg));
    if (!started.ok()) {
      for (auto& listener : unix_listeners) listener->Stop();
      server->Shutdown();
      return Fail(started.status());
    }
    registrar = std::move(*started);
  }

  int sig = 0;
  sigwait(&signals, &sig);
  spdlog::info("signal {}: reverting every active fault, then exiting", sig);
  registrar.reset();
  metrics_endpoint.reset();  // its scrapes read the manager
  service.StopDataWriters();  // each sends its last batch within 200 ms
  for (auto& listener : unix_listeners) listener->Stop();
  server->Shutdown(std::chrono::system_clock::now() + std::chrono::seconds(2));
  core->reset();  // reverts every active fault
  unix_listeners.clear();  // removes the socket files
  return 0;
}

}  // namespace faultline::agent
