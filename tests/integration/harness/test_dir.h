// Per-test scratch directories and names, all under the fltest-<pid>- prefix that
// scripts/cleanup-test-leftovers recognises.
#ifndef FAULTLINE_TESTS_INTEGRATION_HARNESS_TEST_DIR_H_
#define FAULTLINE_TESTS_INTEGRATION_HARNESS_TEST_DIR_H_

#include <memory>
#include <string>

#include "absl/status/statusor.h"

namespace faultline::itest {

// "fltest-<getpid()>-" + suffix: the name of anything a test creates.
std::string TestName(const std::string& suffix);

// A fresh directory /tmp/fltest-<pid>-<label>-XXXXXX, removed (recursively) by the
// destructor. Owned by the test; not thread-safe. Destroy SimHosts that mount
// inside it first (declare the TestDir before them).
class TestDir {
 public:
  static absl::StatusOr<std::unique_ptr<TestDir>> Create(const std::string& label);
  ~TestDir();
  TestDir(const TestDir&) = delete;
  TestDir& operator=(const TestDir&) = delete;

  const std::string& path() const { return path_; }
  // path()/name
  std::string Path(const std::string& name) const { return path_ + "/" + name; }
  // Creates path()/name (and parents); returns its path.
  absl::StatusOr<std::string> MakeSubdir(const std::string& name) const;
  absl::Status WriteFile(const std::string& name, const std::string& contents) const;

 private:
  explicit TestDir(std::string path) : path_(std::move(path)) {}
  std::string path_;
};

// Copies /bin/sleep to dir/name (mode 0755) so victims have a distinctive comm
// (keep `name` under 16 characters). Returns the copy's path.
absl::StatusOr<std::string> MakeVictimBinary(const TestDir& dir, const std::string& name);

// A TCP port on 127.0.0.1 that was free a moment ago.
absl::StatusOr<int> PickFreePort();

}  // namespace faultline::itest

#endif  // FAULTLINE_TESTS_INTEGRATION_HARNESS_TEST_DIR_H_
