#include "spec/disk_fill.h"

#include <fmt/format.h>

#include <vector>

#include "common/status_macros.h"
#include "common/text.h"
#include "common/units.h"

namespace faultline::spec {

absl::StatusOr<FillRequest> ParseFillRequest(const v1::DiskFillFault& spec) {
  std::vector<std::string> given;
  if (spec.has_percent()) given.push_back("percent");
  if (!spec.leave_free().empty()) given.push_back("leave_free");
  if (!spec.bytes().empty()) given.push_back("bytes");
  if (given.empty()) {
    return absl::InvalidArgumentError("percent: give exactly one of percent, leave_free, bytes");
  }
  if (given.size() > 1) {
    return absl::InvalidArgumentError(fmt::format(
        "{}: give only one of percent, leave_free, bytes, got {} and {}", given[1], given[0],
        given[1]));
  }
  FillRequest r;
  r.field = given[0];
  if (spec.has_percent()) {
    r.by = FillRequest::By::kPercent;
    r.percent = spec.percent();
    if (!(r.percent >= 1 && r.percent <= 100)) {  // also rejects NaN
      return absl::InvalidArgumentError(
          fmt::format("percent: must be between 1 and 100, got {:g}", r.percent));
    }
  } else if (!spec.leave_free().empty()) {
    r.by = FillRequest::By::kLeaveFree;
    ASSIGN_OR_RETURN(r.size, ParseSize("leave_free", spec.leave_free()));
  } else {
    r.by = FillRequest::By::kBytes;
    ASSIGN_OR_RETURN(r.size, ParseSize("bytes", spec.bytes()));
    if (r.size == 0) return absl::InvalidArgumentError("bytes: must be greater than 0");
  }
  return r;
}

absl::Status ValidateDiskFill(const v1::DiskFillFault& fill) {
  if (fill.path().empty()) {
    return absl::InvalidArgumentError("path: required (a directory on the filesystem to fill)");
  }
  if (fill.path()[0] != '/') {
    return absl::InvalidArgumentError(
        fmt::format("path: must be an absolute path, got \"{}\"", Printable(fill.path())));
  }
  return ParseFillRequest(fill).status();
}

}  // namespace faultline::spec
