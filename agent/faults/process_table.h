// The host's processes as kill and pause faults see them, behind an interface so
// selection logic is unit-tested on synthetic tables.
#ifndef FAULTLINE_AGENT_FAULTS_PROCESS_TABLE_H_
#define FAULTLINE_AGENT_FAULTS_PROCESS_TABLE_H_

#include <sys/types.h>

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace faultline::agent {

struct ProcessInfo {
  pid_t pid = 0;
  pid_t ppid = 0;
  std::string comm;        // /proc/PID/comm
  std::string cmdline;     // argv joined with spaces
  char state = '?';        // /proc/PID/stat field 3 (R, S, T, Z, ...)
  uint64_t start_time = 0; // /proc/PID/stat field 22, guards against pid reuse
  bool kernel_thread = false;
  std::string cgroup;      // cgroup v2 path ("0::/a/b" -> "/a/b")
};

// Reads and signals processes. Thread-safe implementations only.
class ProcessTable {
 public:
  virtual ~ProcessTable() = default;
  virtual absl::StatusOr<std::vector<ProcessInfo>> List() const = 0;
  // NOT_FOUND when the pid does not exist.
  virtual absl::StatusOr<ProcessInfo> Get(pid_t pid) const = 0;
  virtual absl::Status Signal(pid_t pid, int signo) const = 0;
};

}  // namespace faultline::agent

#endif  // FAULTLINE_AGENT_FAULTS_PROCESS_TABLE_H_
