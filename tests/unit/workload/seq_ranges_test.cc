// Sequence numbers as ranges: an agent's ReadData answer (workload/seq_ranges.h).
#include "workload/seq_ranges.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <limits>

namespace faultline::workload {
namespace {

using ::testing::HasSubstr;

google::protobuf::RepeatedPtrField<v1::SeqRange> Ranges(
    std::initializer_list<std::pair<int64_t, int64_t>> pairs) {
  google::protobuf::RepeatedPtrField<v1::SeqRange> out;
  for (auto [first, last] : pairs) {
    v1::SeqRange* r = out.Add();
    r->set_first(first);
    r->set_last(last);
  }
  return out;
}

TEST(SeqRanges, RunsBecomeRangesAndBack) {
  const std::set<int64_t> seqs = {1, 2, 3, 5, 8, 9, 10, 42};
  google::protobuf::RepeatedPtrField<v1::SeqRange> ranges;
  AppendSeqRanges(seqs, &ranges);
  ASSERT_EQ(ranges.size(), 4);
  EXPECT_EQ(ranges[0].first(), 1);
  EXPECT_EQ(ranges[0].last(), 3);
  EXPECT_EQ(ranges[1].first(), 5);
  EXPECT_EQ(ranges[1].last(), 5);
  EXPECT_EQ(ranges[2].first(), 8);
  EXPECT_EQ(ranges[2].last(), 10);
  EXPECT_EQ(ranges[3].first(), 42);
  auto back = SeqsOfRanges(ranges, 100);
  ASSERT_TRUE(back.ok()) << back.status();
  EXPECT_EQ(*back, seqs);

  google::protobuf::RepeatedPtrField<v1::SeqRange> none;
  AppendSeqRanges({}, &none);
  EXPECT_TRUE(none.empty());
  EXPECT_TRUE(SeqsOfRanges(none, 0)->empty());
}

TEST(SeqRanges, APeerCannotMakeUsAllocateWithoutBound) {
  EXPECT_EQ(SeqsOfRanges(Ranges({{1, 10}}), 10)->size(), 10u);
  EXPECT_THAT(SeqsOfRanges(Ranges({{1, 10}}), 9).status().message(), HasSubstr("more than 9"));
  EXPECT_THAT(SeqsOfRanges(Ranges({{1, 5}, {7, 12}}), 10).status().message(),
              HasSubstr("more than 10"));
  constexpr int64_t kMin = std::numeric_limits<int64_t>::min();
  constexpr int64_t kMax = std::numeric_limits<int64_t>::max();
  EXPECT_THAT(SeqsOfRanges(Ranges({{kMin, kMax}}), 1000).status().message(),
              HasSubstr("more than 1000"));
  EXPECT_THAT(SeqsOfRanges(Ranges({{5, 4}}), 1000).status().message(),
              HasSubstr("ends before it starts"));
}

}  // namespace
}  // namespace faultline::workload
