// faultline-controller: flags and wiring only; the work is in the controller library.
#include <grpcpp/health_check_service_interface.h>
#include <grpcpp/server_builder.h>
#include <signal.h>
#include <spdlog/spdlog.h>

#include <CLI/CLI.hpp>
#include <cstdio>
#include <thread>

#include "auth/audit_log.h"
#include "auth/caller.h"
#include "auth/unix_listener.h"
#include "common/endpoint.h"
#include "common/files.h"
#include "common/logging.h"
#include "common/yaml_proto.h"
#include "controller/controller_service.h"
#include "controller/store.h"
#include "metrics/http_endpoint.h"
#include "web/dashboard.h"
#include "probes/exec_policy.h"

namespace {

int Fail(const absl::Status& st) {
  std::fprintf(stderr, "faultline-controller: %s\n", std::string(st.message()).c_str());
  return 1;
}

}  // namespace

int main(int argc, char** argv) {
  using namespace faultline;
  CLI::App app{"faultline-controller: runs chaos experiments against registered agents"};
  std::vector<std::string> listen = {"127.0.0.1:7100"};
  std::string db = "/var/lib/faultline/faultline.db";
  TlsFiles tls;
  bool insecure = false;
  std::string log_level = "info";
  int64_t lease_ttl_ms = 10000;
  int64_t heartbeat_ms = 1000;
  int64_t max_in_flight = 0;
  int64_t max_agents = 10000;
  controller::FleetLimits fleet;
  std::vector<std::string> protected_labels;
  std::string socket_group;
  std::string audit_log;
  app.add_option("--listen", listen, "unix:/PATH or HOST:PORT (repeatable)")
      ->capture_default_str();
  app.add_option("--db", db, "SQLite database file")->capture_default_str();
  app.add_option("--tls-cert", tls.cert,
                 "the controller's certificate, served and presented to agents (PEM; URI SAN "
                 "spiffe://faultline/controller/NAME)");
  app.add_option("--tls-key", tls.key, "its private key (PEM)");
  app.add_option("--tls-ca", tls.ca, "CA that signs agents' and clients' certificates");
  app.add_flag("--insecure", insecure,
               "plain TCP, no TLS: no authentication, every caller may do anything (tests and "
               "labs only)");
  app.add_option("--socket-group", socket_group,
                 "group allowed on unix sockets (mode 0660; its members act as operator)");
  app.add_option("--audit-log", audit_log,
                 "append one JSON line per mutating call to FILE (fsync'ed)");
  app.add_option("--log-level", log_level, "trace, debug, info, warn, error, off")
      ->capture_default_str();
  app.add_option("--lease-ttl-ms", lease_ttl_ms, "lease TTL on agents' faults")
      ->capture_default_str();
  app.add_option("--heartbeat-ms", heartbeat_ms, "heartbeat interval asked of agents")
      ->capture_default_str();
  app.add_option("--max-agents", max_agents,
                 "registered agents at most; new names past it are refused")
      ->capture_default_str();
  app.add_option("--max-in-flight", max_in_flight,
                 "agent calls of one run phase in flight at once (0 = all)")
      ->capture_default_str();
  app.add_option("--max-fleet-percent", fleet.max_fleet_percent,
                 "largest share of the registered agents one run may take out (0 = no cap)")
      ->capture_default_str();
  app.add_option("--protected-label", protected_labels,
                 "KEY=VALUE: agents with this label never get a fault (repeatable)");
  app.add_option("--max-concurrent-runs", fleet.max_concurrent_runs,
                 "runs holding agents at once (0 = no cap); two runs never hold the same agent")
      ->capture_default_str();
  std::string http;
  app.add_option("--http", http,
                 "HOST:PORT: serve Prometheus /metrics (and the read-only dashboard) over plain "
                 "HTTP; off by default");
  std::string exec_policy_file;
  app.add_option("--exec-policy", exec_policy_file,
                 "YAML {allow: [{argv}|{argv_prefix}], user}: the exec probes `from: controller` "
                 "may run, and as whom (without it: none)");
  CLI11_PARSE(app, argc, argv);

  if (auto st = InitLogging(log_level); !st.ok()) return Fail(st);
  if (lease_ttl_ms < 100 || lease_ttl_ms > 3600000) {
    return Fail(absl::InvalidArgumentError("--lease-ttl-ms: between 100 and 3600000 (1 h)"));
  }
  if (!http.empty()) {
    if (auto st = metrics::CheckHttpAddress("--http", http); !st.ok()) return Fail(st);
  }
  if (max_agents < 1) return Fail(absl::InvalidArgumentError("--max-agents: at least 1"));
  if (heartbeat_ms < 10) return Fail(absl::InvalidArgumentError("--heartbeat-ms: at least 10"));
  if (max_in_flight < 0) return Fail(absl::InvalidArgumentError("--max-in-flight: at least 0"));
  if (!(fleet.max_fleet_percent >= 0 && fleet.max_fleet_percent <= 100)) {
    return Fail(absl::InvalidArgumentError("--max-fleet-percent: between 0 and 100"));
  }
  if (fleet.max_concurrent_runs < 0) {
    return Fail(absl::InvalidArgumentError("--max-concurrent-runs: at least 0"));
  }
  for (const auto& text : protected_labels) {
    auto label = controller::ParseLabelFlag("--protected-label", text);
    if (!label.ok()) return Fail(label.status());
    fleet.protected_labels.push_back(*label);
  }

  // Signals are taken by a dedicated thread; block them before any thread starts.
  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGTERM);
  sigaddset(&stop_signals, SIGINT);
  pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);

  std::unique_ptr<auth::AuditLog> audit;
  if (!audit_log.empty()) {
    // Looked at first (stat, no open): a FIFO would hold up the open below.
    absl::Status usable = CheckRegularFileOrAbsent("--audit-log", audit_log);
    if (!usable.ok()) return Fail(usable);
    auto opened = auth::AuditLog::Open(audit_log, "controller");
    if (!opened.ok()) return Fail(opened.status());
    audit = std::move(*opened);
  }
  // Unix sockets first, before any thread: mode 0600 (0660 with
  // --socket-group) whatever the umask.
  std::vector<Endpoint> endpoints;
  auth::UnixPeerTable unix_peers;
  std::vector<std::unique_ptr<auth::UnixListener>> unix_listeners;
  for (const auto& l : listen) {
    auto ep = ParseEndpoint("--listen", l);
    if (!ep.ok()) return Fail(ep.status());
    if (!ep->is_unix && !insecure && !tls.All()) {
      return Fail(absl::InvalidArgumentError(fmt::format(
          "--listen {}: TCP needs --tls-cert, --tls-key and --tls-ca (mutual TLS); pass "
          "--insecure to serve plain TCP",
          l)));
    }
    endpoints.push_back(*ep);
    if (!ep->is_unix) continue;
    auto listener = auth::UnixListener::Create(ep->path, socket_group, &unix_peers);
    if (!listener.ok()) return Fail(listener.status());
    unix_listeners.push_back(std::move(*listener));
  }
  // A trusted local caller (root, this user, --socket-group) is an operator,
  // and may register agents that run on this host through the socket.
  auth::AuthorizerOptions auth_options;
  auth_options.insecure = insecure;
  auth_options.unix_peers = &unix_peers;
  auth_options.local_roles = {auth::Role::kOperator, auth::Role::kAgent};
  const auth::Authorizer authorizer(auth_options);

  if (absl::Status st = CheckRegularFileOrAbsent("--db", db); !st.ok()) return Fail(st);
  auto store = controller::Store::Open(db);
  if (!store.ok()) return Fail(store.status());

  controller::ControllerOptions options;
  if (!exec_policy_file.empty()) {
    v1::ExecPolicy proto;
    absl::Status read = YamlFileToMessage(exec_policy_file, &proto);
    if (!read.ok()) {
      return Fail(absl::InvalidArgumentError(
          fmt::format("--exec-policy: {}", std::string(read.message()))));
    }
    auto exec = ExecPolicy::FromProto(proto, "");
    if (!exec.ok()) {
      return Fail(absl::InvalidArgumentError(fmt::format(
          "--exec-policy {}: {}", exec_policy_file, std::string(exec.status().message()))));
    }
    options.runner.exec_policy = *std::move(exec);
  }
  options.heartbeat_interval = std::chrono::milliseconds(heartbeat_ms);
  options.unhealthy_after = std::chrono::milliseconds(heartbeat_ms * 3 + heartbeat_ms / 2);
  options.runner.lease_ttl = std::chrono::milliseconds(lease_ttl_ms);
  options.runner.max_in_flight = static_cast<size_t>(max_in_flight);
  options.max_agents = static_cast<size_t>(max_agents);
  options.fleet = fleet;
  options.authorizer = &authorizer;
  options.audit = audit.get();
  options.runner.dial = [tls, insecure](const std::string& address) {
    return Dial("agent address", address, tls, insecure);
  };
  metrics::Registry registry;
  controller::ControllerMetrics controller_metrics(&registry);
  options.metrics = &controller_metrics;
  controller::ControllerService service(store->get(), options);
  if (auto st = service.Recover(); !st.ok()) return Fail(st);
  // After the service: stopped (and its scrapes over) before the service goes.
  std::unique_ptr<metrics::HttpEndpoint> http_endpoint;
  if (!http.empty()) {
    std::vector<metrics::HttpRoute> routes = web::DashboardRoutes(&service);
    routes.push_back(metrics::MetricsRoute(&registry));
    auto started = metrics::HttpEndpoint::Start("--http", http, std::move(routes));
    if (!started.ok()) return Fail(started.status());
    http_endpoint = *std::move(started);
  }

  grpc::EnableDefaultHealthCheckService(true);
  grpc::ServerBuilder builder;
  for (const auto& ep : endpoints) {
    if (ep.is_unix) continue;  // served through the UnixListeners
    auto creds = MakeServerCredentials(ep, tls, insecure);
    if (!creds.ok()) return Fail(creds.status());
    builder.AddListeningPort(ep.GrpcTarget(), *creds);
  }
  builder.RegisterService(&service);
  std::unique_ptr<grpc::Server> server = builder.BuildAndStart();
  if (!server) {
    return Fail(absl::UnavailableError("--listen: cannot listen on the given address(es)"));
  }
  for (auto& listener : unix_listeners) listener->Start(server.get());
  spdlog::info("faultline-controller listening on {} (db {}){}{}", fmt::join(listen, ", "), db,
               insecure ? " (--insecure)" : "", audit ? ", audit log " + audit_log : "");

  std::thread waiter([&] {
    int sig = 0;
    sigwait(&stop_signals, &sig);
    spdlog::info("signal {}: aborting running experiments and stopping", sig);
    service.Shutdown();
    for (auto& listener : unix_listeners) listener->Stop();
    server->Shutdown(std::chrono::system_clock::now() + std::chrono::seconds(30));
  });
  server->Wait();
  waiter.join();
  return 0;
}
