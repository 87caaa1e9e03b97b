#include "agent/faults/disk_fill_fault.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdlib>
#include <cstdio>
#include <cstring>
#include <set>
#include <utility>

#include "absl/cleanup/cleanup.h"
#include "absl/strings/match.h"
#include "absl/strings/str_split.h"
#include "absl/strings/string_view.h"
#include "common/endpoint.h"
#include "common/files.h"
#include "common/status_macros.h"
#include "common/unique_fd.h"
#include "common/units.h"
#include "fmt/format.h"
#include "spdlog/spdlog.h"

namespace faultline::agent {
namespace {

std::string StripTrailingSlashes(std::string path) {
  while (path.size() > 1 && path.back() == '/') path.pop_back();
  return path;
}

std::string JoinPath(const std::string& dir, const std::string& name) {
  return dir == "/" ? "/" + name : dir + "/" + name;
}

// mountinfo escapes space, tab, newline and backslash as \ooo.
std::string UnescapeMountField(absl::string_view s) {
  std::string out;
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '\\' && i + 3 < s.size() && s[i + 1] >= '0' && s[i + 1] <= '7' && s[i + 2] >= '0' && s[i + 2] <= '7' && s[i + 3] >= '0' &&
        s[i + 3] <= '7') {
      out.push_back(static_cast<char>((s[i + 1] - '0') * 64 + (s[i + 2] - '0') * 8 + (s[i + 3] - '0')));
      i += 3;
    } else {
      out.push_back(s[i]);
    }
  }
  return out;
}

// Only names we create: the prefix and a record id of safe characters.
bool IsFillFileName(const std::string& name) {
  if (!absl::StartsWith(name, kFillFilePrefix) || name.size() == sizeof(kFillFilePrefix) - 1) {
    return false;
  }
  return std::all_of(name.begin(), name.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' ||
           c == '-' || c == '_';
  });
}

const v1::Policy& PolicyOf(const FaultContext& ctx) {
  return ctx.policy != nullptr ? *ctx.policy : v1::Policy::default_instance();
}

// Which filesystem a path is on: stat's st_dev and its mount's superblock
// device. They differ on btrfs, whose subvolumes have st_devs of their own but
// share one superblock (and its space): either one equal is the same filesystem.
struct FsId {
  uint64_t st_dev = 0;
  uint64_t sb_dev = 0;
};

bool SameFilesystem(const FsId& a, const FsId& b) {
  return a.st_dev == b.st_dev || (a.sb_dev != 0 && a.sb_dev == b.sb_dev);
}

// fsyncs a folder so a created or removed entry survives a crash.
absl::Status SyncDir(const std::string& dir) {
  UniqueFd fd(open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!fd || fsync(fd.get()) != 0) {
    return absl::InternalError(fmt::format("fsync {}: {}", dir, std::strerror(errno)));
  }
  return absl::OkStatus();
}

std::string Dirname(const std::string& path) {
  const size_t slash = path.rfind('/');
  return slash == 0 ? "/" : path.substr(0, slash);
}

class RealFilesystem : public Filesystem {
 public:
  absl::StatusOr<std::string> RealDirectory(const std::string& path) const override {
    std::unique_ptr<char, void (*)(void*)> real(realpath(path.c_str(), nullptr), std::free);
    if (!real) {
      const int e = errno;
      if (e == ENOENT) {
        return absl::FailedPreconditionError(fmt::format("path: {} does not exist", path));
      }
      return absl::FailedPreconditionError(fmt::format("path: {}: {}", path, std::strerror(e)));
    }
    struct stat st {};
    if (stat(real.get(), &st) != 0) {
      return absl::FailedPreconditionError(
          fmt::format("path: {}: {}", path, std::strerror(errno)));
    }
    if (!S_ISDIR(st.st_mode)) {
      return absl::FailedPreconditionError(fmt::format("path: {} is not a directory", path));
    }
    return std::string(real.get());
  }

  absl::StatusOr<FsUsage> StatFs(const std::string& path) const override {
    struct statvfs vfs {};
    if (statvfs(path.c_str(), &vfs) != 0) {
      return absl::FailedPreconditionError(
          fmt::format("path: statvfs {}: {}", path, std::strerror(errno)));
    }
    FsUsage u;
    u.frsize = vfs.f_frsize != 0 ? vfs.f_frsize : vfs.f_bsize;
    u.blocks = vfs.f_blocks;
    u.bfree = vfs.f_bfree;
    u.bavail = vfs.f_bavail;
    return u;
  }

  absl::StatusOr<uint64_t> Device(const std::string& path) const override {
    struct stat st {};
    if (stat(path.c_str(), &st) != 0) {
      return absl::FailedPreconditionError(fmt::format("stat {}: {}", path, std::strerror(errno)));
    }
    return static_cast<uint64_t>(st.st_dev);
  }

  absl::StatusOr<std::vector<MountEntry>> Mounts() const override {
    ASSIGN_OR_RETURN(const std::string text, ReadFileToString("/proc/self/mountinfo"));
    return ParseMountInfo(text);
  }
};

// The mount holding `real` (`path` as given), if a fill may go there: not a
// pseudo or read-only filesystem, and tmpfs or ramfs only when the policy opts in.
absl::StatusOr<MountEntry> FillableMount(const std::string& path, const std::string& real,
                                          const std::vector<MountEntry>& mounts,
                                          const v1::Policy& policy) {
  const std::optional<MountEntry> mount = FindMount(mounts, real);
  if (!mount.has_value()) {
    return absl::FailedPreconditionError(fmt::format("path: no mount holds {}", real));
  }
  if (IsPseudoFilesystem(mount->fs_type)) {
    return absl::FailedPreconditionError(
        fmt::format("path: {} is on a {} filesystem ({}), which cannot be filled", path,
                    mount->fs_type, mount->mount_point));
  }
  if (IsRamFilesystem(mount->fs_type) && !policy.disk_fill_allow_tmpfs()) {
    return absl::PermissionDeniedError(fmt::format(
        "path: {} is on a {} filesystem ({}), which keeps its data in memory; this agent's "
        "policy does not allow filling it (set disk_fill_allow_tmpfs: true in the policy)",
        path, mount->fs_type, mount->mount_point));
  }
  if (mount->read_only) {
    return absl::FailedPreconditionError(
        fmt::format("path: {} is mounted read-only", mount->mount_point));
  }
  return *mount;
}

// The filesystem at `real` (a resolved directory).
absl::StatusOr<FsId> IdOf(const Filesystem& fs, const std::string& real,
                          const std::vector<MountEntry>& mounts) {
  FsId id;
  ASSIGN_OR_RETURN(id.st_dev, fs.Device(real));
  const std::optional<MountEntry> mount = FindMount(mounts, real);
  if (mount.has_value()) id.sb_dev = mount->dev;
  return id;
}

// The policy's lowest ceiling on the filesystem of `target`, or the default.
// A ceiling whose mount does not exist on this host applies to nothing here.
absl::StatusOr<Ceiling> CeilingFor(const Filesystem& fs, const MountEntry& target,
                                   const std::vector<MountEntry>& mounts, const v1::Policy& policy) {
  ASSIGN_OR_RETURN(const FsId target_id, IdOf(fs, target.mount_point, mounts));
  std::optional<Ceiling> lowest;
  for (const v1::DiskFillCeiling& c : policy.disk_fill_ceilings()) {
    absl::StatusOr<std::string> real = fs.RealDirectory(c.mount());
    absl::StatusOr<FsId> id = real.ok() ? IdOf(fs, *real, mounts) : real.status();
    if (!id.ok()) {
      spdlog::debug("disk_fill_ceilings {}: {}", c.mount(), std::string(id.status().message()));
      continue;
    }
    if (!SameFilesystem(*id, target_id)) continue;
    if (!lowest.has_value() || c.max_percent() < lowest->max_percent) {
      lowest = Ceiling{c.max_percent(), c.mount()};
    }
  }
  return lowest.value_or(Ceiling{});
}

// Fills a filesystem with one fallocate'd file. Holds only the Filesystem
// (thread-safe): thread-safe.
class DiskFillHandler : public FaultHandler {
 public:
  explicit DiskFillHandler(std::unique_ptr<Filesystem> fs) : fs_(std::move(fs)) {}

  v1::FaultSpec::KindCase kind_case() const override { return v1::FaultSpec::kDiskFill; }

  absl::StatusOr<std::vector<std::string>> Plan(const v1::FaultSpec& spec, const FaultContext& ctx,
                                                v1::FaultRecord* record) const override {
    const v1::DiskFillFault& fill = spec.disk_fill();
    ASSIGN_OR_RETURN(const FillRequest request, ParseFillRequest(fill));
    const std::string name = FillFileName(ctx.agent_id, record->id());
    if (!IsFillFileName(name)) {
      return absl::InternalError(
          fmt::format("record id \"{}\" cannot name a fill file", record->id()));
    }
    ASSIGN_OR_RETURN(const std::string real, fs_->RealDirectory(fill.path()));
    ASSIGN_OR_RETURN(const std::vector<MountEntry> mounts, fs_->Mounts());
    ASSIGN_OR_RETURN(const MountEntry mount, FillableMount(fill.path(), real, mounts, PolicyOf(ctx)));
    ASSIGN_OR_RETURN(const FsUsage usage, fs_->StatFs(real));
    ASSIGN_OR_RETURN(const FillPlan plan, ComputeFill(request, usage, mount.mount_point));
    ASSIGN_OR_RETURN(const Ceiling ceiling, CeilingFor(*fs_, mount, mounts, PolicyOf(ctx)));
    RETURN_IF_ERROR(CheckCeiling(request, plan, mount.mount_point, ceiling));

    v1::DiskFillState* state = record->mutable_disk_fill();
    state->set_file(JoinPath(mount.mount_point, name));
    state->set_bytes(plan.bytes);
    state->set_mount(mount.mount_point);
    record->set_target(fmt::format("{} ({}): {} -> {} used (+{})", mount.mount_point, mount.fs_type,
                                   FormatPercent(plan.used_percent_before) + "%",
                                   FormatPercent(plan.used_percent_after) + "%", FormatSize(plan.bytes)));
    return std::vector<std::string>{fmt::format(
        "create {} with {} allocated: {} goes from {}% to {}% used", state->file(),
        FormatSize(plan.bytes), mount.mount_point, FormatPercent(plan.used_percent_before),
        FormatPercent(plan.used_percent_after))};
  }

  // Creates the file (never an existing one) and allocates its blocks; on any
  // failure the file is removed before the error is returned.
  absl::Status Apply(v1::FaultRecord* record, const FaultContext& ctx) const override {
    auto request = ParseFillRequest(record->spec().disk_fill());
    const std::string field = request.ok() ? request->field : "path";
    const std::string& file = record->disk_fill().file();
    RETURN_IF_ERROR(CheckOwnFillPath(*record, ctx.agent_id));
    const uint64_t bytes = record->disk_fill().bytes();
    UniqueFd fd(open(file.c_str(),
                     O_CREAT | O_EXCL | O_WRONLY | O_NONBLOCK | O_CLOEXEC | O_NOFOLLOW, 0600));
    if (!fd) {
      return absl::FailedPreconditionError(
          fmt::format("{}: cannot create {}: {}", field, file, std::strerror(errno)));
    }
    // Until the file is allocated, synced and closed, any failure removes it.
    absl::Cleanup remove_file = [&] {
      fd.reset();
      if (unlink(file.c_str()) != 0 && errno != ENOENT) {
        spdlog::error("disk-fill {}: could not remove {} after a failed apply: {}", record->id(),
                      file, std::strerror(errno));
      }
    };
    auto fail = [&](const std::string& what, int err) {
      std::string why = std::strerror(err);
      if (err == EOPNOTSUPP) why = "the filesystem does not support fallocate";
      return absl::FailedPreconditionError(fmt::format("{}: {} {}: {}", field, what, file, why));
    };
    if (bytes > 0) {
      int rc;
      do {
        rc = fallocate(fd.get(), 0, 0, static_cast<off_t>(bytes));
      } while (rc != 0 && errno == EINTR);
      if (rc != 0) return fail(fmt::format("cannot allocate {} in", FormatSize(bytes)), errno);
    }
    if (fsync(fd.get()) != 0) return fail("cannot fsync", errno);
    // close() once, by hand: its error (e.g. a deferred write-back failure) matters here.
    if (close(fd.release()) != 0) return fail("cannot close", errno);
    std::move(remove_file).Cancel();
    if (absl::Status s = SyncDir(Dirname(file)); !s.ok()) {
      // The file exists and is allocated; only its directory entry's durability
      // is in doubt, and the ledger already names it.
      spdlog::warn("disk-fill {}: {}", record->id(), std::string(s.message()));
    }
    return absl::OkStatus();
  }

  // Unlinks the file; a missing file (never created, or already removed) is fine.
  // A record naming anything but this agent's own fill file for that record, or
  // a file that is not a regular one, is refused: logged, nothing touched, and
  // the record is dropped (OK), since retrying it could never succeed.
  absl::Status Revert(const v1::FaultRecord& record, const FaultContext& ctx) const override {
    if (record.disk_fill().file().empty()) return absl::OkStatus();  // Plan never filled the record
    absl::Status own = CheckOwnFillPath(record, ctx.agent_id);
    if (!own.ok()) {
      spdlog::error("disk-fill {}: {}; ledger record dropped", record.id(), std::string(own.message()));
      return absl::OkStatus();
    }
    return RemoveFillFile(record);
  }

  // Removes this agent's own fill files (FillFileName with ctx.agent_id) at the
  // root of every writable real mount; another agent's are left alone.
  absl::StatusOr<std::vector<std::string>> Sweep(const FaultContext& ctx) const override {
    if (ctx.agent_id.empty()) return std::vector<std::string>{};
    ASSIGN_OR_RETURN(const std::vector<MountEntry> mounts, fs_->Mounts());
    std::vector<std::string> removed;
    std::set<std::string> seen;
    for (const MountEntry& m : mounts) {
      if (IsPseudoFilesystem(m.fs_type) || m.read_only) continue;
      if (!seen.insert(m.mount_point).second) continue;
      SweepMountRoot(m.mount_point, ctx.agent_id, &removed);
    }
    return removed;
  }

 private:
  // A missing file is normally one already removed. But if the filesystem is
  // not mounted now (e.g. a revert at boot before the mount), the file may
  // reappear with it: say so; the sweep at the next agent start removes it.
  // Unlinks the record's file (checked by CheckOwnFillPath) through its folder,
  // opened O_NOFOLLOW, if it is a regular file.
  absl::Status RemoveFillFile(const v1::FaultRecord& record) const {
    const std::string& file = record.disk_fill().file();
    const std::string dir = Dirname(file);
    const std::string name = file.substr(file.rfind('/') + 1);
    UniqueFd dfd(open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC));
    struct stat st {};
    if (!dfd || fstatat(dfd.get(), name.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0) {
      if (errno != ENOENT) {
        return absl::InternalError(fmt::format("lstat {}: {}", file, std::strerror(errno)));
      }
      WarnIfUnmounted(record);
      return absl::OkStatus();
    }
    if (!S_ISREG(st.st_mode)) {
      spdlog::error("disk-fill {}: {} is not a regular file; left alone, ledger record dropped",
                    record.id(), file);
      return absl::OkStatus();
    }
    if (unlinkat(dfd.get(), name.c_str(), 0) != 0 && errno != ENOENT) {
      return absl::InternalError(fmt::format("unlink {}: {}", file, std::strerror(errno)));
    }
    if (fsync(dfd.get()) != 0) {
      spdlog::warn("disk-fill {}: fsync {}: {}", record.id(), dir, std::strerror(errno));
    }
    return absl::OkStatus();
  }

  void WarnIfUnmounted(const v1::FaultRecord& record) const {
    const std::string& mount = record.disk_fill().mount();
    if (mount.empty() || mount == "/") return;
    absl::StatusOr<std::vector<MountEntry>> mounts = fs_->Mounts();
    if (!mounts.ok()) return;
    for (const MountEntry& m : *mounts) {
      if (m.mount_point == mount) return;
    }
    spdlog::warn(
        "disk-fill {}: {} is missing and {} is not mounted now; if that filesystem is mounted "
        "later, the agent's start-up sweep removes the fill file",
        record.id(), record.disk_fill().file(), mount);
  }

  static void SweepMountRoot(const std::string& root, const std::string& agent_id,
                             std::vector<std::string>* removed) {
    std::unique_ptr<DIR, int (*)(DIR*)> dir(opendir(root.c_str()), closedir);
    if (!dir) {
      spdlog::debug("disk-fill sweep: cannot read {}: {}", root, std::strerror(errno));
      return;
    }
    bool any = false;
    while (dirent* ent = readdir(dir.get())) {
      const std::string name = ent->d_name;
      if (!IsOwnFillFile(name, agent_id)) continue;
      struct stat st {};
      if (fstatat(dirfd(dir.get()), name.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0 ||
          !S_ISREG(st.st_mode)) {
        continue;
      }
      const std::string path = JoinPath(root, name);
      if (unlinkat(dirfd(dir.get()), name.c_str(), 0) != 0) {
        spdlog::warn("disk-fill sweep: cannot remove {}: {}", path, std::strerror(errno));
        continue;
      }
      any = true;
      removed->push_back(path);
    }
    if (any && fsync(dirfd(dir.get())) != 0) {
      spdlog::warn("disk-fill sweep: fsync {}: {}", root, std::strerror(errno));
    }
  }

  std::unique_ptr<Filesystem> fs_;
};

}  // namespace

std::string FillFileName(const std::string& agent_id, const std::string& fault_id) {
  if (agent_id.empty()) return kFillFilePrefix + fault_id;
  return fmt::format("{}{}-{}", kFillFilePrefix, agent_id, fault_id);
}

bool IsOwnFillFile(const std::string& name, const std::string& agent_id) {
  if (agent_id.empty() || !IsFillFileName(name)) return false;
  const std::string own = fmt::format("{}{}-", kFillFilePrefix, agent_id);
  return name.size() > own.size() && absl::StartsWith(name, own);
}

absl::Status CheckOwnFillPath(const v1::FaultRecord& record, const std::string& agent_id) {
  const std::string& file = record.disk_fill().file();
  const std::string& mount = record.disk_fill().mount();
  const std::string name = FillFileName(agent_id, record.id());
  if (!IsFillFileName(name) || mount.empty() || mount[0] != '/' || file != JoinPath(mount, name)) {
    return absl::InternalError(fmt::format(
        "disk_fill.file: \"{}\" is not this agent's fill file for fault {} (expected {} at the "
        "root of disk_fill.mount \"{}\"); refusing to touch it",
        file, record.id(), name, mount));
  }
  return absl::OkStatus();
}

std::vector<MountEntry> ParseMountInfo(const std::string& text) {
  std::vector<MountEntry> out;
  for (absl::string_view line : absl::StrSplit(text, '\n', absl::SkipEmpty())) {
    std::vector<absl::string_view> f = absl::StrSplit(line, ' ', absl::SkipEmpty());
    // id parent maj:min root mount_point options [optional...] - type source super_options
    auto dash = std::find(f.begin(), f.end(), absl::string_view("-"));
    if (f.size() < 7 || dash == f.end() || dash - f.begin() < 6 || f.end() - dash < 3) continue;
    MountEntry m;
    unsigned major = 0, minor = 0;
    if (std::sscanf(std::string(f[2]).c_str(), "%u:%u", &major, &minor) == 2) {
      m.dev = makedev(major, minor);
    }
    m.mount_point = UnescapeMountField(f[4]);
    for (absl::string_view opt : absl::StrSplit(f[5], ',')) {
      if (opt == "ro") m.read_only = true;
    }
    m.fs_type = UnescapeMountField(*(dash + 1));
    m.source = UnescapeMountField(*(dash + 2));
    out.push_back(std::move(m));
  }
  return out;
}

std::optional<MountEntry> FindMount(const std::vector<MountEntry>& mounts,
                                    const std::string& real_path) {
  std::optional<MountEntry> best;
  for (const MountEntry& m : mounts) {
    const std::string& mp = m.mount_point;
    const bool holds =
        mp == "/" ? !real_path.empty() && real_path[0] == '/'
                  : real_path == mp || (absl::StartsWith(real_path, mp) && real_path[mp.size()] == '/');
    if (!holds) continue;
    if (!best.has_value() || mp.size() >= best->mount_point.size()) best = m;
  }
  return best;
}

bool IsPseudoFilesystem(const std::string& fs_type) {
  static const std::set<std::string> kPseudo = {
      "proc",     "sysfs",   "devtmpfs",   "devpts",     "mqueue",   "bpf",
      "tracefs",  "debugfs", "securityfs", "pstore",     "configfs", "fusectl",
      "autofs",   "hugetlbfs", "nsfs",     "binfmt_misc", "efivarfs", "rpc_pipefs",
      "selinuxfs",
  };
  return kPseudo.count(fs_type) > 0 || absl::StartsWith(fs_type, "cgroup");
}

bool IsRamFilesystem(const std::string& fs_type) { return fs_type == "tmpfs" || fs_type == "ramfs"; }

std::string FormatPercent(double v) {
  std::string s = fmt::format("{:.2f}", v);
  while (s.back() == '0') s.pop_back();
  if (s.back() == '.') s.pop_back();
  return s;
}

absl::StatusOr<FillPlan> ComputeFill(const FillRequest& request, const FsUsage& usage,
                                     const std::string& where) {
  if (usage.frsize == 0 || usage.blocks == 0) {
    return absl::FailedPreconditionError(
        fmt::format("path: the filesystem at {} reports no capacity", where));
  }
  FillPlan plan;
  const uint64_t bs = usage.frsize;
  const uint64_t avail = usage.bavail * bs;
  plan.used = (usage.blocks > usage.bfree ? usage.blocks - usage.bfree : 0) * bs;
  plan.size = plan.used + avail;
  switch (request.by) {
    case FillRequest::By::kPercent: {
      const long double target_ld =
          std::ceil(static_cast<long double>(request.percent) / 100.0L * plan.size);
      const uint64_t target = static_cast<uint64_t>(target_ld);
      uint64_t need = target > plan.used ? target - plan.used : 0;
      need = (need + bs - 1) / bs * bs;  // whole blocks, so used really reaches P%
      plan.bytes = std::min(need, avail);
      break;
    }
    case FillRequest::By::kLeaveFree: {
      uint64_t need = avail > request.size ? avail - request.size : 0;
      plan.bytes = need / bs * bs;  // whole blocks, so at least leave_free stays free
      break;
    }
    case FillRequest::By::kBytes:
      if (request.size > avail) {
        return absl::FailedPreconditionError(
            fmt::format("bytes: {} requested but only {} is free on {}", FormatSize(request.size),
                        FormatSize(avail), where));
      }
      plan.bytes = request.size;
      break;
  }
  if (plan.size > 0) {
    plan.used_percent_before = 100.0 * static_cast<double>(plan.used) / static_cast<double>(plan.size);
    plan.used_percent_after =
        100.0 * static_cast<double>(plan.used + plan.bytes) / static_cast<double>(plan.size);
  }
  return plan;
}

absl::Status CheckCeiling(const FillRequest& request, const FillPlan& plan, const std::string& where,
                          const Ceiling& ceiling) {
  if (plan.bytes == 0) return absl::OkStatus();
  // For percent the request itself is the result (block rounding aside, which
  // must not turn a fill to exactly the ceiling into a refusal).
  const double after =
      request.by == FillRequest::By::kPercent ? request.percent : plan.used_percent_after;
  if (after <= ceiling.max_percent) return absl::OkStatus();
  std::string which;
  if (ceiling.mount.empty()) {
    which = fmt::format(
        "the default ceiling of {}% (the policy's disk_fill_ceilings name no mount on this "
        "filesystem; add one, e.g. {{mount: {}, max_percent: 100}}, to allow more)",
        FormatPercent(ceiling.max_percent), where);
  } else {
    which = fmt::format("the policy ceiling of {}%", FormatPercent(ceiling.max_percent));
    if (StripTrailingSlashes(ceiling.mount) != StripTrailingSlashes(where)) {
      which += fmt::format(" (disk_fill_ceilings: {} is the same filesystem)", ceiling.mount);
    }
  }
  return absl::PermissionDeniedError(fmt::format("{}: filling would take {} to {}%, above {}",
                                                 request.field, where, FormatPercent(after), which));
}

std::unique_ptr<Filesystem> MakeRealFilesystem() { return std::make_unique<RealFilesystem>(); }

std::unique_ptr<FaultHandler> MakeDiskFillHandler() {
  return MakeDiskFillHandler(MakeRealFilesystem());
}

std::unique_ptr<FaultHandler> MakeDiskFillHandler(std::unique_ptr<Filesystem> fs) {
  return std::make_unique<DiskFillHandler>(std::move(fs));
}

}  // namespace faultline::agent
