#include "controller/clock_sync.h"

#include <algorithm>
#include <deque>
#include <limits>
#include <set>
#include <utility>

#include "absl/synchronization/mutex.h"
#include "common/clock.h"

namespace faultline::controller {
namespace {

using Clock = std::chrono::steady_clock;

// A round trip within this factor of the best one seen is good too.
constexpr double kGoodRatio = 1.5;
// A good round trip within this factor of the best one lets the window grow.
constexpr double kHeadroomRatio = 1.25;
// A round trip slower than good yet shorter than this is taken as stretched
// by the calls in flight (on a LAN or one machine, the controller's and the
// agents' cores are what concurrency costs); a longer one is distance (a far
// agent, which concurrency barely slows) and does not steer the window.
constexpr int64_t kLocalRttNs = 5'000'000;
// The window's first width: the window then grows by one per good answer
// (doubling per round of answers) and halves at a stretched one.
constexpr double kInitialWindow = 8;

// One sync in progress; shared with the callbacks of its calls (a callback's
// copy may outlive SyncClocks' return by its last unlock). Thread-safe.
class Sync : public std::enable_shared_from_this<Sync> {
 public:
  Sync(const std::vector<std::shared_ptr<AgentClient>>& clients, const ClockSyncOptions& options)
      : clients_(clients),
        options_(options),
        connected_first_(clients.size()),
        exchanges_(clients.size()),
        results_(clients.size()) {
    const size_t n = clients.size();
    ceiling_ = options.max_in_flight == 0 ? n : std::min(n, options.max_in_flight);
    window_ = std::min<double>(kInitialWindow, static_cast<double>(ceiling_));
    for (size_t i = 0; i < n; ++i) {
      connected_first_[i] = clients[i]->Connected();
      (connected_first_[i] ? queue_ : warm_queue_).push_back(i);
    }
  }

  std::vector<ClockSyncResult> Run(ClockSyncStats* stats) {
    started_ = Clock::now();
    std::vector<size_t> start;
    {
      absl::MutexLock lock(&mu_);
      start = TakeLaunchableLocked();
    }
    Launch(start);
    absl::MutexLock lock(&mu_);
    auto all_done = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
      return finished_ == clients_.size();
    };
    mu_.Await(absl::Condition(&all_done));
    if (stats != nullptr) {
      stats->exchanges = calls_;
      stats->widest = widest_;
      stats->best_rtt_ns = best_rtt_ns_ == std::numeric_limits<int64_t>::max() ? 0 : best_rtt_ns_;
      stats->connects = connects_;
      stats->connect = connected_at_ - started_;
    }
    return results_;
  }

 private:
  // The agents whose next exchange fits in the window now. First every
  // channel that is not connected gets a first call (its round trip holds the
  // connect, so it neither counts nor steers the window), as many at once as
  // the ceiling allows; the measured exchanges start when those are over.
  std::vector<size_t> TakeLaunchableLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    std::vector<size_t> start;
    while (!warm_queue_.empty() && in_flight_ < ceiling_) {
      start.push_back(warm_queue_.front());
      warm_queue_.pop_front();
      warming_.insert(start.back());
      ++connects_;
      ++in_flight_;
      ++calls_;
    }
    if (!warming_.empty()) return start;
    if (connected_at_ == Clock::time_point()) connected_at_ = Clock::now();
    const size_t width = std::max<size_t>(1, static_cast<size_t>(window_));
    while (!queue_.empty() && in_flight_ < width) {
      start.push_back(queue_.front());
      queue_.pop_front();
      ++in_flight_;
      ++calls_;
    }
    widest_ = std::max(widest_, in_flight_);
    return start;
  }

  // Starts one exchange per index; called without the lock (a callback may
  // run inside InfoAsync when the call fails at once).
  void Launch(const std::vector<size_t>& agents) ABSL_LOCKS_EXCLUDED(mu_) {
    for (size_t i : agents) {
      const Clock::time_point sent = Clock::now();
      clients_[i]->InfoAsync(options_.timeout,
                             [self = shared_from_this(), i, sent](absl::StatusOr<InfoSample> s) {
                               self->OnAnswer(i, sent, std::move(s));
                             });
    }
  }

  bool GoodLocked(int64_t rtt_ns) const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    return rtt_ns <= options_.good_rtt.count() ||
           static_cast<double>(rtt_ns) <= kGoodRatio * best_rtt_ns_;
  }

  // Whether a good round trip leaves room for more calls at once: it took at
  // most half the good bound, or about the best seen (a far fleet, where
  // distance dominates). A window that only grows while answers come back
  // well inside the bound settles below it, instead of oscillating around
  // it at the price of extra exchanges.
  bool HeadroomLocked(int64_t rtt_ns) const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    return rtt_ns <= options_.good_rtt.count() / 2 ||
           static_cast<double>(rtt_ns) <= kHeadroomRatio * best_rtt_ns_;
  }

  void FinishLocked(size_t i, absl::StatusOr<timeline::ClockOffset> offset)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    results_[i].offset = std::move(offset);
    results_[i].synced_ns = NowRealtimeNs();
    results_[i].exchanges = static_cast<int>(exchanges_[i].size());
    ++finished_;
  }

  void OnAnswer(size_t i, Clock::time_point sent, absl::StatusOr<InfoSample> sample)
      ABSL_LOCKS_EXCLUDED(mu_) {
    std::vector<size_t> start;
    {
      absl::MutexLock lock(&mu_);
      --in_flight_;
      const bool warm_up = warming_.erase(i) > 0;
      if (!sample.ok()) {
        FinishLocked(i, sample.status());
      } else if (sample->info.clock().realtime_ns() == 0) {
        FinishLocked(i, absl::FailedPreconditionError(
                            "agent " + clients_[i]->name() + ": Info carries no clock sample"));
      } else {
        timeline::ClockExchange e;
        e.t0_ns = sample->t0_ns;
        e.t1_ns = sample->info.clock().realtime_ns();
        e.t2_ns = sample->t2_ns;
        exchanges_[i].push_back(e);
        if (warm_up) {
          queue_.push_back(i);  // connected now: its measured exchanges follow
        } else {
          MeasuredLocked(i, e.t2_ns - e.t0_ns, sent);
        }
      }
      start = TakeLaunchableLocked();
    }
    Launch(start);
  }

  // A measured exchange of agent i with round trip `rtt_ns`: steers the
  // window, then ends the agent's sync or queues its next exchange.
  void MeasuredLocked(size_t i, int64_t rtt_ns, Clock::time_point sent)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    best_rtt_ns_ = std::min(best_rtt_ns_, rtt_ns);
    const bool good = GoodLocked(rtt_ns);
    if (good && HeadroomLocked(rtt_ns)) {
      window_ = std::min(window_ + 1, static_cast<double>(ceiling_));
    } else if (rtt_ns < kLocalRttNs && sent >= last_cut_) {
      // Stretched by calls in flight: fewer at once (once per round of
      // answers: those sent before this cut stretched for the same reason).
      window_ = std::max(1.0, window_ / 2);
      last_cut_ = Clock::now();
    }
    const size_t measured = exchanges_[i].size() - (connected_first_[i] ? 0 : 1);
    if (good || measured >= static_cast<size_t>(std::max(1, options_.exchanges))) {
      FinishLocked(i, timeline::EstimateClockOffset(exchanges_[i]));
    } else {
      queue_.push_back(i);
    }
  }

  const std::vector<std::shared_ptr<AgentClient>> clients_;
  const ClockSyncOptions options_;
  size_t ceiling_ = 1;
  std::vector<bool> connected_first_;  // whether agent i's channel was connected at the start
  absl::Mutex mu_;
  std::deque<size_t> warm_queue_ ABSL_GUARDED_BY(mu_);  // agents waiting for a connect
  std::set<size_t> warming_ ABSL_GUARDED_BY(mu_);       // ... and connecting now
  std::deque<size_t> queue_ ABSL_GUARDED_BY(mu_);       // agents waiting for an exchange
  size_t in_flight_ ABSL_GUARDED_BY(mu_) = 0;
  double window_ ABSL_GUARDED_BY(mu_) = 1;
  Clock::time_point last_cut_ ABSL_GUARDED_BY(mu_) = Clock::time_point::min();
  int64_t best_rtt_ns_ ABSL_GUARDED_BY(mu_) = std::numeric_limits<int64_t>::max();
  size_t finished_ ABSL_GUARDED_BY(mu_) = 0;
  size_t calls_ ABSL_GUARDED_BY(mu_) = 0;
  size_t connects_ ABSL_GUARDED_BY(mu_) = 0;
  Clock::time_point started_;
  Clock::time_point connected_at_ ABSL_GUARDED_BY(mu_);  // when the last connect ended
  size_t widest_ ABSL_GUARDED_BY(mu_) = 0;
  std::vector<std::vector<timeline::ClockExchange>> exchanges_ ABSL_GUARDED_BY(mu_);
  std::vector<ClockSyncResult> results_ ABSL_GUARDED_BY(mu_);
};

}  // namespace

std::vector<ClockSyncResult> SyncClocks(const std::vector<std::shared_ptr<AgentClient>>& clients,
                                        const ClockSyncOptions& options, ClockSyncStats* stats) {
  if (clients.empty()) return {};
  auto sync = std::make_shared<Sync>(clients, options);
  return sync->Run(stats);
}

}  // namespace faultline::controller
