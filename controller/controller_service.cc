#include "controller/controller_service.h"

#include <arpa/inet.h>
#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include "auth/identity.h"
#include "common/clock.h"
#include "common/endpoint.h"
#include "common/grpc_status.h"
#include "common/status_macros.h"
#include "common/text.h"
#include "common/yaml_proto.h"
#include "controller/experiment.h"
#include "controller/fan_out.h"

namespace faultline::controller {
namespace {

using auth::Role;

constexpr auto kAgentRpcTimeout = std::chrono::milliseconds(2000);
constexpr auto kRecoverRpcTimeout = std::chrono::milliseconds(5000);
constexpr size_t kMaxLabels = 64;
constexpr size_t kMaxCapabilities = 64;

const std::vector<Role> kAgents = {Role::kAgent};
const std::vector<Role> kOperators = {Role::kOperator};
const std::vector<Role> kReaders = {Role::kOperator, Role::kViewer};

// Whether every byte of `text` is in `allowed` (a predicate), and its length in
// [min, max].
template <typename Pred>
bool Matches(const std::string& text, size_t min, size_t max, Pred allowed) {
  if (text.size() < min || text.size() > max) return false;
  for (char c : text) {
    if (!allowed(static_cast<unsigned char>(c))) return false;
  }
  return true;
}

bool Alnum(unsigned char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
}

absl::Status ValidateAddress(const std::string& address) {
  if (address.empty()) {
    return absl::InvalidArgumentError("address: required (the agent's --advertise address)");
  }
  if (!Matches(address, 1, 256, [](unsigned char c) { return c > 0x20 && c < 0x7f; })) {
    return absl::InvalidArgumentError(fmt::format(
        "address: \"{}\": at most 256 printable characters, no spaces", Printable(address)));
  }
  ASSIGN_OR_RETURN(Endpoint ep, ParseEndpoint("address", address));
  if (ep.is_unix) return absl::OkStatus();
  if (ep.port < 1) return absl::InvalidArgumentError(fmt::format("address: port 0 in \"{}\"", address));
  unsigned char buf[16];
  if (inet_pton(AF_INET, ep.host.c_str(), buf) == 1 || inet_pton(AF_INET6, ep.host.c_str(), buf) == 1) {
    return absl::OkStatus();
  }
  if (!Matches(ep.host, 1, 253, [](unsigned char c) { return Alnum(c) || c == '.' || c == '-'; }) ||
      ep.host.front() == '-' || ep.host.front() == '.') {
    return absl::InvalidArgumentError(fmt::format(
        "address: \"{}\" is neither an IP address nor a host name", Printable(ep.host)));
  }
  return absl::OkStatus();
}

// "k=v,k2=v2" of a label map, sorted, as JSON.
std::string LabelsJson(const google::protobuf::Map<std::string, std::string>& labels) {
  const std::map<std::string, std::string> sorted(labels.begin(), labels.end());
  std::string out = "{";
  for (const auto& [k, v] : sorted) {
    out += fmt::format("{}{}:{}", out.size() > 1 ? "," : "", JsonQuote(k), JsonQuote(v));
  }
  return out + "}";
}

}  // namespace

absl::Status ValidateRegistration(const v1::RegisterRequest& req) {
  RETURN_IF_ERROR(auth::ValidateName("info.name", req.info().name()));
  RETURN_IF_ERROR(ValidateAddress(req.address()));
  if (static_cast<size_t>(req.info().labels_size()) > kMaxLabels) {
    return absl::InvalidArgumentError(fmt::format("info.labels: {} labels, at most {}",
                                                  req.info().labels_size(), kMaxLabels));
  }
  for (const auto& [k, v] : req.info().labels()) {
    // Kubernetes-style: keys [A-Za-z0-9][A-Za-z0-9._/-]{0,62}, values [A-Za-z0-9._-]{0,63}.
    if (!Matches(k, 1, 63, [](unsigned char c) {
          return Alnum(c) || c == '.' || c == '_' || c == '/' || c == '-';
        }) || !Alnum(static_cast<unsigned char>(k[0]))) {
      return absl::InvalidArgumentError(fmt::format(
          "info.labels: key \"{}\": expected [A-Za-z0-9][A-Za-z0-9._/-]{{0,62}}", Printable(k)));
    }
    if (!Matches(v, 0, 63, [](unsigned char c) { return Alnum(c) || c == '.' || c == '_' || c == '-'; })) {
      return absl::InvalidArgumentError(fmt::format(
          "info.labels.{}: value \"{}\": expected [A-Za-z0-9._-]{{0,63}}", k, Printable(v)));
    }
  }
  if (!Matches(req.info().version(), 0, 64, [](unsigned char c) { return c >= 0x20 && c < 0x7f; })) {
    return absl::InvalidArgumentError(fmt::format(
        "info.version: \"{}\": at most 64 printable characters", Printable(req.info().version())));
  }
  if (static_cast<size_t>(req.info().capabilities_size()) > kMaxCapabilities) {
    return absl::InvalidArgumentError("info.capabilities: too many");
  }
  for (const auto& c : req.info().capabilities()) {
    if (!Matches(c, 1, 32, [](unsigned char ch) { return Alnum(ch) || ch == '-' || ch == '_'; })) {
      return absl::InvalidArgumentError(fmt::format(
          "info.capabilities: \"{}\": expected [A-Za-z0-9_-]{{1,32}}", Printable(c)));
    }
  }
  return absl::OkStatus();
}

ControllerService::ControllerService(Store* store, ControllerOptions options)
    : store_(store),
      options_(std::move(options)),
      certificates_only_(auth::AuthorizerOptions{}),
      authorizer_(options_.authorizer != nullptr ? options_.authorizer : &certificates_only_),
      clients_(options_.runner.dial),
      fleet_(options_.fleet),
      run_options_([this] {
        RunnerOptions r = options_.runner;
        r.fleet = &fleet_;
        return r;
      }()),
      scheduler_(std::make_unique<Scheduler>(store, this, options_.metrics)),
      gamedays_(std::make_unique<GameDays>(store, this, &options_.runner.exec_policy)) {
  if (options_.metrics != nullptr) options_.metrics->registry()->OnScrape([this] { RefreshMetrics(); });
}

void ControllerService::RefreshMetrics() {
  std::map<std::pair<std::string, std::string>, int> agents;
  std::map<std::string, int> faults;
  {
    std::lock_guard<std::mutex> lock(mu_);
    for (const auto& [name, a] : agents_) {
      const auto& labels = a.stored.info.labels();
      auto zone = labels.find("zone");
      ++agents[{zone == labels.end() ? "" : zone->second, Healthy(a) ? "healthy" : "unhealthy"}];
    }
    for (const auto& [id, run] : runs_) {
      for (const auto& [kind, n] : run->ActiveFaultKinds()) faults[kind] += n;
    }
  }
  options_.metrics->SetAgents(agents);
  options_.metrics->SetFaultsActive(faults);
}

ControllerService::~ControllerService() {
  Shutdown();
  std::vector<RunThread> scheduled;
  {
    std::lock_guard<std::mutex> lock(mu_);
    scheduled.swap(scheduled_);
  }
  for (auto& r : scheduled) r.thread.join();
  for (auto& t : background_) {
    if (t.joinable()) t.join();
  }
}

int ControllerService::Shutdown() {
  scheduler_->Stop();
  gamedays_->Stop();
  {
    std::lock_guard<std::mutex> lock(mu_);
    shutting_down_ = true;
  }
  return AbortRuns();
}

void ControllerService::ReapLocked() {
  for (auto it = scheduled_.begin(); it != scheduled_.end();) {
    if (it->done->load()) {
      it->thread.join();
      it = scheduled_.erase(it);
    } else {
      ++it;
    }
  }
}

absl::Status ControllerService::StartScheduledRun(const std::string& run_id,
                                                  const v1::Experiment& exp,
                                                  const std::string& schedule,
                                                  int64_t scheduled_unix_ns) {
  auto run = std::make_shared<ExperimentRun>(run_id, exp, false, Snapshot(), run_options_, &clients_,
                                             store_, [](const v1::RunProgress&) {});
  run->SetSchedule(schedule, scheduled_unix_ns);
  auto done = std::make_shared<std::atomic<bool>>(false);
  std::lock_guard<std::mutex> lock(mu_);
  if (shutting_down_) return absl::UnavailableError("the controller is shutting down");
  ReapLocked();
  runs_[run_id] = run.get();
  spdlog::info("run {}: {} (schedule {})", run_id, exp.name(), schedule);
  scheduled_.push_back(RunThread{std::thread([this, run, done] {
                                   v1::RunReport report = run->Execute();
                                   {
                                     std::lock_guard<std::mutex> lock(mu_);
                                     runs_.erase(run->id());
                                   }
                                   if (options_.metrics != nullptr) {
                                     options_.metrics->RunEnded(report);
                                   }
                                   scheduler_->RunEnded(report);
                                   done->store(true);
                                 }),
                                 done});
  return absl::OkStatus();
}

bool ControllerService::RunActive(const std::string& run_id) {
  std::lock_guard<std::mutex> lock(mu_);
  return runs_.contains(run_id);
}

void ControllerService::AbortRun(const std::string& run_id, const std::string& why) {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = runs_.find(run_id);
  if (it == runs_.end()) return;
  spdlog::info("run {}: aborted {}", run_id, why);
  it->second->Abort(why);
}

absl::Status ControllerService::Recover() {
  auto stored = store_->ListAgents();
  if (!stored.ok()) return stored.status();
  {
    std::lock_guard<std::mutex> lock(mu_);
    for (auto& a : *stored) {
      // Rows an older controller accepted without checking: never dialled.
      v1::RegisterRequest check;
      check.set_address(a.address);
      *check.mutable_info() = a.info;
      if (absl::Status st = ValidateRegistration(check); !st.ok()) {
        spdlog::warn("dropping stored agent \"{}\": {}", Printable(a.info.name()),
                     std::string(st.message()));
        if (absl::Status del = store_->DeleteAgent(a.info.name()); !del.ok()) return del;
        continue;
      }
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
  // After the interrupted runs are marked: a tick decided in an earlier life
  // is in the store, and is never decided again.
  scheduler_->Start();
  // Likewise: a game day's run that was in flight is marked interrupted.
  return gamedays_->Start();
}

v1::RunReport ControllerService::RunForGameDay(const std::string& run_id,
                                               const v1::Experiment& exp,
                                               const std::string& gameday,
                                               const std::function<bool()>& cancelled) {
  ExperimentRun run(run_id, exp, false, Snapshot(), run_options_, &clients_, store_,
                    [](const v1::RunProgress&) {});
  run.SetGameDay(gameday);
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (shutting_down_) {
      v1::RunReport report;
      report.set_run_id(run_id);
      report.set_experiment(exp.name());
      report.set_verdict("error");
      report.set_reason("the controller is shutting down");
      report.set_gameday(gameday);
      return report;
    }
    runs_[run_id] = &run;
  }
  spdlog::info("run {}: {} (game day {})", run_id, exp.name(), gameday);
  if (cancelled()) run.Abort("by the game day's abort");
  v1::RunReport report = run.Execute();
  {
    std::lock_guard<std::mutex> lock(mu_);
    runs_.erase(run_id);
  }
  if (options_.metrics != nullptr) options_.metrics->RunEnded(report);
  return report;
}

int ControllerService::AbortRuns() {
  std::lock_guard<std::mutex> lock(mu_);
  for (auto& [id, run] : runs_) run->Abort();
  return static_cast<int>(runs_.size());
}

bool ControllerService::Healthy(const Agent& a) const {
  return a.seen && std::chrono::steady_clock::now() - a.last_seen <= options_.unhealthy_after;
}

absl::StatusOr<std::string> ControllerService::Upsert(const v1::RegisterRequest& req,
                                                      const auth::Caller& caller,
                                                      v1::RegisterResponse* resp) {
  RETURN_IF_ERROR(ValidateRegistration(req));
  const std::string& name = req.info().name();
  if (caller.kind == auth::CallerKind::kCertificate && caller.identity.name != name) {
    return absl::PermissionDeniedError(fmt::format(
        "info.name: \"{}\" is not the name in the caller's certificate ({}); an agent "
        "registers under its certificate's name",
        name, caller.identity.Uri()));
  }
  const std::string principal = caller.Principal();
  StoredAgent stored;
  std::string changed;
  {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = agents_.find(name);
    if (it != agents_.end() && !it->second.stored.identity.empty() &&
        it->second.stored.identity != principal) {
      return absl::PermissionDeniedError(fmt::format(
          "info.name: \"{}\" is registered by {}; refusing it to {}", name,
          it->second.stored.identity, caller.Who()));
    }
    const bool is_new = it == agents_.end() || it->second.stored.registered_unix_ns == 0;
    if (it == agents_.end() && agents_.size() >= options_.max_agents) {
      return absl::ResourceExhaustedError(fmt::format(
          "info.name: \"{}\": this controller already has {} agents, its --max-agents", name,
          agents_.size()));
    }
    Agent& a = agents_[name];
    const int64_t now = NowRealtimeNs();
    if (is_new) {
      spdlog::info("agent {} registered at {} by {}", name, req.address(), caller.Who());
      changed = "registered";
      a.stored.registered_unix_ns = now;
    } else if (a.stored.address != req.address()) {
      spdlog::warn("agent {} changed its address from {} to {} ({})", name, a.stored.address,
                   req.address(), caller.Who());
      changed = fmt::format("address {} -> {}", a.stored.address, req.address());
      a.stored.registered_unix_ns = now;
    } else if (!Healthy(a)) {
      spdlog::info("agent {} is back ({})", name, req.address());
    }
    if (changed.empty() && LabelsJson(a.stored.info.labels()) != LabelsJson(req.info().labels())) {
      changed = "labels";
    }
    if (changed.empty() && a.stored.identity != principal) changed = "identity";
    a.stored.address = req.address();
    a.stored.identity = principal;
    a.stored.info = req.info();
    a.stored.last_heartbeat_unix_ns = now;
    a.last_seen = std::chrono::steady_clock::now();
    a.seen = true;
    stored = a.stored;
  }
  resp->set_heartbeat_interval_ms(options_.heartbeat_interval.count());
  RETURN_IF_ERROR(store_->UpsertAgent(stored));
  return changed;
}

grpc::Status ControllerService::RegisterOrHeartbeat(grpc::ServerContext* ctx, const char* method,
                                                    const v1::RegisterRequest* req,
                                                    v1::RegisterResponse* resp) {
  const auth::PeerInfo peer = ctx != nullptr ? auth::PeerInfoOf(*ctx) : auth::PeerInfo{"local", ""};
  auto caller = authorizer_->Authorize(peer, method, kAgents);
  absl::Status st = caller.status();
  std::string changed;
  std::string previous_address;
  if (st.ok()) {
    {
      std::lock_guard<std::mutex> lock(mu_);
      auto it = agents_.find(req->info().name());
      if (it != agents_.end()) previous_address = it->second.stored.address;
    }
    auto result = Upsert(*req, *caller, resp);
    st = result.status();
    if (result.ok()) changed = *result;
    if (!st.ok()) {
      spdlog::warn("{} of \"{}\" from {} refused: {}", method, Printable(req->info().name()),
                   caller->Who(), std::string(st.message()));
    }
  }
  // The controller dials a registered agent at once, so a run's first calls
  // (clock sync of a whole fleet) find the connection made.
  if (st.ok() && (std::string(method) == "Register" || !changed.empty())) {
    auto client = clients_.Get(req->info().name(), req->address());
    if (client.ok()) (*client)->Connect();
  }
  // A heartbeat that changes nothing is not worth an fsync.
  if (std::string(method) == "Register" || !st.ok() || !changed.empty()) {
    auth::Audit(options_.audit, method, peer, caller,
                fmt::format("{{\"name\":{},\"address\":{},\"previous_address\":{},"
                            "\"labels\":{},\"change\":{}}}",
                            JsonQuote(req->info().name()), JsonQuote(req->address()),
                            JsonQuote(previous_address), LabelsJson(req->info().labels()),
                            JsonQuote(changed)),
                st);
  }
  return ToGrpcStatus(st);
}

grpc::Status ControllerService::Register(grpc::ServerContext* ctx, const v1::RegisterRequest* req,
                                         v1::RegisterResponse* resp) {
  return RegisterOrHeartbeat(ctx, "Register", req, resp);
}

grpc::Status ControllerService::Heartbeat(grpc::ServerContext* ctx, const v1::RegisterRequest* req,
                                          v1::RegisterResponse* resp) {
  return RegisterOrHeartbeat(ctx, "Heartbeat", req, resp);
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

grpc::Status ControllerService::ListAgents(grpc::ServerContext* ctx, const v1::ListAgentsRequest*,
                                           v1::ListAgentsResponse* resp) {
  if (auto caller = authorizer_->Authorize(ctx, "ListAgents", kReaders); !caller.ok()) {
    return ToGrpcStatus(caller.status());
  }
  *resp = AgentsNow();
  return grpc::Status::OK;
}

v1::ListAgentsResponse ControllerService::AgentsNow() {
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
  v1::ListAgentsResponse resp;
  for (auto& s : list) *resp.add_agents() = std::move(s);
  return resp;
}

// ---- The dashboard's reads (web::DashboardData) ----

absl::StatusOr<v1::ListAgentsResponse> ControllerService::DashboardAgents() { return AgentsNow(); }

absl::StatusOr<std::vector<v1::RunReport>> ControllerService::DashboardRuns(int limit) {
  return store_->ListRuns(limit);
}

absl::StatusOr<v1::RunReport> ControllerService::DashboardRun(const std::string& run_id) {
  return store_->GetRun(run_id);
}

absl::StatusOr<std::vector<v1::ScheduleStatus>> ControllerService::DashboardSchedules() {
  return scheduler_->List();
}

absl::StatusOr<std::vector<v1::GameDayStatus>> ControllerService::DashboardGameDays(int limit) {
  return gamedays_->List(limit);
}

absl::StatusOr<v1::GameDayStatus> ControllerService::DashboardGameDay(const std::string& id) {
  return gamedays_->Get(id);
}

grpc::Status ControllerService::RunExperiment(grpc::ServerContext* ctx,
                                              const v1::RunExperimentRequest* req,
                                              grpc::ServerWriter<v1::RunUpdate>* writer) {
  const auth::PeerInfo peer = ctx != nullptr ? auth::PeerInfoOf(*ctx) : auth::PeerInfo{"local", ""};
  auto caller = authorizer_->Authorize(peer, "RunExperiment", kOperators);
  absl::StatusOr<v1::Experiment> exp = absl::UnknownError("not loaded");
  if (!caller.ok()) {
    exp = caller.status();
  } else {
    exp = LoadExperiment(req->yaml());
    if (!exp.ok()) {
      std::string msg(exp.status().message());
      if (!req->file().empty()) msg = req->file() + ":\n" + msg;
      exp = absl::InvalidArgumentError(msg);
    }
  }
  const std::string run_id = exp.ok() ? NewRunId() : "";
  // Audited when the run starts (its outcome is in the store).
  auth::Audit(options_.audit, "RunExperiment", peer, caller,
              fmt::format("{{\"experiment\":{},\"file\":{},\"yaml_sha256\":{},\"dry_run\":{},"
                          "\"run_id\":{}}}",
                          JsonQuote(exp.ok() ? exp->name() : ""), JsonQuote(req->file()),
                          JsonQuote(auth::Sha256Hex(req->yaml())), req->dry_run(),
                          JsonQuote(run_id)),
              exp.status());
  if (!exp.ok()) return ToGrpcStatus(exp.status());
  ExperimentRun run(run_id, *exp, req->dry_run(), Snapshot(), run_options_, &clients_, store_,
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
  if (options_.metrics != nullptr) options_.metrics->RunEnded(report);
  v1::RunUpdate u;
  *u.mutable_report() = report;
  writer->Write(u);
  return grpc::Status::OK;
}

grpc::Status ControllerService::ListRuns(grpc::ServerContext* ctx, const v1::ListRunsRequest* req,
                                         v1::ListRunsResponse* resp) {
  if (auto caller = authorizer_->Authorize(ctx, "ListRuns", kReaders); !caller.ok()) {
    return ToGrpcStatus(caller.status());
  }
  if (req->limit() < 0 || req->limit() > kMaxListRuns) {
    return ToGrpcStatus(absl::InvalidArgumentError(fmt::format(
        "limit: at most {} runs (0 = {}), got {}", kMaxListRuns, kMaxListRuns, req->limit())));
  }
  auto runs = store_->ListRuns(req->limit() == 0 ? kMaxListRuns : req->limit());
  if (!runs.ok()) return ToGrpcStatus(runs.status());
  for (auto& r : *runs) *resp->add_runs() = std::move(r);
  return grpc::Status::OK;
}

grpc::Status ControllerService::GetRun(grpc::ServerContext* ctx, const v1::GetRunRequest* req,
                                       v1::RunReport* resp) {
  if (auto caller = authorizer_->Authorize(ctx, "GetRun", kReaders); !caller.ok()) {
    return ToGrpcStatus(caller.status());
  }
  auto run = store_->GetRun(req->run_id());
  if (!run.ok()) return ToGrpcStatus(run.status());
  *resp = std::move(*run);
  return grpc::Status::OK;
}

grpc::Status ControllerService::Abort(grpc::ServerContext* ctx, const v1::AbortRequest*,
                                      v1::AbortResponse* resp) {
  const auth::PeerInfo peer = ctx != nullptr ? auth::PeerInfoOf(*ctx) : auth::PeerInfo{"local", ""};
  auto caller = authorizer_->Authorize(peer, "Abort", kOperators);
  if (!caller.ok()) {
    auth::Audit(options_.audit, "Abort", peer, caller, "{}", caller.status());
    return ToGrpcStatus(caller.status());
  }
  resp->set_runs_aborted(AbortRuns());
  std::vector<std::pair<std::string, std::string>> targets;  // name, address
  {
    std::lock_guard<std::mutex> lock(mu_);
    for (const auto& [name, a] : agents_) targets.emplace_back(name, a.stored.address);
  }
  // Every agent at once, asynchronous calls from this thread (no thread per
  // agent: on a 200-agent fleet those cost more than the calls).
  std::vector<absl::StatusOr<v1::RevertAllResponse>> results(targets.size(),
                                                             absl::UnknownError("not asked"));
  ForEachAsync(targets.size(), 0, [&](size_t i, AsyncDone done) {
    auto client = clients_.Get(targets[i].first, targets[i].second);
    if (!client.ok()) {
      results[i] = client.status();
      done();
      return;
    }
    (*client)->RevertAllAsync(v1::RevertAllRequest(), kAgentRpcTimeout,
                              [&results, i, done](absl::StatusOr<v1::RevertAllResponse> r) {
                                results[i] = std::move(r);
                                done();
                              });
  });
  for (size_t i = 0; i < targets.size(); ++i) {
    if (results[i].ok()) {
      resp->set_faults_reverted(resp->faults_reverted() + results[i]->faults_size());
    } else {
      resp->add_errors(fmt::format("{} ({}): {}", targets[i].first, targets[i].second,
                                   AgentMessage(results[i].status())));
    }
  }
  spdlog::warn("abort by {}: {} run(s) stopped, {} fault(s) reverted, {} agent(s) unreachable",
               caller->Who(), resp->runs_aborted(), resp->faults_reverted(), resp->errors_size());
  auth::Audit(options_.audit, "Abort", peer, caller,
              fmt::format("{{\"runs_aborted\":{},\"faults_reverted\":{},\"unreachable\":{}}}",
                          resp->runs_aborted(), resp->faults_reverted(), resp->errors_size()),
              absl::OkStatus());
  return grpc::Status::OK;
}

}  // namespace faultline::controller

// ---- Schedules and blackouts ----

namespace faultline::controller {

grpc::Status ControllerService::Change(
    grpc::ServerContext* ctx, const char* method, const std::string& what_json,
    const std::function<absl::Status(const std::string& who)>& change) {
  const auth::PeerInfo peer = ctx != nullptr ? auth::PeerInfoOf(*ctx) : auth::PeerInfo{"local", ""};
  auto caller = authorizer_->Authorize(peer, method, kOperators);
  absl::Status st = caller.ok() ? change(caller->Principal()) : caller.status();
  auth::Audit(options_.audit, method, peer, caller, what_json, st);
  return ToGrpcStatus(st);
}

grpc::Status ControllerService::Read(grpc::ServerContext* ctx, const char* method,
                                     const std::function<absl::Status()>& read) {
  if (auto caller = authorizer_->Authorize(ctx, method, kReaders); !caller.ok()) {
    return ToGrpcStatus(caller.status());
  }
  return ToGrpcStatus(read());
}

namespace {

std::string ScheduleJson(const v1::AddScheduleRequest& req) {
  const v1::ScheduleSpec& s = req.spec();
  return fmt::format(
      "{{\"name\":{},\"file\":{},\"yaml_sha256\":{},\"cron\":{},\"every\":{},"
      "\"dry_run\":{}}}",
      JsonQuote(s.name()), JsonQuote(s.experiment_file()),
      JsonQuote(auth::Sha256Hex(s.experiment_yaml())), JsonQuote(s.cron()), JsonQuote(s.every()),
      req.dry_run());
}

std::string NameJson(const std::string& name) {
  return fmt::format("{{\"name\":{}}}", JsonQuote(name));
}

}  // namespace

grpc::Status ControllerService::AddSchedule(grpc::ServerContext* ctx,
                                            const v1::AddScheduleRequest* req,
                                            v1::ScheduleStatus* resp) {
  return Change(ctx, "AddSchedule", ScheduleJson(*req), [&](const std::string& who) -> absl::Status {
    ASSIGN_OR_RETURN(*resp, scheduler_->Add(*req, who));
    return absl::OkStatus();
  });
}

grpc::Status ControllerService::UpdateSchedule(grpc::ServerContext* ctx,
                                               const v1::AddScheduleRequest* req,
                                               v1::ScheduleStatus* resp) {
  return Change(ctx, "UpdateSchedule", ScheduleJson(*req), [&](const std::string&) -> absl::Status {
    ASSIGN_OR_RETURN(*resp, scheduler_->Update(*req));
    return absl::OkStatus();
  });
}

grpc::Status ControllerService::ListSchedules(grpc::ServerContext* ctx,
                                              const v1::ListSchedulesRequest*,
                                              v1::ListSchedulesResponse* resp) {
  return Read(ctx, "ListSchedules", [&]() -> absl::Status {
    ASSIGN_OR_RETURN(auto all, scheduler_->List());
    for (auto& s : all) *resp->add_schedules() = std::move(s);
    return absl::OkStatus();
  });
}

grpc::Status ControllerService::GetSchedule(grpc::ServerContext* ctx,
                                            const v1::GetScheduleRequest* req,
                                            v1::ScheduleStatus* resp) {
  return Read(ctx, "GetSchedule", [&]() -> absl::Status {
    ASSIGN_OR_RETURN(*resp, scheduler_->Get(req->name()));
    return absl::OkStatus();
  });
}

grpc::Status ControllerService::SetScheduleState(grpc::ServerContext* ctx,
                                                 const v1::SetScheduleStateRequest* req,
                                                 v1::ScheduleStatus* resp) {
  return Change(ctx, "SetScheduleState",
                fmt::format("{{\"name\":{},\"state\":{}}}", JsonQuote(req->name()),
                            JsonQuote(req->state())),
                [&](const std::string&) -> absl::Status {
                  ASSIGN_OR_RETURN(*resp, scheduler_->SetState(req->name(), req->state()));
                  return absl::OkStatus();
                });
}

grpc::Status ControllerService::DeleteSchedule(grpc::ServerContext* ctx,
                                               const v1::DeleteScheduleRequest* req,
                                               v1::DeleteScheduleResponse*) {
  return Change(ctx, "DeleteSchedule", NameJson(req->name()),
                [&](const std::string&) -> absl::Status { return scheduler_->Delete(req->name()); });
}

grpc::Status ControllerService::AddBlackout(grpc::ServerContext* ctx, const v1::Blackout* req,
                                            v1::AddBlackoutResponse* resp) {
  return Change(ctx, "AddBlackout",
                fmt::format("{{\"name\":{},\"from_unix_ns\":{},\"to_unix_ns\":{}}}",
                            JsonQuote(req->name()), req->from_unix_ns(), req->to_unix_ns()),
                [&](const std::string& who) -> absl::Status {
                  ASSIGN_OR_RETURN(*resp, scheduler_->AddBlackout(*req, who));
                  return absl::OkStatus();
                });
}

grpc::Status ControllerService::ListBlackouts(grpc::ServerContext* ctx,
                                              const v1::ListBlackoutsRequest*,
                                              v1::ListBlackoutsResponse* resp) {
  return Read(ctx, "ListBlackouts", [&]() -> absl::Status {
    ASSIGN_OR_RETURN(auto all, scheduler_->ListBlackouts());
    for (auto& b : all) *resp->add_blackouts() = std::move(b);
    return absl::OkStatus();
  });
}

grpc::Status ControllerService::DeleteBlackout(grpc::ServerContext* ctx,
                                               const v1::DeleteBlackoutRequest* req,
                                               v1::DeleteBlackoutResponse*) {
  return Change(ctx, "DeleteBlackout", NameJson(req->name()),
                [&](const std::string&) -> absl::Status { return scheduler_->DeleteBlackout(req->name()); });
}

}  // namespace faultline::controller

// ---- Game days ----

namespace faultline::controller {

namespace {
std::string ActionJson(const v1::GameDayActionRequest& req) {
  return fmt::format("{{\"id\":{},\"text\":{}}}", JsonQuote(req.id()), JsonQuote(req.text()));
}
}  // namespace

grpc::Status ControllerService::StartGameDay(grpc::ServerContext* ctx,
                                             const v1::StartGameDayRequest* req,
                                             v1::GameDayStatus* resp) {
  return Change(ctx, "StartGameDay",
                fmt::format("{{\"file\":{},\"yaml_sha256\":{},\"files\":{}}}",
                            JsonQuote(req->file()), JsonQuote(auth::Sha256Hex(req->yaml())),
                            req->files_size()),
                [&](const std::string& who) -> absl::Status {
                  ASSIGN_OR_RETURN(*resp, gamedays_->Begin(*req, who));
                  return absl::OkStatus();
                });
}

grpc::Status ControllerService::GetGameDay(grpc::ServerContext* ctx,
                                           const v1::GetGameDayRequest* req,
                                           v1::GameDayStatus* resp) {
  return Read(ctx, "GetGameDay", [&]() -> absl::Status {
    ASSIGN_OR_RETURN(*resp, gamedays_->Get(req->id()));
    return absl::OkStatus();
  });
}

grpc::Status ControllerService::ListGameDays(grpc::ServerContext* ctx,
                                             const v1::ListGameDaysRequest* req,
                                             v1::ListGameDaysResponse* resp) {
  return Read(ctx, "ListGameDays", [&]() -> absl::Status {
    ASSIGN_OR_RETURN(auto all, gamedays_->List(std::min(req->limit(), kMaxListRuns)));
    for (auto& g : all) *resp->add_gamedays() = std::move(g);
    return absl::OkStatus();
  });
}

grpc::Status ControllerService::ApproveGameDay(grpc::ServerContext* ctx,
                                               const v1::GameDayActionRequest* req,
                                               v1::GameDayStatus* resp) {
  return Change(ctx, "ApproveGameDay", ActionJson(*req), [&](const std::string& who) -> absl::Status {
    ASSIGN_OR_RETURN(*resp, gamedays_->Approve(req->id(), who, req->text()));
    return absl::OkStatus();
  });
}

grpc::Status ControllerService::NoteGameDay(grpc::ServerContext* ctx,
                                            const v1::GameDayActionRequest* req,
                                            v1::GameDayStatus* resp) {
  return Change(ctx, "NoteGameDay", ActionJson(*req), [&](const std::string& who) -> absl::Status {
    ASSIGN_OR_RETURN(*resp, gamedays_->Note(req->id(), who, req->text()));
    return absl::OkStatus();
  });
}

grpc::Status ControllerService::AbortGameDay(grpc::ServerContext* ctx,
                                             const v1::GameDayActionRequest* req,
                                             v1::GameDayStatus* resp) {
  return Change(ctx, "AbortGameDay", ActionJson(*req), [&](const std::string& who) -> absl::Status {
    ASSIGN_OR_RETURN(*resp, gamedays_->Abort(req->id(), who, req->text()));
    return absl::OkStatus();
  });
}

}  // namespace faultline::controller
