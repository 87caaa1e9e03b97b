// Scheduled experiments and blackouts (docs/schedules.md): the controller's
// own clock starts runs at the ticks of each schedule (cron or a period, in an
// IANA zone, inside an optional window, with a deterministic jitter), exactly
// once per tick, and records every tick it does not run with its reason.
#ifndef FAULTLINE_CONTROLLER_SCHEDULER_H_
#define FAULTLINE_CONTROLLER_SCHEDULER_H_

#include <chrono>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "controller/controller_metrics.h"
#include "controller/store.h"
#include "faultline/v1/controller.pb.h"
#include "faultline/v1/experiment.pb.h"
#include "schedule/schedule_times.h"

namespace faultline::controller {

inline constexpr std::chrono::minutes kDefaultStartingDeadline{5};
inline constexpr int kDefaultScheduleHistory = 20;
inline constexpr int kMaxScheduleHistory = 1000;
inline constexpr int kMaxSchedules = 1000;
inline constexpr int kMaxBlackouts = 1000;

// What the scheduler needs of whoever owns the runs (the controller service).
class ScheduledRuns {
 public:
  virtual ~ScheduledRuns() = default;
  // Starts `exp` as run `run_id` in the background, tagged with its schedule
  // and tick; the owner calls Scheduler::RunEnded when it ends.
  virtual absl::Status StartScheduledRun(const std::string& run_id, const v1::Experiment& exp,
                                         const std::string& schedule,
                                         int64_t scheduled_unix_ns) = 0;
  // Whether that run is still in flight.
  virtual bool RunActive(const std::string& run_id) = 0;
  // Aborts it (faults reverted at once); `why` completes "aborted ...".
  virtual void AbortRun(const std::string& run_id, const std::string& why) = 0;
};

// The schedule's time rules from its spec (durations parsed, defaults set):
// INVALID_ARGUMENT naming the field. `anchor` is where `every` counts from.
absl::StatusOr<schedule::ScheduleTimes> TimesOf(const v1::ScheduleSpec& spec, absl::Time anchor);
// Checks every field of a spec and loads its experiment: INVALID_ARGUMENT
// listing each problem ("field: reason").
absl::StatusOr<v1::Experiment> ValidateSchedule(const v1::ScheduleSpec& spec);
// A scheduled run's id: "<schedule>-<YYYYMMDD-HHMMSS>" of the tick in UTC.
std::string ScheduledRunId(const std::string& schedule, int64_t scheduled_unix_ns);

// The controller's scheduler. Owned by the controller service, which starts
// it after recovery and stops it before its runs are aborted at shutdown;
// every method may be called from any thread. One thread of its own (Loop)
// wakes at the next start (or at most every second, and at once on a change),
// decides each due tick under the unique key of the store's tick table, and
// never holds mu_ across a store call or a run's start.
class Scheduler {
 public:
  Scheduler(Store* store, ScheduledRuns* runs, ControllerMetrics* metrics);
  ~Scheduler();
  Scheduler(const Scheduler&) = delete;
  Scheduler& operator=(const Scheduler&) = delete;

  void Start();
  void Stop();

  // The commands (`faultline schedule ...`, `faultline blackout ...`); `who`
  // is the caller's principal. INVALID_ARGUMENT / NOT_FOUND / ALREADY_EXISTS
  // naming the field.
  absl::StatusOr<v1::ScheduleStatus> Add(const v1::AddScheduleRequest& req, const std::string& who);
  absl::StatusOr<v1::ScheduleStatus> Update(const v1::AddScheduleRequest& req);
  absl::StatusOr<v1::ScheduleStatus> Get(const std::string& name);
  absl::StatusOr<std::vector<v1::ScheduleStatus>> List();
  absl::StatusOr<v1::ScheduleStatus> SetState(const std::string& name, const std::string& state);
  absl::Status Delete(const std::string& name);
  absl::StatusOr<v1::AddBlackoutResponse> AddBlackout(v1::Blackout blackout,
                                                      const std::string& who);
  absl::StatusOr<std::vector<v1::Blackout>> ListBlackouts();
  absl::Status DeleteBlackout(const std::string& name);

  // A scheduled run's end (from the run's owner): a run the blast radius
  // refused turns its tick into a `limit` skip.
  void RunEnded(const v1::RunReport& report);

  // One pass at `now` (the thread's work; tests call it with their own
  // time): decides every due tick; returns when the next start or blackout is.
  absl::Time Pass(absl::Time now);

 private:
  struct Running {
    std::string run_id;
    int64_t scheduled_unix_ns = 0;
  };
  void Loop();
  void Wake();
  // The schedule's due ticks at `now`, each decided; returns the next start.
  std::optional<absl::Time> PassOne(const StoredSchedule& sc, absl::Time now,
                                    const std::vector<v1::Blackout>& blackouts);
  // Records the tick once and, when it is to run, starts it.
  void Decide(const StoredSchedule& sc, const v1::Experiment& exp, absl::Time scheduled,
              absl::Time start, absl::Time now, const std::string& skip,
              const std::string& detail);
  void Skip(const std::string& schedule, v1::ScheduleTick tick, const std::string& reason,
            const std::string& detail);
  // Halts every running scheduled run (a blackout began); returns their ids.
  std::vector<std::string> HaltAll(const std::string& why);
  absl::StatusOr<v1::ScheduleStatus> StatusOf(const StoredSchedule& sc, int ticks);
  std::string RunningOf(const std::string& schedule);

  Store* const store_;
  ScheduledRuns* const runs_;
  ControllerMetrics* const metrics_;  // may be null

  absl::Mutex mu_;
  bool stop_ ABSL_GUARDED_BY(mu_) = false;
  bool woken_ ABSL_GUARDED_BY(mu_) = false;
  // Each schedule's run in flight (the newest it started).
  std::map<std::string, Running> running_ ABSL_GUARDED_BY(mu_);
  std::thread thread_;
};

}  // namespace faultline::controller

#endif  // FAULTLINE_CONTROLLER_SCHEDULER_H_
