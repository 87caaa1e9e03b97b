// The gRPC face of the agent: faultline.v1.Agent on top of a FaultManager.
#ifndef FAULTLINE_AGENT_AGENT_SERVICE_H_
#define FAULTLINE_AGENT_AGENT_SERVICE_H_

#include <map>
#include <functional>
#include <string>

#include "agent/data_writers.h"
#include "agent/fault_manager.h"
#include "agent/step_runner.h"
#include "auth/audit_log.h"
#include "auth/caller.h"
#include "faultline/v1/agent.grpc.pb.h"

namespace faultline::agent {

// Identity the agent reports in Info.
struct AgentIdentity {
  std::string name;
  std::map<std::string, std::string> labels;
  std::string version;
};

// Serves faultline.v1.Agent. Owned by the daemon; borrows the FaultManager,
// the Authorizer and the audit log (null: none), which must outlive it.
// Every call is authorized first: faults, leases, probes and data workloads
// (everything that changes the host or runs something) only for `controller`
// and `operator` callers; reads (Info, Preflight, ListFaults) for `viewer` too. Mutating
// calls, allowed or refused, go to the audit log. Thread-safe (the manager,
// the authorizer, the log, its DataWriters and its StepRunner are).
class AgentService final : public v1::Agent::Service {
 public:
  AgentService(FaultManager* manager, AgentIdentity identity, const auth::Authorizer* authorizer,
               auth::AuditLog* audit = nullptr)
      : manager_(manager), identity_(std::move(identity)), authorizer_(authorizer), audit_(audit) {}

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
  grpc::Status RunDataWriter(
      grpc::ServerContext*,
      grpc::ServerReaderWriter<v1::DataWriterBatch, v1::DataWriterControl>*) override;
  grpc::Status ReadData(grpc::ServerContext*, const v1::ReadDataRequest*,
                        v1::ReadDataResponse*) override;
  grpc::Status RunStep(grpc::ServerContext*, const v1::RunStepRequest*,
                       v1::RunStepResponse*) override;

  // Stops every data writer (the daemon, before the server shuts down).
  void StopDataWriters() { data_writers_.Shutdown(); }

 private:
  // Authorize for a reading call (no audit).
  absl::Status AllowRead(grpc::ServerContext* ctx, const char* method) const;
  // A mutating call: authorizes the caller, runs `act` when allowed, and
  // audits the outcome with `what` (evaluated after `act`).
  grpc::Status Mutate(grpc::ServerContext* ctx, const char* method,
                      const std::function<absl::Status()>& act,
                      const std::function<std::string()>& what);

  FaultManager* manager_;
  AgentIdentity identity_;
  const auth::Authorizer* authorizer_;
  auth::AuditLog* audit_;
  DataWriters data_writers_;
  StepRunner steps_;
};

// What the audit log says about a probe: its name, kind and target, never its
// argv beyond the program, nor a URL's credentials or query (JSON object).
std::string ProbeAuditSummary(const v1::ProbeSpec& probe);

// What the audit log says about a data workload: its name, driver and target,
// never a DSN's or URL's credentials (JSON object).
std::string DataAuditSummary(const v1::DataWorkload& workload);

}  // namespace faultline::agent

#endif  // FAULTLINE_AGENT_AGENT_SERVICE_H_
