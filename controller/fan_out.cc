#include "controller/fan_out.h"

#include <algorithm>
#include <atomic>
#include <memory>
#include <thread>
#include <vector>

#include "absl/synchronization/mutex.h"

namespace faultline::controller {

void ForEachParallel(size_t n, size_t max_in_flight, const std::function<void(size_t)>& fn) {
  if (n == 0) return;
  const size_t limit = max_in_flight == 0 ? kMaxFanOut : std::min(max_in_flight, kMaxFanOut);
  const size_t workers = std::min(n, limit);
  if (workers == 1) {
    for (size_t i = 0; i < n; ++i) fn(i);
    return;
  }
  std::atomic<size_t> next{0};
  auto work = [&] {
    for (size_t i = next.fetch_add(1); i < n; i = next.fetch_add(1)) fn(i);
  };
  std::vector<std::thread> threads;
  threads.reserve(workers - 1);
  for (size_t w = 1; w < workers; ++w) threads.emplace_back(work);
  work();  // the caller is the last worker
  for (std::thread& t : threads) t.join();
}

void ForEachAsync(size_t n, size_t max_in_flight,
                  const std::function<void(size_t, AsyncDone)>& start) {
  if (n == 0) return;
  const size_t limit = max_in_flight == 0 ? n : max_in_flight;
  // Shared with every `done`: a call's last copy of it may be destroyed (or
  // still be unlocking) after this function has returned.
  struct Count {
    absl::Mutex mu;
    size_t in_flight ABSL_GUARDED_BY(mu) = 0;
    size_t finished ABSL_GUARDED_BY(mu) = 0;
  };
  auto count = std::make_shared<Count>();
  const AsyncDone done = [count] {
    absl::MutexLock lock(&count->mu);
    --count->in_flight;
    ++count->finished;
  };
  Count& c = *count;
  auto room = [&c, limit]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(c.mu) { return c.in_flight < limit; };
  for (size_t i = 0; i < n; ++i) {
    {
      absl::MutexLock lock(&c.mu);
      c.mu.Await(absl::Condition(&room));
      ++c.in_flight;
    }
    start(i, done);
  }
  auto all_done = [&c, n]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(c.mu) { return c.finished == n; };
  absl::MutexLock lock(&c.mu);
  c.mu.Await(absl::Condition(&all_done));
}

}  // namespace faultline::controller
