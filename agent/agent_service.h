// The gRPC face of the agent: faultline.v1.Agent on top of a FaultManager.
#ifndef FAULTLINE_AGENT_AGENT_SERVICE_H_
#define FAULTLINE_AGENT_AGENT_SERVICE_H_

#include <map>
#include <string>

#include "agent/fault_manager.h"
#include "faultline/v1/agent.grpc.pb.h"

namespace faultline::agent {

// Identity the agent reports in Info.
struct AgentIdentity {
  std::string name;
  std::map<std::string, std::string> labels;
  std::string version;
};

// Serves faultline.v1.Agent. Owned by the daemon; borrows the FaultManager,
// which must outlive it. Thread-safe (the manager is).
class AgentService final : public v1::Agent::Service {
 public:
  AgentService(FaultManager* manager, AgentIdentity identity)
      : manager_(manager), identity_(std::move(identity)) {}

  // Info as the RPC returns it (also used by the controller registration).
  v1::InfoResponse MakeInfo() const;

  grpc::Status Info(grpc::ServerContext*, const v1::InfoRequest*, v1::InfoResponse*) override;
  grpc::Status Preflight(grpc::ServerContext*, const v1::PreflightRequest*,
                         v1::PreflightResponse*) override;
  grpc::Status Inject(grpc::ServerContext*, const v1::InjectRequest*, v1::InjectResponse*) override;
  grpc::Status Revert(grpc::ServerContext*, const v1::RevertRequest*, v1::RevertResponse*) override;
  grpc::Status RevertAll(grpc::ServerContext*, const v1::RevertAllRequest*,
                         v1::RevertAllResponse*) override;
  grpc::Status ListFaults(grpc::ServerContext*, const v1::ListFaultsRequest*,
                          v1::ListFaultsResponse*) override;
  grpc::Status RenewLease(grpc::ServerContext*, const v1::RenewLeaseRequest*,
                          v1::RenewLeaseResponse*) override;
  grpc::Status Commit(grpc::ServerContext*, const v1::CommitRequest*,
                      v1::CommitResponse*) override;
  grpc::Status RunProbe(grpc::ServerContext*, const v1::RunProbeRequest*,
                        grpc::ServerWriter<v1::ProbeSample>*) override;

 private:
  FaultManager* manager_;
  AgentIdentity identity_;
};

}  // namespace faultline::agent

#endif  // FAULTLINE_AGENT_AGENT_SERVICE_H_
