#include "controller/controller_service.h"

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include "common/clock.h"
#include "common/grpc_status.h"
#include "controller/experiment.h"

namespace faultline::controller {
namespace {

constexpr auto kAgentRpcTimeout = std::chrono::milliseconds(2000);
constexpr auto kRecoverRpcTimeout = std::chrono::milliseconds(5000);

}  // namespace

ControllerService::ControllerService(Store* store, ControllerOptions options)
    : store_(store),
      options_(std::move(options)),
      clients_(options_.runner.dial),
      fleet_(options_.fleet) {}

ControllerService::~ControllerService() {
  for (auto& t : background_) {
    if (t.joinable()) t.join();
  }
}

absl::Status ControllerService::Recover() {
  auto stored = store_->ListAgents();
  if (!stored.ok()) return stored.status();
  {
    std::lock_guard<std::mutex> lock(mu_);
    for (auto& a : *stored) {
      Agent agent;
      agent.stored = std::move(a);
      agents_[agent.stored.info.name()] = std::move(agent);
    }
  }
  auto interrupted = store_->MarkInterrupted();
  if (!interrupted.ok()) return interrupted.status();
  for (const auto& run : *interrupted) {
    spdlog::warn("run {} ({}) was in flight when the controller stopped: marked interrupted; "
                 "telling its {} agent(s) to revert",
                 run.run_id(), run.experiment(), run.agents_size());
    for (const auto& address : run.agents()) {
      background_.emplace_back([this, address, name = NameAt(address), run_id = run.run_id()] {
        auto client = clients_.Get(name, address);
        if (!client.ok()) return;
        v1::RevertAllRequest req;
        req.set_lease_id(run_id);
        auto resp = (*client)->RevertAll(req, kRecoverRpcTimeout);
        if (resp.ok()) {
          spdlog::info("run {}: {} reverted {} fault(s)", run_id, address, resp->faults_size());
        } else {
          spdlog::warn("run {}: {} (its lease lapses by itself)", run_id,
                       std::string(resp.status().message()));
        }
      });
    }
  }
  return absl::OkStatus();
}

int ControllerService::AbortRuns() {
  std::lock_guard<std::mutex> lock(mu_);
  for (auto& [id, run] : runs_) run->Abort();
  return static_cast<int>(runs_.size());
}

bool ControllerService::Healthy(const Agent& a) const {
  return a.seen && std::chrono::steady_clock::now() - a.last_seen <= options_.unhealthy_after;
}

absl::Status ControllerService::Upsert(const v1::RegisterRequest& req,
                                       v1::RegisterResponse* resp) {
  if (req.info().name().empty()) return absl::InvalidArgumentError("info.name: required");
  if (req.address().empty()) {
    return absl::InvalidArgumentError("address: required (the agent's --advertise address)");
  }
  StoredAgent stored;
  {
    std::lock_guard<std::mutex> lock(mu_);
    Agent& a = agents_[req.info().name()];
    const int64_t now = NowRealtimeNs();
    if (a.stored.registered_unix_ns == 0 || a.stored.address != req.address()) {
      if (a.stored.registered_unix_ns == 0 || !a.seen) {
        spdlog::info("agent {} registered at {}", req.info().name(), req.address());
      }
      a.stored.registered_unix_ns = now;
    } else if (!Healthy(a)) {
      spdlog::info("agent {} is back ({})", req.info().name(), req.address());
    }
    a.stored.address = req.address();
    a.stored.info = req.info();
    a.stored.last_heartbeat_unix_ns = now;
    a.last_seen = std::chrono::steady_clock::now();
    a.seen = true;
    stored = a.stored;
  }
  resp->set_heartbeat_interval_ms(options_.heartbeat_interval.count());
  return store_->UpsertAgent(stored);
}

grpc::Status ControllerService::Register(grpc::ServerContext*, const v1::RegisterRequest* req,
                                         v1::RegisterResponse* resp) {
  return ToGrpcStatus(Upsert(*req, resp));
}

grpc::Status ControllerService::Heartbeat(grpc::ServerContext*, const v1::RegisterRequest* req,
                                          v1::RegisterResponse* resp) {
  return ToGrpcStatus(Upsert(*req, resp));
}

std::string ControllerService::NameAt(const std::string& address) {
  std::lock_guard<std::mutex> lock(mu_);
  for (const auto& [name, a] : agents_) {
    if (a.stored.address == address) return name;
  }
  return address;
}

std::vector<AgentRef> ControllerService::Snapshot() {
  std::lock_guard<std::mutex> lock(mu_);
  std::vector<AgentRef> out;
  for (const auto& [name, a] : agents_) {
    AgentRef ref;
    ref.name = name;
    ref.address = a.stored.address;
    ref.labels.insert(a.stored.info.labels().begin(), a.stored.info.labels().end());
    ref.healthy = Healthy(a);
    out.push_back(std::move(ref));
  }
  return out;
}

grpc::Status ControllerService::ListAgents(grpc::ServerContext*, const v1::ListAgentsRequest*,
                                           v1::ListAgentsResponse* resp) {
  std::vector<v1::AgentStatus> list;
  {
    std::lock_guard<std::mutex> lock(mu_);
    for (const auto& [name, a] : agents_) {
      v1::AgentStatus s;
      s.set_name(name);
      s.set_address(a.stored.address);
      *s.mutable_labels() = a.stored.info.labels();
      s.set_version(a.stored.info.version());
      *s.mutable_capabilities() = a.stored.info.capabilities();
      s.set_health(Healthy(a) ? "healthy" : "unhealthy");
      s.set_last_heartbeat_unix_ns(a.stored.last_heartbeat_unix_ns);
      s.set_registered_unix_ns(a.stored.registered_unix_ns);
      s.set_active_faults(-1);
      list.push_back(std::move(s));
    }
  }
  // Active faults: asked of every healthy agent, in parallel, briefly.
  std::vector<std::thread> askers;
  for (auto& s : list) {
    if (s.health() != "healthy") continue;
    askers.emplace_back([this, &s] {
      auto client = clients_.Get(s.name(), s.address());
      if (!client.ok()) return;
      auto faults = (*client)->ListFaults(kAgentRpcTimeout);
      if (!faults.ok()) return;
      int active = 0;
      for (const auto& f : faults->faults()) {
        if (f.state() == v1::FAULT_STATE_ACTIVE || f.state() == v1::FAULT_STATE_PENDING) ++active;
      }
      s.set_active_faults(active);
    });
  }
  for (auto& t : askers) t.join();
  for (auto& s : list) *resp->add_agents() = std::move(s);
  return grpc::Status::OK;
}

grpc::Status ControllerService::RunExperiment(grpc::ServerContext*,
                                              const v1::RunExperimentRequest* req,
                                              grpc::ServerWriter<v1::RunUpdate>* writer) {
  auto exp = LoadExperiment(req->yaml());
  if (!exp.ok()) {
    std::string msg(exp.status().message());
    if (!req->file().empty()) msg = req->file() + ":\n" + msg;
    return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, msg);
  }
  const std::string run_id = NewRunId();
  RunnerOptions runner = options_.runner;
  runner.fleet = &fleet_;
  ExperimentRun run(run_id, *exp, req->dry_run(), Snapshot(), runner, &clients_, store_,
                    [writer](const v1::RunProgress& p) {
                      v1::RunUpdate u;
                      *u.mutable_progress() = p;
                      writer->Write(u);  // a vanished client does not stop the run
                    });
  {
    std::lock_guard<std::mutex> lock(mu_);
    runs_[run_id] = &run;
  }
  spdlog::info("run {}: {}{}", run_id, exp->name(), req->dry_run() ? " (dry run)" : "");
  v1::RunReport report = run.Execute();
  {
    std::lock_guard<std::mutex> lock(mu_);
    runs_.erase(run_id);
  }
  v1::RunUpdate u;
  *u.mutable_report() = report;
  writer->Write(u);
  return grpc::Status::OK;
}

grpc::Status ControllerService::ListRuns(grpc::ServerContext*, const v1::ListRunsRequest* req,
                                         v1::ListRunsResponse* resp) {
  auto runs = store_->ListRuns(req->limit());
  if (!runs.ok()) return ToGrpcStatus(runs.status());
  for (auto& r : *runs) *resp->add_runs() = std::move(r);
  return grpc::Status::OK;
}

grpc::Status ControllerService::GetRun(grpc::ServerContext*, const v1::GetRunRequest* req,
                                       v1::RunReport* resp) {
  auto run = store_->GetRun(req->run_id());
  if (!run.ok()) return ToGrpcStatus(run.status());
  *resp = std::move(*run);
  return grpc::Status::OK;
}

grpc::Status ControllerService::Abort(grpc::ServerContext*, const v1::AbortRequest*,
                                      v1::AbortResponse* resp) {
  resp->set_runs_aborted(AbortRuns());
  std::vector<std::pair<std::string, std::string>> targets;  // name, address
  {
    std::lock_guard<std::mutex> lock(mu_);
    for (const auto& [name, a] : agents_) targets.emplace_back(name, a.stored.address);
  }
  std::mutex result_mu;
  std::vector<std::thread> workers;
  for (const auto& [name, address] : targets) {
    workers.emplace_back([&, name = name, address = address] {
      auto client = clients_.Get(name, address);
      auto r = client.ok() ? (*client)->RevertAll(v1::RevertAllRequest(), kAgentRpcTimeout)
                           : absl::StatusOr<v1::RevertAllResponse>(client.status());
      std::lock_guard<std::mutex> lock(result_mu);
      if (r.ok()) {
        resp->set_faults_reverted(resp->faults_reverted() + r->faults_size());
      } else {
        resp->add_errors(fmt::format("{} ({}): {}", name, address, AgentMessage(r.status())));
      }
    });
  }
  for (auto& t : workers) t.join();
  spdlog::warn("abort: {} run(s) stopped, {} fault(s) reverted, {} agent(s) unreachable",
               resp->runs_aborted(), resp->faults_reverted(), resp->errors_size());
  return grpc::Status::OK;
}

}  // namespace faultline::controller
