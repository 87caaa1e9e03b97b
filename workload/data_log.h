// The figures of a data workload (docs/experiments.md, "Data and RPO"): from
// the writer's record of every write and the sequence numbers the reader found,
// which acknowledged writes were lost and the span of time they cover. Pure:
// no I/O, no clock.
#ifndef FAULTLINE_WORKLOAD_DATA_LOG_H_
#define FAULTLINE_WORKLOAD_DATA_LOG_H_

#include <chrono>
#include <cstdint>
#include <set>
#include <vector>

#include "faultline/v1/data.pb.h"

namespace faultline::workload {

// The first lost sequence numbers a result lists.
inline constexpr int kMaxFirstLost = 20;

// Counts and RPO of one workload. `present`: the sequence numbers the reader
// found; `can_list`: whether the reader saw every key of the workload (so
// unexpected ones count), or only looked up those sent (writes_unexpected -1).
// `period`: the writer's period, the RPO's error. Leaves name/from/driver,
// reads and read_stable to the caller.
v1::DataResult Analyze(const std::vector<v1::WriteRecord>& writes, const std::set<int64_t>& present,
                       bool can_list, std::chrono::nanoseconds period);

}  // namespace faultline::workload

#endif  // FAULTLINE_WORKLOAD_DATA_LOG_H_
