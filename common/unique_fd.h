// One owner for a file descriptor (DESIGN.md, "Conventions": one owner per
// resource kind). Modelled on libcamera's UniqueFD.
#ifndef FAULTLINE_COMMON_UNIQUE_FD_H_
#define FAULTLINE_COMMON_UNIQUE_FD_H_

#include <unistd.h>

#include <utility>

namespace faultline {

// Owns at most one file descriptor and closes it when destroyed or reset. An
// instance is the sole owner of its fd: it cannot be copied, only moved (the
// moved-from instance then holds none), and release() hands the fd back to the
// caller, who must close it. close() is called once and its result ignored: on
// Linux the fd is gone even when close() fails with EINTR, so retrying could
// close an fd another thread has just opened. Callers that must see close()'s
// error (e.g. after writing) call ::close(fd.release()) themselves.
// Thread-compatible: one instance must not be used from two threads at once.
class UniqueFd {
 public:
  UniqueFd() = default;
  // Takes ownership of `fd`; a negative value means "no fd".
  explicit UniqueFd(int fd) : fd_(fd < 0 ? -1 : fd) {}
  UniqueFd(UniqueFd&& other) noexcept : fd_(other.release()) {}
  UniqueFd& operator=(UniqueFd&& other) noexcept {
    reset(other.release());
    return *this;
  }
  UniqueFd(const UniqueFd&) = delete;
  UniqueFd& operator=(const UniqueFd&) = delete;
  ~UniqueFd() { reset(); }

  // The fd, still owned by this instance; -1 when it holds none.
  int get() const { return fd_; }
  bool is_valid() const { return fd_ >= 0; }
  explicit operator bool() const { return is_valid(); }

  // Gives up ownership without closing; returns the fd (or -1).
  [[nodiscard]] int release() { return std::exchange(fd_, -1); }

  // Closes the held fd (if any) and takes ownership of `fd` instead.
  // Resetting to the fd already held keeps it open.
  void reset(int fd = -1) {
    if (fd < 0) fd = -1;
    const int old = std::exchange(fd_, fd);
    if (old >= 0 && old != fd) ::close(old);
  }

  void swap(UniqueFd& other) noexcept { std::swap(fd_, other.fd_); }

 private:
  int fd_ = -1;
};

}  // namespace faultline

#endif  // FAULTLINE_COMMON_UNIQUE_FD_H_
