// Helpers the data workload tests share: a driver from a spec, the sequence
// numbers of a writer's records, and the check that a bad spec is refused
// naming its field.
#ifndef FAULTLINE_TESTS_UNIT_WORKLOAD_DATA_TEST_UTIL_H_
#define FAULTLINE_TESTS_UNIT_WORKLOAD_DATA_TEST_UTIL_H_

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <memory>
#include <string>
#include <vector>

#include "faultline/v1/data.pb.h"
#include "workload/data_driver.h"

namespace faultline::testing_util {

inline constexpr char kDataRun[] = "test-run";

// The driver of workload "orders" of run kDataRun; null (and a test failure)
// when it is refused. `set` fills in the driver's part of the spec.
template <typename Set>
std::unique_ptr<workload::DataDriver> MakeOrdersDriver(Set set) {
  v1::DataWorkload spec;
  spec.set_name("orders");
  set(spec);
  auto driver = workload::MakeDataDriver("data[0]", spec, kDataRun);
  EXPECT_TRUE(driver.ok()) << driver.status();
  return driver.ok() ? std::move(driver).value() : nullptr;
}

// A latency bound for "returned on time" checks: `bound` times
// FAULTLINE_TIMING_SLACK (docs/testing.md; 3 under the sanitizers).
inline std::chrono::milliseconds OnTime(std::chrono::milliseconds bound) {
  const char* slack = std::getenv("FAULTLINE_TIMING_SLACK");
  const double factor = slack != nullptr && std::atof(slack) >= 1 ? std::atof(slack) : 1;
  return std::chrono::milliseconds(static_cast<int64_t>(static_cast<double>(bound.count()) * factor));
}

inline std::vector<int64_t> SentSeqs(const std::vector<v1::WriteRecord>& records) {
  std::vector<int64_t> sent;
  for (const auto& r : records) sent.push_back(r.seq());
  return sent;
}

// Workload "orders" with `set` applied is refused (validation and driver
// alike) with INVALID_ARGUMENT and a message that holds "`field`: " and
// `reason`. `input`: what a failure shows. ExpectAccepted: the opposite.
template <typename Set>
void ExpectRefused(Set set, const std::string& field, const std::string& reason,
                   const std::string& input) {
  v1::DataWorkload spec;
  spec.set_name("orders");
  set(spec);
  auto settings = workload::ValidateDataWorkload("data[0]", spec);
  ASSERT_FALSE(settings.ok()) << input;
  EXPECT_EQ(settings.status().code(), absl::StatusCode::kInvalidArgument) << input;
  EXPECT_THAT(std::string(settings.status().message()), ::testing::HasSubstr(field + ": "))
      << input;
  EXPECT_THAT(std::string(settings.status().message()), ::testing::HasSubstr(reason)) << input;
  EXPECT_FALSE(workload::MakeDataDriver("data[0]", spec, kDataRun).ok()) << input;
}

template <typename Set>
void ExpectAccepted(Set set, const std::string& input) {
  v1::DataWorkload spec;
  spec.set_name("orders");
  set(spec);
  auto settings = workload::ValidateDataWorkload("data[0]", spec);
  EXPECT_TRUE(settings.ok()) << input << ": " << settings.status();
}

}  // namespace faultline::testing_util

#endif  // FAULTLINE_TESTS_UNIT_WORKLOAD_DATA_TEST_UTIL_H_
