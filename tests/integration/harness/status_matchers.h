// Assertion helpers for absl::Status / StatusOr in integration tests.
#ifndef FAULTLINE_TESTS_INTEGRATION_HARNESS_STATUS_MATCHERS_H_
#define FAULTLINE_TESTS_INTEGRATION_HARNESS_STATUS_MATCHERS_H_

#include <gtest/gtest.h>

#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

#define FL_ITEST_CONCAT_INNER_(a, b) a##b
#define FL_ITEST_CONCAT_(a, b) FL_ITEST_CONCAT_INNER_(a, b)

#define ASSERT_OK(expr)                                                 \
  do {                                                                  \
    const ::absl::Status fl_itest_s_ = (expr);                          \
    ASSERT_TRUE(fl_itest_s_.ok()) << std::string(fl_itest_s_.message()); \
  } while (0)

#define EXPECT_OK(expr)                                                 \
  do {                                                                  \
    const ::absl::Status fl_itest_s_ = (expr);                          \
    EXPECT_TRUE(fl_itest_s_.ok()) << std::string(fl_itest_s_.message()); \
  } while (0)

#define ASSERT_OK_AND_ASSIGN_IMPL_(tmp, lhs, expr)                       \
  auto tmp = (expr);                                                     \
  ASSERT_TRUE(tmp.ok()) << std::string(tmp.status().message());          \
  lhs = std::move(tmp).value()

#define ASSERT_OK_AND_ASSIGN(lhs, expr) \
  ASSERT_OK_AND_ASSIGN_IMPL_(FL_ITEST_CONCAT_(fl_itest_so_, __LINE__), lhs, expr)

#endif  // FAULTLINE_TESTS_INTEGRATION_HARNESS_STATUS_MATCHERS_H_
