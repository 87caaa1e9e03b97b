// Small filesystem helpers with crash-safety guarantees.
#ifndef FAULTLINE_COMMON_FILES_H_
#define FAULTLINE_COMMON_FILES_H_

#include <string>

#include "absl/status/status.h"

namespace faultline {

// Writes `data` to `path` atomically and durably: a temporary file in the same
// folder is written and fsync'ed, renamed over `path`, and the folder fsync'ed.
absl::Status WriteFileDurably(const std::string& path, const std::string& data);

// Unlinks `path` (missing is fine) and fsyncs its folder.
absl::Status RemoveFileDurably(const std::string& path);

// mkdir -p with `mode` for the folders it creates.
absl::Status MakeDirs(const std::string& path, unsigned mode);

}  // namespace faultline

#endif  // FAULTLINE_COMMON_FILES_H_
