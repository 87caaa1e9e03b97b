#include "workload/data_log.h"

#include <algorithm>

namespace faultline::workload {

v1::DataResult Analyze(const std::vector<v1::WriteRecord>& writes, const std::set<int64_t>& present,
                       bool can_list, std::chrono::nanoseconds period) {
  v1::DataResult result;
  result.set_writes_attempted(static_cast<int64_t>(writes.size()));
  std::set<int64_t> sent;
  std::vector<const v1::WriteRecord*> lost;
  for (const v1::WriteRecord& w : writes) {
    sent.insert(w.seq());
    const bool found = present.contains(w.seq());
    if (w.outcome() == v1::WriteRecord::ACKED) {
      result.set_writes_acked(result.writes_acked() + 1);
      if (!found) lost.push_back(&w);
    } else if (found) {
      result.set_writes_recovered(result.writes_recovered() + 1);
    }
  }
  int64_t unexpected = 0;
  for (int64_t seq : present) {
    if (!sent.contains(seq)) ++unexpected;
  }
  result.set_writes_unexpected(can_list ? unexpected : -1);
  result.set_writes_lost(static_cast<int64_t>(lost.size()));
  std::sort(lost.begin(), lost.end(),
            [](const v1::WriteRecord* a, const v1::WriteRecord* b) { return a->seq() < b->seq(); });
  for (size_t i = 0; i < lost.size() && i < static_cast<size_t>(kMaxFirstLost); ++i) {
    result.add_first_lost(lost[i]->seq());
  }
  result.set_rpo_error_ms(static_cast<double>(period.count()) / 1e6);
  if (lost.empty()) return result;
  const auto [first, last] = std::minmax_element(
      lost.begin(), lost.end(), [](const v1::WriteRecord* a, const v1::WriteRecord* b) {
        return a->done_unix_ns() < b->done_unix_ns();
      });
  result.set_first_lost_ack_unix_ns((*first)->done_unix_ns());
  result.set_last_lost_ack_unix_ns((*last)->done_unix_ns());
  result.set_rpo_ms(static_cast<double>((*last)->done_unix_ns() - (*first)->done_unix_ns()) / 1e6);
  return result;
}

}  // namespace faultline::workload
