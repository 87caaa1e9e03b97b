// Benchmark: the round trip of an Inject (and its Revert) RPC from a client to
// an agent over loopback TCP, with the agent's real handlers, ledger (fsync)
// and gRPC stack. The fault is a pause of a child this process forked, chosen
// by pid, so nothing else on the machine can be selected. Prints the median and
// percentiles; never fails on timing.
#include <grpcpp/create_channel.h>
#include <grpcpp/server_builder.h>
#include <signal.h>
#include <spdlog/spdlog.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <string>
#include <vector>

#include "agent/agent_service.h"
#include "agent/fault_manager.h"
#include "agent/faults/proc_process_table.h"
#include "agent/faults/registry.h"

namespace {

using Clock = std::chrono::steady_clock;

double Percentile(std::vector<double> v, double p) {
  std::sort(v.begin(), v.end());
  size_t i = static_cast<size_t>(p / 100.0 * static_cast<double>(v.size() - 1) + 0.5);
  return v[std::min(i, v.size() - 1)];
}

}  // namespace

int main(int argc, char** argv) {
  int iterations = argc > 1 ? std::atoi(argv[1]) : 100;
  if (iterations < 1 || iterations > 100000) iterations = 100;
  spdlog::set_level(spdlog::level::warn);

  pid_t victim = fork();
  if (victim == 0) {
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    execlp("sleep", "sleep", "300", static_cast<char*>(nullptr));
    _exit(127);
  }
  const std::string dir = "/tmp/fltest-" + std::to_string(getpid()) + "-bench";
  namespace fl = faultline;
  fl::v1::Policy policy;
  policy.add_allowed_kinds("pause");
  fl::agent::ProcProcessTable processes;
  fl::agent::FaultContext ctx;
  ctx.policy = &policy;
  ctx.processes = &processes;
  ctx.agent_pid = getpid();
  auto ledger = fl::agent::Ledger::Open(dir);
  if (!ledger.ok()) {
    std::fprintf(stderr, "ledger: %s\n", std::string(ledger.status().message()).c_str());
    return 1;
  }
  fl::agent::FaultManager manager(std::move(*ledger), fl::agent::MakeDefaultHandlers(), ctx);
  manager.Start();
  fl::auth::AuthorizerOptions auth_options;
  auth_options.insecure = true;  // plain loopback gRPC, as an agent run with --insecure
  const fl::auth::Authorizer authorizer(auth_options);
  fl::agent::AgentService service(&manager, {"bench", {}, "bench"}, &authorizer);
  grpc::ServerBuilder builder;
  int port = 0;
  builder.AddListeningPort("127.0.0.1:0", grpc::InsecureServerCredentials(), &port);
  builder.RegisterService(&service);
  auto server = builder.BuildAndStart();
  auto stub = fl::v1::Agent::NewStub(
      grpc::CreateChannel("127.0.0.1:" + std::to_string(port), grpc::InsecureChannelCredentials()));

  std::vector<double> inject_ms, revert_ms;
  for (int i = 0; i < iterations; ++i) {
    fl::v1::InjectRequest req;
    req.mutable_spec()->mutable_pause()->mutable_process()->set_pid(victim);
    req.mutable_spec()->set_duration("1m");
    fl::v1::InjectResponse resp;
    grpc::ClientContext c1;
    auto t0 = Clock::now();
    grpc::Status st = stub->Inject(&c1, req, &resp);
    auto t1 = Clock::now();
    if (!st.ok()) {
      std::fprintf(stderr, "inject: %s\n", st.error_message().c_str());
      break;
    }
    fl::v1::RevertRequest rr;
    rr.set_id(resp.fault().id());
    fl::v1::RevertResponse rresp;
    grpc::ClientContext c2;
    auto t2 = Clock::now();
    st = stub->Revert(&c2, rr, &rresp);
    auto t3 = Clock::now();
    if (!st.ok()) {
      std::fprintf(stderr, "revert: %s\n", st.error_message().c_str());
      break;
    }
    if (i > 0) {  // the first call pays for connection set-up
      inject_ms.push_back(std::chrono::duration<double, std::milli>(t1 - t0).count());
      revert_ms.push_back(std::chrono::duration<double, std::milli>(t3 - t2).count());
    }
  }
  server->Shutdown();
  kill(victim, SIGKILL);
  waitpid(victim, nullptr, 0);
  std::filesystem::remove_all(dir);
  if (inject_ms.empty()) return 1;
  std::printf("inject round trip over loopback TCP (pause by pid, ledger fsync included), %zu calls:\n",
              inject_ms.size());
  std::printf("  inject: median %.3f ms, p90 %.3f ms, max %.3f ms\n", Percentile(inject_ms, 50),
              Percentile(inject_ms, 90), Percentile(inject_ms, 100));
  std::printf("  revert: median %.3f ms, p90 %.3f ms, max %.3f ms\n", Percentile(revert_ms, 50),
              Percentile(revert_ms, 90), Percentile(revert_ms, 100));
  return 0;
}
