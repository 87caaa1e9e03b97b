#include "controller/fan_out.h"

#include <algorithm>
#include <atomic>
#include <thread>
#include <vector>

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

}  // namespace faultline::controller
