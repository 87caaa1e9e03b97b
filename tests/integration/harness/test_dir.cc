#include "harness/test_dir.h"

#include <arpa/inet.h>
#include <fmt/format.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <vector>

#include "absl/status/status.h"

namespace faultline::itest {

std::string TestName(const std::string& suffix) {
  return fmt::format("fltest-{}-{}", getpid(), suffix);
}

absl::StatusOr<std::unique_ptr<TestDir>> TestDir::Create(const std::string& label) {
  std::string templ = "/tmp/" + TestName(label) + "-XXXXXX";
  std::vector<char> buf(templ.begin(), templ.end());
  buf.push_back('\0');
  if (mkdtemp(buf.data()) == nullptr) {
    return absl::InternalError(fmt::format("mkdtemp {}: {}", templ, std::strerror(errno)));
  }
  return std::unique_ptr<TestDir>(new TestDir(buf.data()));
}

TestDir::~TestDir() {
  std::error_code ec;
  std::filesystem::remove_all(path_, ec);
}

absl::StatusOr<std::string> TestDir::MakeSubdir(const std::string& name) const {
  std::string p = Path(name);
  std::error_code ec;
  std::filesystem::create_directories(p, ec);
  if (ec) return absl::InternalError(fmt::format("mkdir {}: {}", p, ec.message()));
  return p;
}

absl::Status TestDir::WriteFile(const std::string& name, const std::string& contents) const {
  std::ofstream out(Path(name), std::ios::binary | std::ios::trunc);
  out << contents;
  out.close();
  if (!out) return absl::InternalError(fmt::format("cannot write {}", Path(name)));
  return absl::OkStatus();
}

absl::StatusOr<std::string> MakeVictimBinary(const TestDir& dir, const std::string& name) {
  std::string dest = dir.Path(name);
  std::error_code ec;
  // Several victims may share a name (and the copy may be running: ETXTBSY).
  if (std::filesystem::exists(dest, ec)) return dest;
  std::filesystem::copy_file("/bin/sleep", dest,
                             std::filesystem::copy_options::overwrite_existing, ec);
  if (ec) return absl::InternalError(fmt::format("copy /bin/sleep to {}: {}", dest, ec.message()));
  std::filesystem::permissions(dest, std::filesystem::perms(0755),
                               std::filesystem::perm_options::replace, ec);
  if (ec) return absl::InternalError(fmt::format("chmod {}: {}", dest, ec.message()));
  return dest;
}

absl::StatusOr<int> PickFreePort() {
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return absl::InternalError(fmt::format("socket: {}", std::strerror(errno)));
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = 0;
  socklen_t len = sizeof(addr);
  if (bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0 ||
      getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
    int e = errno;
    close(fd);
    return absl::InternalError(fmt::format("bind 127.0.0.1:0: {}", std::strerror(e)));
  }
  close(fd);
  return ntohs(addr.sin_port);
}

}  // namespace faultline::itest
