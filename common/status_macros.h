// Early-return helpers for absl::Status / absl::StatusOr (bookworm's absl does not
// export its own).
#ifndef FAULTLINE_COMMON_STATUS_MACROS_H_
#define FAULTLINE_COMMON_STATUS_MACROS_H_

#include "absl/status/status.h"
#include "absl/status/statusor.h"

#define FL_CONCAT_INNER_(a, b) a##b
#define FL_CONCAT_(a, b) FL_CONCAT_INNER_(a, b)

#define RETURN_IF_ERROR(expr)                        \
  do {                                               \
    ::absl::Status fl_status_ = (expr);              \
    if (!fl_status_.ok()) return fl_status_;         \
  } while (0)

#define ASSIGN_OR_RETURN_IMPL_(tmp, lhs, expr) \
  auto tmp = (expr);                           \
  if (!tmp.ok()) return tmp.status();          \
  lhs = std::move(tmp).value()

#define ASSIGN_OR_RETURN(lhs, expr) \
  ASSIGN_OR_RETURN_IMPL_(FL_CONCAT_(fl_statusor_, __LINE__), lhs, expr)

#endif  // FAULTLINE_COMMON_STATUS_MACROS_H_
