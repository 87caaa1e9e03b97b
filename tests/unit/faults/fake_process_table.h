// An in-memory ProcessTable for unit tests: signals are recorded and, for
// SIGSTOP/SIGCONT/SIGKILL, reflected in the table.
#ifndef FAULTLINE_TESTS_UNIT_FAULTS_FAKE_PROCESS_TABLE_H_
#define FAULTLINE_TESTS_UNIT_FAULTS_FAKE_PROCESS_TABLE_H_

#include <csignal>
#include <map>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "agent/faults/process_table.h"
#include "fmt/format.h"

namespace faultline::agent::testing {

inline ProcessInfo Proc(pid_t pid, std::string comm, std::string cmdline = "",
                        std::string cgroup = "/user.slice", char state = 'S') {
  ProcessInfo p;
  p.pid = pid;
  p.ppid = 1;
  p.comm = std::move(comm);
  p.cmdline = std::move(cmdline);
  p.cgroup = std::move(cgroup);
  p.state = state;
  p.start_time = 1000 + static_cast<uint64_t>(pid);
  return p;
}

// Thread-safe (one mutex).
class FakeProcessTable : public ProcessTable {
 public:
  void Add(ProcessInfo p) {
    std::lock_guard<std::mutex> lock(mu_);
    procs_[p.pid] = std::move(p);
  }
  void Remove(pid_t pid) {
    std::lock_guard<std::mutex> lock(mu_);
    procs_.erase(pid);
  }
  // The pid now belongs to a newer process.
  void Reuse(pid_t pid) {
    std::lock_guard<std::mutex> lock(mu_);
    procs_[pid].start_time += 777;
  }
  // Signal(pid, ...) fails with `s` from now on.
  void FailSignals(pid_t pid, absl::Status s) {
    std::lock_guard<std::mutex> lock(mu_);
    fail_[pid] = std::move(s);
  }
  std::vector<std::pair<pid_t, int>> signals() const {
    std::lock_guard<std::mutex> lock(mu_);
    return signals_;
  }
  char StateOf(pid_t pid) const {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = procs_.find(pid);
    return it == procs_.end() ? '-' : it->second.state;
  }

  absl::StatusOr<std::vector<ProcessInfo>> List() const override {
    std::lock_guard<std::mutex> lock(mu_);
    std::vector<ProcessInfo> out;
    for (const auto& [pid, p] : procs_) out.push_back(p);
    return out;
  }
  absl::StatusOr<ProcessInfo> Get(pid_t pid) const override {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = procs_.find(pid);
    if (it == procs_.end()) return absl::NotFoundError(fmt::format("pid {}: no such process", pid));
    return it->second;
  }
  absl::Status Signal(pid_t pid, int signo) const override {
    std::lock_guard<std::mutex> lock(mu_);
    if (auto f = fail_.find(pid); f != fail_.end()) return f->second;
    auto it = procs_.find(pid);
    if (it == procs_.end()) return absl::NotFoundError(fmt::format("pid {}: no such process", pid));
    signals_.emplace_back(pid, signo);
    if (signo == SIGSTOP) it->second.state = 'T';
    if (signo == SIGCONT) it->second.state = 'S';
    if (signo == SIGKILL) procs_.erase(it);
    return absl::OkStatus();
  }

 private:
  mutable std::mutex mu_;
  mutable std::map<pid_t, ProcessInfo> procs_;
  mutable std::vector<std::pair<pid_t, int>> signals_;
  std::map<pid_t, absl::Status> fail_;
};

}  // namespace faultline::agent::testing

#endif  // FAULTLINE_TESTS_UNIT_FAULTS_FAKE_PROCESS_TABLE_H_
