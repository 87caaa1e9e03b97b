// A controller service on an ephemeral loopback port with in-process fake
// agents, and the scripted experiment the service tests run (controller_test.cc,
// schedule_test.cc).
#ifndef FAULTLINE_TESTS_UNIT_CONTROLLER_TEST_CONTROLLER_H_
#define FAULTLINE_TESTS_UNIT_CONTROLLER_TEST_CONTROLLER_H_

#include <fmt/format.h>
#include <grpcpp/create_channel.h>
#include <grpcpp/server_builder.h>
#include <gtest/gtest.h>
#include <httplib.h>

#include <condition_variable>
#include <memory>
#include <mutex>
#include <thread>
#include <string>
#include <vector>

#include "controller/controller_service.h"
#include "metrics/http_endpoint.h"
#include "web/dashboard.h"
#include "tests/unit/controller/fake_agent.h"
#include "tests/unit/metrics/exposition.h"

namespace faultline::controller {

using ::faultline::testing::FakeAgent;
using ::faultline::testing::ScriptedService;

inline constexpr int64_t kSecond = 1'000'000'000;

// A controller service on an ephemeral loopback port.
class TestController {
 public:
  explicit TestController(const std::string& db = ":memory:",
                          std::chrono::milliseconds lease_ttl = std::chrono::milliseconds(300),
                          size_t max_agents = 10000) {
    store_ = *Store::Open(db);
    ControllerOptions o;
    o.max_agents = max_agents;
    o.heartbeat_interval = std::chrono::milliseconds(50);
    o.unhealthy_after = std::chrono::milliseconds(300);
    o.fleet.max_fleet_percent = 0;  // these fleets are one or two agents
    o.runner.lease_ttl = lease_ttl;
    o.runner.steady_after_timeout = std::chrono::milliseconds(3000);
    o.runner.steady_slack = std::chrono::milliseconds(2000);
    // The controller's own exec probes (ControllerProbe* tests): these two only.
    v1::ExecPolicy exec;
    exec.set_user("nobody");
    exec.add_allow()->add_argv("/bin/true");
    exec.add_allow()->add_argv("/bin/false");
    o.runner.exec_policy = *ExecPolicy::FromProto(exec);
    auth::AuthorizerOptions auth_options;
    auth_options.insecure = true;  // plain loopback gRPC: every caller passes
    authorizer_ = std::make_unique<auth::Authorizer>(auth_options);
    o.authorizer = authorizer_.get();
    o.runner.dial = [](const std::string& address)
        -> absl::StatusOr<std::shared_ptr<grpc::Channel>> {
      return grpc::CreateChannel(address, grpc::InsecureChannelCredentials());
    };
    o.metrics = &metrics_;
    service_ = std::make_unique<ControllerService>(store_.get(), o);
    std::vector<metrics::HttpRoute> routes = web::DashboardRoutes(service_.get());
    routes.push_back(metrics::MetricsRoute(&registry_));
    http_ = *metrics::HttpEndpoint::Start("--http", "127.0.0.1:0", std::move(routes));
    EXPECT_TRUE(service_->Recover().ok());
    grpc::ServerBuilder b;
    int port = 0;
    b.AddListeningPort("127.0.0.1:0", grpc::InsecureServerCredentials(), &port);
    b.RegisterService(service_.get());
    server_ = b.BuildAndStart();
    address_ = "127.0.0.1:" + std::to_string(port);
    stub_ = v1::Controller::NewStub(
        grpc::CreateChannel(address_, grpc::InsecureChannelCredentials()));
  }
  ~TestController() {
    {
      std::lock_guard<std::mutex> lock(beat_mu_);
      beat_stop_ = true;
    }
    beat_cv_.notify_all();
    if (beats_.joinable()) beats_.join();
    server_->Shutdown(std::chrono::system_clock::now());
    http_.reset();  // scrapes read the service
  }

  // GET /metrics over HTTP, parsed strictly.
  testing::Exposition Scrape() {
    httplib::Client cli("http://" + http_->address());
    cli.set_read_timeout(5, 0);
    auto res = cli.Get("/metrics");
    EXPECT_TRUE(res && res->status == 200);
    auto parsed = testing::ParseExposition(res ? res->body : "");
    EXPECT_TRUE(parsed.ok()) << parsed.status();
    return parsed.ok() ? *parsed : testing::Exposition();
  }

  void Register(FakeAgent& agent) {
    grpc::ClientContext ctx;
    v1::RegisterRequest req;
    req.set_address(agent.address());
    *req.mutable_info() = agent.MakeInfo();
    v1::RegisterResponse resp;
    ASSERT_TRUE(stub_->Register(&ctx, req, &resp).ok());
  }

  // Registers `agent` and heartbeats for it every 100 ms (fake agents send
  // none; an agent is unhealthy 300 ms after its last) until the controller
  // goes: for runs that start later (schedules, game days).
  void RegisterAndBeat(FakeAgent& agent) {
    Register(agent);
    v1::RegisterRequest req;
    req.set_address(agent.address());
    *req.mutable_info() = agent.MakeInfo();
    std::lock_guard<std::mutex> lock(beat_mu_);
    beating_.push_back(req);
    if (beats_.joinable()) return;
    beats_ = std::thread([this] {
      std::unique_lock<std::mutex> lock(beat_mu_);
      while (!beat_cv_.wait_for(lock, std::chrono::milliseconds(100), [this] { return beat_stop_; })) {
        for (const auto& r : beating_) {
          grpc::ClientContext ctx;
          ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(2));
          v1::RegisterResponse resp;
          (void)stub_->Heartbeat(&ctx, r, &resp);
        }
      }
    });
  }

  // Runs `yaml`; returns the report and the progress phases seen.
  v1::RunReport Run(const std::string& yaml, bool dry_run = false,
                    std::vector<std::string>* phases = nullptr) {
    grpc::ClientContext ctx;
    v1::RunExperimentRequest req;
    req.set_yaml(yaml);
    req.set_dry_run(dry_run);
    auto reader = stub_->RunExperiment(&ctx, req);
    v1::RunUpdate u;
    v1::RunReport report;
    while (reader->Read(&u)) {
      if (u.has_report()) report = u.report();
      if (u.has_progress() && phases &&
          (phases->empty() || phases->back() != u.progress().phase())) {
        phases->push_back(u.progress().phase());
      }
    }
    grpc::Status st = reader->Finish();
    EXPECT_TRUE(st.ok()) << st.error_message();
    return report;
  }

  v1::Controller::Stub* stub() { return stub_.get(); }
  Store* store() { return store_.get(); }
  ControllerService* service() { return service_.get(); }
  // The --http listener's address (the dashboard and /metrics).
  const std::string& http_address() const { return http_->address(); }
  const std::string& address() const { return address_; }

 private:
  std::unique_ptr<Store> store_;
  metrics::Registry registry_;
  ControllerMetrics metrics_{&registry_};
  std::unique_ptr<auth::Authorizer> authorizer_;
  std::unique_ptr<ControllerService> service_;
  std::unique_ptr<grpc::Server> server_;
  std::string address_;
  std::unique_ptr<v1::Controller::Stub> stub_;
  std::unique_ptr<metrics::HttpEndpoint> http_;
  std::mutex beat_mu_;
  std::condition_variable beat_cv_;
  bool beat_stop_ = false;
  std::vector<v1::RegisterRequest> beating_;
  std::thread beats_;
};

inline std::string Experiment(const std::string& interval, const std::string& rto,
                       const std::string& duration, int recovered_after = 3) {
  return fmt::format(R"(
name: scripted-outage
targets:
  victim: {{labels: {{role: db}}, count: 1}}
  observer: {{labels: {{zone: b}}, count: 1}}
probes:
  - name: svc
    from: observer
    tcp: {{address: "127.0.0.1:9"}}
    interval: {}
faults:
  - on: victim
    pause: {{process: {{name: victim}}}}
objectives: {{rto: {}, recovered_after: {}}}
duration: {}
)",
                     interval, rto, recovered_after, duration);
}

struct Fleet {
  ScriptedService service;
  // Skewed clocks: the mapping onto the controller's clock must undo them.
  FakeAgent victim{"db-1", {{"role", "db"}, {"zone", "a"}}, 3 * kSecond, &service};
  FakeAgent observer{"obs-1", {{"zone", "b"}}, -2 * kSecond, &service};
};


}  // namespace faultline::controller

#endif  // FAULTLINE_TESTS_UNIT_CONTROLLER_TEST_CONTROLLER_H_
