// libFuzzer target: the agent's policy loader (agent/policy.h, --policy FILE).
// LoadPolicy reads a file, so each input is written to one scratch file in a
// folder of our own (fltest-<pid>-fuzz-policy-*, removed at exit).
#include <fcntl.h>
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "agent/policy.h"
#include "spec/fault_spec.h"

namespace {

std::string* scratch_dir = nullptr;
std::string* scratch_file = nullptr;

void RemoveScratch() {
  if (scratch_file != nullptr) ::unlink(scratch_file->c_str());
  if (scratch_dir != nullptr) ::rmdir(scratch_dir->c_str());
}

const std::string& ScratchFile() {
  if (scratch_file == nullptr) {
    const char* tmp = std::getenv("TMPDIR");
    std::string templ = std::string(tmp != nullptr && *tmp != '\0' ? tmp : "/tmp") + "/fltest-" +
                        std::to_string(::getpid()) + "-fuzz-policy-XXXXXX";
    std::vector<char> buf(templ.begin(), templ.end());
    buf.push_back('\0');
    if (::mkdtemp(buf.data()) == nullptr) {
      std::perror("mkdtemp");
      std::abort();
    }
    scratch_dir = new std::string(buf.data());
    scratch_file = new std::string(*scratch_dir + "/policy.yaml");
    std::atexit(RemoveScratch);
  }
  return *scratch_file;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string& path = ScratchFile();
  int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0) std::abort();
  size_t off = 0;
  while (off < size) {
    ssize_t n = ::write(fd, data + off, size - off);
    if (n <= 0) std::abort();
    off += static_cast<size_t>(n);
  }
  ::close(fd);
  static const std::vector<std::string> kKinds = [] {
    std::vector<std::string> kinds;
    for (const auto& k : faultline::spec::Kinds()) kinds.push_back(k.name);
    return kinds;
  }();
  auto policy = faultline::agent::LoadPolicy(path, kKinds);
  if (policy.ok()) {
    for (const auto& k : kKinds) (void)faultline::agent::PolicyAllows(*policy, k);
  }
  return 0;
}
