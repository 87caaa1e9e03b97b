// fldemo-register: a stand-in for the registration faultline-agent should do
// itself with --controller/--advertise. agent/daemon.cc parses those flags but
// never starts a Registrar (and agent/registration.cc is not in the agent
// library), so scripts/demo runs one of these beside each agent, inside the
// same simulated host: it asks the agent for its Info over the agent's unix
// socket and registers/heartbeats it with the controller through the very
// Registrar the agent is meant to use. Remove it once the agent registers.
//
// usage: fldemo-register AGENT_SOCKET CONTROLLER_ADDR ADVERTISE_ADDR
// Runs until SIGTERM/SIGINT. The controller and the agent's TCP port are plain
// TCP (--insecure), as in the demo.
#include <grpcpp/client_context.h>
#include <signal.h>

#include <chrono>
#include <cstdio>
#include <string>

#include "agent/registration.h"
#include "common/endpoint.h"
#include "common/logging.h"
#include "faultline/v1/agent.grpc.pb.h"

int main(int argc, char** argv) {
  if (argc != 4) {
    std::fprintf(stderr, "usage: %s AGENT_SOCKET CONTROLLER_ADDR ADVERTISE_ADDR\n", argv[0]);
    return 2;
  }
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGTERM);
  sigaddset(&set, SIGINT);
  pthread_sigmask(SIG_BLOCK, &set, nullptr);
  (void)faultline::InitLogging("info");

  auto agent_channel = faultline::Dial("agent", argv[1], {}, /*insecure=*/false);
  if (!agent_channel.ok()) {
    std::fprintf(stderr, "fldemo-register: %s\n", std::string(agent_channel.status().message()).c_str());
    return 1;
  }
  auto agent = faultline::v1::Agent::NewStub(*agent_channel);

  faultline::RegistrationOptions options;
  options.controller = argv[2];
  options.advertise = argv[3];
  options.insecure = true;
  options.heartbeat = std::chrono::milliseconds(500);
  options.info = [&agent] {
    faultline::v1::InfoResponse info;
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(2));
    (void)agent->Info(&ctx, faultline::v1::InfoRequest(), &info);
    return info;
  };
  auto registrar = faultline::Registrar::Start(std::move(options));
  if (!registrar.ok()) {
    std::fprintf(stderr, "fldemo-register: %s\n", std::string(registrar.status().message()).c_str());
    return 1;
  }
  int sig = 0;
  sigwait(&set, &sig);
  return 0;
}
