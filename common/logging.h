// Process-wide logging set-up (spdlog to stderr).
#ifndef FAULTLINE_COMMON_LOGGING_H_
#define FAULTLINE_COMMON_LOGGING_H_

#include <string>

#include "absl/status/status.h"

namespace faultline {

// level: trace, debug, info, warn, error, off.
absl::Status InitLogging(const std::string& level);

}  // namespace faultline

#endif  // FAULTLINE_COMMON_LOGGING_H_
