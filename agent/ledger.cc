#include "agent/ledger.h"

#include <dirent.h>
#include <fcntl.h>
#include <fmt/format.h>
#include <sys/file.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstring>
#include <utility>

#include "common/endpoint.h"
#include "common/files.h"
#include "common/status_macros.h"
#include "common/unique_fd.h"

namespace faultline::agent {
namespace {

constexpr char kSuffix[] = ".fault";

}  // namespace

bool IsValidFaultId(const std::string& id) {
  if (id.empty() || id.size() > 64) return false;
  return std::all_of(id.begin(), id.end(),
                     [](char c) { return std::isalnum(static_cast<unsigned char>(c)) || c == '-'; });
}

absl::StatusOr<std::unique_ptr<Ledger>> Ledger::Open(const std::string& state_dir) {
  RETURN_IF_ERROR(MakeDirs(state_dir + "/ledger", 0700));
  const std::string lock_path = state_dir + "/lock";
  UniqueFd fd(::open(lock_path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600));
  if (!fd) {
    return absl::FailedPreconditionError(
        fmt::format("--state-dir: cannot open {}: {}", lock_path, std::strerror(errno)));
  }
  if (::flock(fd.get(), LOCK_EX | LOCK_NB) != 0) {
    char buf[32] = {};
    ssize_t n = ::pread(fd.get(), buf, sizeof(buf) - 1, 0);
    return absl::FailedPreconditionError(fmt::format(
        "--state-dir: {} is in use by another faultline-agent (pid {})", state_dir,
        n > 0 ? std::string(buf, static_cast<size_t>(n)) : "unknown"));
  }
  const std::string pid = std::to_string(::getpid());
  if (::ftruncate(fd.get(), 0) != 0 || ::pwrite(fd.get(), pid.data(), pid.size(), 0) < 0) {
    // The pid is only informative; the lock itself is what matters.
  }
  return std::unique_ptr<Ledger>(new Ledger(state_dir + "/ledger", std::move(fd)));
}

std::string Ledger::PathFor(const std::string& id) const {
  return fmt::format("{}/{}{}", dir_, id, kSuffix);
}

absl::Status Ledger::Put(const v1::FaultRecord& record) {
  if (!IsValidFaultId(record.id())) {
    return absl::InternalError(fmt::format("ledger: invalid fault id \"{}\"", record.id()));
  }
  std::string data;
  if (!record.SerializeToString(&data)) return absl::InternalError("ledger: cannot serialize");
  return WriteFileDurably(PathFor(record.id()), data);
}

absl::Status Ledger::Remove(const std::string& id) {
  if (!IsValidFaultId(id)) return absl::OkStatus();
  return RemoveFileDurably(PathFor(id));
}

absl::StatusOr<std::vector<v1::FaultRecord>> Ledger::Load(
    std::vector<std::string>* problems) const {
  std::unique_ptr<DIR, int (*)(DIR*)> dir(::opendir(dir_.c_str()), ::closedir);
  if (!dir) {
    return absl::InternalError(fmt::format("ledger: cannot read {}: {}", dir_, std::strerror(errno)));
  }
  std::vector<v1::FaultRecord> records;
  const size_t suffix_len = std::strlen(kSuffix);
  while (dirent* e = ::readdir(dir.get())) {
    std::string name = e->d_name;
    if (name.size() <= suffix_len || name.compare(name.size() - suffix_len, suffix_len, kSuffix) != 0) {
      continue;
    }
    const std::string path = dir_ + "/" + name;
    auto data = ReadFileToString(path);
    v1::FaultRecord record;
    if (!data.ok() || !record.ParseFromString(*data) ||
        record.id() != name.substr(0, name.size() - suffix_len)) {
      ::rename(path.c_str(), (path + ".corrupt").c_str());
      if (problems) problems->push_back(fmt::format("unreadable ledger record {} (kept as .corrupt)", path));
      continue;
    }
    records.push_back(std::move(record));
  }
  std::sort(records.begin(), records.end(), [](const v1::FaultRecord& a, const v1::FaultRecord& b) {
    if (a.injected_mono_ns() != b.injected_mono_ns()) return a.injected_mono_ns() < b.injected_mono_ns();
    return a.id() < b.id();
  });
  return records;
}

}  // namespace faultline::agent
