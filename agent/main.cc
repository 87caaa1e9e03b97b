// faultline-agent: flag parsing only; the daemon lives in agent/daemon.cc.
#include <CLI/CLI.hpp>
#include <cstdio>

#include "agent/daemon.h"
#include "common/logging.h"

#ifndef FAULTLINE_VERSION
#define FAULTLINE_VERSION "dev"
#endif

int main(int argc, char** argv) {
  faultline::agent::AgentOptions opts;
  std::vector<std::string> labels;
  std::string log_level = "info";
  bool revert_all = false;

  CLI::App app{"faultline-agent: injects and reverts faults on this host"};
  app.set_version_flag("--version", std::string("faultline-agent ") + FAULTLINE_VERSION);
  app.add_option("--listen", opts.listen,
                 "unix:/PATH or HOST:PORT (repeatable; default unix:/run/faultline/agent.sock)");
  app.add_option("--state-dir", opts.state_dir, "folder holding the fault ledger")
      ->capture_default_str();
  app.add_option("--name", opts.name, "agent name (default: hostname)");
  app.add_option("--label", labels, "k=v label (repeatable)");
  app.add_option("--policy", opts.policy_file, "policy file (YAML)");
  app.add_option("--socket-group", opts.socket_group, "group allowed on unix sockets (mode 0660; its members act as operator)");
  app.add_option("--tls-cert", opts.tls.cert,
                 "this agent's certificate (PEM; URI SAN spiffe://faultline/agent/NAME)");
  app.add_option("--tls-key", opts.tls.key, "its private key (PEM)");
  app.add_option("--tls-ca", opts.tls.ca,
                 "CA that signs controllers', operators' and viewers' certificates (PEM)");
  app.add_option("--controller-tls-cert", opts.controller_tls_cert,
                 "client certificate for the controller link (default: --tls-cert)");
  app.add_option("--controller-tls-key", opts.controller_tls_key,
                 "its key (default: --tls-key)");
  app.add_flag("--insecure", opts.insecure,
               "allow plain TCP without TLS: no authentication, every caller may do anything");
  app.add_option("--audit-log", opts.audit_log,
                 "append one JSON line per mutating call to FILE (fsync'ed)");
  app.add_option("--metrics", opts.metrics,
                 "HOST:PORT: serve Prometheus /metrics over plain HTTP; off by default");
  app.add_option("--controller", opts.controller, "controller to register with (HOST:PORT)");
  app.add_option("--advertise", opts.advertise, "address the controller dials to reach this agent");
  app.add_flag("--revert-all", revert_all,
               "revert everything in the ledger, sweep tagged leftovers, and exit");
  app.add_option("--log-level", log_level, "trace|debug|info|warn|error|off")->capture_default_str();
  CLI11_PARSE(app, argc, argv);

  for (const auto& l : labels) {
    size_t eq = l.find('=');
    if (eq == std::string::npos || eq == 0) {
      std::fprintf(stderr, "faultline-agent: --label: expected k=v, got \"%s\"\n", l.c_str());
      return 2;
    }
    opts.labels[l.substr(0, eq)] = l.substr(eq + 1);
  }
  if (opts.listen.empty()) opts.listen.push_back("unix:/run/faultline/agent.sock");
  if (auto st = faultline::InitLogging(log_level); !st.ok()) {
    std::fprintf(stderr, "faultline-agent: %s\n", std::string(st.message()).c_str());
    return 2;
  }
  if (revert_all) return faultline::agent::RevertAllOffline(opts);
  return faultline::agent::RunAgent(opts);
}
