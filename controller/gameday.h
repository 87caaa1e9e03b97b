// Game days (docs/gamedays.md): a runbook of steps (note, gate, experiment,
// drill, wait, check, parallel) that the controller runs one after another,
// with people approving its gates, everything on one timeline that survives a
// controller restart.
#ifndef FAULTLINE_CONTROLLER_GAMEDAY_H_
#define FAULTLINE_CONTROLLER_GAMEDAY_H_

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "controller/gameday_spec.h"
#include "controller/store.h"
#include "faultline/v1/controller.pb.h"
#include "probes/exec_policy.h"

namespace faultline::controller {

// A game day as it stands, from its plan and its events (steps, current step,
// gate, result). Runs are not filled in.
v1::GameDayStatus GameDayStatusOf(const StoredGameDay& gd);

// What game days need of whoever owns the runs (the controller service).
class GameDayRuns {
 public:
  virtual ~GameDayRuns() = default;
  // Runs `exp` as `run_id` on the calling thread to its end and returns the
  // report (verdict error when it could not start). Once the run can be
  // aborted, `cancelled` is asked: true aborts it at once (an abort that
  // came before the run was registered).
  virtual v1::RunReport RunForGameDay(const std::string& run_id, const v1::Experiment& exp,
                                      const std::string& gameday,
                                      const std::function<bool()>& cancelled) = 0;
  // Aborts that run if it is in flight (faults reverted at once).
  virtual void AbortRun(const std::string& run_id, const std::string& why) = 0;
};

// The controller's game days. Owned by the controller service, which starts
// it after recovery (running game days resume where they stood: a gate keeps
// its deadline, a wait its end, an experiment that was in flight is marked
// interrupted) and stops it before its runs are aborted at shutdown. Each
// running game day has a thread of its own; every method may be called from
// any thread and none holds mu_ across a store call or a run.
class GameDays {
 public:
  // `exec` is the controller's exec policy for `check` probes (borrowed).
  GameDays(Store* store, GameDayRuns* runs, const ExecPolicy* exec);
  ~GameDays();
  GameDays(const GameDays&) = delete;
  GameDays& operator=(const GameDays&) = delete;

  // Resumes the game days the store holds as running.
  absl::Status Start();
  // Stops every game day's thread without ending it (a restart resumes it).
  void Stop();

  // The commands; `who` is the caller's principal. INVALID_ARGUMENT naming the
  // field, NOT_FOUND for an unknown id, FAILED_PRECONDITION for an approval
  // with no gate waiting or an action on an ended game day.
  absl::StatusOr<v1::GameDayStatus> Begin(const v1::StartGameDayRequest& req,
                                          const std::string& who);
  absl::StatusOr<v1::GameDayStatus> Approve(const std::string& id, const std::string& who,
                                            const std::string& note);
  absl::StatusOr<v1::GameDayStatus> Note(const std::string& id, const std::string& who,
                                         const std::string& text);
  absl::StatusOr<v1::GameDayStatus> Abort(const std::string& id, const std::string& who,
                                          const std::string& why);
  absl::StatusOr<v1::GameDayStatus> Get(const std::string& id);
  absl::StatusOr<std::vector<v1::GameDayStatus>> List(int limit);

 private:
  // One running game day: what its thread and the commands share.
  struct Active {
    std::string id;
    v1::GameDayPlan plan;
    std::thread thread;
    bool abort = false;            // asked to abort (by abort_by_)
    std::string abort_by, abort_why;
    bool approved = false;         // the waiting gate was approved
    std::string approved_by, approved_note;
    std::string waiting_gate;      // the step of the gate waiting ("" = none)
    std::set<std::string> runs;    // its runs in flight
  };
  enum class Outcome { kOk, kFailed, kTimedOut, kAborted, kInterrupted, kStopped };

  // The game day's thread: steps from `first` on (0-based); `resume` holds the
  // step that was in flight when the controller stopped, if any.
  void Run(Active* a, int first, int64_t resume_started_ns, int64_t resume_deadline_ns);
  Outcome RunStep(Active* a, const std::string& no, const v1::GameDayStep& step,
                  int64_t resume_deadline_ns);
  Outcome RunGate(Active* a, const std::string& no, const v1::GameDayGate& gate,
                  int64_t deadline_ns);
  // A gate or wait resumed after a restart gets its stored deadline (else 0:
  // it starts now and records its start).
  Outcome RunWait(Active* a, const std::string& no, const std::string& wait, int64_t deadline_ns);
  Outcome RunCheck(Active* a, const std::string& no, const v1::GameDayCheck& check);
  Outcome RunExperiment(Active* a, const std::string& no, const std::string& file);
  Outcome RunParallel(Active* a, const std::string& no, const v1::GameDayStep& step);
  // Sleeps until `deadline_ns` (realtime) or an abort, approval or stop.
  // Returns false when woken by an abort or a stop.
  bool SleepUntil(Active* a, int64_t deadline_ns, bool until_approved);
  bool Stopping(Active* a);
  // Appends an event to the game day's timeline (errors are logged).
  void Record(const std::string& id, v1::GameDayEvent ev);
  void Ended(Active* a, const std::string& state, const std::string& result,
             const std::string& text);
  absl::StatusOr<v1::GameDayStatus> Status(const std::string& id);
  void Launch(std::unique_ptr<Active> a, int first, int64_t resume_started_ns,
              int64_t resume_deadline_ns) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Joins the threads of game days that have ended; mu_ held.
  void ReapLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  Store* const store_;
  GameDayRuns* const runs_;
  const ExecPolicy* const exec_;

  absl::Mutex mu_;
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  std::map<std::string, std::unique_ptr<Active>> active_ ABSL_GUARDED_BY(mu_);
  std::vector<std::unique_ptr<Active>> ended_ ABSL_GUARDED_BY(mu_);  // threads to join
  absl::Mutex begin_mu_;  // one Begin at a time (the running-name check holds)
  absl::Mutex store_mu_;  // one event at a time: seq numbers in order
};

}  // namespace faultline::controller

#endif  // FAULTLINE_CONTROLLER_GAMEDAY_H_
