#include "harness/sim_host.h"

#include <fmt/format.h>
#include <signal.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "absl/status/status.h"
#include "common/endpoint.h"
#include "common/status_macros.h"
#include "harness/test_dir.h"

namespace faultline::itest {
namespace {

// Fields of /proc/PID/stat after the ")" that ends comm: state is [0], ppid [1].
std::vector<std::string> StatFields(pid_t pid) {
  auto text = ReadFileToString(fmt::format("/proc/{}/stat", pid));
  if (!text.ok()) return {};
  size_t close = text->rfind(')');
  if (close == std::string::npos) return {};
  std::istringstream in(text->substr(close + 1));
  std::vector<std::string> fields;
  std::string f;
  while (in >> f) fields.push_back(f);
  return fields;
}

// The one child of `parent` that no longer runs `wrapper` (it has exec'd).
absl::StatusOr<pid_t> WaitForExecedChild(pid_t parent, const std::string& wrapper,
                                         std::chrono::milliseconds timeout) {
  pid_t found = 0;
  bool ok = WaitFor(
      [&] {
        for (pid_t c : ChildPids(parent)) {
          std::string comm = ProcessComm(c);
          if (!comm.empty() && comm != wrapper) {
            found = c;
            return true;
          }
        }
        return false;
      },
      timeout);
  if (!ok) {
    return absl::DeadlineExceededError(fmt::format(
        "no exec'd child of pid {} ({}) within {} ms", parent, wrapper, timeout.count()));
  }
  return found;
}

}  // namespace

char ProcessState(pid_t pid) {
  auto f = StatFields(pid);
  return f.empty() ? '?' : f[0][0];
}

pid_t ParentPid(pid_t pid) {
  auto f = StatFields(pid);
  return f.size() < 2 ? 0 : static_cast<pid_t>(std::atoi(f[1].c_str()));
}

bool ProcessAlive(pid_t pid) {
  char s = ProcessState(pid);
  return s != '?' && s != 'Z' && s != 'X';
}

std::string ProcessComm(pid_t pid) {
  auto text = ReadFileToString(fmt::format("/proc/{}/comm", pid));
  if (!text.ok()) return "";
  std::string s = *text;
  while (!s.empty() && s.back() == '\n') s.pop_back();
  return s;
}

pid_t InnermostPid(pid_t pid) {
  auto text = ReadFileToString(fmt::format("/proc/{}/status", pid));
  if (!text.ok()) return 0;
  std::istringstream in(*text);
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("NSpid:", 0) != 0) continue;
    std::istringstream fields(line.substr(6));
    pid_t last = 0, v;
    while (fields >> v) last = v;
    return last;
  }
  return 0;
}

absl::StatusOr<std::unique_ptr<SimHost>> SimHost::Create(const std::string& name, HostNet net) {
  std::unique_ptr<NetNs> owned;
  if (net == HostNet::kNamed) {
    ASSIGN_OR_RETURN(owned, NetNs::Create(name));
  }
  const NetNs* join = owned.get();
  return Start(name, net, join, std::move(owned));
}

absl::StatusOr<std::unique_ptr<SimHost>> SimHost::CreateInNetns(const std::string& name,
                                                                const NetNs& netns) {
  return Start(name, HostNet::kNamed, &netns, nullptr);
}

absl::StatusOr<std::unique_ptr<SimHost>> SimHost::Start(const std::string& name, HostNet net,
                                                        const NetNs* join,
                                                        std::unique_ptr<NetNs> owned) {
  std::unique_ptr<SimHost> host(new SimHost());
  host->name_ = TestName(name);
  host->net_ = net;
  host->owned_netns_ = std::move(owned);
  host->netns_ = join;
  std::vector<std::string> argv;
  if (join != nullptr) argv = {"ip", "netns", "exec", join->name()};
  for (const char* a : {"unshare", "--pid", "--fork", "--mount", "--mount-proc", "--kill-child"}) {
    argv.push_back(a);
  }
  if (net == HostNet::kPrivate) argv.push_back("--net");
  argv.push_back("sleep");
  argv.push_back("infinity");
  ASSIGN_OR_RETURN(host->unshare_, Subprocess::Start(argv));
  // `ip netns exec` execs unshare in place; unshare forks the namespace's init.
  auto init = WaitForExecedChild(host->unshare_->pid(), "unshare", std::chrono::seconds(10));
  if (!init.ok()) {
    return absl::InternalError(fmt::format("host {}: {}; unshare stderr: {}", host->name_,
                                           std::string(init.status().message()), host->unshare_->Stderr()));
  }
  host->init_pid_ = *init;
  if (InnermostPid(host->init_pid_) != 1) {
    return absl::InternalError(
        fmt::format("host {}: pid {} is not its namespace's init", host->name_, *init));
  }
  if (net == HostNet::kPrivate) {
    CommandResult r = host->Run({"ip", "link", "set", "dev", "lo", "up"});
    if (!r.ok()) return absl::InternalError(r.Describe());
  }
  return host;
}

SimHost::~SimHost() {
  if (unshare_ != nullptr) {
    // --kill-child: unshare's death SIGKILLs the namespace's init, and with it
    // every process inside.
    unshare_->Kill(SIGKILL);
    unshare_->Wait(std::chrono::seconds(10));
    if (init_pid_ > 0) {
      WaitFor([&] { return !ProcessAlive(init_pid_); }, std::chrono::seconds(5));
    }
  }
  unshare_.reset();
  owned_netns_.reset();
}

std::vector<std::string> SimHost::NsenterPrefix() const {
  std::vector<std::string> argv = {"nsenter", "-t", std::to_string(init_pid_), "-p", "-m"};
  if (net_ != HostNet::kShared) argv.push_back("-n");
  argv.push_back("--");
  return argv;
}

absl::StatusOr<std::unique_ptr<Subprocess>> SimHost::Exec(const std::vector<std::string>& argv,
                                                          const SubprocessOptions& options) {
  std::vector<std::string> full = NsenterPrefix();
  full.insert(full.end(), argv.begin(), argv.end());
  return Subprocess::Start(full, options);
}

CommandResult SimHost::Run(const std::vector<std::string>& argv,
                           std::chrono::milliseconds timeout) {
  std::vector<std::string> full = NsenterPrefix();
  full.insert(full.end(), argv.begin(), argv.end());
  return RunCommand(full, timeout);
}

absl::StatusOr<HostProcess> SimHost::Find(const Subprocess& exec,
                                          std::chrono::milliseconds timeout) {
  ASSIGN_OR_RETURN(pid_t outer, WaitForExecedChild(exec.pid(), "nsenter", timeout));
  HostProcess p;
  p.outer_pid = outer;
  p.inner_pid = InnermostPid(outer);
  if (p.inner_pid == 0) {
    return absl::NotFoundError(fmt::format("pid {} exited before it was found", outer));
  }
  return p;
}

absl::Status SimHost::MountTmpfs(const std::string& dir, const std::string& size) {
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  CommandResult r = Run({"mkdir", "-p", dir});
  if (!r.ok()) return absl::InternalError(r.Describe());
  r = Run({"mount", "-t", "tmpfs", "-o", "size=" + size + ",mode=0755", name_, dir});
  if (!r.ok()) return absl::InternalError(r.Describe());
  return absl::OkStatus();
}

std::string SimHost::OutsidePath(const std::string& path) const {
  return fmt::format("/proc/{}/root{}", init_pid_, path);
}

}  // namespace faultline::itest
