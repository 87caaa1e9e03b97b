// One experiment run: resolve targets -> steady state -> leases + inject ->
// observe probes -> revert at `duration` -> steady state again -> result.
#ifndef FAULTLINE_CONTROLLER_RUNNER_H_
#define FAULTLINE_CONTROLLER_RUNNER_H_

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"
#include "controller/agent_client.h"
#include "controller/blast_radius.h"
#include "controller/data_workloads.h"
#include "controller/fan_out.h"
#include "controller/stop_conditions.h"
#include "controller/store.h"
#include "controller/targets.h"
#include "controller/timeline/clock_offset.h"
#include "controller/timeline/result.h"
#include "faultline/v1/agent.pb.h"
#include "faultline/v1/controller.pb.h"
#include "faultline/v1/experiment.pb.h"
#include "probes/exec_policy.h"

namespace faultline::controller {

struct RunnerOptions {
  // Dials agents; the controller service makes its AgentClients with it.
  Dialer dial;
  std::chrono::milliseconds lease_ttl{10000};
  // How long to wait for the probes to pass again after the revert.
  std::chrono::milliseconds steady_after_timeout{30000};
  // How long the steady-state check before injection may take beyond its samples.
  std::chrono::milliseconds steady_slack{10000};
  int clock_exchanges = 5;
  std::chrono::milliseconds rpc_timeout{10000};
  uint64_t seed = 0;  // 0: random
  // How many agents one phase (clock sync, prepare, commit, revert, lease
  // renewal) has calls in flight to at once; 0 = all of them.
  size_t max_in_flight = 0;
  // The controller's blast-radius caps and the agents its runs hold; null: only
  // the experiment's own limits apply.
  FleetGuard* fleet = nullptr;
  // What `from: controller` exec probes may run, and as whom (--exec-policy);
  // the default allows none.
  ExecPolicy exec_policy;
};

using ProgressFn = std::function<void(const v1::RunProgress&)>;

// One run of one experiment, in phases: Resolve -> SyncClocks -> AwaitSteady
// (probes start) -> Inject (leases; or only a dry run) -> Observe -> Revert ->
// AwaitRecovery -> Score. From the steady state to the end of Observe the
// experiment's stop conditions (stop_when) are checked against every probe
// sample and every lease renewal; one firing ends Observe at once, everything
// is reverted and the verdict is `stopped`. Created and executed by the controller service, which
// owns it (and the AgentClients it uses, which must outlive it). Execute() runs
// on the caller's thread; Abort() may be called from any thread. Probe threads
// and the lease thread are the run's own and are joined before it ends; they
// share the state guarded by mu_ and never hold it across an RPC. Each phase
// talks to all its agents at once (ForEachAsync, options.max_in_flight:
// asynchronous calls started from the phase's thread); their completions fill
// their own result slots on gRPC threads, and the phase's thread turns the
// results into timeline events and report entries, in a fixed order, once
// every call has ended.
class ExperimentRun {
 public:
  ExperimentRun(std::string run_id, v1::Experiment experiment, bool dry_run,
                std::vector<AgentRef> agents, RunnerOptions options, AgentClients* clients,
                Store* store, ProgressFn progress);
  ~ExperimentRun();
  ExperimentRun(const ExperimentRun&) = delete;
  ExperimentRun& operator=(const ExperimentRun&) = delete;

  // Runs the experiment to its end and returns (and stores) the report.
  v1::RunReport Execute();
  // Stops the run: faults are reverted at once and the verdict is `aborted`;
  // `why` completes the reason ("aborted by request; faults reverted").
  void Abort(const std::string& why = "by request");
  // A scheduled run: its schedule and tick, into the report (before Execute).
  void SetSchedule(const std::string& schedule, int64_t scheduled_unix_ns);
  // A game day's run: the game day's id, into the report (before Execute).
  void SetGameDay(const std::string& gameday) { report_.set_gameday(gameday); }
  const std::string& id() const { return run_id_; }
  // Faults injected and not yet reverted, by kind (for metrics; any thread).
  std::map<std::string, int> ActiveFaultKinds();

 private:
  // How a run ends early: its verdict and the reason.
  struct End {
    std::string verdict;
    std::string reason;
  };
  // The end of an aborted run, with Abort's `why`.
  End AbortedEnd();
  struct ProbeRun;
  // The samples of one probe so far (index as in probes_).
  struct ProbeState {
    std::vector<timeline::ProbeObservation> samples;
    int64_t failures = 0;
    std::string last_error;
    // Set when the stream failed with PERMISSION_DENIED, INVALID_ARGUMENT or
    // FAILED_PRECONDITION before its first sample: the agent (or the
    // controller's exec policy) refused the probe; no retry can succeed.
    std::string refused;
  };
  // One agent fault of the run: faults[index] as sent to one agent.
  struct Part {
    int index = 0;
    std::string on;  // the target, or the agent's side of a zone outage
    v1::FaultSpec spec;
    AgentRef agent;
    bool affected = true;  // taken out by it (not a zone outage's far side)
  };
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
  // What one part's Inject call came back with (filled by a fan-out worker).
  struct InjectResult {
    absl::Status status;
    v1::InjectResponse resp;
    std::chrono::nanoseconds duration{0};
    int64_t answered_ns = 0;  // controller clock, when the answer came
  };
  // What one agent's RevertAll call came back with (filled by a fan-out worker).
  struct RevertResult {
    int64_t asked_ns = 0;     // controller clock
    int64_t answered_ns = 0;  // controller clock
    absl::StatusOr<v1::RevertAllResponse> resp;
  };

  // A restore drill (controller/drill.h): Begin -> Resolve -> its steps.
  v1::RunReport ExecuteDrill();
  // The phases, in order. Each returns how the run ends, or nothing to go on.
  void Begin();
  std::optional<End> Resolve();
  std::optional<End> SyncClocks();
  std::optional<End> AwaitSteady();
  std::optional<End> Inject(bool dry_run);
  void Observe();  // until the duration ends, an abort or a stop condition
  bool Revert();  // returns whether the run was aborted
  bool AwaitRecovery(bool aborted);
  // Stops the data writers; reads back unless the run was aborted.
  void ReadData(bool aborted);
  v1::RunReport Score(bool aborted);

  // Helpers of the phases.
  absl::Status InjectFaults(bool dry_run);
  // The agent faults of faults[index]: one per agent its target picked, or a
  // zone outage's parts.
  absl::StatusOr<std::vector<Part>> PartsOf(int index);
  // The experiment's limits and the controller's caps; holds the agents.
  absl::Status Admit();
  // Starts one part's Inject (ForEachAsync): touches only `result`, the
  // clients and the run's constant state, and calls `done` once `result` is
  // filled (from a gRPC thread, or at once when nothing was sent).
  void InjectOne(const Part& part, bool dry_run, InjectResult* result, AsyncDone done);
  // The error of a failed part, naming its fault and agent.
  absl::Status PartError(const Part& part, bool dry_run, const absl::Status& st) const;
  v1::PlannedFault* AddPlanned(const Part& part);
  void Record(const Part& part, const InjectResult& result);
  absl::Status CommitAll(std::vector<InjectResult>* results);
  // Adds every agent of `agents` to the leased agents (before any Inject: a
  // timed-out Inject may still have applied), saves the run once and starts the
  // lease loop. False if the run was aborted.
  bool Lease(const std::vector<AgentRef>& agents);
  void RevertAll(const std::string& why);
  // Starts one agent's RevertAll (ForEachAsync): the RPC only; calls `done`
  // once `result` is filled.
  void RevertOn(const AgentRef& agent, RevertResult* result, AsyncDone done);
  // The events of one agent's RevertAll answer; on the Execute() thread.
  void RecordRevert(const AgentRef& agent, const RevertResult& result, const std::string& why);
  void LeaseLoop();
  std::optional<End> StartProbes();
  void StopProbes();
  void ProbeThread(size_t index);
  // Every probe sample, from an agent's RunProbe stream or the controller's own
  // probe loop, goes through here: onto the controller's clock through `clock`.
  void AddSample(size_t index, const v1::ProbeSample& sample, const timeline::ClockOffset& clock);
  std::optional<End> SteadyVerdict(int need);
  // The first probe with a failure among its first `need` samples, or -1.
  int FirstFailing(int need) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  bool AllHave(int need) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // The first probe whose stream was refused, or -1.
  int FirstRefused() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Whether `st` refused probe `index` before its first sample (records it).
  bool RecordRefusal(size_t index, const absl::Status& st) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Waits until `done()` (checked under mu_) or `deadline` (steady clock) or an
  // abort. Reports progress on the way. Returns done().
  bool WaitFor(const std::function<bool()>& done, std::chrono::steady_clock::time_point deadline,
               const std::string& phase);
  bool aborted();
  void Progress(const std::string& phase, const std::string& message = "");
  void Event(const std::string& kind, int64_t unix_ns, const std::string& agent,
             const std::string& detail, double error_ms = 0);
  void SetFigures(const timeline::RunResult& fig, int need);
  v1::RunReport Finish(const End& end);
  void Save();
  // report_.probe_strips from every probe's samples (at the end).
  void FillProbeStrips();

  const std::string run_id_;
  const v1::Experiment exp_;
  const bool dry_run_;
  const std::vector<AgentRef> all_agents_;
  const RunnerOptions options_;
  AgentClients* const clients_;
  Store* const store_;
  const ProgressFn progress_;
  const std::chrono::steady_clock::time_point started_mono_;

  // Only the Execute() thread uses these.
  std::map<std::string, std::vector<AgentRef>> targets_;
  std::vector<Part> parts_;  // every agent fault of the run, in order
  bool admitted_ = false;    // holds its agents in options_.fleet
  std::map<std::string, timeline::ClockOffset> clocks_;  // by agent name; read-only once synced
  std::vector<std::unique_ptr<ProbeRun>> probes_;        // fixed once the probes start
  std::vector<Injected> injected_;
  int64_t max_interval_ns_ = 0;
  std::chrono::nanoseconds max_timeout_{0};
  std::chrono::steady_clock::time_point inject_mono_;
  int64_t injected_ns_ = 0;
  // How long the prepare calls took to all come back: the commit's lead covers it.
  std::chrono::steady_clock::duration prepare_fan_out_{0};
  int64_t injected_error_ns_ = 0;
  v1::RunReport report_;
  std::thread lease_thread_;
  std::optional<StopTrigger> stopped_;  // the stop condition that ended Observe
  std::unique_ptr<DataWorkloads> data_;  // writers from the steady state; null: none
  bool data_read_ = false;               // report_.data is filled

  // Abort() cancels a drill's running step (thread-safe on its own).
  CallCanceller drill_cancel_;

  absl::Mutex mu_;
  std::vector<ProbeState> probe_states_ ABSL_GUARDED_BY(mu_);  // index as in probes_
  bool probes_stop_ ABSL_GUARDED_BY(mu_) = false;
  bool aborted_ ABSL_GUARDED_BY(mu_) = false;
  std::string abort_why_ ABSL_GUARDED_BY(mu_) = "by request";
  std::map<std::string, int> active_kinds_ ABSL_GUARDED_BY(mu_);  // from inject to the revert
  bool lease_stop_ ABSL_GUARDED_BY(mu_) = false;
  std::vector<AgentRef> leased_ ABSL_GUARDED_BY(mu_);  // agents holding the run's lease
  // Fed by AddSample and the lease loop; armed from the steady state to Revert.
  StopConditions stops_ ABSL_GUARDED_BY(mu_);
  // The latest RenewLease result of each leased agent, by name.
  std::map<std::string, absl::Status> renewals_ ABSL_GUARDED_BY(mu_);
};

// A run id: time-ordered and unique ("20261125-203012-5f3a").
std::string NewRunId();

}  // namespace faultline::controller

#endif  // FAULTLINE_CONTROLLER_RUNNER_H_
