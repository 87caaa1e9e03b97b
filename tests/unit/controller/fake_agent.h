// An in-process faultline.v1.Agent for controller tests: scripted outages of a
// pretend service, skewed clocks, lease bookkeeping. Listens on 127.0.0.1.
#ifndef FAULTLINE_TESTS_UNIT_CONTROLLER_FAKE_AGENT_H_
#define FAULTLINE_TESTS_UNIT_CONTROLLER_FAKE_AGENT_H_

#include <fmt/format.h>
#include <grpcpp/server.h>
#include <grpcpp/server_builder.h>

#include <atomic>
#include <climits>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

#include "common/clock.h"
#include "common/units.h"
#include "spec/fault_spec.h"
#include "faultline/v1/agent.grpc.pb.h"

namespace faultline::testing {

// The service the probes look at. An Inject anywhere starts its outage:
// `delay` after the injection it stops answering for `length` (or, with
// until_revert, until the fault is reverted). Thread-safe.
struct ScriptedService {
  std::atomic<int64_t> outage_delay_ns{0};
  std::atomic<int64_t> outage_length_ns{700'000'000};
  std::atomic<bool> until_revert{false};
  std::atomic<bool> broken{false};  // fails every probe (not steady)
  std::atomic<int64_t> start_ns{LLONG_MAX};
  std::atomic<int64_t> end_ns{LLONG_MAX};

  void Injected(int64_t now) {
    start_ns = now + outage_delay_ns;
    end_ns = until_revert ? LLONG_MAX : now + outage_delay_ns + outage_length_ns;
  }
  void Reverted(int64_t now) {
    if (until_revert && end_ns == LLONG_MAX && start_ns != LLONG_MAX) end_ns = now;
  }
  bool Ok(int64_t t) const { return !broken && !(t >= start_ns && t < end_ns); }
};

class FakeAgent final : public v1::Agent::Service {
 public:
  FakeAgent(std::string name, std::map<std::string, std::string> labels, int64_t skew_ns,
            ScriptedService* service)
      : name_(std::move(name)), labels_(std::move(labels)), skew_ns_(skew_ns),
        service_(service) {
    grpc::ServerBuilder b;
    int port = 0;
    b.AddListeningPort("127.0.0.1:0", grpc::InsecureServerCredentials(), &port);
    b.RegisterService(this);
    server_ = b.BuildAndStart();
    address_ = "127.0.0.1:" + std::to_string(port);
  }
  ~FakeAgent() override { Stop(); }
  void Stop() {
    if (server_) {
      server_->Shutdown(std::chrono::system_clock::now() + std::chrono::milliseconds(200));
      server_.reset();
    }
  }

  const std::string& address() const { return address_; }
  const std::string& name() const { return name_; }

  v1::InfoResponse MakeInfo() {
    v1::InfoResponse r;
    r.set_name(name_);
    for (const auto& [k, v] : labels_) (*r.mutable_labels())[k] = v;
    r.set_version("fake");
    r.add_capabilities("pause");
    r.add_capabilities("kill");
    r.mutable_clock()->set_realtime_ns(NowRealtimeNs() + skew_ns_);
    r.mutable_clock()->set_monotonic_ns(NowMonotonicNs());
    return r;
  }

  grpc::Status Info(grpc::ServerContext*, const v1::InfoRequest*, v1::InfoResponse* r) override {
    Delay(info_delay_ms);
    if (crowd != nullptr) {  // slower the more Info calls are answered at once
      const int at_once = ++*crowd;
      std::this_thread::sleep_for(std::chrono::microseconds(crowd_delay_us * at_once));
      --*crowd;
    }
    *r = MakeInfo();
    return grpc::Status::OK;
  }

  grpc::Status Inject(grpc::ServerContext*, const v1::InjectRequest* req,
                      v1::InjectResponse* resp) override {
    Delay(inject_delay_ms);
    if (!reject_.empty()) return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, reject_);
    if (req->dry_run()) {
      ++dry_runs;
      resp->add_changes("would " + spec::KindName(req->spec()) + " on " + name_);
      return grpc::Status::OK;
    }
    std::lock_guard<std::mutex> lock(mu_);
    v1::FaultRecord f;
    f.set_id(fmt::format("{}-f{}", name_, ++injects));
    *f.mutable_spec() = req->spec();
    f.set_target("pretend pids 42");
    f.set_lease_id(req->lease_id());
    f.set_lease_ttl_ms(req->lease_ttl_ms());
    last_lease_ = req->lease_id();
    last_duration_ = req->spec().duration();
    if (req->prepare_only()) {  // applied by Commit, like the real agent
      f.set_state(v1::FAULT_STATE_PREPARED);
      prepared_[f.id()] = f;
    } else {
      ApplyLocked(&f);
    }
    *resp->mutable_fault() = f;
    return grpc::Status::OK;
  }

  grpc::Status Commit(grpc::ServerContext*, const v1::CommitRequest* req,
                      v1::CommitResponse* resp) override {
    ++commits;
    // The start instant is on this fake's (skewed) clock.
    const int64_t wait_ns = req->start_at_unix_ns() - (NowRealtimeNs() + skew_ns_);
    if (wait_ns > 0) std::this_thread::sleep_for(std::chrono::nanoseconds(wait_ns));
    std::lock_guard<std::mutex> lock(mu_);
    for (const auto& id : req->ids()) {
      auto it = prepared_.find(id);
      if (it == prepared_.end()) {
        return grpc::Status(grpc::StatusCode::NOT_FOUND, "no prepared fault " + id);
      }
      v1::FaultRecord f = it->second;
      prepared_.erase(it);
      ApplyLocked(&f);
      *resp->add_faults() = f;
    }
    return grpc::Status::OK;
  }

  grpc::Status RevertAll(grpc::ServerContext*, const v1::RevertAllRequest* req,
                         v1::RevertAllResponse* resp) override {
    Delay(revert_delay_ms);
    const int64_t now = NowRealtimeNs();
    std::lock_guard<std::mutex> lock(mu_);
    ++revert_alls;
    revert_all_leases_.push_back(req->lease_id());
    for (auto it = prepared_.begin(); it != prepared_.end();) {
      const bool ours = req->lease_id().empty() || it->second.lease_id() == req->lease_id();
      it = ours ? prepared_.erase(it) : std::next(it);
    }
    for (auto it = faults_.begin(); it != faults_.end();) {
      if (req->lease_id().empty() || it->second.lease_id() == req->lease_id()) {
        it->second.set_state(v1::FAULT_STATE_REVERTED);
        it->second.set_reverted_unix_ns(now + skew_ns_);
        it->second.set_revert_reason("request");
        *resp->add_faults() = it->second;
        it = faults_.erase(it);
      } else {
        ++it;
      }
    }
    if (service_) service_->Reverted(now);
    return grpc::Status::OK;
  }

  grpc::Status ListFaults(grpc::ServerContext*, const v1::ListFaultsRequest*,
                          v1::ListFaultsResponse* resp) override {
    std::lock_guard<std::mutex> lock(mu_);
    for (const auto& [id, f] : faults_) *resp->add_faults() = f;
    return grpc::Status::OK;
  }

  grpc::Status RenewLease(grpc::ServerContext*, const v1::RenewLeaseRequest*,
                          v1::RenewLeaseResponse*) override {
    ++renewals;
    return grpc::Status::OK;
  }

  grpc::Status RunProbe(grpc::ServerContext* ctx, const v1::RunProbeRequest* req,
                        grpc::ServerWriter<v1::ProbeSample>* writer) override {
    ++probe_streams;
    if (refuse_probes) {
      return grpc::Status(grpc::StatusCode::PERMISSION_DENIED,
                          "exec probe `/bin/sh` refused: not allowed by the exec policy");
    }
    auto interval = ParseDuration("interval", req->probe().interval());
    const auto step = interval.ok() ? *interval : std::chrono::seconds(1);
    auto next = std::chrono::steady_clock::now();
    for (int64_t seq = 0; !ctx->IsCancelled(); ++seq) {
      const int64_t t = NowRealtimeNs();
      v1::ProbeSample s;
      s.set_seq(seq);
      s.set_ok(service_ == nullptr || service_->Ok(t));
      if (!s.ok()) s.set_error("connection refused (scripted)");
      s.set_start_unix_ns(t + skew_ns_);
      s.set_start_mono_ns(NowMonotonicNs());
      if (!writer->Write(s)) break;
      next += step;
      std::this_thread::sleep_until(next);
    }
    return grpc::Status::OK;
  }

  int ActiveFaults() {
    std::lock_guard<std::mutex> lock(mu_);
    return static_cast<int>(faults_.size());
  }
  std::vector<std::string> RevertAllLeases() {
    std::lock_guard<std::mutex> lock(mu_);
    return revert_all_leases_;
  }
  std::string last_lease() {
    std::lock_guard<std::mutex> lock(mu_);
    return last_lease_;
  }
  std::string last_duration() {
    std::lock_guard<std::mutex> lock(mu_);
    return last_duration_;
  }
  void Reject(const std::string& message) { reject_ = message; }

  std::atomic<int> injects{0};
  std::atomic<int> commits{0};
  std::atomic<int> dry_runs{0};
  std::atomic<int> revert_alls{0};
  std::atomic<int> renewals{0};
  std::atomic<int> probe_streams{0};
  std::atomic<bool> refuse_probes{false};  // refuses every probe stream (its policy)
  // How long Info, Inject (dry runs too) and RevertAll take before they answer
  // (a slow agent, for the fan-out tests); 0 = at once.
  std::atomic<int64_t> info_delay_ms{0};
  std::atomic<int64_t> inject_delay_ms{0};
  std::atomic<int64_t> revert_delay_ms{0};
  // Shared by a fleet (set before the first call): each Info also takes
  // crowd_delay_us for every Info call in progress on any agent sharing it,
  // like agents and a controller on too few cores.
  std::atomic<int>* crowd = nullptr;
  int64_t crowd_delay_us = 0;

 private:
  // Marks `f` applied now and keeps it.
  void ApplyLocked(v1::FaultRecord* f) {
    const int64_t now = NowRealtimeNs();
    f->set_state(v1::FAULT_STATE_ACTIVE);
    f->set_injected_unix_ns(now + skew_ns_);
    faults_[f->id()] = *f;
    if (service_) service_->Injected(now);
  }

  static void Delay(const std::atomic<int64_t>& ms) {
    if (ms > 0) std::this_thread::sleep_for(std::chrono::milliseconds(ms.load()));
  }

  const std::string name_;
  const std::map<std::string, std::string> labels_;
  const int64_t skew_ns_;
  ScriptedService* const service_;
  std::string reject_;
  std::mutex mu_;
  std::map<std::string, v1::FaultRecord> faults_;
  std::map<std::string, v1::FaultRecord> prepared_;
  std::vector<std::string> revert_all_leases_;
  std::string last_lease_;
  std::string last_duration_;
  std::string address_;
  std::unique_ptr<grpc::Server> server_;
};

}  // namespace faultline::testing

#endif  // FAULTLINE_TESTS_UNIT_CONTROLLER_FAKE_AGENT_H_
