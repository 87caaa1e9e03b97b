#include "agent/agent_service.h"

#include <spdlog/spdlog.h>
#include <unistd.h>

#include "probes/probe_runner.h"
#include "common/clock.h"
#include "common/grpc_status.h"

namespace faultline::agent {
namespace {

std::string Peer(grpc::ServerContext* ctx) { return ctx ? ctx->peer() : "local"; }

}  // namespace

v1::InfoResponse AgentService::MakeInfo() const {
  v1::InfoResponse resp;
  resp.set_name(identity_.name);
  for (const auto& [k, v] : identity_.labels) (*resp.mutable_labels())[k] = v;
  resp.set_version(identity_.version);
  for (const auto& k : manager_->Capabilities()) resp.add_capabilities(k);
  resp.mutable_clock()->set_realtime_ns(NowRealtimeNs());
  resp.mutable_clock()->set_monotonic_ns(NowMonotonicNs());
  resp.set_pid(::getpid());
  return resp;
}

grpc::Status AgentService::Info(grpc::ServerContext*, const v1::InfoRequest*,
                                v1::InfoResponse* resp) {
  *resp = MakeInfo();
  return grpc::Status::OK;
}

grpc::Status AgentService::Preflight(grpc::ServerContext*, const v1::PreflightRequest* req,
                                     v1::PreflightResponse* resp) {
  *resp = manager_->Preflight(req->spec());
  return grpc::Status::OK;
}

grpc::Status AgentService::Inject(grpc::ServerContext* ctx, const v1::InjectRequest* req,
                                  v1::InjectResponse* resp) {
  auto result = manager_->Inject(*req);
  if (!result.ok()) {
    spdlog::info("inject {} from {} refused: {}", spec::KindName(req->spec()), Peer(ctx),
                 std::string(result.status().message()));
    return ToGrpcStatus(result.status());
  }
  *resp = std::move(*result);
  return grpc::Status::OK;
}

grpc::Status AgentService::Revert(grpc::ServerContext*, const v1::RevertRequest* req,
                                  v1::RevertResponse* resp) {
  auto result = manager_->Revert(req->id(), "request");
  if (!result.ok()) return ToGrpcStatus(result.status());
  *resp->mutable_fault() = std::move(*result);
  return grpc::Status::OK;
}

grpc::Status AgentService::RevertAll(grpc::ServerContext*, const v1::RevertAllRequest* req,
                                     v1::RevertAllResponse* resp) {
  auto result = manager_->RevertAll(req->lease_id(), "request");
  if (!result.ok()) return ToGrpcStatus(result.status());
  for (auto& r : *result) *resp->add_faults() = std::move(r);
  return grpc::Status::OK;
}

grpc::Status AgentService::ListFaults(grpc::ServerContext*, const v1::ListFaultsRequest*,
                                      v1::ListFaultsResponse* resp) {
  for (auto& r : manager_->List()) *resp->add_faults() = std::move(r);
  return grpc::Status::OK;
}

grpc::Status AgentService::RenewLease(grpc::ServerContext*, const v1::RenewLeaseRequest* req,
                                      v1::RenewLeaseResponse* resp) {
  auto n = manager_->RenewLease(req->lease_id(), req->ttl_ms());
  if (!n.ok()) return ToGrpcStatus(n.status());
  resp->set_faults(*n);
  return grpc::Status::OK;
}

grpc::Status AgentService::Commit(grpc::ServerContext*, const v1::CommitRequest* req,
                                  v1::CommitResponse* resp) {
  auto result = manager_->Commit({req->ids().begin(), req->ids().end()}, req->start_at_unix_ns());
  if (!result.ok()) return ToGrpcStatus(result.status());
  for (auto& r : *result) *resp->add_faults() = std::move(r);
  return grpc::Status::OK;
}

grpc::Status AgentService::RunProbe(grpc::ServerContext* ctx, const v1::RunProbeRequest* req,
                                    grpc::ServerWriter<v1::ProbeSample>* writer) {
  // Exec probes run only as the policy's exec rules allow: none without them.
  absl::StatusOr<ExecPolicy> exec = ExecPolicy::FromProto(manager_->context().policy->exec());
  if (!exec.ok()) return ToGrpcStatus(exec.status());
  // Runs on this RPC's own thread until the client cancels or the stream breaks.
  absl::Status st = RunProbeLoop(
      req->probe(), req->max_samples(),
      [writer](const v1::ProbeSample& sample) { return writer->Write(sample); },
      [ctx] { return ctx->IsCancelled(); }, *exec);
  return ToGrpcStatus(st);
}

}  // namespace faultline::agent
