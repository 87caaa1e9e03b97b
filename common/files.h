// Small filesystem helpers with crash-safety guarantees.
#ifndef FAULTLINE_COMMON_FILES_H_
#define FAULTLINE_COMMON_FILES_H_

#include <cstddef>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace faultline {

// Reads a regular file of at most `max_bytes`. Never blocks on what is not a
// regular file: the open is non-blocking (a FIFO does not wait for a writer) and
// anything but a regular file (FIFO, device such as /dev/zero, socket, folder)
// is refused with FAILED_PRECONDITION naming it; a larger file is refused with
// RESOURCE_EXHAUSTED. Symbolic links are followed (/etc/resolv.conf often is one).
inline constexpr size_t kDefaultMaxFileBytes = 1 << 20;
absl::StatusOr<std::string> ReadFileToString(const std::string& path,
                                             size_t max_bytes = kDefaultMaxFileBytes);

// For a flag naming a file that a library opens itself (SQLite's --db): OK
// when `path` is a regular file (symbolic links followed) or does not exist
// yet; FAILED_PRECONDITION naming `flag` and what is there otherwise (a FIFO,
// whose open would block; a device such as /dev/zero; a folder; a socket).
// Looks with stat() only: never opens, so never blocks.
absl::Status CheckRegularFileOrAbsent(const std::string& flag, const std::string& path);

// Writes `data` to `path` atomically and durably: a temporary file in the same
// folder is written and fsync'ed, renamed over `path`, and the folder fsync'ed.
// The temporary file is created afresh (O_EXCL, O_NOFOLLOW): a symbolic link
// planted at PATH.tmp is replaced, never followed.
absl::Status WriteFileDurably(const std::string& path, const std::string& data);

// Unlinks `path` (missing is fine) and fsyncs its folder.
absl::Status RemoveFileDurably(const std::string& path);

// mkdir -p with `mode` for the folders it creates.
absl::Status MakeDirs(const std::string& path, unsigned mode);

}  // namespace faultline

#endif  // FAULTLINE_COMMON_FILES_H_
