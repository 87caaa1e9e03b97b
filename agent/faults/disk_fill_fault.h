// The `disk-fill` fault kind: one tagged, fallocate'd file at the root of the
// filesystem that holds `path`, reverted by unlinking it. The arithmetic and the
// mount table parsing are pure functions; statvfs, stat, realpath and
// /proc/self/mountinfo sit behind the Filesystem interface for tests.
#ifndef FAULTLINE_AGENT_FAULTS_DISK_FILL_FAULT_H_
#define FAULTLINE_AGENT_FAULTS_DISK_FILL_FAULT_H_

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "agent/faults/fault_handler.h"
#include "faultline/v1/faults.pb.h"
#include "faultline/v1/policy.pb.h"
#include "spec/disk_fill.h"

namespace faultline::agent {

// Every fill file is named kFillFilePrefix + agent id + "-" + record id
// (FillFileName), so a sweep finds leftovers even without the ledger, and only
// its own agent's: several agents (each with its own state folder) may fill one
// shared filesystem, and one's start-up sweep must not delete another's live fill.
inline constexpr char kFillFilePrefix[] = ".faultline-fill-";

// ".faultline-fill-<agent_id>-<fault_id>"; without an agent id (a handler used
// outside an agent) ".faultline-fill-<fault_id>", which no sweep removes.
std::string FillFileName(const std::string& agent_id, const std::string& fault_id);
// Whether `name` is a fill file of the agent `agent_id` (never true for an
// empty agent id).
bool IsOwnFillFile(const std::string& name, const std::string& agent_id);

// The cross-check before Apply or Revert touches a ledger record's file: it must
// be exactly <mount>/FillFileName(agent_id, record id) of that record, so a
// crafted or damaged record cannot name any other path. INTERNAL naming
// disk_fill.file otherwise.
absl::Status CheckOwnFillPath(const v1::FaultRecord& record, const std::string& agent_id);

// A fill may not take a filesystem past this when the policy names no
// disk_fill_ceilings entry for it (docs/agent.md, "Policy file").
inline constexpr double kDefaultFillCeilingPercent = 95;

// The statvfs numbers the fill arithmetic needs.
struct FsUsage {
  uint64_t frsize = 0;  // f_frsize: the unit of the block counts
  uint64_t blocks = 0;  // f_blocks
  uint64_t bfree = 0;   // f_bfree (includes blocks reserved for root)
  uint64_t bavail = 0;  // f_bavail (free to unprivileged users)
};

// One line of /proc/self/mountinfo.
struct MountEntry {
  uint64_t dev = 0;         // major:minor of its superblock (makedev), as st_dev
  std::string mount_point;  // unescaped (\040 -> space)
  std::string fs_type;
  std::string source;
  bool read_only = false;  // per-mount "ro" option
};

// Parses /proc/PID/mountinfo text; malformed lines are skipped.
std::vector<MountEntry> ParseMountInfo(const std::string& text);

// The mount holding `real_path` (absolute, symlinks resolved): the longest
// mount point equal to it or a parent folder of it; of equal ones the last
// listed, which is mounted on top. nullopt when none matches.
std::optional<MountEntry> FindMount(const std::vector<MountEntry>& mounts,
                                    const std::string& real_path);

// proc, sysfs, cgroup*, devtmpfs, ...: filesystems a fill never targets and a
// sweep never scans.
bool IsPseudoFilesystem(const std::string& fs_type);

// tmpfs and ramfs: a fill there pins the host's memory, so the policy has to
// opt in (disk_fill_allow_tmpfs).
bool IsRamFilesystem(const std::string& fs_type);

using spec::FillRequest;
using spec::ParseFillRequest;

// What a fill will do to the filesystem.
struct FillPlan {
  uint64_t bytes = 0;          // to allocate (0: already there, nothing to add)
  uint64_t size = 0;           // used + available, as df counts it
  uint64_t used = 0;
  double used_percent_before = 0;
  double used_percent_after = 0;
};

// The bytes to allocate. percent: ceil(P% of size) - used, rounded up to whole
// blocks (0 if already there); leave_free: available - leave_free, rounded down
// to whole blocks (0 if less is free already); bytes: as given.
// FAILED_PRECONDITION naming the field when more than is available is asked.
// `where` names the filesystem in messages.
absl::StatusOr<FillPlan> ComputeFill(const FillRequest& request, const FsUsage& usage,
                                     const std::string& where);

// The ceiling that applies to one filesystem: the lowest max_percent of the
// policy's disk_fill_ceilings entries on that filesystem (matched by device,
// not by path: a bind mount of / is /), else kDefaultFillCeilingPercent.
struct Ceiling {
  double max_percent = kDefaultFillCeilingPercent;
  std::string mount;  // the policy entry's mount; empty for the default
};

// PERMISSION_DENIED when the fill would take the filesystem mounted at `where`
// above `ceiling`: `percent: filling would take / to 97%, above the policy
// ceiling of 90%`. A fill that adds nothing is never refused.
absl::Status CheckCeiling(const FillRequest& request, const FillPlan& plan, const std::string& where,
                          const Ceiling& ceiling);

// A percentage for messages: at most two decimals, no trailing zeros (97, 90.25).
std::string FormatPercent(double v);

// The system calls Plan() and Sweep() read through. Thread-safe implementations.
class Filesystem {
 public:
  virtual ~Filesystem() = default;
  // realpath(3) of `path`, which must be a directory. FAILED_PRECONDITION
  // `path: /x does not exist` / `... is not a directory`.
  virtual absl::StatusOr<std::string> RealDirectory(const std::string& path) const = 0;
  virtual absl::StatusOr<FsUsage> StatFs(const std::string& path) const = 0;
  // stat(2)'s st_dev of `path` (symlinks followed).
  virtual absl::StatusOr<uint64_t> Device(const std::string& path) const = 0;
  virtual absl::StatusOr<std::vector<MountEntry>> Mounts() const = 0;
};

// statvfs(3), stat(2), realpath(3) and /proc/self/mountinfo.
std::unique_ptr<Filesystem> MakeRealFilesystem();

std::unique_ptr<FaultHandler> MakeDiskFillHandler();
// For tests: the handler reads the system through `fs` (Apply, Revert and
// Sweep still create and unlink real files at the paths it plans).
std::unique_ptr<FaultHandler> MakeDiskFillHandler(std::unique_ptr<Filesystem> fs);

}  // namespace faultline::agent

#endif  // FAULTLINE_AGENT_FAULTS_DISK_FILL_FAULT_H_
