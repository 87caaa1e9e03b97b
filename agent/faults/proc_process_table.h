// ProcessTable backed by /proc and kill(2).
#ifndef FAULTLINE_AGENT_FAULTS_PROC_PROCESS_TABLE_H_
#define FAULTLINE_AGENT_FAULTS_PROC_PROCESS_TABLE_H_

#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "agent/faults/process_table.h"

namespace faultline::agent {

// Parses the fields of /proc/PID/stat that ProcessInfo holds (comm is taken
// between the first '(' and the last ')', since comm may hold spaces and
// parentheses; the rest is read after that last ')'). Fills comm, state, ppid,
// start_time and kernel_thread. Exposed for tests.
absl::Status ParseProcStat(const std::string& stat, ProcessInfo* info);

// "0::/a/b\n" (cgroup v2) -> "/a/b"; "" when the process has no v2 entry.
std::string ParseProcCgroup(const std::string& text);

// The Tgid of /proc/PID/status text; 0 when absent.
pid_t ParseProcTgid(const std::string& status);

// The processes of the pid namespace whose /proc is mounted at `proc_root`
// (the agent's own by default). Holds no state beyond the path: thread-safe.
// Processes that vanish while they are read are skipped (List) or reported as
// NOT_FOUND (Get); so is a thread id that is not its process's id.
class ProcProcessTable : public ProcessTable {
 public:
  explicit ProcProcessTable(std::string proc_root = "/proc");

  absl::StatusOr<std::vector<ProcessInfo>> List() const override;
  absl::StatusOr<ProcessInfo> Get(pid_t pid) const override;
  // kill(2); NOT_FOUND for ESRCH, PERMISSION_DENIED for EPERM.
  absl::Status Signal(pid_t pid, int signo) const override;

 private:
  std::string proc_root_;
};

}  // namespace faultline::agent

#endif  // FAULTLINE_AGENT_FAULTS_PROC_PROCESS_TABLE_H_
