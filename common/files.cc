#include "common/files.h"

#include <fcntl.h>
#include <fmt/format.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <utility>

#include "absl/cleanup/cleanup.h"
#include "common/unique_fd.h"

namespace faultline {
namespace {

absl::Status Errno(const std::string& what, const std::string& path) {
  return absl::InternalError(fmt::format("{} {}: {}", what, path, std::strerror(errno)));
}

std::string Dirname(const std::string& path) {
  size_t slash = path.rfind('/');
  if (slash == std::string::npos) return ".";
  if (slash == 0) return "/";
  return path.substr(0, slash);
}

absl::Status SyncDir(const std::string& dir) {
  UniqueFd fd(::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!fd) return Errno("open", dir);
  int rc = ::fsync(fd.get());
  fd.reset();
  if (rc != 0) return Errno("fsync", dir);
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<std::string> ReadFileToString(const std::string& path, size_t max_bytes) {
  UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY));
  if (!fd) {
    return absl::NotFoundError(fmt::format("cannot read {}: {}", path, std::strerror(errno)));
  }
  struct stat st {};
  if (::fstat(fd.get(), &st) != 0) return Errno("fstat", path);
  if (!S_ISREG(st.st_mode)) {
    return absl::FailedPreconditionError(
        fmt::format("cannot read {}: not a regular file", path));
  }
  std::string data;
  char buf[16384];
  for (;;) {
    ssize_t n = ::read(fd.get(), buf, sizeof(buf));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return Errno("read", path);
    if (n == 0) return data;
    if (data.size() + static_cast<size_t>(n) > max_bytes) {
      return absl::ResourceExhaustedError(
          fmt::format("cannot read {}: larger than {} KiB", path, max_bytes / 1024));
    }
    data.append(buf, static_cast<size_t>(n));
  }
}

namespace {

const char* FileTypeName(mode_t mode) {
  if (S_ISDIR(mode)) return "a folder";
  if (S_ISFIFO(mode)) return "a FIFO";
  if (S_ISCHR(mode)) return "a character device";
  if (S_ISBLK(mode)) return "a block device";
  if (S_ISSOCK(mode)) return "a socket";
  return "not a regular file";
}

}  // namespace

absl::Status CheckRegularFileOrAbsent(const std::string& flag, const std::string& path) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) {
    if (errno == ENOENT) return absl::OkStatus();
    return absl::FailedPreconditionError(
        fmt::format("{}: cannot use {}: {}", flag, path, std::strerror(errno)));
  }
  if (S_ISREG(st.st_mode)) return absl::OkStatus();
  return absl::FailedPreconditionError(fmt::format(
      "{}: {} is {}; give a regular file (or a path that does not exist yet)", flag, path,
      FileTypeName(st.st_mode)));
}

absl::Status WriteFileDurably(const std::string& path, const std::string& data) {
  const std::string tmp = path + ".tmp";
  // A leftover of a crash, or something planted: replaced, never followed.
  if (::unlink(tmp.c_str()) != 0 && errno != ENOENT) return Errno("unlink", tmp);
  UniqueFd fd(::open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600));
  if (!fd) return Errno("open", tmp);
  // Until the rename succeeds, every failure closes and removes the temp file.
  absl::Cleanup remove_tmp = [&] {
    fd.reset();
    ::unlink(tmp.c_str());
  };
  size_t off = 0;
  while (off < data.size()) {
    ssize_t n = ::write(fd.get(), data.data() + off, data.size() - off);
    if (n < 0) {
      if (errno == EINTR) continue;
      return Errno("write", tmp);
    }
    off += static_cast<size_t>(n);
  }
  if (::fsync(fd.get()) != 0) return Errno("fsync", tmp);
  fd.reset();
  if (::rename(tmp.c_str(), path.c_str()) != 0) return Errno("rename", tmp);
  std::move(remove_tmp).Cancel();
  return SyncDir(Dirname(path));
}

absl::Status RemoveFileDurably(const std::string& path) {
  if (::unlink(path.c_str()) != 0 && errno != ENOENT) return Errno("unlink", path);
  return SyncDir(Dirname(path));
}

absl::Status MakeDirs(const std::string& path, unsigned mode) {
  if (path.empty()) return absl::InvalidArgumentError("empty folder path");
  std::string cur;
  size_t pos = 0;
  while (pos != std::string::npos) {
    size_t next = path.find('/', pos + 1);
    cur = path.substr(0, next);
    if (!cur.empty() && cur != "/") {
      if (::mkdir(cur.c_str(), mode) != 0 && errno != EEXIST) return Errno("mkdir", cur);
    }
    pos = next;
  }
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0 || !S_ISDIR(st.st_mode)) {
    return absl::FailedPreconditionError(fmt::format("{} is not a folder", path));
  }
  return absl::OkStatus();
}

}  // namespace faultline
