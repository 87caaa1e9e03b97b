// Restore drills (docs/experiments.md, "Restore drills"): an experiment with a
// `drill:` runs backup -> restore -> verify, each one command on the first
// agent of its target (the agent's RunStep, allowed by its exec policy), and
// measures the restore's RTO (restore + verify) and, with `marker:`, the age
// of the restored data (restore end - the newest marker row found in the
// restored copy).
#ifndef FAULTLINE_CONTROLLER_DRILL_H_
#define FAULTLINE_CONTROLLER_DRILL_H_

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "controller/agent_client.h"
#include "controller/drill_spec.h"
#include "controller/targets.h"
#include "faultline/v1/controller.pb.h"
#include "faultline/v1/experiment.pb.h"

namespace faultline::controller {

// The marker writer: stamps a row (run, seq, its wall-clock time on the
// controller) into `faultline_markers` (created when missing) every period,
// through libpq's non-blocking calls (workload/postgres_driver.h), on a
// thread of its own from Start() to Stop(). Owned by a DrillRun; Start, Stop,
// NewestRestored and Cleanup from the owner's thread; written() and error()
// from any thread.
class MarkerWriter {
 public:
  MarkerWriter(v1::DrillMarker spec, std::string run_id);
  ~MarkerWriter();
  MarkerWriter(const MarkerWriter&) = delete;
  MarkerWriter& operator=(const MarkerWriter&) = delete;

  // Creates the table, writes the first marker (so one exists before the
  // backup starts) and starts the thread.
  absl::Status Start();
  // Stops the thread; the last marker sent is answered or abandoned first.
  void Stop();
  // The newest of this run's markers in the restored copy (its stamp, ns).
  absl::StatusOr<int64_t> NewestRestored();
  // Removes this run's marker rows from both databases.
  absl::Status Cleanup();

  int64_t written() const;
  std::string error() const;  // the last failed write's error, "" if none

 private:
  void Loop();
  // One INSERT on the writer's connection (made when missing); counts it.
  absl::Status WriteOne();

  const v1::DrillMarker spec_;
  const std::string run_id_;
  const std::chrono::nanoseconds every_;
  std::thread thread_;
  int64_t seq_ = 0;  // the writer's thread only (and Start, before it)
  struct Conn;
  std::unique_ptr<Conn> conn_;  // the writer's connection; its thread only

  mutable absl::Mutex mu_;
  bool stop_ ABSL_GUARDED_BY(mu_) = false;
  int64_t written_ ABSL_GUARDED_BY(mu_) = 0;
  std::string error_ ABSL_GUARDED_BY(mu_);
};

// How a drill ended.
struct DrillOutcome {
  v1::DrillResult result;
  std::string verdict;  // pass | fail | aborted | error
  std::string reason;
};

// What a drill needs from its run: resolved targets, the agents' clients, a
// canceller the run's Abort() cancels, and where events go.
struct DrillContext {
  std::string run_id;
  const std::map<std::string, std::vector<AgentRef>>* targets = nullptr;
  AgentClients* clients = nullptr;
  CallCanceller* cancel = nullptr;
  // A timeline event: kind, controller realtime ns, agent, detail.
  std::function<void(const std::string&, int64_t, const std::string&, const std::string&)> event;
  std::function<void(const std::string&)> progress;  // a message in phase "drill"
};

// One drill of one run: its steps in order and its marker. Created and run
// by the ExperimentRun's Execute() thread, which owns it; not thread-safe
// (only the context's canceller is touched from other threads).
class DrillRun {
 public:
  DrillRun(const v1::Experiment& exp, DrillContext context);
  DrillOutcome Run();

 private:
  // backup -> restore -> verify; after a failed one, the rest are skipped.
  void RunSteps();
  // Stops the marker writer and removes its rows (unless keep).
  void FinishMarker();
  // Runs `step` ("backup", ...) on its target's first agent.
  v1::DrillStepResult RunOne(const std::string& name, const v1::DrillStep& step);
  void Call(const std::string& name, const v1::DrillStep& step, v1::DrillStepResult* out);
  // The restored data's age from the marker (after a successful restore).
  void MeasureRpo(const v1::DrillStepResult& restore);
  // restore_rto_ms and its error, when both restore and verify ran.
  void SetRto(v1::DrillResult* result) const;
  // The verdict and its reason from out->result.
  void Score(DrillOutcome* out) const;

  const v1::Experiment& exp_;
  const DrillContext ctx_;
  std::unique_ptr<MarkerWriter> marker_;
  v1::DrillResult result_;
};

}  // namespace faultline::controller

#endif  // FAULTLINE_CONTROLLER_DRILL_H_
