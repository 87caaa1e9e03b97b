// Fleet benchmark (issue 8, "Fleet experiments"): N real faultline-agent
// processes (default 200) and a faultline-controller on the loopback of a
// network namespace the bench creates, one experiment on all of them, run once
// with the controller's default fan-out and once with `--max-in-flight 1` (a
// fresh controller each time, the same agents). Prints, side by side with the
// ratio and the issue's targets: clock sync of all agents, prepare of all,
// the commit fan-out, start skew, the revert fan-out, end skew, `faultline
// abort` while a run holds every agent, and the controller's peak RSS and
// threads. Phase durations come from the run report's timeline (the
// `clocks_synced`, `prepared`, `committed` and `reverts_answered` events of
// controller/runner.cc). Never fails on timing: exit 0 once both columns are
// measured, 1 when the bench itself cannot run.
//
// Safety (a shared machine): the process re-executes itself inside a network
// namespace flbench-<pid>-net (`ip netns exec`), so "loopback" is that
// namespace's. Each agent runs in a simulated host of its own (PID and mount
// namespaces, tests/integration/harness SimHost) whose only other process is
// its victim, a copy of sleep named `flbvictim` that the bench started; the
// fault is a pause of that process by name, which can match nothing else.
// The agents' policy allows only `pause`, so their start-up sweeps look at no
// other kind. The outer process owns the namespace and the scratch folder
// (/tmp/fltest-<pid>-fleetbench-*) and removes both when it exits, also when
// the inner process fails or is interrupted; scripts/cleanup-test-leftovers
// removes both prefixes if even that is cut short.
#include <arpa/inet.h>
#include <fmt/format.h>
#include <grpcpp/grpcpp.h>
#include <netinet/in.h>
#include <signal.h>
#include <spdlog/spdlog.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <dirent.h>
#include <filesystem>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "common/endpoint.h"
#include "common/status_macros.h"
#include "faultline/v1/controller.grpc.pb.h"
#include "harness/sim_host.h"
#include "harness/subprocess.h"
#include "harness/test_dir.h"

namespace faultline::bench {
namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;
using itest::CommandResult;
using itest::RunCommand;
using itest::SimHost;
using itest::Subprocess;
using itest::SubprocessOptions;

constexpr char kInnerFlag[] = "--inner-dir";
constexpr char kVictimName[] = "flbvictim";  // comm of every victim (< 16 chars)
constexpr char kControllerAddress[] = "127.0.0.1:7100";
constexpr int kControllerPort = 7100;
constexpr int kFirstAgentPort = 20000;
constexpr int kMaxAgents = 1000;
constexpr int kHeartbeatMs = 2000;  // 200 agents: 100 heartbeats a second
constexpr auto kInnerTimeout = 10min;
constexpr auto kRunTimeout = 180s;

double MsBetween(Clock::time_point a, Clock::time_point b) {
  return std::chrono::duration<double, std::milli>(b - a).count();
}

// A progress line on stderr, stamped with the time since the bench started.
void Note(const std::string& text) {
  static const Clock::time_point start = Clock::now();
  std::fprintf(stderr, "  [%6.1fs] %s\n", MsBetween(start, Clock::now()) / 1000, text.c_str());
}

absl::StatusOr<std::string> BinaryFromEnv(const char* var) {
  const char* v = std::getenv(var);
  if (v == nullptr || *v == '\0' || access(v, X_OK) != 0) {
    return absl::FailedPreconditionError(
        fmt::format("{} must name the built binary (scripts/bench sets it)", var));
  }
  return std::string(v);
}

// A field of /proc/PID/status in its unit (kB for Vm*), or -1.
int64_t StatusField(pid_t pid, const char* field) {
  auto text = ReadFileToString(fmt::format("/proc/{}/status", pid));
  if (!text.ok()) return -1;
  const std::string key = std::string(field) + ":";
  std::istringstream in(*text);
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind(key, 0) == 0) return std::strtoll(line.c_str() + key.size(), nullptr, 10);
  }
  return -1;
}

// Parent pid -> children, from one scan of /proc.
std::map<pid_t, std::vector<pid_t>> ChildrenByParent() {
  std::map<pid_t, std::vector<pid_t>> out;
  DIR* dir = opendir("/proc");
  if (dir == nullptr) return out;
  while (dirent* e = readdir(dir)) {
    char* end = nullptr;
    const long pid = std::strtol(e->d_name, &end, 10);
    if (*end != '\0' || pid <= 0) continue;
    const pid_t parent = itest::ParentPid(static_cast<pid_t>(pid));
    if (parent > 0) out[parent].push_back(static_cast<pid_t>(pid));
  }
  closedir(dir);
  return out;
}

// True when a plain TCP connect to 127.0.0.1:`port` succeeds.
bool AcceptsConnections(int port) {
  const int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return false;
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = htons(static_cast<uint16_t>(port));
  const bool ok = connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0;
  close(fd);
  return ok;
}

// ---------------------------------------------------------------- outer side

// The network namespace the whole bench runs in, flbench-<pid>-net with its
// loopback up. The destructor ends whatever still runs inside (all of it
// started by this bench) and deletes it. Owned by the outer process's main();
// not thread-safe.
class BenchNetns {
 public:
  static absl::StatusOr<std::unique_ptr<BenchNetns>> Create() {
    const std::string name = fmt::format("flbench-{}-net", getpid());
    CommandResult add = RunCommand({"ip", "netns", "add", name}, 10s);
    if (!add.ok()) return absl::InternalError(add.Describe());
    std::unique_ptr<BenchNetns> ns(new BenchNetns(name));
    CommandResult lo = RunCommand({"ip", "-n", name, "link", "set", "dev", "lo", "up"}, 10s);
    if (!lo.ok()) return absl::InternalError(lo.Describe());
    return ns;
  }
  ~BenchNetns() {
    for (int round = 0; round < 50; ++round) {
      CommandResult pids = RunCommand({"ip", "netns", "pids", name_}, 10s);
      std::istringstream in(pids.out);
      bool any = false;
      for (pid_t pid = 0; in >> pid;) {
        if (pid > 1 && pid != getpid()) any = kill(pid, SIGKILL) == 0 || any;
      }
      if (!any) break;
      std::this_thread::sleep_for(100ms);
    }
    RunCommand({"ip", "netns", "del", name_}, 10s);
  }
  BenchNetns(const BenchNetns&) = delete;
  BenchNetns& operator=(const BenchNetns&) = delete;
  const std::string& name() const { return name_; }

 private:
  explicit BenchNetns(std::string name) : name_(std::move(name)) {}
  std::string name_;
};

volatile sig_atomic_t g_stop_signal = 0;
void OnStopSignal(int sig) { g_stop_signal = sig; }

// Creates the namespace and the scratch folder, runs this binary again inside
// the namespace (`ip netns exec`), waits for it (bounded; a SIGINT/SIGTERM is
// passed on), and removes both. Returns the inner process's exit code.
int RunOuter(int agents, bool state_on_disk) {
  if (geteuid() != 0) {
    std::fprintf(stderr, "fleet_bench: needs root (it creates a network namespace)\n");
    return 1;
  }
  char exe[4096] = {};
  const ssize_t len = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
  if (len <= 0) {
    std::fprintf(stderr, "fleet_bench: readlink /proc/self/exe: %s\n", std::strerror(errno));
    return 1;
  }
  auto dir = itest::TestDir::Create("fleetbench");
  if (!dir.ok()) {
    std::fprintf(stderr, "fleet_bench: %s\n", std::string(dir.status().message()).c_str());
    return 1;
  }
  auto ns = BenchNetns::Create();
  if (!ns.ok()) {
    std::fprintf(stderr, "fleet_bench: %s\n", std::string(ns.status().message()).c_str());
    return 1;
  }
  struct sigaction sa {};
  sa.sa_handler = OnStopSignal;
  sigemptyset(&sa.sa_mask);
  for (int sig : {SIGINT, SIGTERM, SIGHUP}) sigaction(sig, &sa, nullptr);

  std::vector<std::string> args = {"ip",       "netns",       "exec",
                                         (*ns)->name(), std::string(exe, static_cast<size_t>(len)),
                                         kInnerFlag, (*dir)->path(), "--agents",
                                         std::to_string(agents)};
  if (state_on_disk) args.push_back("--state-on-disk");
  std::vector<char*> argv;
  for (const auto& a : args) argv.push_back(const_cast<char*>(a.c_str()));
  argv.push_back(nullptr);
  std::fflush(nullptr);
  const pid_t child = fork();
  if (child < 0) {
    std::fprintf(stderr, "fleet_bench: fork: %s\n", std::strerror(errno));
    return 1;
  }
  if (child == 0) {
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    execvp(argv[0], argv.data());
    _exit(127);
  }
  int status = 0;
  const auto deadline = Clock::now() + kInnerTimeout;
  bool reaped = false;
  bool signalled = false;
  while (!reaped) {
    const pid_t r = waitpid(child, &status, WNOHANG);
    if (r == child) {
      reaped = true;
      break;
    }
    if (r < 0 && errno != EINTR) break;
    if ((g_stop_signal != 0 || Clock::now() > deadline) && !signalled) {
      std::fprintf(stderr, "fleet_bench: %s; stopping the bench\n",
                   g_stop_signal != 0 ? "interrupted" : "timed out");
      kill(child, SIGTERM);
      signalled = true;
      // Give it a moment, then make sure.
      for (int i = 0; i < 50 && waitpid(child, &status, WNOHANG) == 0; ++i) {
        std::this_thread::sleep_for(100ms);
      }
      kill(child, SIGKILL);
    }
    std::this_thread::sleep_for(50ms);
  }
  if (!reaped) waitpid(child, &status, 0);
  // ns and dir go here, in that order: nothing runs in the folder afterwards.
  ns->reset();
  dir->reset();
  if (signalled) return 1;
  if (WIFEXITED(status)) return WEXITSTATUS(status);
  return 1;
}

// ---------------------------------------------------------------- inner side

// Samples one process's /proc/PID/status on a thread of its own: the largest
// thread count seen, and VmHWM (the kernel's own peak RSS) on demand. Owned by
// the ControllerProcess it watches; thread-safe.
class ProcSampler {
 public:
  explicit ProcSampler(pid_t pid) : pid_(pid), thread_([this] { Loop(); }) {}
  ~ProcSampler() {
    stop_ = true;
    thread_.join();
  }
  ProcSampler(const ProcSampler&) = delete;
  ProcSampler& operator=(const ProcSampler&) = delete;
  int64_t peak_threads() const { return peak_threads_; }
  // VmHWM in KiB (-1 once the process is gone).
  int64_t peak_rss_kib() const { return StatusField(pid_, "VmHWM"); }

 private:
  void Loop() {
    while (!stop_) {
      const int64_t t = StatusField(pid_, "Threads");
      if (t > peak_threads_) peak_threads_ = t;
      std::this_thread::sleep_for(10ms);
    }
  }
  const pid_t pid_;
  std::atomic<bool> stop_{false};
  std::atomic<int64_t> peak_threads_{0};
  std::thread thread_;
};

// One faultline-controller child in the bench's namespace, listening on
// kControllerAddress with its own database, and a gRPC stub to it. Stop() (or
// the destructor) ends it with SIGTERM, SIGKILL if it lingers. Owned by
// RunInner(); not thread-safe (the stub is).
class ControllerProcess {
 public:
  static absl::StatusOr<std::unique_ptr<ControllerProcess>> Start(const std::string& binary,
                                                                  const std::string& dir,
                                                                  const std::string& label,
                                                                  int max_in_flight) {
    std::unique_ptr<ControllerProcess> c(new ControllerProcess());
    std::vector<std::string> argv = {binary,
                                     "--listen",
                                     kControllerAddress,
                                     "--insecure",
                                     "--db",
                                     fmt::format("{}/controller-{}.db", dir, label),
                                     "--heartbeat-ms",
                                     std::to_string(kHeartbeatMs),
                                     "--max-fleet-percent",
                                     "100",
                                     "--log-level",
                                     "warn"};
    if (max_in_flight > 0) {
      argv.push_back("--max-in-flight");
      argv.push_back(std::to_string(max_in_flight));
    }
    SubprocessOptions so;
    so.stdout_file = fmt::format("{}/controller-{}.out", dir, label);
    so.stderr_file = fmt::format("{}/controller-{}.err", dir, label);
    ASSIGN_OR_RETURN(c->process_, Subprocess::Start(argv, so));
    c->sampler_ = std::make_unique<ProcSampler>(c->process_->pid());
    // A channel that dials too early sits in reconnect backoff for seconds.
    if (!itest::WaitFor([&] { return AcceptsConnections(kControllerPort) || !c->Running(); },
                        30s) ||
        !c->Running()) {
      return absl::InternalError(fmt::format("the controller does not listen on {} (see {})",
                                             kControllerAddress, so.stderr_file));
    }
    ASSIGN_OR_RETURN(auto channel, Dial("controller", kControllerAddress, TlsFiles{}, true));
    c->stub_ = v1::Controller::NewStub(channel);
    return c;
  }
  ~ControllerProcess() { Stop(); }
  ControllerProcess(const ControllerProcess&) = delete;
  ControllerProcess& operator=(const ControllerProcess&) = delete;

  v1::Controller::Stub& stub() { return *stub_; }
  pid_t pid() const { return process_->pid(); }
  bool Running() { return process_->Running(); }
  int64_t peak_threads() const { return sampler_->peak_threads(); }
  int64_t peak_rss_kib() const { return sampler_->peak_rss_kib(); }

  // Waits until `n` agents are listed healthy (polled every 500 ms: each
  // ListAgents asks every agent for its faults).
  absl::Status WaitForAgents(int n, std::chrono::milliseconds timeout) {
    const auto deadline = Clock::now() + timeout;
    int healthy = 0;
    while (Clock::now() < deadline) {
      if (!process_->Running()) return absl::InternalError("the controller exited");
      grpc::ClientContext ctx;
      ctx.set_deadline(std::chrono::system_clock::now() + 10s);
      v1::ListAgentsResponse resp;
      if (stub_->ListAgents(&ctx, v1::ListAgentsRequest(), &resp).ok()) {
        healthy = static_cast<int>(std::count_if(
            resp.agents().begin(), resp.agents().end(),
            [](const v1::AgentStatus& a) { return a.health() == "healthy"; }));
        if (healthy >= n) return absl::OkStatus();
      }
      std::this_thread::sleep_for(500ms);
    }
    return absl::DeadlineExceededError(
        fmt::format("{} of {} agents healthy after {} ms", healthy, n, timeout.count()));
  }

  void Stop() {
    if (process_ == nullptr || !process_->Running()) return;
    process_->Kill(SIGTERM);
    if (!process_->Wait(10s)) {
      process_->KillGroup(SIGKILL);
      process_->Wait(5s);
    }
  }

 private:
  ControllerProcess() = default;
  std::unique_ptr<Subprocess> process_;
  std::unique_ptr<ProcSampler> sampler_;  // after process_: stopped first
  std::unique_ptr<v1::Controller::Stub> stub_;
};

// One RunExperiment call, its stream read on a thread of its own: the phases
// seen so far and the final report. The destructor cancels the call and joins
// the thread. Owned by its caller; WaitFor*() may be called from any thread.
class RunWatcher {
 public:
  RunWatcher(v1::Controller::Stub& stub, const std::string& yaml) {
    ctx_.set_deadline(std::chrono::system_clock::now() + kRunTimeout);
    req_.set_yaml(yaml);
    thread_ = std::thread([this, &stub] { Read(stub); });
  }
  ~RunWatcher() {
    ctx_.TryCancel();
    thread_.join();
  }
  RunWatcher(const RunWatcher&) = delete;
  RunWatcher& operator=(const RunWatcher&) = delete;

  // True once the run has reported `phase` (false if it ended first).
  bool WaitForPhase(const std::string& phase, std::chrono::milliseconds timeout) {
    absl::MutexLock lock(&mu_);
    auto seen = [&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
      return done_ || phases_.contains(phase);
    };
    mu_.AwaitWithTimeout(absl::Condition(&seen), absl::FromChrono(timeout));
    return phases_.contains(phase);
  }
  // The report once the stream has ended, or why there is none.
  absl::StatusOr<v1::RunReport> WaitForReport(std::chrono::milliseconds timeout) {
    absl::MutexLock lock(&mu_);
    if (!mu_.AwaitWithTimeout(absl::Condition(&done_), absl::FromChrono(timeout))) {
      return absl::DeadlineExceededError("the run did not end in time");
    }
    if (report_) return *report_;
    return absl::InternalError(fmt::format("the run ended without a report: {}", error_));
  }
  Clock::time_point ended() {
    absl::MutexLock lock(&mu_);
    return ended_;
  }

 private:
  void Read(v1::Controller::Stub& stub) {
    auto reader = stub.RunExperiment(&ctx_, req_);
    v1::RunUpdate u;
    while (reader->Read(&u)) {
      absl::MutexLock lock(&mu_);
      if (u.has_progress()) phases_.insert(u.progress().phase());
      if (u.has_report()) report_ = u.report();
    }
    grpc::Status st = reader->Finish();
    absl::MutexLock lock(&mu_);
    if (!st.ok()) error_ = st.error_message();
    ended_ = Clock::now();
    done_ = true;
  }

  grpc::ClientContext ctx_;
  v1::RunExperimentRequest req_;
  absl::Mutex mu_;
  std::set<std::string> phases_ ABSL_GUARDED_BY(mu_);
  std::optional<v1::RunReport> report_ ABSL_GUARDED_BY(mu_);
  std::string error_ ABSL_GUARDED_BY(mu_);
  Clock::time_point ended_ ABSL_GUARDED_BY(mu_);
  bool done_ ABSL_GUARDED_BY(mu_) = false;
  std::thread thread_;  // last: starts once the rest is built
};

// One simulated host of the fleet: its PID/mount namespaces, its agent and its
// victim (each behind the nsenter that started it). Members are destroyed in
// reverse: the nsenters (their process groups) first, then the host.
struct Host {
  std::string name;
  std::unique_ptr<SimHost> sim;
  std::unique_ptr<Subprocess> agent_exec;
  std::unique_ptr<Subprocess> victim_exec;
  pid_t agent_pid = 0;   // in the bench's pid namespace
  pid_t victim_pid = 0;
};

// N hosts, each with an agent (TCP 127.0.0.1:20000+i, registered with the
// controller at kControllerAddress) and a victim. Owned by RunInner(); the
// destructor kills every host's init (and so everything in it) at once before
// the hosts are torn down one by one. Not thread-safe.
class Fleet {
 public:
  // `state_on_disk`: the agents' state folders (ledgers) in the scratch folder
  // rather than on a tmpfs of each host's own.
  static absl::StatusOr<std::unique_ptr<Fleet>> Start(int n, const std::string& dir,
                                                      const std::string& agent_bin,
                                                      bool state_on_disk) {
    std::unique_ptr<Fleet> fleet(new Fleet());
    const std::string victim = dir + "/" + kVictimName;
    std::error_code ec;
    std::filesystem::copy_file("/bin/sleep", victim, ec);
    if (ec) return absl::InternalError(fmt::format("copy /bin/sleep: {}", ec.message()));
    std::filesystem::permissions(victim, std::filesystem::perms(0755),
                                 std::filesystem::perm_options::replace, ec);
    const std::string policy = dir + "/policy.yaml";
    {
      FILE* f = std::fopen(policy.c_str(), "w");
      if (f == nullptr) return absl::InternalError("cannot write " + policy);
      std::fputs("allowed_kinds: [pause]\n", f);
      std::fclose(f);
    }
    std::filesystem::create_directories(dir + "/state", ec);
    std::filesystem::create_directories(dir + "/logs", ec);
    for (int i = 0; i < n; ++i) {
      auto host = std::make_unique<Host>();
      host->name = fmt::format("a{:03}", i);
      ASSIGN_OR_RETURN(host->sim, SimHost::Create("fb-" + host->name, itest::HostNet::kShared));
      const std::string port = std::to_string(kFirstAgentPort + i);
      const std::string address = "127.0.0.1:" + port;
      const std::string state = fmt::format("{}/state/{}", dir, host->name);
      std::filesystem::create_directories(state, ec);
      // One disk per host, as on real hosts: 200 ledgers fsyncing on one
      // shared disk would measure that disk.
      if (!state_on_disk) RETURN_IF_ERROR(host->sim->MountTmpfs(state, "4M"));
      SubprocessOptions so;
      so.stdout_file = fmt::format("{}/logs/{}.out", dir, host->name);
      so.stderr_file = fmt::format("{}/logs/{}.err", dir, host->name);
      ASSIGN_OR_RETURN(host->agent_exec,
                       host->sim->Exec({agent_bin, "--state-dir", state, "--listen", address,
                                        "--insecure", "--name", host->name, "--label",
                                        "bench=fleet", "--controller", kControllerAddress,
                                        "--advertise", address, "--policy", policy,
                                        "--log-level", "warn"},
                                       so));
      SubprocessOptions vo;
      vo.stdout_file = "/dev/null";
      vo.stderr_file = "/dev/null";
      ASSIGN_OR_RETURN(host->victim_exec, host->sim->Exec({victim, "infinity"}, vo));
      fleet->hosts_.push_back(std::move(host));
      if ((i + 1) % 50 == 0 || i + 1 == n) Note(fmt::format("{} hosts started", i + 1));
    }
    RETURN_IF_ERROR(fleet->FindProcesses(30s));
    return fleet;
  }
  ~Fleet() {
    for (const auto& h : hosts_) {
      if (h->sim != nullptr && h->sim->init_pid() > 0) kill(h->sim->init_pid(), SIGKILL);
    }
  }
  Fleet(const Fleet&) = delete;
  Fleet& operator=(const Fleet&) = delete;

  const std::vector<std::unique_ptr<Host>>& hosts() const { return hosts_; }

  // How many victims are stopped (state T) right now.
  int Paused() const {
    int n = 0;
    for (const auto& h : hosts_) n += itest::ProcessState(h->victim_pid) == 'T';
    return n;
  }
  // How many victims run (alive and not stopped).
  int Running() const {
    int n = 0;
    for (const auto& h : hosts_) {
      const char s = itest::ProcessState(h->victim_pid);
      n += s == 'S' || s == 'R' || s == 'D';
    }
    return n;
  }
  // How many agents still run.
  int AgentsAlive() const {
    int n = 0;
    for (const auto& h : hosts_) n += itest::ProcessAlive(h->agent_pid);
    return n;
  }

 private:
  Fleet() = default;

  // Each nsenter's exec'd child: the agent or the victim, seen from here.
  absl::Status FindProcesses(std::chrono::milliseconds timeout) {
    const auto deadline = Clock::now() + timeout;
    while (true) {
      const auto children = ChildrenByParent();
      auto child_of = [&](const Subprocess& exec) -> pid_t {
        auto it = children.find(exec.pid());
        if (it == children.end()) return 0;
        for (pid_t c : it->second) {
          const std::string comm = itest::ProcessComm(c);
          if (!comm.empty() && comm != "nsenter") return c;
        }
        return 0;
      };
      int missing = 0;
      for (auto& h : hosts_) {
        if (h->agent_pid == 0) h->agent_pid = child_of(*h->agent_exec);
        if (h->victim_pid == 0) h->victim_pid = child_of(*h->victim_exec);
        missing += (h->agent_pid == 0) + (h->victim_pid == 0);
      }
      if (missing == 0) return absl::OkStatus();
      if (Clock::now() > deadline) {
        return absl::DeadlineExceededError(
            fmt::format("{} agent/victim processes did not start", missing));
      }
      std::this_thread::sleep_for(100ms);
    }
  }

  std::vector<std::unique_ptr<Host>> hosts_;
};

std::string ExperimentYaml(const std::string& name, const std::string& duration) {
  return fmt::format(R"(name: {}
description: scripts/bench fleet bench; pauses one bench-owned process on every agent
targets:
  fleet: {{labels: {{bench: fleet}}}}
probes:
  - name: controller-tcp
    from: controller
    tcp: {{address: "{}"}}
    interval: 100ms
    timeout: 500ms
faults:
  - on: fleet
    pause: {{process: {{name: {}}}}}
objectives: {{rto: 10s, recovered_after: 1}}
duration: {}
)",
                     name, kControllerAddress, kVictimName, duration);
}

// The figure after `label` in the detail of the timeline event of `kind`, or NaN.
double DetailMs(const v1::RunReport& report, const std::string& kind, const std::string& label) {
  for (const auto& e : report.timeline()) {
    if (e.kind() != kind) continue;
    const size_t at = e.detail().find(label);
    if (at == std::string::npos) break;
    return std::strtod(e.detail().c_str() + at + label.size(), nullptr);
  }
  return std::nan("");
}

// The "... in X ms" of a timeline event of `kind` (one of the runner's phase
// events), or NaN.
double PhaseMs(const v1::RunReport& report, const std::string& kind) {
  return DetailMs(report, kind, " in ");
}

// The figures of one column (one controller).
struct Column {
  double clock_sync_ms = std::nan("");
  double prepare_ms = std::nan("");
  double commit_ms = std::nan("");
  double start_skew_ms = std::nan("");
  double revert_ms = std::nan("");
  double end_skew_ms = std::nan("");
  double clock_error_ms = std::nan("");
  double commit_lead_ms = std::nan("");
  double connect_ms = std::nan("");
  double cli_floor_ms = std::nan("");
  double abort_ms = std::nan("");
  double abort_to_end_ms = std::nan("");
  double rss_mib = std::nan("");
  double threads = std::nan("");
  double load_before = std::nan("");  // 1-minute load average
  double load_after = std::nan("");
  std::vector<std::string> notes;  // sanity checks, verdicts
};

// The 1-minute load average (other work on the machine skews every figure).
double LoadAverage() {
  auto text = ReadFileToString("/proc/loadavg");
  return text.ok() ? std::strtod(text->c_str(), nullptr) : std::nan("");
}

// The "ahead" figure of the `committed` event: how far ahead the start was set.
double CommitLeadMs(const v1::RunReport& report) {
  return DetailMs(report, "committed", "start set ");
}

// One column: a run of `duration` on every agent, then a long run aborted
// with `faultline abort` once it observes. Checks on the way that the victims
// are really paused and continued again.
Column Measure(ControllerProcess& ctl, Fleet& fleet, const std::string& cli, int n) {
  Column col;
  col.load_before = LoadAverage();
  {
    Note("a run of 5 s on every agent");
    RunWatcher run(ctl.stub(), ExperimentYaml("fleet-bench", "5s"));
    if (run.WaitForPhase("observing", 60s)) {
      std::this_thread::sleep_for(200ms);
      col.notes.push_back(
          fmt::format("run: {}/{} victims paused while observing", fleet.Paused(), n));
    }
    auto report = run.WaitForReport(kRunTimeout);
    if (!report.ok()) {
      col.notes.push_back("run: " + std::string(report.status().message()));
    } else {
      col.clock_sync_ms = PhaseMs(*report, "clocks_synced");
      col.prepare_ms = PhaseMs(*report, "prepared");
      col.commit_ms = PhaseMs(*report, "committed");
      col.commit_lead_ms = CommitLeadMs(*report);
      col.connect_ms = DetailMs(*report, "clocks_synced", "connect(s) in ");
      col.revert_ms = PhaseMs(*report, "reverts_answered");
      col.start_skew_ms = report->start_skew_ms();
      col.end_skew_ms = report->end_skew_ms();
      col.clock_error_ms = report->clock_error_ms();
      for (const auto& e : report->timeline()) {
        if (e.kind() == "clocks_synced") col.notes.push_back("run: clock sync: " + e.detail());
      }
      col.notes.push_back(fmt::format("run: verdict {} ({}), {} faults", report->verdict(),
                                      report->reason(), report->faults_size()));
    }
    itest::WaitFor([&] { return fleet.Running() == n; }, 5s);
    col.notes.push_back(fmt::format("run: {}/{} victims running after it", fleet.Running(), n));
  }
  {
    Note("a run of 60 s on every agent, aborted once it observes");
    RunWatcher run(ctl.stub(), ExperimentYaml("fleet-bench-abort", "60s"));
    if (!run.WaitForPhase("observing", 60s)) {
      col.notes.push_back("abort run: never reached observing");
    } else {
      // What any CLI command costs here (a process, gRPC, one cheap call).
      const auto f0 = Clock::now();
      CommandResult floor = RunCommand(
          {cli, "--controller", kControllerAddress, "--insecure", "runs", "--limit", "1"}, 30s);
      if (floor.ok()) col.cli_floor_ms = MsBetween(f0, Clock::now());
      std::this_thread::sleep_for(300ms);
      const int paused = fleet.Paused();
      const auto t0 = Clock::now();
      CommandResult r =
          RunCommand({cli, "--controller", kControllerAddress, "--insecure", "abort"}, 30s);
      const auto t1 = Clock::now();
      col.abort_ms = MsBetween(t0, t1);
      std::string out = r.out;
      while (!out.empty() && out.back() == '\n') out.pop_back();
      col.notes.push_back(fmt::format("abort: {}/{} victims paused before; `faultline abort`: {}",
                                      paused, n, r.ok() ? out : r.Describe()));
      auto report = run.WaitForReport(60s);
      if (report.ok()) {
        col.abort_to_end_ms = MsBetween(t0, run.ended());
        col.notes.push_back(fmt::format("abort: run verdict {}", report->verdict()));
      } else {
        col.notes.push_back("abort run: " + std::string(report.status().message()));
      }
      itest::WaitFor([&] { return fleet.Running() == n; }, 5s);
      col.notes.push_back(fmt::format("abort: {}/{} victims running after it", fleet.Running(), n));
    }
  }
  col.load_after = LoadAverage();
  col.rss_mib = static_cast<double>(ctl.peak_rss_kib()) / 1024.0;
  col.threads = static_cast<double>(ctl.peak_threads());
  return col;
}

std::string Fixed(double v, int precision) {
  if (std::isnan(v)) return "-";
  return fmt::format("{:.{}f}", v, precision);
}

void PrintTable(const Column& par, const Column& one, int n, bool state_on_disk) {
  struct Row {
    const char* metric;
    double par, one;
    int precision;
    const char* target;  // "" = none
    double limit;        // the target, on the parallel column; < 0: no ratio either
  };
  const Row rows[] = {
      {"clock sync of all agents (ms)", par.clock_sync_ms, one.clock_sync_ms, 1, "<= 250 ms", 250},
      {"  of which connects (ms)", par.connect_ms, one.connect_ms, 1, "", 0},
      {"prepare of all (ms)", par.prepare_ms, one.prepare_ms, 1, "", 0},
      {"commit fan-out (ms)", par.commit_ms, one.commit_ms, 1, "", 0},
      {"  of which the start lead (ms)", par.commit_lead_ms, one.commit_lead_ms, 1, "", 0},
      {"start skew (ms)", par.start_skew_ms, one.start_skew_ms, 1, "<= 20 ms", 20},
      {"revert fan-out (ms)", par.revert_ms, one.revert_ms, 1, "", 0},
      {"end skew (ms)", par.end_skew_ms, one.end_skew_ms, 1, "", 0},
      {"`faultline abort` (ms)", par.abort_ms, one.abort_ms, 1, "<= 250 ms", 250},
      {"  a cheap CLI call, for scale (ms)", par.cli_floor_ms, one.cli_floor_ms, 1, "", 0},
      {"abort -> run ended (ms)", par.abort_to_end_ms, one.abort_to_end_ms, 1, "", 0},
      {"controller peak RSS (MiB)", par.rss_mib, one.rss_mib, 1, "<= 64 MiB", 64},
      {"controller peak threads", par.threads, one.threads, 0, "", 0},
      {"clock error, worst agent (ms)", par.clock_error_ms, one.clock_error_ms, 2, "", 0},
      {"load average before", par.load_before, one.load_before, 1, "", -1},
      {"load average after", par.load_after, one.load_after, 1, "", -1},
  };
  std::printf("fleet bench: %d agents on one namespace's loopback, one experiment (pause) on all "
              "of them; ledgers on %s\n",
              n, state_on_disk ? "one shared disk" : "a tmpfs per host");
  std::printf("  %-35s %10s %17s %8s  %s\n", "metric", "parallel", "max-in-flight 1",
              "ratio", "target (parallel)");
  for (const Row& r : rows) {
    const double ratio = r.limit < 0 ? std::nan("") : r.one / r.par;
    std::string target = r.target;
    if (*r.target != '\0' && !std::isnan(r.par)) target += r.par <= r.limit ? "  met" : "  MISSED";
    std::printf("  %-35s %10s %17s %8s  %s\n", r.metric, Fixed(r.par, r.precision).c_str(),
                Fixed(r.one, r.precision).c_str(),
                std::isfinite(ratio) ? fmt::format("{:.1f}x", ratio).c_str() : "-",
                target.c_str());
  }
  std::printf("  (ratio = max-in-flight 1 / parallel)\n");
}

int RunInner(const std::string& dir, int n, bool state_on_disk) {
  spdlog::set_level(spdlog::level::warn);
  auto agent_bin = BinaryFromEnv("FAULTLINE_AGENT");
  auto cli = BinaryFromEnv("FAULTLINE_CLI");
  auto controller_bin = BinaryFromEnv("FAULTLINE_CONTROLLER");
  for (const auto* b : {&agent_bin, &cli, &controller_bin}) {
    if (!b->ok()) {
      std::fprintf(stderr, "fleet_bench: %s\n", std::string(b->status().message()).c_str());
      return 1;
    }
  }
  auto fail = [](const absl::Status& st) {
    std::fprintf(stderr, "fleet_bench: %s\n", std::string(st.message()).c_str());
    return 1;
  };
  Note(fmt::format("fleet bench: a controller and {} agents, each agent in a PID namespace of "
                   "its own",
                   n));
  // Declared before the fleet, so the agents go first (they would only retry).
  std::unique_ptr<ControllerProcess> ctl;
  {
    auto started = ControllerProcess::Start(*controller_bin, dir, "parallel", 0);
    if (!started.ok()) return fail(started.status());
    ctl = std::move(*started);
  }
  auto fleet = Fleet::Start(n, dir, *agent_bin, state_on_disk);
  if (!fleet.ok()) return fail(fleet.status());
  if (auto st = ctl->WaitForAgents(n, 120s); !st.ok()) return fail(st);
  Note(fmt::format("all {} agents healthy; measuring with the default fan-out", n));

  Column par = Measure(*ctl, **fleet, *cli, n);
  ctl->Stop();
  ctl.reset();
  {
    auto started = ControllerProcess::Start(*controller_bin, dir, "mif1", 1);
    if (!started.ok()) return fail(started.status());
    ctl = std::move(*started);
  }
  if (auto st = ctl->WaitForAgents(n, 60s); !st.ok()) return fail(st);
  Note(fmt::format("{} agents registered with a --max-in-flight 1 controller; measuring", n));
  Column one = Measure(*ctl, **fleet, *cli, n);
  ctl->Stop();
  Note("done; stopping the agents");

  // The agents, once both columns are done.
  int64_t rss_kib = 0, max_threads = 0, threads = 0;
  for (const auto& h : (*fleet)->hosts()) {
    rss_kib += std::max<int64_t>(0, StatusField(h->agent_pid, "VmRSS"));
    const int64_t t = StatusField(h->agent_pid, "Threads");
    threads += std::max<int64_t>(0, t);
    max_threads = std::max(max_threads, t);
  }
  std::printf("\n");
  PrintTable(par, one, n, state_on_disk);
  std::printf("  agents: %d of %d alive at the end, %.0f MiB RSS in all, %.1f threads each "
              "(at most %lld); each host also holds unshare, its init, the victim and 2 nsenter\n",
              (*fleet)->AgentsAlive(), n, static_cast<double>(rss_kib) / 1024,
              static_cast<double>(threads) / n, static_cast<long long>(max_threads));
  for (const auto& [label, col] : {std::pair<const char*, const Column*>{"parallel", &par},
                                   {"max-in-flight 1", &one}}) {
    for (const auto& note : col->notes) std::printf("  [%s] %s\n", label, note.c_str());
  }
  return 0;
}

}  // namespace
}  // namespace faultline::bench

int main(int argc, char** argv) {
  int agents = 200;
  bool state_on_disk = false;
  std::string inner_dir;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "--agents" && i + 1 < argc) {
      agents = std::atoi(argv[++i]);
    } else if (a == "--state-on-disk") {
      state_on_disk = true;
    } else if (a == faultline::bench::kInnerFlag && i + 1 < argc) {
      inner_dir = argv[++i];
    } else {
      std::fprintf(stderr,
                   "usage: %s [--agents N] [--state-on-disk]\n"
                   "  --agents N        1..%d, default 200\n"
                   "  --state-on-disk   the agents' ledgers on the scratch folder's disk (one\n"
                   "                    disk for all) instead of a tmpfs per simulated host\n"
                   "Needs root and FAULTLINE_AGENT, FAULTLINE_CONTROLLER, FAULTLINE_CLI.\n",
                   argv[0], faultline::bench::kMaxAgents);
      return 2;
    }
  }
  if (agents < 1 || agents > faultline::bench::kMaxAgents) {
    std::fprintf(stderr, "fleet_bench: --agents: between 1 and %d\n", faultline::bench::kMaxAgents);
    return 2;
  }
  if (inner_dir.empty()) return faultline::bench::RunOuter(agents, state_on_disk);
  return faultline::bench::RunInner(inner_dir, agents, state_on_disk);
}
