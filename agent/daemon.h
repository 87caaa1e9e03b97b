// faultline-agent's process-level behaviour: serve until SIGTERM/SIGINT, or
// revert everything offline (--revert-all). main.cc only parses flags.
#ifndef FAULTLINE_AGENT_DAEMON_H_
#define FAULTLINE_AGENT_DAEMON_H_

#include <map>
#include <string>
#include <vector>

#include "common/endpoint.h"

namespace faultline::agent {

struct AgentOptions {
  std::vector<std::string> listen;  // unix:/PATH or HOST:PORT
  std::string state_dir = "/var/lib/faultline-agent";
  std::string name;                 // default: hostname
  std::map<std::string, std::string> labels;
  std::string policy_file;
  std::string socket_group;         // widen unix sockets to this group (0660)
  TlsFiles tls;                     // the agent's certificate (agent/<name>), key and CA
  // The client certificate and key for the controller link; empty = `tls`'s
  // (the agent's own identity serves both ends).
  std::string controller_tls_cert;
  std::string controller_tls_key;
  bool insecure = false;            // plain TCP allowed (no authentication on it)
  std::string controller;           // register and heartbeat when set
  std::string advertise;            // address the controller should dial
  std::string audit_log;            // --audit-log FILE: one JSON line per mutating call
  std::string metrics;              // --metrics HOST:PORT: Prometheus /metrics (plain HTTP)
};

// Runs the agent until SIGTERM/SIGINT; returns the process exit code. Faults
// left by an earlier run are reverted before serving.
int RunAgent(const AgentOptions& options);

// --revert-all: reverts every ledger record and sweeps tagged leftovers, then
// returns (0 when everything was reverted).
int RevertAllOffline(const AgentOptions& options);

}  // namespace faultline::agent

#endif  // FAULTLINE_AGENT_DAEMON_H_
