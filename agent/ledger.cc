#include "agent/ledger.h"

#include <dirent.h>
#include <fcntl.h>
#include <fmt/format.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstring>
#include <random>
#include <utility>

#include "common/endpoint.h"
#include "common/files.h"
#include "common/status_macros.h"
#include "common/unique_fd.h"

namespace faultline::agent {
namespace {

constexpr char kSuffix[] = ".fault";
// WriteFileDurably's temporary file: <id>.fault.tmp until it is renamed.
constexpr char kTmpSuffix[] = ".fault.tmp";

bool EndsWith(const std::string& s, const char* suffix) {
  const size_t n = std::strlen(suffix);
  return s.size() > n && s.compare(s.size() - n, n, suffix) == 0;
}

// Removes <id>.fault.tmp files a killed agent left mid-write (only names of
// that exact form; anything else in the folder is not ours to delete). The
// caller holds the state folder's lock, so no write is in progress.
std::vector<std::string> RemoveStrayTmpFiles(const std::string& dir) {
  std::vector<std::string> removed;
  std::unique_ptr<DIR, int (*)(DIR*)> d(::opendir(dir.c_str()), ::closedir);
  if (!d) return removed;
  while (dirent* e = ::readdir(d.get())) {
    const std::string name = e->d_name;
    if (!EndsWith(name, kTmpSuffix) ||
        !IsValidFaultId(name.substr(0, name.size() - std::strlen(kTmpSuffix)))) {
      continue;
    }
    if (::unlinkat(::dirfd(d.get()), name.c_str(), 0) == 0) removed.push_back(dir + "/" + name);
  }
  if (!removed.empty()) ::fsync(::dirfd(d.get()));
  return removed;
}

// The state folder's identity, made once (see Ledger::agent_id()).
absl::StatusOr<std::string> LoadOrMakeAgentId(const std::string& state_dir) {
  const std::string path = state_dir + "/agent-id";
  auto text = ReadFileToString(path);
  if (text.ok()) {
    std::string id = *text;
    while (!id.empty() && (id.back() == '\n' || id.back() == ' ')) id.pop_back();
    if (IsValidAgentId(id)) return id;
  }
  std::random_device rd;
  const uint64_t r = (static_cast<uint64_t>(rd()) << 32) ^ rd();
  std::string id = fmt::format("{:012x}", r & 0xffffffffffffULL);
  RETURN_IF_ERROR(WriteFileDurably(path, id + "\n"));
  return id;
}

}  // namespace

bool IsValidAgentId(const std::string& id) {
  return id.size() == 12 && std::all_of(id.begin(), id.end(), [](char c) {
           return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f');
         });
}

bool IsValidFaultId(const std::string& id) {
  if (id.empty() || id.size() > 64) return false;
  return std::all_of(id.begin(), id.end(),
                     [](char c) { return std::isalnum(static_cast<unsigned char>(c)) || c == '-'; });
}

namespace {

// The state folder and its ledger folder, made if missing. Errors name
// --state-dir: a FIFO or a regular file there is "not a folder".
absl::Status MakeStateDirs(const std::string& state_dir) {
  struct stat st {};
  if (::stat(state_dir.c_str(), &st) == 0 && !S_ISDIR(st.st_mode)) {
    const char* what = S_ISFIFO(st.st_mode) ? " (a FIFO)" : S_ISREG(st.st_mode) ? " (a file)" : "";
    return absl::FailedPreconditionError(
        fmt::format("--state-dir {}: not a folder{}", state_dir, what));
  }
  if (absl::Status made = MakeDirs(state_dir + "/ledger", 0700); !made.ok()) {
    return absl::FailedPreconditionError(
        fmt::format("--state-dir {}: {}", state_dir, std::string(made.message())));
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<std::unique_ptr<Ledger>> Ledger::Open(const std::string& state_dir) {
  RETURN_IF_ERROR(MakeStateDirs(state_dir));
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
  std::unique_ptr<Ledger> ledger(new Ledger(state_dir + "/ledger", std::move(fd)));
  ledger->removed_tmp_ = RemoveStrayTmpFiles(ledger->dir_);
  ASSIGN_OR_RETURN(ledger->agent_id_, LoadOrMakeAgentId(state_dir));
  return ledger;
}

absl::StatusOr<v1::FaultRecord> ParseLedgerRecord(const std::string& data, const std::string& id) {
  v1::FaultRecord record;
  if (!record.ParseFromString(data)) {
    return absl::InvalidArgumentError("ledger: not a FaultRecord");
  }
  if (record.id() != id) {
    return absl::InvalidArgumentError(
        fmt::format("ledger: the record's id does not match its file name {}", id));
  }
  return record;
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
    absl::StatusOr<v1::FaultRecord> record =
        data.ok() ? ParseLedgerRecord(*data, name.substr(0, name.size() - suffix_len))
                  : absl::StatusOr<v1::FaultRecord>(data.status());
    if (!record.ok()) {
      ::rename(path.c_str(), (path + ".corrupt").c_str());
      if (problems) problems->push_back(fmt::format("unreadable ledger record {} (kept as .corrupt)", path));
      continue;
    }
    records.push_back(*std::move(record));
  }
  std::sort(records.begin(), records.end(), [](const v1::FaultRecord& a, const v1::FaultRecord& b) {
    if (a.injected_mono_ns() != b.injected_mono_ns()) return a.injected_mono_ns() < b.injected_mono_ns();
    return a.id() < b.id();
  });
  return records;
}

}  // namespace faultline::agent
