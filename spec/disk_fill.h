// The rules of the disk-fill fault kind: which of percent, leave_free, bytes
// was given, parsed. Pure; the agent's disk-fill handler measures the
// filesystem and computes the bytes.
#ifndef FAULTLINE_SPEC_DISK_FILL_H_
#define FAULTLINE_SPEC_DISK_FILL_H_

#include <cstdint>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "faultline/v1/faults.pb.h"

namespace faultline::spec {

// Which of the exclusive disk-fill fields was given, and its value.
struct FillRequest {
  enum class By { kPercent, kLeaveFree, kBytes };
  By by = By::kPercent;
  std::string field;     // "percent", "leave_free" or "bytes", for messages
  double percent = 0;    // kPercent
  uint64_t size = 0;     // kLeaveFree, kBytes
};

// Exactly one of percent (1..100), leave_free, bytes (> 0). INVALID_ARGUMENT,
// e.g. `percent: must be between 1 and 100, got 150`.
absl::StatusOr<FillRequest> ParseFillRequest(const v1::DiskFillFault& fill);

// path (absolute) and the fill request.
absl::Status ValidateDiskFill(const v1::DiskFillFault& fill);

}  // namespace faultline::spec

#endif  // FAULTLINE_SPEC_DISK_FILL_H_
