// One experiment run: resolve targets -> steady state -> leases + inject ->
// observe probes -> revert at `duration` -> steady state again -> result.
#ifndef FAULTLINE_CONTROLLER_RUNNER_H_
#define FAULTLINE_CONTROLLER_RUNNER_H_

#include <grpcpp/channel.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "controller/timeline/clock_offset.h"
#include "controller/store.h"
#include "controller/targets.h"
#include "faultline/v1/agent.grpc.pb.h"
#include "faultline/v1/controller.pb.h"
#include "faultline/v1/experiment.pb.h"

namespace faultline::controller {

// A channel to an agent's advertised address.
using Dialer =
    std::function<absl::StatusOr<std::shared_ptr<grpc::Channel>>(const std::string& address)>;

// One check of a probe run by the controller itself: ok, or the reason it failed.
using ProbeCheck = std::function<std::pair<bool, std::string>(std::chrono::nanoseconds timeout)>;
// Builds the check for a probe `from: controller`.
using LocalProbeFactory = std::function<absl::StatusOr<ProbeCheck>(const v1::ProbeSpec&)>;

struct RunnerOptions {
  Dialer dial;
  LocalProbeFactory local_probe;
  std::chrono::milliseconds lease_ttl{10000};
  // How long to wait for the probes to pass again after the revert.
  std::chrono::milliseconds steady_after_timeout{30000};
  // How long the steady-state check before injection may take beyond its samples.
  std::chrono::milliseconds steady_slack{10000};
  int clock_exchanges = 5;
  std::chrono::milliseconds rpc_timeout{10000};
  uint64_t seed = 0;  // 0: random
};

using ProgressFn = std::function<void(const v1::RunProgress&)>;

// One run of one experiment. Created and executed by the controller service;
// Execute() runs on the caller's thread, Abort() and AgentAddresses() may be
// called from any thread.
class ExperimentRun {
 public:
  ExperimentRun(std::string run_id, v1::Experiment experiment, bool dry_run,
                std::vector<AgentRef> agents, RunnerOptions options, Store* store,
                ProgressFn progress);
  ~ExperimentRun();
  ExperimentRun(const ExperimentRun&) = delete;
  ExperimentRun& operator=(const ExperimentRun&) = delete;

  // Runs the experiment to its end and returns (and stores) the report.
  v1::RunReport Execute();
  // Stops the run: faults are reverted at once and the verdict is `aborted`.
  void Abort();
  const std::string& id() const { return run_id_; }

 private:
  struct ProbeRun;
  struct Injected {
    std::string agent;
    std::string address;
    std::string fault_id;
    bool is_action = false;   // kill: nothing to revert
    int64_t injected_ns = 0;  // controller clock
    int64_t injected_error_ns = 0;
    int64_t end_ns = 0;       // its deadline, controller clock
    int64_t reverted_ns = 0;  // controller clock; 0 = not seen reverted
  };

  std::unique_ptr<v1::Agent::Stub> Stub(const std::string& address);
  absl::StatusOr<timeline::ClockOffset> SyncClock(const AgentRef& agent);
  void StartProbes();
  void StopProbes();
  void ProbeThread(ProbeRun* probe);
  // Waits until `done()` (checked under mu_) or `deadline` (steady clock) or an
  // abort. Reports progress on the way. Returns done().
  bool WaitFor(const std::function<bool()>& done, std::chrono::steady_clock::time_point deadline,
               const std::string& phase);
  void Progress(const std::string& phase, const std::string& message = "");
  void Event(const std::string& kind, int64_t unix_ns, const std::string& agent,
             const std::string& detail, double error_ms = 0);
  absl::Status InjectAll();
  void RevertAll(const std::string& why);
  void LeaseLoop();
  v1::RunReport Finish(const std::string& verdict, const std::string& reason);
  void Save();

  const std::string run_id_;
  const v1::Experiment exp_;
  const bool dry_run_;
  const std::vector<AgentRef> all_agents_;
  const RunnerOptions options_;
  Store* const store_;
  const ProgressFn progress_;
  const std::chrono::steady_clock::time_point started_mono_;

  std::map<std::string, std::vector<AgentRef>> targets_;
  std::map<std::string, timeline::ClockOffset> clocks_;  // by agent name
  std::vector<std::unique_ptr<ProbeRun>> probes_;
  std::vector<Injected> injected_;
  std::vector<std::string> lease_addresses_;  // agents holding the run's lease
  int64_t injected_ns_ = 0;
  int64_t injected_error_ns_ = 0;
  v1::RunReport report_;

  std::mutex mu_;  // guards the probes' samples, aborted_, lease_stop_
  std::condition_variable cv_;
  bool aborted_ = false;
  bool lease_stop_ = false;
  std::thread lease_thread_;
};

// A run id: time-ordered and unique ("20261125-203012-5f3a").
std::string NewRunId();

}  // namespace faultline::controller

#endif  // FAULTLINE_CONTROLLER_RUNNER_H_
