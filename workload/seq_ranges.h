// Sets of sequence numbers as ranges (v1::SeqRange): how an agent's ReadData
// answer carries what it read back (docs/experiments.md, "Writers on
// agents"); a run's writes are 1..N, so a read-back is a few ranges.
#ifndef FAULTLINE_WORKLOAD_SEQ_RANGES_H_
#define FAULTLINE_WORKLOAD_SEQ_RANGES_H_

#include <cstdint>
#include <set>

#include "absl/status/statusor.h"
#include "faultline/v1/data.pb.h"
#include "google/protobuf/repeated_ptr_field.h"

namespace faultline::workload {

// Appends `seqs` to `out` as ranges, in order.
void AppendSeqRanges(const std::set<int64_t>& seqs,
                     google::protobuf::RepeatedPtrField<v1::SeqRange>* out);

// The sequence numbers of `ranges`; INVALID_ARGUMENT for a range whose last is
// before its first, or when they hold more than `max_count` numbers (a peer
// cannot make us allocate without bound).
absl::StatusOr<std::set<int64_t>> SeqsOfRanges(
    const google::protobuf::RepeatedPtrField<v1::SeqRange>& ranges, int64_t max_count);

}  // namespace faultline::workload

#endif  // FAULTLINE_WORKLOAD_SEQ_RANGES_H_
