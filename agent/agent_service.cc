#include "agent/agent_service.h"

#include <fmt/format.h>
#include <google/protobuf/util/json_util.h>
#include <spdlog/spdlog.h>
#include <unistd.h>

#include <thread>

#include "absl/synchronization/notification.h"
#include "common/clock.h"
#include "common/grpc_status.h"
#include "common/status_macros.h"
#include "common/yaml_proto.h"
#include "probes/probe_runner.h"

namespace faultline::agent {
namespace {

using auth::Role;

// Who may change the host or run something on it.
const std::vector<Role> kMutators = {Role::kController, Role::kOperator};
// Who may look.
const std::vector<Role> kReaders = {Role::kController, Role::kOperator, Role::kViewer};

// How long a writer stopped by its bound or a shutdown waits for the client to
// take its last batch and half-close.
constexpr std::chrono::seconds kHalfCloseWait{5};

std::string Peer(grpc::ServerContext* ctx) { return ctx ? ctx->peer() : "local"; }

auth::PeerInfo PeerOf(grpc::ServerContext* ctx) {
  return ctx != nullptr ? auth::PeerInfoOf(*ctx) : auth::PeerInfo{"local", ""};
}

std::string ToJson(const google::protobuf::Message& message) {
  google::protobuf::util::JsonPrintOptions opts;
  opts.preserve_proto_field_names = true;
  std::string out;
  if (!google::protobuf::util::MessageToJsonString(message, &out, opts).ok()) return "null";
  return out;
}

std::string JsonStrings(const google::protobuf::RepeatedPtrField<std::string>& items) {
  std::string out = "[";
  for (int i = 0; i < items.size(); ++i) out += (i ? "," : "") + JsonQuote(items[i]);
  return out + "]";
}

// scheme://host[:port]/path of a URL: no user info, no query, no fragment.
std::string UrlWithoutSecrets(const std::string& url) {
  std::string out = url.substr(0, url.find_first_of("?#"));
  const size_t scheme = out.find("://");
  const size_t host_start = scheme == std::string::npos ? 0 : scheme + 3;
  const size_t at = out.find('@', host_start);
  const size_t slash = out.find('/', host_start);
  if (at != std::string::npos && (slash == std::string::npos || at < slash)) {
    out.erase(host_start, at + 1 - host_start);
  }
  return out;
}

}  // namespace

std::string ProbeAuditSummary(const v1::ProbeSpec& probe) {
  std::string kind = "none";
  std::string target;
  switch (probe.check_case()) {
    case v1::ProbeSpec::kTcp: kind = "tcp"; target = probe.tcp().address(); break;
    case v1::ProbeSpec::kHttp: kind = "http"; target = UrlWithoutSecrets(probe.http().url()); break;
    case v1::ProbeSpec::kExec:
      kind = "exec";
      target = probe.exec().argv().empty() ? "" : probe.exec().argv(0);
      break;
    case v1::ProbeSpec::kGrpcHealth: kind = "grpc_health"; target = probe.grpc_health().address(); break;
    case v1::ProbeSpec::kRedis:
      kind = "redis";
      target = probe.redis().address().empty()
                   ? fmt::format("{} via {}", probe.redis().master(),
                                 fmt::join(probe.redis().sentinels(), ","))
                   : probe.redis().address();
      break;
    default: break;
  }
  return fmt::format("{{\"name\":{},\"kind\":{},\"target\":{}}}", JsonQuote(probe.name()),
                     JsonQuote(kind), JsonQuote(target));
}

std::string DataAuditSummary(const v1::DataWorkload& workload) {
  std::string driver = "none";
  std::string target;
  if (workload.has_redis()) {
    driver = "redis";
    target = workload.redis().address().empty()
                 ? fmt::format("{} via {}", workload.redis().master(),
                               fmt::join(workload.redis().sentinels(), ","))
                 : workload.redis().address();
  } else if (workload.has_postgres()) {
    driver = "postgres";  // a DSN may hold a password: not logged
  } else if (workload.has_http()) {
    driver = "http";
    target = UrlWithoutSecrets(workload.http().url());
  }
  return fmt::format("{{\"name\":{},\"driver\":{},\"target\":{}}}", JsonQuote(workload.name()),
                     JsonQuote(driver), JsonQuote(target));
}

absl::Status AgentService::AllowRead(grpc::ServerContext* ctx, const char* method) const {
  return authorizer_->Authorize(PeerOf(ctx), method, kReaders).status();
}

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

grpc::Status AgentService::Info(grpc::ServerContext* ctx, const v1::InfoRequest*,
                                v1::InfoResponse* resp) {
  if (absl::Status st = AllowRead(ctx, "Info"); !st.ok()) return ToGrpcStatus(st);
  *resp = MakeInfo();
  return grpc::Status::OK;
}

grpc::Status AgentService::Preflight(grpc::ServerContext* ctx, const v1::PreflightRequest* req,
                                     v1::PreflightResponse* resp) {
  if (absl::Status st = AllowRead(ctx, "Preflight"); !st.ok()) return ToGrpcStatus(st);
  *resp = manager_->Preflight(req->spec());
  return grpc::Status::OK;
}

grpc::Status AgentService::Mutate(grpc::ServerContext* ctx, const char* method,
                                  const std::function<absl::Status()>& act,
                                  const std::function<std::string()>& what) {
  const auth::PeerInfo peer = PeerOf(ctx);
  auto caller = authorizer_->Authorize(peer, method, kMutators);
  absl::Status st = caller.ok() ? act() : caller.status();
  auth::Audit(audit_, method, peer, caller, what(), st);
  return ToGrpcStatus(st);
}

grpc::Status AgentService::Inject(grpc::ServerContext* ctx, const v1::InjectRequest* req,
                                  v1::InjectResponse* resp) {
  return Mutate(
      ctx, "Inject",
      [&]() -> absl::Status {
        auto result = manager_->Inject(*req);
        if (!result.ok()) {
          spdlog::info("inject {} from {} refused: {}", spec::KindName(req->spec()), Peer(ctx),
                       std::string(result.status().message()));
          return result.status();
        }
        *resp = std::move(*result);
        return absl::OkStatus();
      },
      [&] {
        return fmt::format(
            "{{\"spec\":{},\"dry_run\":{},\"prepare_only\":{},\"lease_id\":{},"
            "\"lease_ttl_ms\":{},\"owner\":{},\"fault_id\":{}}}",
            ToJson(req->spec()), req->dry_run(), req->prepare_only(), JsonQuote(req->lease_id()),
            req->lease_ttl_ms(), JsonQuote(req->owner()), JsonQuote(resp->fault().id()));
      });
}

grpc::Status AgentService::Revert(grpc::ServerContext* ctx, const v1::RevertRequest* req,
                                  v1::RevertResponse* resp) {
  return Mutate(
      ctx, "Revert",
      [&]() -> absl::Status {
        ASSIGN_OR_RETURN(*resp->mutable_fault(), manager_->Revert(req->id(), "request"));
        return absl::OkStatus();
      },
      [&] { return fmt::format("{{\"id\":{}}}", JsonQuote(req->id())); });
}

grpc::Status AgentService::RevertAll(grpc::ServerContext* ctx, const v1::RevertAllRequest* req,
                                     v1::RevertAllResponse* resp) {
  return Mutate(
      ctx, "RevertAll",
      [&]() -> absl::Status {
        ASSIGN_OR_RETURN(auto reverted, manager_->RevertAll(req->lease_id(), "request"));
        for (auto& r : reverted) *resp->add_faults() = std::move(r);
        return absl::OkStatus();
      },
      [&] {
        return fmt::format("{{\"lease_id\":{},\"reverted\":{}}}", JsonQuote(req->lease_id()),
                           resp->faults_size());
      });
}

grpc::Status AgentService::ListFaults(grpc::ServerContext* ctx, const v1::ListFaultsRequest*,
                                      v1::ListFaultsResponse* resp) {
  if (absl::Status st = AllowRead(ctx, "ListFaults"); !st.ok()) return ToGrpcStatus(st);
  for (auto& r : manager_->List()) *resp->add_faults() = std::move(r);
  return grpc::Status::OK;
}

grpc::Status AgentService::RenewLease(grpc::ServerContext* ctx, const v1::RenewLeaseRequest* req,
                                      v1::RenewLeaseResponse* resp) {
  return Mutate(
      ctx, "RenewLease",
      [&]() -> absl::Status {
        ASSIGN_OR_RETURN(const int faults, manager_->RenewLease(req->lease_id(), req->ttl_ms()));
        resp->set_faults(faults);
        return absl::OkStatus();
      },
      [&] {
        return fmt::format("{{\"lease_id\":{},\"ttl_ms\":{}}}", JsonQuote(req->lease_id()),
                           req->ttl_ms());
      });
}

grpc::Status AgentService::Commit(grpc::ServerContext* ctx, const v1::CommitRequest* req,
                                  v1::CommitResponse* resp) {
  return Mutate(
      ctx, "Commit",
      [&]() -> absl::Status {
        ASSIGN_OR_RETURN(auto applied, manager_->Commit({req->ids().begin(), req->ids().end()},
                                                        req->start_at_unix_ns()));
        for (auto& r : applied) *resp->add_faults() = std::move(r);
        return absl::OkStatus();
      },
      [&] {
        return fmt::format("{{\"ids\":{},\"start_at_unix_ns\":{}}}", JsonStrings(req->ids()),
                           req->start_at_unix_ns());
      });
}

grpc::Status AgentService::RunProbe(grpc::ServerContext* ctx, const v1::RunProbeRequest* req,
                                    grpc::ServerWriter<v1::ProbeSample>* writer) {
  const auth::PeerInfo peer = PeerOf(ctx);
  auto caller = authorizer_->Authorize(peer, "RunProbe", kMutators);
  // Audited when it starts (a probe runs until cancelled).
  auth::Audit(audit_, "RunProbe", peer, caller,
              fmt::format("{{\"probe\":{},\"max_samples\":{}}}", ProbeAuditSummary(req->probe()),
                          req->max_samples()),
              caller.status());
  if (!caller.ok()) return ToGrpcStatus(caller.status());
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

grpc::Status AgentService::RunDataWriter(
    grpc::ServerContext* ctx,
    grpc::ServerReaderWriter<v1::DataWriterBatch, v1::DataWriterControl>* stream) {
  v1::DataWriterControl start;
  const bool started = stream->Read(&start);
  std::unique_ptr<DataWriters::Writer> writer;
  // Audited when it starts (a writer runs until stopped), refused or not.
  grpc::Status admitted = Mutate(
      ctx, "RunDataWriter",
      [&]() -> absl::Status {
        if (!started) return absl::InvalidArgumentError("no first message (the workload)");
        absl::StatusOr<std::unique_ptr<DataWriters::Writer>> made = data_writers_.Admit(start);
        if (!made.ok()) {
          spdlog::info("data writer {} from {} refused: {}", start.workload().name(), Peer(ctx),
                       std::string(made.status().message()));
          return made.status();
        }
        writer = std::move(*made);
        return absl::OkStatus();
      },
      [&] {
        return fmt::format("{{\"workload\":{},\"run_id\":{},\"max_write_ms\":{}}}",
                           DataAuditSummary(start.workload()), JsonQuote(start.run_id()),
                           start.max_write_ms());
      });
  if (!admitted.ok()) return admitted;
  // The client's half-close (or the call's end) stops the writer: one thread
  // waits for it while this one writes the batches.
  absl::Notification half_closed;
  std::thread reader([stream, &half_closed] {
    v1::DataWriterControl ignored;
    while (stream->Read(&ignored)) {
    }
    half_closed.Notify();
  });
  writer->Run([stream](const v1::DataWriterBatch& batch) { return stream->Write(batch); },
              &half_closed, [ctx] { return ctx->IsCancelled(); });
  // Stopped by the bound or a shutdown: the client half-closes once it has the
  // last batch; one that does not within kHalfCloseWait is cut off.
  if (!half_closed.WaitForNotificationWithTimeout(absl::FromChrono(kHalfCloseWait))) {
    ctx->TryCancel();
  }
  reader.join();
  return grpc::Status::OK;
}

grpc::Status AgentService::ReadData(grpc::ServerContext* ctx, const v1::ReadDataRequest* req,
                                    v1::ReadDataResponse* resp) {
  return Mutate(
      ctx, "ReadData",
      [&]() -> absl::Status {
        ASSIGN_OR_RETURN(*resp, data_writers_.Read(*req));
        return absl::OkStatus();
      },
      [&] {
        return fmt::format(
            "{{\"workload\":{},\"run_id\":{},\"writes\":{},\"read\":{},\"cleanup\":{},"
            "\"cleanup_error\":{}}}",
            DataAuditSummary(req->workload()), JsonQuote(req->run_id()), req->writes(), req->read(),
            req->cleanup(), JsonQuote(resp->cleanup_error()));
      });
}

grpc::Status AgentService::RunStep(grpc::ServerContext* ctx, const v1::RunStepRequest* req,
                                   v1::RunStepResponse* resp) {
  // Audited when it ends (with how it ended), allowed or refused.
  return Mutate(
      ctx, "RunStep",
      [&]() -> absl::Status {
        // Steps run only as the policy's exec rules allow: none without them.
        ASSIGN_OR_RETURN(const ExecPolicy exec,
                         ExecPolicy::FromProto(manager_->context().policy->exec()));
        ASSIGN_OR_RETURN(*resp, steps_.Run(*req, exec, [ctx] { return ctx->IsCancelled(); }));
        return absl::OkStatus();
      },
      [&] {
        return fmt::format(
            "{{\"step\":{},\"program\":{},\"args\":{},\"timeout_ms\":{},\"exit_code\":{},"
            "\"signal\":{},\"timed_out\":{}}}",
            JsonQuote(req->step()), JsonQuote(req->argv().empty() ? "" : req->argv(0)),
            req->argv_size(), req->timeout_ms(), resp->exit_code(), resp->signal(),
            resp->timed_out());
      });
}

}  // namespace faultline::agent
