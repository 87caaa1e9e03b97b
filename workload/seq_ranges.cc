#include "workload/seq_ranges.h"

#include <fmt/format.h>

namespace faultline::workload {

void AppendSeqRanges(const std::set<int64_t>& seqs,
                     google::protobuf::RepeatedPtrField<v1::SeqRange>* out) {
  v1::SeqRange* range = nullptr;
  for (int64_t seq : seqs) {
    if (range != nullptr && range->last() + 1 == seq) {
      range->set_last(seq);
      continue;
    }
    range = out->Add();
    range->set_first(seq);
    range->set_last(seq);
  }
}

absl::StatusOr<std::set<int64_t>> SeqsOfRanges(
    const google::protobuf::RepeatedPtrField<v1::SeqRange>& ranges, int64_t max_count) {
  std::set<int64_t> seqs;
  int64_t count = 0;
  for (const v1::SeqRange& r : ranges) {
    if (r.last() < r.first()) {
      return absl::InvalidArgumentError(
          fmt::format("sequence range {}..{} ends before it starts", r.first(), r.last()));
    }
    // Unsigned: last - first cannot overflow.
    const uint64_t span = static_cast<uint64_t>(r.last()) - static_cast<uint64_t>(r.first());
    if (span >= static_cast<uint64_t>(max_count - count)) {
      return absl::InvalidArgumentError(
          fmt::format("more than {} sequence numbers read back", max_count));
    }
    count += static_cast<int64_t>(span) + 1;
    for (int64_t seq = r.first();; ++seq) {
      seqs.insert(seq);
      if (seq == r.last()) break;
    }
  }
  return seqs;
}

}  // namespace faultline::workload
