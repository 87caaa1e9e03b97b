// The faultline.v1.Controller service: agent registry (registration,
// heartbeats, health), experiment runs, run history and abort.
#ifndef FAULTLINE_CONTROLLER_CONTROLLER_SERVICE_H_
#define FAULTLINE_CONTROLLER_CONTROLLER_SERVICE_H_

#include <chrono>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "controller/agent_client.h"
#include "controller/runner.h"
#include "controller/store.h"
#include "faultline/v1/controller.grpc.pb.h"

namespace faultline::controller {

struct ControllerOptions {
  // Asked of agents; an agent is unhealthy after `unhealthy_after` without one.
  std::chrono::milliseconds heartbeat_interval{1000};
  std::chrono::milliseconds unhealthy_after{3500};
  RunnerOptions runner;
  FleetLimits fleet;  // blast-radius caps of every run
};

// One controller's service. Owned by main (or a test); thread-safe (gRPC calls
// it from many threads). The store must outlive it.
class ControllerService final : public v1::Controller::Service {
 public:
  ControllerService(Store* store, ControllerOptions options);
  ~ControllerService() override;

  // Start-up: loads the agents, marks runs that were in flight `interrupted`
  // and tells their agents (in the background) to revert the runs' leases.
  absl::Status Recover();
  // Aborts every running experiment (shutdown); returns how many.
  int AbortRuns();

  grpc::Status Register(grpc::ServerContext*, const v1::RegisterRequest*,
                        v1::RegisterResponse*) override;
  grpc::Status Heartbeat(grpc::ServerContext*, const v1::RegisterRequest*,
                         v1::RegisterResponse*) override;
  grpc::Status ListAgents(grpc::ServerContext*, const v1::ListAgentsRequest*,
                          v1::ListAgentsResponse*) override;
  grpc::Status RunExperiment(grpc::ServerContext*, const v1::RunExperimentRequest*,
                             grpc::ServerWriter<v1::RunUpdate>*) override;
  grpc::Status ListRuns(grpc::ServerContext*, const v1::ListRunsRequest*,
                        v1::ListRunsResponse*) override;
  grpc::Status GetRun(grpc::ServerContext*, const v1::GetRunRequest*, v1::RunReport*) override;
  grpc::Status Abort(grpc::ServerContext*, const v1::AbortRequest*, v1::AbortResponse*) override;

 private:
  struct Agent {
    StoredAgent stored;
    std::chrono::steady_clock::time_point last_seen;
    bool seen = false;  // a heartbeat arrived since start-up
  };
  absl::Status Upsert(const v1::RegisterRequest& req, v1::RegisterResponse* resp);
  bool Healthy(const Agent& a) const;
  std::vector<AgentRef> Snapshot();
  // The registered name of the agent at `address` (the address if none).
  std::string NameAt(const std::string& address);

  Store* const store_;
  const ControllerOptions options_;
  AgentClients clients_;  // shared by every run and by the service's own calls
  FleetGuard fleet_;      // the agents runs hold; the blast-radius caps

  std::mutex mu_;
  std::map<std::string, Agent> agents_;                 // by name
  std::map<std::string, ExperimentRun*> runs_;          // running, by id
  std::vector<std::thread> background_;                 // interrupted-run reverts
};

}  // namespace faultline::controller

#endif  // FAULTLINE_CONTROLLER_CONTROLLER_SERVICE_H_
