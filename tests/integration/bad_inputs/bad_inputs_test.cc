// Issue 9 ("Trust boundaries"), closing note: bad inputs tried as a new user and
// as an attacker would, made repeatable. One simulated host "h1" (its own
// network, PID and mount namespaces) runs a real faultline-agent with a policy,
// and a real faultline-controller runs in the datacenter's "ctl" host
// (harness/datacenter.h: mutual TLS on every TCP link, certificates from the
// library behind `faultline certs`). Each case gives one bad input to a real
// program: the faultline CLI (argv vectors, no shell), faultline-agent or
// faultline-controller started with bad flags or files (inside h1), or one
// gRPC call (registration, leases, exec probes) where the CLI has no command.
// Each has a hard timeout; past it the child is SIGKILLed by pid ("hung").
// After each case the agent must list no fault and h1 must hold nothing of
// ours: no stopped process, no faultline nftables table, no qdisc, no fill
// file, no ledger record, no agent registered under a bad name.
//
// The table at the end counts refused (naming the field the case expects),
// accepted, hung, crashed and residue, per category. The test fails if a bad
// input was accepted, hung, crashed, left residue or was refused without
// naming its field, or if a control (a good input) was not accepted. Cases
// whose fix is still under way are marked `pending: <fix>`: run and shown,
// never failing. FAULTLINE_BAD_INPUTS_VERBOSE=1 prints every case,
// FAULTLINE_BAD_INPUTS_ONLY=TEXT runs only the cases whose category and name
// contain TEXT, FAULTLINE_BAD_INPUTS_TIMEOUT_S=N sets the hard timeout (5 s;
// a run through the controller gets at least 15 s).
#include <dirent.h>
#include <fcntl.h>
#include <fmt/format.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <climits>
#include <cstdio>
#include <cstdlib>
#include <deque>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "bad_inputs/campaign.h"
#include "common/endpoint.h"
#include "common/status_macros.h"
#include "faultline/v1/agent.grpc.pb.h"
#include "faultline/v1/controller.grpc.pb.h"
#include "harness/datacenter.h"
#include "harness/status_matchers.h"
#include "harness/subprocess.h"

namespace faultline::itest::bad_inputs {
namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

constexpr char kVictim[] = "flbadvic";
constexpr char kProtected[] = "flprotect";
constexpr char kHostIp[] = "10.88.0.11";
constexpr int kListenerPort = 8080;


// 5 s (FAULTLINE_BAD_INPUTS_TIMEOUT_S), times FAULTLINE_TIMING_SLACK (3 under
// the sanitizers, whose daemons are several times slower): past it, "hung".
std::chrono::milliseconds CaseTimeout() {
  const char* s = std::getenv("FAULTLINE_BAD_INPUTS_TIMEOUT_S");
  const int v = s != nullptr ? std::atoi(s) : 0;
  const char* slack_env = std::getenv("FAULTLINE_TIMING_SLACK");
  const double slack = slack_env != nullptr ? std::atof(slack_env) : 1;
  return std::chrono::milliseconds(
      static_cast<int64_t>(1000 * (v > 0 ? v : 5) * (slack >= 1 ? slack : 1)));
}

double SecondsSince(Clock::time_point t) {
  return std::chrono::duration<double>(Clock::now() - t).count();
}

// The agent's policy on h1: what the policy-dependent cases run against.
constexpr char kPolicy[] = R"(protected_processes: [flprotect]
protected_cidrs: [10.88.0.200/32]
max_duration: 12h
disk_fill_ceilings:
  - {mount: DISK_DIR, max_percent: 50}
exec:
  allow:
    - {argv: [/bin/true]}
  user: nobody
)";

// An experiment file made of parts, each replaceable by a case.
struct Exp {
  std::string name = "name: bad-inputs-base\n";
  std::string targets = "targets:\n  db: {labels: {role: db}, count: 1}\n";
  std::string probes =
      "probes:\n  - name: tcp-h1\n    from: db\n    tcp: {address: \"10.88.0.11:8080\"}\n"
      "    interval: 100ms\n";
  std::string faults = "faults:\n  - on: db\n    pause: {process: {name: flbadvic}}\n";
  std::string objectives = "objectives: {rto: 5s}\n";
  std::string duration = "duration: 1s\n";
  std::string extra;
  std::string Render() const {
    return name + targets + probes + faults + objectives + duration + extra;
  }
};

// Everything the campaign runs against, and the cases. Owned by the test.
class Campaign {
 public:
  absl::Status SetUp();
  void TearDown();
  void AddCases();
  void RunAll();
  const Tally& tally() const { return tally_; }
  std::string SelfTestProblems() const { return self_test_problems_; }
  std::string ResidueTiming() const {
    return fmt::format("{} residue checks in {:.1f} s", residue_checks_, residue_seconds_);
  }

 private:
  // ---- environment ----
  const TestDir& dir() const { return dc_->dir(); }
  std::string AgentSock() const { return "unix:" + dir().Path("agent-h1.sock"); }
  std::string CtlSock() const { return "unix:" + dir().Path("ctl.sock"); }
  absl::Status StartVictims();
  absl::Status ResidueSelfTest();

  // ---- argv builders ----
  std::vector<std::string> Cli(std::vector<std::string> args) const {
    args.insert(args.begin(), {cli_, "--agent", AgentSock()});
    return args;
  }
  std::vector<std::string> CtlCli(std::vector<std::string> args) const {
    args.insert(args.begin(), {cli_, "--controller", CtlSock()});
    return args;
  }
  std::vector<std::string> Inject(const std::string& kind, std::vector<std::string> args) const {
    args.insert(args.begin(), {"inject", kind});
    return Cli(args);
  }
  std::string WriteFile(const std::string& name, const std::string& text);

  // ---- case builders ----
  Case& Add(const std::string& category, const std::string& name, const std::string& expect);
  // The CLI (or any program) with `argv`.
  void AddCli(const std::string& category, const std::string& name, std::vector<std::string> argv,
              const std::string& expect, const std::string& pending = "");
  void AddGoodCli(const std::string& category, const std::string& name,
                  std::vector<std::string> argv, std::function<void()> after = nullptr);
  // `faultline validate` on an experiment file.
  void AddValidate(const std::string& name, const std::string& yaml, const std::string& expect,
                   const std::string& pending = "");
  // `faultline run FILE -o json` through the controller.
  void AddRun(const std::string& name, const std::string& yaml, const std::string& expect,
              const std::string& pending = "");
  // faultline-agent inside h1 with `args` (and its own socket and state dir).
  void AddAgentDaemon(const std::string& category, const std::string& name,
                      std::vector<std::string> args, const std::string& expect, bool good = false,
                      const std::string& survive_expect = "", const std::string& state_dir = "");
  void AddPolicy(const std::string& name, const std::string& yaml, const std::string& expect);
  // faultline-controller inside h1 with `args` (its own socket and db).
  void AddControllerDaemon(const std::string& name, std::vector<std::string> args,
                           const std::string& expect, bool good = false,
                           const std::string& pending = "");
  // One gRPC call; `call` returns its status.
  void AddGrpc(const std::string& category, const std::string& name, const std::string& expect,
               std::function<grpc::Status(grpc::ClientContext*)> call, bool good = false,
               const std::string& pending = "");
  void AddRegistration(const std::string& name, v1::RegisterRequest req, const std::string& expect,
                       bool good = false);

  void AddInjectCases();
  void AddCliMiscCases();
  void AddRpcCases();
  void AddExperimentCases();
  void AddDrillCases();  // `drill:` experiment files
  void AddScheduleCases();  // `schedule ...`, `blackout ...` through the controller
  void AddGameDayCases();   // `gameday ...` through the controller
  void AddDaemonCases();
  void AddRegistrationCases();

  // ---- after each case ----
  void UnblockFifos();
  // What h1 and the agent hold that no case should have left; with
  // `registrations`, also agents registered under unexpected names (a
  // ListAgents costs ~0.1 s: the controller asks every agent for its faults).
  // With `qdiscs`, also the qdiscs on h1's eth0 (an `ip` process: ~25 ms).
  std::vector<std::string> Residue(bool registrations = false, bool qdiscs = true);
  void CleanUp(const std::vector<std::string>& residue);
  Result RunOne(const Case& c);

  std::unique_ptr<Datacenter> dc_;
  DcHost* h1_ = nullptr;
  std::string cli_, agent_bin_, controller_bin_;
  std::string disk_dir_, alias_dir_, fill_dir_, fifo_, victim_bin_, protected_bin_;
  std::vector<std::string> fifos_;
  std::vector<std::string> mounted_;  // in h1, innermost first
  struct Victim {
    std::unique_ptr<Subprocess> exec;
    HostProcess process;
    std::string comm;
  };
  std::vector<Victim> victims_;
  std::unique_ptr<v1::Controller::Stub> ctl_stub_;
  std::set<std::string> allowed_agents_ = {"h1"};
  std::deque<Case> cases_;
  Tally tally_;
  int serial_ = 0;
  std::string self_test_problems_;
  bool verbose_ = false;
  double residue_seconds_ = 0;
  int residue_checks_ = 0;
};

// ---------------------------------------------------------------- set-up

absl::Status Campaign::SetUp() {
  verbose_ = std::getenv("FAULTLINE_BAD_INPUTS_VERBOSE") != nullptr;
  ASSIGN_OR_RETURN(cli_, CliBinary());
  ASSIGN_OR_RETURN(agent_bin_, AgentBinary());
  ASSIGN_OR_RETURN(controller_bin_, ControllerBinary());
  ASSIGN_OR_RETURN(
      dc_, Datacenter::Create("badin",
                              {DcHostSpec{"h1", kHostIp, {{"role", "db"}, {"zone", "a"}}, {}}}));
  h1_ = dc_->Find("h1");
  // Filesystems to fill, mounted in h1's mount namespace only: a 16 MiB ext4
  // on a loop device (gone with the namespace: autoclear) with the policy's
  // ceiling, a bind mount of it under another name (a ceiling matched by
  // path misses it), and a tmpfs (RAM: refused without the policy's opt-in).
  disk_dir_ = dir().Path("disk");
  alias_dir_ = dir().Path("disk-alias");
  fill_dir_ = dir().Path("tmpfs");
  const std::string image = dir().Path("disk.img");
  RETURN_IF_ERROR(RunChecked({"truncate", "-s", "16M", image}));
  RETURN_IF_ERROR(RunChecked({"mkfs.ext4", "-q", "-F", image}));
  RETURN_IF_ERROR(dir().MakeSubdir("disk").status());
  RETURN_IF_ERROR(dir().MakeSubdir("disk-alias").status());
  for (const std::vector<std::string>& mount :
       {std::vector<std::string>{"mount", "-o", "loop", image, disk_dir_},
        std::vector<std::string>{"mount", "--bind", disk_dir_, alias_dir_}}) {
    CommandResult r = h1_->sim->Run(mount, 20s);
    if (!r.ok()) return absl::InternalError(r.Describe());
    mounted_.insert(mounted_.begin(), mount.back());
  }
  RETURN_IF_ERROR(h1_->sim->MountTmpfs(fill_dir_, "8M"));
  fifo_ = dir().Path("fifo");
  if (::mkfifo(fifo_.c_str(), 0600) != 0) return absl::InternalError("mkfifo " + fifo_);
  fifos_.push_back(fifo_);
  std::string policy = kPolicy;
  policy.replace(policy.find("DISK_DIR"), 8, disk_dir_);
  RETURN_IF_ERROR(dir().WriteFile("policy.yaml", policy));
  h1_->spec.agent_args = {"--policy", dir().Path("policy.yaml"), "--audit-log",
                          dir().Path("agent-audit.log")};
  // One agent is the whole fleet: no fleet-percent cap.
  RETURN_IF_ERROR(dc_->Start({"--max-fleet-percent", "100"}, 30s));
  RETURN_IF_ERROR(StartVictims());
  // What the experiments' probe connects to (steady state must pass).
  RETURN_IF_ERROR(dc_->StartListener(*h1_, kListenerPort));
  if (!WaitFor([&] { return dc_->Connects(*h1_, kHostIp, kListenerPort); }, 15s)) {
    return absl::DeadlineExceededError("h1's listener did not start");
  }
  ASSIGN_OR_RETURN(auto channel, Dial("controller", CtlSock(), TlsFiles{}, false));
  ctl_stub_ = v1::Controller::NewStub(channel);
  return ResidueSelfTest();
}

absl::Status Campaign::StartVictims() {
  if (victim_bin_.empty()) {
    ASSIGN_OR_RETURN(victim_bin_, MakeVictimBinary(dir(), kVictim));
    ASSIGN_OR_RETURN(protected_bin_, MakeVictimBinary(dir(), kProtected));
  }
  for (size_t i = 0; i < 3; ++i) {
    if (i < victims_.size() && ProcessAlive(victims_[i].process.outer_pid)) continue;
    Victim v;
    v.comm = i < 2 ? kVictim : kProtected;
    ASSIGN_OR_RETURN(v.exec, h1_->sim->Exec({i < 2 ? victim_bin_ : protected_bin_, "100000"}));
    ASSIGN_OR_RETURN(v.process, h1_->sim->Find(*v.exec));
    if (i < victims_.size()) {
      victims_[i] = std::move(v);
    } else {
      victims_.push_back(std::move(v));
    }
  }
  return absl::OkStatus();
}

// The residue check must see a fault that is left: inject a pause and a
// partition, look, revert, look again.
absl::Status Campaign::ResidueSelfTest() {
  std::vector<std::string> problems;
  CommandResult r = RunCommand(
      Inject("pause",
             {"--pid", std::to_string(victims_[0].process.inner_pid), "--duration", "20s"}),
      15s);
  if (!r.ok()) problems.push_back("pause: " + r.Describe());
  r = RunCommand(Inject("partition", {"--peer", "10.99.0.0/24", "--duration", "20s"}), 15s);
  if (!r.ok()) problems.push_back("partition: " + r.Describe());
  const std::vector<std::string> seen = Residue(true);
  auto has = [&](const std::string& what) {
    for (const auto& s : seen) {
      if (s.find(what) != std::string::npos) return true;
    }
    return false;
  };
  for (const char* what : {"stopped", "nft table", "fault "}) {
    if (!has(what)) problems.push_back(fmt::format("the residue check missed \"{}\"", what));
  }
  CleanUp(seen);
  const std::vector<std::string> after = Residue();
  for (const auto& s : after) problems.push_back("left after revert: " + s);
  if (!problems.empty()) {
    self_test_problems_ = fmt::format("{}", fmt::join(problems, "\n"));
  }
  return absl::OkStatus();
}

void Campaign::TearDown() {
  UnblockFifos();
  // The loop filesystem goes with h1's mount namespace; unmount it first
  // anyway, so that its loop device is released at once.
  if (h1_ != nullptr) {
    for (const auto& m : mounted_) h1_->sim->Run({"umount", m}, 10s);
  }
  victims_.clear();
  dc_.reset();
}

std::string Campaign::WriteFile(const std::string& name, const std::string& text) {
  EXPECT_OK(dir().WriteFile(name, text));
  return dir().Path(name);
}

// ---------------------------------------------------------------- case builders

Case& Campaign::Add(const std::string& category, const std::string& name,
                    const std::string& expect) {
  Case& c = cases_.emplace_back();
  c.category = category;
  c.name = name;
  c.expect = expect;
  return c;
}

void Campaign::AddCli(const std::string& category, const std::string& name,
                      std::vector<std::string> argv, const std::string& expect,
                      const std::string& pending) {
  Case& c = Add(category, name, expect);
  c.pending = pending;
  c.run = [argv](const Case& self) { return RunProgram(argv, self.expect, CaseTimeout()); };
}

void Campaign::AddGoodCli(const std::string& category, const std::string& name,
                          std::vector<std::string> argv, std::function<void()> after) {
  Case& c = Add(category, name, "");
  c.good = true;
  c.after = std::move(after);
  c.run = [argv](const Case& self) { return RunProgram(argv, self.expect, CaseTimeout()); };
}

void Campaign::AddValidate(const std::string& name, const std::string& yaml,
                           const std::string& expect, const std::string& pending) {
  const std::string file = WriteFile(fmt::format("exp-{}.yaml", ++serial_), yaml);
  AddCli("experiment validate", name, {cli_, "validate", file}, expect, pending);
}

void Campaign::AddRun(const std::string& name, const std::string& yaml, const std::string& expect,
                      const std::string& pending) {
  const std::string file = WriteFile(fmt::format("run-{}.yaml", ++serial_), yaml);
  Case& c = Add("experiment run", name, expect);
  c.pending = pending;
  // A run refused by an agent's exec policy takes the controller's whole
  // steady-state wait (about 10 s; see the report): allow 15 s.
  c.run = [this, file](const Case& self) {
    return RunProgram(CtlCli({"run", file, "-o", "json"}), self.expect,
                      std::max<std::chrono::milliseconds>(CaseTimeout(), 15s));
  };
}

void Campaign::AddAgentDaemon(const std::string& category, const std::string& name,
                              std::vector<std::string> args, const std::string& expect, bool good,
                              const std::string& survive_expect, const std::string& state_dir) {
  const int n = ++serial_;
  std::vector<std::string> argv = {
      agent_bin_, "--listen", "unix:" + dir().Path(fmt::format("bad-agent-{}.sock", n)),
      "--state-dir", state_dir.empty() ? dir().Path(fmt::format("bad-state-{}", n)) : state_dir};
  // A later --listen/--state-dir in `args` adds or wins: the case's own.
  argv.insert(argv.end(), args.begin(), args.end());
  Case& c = Add(category, name, expect);
  c.good = good;
  const std::string log = dir().Path(fmt::format("bad-agent-{}.log", n));
  c.run = [this, argv, log, survive_expect](const Case& self) {
    return RunDaemon(*h1_->sim, argv, log, "serving on", self.expect, CaseTimeout(),
                     survive_expect);
  };
}

void Campaign::AddPolicy(const std::string& name, const std::string& yaml,
                         const std::string& expect) {
  const std::string file = WriteFile(fmt::format("policy-{}.yaml", ++serial_), yaml);
  AddAgentDaemon("agent policy", name, {"--policy", file}, expect);
}

void Campaign::AddControllerDaemon(const std::string& name, std::vector<std::string> args,
                                   const std::string& expect, bool good,
                                   const std::string& pending) {
  const int n = ++serial_;
  std::vector<std::string> argv = {controller_bin_, "--listen",
                                   "unix:" + dir().Path(fmt::format("bad-ctl-{}.sock", n))};
  const bool own_db = std::find(args.begin(), args.end(), "--db") != args.end();
  if (!own_db) {
    argv.push_back("--db");
    argv.push_back(dir().Path(fmt::format("bad-ctl-{}.db", n)));
  }
  argv.insert(argv.end(), args.begin(), args.end());
  Case& c = Add("controller flags", name, expect);
  c.good = good;
  c.pending = pending;
  const std::string log = dir().Path(fmt::format("bad-ctl-{}.log", n));
  c.run = [this, argv, log](const Case& self) {
    return RunDaemon(*h1_->sim, argv, log, "listening on", self.expect, CaseTimeout());
  };
}

void Campaign::AddGrpc(const std::string& category, const std::string& name,
                       const std::string& expect,
                       std::function<grpc::Status(grpc::ClientContext*)> call, bool good,
                       const std::string& pending) {
  Case& c = Add(category, name, expect);
  c.good = good;
  c.pending = pending;
  c.run = [call](const Case& self) {
    auto ctx = ContextWithDeadline(CaseTimeout());
    const auto t0 = Clock::now();
    grpc::Status st = call(ctx.get());
    return GradeGrpc(st, self.expect, SecondsSince(t0));
  };
}

void Campaign::AddRegistration(const std::string& name, v1::RegisterRequest req,
                               const std::string& expect, bool good) {
  if (good) allowed_agents_.insert(req.info().name());
  AddGrpc(
      "registration", name, expect,
      [this, req](grpc::ClientContext* ctx) {
        v1::RegisterResponse resp;
        return ctl_stub_->Register(ctx, req, &resp);
      },
      good);
}

// ---------------------------------------------------------------- the cases

void Campaign::AddInjectCases() {
  const std::string v = kVictim;
  const std::string agent_pid = std::to_string(h1_->agent->inner_pid());
  // kill: every selector and the signal.
  const std::string k = "inject kill";
  for (const char* sig : {"STOP", "CONT", "TSTP", "SIGTTIN", "sigstop"}) {
    AddCli(k, fmt::format("--signal {}", sig),
           Inject("kill", {"--process-name", v, "--signal", sig}), "signal");
  }
  for (const char* sig : {"0", "65", "-9", "RTMIN+99", "KILL; id", "9999999999999", "SIGFOO"}) {
    AddCli(k, fmt::format("--signal '{}'", sig),
           Inject("kill", {"--process-name", v, "--signal", sig}), "signal");
  }
  AddCli(k, "--pid 0", Inject("kill", {"--pid", "0"}), "process");
  AddCli(k, "--pid 1", Inject("kill", {"--pid", "1"}), "process.pid");
  AddCli(k, "--pid -1", Inject("kill", {"--pid", "-1"}), "process.pid");
  AddCli(k, "--pid 4294967296", Inject("kill", {"--pid", "4294967296"}), "pid");
  AddCli(k, "--pid <the agent itself>", Inject("kill", {"--pid", agent_pid}), "process.pid");
  AddCli(k, "--process-name faultline-agent", Inject("kill", {"--process-name", "faultline-agent"}),
         "process");
  AddCli(k, "--process-name of 16 characters",
         Inject("kill", {"--process-name", "flbadvic-16chars"}), "process.name");
  AddCli(k, "--process-name protected by policy", Inject("kill", {"--process-name", kProtected}),
         "process.name");
  AddCli(k, "--cmdline '(a' (invalid)", Inject("kill", {"--cmdline", "(a"}), "process.cmdline");
  AddCli(k, "--cmdline with a back-reference", Inject("kill", {"--cmdline", "(a)\\1"}),
         "process.cmdline");
  AddCli(k, "--cmdline '[ab]{20000}c'", Inject("kill", {"--cmdline", "[ab]{20000}c", "--dry-run"}),
         "process.cmdline");
  AddCli(k, "--cmdline '((a{1000}){1000}){1000}'",
         Inject("kill", {"--cmdline", "((a{1000}){1000}){1000}", "--dry-run"}), "process.cmdline");
  AddCli(k, "--mode sometimes", Inject("kill", {"--process-name", v, "--mode", "sometimes"}),
         "mode");
  AddCli(k, "--mode count without --count",
         Inject("kill", {"--process-name", v, "--mode", "count"}), "count");
  AddCli(k, "--count -3", Inject("kill", {"--process-name", v, "--mode", "count", "--count", "-3"}),
         "count");
  AddCli(k, "--count with mode one", Inject("kill", {"--process-name", v, "--count", "2"}),
         "count");
  AddCli(k, "--percent 0",
         Inject("kill", {"--process-name", v, "--mode", "percent", "--percent", "0"}), "percent");
  AddCli(k, "--percent 101",
         Inject("kill", {"--process-name", v, "--mode", "percent", "--percent", "101"}), "percent");
  AddCli(k, "--percent nan",
         Inject("kill", {"--process-name", v, "--mode", "percent", "--percent", "nan"}), "percent");
  AddCli(k, "--duration on an action", Inject("kill", {"--process-name", v, "--duration", "10s"}),
         "duration");
  AddCli(k, "--pidfile relative", Inject("kill", {"--pidfile", "run/x.pid"}), "process.pidfile");
  AddCli(k, "--pidfile a FIFO", Inject("kill", {"--pidfile", fifo_}), "pidfile");
  AddCli(k, "--pidfile /dev/zero", Inject("kill", {"--pidfile", "/dev/zero"}), "pidfile");
  AddCli(k, "--cgroup relative", Inject("kill", {"--cgroup", "system.slice"}), "process.cgroup");
  AddCli(k, "--cgroup /../../..", Inject("kill", {"--process-name", v, "--cgroup", "/../../.."}),
         "cgroup");
  AddCli(k, "no selector", Inject("kill", {"--signal", "TERM"}), "process");
  AddCli(k, "unknown flag --signall", Inject("kill", {"--process-name", v, "--signall", "TERM"}),
         "--signall");
  AddCli(k, "--netns on a process fault", Inject("kill", {"--process-name", v, "--netns", "x"}),
         "netns");

  // pause: durations and selectors.
  const std::string p = "inject pause";
  auto pause = [&](std::vector<std::string> extra) {
    std::vector<std::string> args = {"--process-name", v};
    args.insert(args.end(), extra.begin(), extra.end());
    return Inject("pause", args);
  };
  AddCli(p, "no --duration", pause({}), "duration");
  for (const char* d : {"146y", "-1s", "1e309s", "500x", "0s", "25h", "9223372036s", "", "1.5.5s",
                        "30", "NaNs", "1h-1s", "24h0.000001s"}) {
    AddCli(p, fmt::format("--duration '{}'", d), pause({"--duration", d}), "duration");
  }
  AddCli(p, "--duration '\\xff\\xfe' (not UTF-8)", pause({"--duration", "\xff\xfe"}), "duration");
  AddCli(p, "--pid 1", Inject("pause", {"--pid", "1", "--duration", "5s"}), "process.pid");
  AddCli(p, "--pid <the agent itself>", Inject("pause", {"--pid", agent_pid, "--duration", "5s"}),
         "process.pid");
  AddCli(p, "--process-name faultline-agent",
         Inject("pause", {"--process-name", "faultline-agent", "--duration", "5s"}), "process");
  AddCli(p, "--process-name protected by policy",
         Inject("pause", {"--process-name", kProtected, "--duration", "5s"}), "process.name");
  AddCli(p, "--process-name matching nothing",
         Inject("pause", {"--process-name", "flnothing", "--duration", "5s"}), "process");
  AddCli(p, "--cmdline '[ab]{20000}c'",
         Inject("pause", {"--cmdline", "[ab]{20000}c", "--duration", "5s", "--dry-run"}),
         "process.cmdline");
  AddCli(p, "--percent 250", pause({"--mode", "percent", "--percent", "250", "--duration", "5s"}),
         "percent");
  AddCli(p, "--duration 23h59m (policy max_duration 12h)", pause({"--duration", "23h59m", "--dry-run"}),
         "max_duration");

  // disk-fill: sizes, percentages, paths, the policy's ceiling.
  const std::string f = "inject disk-fill";
  auto fill = [&](std::vector<std::string> extra) {
    std::vector<std::string> args = {"--path", fill_dir_};
    args.insert(args.end(), extra.begin(), extra.end());
    return Inject("disk-fill", args);
  };
  AddCli(f, "no amount", fill({"--duration", "5s"}), "percent");
  for (const char* pc : {"150", "0", "-5", "nan", "1e309", "50%", "inf"}) {
    AddCli(f, fmt::format("--percent {}", pc), fill({"--percent", pc, "--duration", "5s"}),
           "percent");
  }
  for (const char* sz : {"0", "-1G", "1Q", "99999999T", "1e309", "1.5.5M", "0x10M"}) {
    AddCli(f, fmt::format("--bytes {}", sz), fill({"--bytes", sz, "--duration", "5s"}), "bytes");
  }
  AddCli(f, "--leave-free 1e309", fill({"--leave-free", "1e309", "--duration", "5s"}),
         "leave_free");
  AddCli(f, "--leave-free -1M", fill({"--leave-free", "-1M", "--duration", "5s"}), "leave_free");
  AddCli(f, "--percent and --bytes", fill({"--percent", "10", "--bytes", "1M", "--duration", "5s"}),
         "bytes");
  AddCli(
      f, "--path relative",
      Inject("disk-fill", {"--path", "var/lib", "--bytes", "1M", "--duration", "5s", "--dry-run"}),
      "path");
  AddCli(f, "no --path", Inject("disk-fill", {"--bytes", "1M", "--duration", "5s"}), "path");
  AddCli(f, "--path /proc",
         Inject("disk-fill", {"--path", "/proc", "--bytes", "1M", "--duration", "5s", "--dry-run"}),
         "path");
  AddCli(f, "--path a FIFO",
         Inject("disk-fill", {"--path", fifo_, "--bytes", "1M", "--duration", "5s", "--dry-run"}),
         "path");
  AddCli(f, "--path missing",
         Inject("disk-fill", {"--path", dir().Path("no/such/dir"), "--bytes", "1M", "--duration",
                              "5s", "--dry-run"}),
         "path");
  AddCli(f, "--duration 146y", fill({"--bytes", "1M", "--duration", "146y"}), "duration");
  auto disk = [&](std::vector<std::string> extra) {
    std::vector<std::string> args = {"--path", disk_dir_};
    args.insert(args.end(), extra.begin(), extra.end());
    return Inject("disk-fill", args);
  };
  AddCli(f, "--percent 90 over the policy ceiling 50",
         disk({"--percent", "90", "--duration", "5s"}), "ceiling");
  AddCli(f, "--leave-free 0 over the policy ceiling 50",
         disk({"--leave-free", "0", "--duration", "5s"}), "ceiling");
  AddCli(f, "--bytes 100G, more than the filesystem", disk({"--bytes", "100G", "--duration", "5s"}),
         "bytes");
  AddCli(f, "--percent 90 through a bind mount (ceiling by path)",
         Inject("disk-fill",
                {"--path", alias_dir_, "--percent", "90", "--duration", "5s", "--dry-run"}),
         "ceiling");
  AddGoodCli(f, "control: --bytes 1M --duration 3s on the loop ext4",
             disk({"--bytes", "1M", "--duration", "3s"}), [this] {
               RunCommand(Cli({"revert", "--all"}), 15s);
             });
  AddCli(f, "--bytes 1M on tmpfs without the opt-in",
         fill({"--bytes", "1M", "--duration", "5s", "--dry-run"}), "tmpfs");

  // netem: the shape flags (the kernel here has no sch_netem: every bad input
  // must be refused by the spec before the agent looks).
  const std::string n = "inject netem";
  auto netem = [&](std::vector<std::string> extra) {
    std::vector<std::string> args = {"--interface", "eth0", "--duration", "5s"};
    args.insert(args.end(), extra.begin(), extra.end());
    return Inject("netem", args);
  };
  AddCli(n, "no --interface", Inject("netem", {"--delay", "100ms", "--duration", "5s"}),
         "interface");
  for (const char* ifname :
       {"eth0; reboot", "sixteen-chars-if", "../../etc", "lo:1", "a/b", ".."}) {
    AddCli(n, fmt::format("--interface '{}'", ifname),
           Inject("netem", {"--interface", ifname, "--delay", "100ms", "--duration", "5s"}),
           "interface");
  }
  for (const char* d : {"61s", "-5ms", "1e309s", "100"}) {
    AddCli(n, fmt::format("--delay {}", d), netem({"--delay", d}), "delay");
  }
  for (const char* l : {"101%", "-1%", "abc", "1e309%"}) {
    AddCli(n, fmt::format("--loss {}", l), netem({"--loss", l}), "loss");
  }
  AddCli(n, "--jitter without --delay", netem({"--jitter", "10ms"}), "jitter");
  AddCli(n, "--reorder without --delay", netem({"--reorder", "10%"}), "reorder");
  AddCli(n, "--corrupt 200%", netem({"--corrupt", "200%"}), "corrupt");
  AddCli(n, "--duplicate x", netem({"--duplicate", "x"}), "duplicate");
  AddCli(n, "no parameter", netem({}), "netem");
  for (const char* to : {"10.0.0.0/33", "10.0.0.1:0", "10.0.0.1:65536", "[::1", "10.0.0.0/8:abc",
                         "999.1.1.1", "10.0.0.1/8/8", "10.0.0.1:80:80"}) {
    AddCli(n, fmt::format("--to {}", to), netem({"--delay", "10ms", "--to", to}), "to[0]");
  }
  AddCli(n, "--rate 0bit", netem({"--rate", "0bit"}), "rate");
  AddCli(n, "--rate 100tbit", netem({"--rate", "100tbit"}), "rate");
  AddCli(n, "--netns ../x", netem({"--delay", "10ms", "--netns", "../x"}), "netns");
  AddCli(n, "--netns-pid -5", netem({"--delay", "10ms", "--netns-pid", "-5"}), "netns_pid");
  AddCli(n, "--netns and --netns-pid",
         netem({"--delay", "10ms", "--netns", "a", "--netns-pid", "5"}), "netns");
  AddCli(n, "--duration 146y",
         Inject("netem", {"--interface", "eth0", "--delay", "10ms", "--duration", "146y"}),
         "duration");

  // bandwidth.
  const std::string b = "inject bandwidth";
  auto bw = [&](std::vector<std::string> extra) {
    std::vector<std::string> args = {"--interface", "eth0", "--duration", "5s"};
    args.insert(args.end(), extra.begin(), extra.end());
    return Inject("bandwidth", args);
  };
  AddCli(b, "no --rate", bw({}), "rate");
  for (const char* r : {"1mbitx", "-1mbit", "18gbit", "1e309bit", "0", "mbit"}) {
    AddCli(b, fmt::format("--rate {}", r), bw({"--rate", r}), "rate");
  }
  AddCli(b, "--interface ''",
         Inject("bandwidth", {"--interface", "", "--rate", "1mbit", "--duration", "5s"}),
         "interface");
  AddCli(b, "--interface with a newline",
         Inject("bandwidth", {"--interface", "eth0\n", "--rate", "1mbit", "--duration", "5s"}),
         "interface");
  AddCli(b, "--interface missing on the host",
         Inject("bandwidth", {"--interface", "nosuchif0", "--rate", "1mbit", "--duration", "5s"}),
         "interface");
  AddCli(b, "--netns a FIFO", bw({"--rate", "1mbit", "--netns", fifo_}), "netns");
  AddCli(b, "--netns /etc/passwd", bw({"--rate", "1mbit", "--netns", "/etc/passwd"}), "netns");
  AddCli(b, "--netns /dev/null", bw({"--rate", "1mbit", "--netns", "/dev/null"}), "netns");
  AddCli(b, "--netns missing name", bw({"--rate", "1mbit", "--netns", "fltest-nosuchns"}), "netns");
  AddCli(b, "--netns-pid 99999999", bw({"--rate", "1mbit", "--netns-pid", "99999999"}), "netns");
  AddCli(b, "--to 10.0.0.0/24:99999", bw({"--rate", "1mbit", "--to", "10.0.0.0/24:99999"}),
         "to[0]");
  AddCli(b, "--duration 0s",
         Inject("bandwidth", {"--interface", "eth0", "--rate", "1mbit", "--duration", "0s"}),
         "duration");

  // partition: CIDRs (data for libnftables, never text), ports, the control link.
  const std::string t = "inject partition";
  auto part = [&](std::vector<std::string> extra) {
    std::vector<std::string> args = {"--duration", "5s"};
    args.insert(args.end(), extra.begin(), extra.end());
    return Inject("partition", args);
  };
  AddCli(t, "no --peer", part({}), "peers");
  for (const char* peer :
       {"10.0.0.0/33", "300.1.1.1", "10.0.0.0/-1", "10.0.0.0/8 accept", "10.0.0.1; flush ruleset",
        "10.0.0.0/8\n", "::/129", "10.1", "", "10.0.0.0/0008"}) {
    AddCli(t, fmt::format("--peer '{}'", peer), part({"--peer", peer}), "peers[0]");
  }
  AddCli(t, "--port 0", part({"--peer", "10.99.0.0/24", "--port", "0"}), "ports[0]");
  AddCli(t, "--port 65536", part({"--peer", "10.99.0.0/24", "--port", "65536"}), "ports[0]");
  AddCli(t, "--port -1", part({"--peer", "10.99.0.0/24", "--port", "-1"}), "ports");
  AddCli(t, "--port 99999999999", part({"--peer", "10.99.0.0/24", "--port", "99999999999"}),
         "ports");
  AddCli(t, "--protocol icmp", part({"--peer", "10.99.0.0/24", "--protocol", "icmp"}), "protocol");
  AddCli(t, "--direction sideways", part({"--peer", "10.99.0.0/24", "--direction", "sideways"}),
         "direction");
  AddCli(t, "--keep 1.2.3.4/40", part({"--peer", "10.99.0.0/24", "--keep", "1.2.3.4/40"}),
         "keep[0]");
  AddCli(t, "--peer the controller", part({"--peer", "10.88.0.2/32"}), "peers");
  AddCli(t, "--peer protected_cidrs", part({"--peer", "10.88.0.200/32"}), "protected_cidrs");
  AddCli(t, "--netns a FIFO", part({"--peer", "10.99.0.0/24", "--netns", fifo_}), "netns");
  AddCli(t, "--duration 146y",
         Inject("partition", {"--peer", "10.99.0.0/24", "--duration", "146y"}), "duration");

  // dns.
  const std::string d = "inject dns";
  AddCli(d, "--resolver 8.8.8.8.8", Inject("dns", {"--resolver", "8.8.8.8.8", "--duration", "5s"}),
         "resolvers[0]");
  AddCli(d, "--resolver '1.1.1.1 accept'",
         Inject("dns", {"--resolver", "1.1.1.1 accept", "--duration", "5s"}), "resolvers[0]");
  AddCli(d, "no --duration", Inject("dns", {"--resolver", "10.99.0.53"}), "duration");
  AddCli(d, "--duration -1s", Inject("dns", {"--resolver", "10.99.0.53", "--duration", "-1s"}),
         "duration");
  AddCli(d, "--direction up",
         Inject("dns", {"--resolver", "10.99.0.53", "--direction", "up", "--duration", "5s"}),
         "direction");
  AddCli(d, "--netns a FIFO",
         Inject("dns", {"--resolver", "10.99.0.53", "--netns", fifo_, "--duration", "5s"}),
         "netns");

  // Kinds that do not exist.
  AddCli("cli misc", "inject cpu (no such kind)", Inject("cpu", {"--duration", "5s"}), "cpu");
  AddCli("cli misc", "inject zone-outage (controller-level only)",
         Inject("zone-outage", {"--duration", "5s"}), "zone-outage");

  // Controls: good inputs the agent must take (real faults, reverted by `after`).
  auto revert_all = [this] { RunCommand(Cli({"revert", "--all"}), 15s); };
  {
    // The victim's pid is read when the case runs (a victim may be restarted).
    Case& c = Add(p, "control: pause --pid <victim> --duration 3s", "");
    c.good = true;
    c.after = revert_all;
    c.run = [this](const Case& self) {
      return RunProgram(Inject("pause", {"--pid", std::to_string(victims_[1].process.inner_pid),
                                         "--duration", "3s"}),
                        self.expect, CaseTimeout());
    };
  }
  AddGoodCli(t, "control: partition --peer 10.99.0.0/24 --duration 3s",
             part({"--peer", "10.99.0.0/24", "--port", "6379", "--protocol", "tcp"}), revert_all);
  AddGoodCli(t, "control: partition 0.0.0.0/0 (the control link stays exempt)",
             part({"--peer", "0.0.0.0/0"}), revert_all);
  AddGoodCli(b, "control: bandwidth eth0 1mbit 3s", bw({"--rate", "1mbit"}), revert_all);
  AddGoodCli(k, "control: kill --signal TERM --dry-run",
             Inject("kill", {"--process-name", v, "--signal", "TERM", "--dry-run"}));
}

void Campaign::AddScheduleCases() {
  const std::string m = "schedule";
  const std::string exp = WriteFile("schedule-exp.yaml", R"(name: sched
targets:
  t: {labels: {role: none}}
faults:
  - on: t
    pause: {process: {name: nothing}}
objectives: {rto: 5s}
duration: 1s
)");
  const std::string broken = WriteFile("schedule-broken.yaml", "name: broken\nduration: soon\n");
  auto add = [&](std::vector<std::string> flags) {
    std::vector<std::string> args = {"schedule", "add"};
    args.insert(args.end(), flags.begin(), flags.end());
    return CtlCli(args);
  };
  AddCli(m, "add 'Bad Name'", add({"Bad Name", "--experiment", exp, "--every", "5m"}),
         "name: must match");
  AddCli(m, "add without --experiment", add({"x", "--every", "5m"}), "--experiment: required");
  AddCli(m, "add --cron and --every", add({"x", "--experiment", exp, "--cron", "* * * * *",
                                           "--every", "5m"}),
         "--cron, --every");
  AddCli(m, "add neither --cron nor --every", add({"x", "--experiment", exp}),
         "cron, every: exactly one");
  AddCli(m, "add --cron hour 25", add({"x", "--experiment", exp, "--cron", "0 25 * * *"}),
         "cron: hour: 25");
  AddCli(m, "add --cron 30 February", add({"x", "--experiment", exp, "--cron", "0 0 30 2 *"}),
         "never");
  AddCli(m, "add --every 0s", add({"x", "--experiment", exp, "--every", "0s"}), "every");
  AddCli(m, "add --every soon", add({"x", "--experiment", exp, "--every", "soon"}), "every");
  AddCli(m, "add --timezone Mars/Olympus",
         add({"x", "--experiment", exp, "--every", "5m", "--timezone", "Mars/Olympus"}), "timezone");
  AddCli(m, "add --timezone ../../etc/passwd",
         add({"x", "--experiment", exp, "--every", "5m", "--timezone", "../../etc/passwd"}),
         "timezone");
  AddCli(m, "add --window 9-17", add({"x", "--experiment", exp, "--every", "5m", "--window", "9-17"}),
         "window");
  AddCli(m, "add --jitter -1s", add({"x", "--experiment", exp, "--every", "5m", "--jitter", "-1s"}),
         "jitter");
  AddCli(m, "add --concurrency sometimes",
         add({"x", "--experiment", exp, "--every", "5m", "--concurrency", "sometimes"}),
         "concurrency");
  AddCli(m, "add --starting-deadline 2d",
         add({"x", "--experiment", exp, "--every", "5m", "--starting-deadline", "48h"}),
         "starting_deadline");
  AddCli(m, "add --history 5000",
         add({"x", "--experiment", exp, "--every", "5m", "--history", "5000"}), "history");
  AddCli(m, "add --catch-up all",
         add({"x", "--experiment", exp, "--every", "5m", "--catch-up", "all"}), "catch_up");
  AddCli(m, "add --experiment a FIFO", add({"x", "--experiment", fifo_, "--every", "5m"}),
         "not a regular file");
  AddCli(m, "add --experiment a broken file", add({"x", "--experiment", broken, "--every", "5m"}),
         "schedule-broken.yaml");
  AddCli(m, "show an unknown schedule", CtlCli({"schedule", "show", "nosuch"}), "no schedule");
  AddCli(m, "suspend an unknown schedule", CtlCli({"schedule", "suspend", "nosuch"}),
         "no schedule");
  AddCli(m, "update an unknown schedule", CtlCli({"schedule", "update", "nosuch", "--every", "5m"}),
         "no schedule");
  AddCli(m, "delete an unknown schedule", CtlCli({"schedule", "delete", "nosuch"}), "no schedule");
  AddCli(m, "blackout --from garbage",
         CtlCli({"blackout", "add", "b", "--from", "garbage", "--to", "now+1h"}), "--from");
  AddCli(m, "blackout --to before --from",
         CtlCli({"blackout", "add", "b", "--from", "now+2h", "--to", "now+1h"}),
         "to: must be after from");
  AddCli(m, "blackout in the past",
         CtlCli({"blackout", "add", "b", "--from", "2020-01-01T00:00:00Z", "--to",
                 "2020-01-02T00:00:00Z"}),
         "to: already past");
  AddCli(m, "blackout of two years",
         CtlCli({"blackout", "add", "b", "--from", "now", "--to", "now+17520h"}), "366 days");
  AddCli(m, "blackout 'Bad Name'",
         CtlCli({"blackout", "add", "Bad Name", "--from", "now", "--to", "now+1h"}),
         "name: must match");
  AddCli(m, "delete an unknown blackout", CtlCli({"blackout", "delete", "nosuch"}), "no blackout");
  // Nothing of the above was stored.
  AddGoodCli(m, "no schedule was stored", CtlCli({"schedules"}));
}

void Campaign::AddGameDayCases() {
  const std::string m = "gameday";
  auto runbook = [&](const std::string& name, const std::string& yaml) {
    return WriteFile(name, yaml);
  };
  const std::string missing =
      runbook("gd-missing.yaml", "gameday: g\nsteps: [{experiment: no-such-file.yaml}]\n");
  const std::string fifo_step = runbook(
      "gd-fifo.yaml", "gameday: g\nsteps: [{experiment: " + fifo_ + "}]\n");
  const std::string long_gate = runbook(
      "gd-gate.yaml", "gameday: g\nsteps: [{gate: {prompt: p, timeout: 48h}}]\n");
  const std::string nested = runbook(
      "gd-nested.yaml",
      "gameday: g\nsteps: [{parallel: [{note: a}, {gate: {prompt: p}}]}]\n");
  const std::string two = runbook("gd-two.yaml", "gameday: g\nsteps: [{note: a, wait: 1s}]\n");
  const std::string bad_name = runbook("gd-name.yaml", "gameday: G Day\nsteps: [{note: a}]\n");
  AddCli(m, "start a FIFO", CtlCli({"gameday", "start", fifo_}), "not a regular file");
  AddCli(m, "start: a step's file is missing", CtlCli({"gameday", "start", missing}),
         "no-such-file.yaml");
  AddCli(m, "start: a step's file is a FIFO", CtlCli({"gameday", "start", fifo_step}),
         "not a regular file");
  AddCli(m, "start: gate timeout 48h", CtlCli({"gameday", "start", long_gate}),
         "steps[0].gate.timeout: at most");
  AddCli(m, "start: a gate in parallel", CtlCli({"gameday", "start", nested}),
         "steps[0].parallel[1]: a gate cannot run in parallel");
  AddCli(m, "start: a step of two kinds", CtlCli({"gameday", "start", two}),
         "steps[0]: more than one");
  AddCli(m, "start: bad name", CtlCli({"gameday", "start", bad_name}), "gameday: must match");
  AddCli(m, "approve an unknown game day", CtlCli({"gameday", "approve", "nosuch"}),
         "no game day");
  AddCli(m, "abort an unknown game day", CtlCli({"gameday", "abort", "nosuch"}), "no game day");
  AddCli(m, "note an unknown game day", CtlCli({"gameday", "note", "nosuch", "hello"}),
         "no game day");
  AddCli(m, "report --format pdf", CtlCli({"gameday", "report", "nosuch", "--format", "pdf"}),
         "--format");
  // Nothing of the above was stored.
  AddGoodCli(m, "no game day was stored", CtlCli({"gameday", "status"}));
}

void Campaign::AddCliMiscCases() {
  const std::string m = "cli misc";
  AddCli(m, "--agent unix:/nonexistent",
         {cli_, "--agent", "unix:" + dir().Path("nonexistent.sock"), "faults"}, "nonexistent.sock");
  AddCli(m, "--agent 'not an address'", {cli_, "--agent", "not an address", "faults"}, "--agent");
  AddCli(m, "--agent a FIFO", {cli_, "--agent", "unix:" + fifo_, "faults"}, "fifo");
  AddCli(m, "--controller host:99999", {cli_, "--controller", "127.0.0.1:99999", "agents"},
         "--controller");
  AddCli(m, "-o yaml", Cli({"faults", "-o", "yaml"}), "--output");
  AddCli(m, "validate a FIFO", {cli_, "validate", fifo_}, "not a regular file");
  AddCli(m, "validate a missing file", {cli_, "validate", dir().Path("nope.yaml")}, "nope.yaml");
  AddCli(m, "validate a folder", {cli_, "validate", dir().path()}, "not a regular file");
  AddCli(m, "validate /dev/zero", {cli_, "validate", "/dev/zero"}, "not a regular file");
  AddCli(m, "run a FIFO", CtlCli({"run", fifo_}), "not a regular file");
  AddCli(m, "revert an unknown id", Cli({"revert", "no-such-fault"}), "no-such-fault");
  AddCli(m, "revert ../../etc/passwd", Cli({"revert", "../../etc/passwd"}), "../../etc/passwd");
  AddCli(m, "revert an id and --all", Cli({"revert", "x", "--all"}), "revert");
  AddCli(m, "runs show an unknown id", CtlCli({"runs", "show", "../../etc/passwd"}),
         "../../etc/passwd");
  AddCli(m, "runs --limit -1", CtlCli({"runs", "--limit", "-1"}), "--limit");
  AddCli(m, "certs issue agent ../evil",
         {cli_, "certs", "issue", "agent", "../evil", "--dir", dc_->certs().dir}, "NAME");
  AddCli(m, "certs issue root x", {cli_, "certs", "issue", "root", "x", "--dir", dc_->certs().dir},
         "ROLE");
  AddCli(
      m, "certs issue --ip 999.1.1.1",
      {cli_, "certs", "issue", "agent", "okname", "--dir", dc_->certs().dir, "--ip", "999.1.1.1"},
      "--ip");
  AddCli(m, "certs init over an existing CA", {cli_, "certs", "init", dc_->certs().dir}, "--force");
  AddGoodCli(m, "control: faults -o json", Cli({"faults", "-o", "json"}));
}

void Campaign::AddRpcCases() {
  // Inject requests the CLI never sends (leases, raw enums), straight to the agent.
  const std::string l = "lease/agent rpc";
  auto inject = [this](v1::InjectRequest req) {
    return [this, req](grpc::ClientContext* ctx) {
      v1::InjectResponse resp;
      return h1_->agent->stub().Inject(ctx, req, &resp);
    };
  };
  auto pause_req = [](const std::string& lease, int64_t ttl) {
    v1::InjectRequest req;
    req.mutable_spec()->mutable_pause()->mutable_process()->set_name(kVictim);
    req.mutable_spec()->set_duration("5s");
    req.set_dry_run(true);
    req.set_lease_id(lease);
    req.set_lease_ttl_ms(ttl);
    return req;
  };
  AddGrpc(l, "lease_ttl_ms 0", "lease_ttl_ms", inject(pause_req("run-x", 0)));
  AddGrpc(l, "lease_ttl_ms -1", "lease_ttl_ms", inject(pause_req("run-x", -1)));
  AddGrpc(l, "lease_ttl_ms INT64_MAX", "lease_ttl_ms", inject(pause_req("run-x", INT64_MAX)), false);
  AddGrpc(l, "lease_ttl_ms 3600001", "lease_ttl_ms", inject(pause_req("run-x", 3600001)), false);
  AddGrpc(l, "lease_id of 200 characters", "lease_id",
          inject(pause_req(std::string(200, 'l'), 1000)));
  auto renew = [this](const std::string& lease, int64_t ttl) {
    return [this, lease, ttl](grpc::ClientContext* ctx) {
      v1::RenewLeaseRequest req;
      req.set_lease_id(lease);
      req.set_ttl_ms(ttl);
      v1::RenewLeaseResponse resp;
      return h1_->agent->stub().RenewLease(ctx, req, &resp);
    };
  };
  AddGrpc(l, "RenewLease ttl_ms 0", "ttl_ms", renew("run-x", 0));
  AddGrpc(l, "RenewLease ttl_ms INT64_MAX", "ttl_ms", renew("run-x", INT64_MAX), false);
  {
    v1::InjectRequest req;
    req.set_dry_run(true);
    AddGrpc(l, "Inject without a kind", "kind", inject(req));
  }
  {
    v1::InjectRequest req = pause_req("", 0);
    req.mutable_spec()->mutable_pause()->set_mode(static_cast<v1::SelectionMode>(99));
    AddGrpc(l, "pause mode enum 99", "mode", inject(req));
  }
  {
    v1::InjectRequest req;
    req.set_dry_run(true);
    req.mutable_spec()->set_duration("5s");
    req.mutable_spec()->mutable_partition()->add_peers("10.99.0.0/24");
    req.mutable_spec()->mutable_partition()->set_protocol(static_cast<v1::Protocol>(42));
    AddGrpc(l, "partition protocol enum 42", "protocol", inject(req));
  }
  {
    v1::InjectRequest req;
    req.set_dry_run(true);
    req.mutable_spec()->mutable_kill()->mutable_process()->set_pid(INT_MIN);
    AddGrpc(l, "kill pid INT32_MIN", "process.pid", inject(req));
  }
  {
    v1::InjectRequest req;
    req.set_dry_run(true);
    req.mutable_spec()->set_duration("5s");
    req.mutable_spec()->set_netns_pid(-1);
    req.mutable_spec()->mutable_partition()->add_peers("10.99.0.0/24");
    AddGrpc(l, "netns_pid -1", "netns_pid", inject(req));
  }
  {
    v1::InjectRequest req;
    req.set_dry_run(true);
    req.mutable_spec()->mutable_kill()->mutable_process()->set_cmdline("[ab]{20000}c");
    AddGrpc(l, "kill cmdline '[ab]{20000}c' (no CLI check)", "process.cmdline", inject(req), false);
  }
  {
    v1::InjectRequest req;
    req.set_dry_run(true);
    req.mutable_spec()->mutable_kill()->mutable_process()->set_name(std::string(1 << 20, 'n'));
    AddGrpc(l, "kill process.name of 1 MiB", "process.name", inject(req));
  }
  AddGrpc(l, "Commit a prepared fault at INT64_MAX ns", "start_at",
          [this](grpc::ClientContext* ctx) {
            v1::InjectRequest prepare;
            prepare.mutable_spec()->mutable_pause()->mutable_process()->set_name(kVictim);
            prepare.mutable_spec()->set_duration("5s");
            prepare.set_prepare_only(true);
            prepare.set_lease_id("bad-commit");
            prepare.set_lease_ttl_ms(2000);
            v1::InjectResponse prepared;
            auto pctx = ContextWithDeadline(5s);
            grpc::Status st = h1_->agent->stub().Inject(pctx.get(), prepare, &prepared);
            if (!st.ok()) return grpc::Status(st.error_code(), "prepare: " + st.error_message());
            v1::CommitRequest req;
            req.add_ids(prepared.fault().id());
            req.set_start_at_unix_ns(INT64_MAX);
            v1::CommitResponse resp;
            st = h1_->agent->stub().Commit(ctx, req, &resp);
            // The prepared part is this case's own set-up: forget it (its lease would
            // in 2 s anyway) so that only what the Commit did is left to look at.
            v1::RevertAllRequest forget;
            forget.set_lease_id("bad-commit");
            v1::RevertAllResponse forgotten;
            auto fctx = ContextWithDeadline(5s);
            (void)h1_->agent->stub().RevertAll(fctx.get(), forget, &forgotten);
            return st;
          });

  // Exec probes: the agent runs only argv vectors its policy lists.
  const std::string e = "exec probe";
  auto probe = [this](std::vector<std::string> argv, std::string interval) {
    return [this, argv, interval](grpc::ClientContext* ctx) {
      v1::RunProbeRequest req;
      req.mutable_probe()->set_name("p");
      for (const auto& a : argv) req.mutable_probe()->mutable_exec()->add_argv(a);
      if (!interval.empty()) req.mutable_probe()->set_interval(interval);
      req.set_max_samples(1);
      auto reader = h1_->agent->stub().RunProbe(ctx, req);
      v1::ProbeSample sample;
      bool all_ok = true;
      int n = 0;
      while (reader->Read(&sample)) {
        ++n;
        all_ok = all_ok && sample.ok();
      }
      grpc::Status st = reader->Finish();
      if (st.ok() && (n == 0 || !all_ok)) {
        return grpc::Status(grpc::StatusCode::UNKNOWN,
                            fmt::format("{} sample(s), ok {}: {}", n, all_ok, sample.error()));
      }
      return st;
    };
  };
  AddGrpc(e, "RunProbe exec /bin/sh -c id (not in the policy)", "not allowed by the exec policy",
          probe({"/bin/sh", "-c", "id"}, ""));
  AddGrpc(e, "RunProbe exec relative sh", "exec.argv[0]", probe({"sh", "-c", "id"}, ""));
  AddGrpc(e, "RunProbe exec /bin/true with an extra argument", "not allowed by the exec policy",
          probe({"/bin/true", "--help"}, ""));
  AddGrpc(e, "RunProbe exec with no argv", "exec", probe({}, ""));
  AddGrpc(e, "RunProbe exec with a NUL byte", "exec", probe({std::string("/bin/true\0x", 11)}, ""));
  AddGrpc(e, "RunProbe interval 1ns", "interval", probe({"/bin/true"}, "1ns"));
  AddGrpc(e, "RunProbe http file:///etc/passwd", "url", [this](grpc::ClientContext* ctx) {
    v1::RunProbeRequest req;
    req.mutable_probe()->mutable_http()->set_url("file:///etc/passwd");
    req.set_max_samples(1);
    auto reader = h1_->agent->stub().RunProbe(ctx, req);
    v1::ProbeSample s;
    while (reader->Read(&s)) {
    }
    return reader->Finish();
  });
  AddGrpc(e, "control: RunProbe exec /bin/true (in the policy)", "", probe({"/bin/true"}, ""),
          true);

  // Data writers (issue 10): the agent checks the workload again, never
  // trusting its caller; the control half-closes at once and gets its last batch.
  const std::string d = "data writer";
  auto writer = [this](std::function<void(v1::DataWriterControl*)> edit) {
    return [this, edit](grpc::ClientContext* ctx) {
      v1::DataWriterControl start;
      start.mutable_workload()->set_name("orders");
      start.mutable_workload()->mutable_redis()->set_address("127.0.0.1:1");
      start.set_run_id("bad-inputs");
      start.set_max_write_ms(1000);
      edit(&start);
      auto stream = h1_->agent->stub().RunDataWriter(ctx);
      stream->Write(start);
      stream->WritesDone();
      v1::DataWriterBatch batch;
      bool done = false;
      while (stream->Read(&batch)) done = batch.done();
      grpc::Status st = stream->Finish();
      if (st.ok() && !done) return grpc::Status(grpc::StatusCode::UNKNOWN, "no last batch");
      return st;
    };
  };
  AddGrpc(d, "RunDataWriter max_write_ms 0", "max_write_ms",
          writer([](v1::DataWriterControl* s) { s->set_max_write_ms(0); }));
  AddGrpc(d, "RunDataWriter max_write_ms a year", "max_write_ms",
          writer([](v1::DataWriterControl* s) { s->set_max_write_ms(365LL * 86400 * 1000); }));
  AddGrpc(d, "RunDataWriter rate 5000/s", "workload.rate",
          writer([](v1::DataWriterControl* s) { s->mutable_workload()->set_rate("5000/s"); }));
  AddGrpc(d, "RunDataWriter a key pattern in the name", "workload.name",
          writer([](v1::DataWriterControl* s) { s->mutable_workload()->set_name("*"); }));
  AddGrpc(d, "RunDataWriter a newline in the run id", "run_id",
          writer([](v1::DataWriterControl* s) { s->set_run_id("r\nFLUSHALL"); }));
  AddGrpc(d, "RunDataWriter no service", "exactly one of",
          writer([](v1::DataWriterControl* s) { s->mutable_workload()->clear_redis(); }));
  AddGrpc(d, "ReadData writes -1", "writes", [this](grpc::ClientContext* ctx) {
    v1::ReadDataRequest req;
    req.mutable_workload()->set_name("orders");
    req.mutable_workload()->mutable_redis()->set_address("127.0.0.1:1");
    req.set_run_id("bad-inputs");
    req.set_writes(-1);
    v1::ReadDataResponse resp;
    return h1_->agent->stub().ReadData(ctx, req, &resp);
  });
  AddGrpc(d, "control: RunDataWriter stopped at once", "",
          writer([](v1::DataWriterControl*) {}), true);

  // Drill steps (issue 10, restore drills): argv through the exec policy, a
  // bounded timeout; the control runs /bin/true, which the policy allows.
  const std::string r = "drill step";
  auto step = [this](std::vector<std::string> argv, int64_t timeout_ms) {
    return [this, argv, timeout_ms](grpc::ClientContext* ctx) {
      v1::RunStepRequest req;
      for (const auto& a : argv) req.add_argv(a);
      req.set_timeout_ms(timeout_ms);
      req.set_step("verify");
      v1::RunStepResponse resp;
      return h1_->agent->stub().RunStep(ctx, req, &resp);
    };
  };
  AddGrpc(r, "RunStep /bin/sh -c id (not in the policy)", "argv[0] \"/bin/sh\"",
          step({"/bin/sh", "-c", "id"}, 1000));
  AddGrpc(r, "RunStep relative sh", "argv[0]", step({"sh", "-c", "id"}, 1000));
  AddGrpc(r, "RunStep with no argv", "argv", step({}, 1000));
  AddGrpc(r, "RunStep with a NUL byte", "argv", step({std::string("/bin/true\0x", 11)}, 1000));
  AddGrpc(r, "RunStep timeout_ms 0", "timeout_ms", step({"/bin/true"}, 0));
  AddGrpc(r, "RunStep timeout_ms -1", "timeout_ms", step({"/bin/true"}, -1));
  AddGrpc(r, "RunStep timeout_ms 7 h", "timeout_ms", step({"/bin/true"}, 7LL * 3600 * 1000));
  AddGrpc(r, "RunStep timeout_ms INT64_MAX", "timeout_ms", step({"/bin/true"}, INT64_MAX));
  AddGrpc(r, "control: RunStep /bin/true (in the policy)", "", step({"/bin/true"}, 5000), true);
}

void Campaign::AddDrillCases() {
  const std::string head =
      "name: bad-drill\ntargets:\n  db: {names: [h1]}\nobjectives: {rto: 1m}\n";
  const std::string verify = "  verify: {on: db, exec: {argv: [/bin/true]}}\n";
  const std::string restore = "  restore: {on: db, exec: {argv: [/bin/true]}}\n";
  AddValidate("control: a drill", head + "drill:\n" + restore + verify, "");
  cases_.back().good = true;
  AddValidate("drill without restore", head + "drill:\n" + verify, "drill.restore");
  AddValidate("drill without verify", head + "drill:\n" + restore, "drill.verify");
  AddValidate("drill step on an unknown target",
              head + "drill:\n" + restore + "  verify: {on: nowhere, exec: {argv: [/bin/true]}}\n",
              "drill.verify.on");
  AddValidate("drill step argv through a shell name",
              head + "drill:\n" + restore + "  verify: {on: db, exec: {argv: [sh, -c, id]}}\n",
              "drill.verify.exec.argv[0]");
  AddValidate("drill step timeout 1y",
              head + "drill:\n" + restore +
                  "  verify: {on: db, exec: {argv: [/bin/true]}, timeout: 8760h}\n",
              "drill.verify.timeout");
  AddValidate("drill with faults beside it",
              head + "faults:\n  - {on: db, kill: {process: {name: x}}}\ndrill:\n" + restore + verify,
              "faults: not with drill");
  AddValidate("drill with probes beside it",
              head + "probes:\n  - {name: p, tcp: {address: \"10.0.0.1:1\"}}\ndrill:\n" + restore +
                  verify,
              "probes: not with drill");
  AddValidate("drill with data beside it",
              head + "data:\n  - {name: d, redis: {address: \"10.0.0.1:6379\"}}\ndrill:\n" +
                  restore + verify,
              "data: not with drill");
  AddValidate("drill marker without restored",
              head + "drill:\n  backup: {on: db, exec: {argv: [/bin/true]}}\n" + restore + verify +
                  "  marker: {postgres: {dsn: \"host=127.0.0.1 dbname=app\"}}\n",
              "drill.marker.restored");
  AddValidate("drill marker dsn with a host name",
              head + "drill:\n  backup: {on: db, exec: {argv: [/bin/true]}}\n" + restore + verify +
                  "  marker: {postgres: {dsn: \"host=db.example dbname=app\"}, restored: {dsn: "
                  "\"host=127.0.0.1 dbname=r\"}}\n",
              "drill.marker.postgres.dsn");
  AddValidate("drill marker every 0s",
              head + "drill:\n  backup: {on: db, exec: {argv: [/bin/true]}}\n" + restore + verify +
                  "  marker: {postgres: {dsn: \"host=127.0.0.1 dbname=app\"}, every: 0s, restored: "
                  "{dsn: \"host=127.0.0.1 dbname=r\"}}\n",
              "drill.marker.every");
}

void Campaign::AddExperimentCases() {
  // ---- faultline validate ----
  AddValidate("control: the base experiment", Exp().Render(), "");
  cases_.back().good = true;
  AddDrillCases();
  {
    Exp x;
    x.objectives = "objectives: {rto: 5s, recovered_after: 0}\n";  // 0 = the default, 3
    AddValidate("control: recovered_after 0 (= default 3)", x.Render(), "");
    cases_.back().good = true;
  }
  std::string bomb = "a: &a [x, x, x, x, x, x, x, x, x]\n";
  for (char c = 'b'; c <= 'j'; ++c) {
    bomb += fmt::format("{0}: &{0} [*{1}, *{1}, *{1}, *{1}, *{1}, *{1}, *{1}, *{1}, *{1}]\n", c,
                        static_cast<char>(c - 1));
  }
  AddValidate("aliases/anchors bomb", bomb + Exp().Render(), "aliases");
  {
    Exp x;
    x.name = "name: &n bad-inputs-base\ndescription: *n\n";
    AddValidate("an alias in a known field", x.Render(), "aliases");
  }
  AddValidate("2 MiB file", Exp().Render() + "description: \"" + std::string(2 << 20, 'x') + "\"\n",
              "KiB");
  AddValidate(
      "1000 nested lists",
      Exp().Render() + "description: " + std::string(1000, '[') + std::string(1000, ']') + "\n",
      "line 14");
  AddValidate("100000 nested lists",
              "description: " + std::string(100000, '[') + std::string(100000, ']') + "\n", "line");
  AddValidate("binary garbage", std::string("\xff\xfe\x00\x01name: x\n", 11), "(top)");
  AddValidate("not a mapping", "- a\n- b\n", "(top)");
  AddValidate("empty file", "", "(top)");
  {
    Exp x;
    x.extra = "durration: 1s\n";
    AddValidate("unknown top key durration", x.Render(), "durration");
  }
  {
    Exp x;
    x.faults = "faults:\n  - on: db\n    pause: {procces: {name: flbadvic}}\n";
    AddValidate("unknown nested key procces", x.Render(), "procces");
  }
  {
    Exp x;
    x.targets = "targets:\n  - db\n";
    AddValidate("targets as a list", x.Render(), "targets");
  }
  {
    Exp x;
    x.duration = "duration: [1s]\n";
    AddValidate("duration as a list", x.Render(), "duration");
  }
  {
    Exp x;
    x.objectives = "objectives: {rto: 5s, recovered_after: 2147483647}\n";
    AddValidate("recovered_after 2147483647", x.Render(), "objectives.recovered_after");
  }
  {
    Exp x;
    x.objectives = "objectives: {rto: 5s, recovered_after: -1}\n";
    AddValidate("recovered_after -1", x.Render(), "objectives.recovered_after");
  }
  {
    Exp x;
    x.objectives = "objectives: {rto: 5s, recovered_after: 99999999999}\n";
    AddValidate("recovered_after 99999999999 (int32 overflow)", x.Render(), "recovered_after");
  }
  {
    Exp x;
    x.objectives = "objectives: {rto: 5s, recovered_after: three}\n";
    AddValidate("recovered_after three", x.Render(), "recovered_after");
  }
  for (const char* dur : {"25h", "146y", "-1s", "1e309s", "500x", "24h1ns"}) {
    Exp x;
    x.duration = fmt::format("duration: \"{}\"\n", dur);
    AddValidate(fmt::format("duration {}", dur), x.Render(), "duration");
  }
  {
    Exp x;
    x.objectives = "objectives: {rto: 25h}\n";
    AddValidate("rto 25h", x.Render(), "objectives.rto");
  }
  {
    Exp x;
    x.faults = "faults:\n  - on: db\n    duration: 2s\n    pause: {process: {name: flbadvic}}\n";
    AddValidate("fault longer than the experiment", x.Render(), "faults[0].duration");
  }
  {
    Exp x;
    x.targets = "targets:\n";
    for (int i = 0; i < 100; ++i) x.targets += fmt::format("  t{}: {{labels: {{role: db}}}}\n", i);
    AddValidate("100 targets", x.Render(), "targets: at most");
  }
  {
    Exp x;
    x.faults = "faults:\n";
    for (int i = 0; i < 100; ++i)
      x.faults += "  - on: db\n    pause: {process: {name: flbadvic}}\n";
    AddValidate("100 faults", x.Render(), "faults: at most");
  }
  {
    Exp x;
    x.targets = "targets:\n  db: {}\n";
    AddValidate("target selecting everything", x.Render(), "targets.db");
  }
  {
    Exp x;
    x.targets = "targets:\n  db: {selector: \"role in (db\"}\n";
    AddValidate("selector 'role in (db'", x.Render(), "targets.db.selector");
  }
  {
    Exp x;
    x.targets = "targets:\n  db: {selector: \"" + std::string(20000, '(') + "\"}\n";
    AddValidate("selector of 20000 '('", x.Render(), "targets.db.selector");
  }
  {
    Exp x;
    x.targets = "targets:\n  db: {labels: {role: db}, count: -1}\n";
    AddValidate("target count -1", x.Render(), "targets.db.count");
  }
  {
    Exp x;
    x.targets = "targets:\n  db: {labels: {role: db}, percent: 150}\n";
    AddValidate("target percent 150", x.Render(), "targets.db.percent");
  }
  {
    Exp x;
    x.targets = "targets:\n  \"d b\": {labels: {role: db}}\n";
    AddValidate("target name with a space", x.Render(), "targets");
  }
  {
    Exp x;
    x.targets = "targets:\n  controller: {labels: {role: db}}\n  db: {labels: {role: db}}\n";
    AddValidate("target named controller", x.Render(), "targets.controller");
  }
  {
    Exp x;
    x.faults = "faults:\n  - on: web\n    pause: {process: {name: flbadvic}}\n";
    AddValidate("fault on an unknown target", x.Render(), "faults[0].on");
  }
  {
    Exp x;
    x.faults =
        "faults:\n  - on: db\n    pause: {process: {name: flbadvic}}\n    kill: {process: "
        "{name: flbadvic}}\n";
    AddValidate("two kinds in one fault", x.Render(), "faults[0]");
  }
  {
    Exp x;
    x.faults = "faults:\n  - on: db\n    kind: kill\n    process: {name: flbadvic}\n";
    AddValidate("old flat form kind: kill", x.Render(), "faults[0].kind");
  }
  {
    Exp x;
    x.faults = "faults:\n  - on: db\n    kill: {process: {name: flbadvic}, signal: STOP}\n";
    AddValidate("kill signal STOP", x.Render(), "faults[0].kill.signal");
  }
  {
    Exp x;
    x.faults = "faults:\n  - on: db\n    pause: {process: {name: flbadvic-16chars}}\n";
    AddValidate("process name of 16 characters", x.Render(), "faults[0].pause.process.name");
  }
  {
    Exp x;
    x.faults = "faults:\n  - on: db\n    pause: {process: {pid: 0}}\n";
    AddValidate("pid 0", x.Render(), "faults[0].pause.process");
  }
  {
    Exp x;
    x.faults = "faults:\n  - on: db\n    pause: {process: {pid: 1}}\n";
    AddValidate("pid 1", x.Render(), "faults[0].pause.process.pid");
  }
  {
    Exp x;
    x.faults = "faults:\n  - on: db\n    pause: {process: {cmdline: \"[ab]{20000}c\"}}\n";
    AddValidate("cmdline '[ab]{20000}c'", x.Render(), "faults[0].pause.process.cmdline");
  }
  {
    Exp x;
    x.faults = "faults:\n  - on: db\n    disk_fill: {path: /srv, percent: 150}\n";
    AddValidate("disk_fill percent 150", x.Render(), "faults[0].disk_fill.percent");
  }
  {
    Exp x;
    x.faults = "faults:\n  - on: db\n    partition: {peers: [10.0.0.0/33]}\n";
    AddValidate("partition peers 10.0.0.0/33", x.Render(), "faults[0].partition.peers[0]");
  }
  {
    Exp x;
    x.faults =
        "faults:\n  - on: db\n    netem: {interface: eth0, delay: 10ms, to: [\"10.0.0.1:0\"]}\n";
    AddValidate("netem to 10.0.0.1:0", x.Render(), "faults[0].netem.to[0]");
  }
  {
    Exp x;
    x.faults = "faults:\n  - on: db\n    zone_outage: {zone: a}\n";
    AddValidate("zone_outage with on", x.Render(), "faults[0].on");
  }
  {
    Exp x;
    x.faults = "faults:\n  - zone_outage: {zone: \"\"}\n";
    AddValidate("zone_outage with an empty zone", x.Render(), "zone");
  }
  {
    Exp x;
    x.probes = "probes:\n  - name: p\n    from: db\n    exec: {argv: [sh, -c, id]}\n";
    AddValidate("exec probe with a relative path", x.Render(), "exec.argv[0]");
  }
  {
    Exp x;
    x.probes =
        "probes:\n  - name: p\n    from: db\n    tcp: {address: \"127.0.0.1:9\"}\n"
        "    interval: 1ns\n";
    AddValidate("probe interval 1ns", x.Render(), "probes[0].interval");
  }
  {
    Exp x;
    x.probes = "probes:\n  - name: p\n    from: web\n    tcp: {address: \"127.0.0.1:9\"}\n";
    AddValidate("probe from an unknown target", x.Render(), "probes[0].from");
  }
  {
    Exp x;
    x.probes = "probes:\n  - name: p\n    from: db\n    http: {url: \"file:///etc/passwd\"}\n";
    AddValidate("probe http file://", x.Render(), "probes[0].http.url");
  }
  {
    Exp x;
    x.probes = "probes:\n  - name: p\n    from: db\n    tcp: {address: \"nohost\"}\n";
    AddValidate("probe tcp address without a port", x.Render(), "probes[0].tcp.address");
  }
  {
    Exp x;
    x.probes =
        "probes:\n  - name: p\n    tcp: {address: \"127.0.0.1:9\"}\n  - name: p\n"
        "    tcp: {address: \"127.0.0.1:9\"}\n";
    AddValidate("two probes of one name", x.Render(), "probes[1].name");
  }
  {
    Exp x;
    x.extra = "stop_when:\n  - {probe: tcp-h1, failure_ratio: 2, window: 1s}\n";
    AddValidate("stop_when failure_ratio 2", x.Render(), "stop_when[0].failure_ratio");
  }
  {
    Exp x;
    x.extra = "limits: {max_percent: 0}\n";
    AddValidate("limits max_percent 0", x.Render(), "limits.max_percent");
  }
  {
    Exp x;
    x.name = "name: \"bad\\nname\\e[31m\"\n";
    AddValidate("name with a newline and an escape", x.Render(), "name");
  }

  // ---- faultline run (through the controller; local checks first) ----
  AddRun("an aliases bomb", bomb + Exp().Render(), "aliases");
  {
    Exp x;
    x.targets = "targets:\n";
    for (int i = 0; i < 100; ++i) x.targets += fmt::format("  t{}: {{labels: {{role: db}}}}\n", i);
    AddRun("100 targets", x.Render(), "targets: at most");
  }
  {
    Exp x;
    x.probes =
        "probes:\n  - name: p\n    from: db\n    exec: {argv: [/bin/sh, -c, id]}\n"
        "    interval: 100ms\n";
    AddRun("exec probe /bin/sh -c id on the agent (not in its policy)", x.Render(),
           "not allowed by the exec policy");
  }
  {
    Exp x;
    x.probes =
        "probes:\n  - name: p\n    from: controller\n    exec: {argv: [/bin/true]}\n"
        "    interval: 100ms\n";
    AddRun("exec probe on the controller (no --exec-policy)", x.Render(), "exec");
  }
  {
    Exp x;
    x.targets = "targets:\n  db: {labels: {role: nobody}, count: 1}\n";
    AddRun("a target no agent matches", x.Render(), "db");
  }
  {
    Exp x;
    x.faults = "faults:\n  - on: db\n    pause: {process: {name: flprotect}}\n";
    AddRun("pause of a protected process", x.Render(), "protected");
  }
  {
    Exp x;
    x.faults = "faults:\n  - on: db\n    partition: {peers: [10.88.0.2/32]}\n";
    AddRun("partition of the controller", x.Render(), "peers");
  }
  {
    Exp x;
    x.faults = "faults:\n  - on: db\n    disk_fill: {path: " + disk_dir_ + ", percent: 90}\n";
    AddRun("disk fill over the policy ceiling", x.Render(), "ceiling");
  }
  {
    Exp x;
    x.faults = "faults:\n  - on: db\n    kill: {process: {name: flbadvic}, signal: STOP}\n";
    AddRun("kill signal STOP", x.Render(), "signal");
  }
  {
    const std::string file = WriteFile(fmt::format("run-{}.yaml", ++serial_), Exp().Render());
    AddGoodCli("experiment run", "control: run --dry-run the base experiment",
               CtlCli({"run", file, "--dry-run", "-o", "json"}));
  }
}

void Campaign::AddDaemonCases() {
  // ---- policy files ----
  AddAgentDaemon("agent policy", "--policy a FIFO", {"--policy", fifo_}, "--policy");
  AddAgentDaemon("agent policy", "--policy missing", {"--policy", dir().Path("nope.yaml")},
                 "--policy");
  AddAgentDaemon("agent policy", "--policy /dev/zero", {"--policy", "/dev/zero"}, "--policy");
  AddAgentDaemon("agent policy", "--policy a folder", {"--policy", dir().path()}, "--policy");
  AddPolicy("protected_processes name of 16 characters",
            "protected_processes: [sixteen-chars-xx]\n", "protected_processes[0]");
  AddPolicy("protected_processes empty name", "protected_processes: [\"\"]\n",
            "protected_processes[0]");
  AddPolicy("protected_processes as a string", "protected_processes: sshd\n",
            "protected_processes");
  AddPolicy("protected_cidrs 10.0.0.0/33", "protected_cidrs: [10.0.0.0/33]\n",
            "protected_cidrs[0]");
  AddPolicy("protected_cidrs with nft text", "protected_cidrs: [\"10.0.0.1; flush ruleset\"]\n",
            "protected_cidrs[0]");
  AddPolicy("protected_cidrs 300.1.1.1", "protected_cidrs: [300.1.1.1]\n", "protected_cidrs[0]");
  AddPolicy("allowed_kinds unknown cpu", "allowed_kinds: [cpu]\n", "allowed_kinds[0]");
  AddPolicy("allowed_kinds KILL (case)", "allowed_kinds: [kill, KILL]\n", "allowed_kinds[1]");
  AddPolicy("allowed_kinds disk_fill (underscore)", "allowed_kinds: [disk_fill]\n",
            "allowed_kinds[0]");
  AddPolicy("unknown key allowed_kind", "allowed_kind: [kill]\n", "allowed_kind");
  AddPolicy("disk_fill_ceilings relative mount",
            "disk_fill_ceilings:\n  - {mount: var, max_percent: 50}\n",
            "disk_fill_ceilings[0].mount");
  AddPolicy("disk_fill_ceilings max_percent 150",
            "disk_fill_ceilings:\n  - {mount: /, max_percent: 150}\n",
            "disk_fill_ceilings[0].max_percent");
  AddPolicy("disk_fill_ceilings max_percent .nan",
            "disk_fill_ceilings:\n  - {mount: /, max_percent: .nan}\n",
            "disk_fill_ceilings[0].max_percent");
  AddPolicy("disk_fill_ceilings max_percent 0",
            "disk_fill_ceilings:\n  - {mount: /, max_percent: 0}\n",
            "disk_fill_ceilings[0].max_percent");
  AddPolicy("exec argv relative", "exec:\n  allow:\n    - {argv: [sh, -c, id]}\n  user: nobody\n",
            "exec.allow[0].argv[0]");
  AddPolicy("exec user root", "exec:\n  allow:\n    - {argv: [/bin/true]}\n  user: root\n",
            "exec.user");
  AddPolicy("exec without user", "exec:\n  allow:\n    - {argv: [/bin/true]}\n", "exec.user");
  AddPolicy("exec unknown user",
            "exec:\n  allow:\n    - {argv: [/bin/true]}\n  user: flnosuchuser\n", "exec.user");
  AddPolicy(
      "exec argv and argv_prefix",
      "exec:\n  allow:\n    - {argv: [/bin/true], argv_prefix: [/bin/true]}\n  user: nobody\n",
      "exec.allow[0]");
  AddPolicy("exec empty argv", "exec:\n  allow:\n    - {argv: []}\n  user: nobody\n",
            "exec.allow[0]");
  {
    std::string bomb = "a: &a [x, x, x, x, x, x, x, x, x]\n";
    for (char c = 'b'; c <= 'j'; ++c) {
      bomb += fmt::format("{0}: &{0} [*{1}, *{1}, *{1}, *{1}, *{1}, *{1}, *{1}, *{1}, *{1}]\n", c,
                          static_cast<char>(c - 1));
    }
    AddPolicy("aliases bomb", bomb, "aliases");
  }
  AddPolicy("2 MiB policy", "protected_processes: [\"" + std::string(2 << 20, 'x') + "\"]\n",
            "--policy");
  AddPolicy("not a mapping", "- kill\n", "--policy");
  {
    const std::string good =
        WriteFile(fmt::format("policy-{}.yaml", ++serial_),
                  "allowed_kinds: [kill, pause]\nprotected_processes: [sshd]\n");
    AddAgentDaemon("agent policy", "control: a good policy", {"--policy", good}, "", true);
  }

  // ---- agent flags and state folder ----
  const std::string a = "agent flags";
  AddAgentDaemon(a, "--listen tcp://0.0.0.0:7", {"--listen", "tcp://0.0.0.0:7"}, "--listen");
  AddAgentDaemon(a, "--listen 127.0.0.1:99999", {"--listen", "127.0.0.1:99999", "--insecure"},
                 "--listen");
  AddAgentDaemon(a, "--listen TCP without TLS", {"--listen", "10.88.0.11:7611"}, "--listen");
  AddAgentDaemon(a, "--listen unix: (no path)", {"--listen", "unix:"}, "--listen");
  AddAgentDaemon(a, "--listen unix: on a FIFO", {"--listen", "unix:" + fifo_}, "fifo");
  AddAgentDaemon(a, "--state-dir a FIFO", {}, "--state-dir", false, "", fifo_);
  {
    const std::string file = WriteFile("state-file", "x");
    AddAgentDaemon(a, "--state-dir a regular file", {}, "--state-dir", false, "", file);
  }
  {
    // A state folder whose lock, agent-id or ledger record is a FIFO: the
    // agent must not block on it; a record that is not a file is set aside.
    const std::string s1 = dir().MakeSubdir("fifo-state-lock").value();
    ::mkfifo((s1 + "/lock").c_str(), 0600);
    fifos_.push_back(s1 + "/lock");
    AddAgentDaemon(a, "control: state folder whose lock is a FIFO (serves)", {}, "", true, "", s1);
    const std::string s2 = dir().MakeSubdir("fifo-state-id").value();
    ::mkfifo((s2 + "/agent-id").c_str(), 0600);
    fifos_.push_back(s2 + "/agent-id");
    AddAgentDaemon(a, "control: state folder whose agent-id is a FIFO (replaced)", {}, "", true, "",
                   s2);
    const std::string s3 = dir().MakeSubdir("fifo-state-ledger/ledger").value();
    ::mkfifo((s3 + "/f0123456789ab.fault").c_str(), 0600);
    fifos_.push_back(s3 + "/f0123456789ab.fault");
    AddAgentDaemon(a, "state folder: a ledger record is a FIFO", {}, "unreadable ledger record",
                   false, "unreadable ledger record", dir().Path("fifo-state-ledger"));
  }
  AddAgentDaemon(a, "--audit-log a FIFO", {"--audit-log", fifo_}, "--audit-log");
  AddAgentDaemon(a, "--audit-log a folder", {"--audit-log", dir().path()}, "--audit-log");
  AddAgentDaemon(a, "--name 'BAD NAME' with --controller",
                 {"--name", "BAD NAME", "--controller", "10.88.0.2:7500"}, "--name");
  AddAgentDaemon(a, "--label =v", {"--label", "=v"}, "--label");
  AddAgentDaemon(a, "--label without =", {"--label", "novalue"}, "--label");
  AddAgentDaemon(a, "--log-level loud", {"--log-level", "loud"}, "log");
  AddAgentDaemon(a, "--tls-cert missing",
                 {"--listen", "10.88.0.11:7612", "--tls-cert", dir().Path("nope.crt"), "--tls-key",
                  dir().Path("nope.key"), "--tls-ca", dc_->certs().ca},
                 "nope.key");
  AddAgentDaemon(a, "--socket-group missing", {"--socket-group", "flnosuchgroup"}, "flnosuchgroup");
  AddAgentDaemon(
      a, "--controller 10.88.0.2:99999",
      {"--controller", "10.88.0.2:99999", "--advertise", "10.88.0.11:7601", "--name", "ok"},
      "--controller");
  AddAgentDaemon(a, "--controller without --advertise",
                 {"--controller", "10.88.0.2:7500", "--name", "ok"}, "--advertise");
  AddAgentDaemon(a, "--advertise 'x y'",
                 {"--controller", "10.88.0.2:7500", "--advertise", "x y", "--name", "ok"},
                 "--advertise");
  AddAgentDaemon(a, "control: default flags in a fresh state folder", {}, "", true);

  // ---- controller flags ----
  AddControllerDaemon("--lease-ttl-ms 0", {"--lease-ttl-ms", "0"}, "--lease-ttl-ms");
  AddControllerDaemon("--lease-ttl-ms -1", {"--lease-ttl-ms", "-1"}, "--lease-ttl-ms");
  AddControllerDaemon("--lease-ttl-ms abc", {"--lease-ttl-ms", "abc"}, "--lease-ttl-ms");
  AddControllerDaemon("--lease-ttl-ms INT64_MAX", {"--lease-ttl-ms", "9223372036854775807"},
                      "--lease-ttl-ms", false);
  AddControllerDaemon("--lease-ttl-ms 3600001", {"--lease-ttl-ms", "3600001"}, "--lease-ttl-ms",
                      false);
  AddControllerDaemon("--lease-ttl-ms 99999999999999999999",
                      {"--lease-ttl-ms", "99999999999999999999"}, "--lease-ttl-ms", false);
  AddControllerDaemon("--heartbeat-ms 0", {"--heartbeat-ms", "0"}, "--heartbeat-ms");
  AddControllerDaemon("--max-fleet-percent 101", {"--max-fleet-percent", "101"},
                      "--max-fleet-percent");
  AddControllerDaemon("--max-fleet-percent nan", {"--max-fleet-percent", "nan"},
                      "--max-fleet-percent");
  AddControllerDaemon("--max-in-flight -1", {"--max-in-flight", "-1"}, "--max-in-flight");
  AddControllerDaemon("--max-concurrent-runs -1", {"--max-concurrent-runs", "-1"},
                      "--max-concurrent-runs");
  AddControllerDaemon("--protected-label without =", {"--protected-label", "novalue"},
                      "--protected-label");
  AddControllerDaemon("--listen 0.0.0.0:70000", {"--listen", "0.0.0.0:70000", "--insecure"},
                      "--listen");
  AddControllerDaemon("--listen TCP without TLS", {"--listen", "10.88.0.11:7711"}, "--listen");
  AddControllerDaemon("--listen unix: (no path)", {"--listen", "unix:"}, "--listen");
  AddControllerDaemon("--db a FIFO", {"--db", fifo_}, "--db");
  AddControllerDaemon("--db a folder", {"--db", dir().path()}, "--db");
  AddControllerDaemon("--db /dev/zero", {"--db", "/dev/zero"}, "--db");
  AddControllerDaemon("--exec-policy a FIFO", {"--exec-policy", fifo_}, "--exec-policy");
  {
    const std::string bad =
        WriteFile("bad-exec-policy.yaml", "allow:\n  - {argv: [sh, -c, id]}\nuser: nobody\n");
    AddControllerDaemon("--exec-policy with a relative argv", {"--exec-policy", bad},
                        "allow[0].argv[0]");
  }
  AddControllerDaemon("--audit-log a FIFO", {"--audit-log", fifo_}, "--audit-log");
  AddControllerDaemon("--log-level loud", {"--log-level", "loud"}, "log");
  AddControllerDaemon("control: good flags", {"--lease-ttl-ms", "3600000"}, "", true);
}

void Campaign::AddRegistrationCases() {
  auto req = [](const std::string& name, const std::string& address) {
    v1::RegisterRequest r;
    r.set_address(address);
    r.mutable_info()->set_name(name);
    (*r.mutable_info()->mutable_labels())["role"] = "web";
    return r;
  };
  const std::string addr = "10.88.0.250:7601";
  AddRegistration("name with a newline and a fake row",
                  req("web-9\nweb-8   10.0.0.1:1   role=db   healthy", addr), "info.name");
  AddRegistration("name with a terminal escape", req("\x1b[31mweb-9", addr), "info.name");
  AddRegistration("name in capitals", req("WEB-9", addr), "info.name");
  AddRegistration("name of 64 characters", req(std::string(64, 'w'), addr), "info.name");
  AddRegistration("empty name", req("", addr), "info.name");
  AddRegistration("name starting with '-'", req("-web", addr), "info.name");
  AddRegistration("name h1, registered by agent/h1", req("h1", addr), "info.name");
  AddRegistration("address with a newline", req("web-9", "10.0.0.1:1\n"), "address");
  AddRegistration("address port 0", req("web-9", "10.0.0.1:0"), "address");
  AddRegistration("address port 70000", req("web-9", "10.0.0.1:70000"), "address");
  AddRegistration("address unix:relative", req("web-9", "unix:relative.sock"), "address");
  AddRegistration("empty address", req("web-9", ""), "address");
  {
    v1::RegisterRequest r = req("web-9", addr);
    (*r.mutable_info()->mutable_labels())["-x"] = "v";
    AddRegistration("label key '-x'", r, "info.labels");
  }
  {
    v1::RegisterRequest r = req("web-9", addr);
    (*r.mutable_info()->mutable_labels())["zone"] = "a b";
    AddRegistration("label value with a space", r, "info.labels");
  }
  {
    v1::RegisterRequest r = req("web-9", addr);
    for (int i = 0; i < 65; ++i) (*r.mutable_info()->mutable_labels())[fmt::format("k{}", i)] = "v";
    AddRegistration("65 labels", r, "info.labels");
  }
  {
    v1::RegisterRequest r = req("web-9", addr);
    r.mutable_info()->set_version("1.0\x1b[2J");
    AddRegistration("version with a terminal escape", r, "version");
  }
  {
    v1::RegisterRequest r = req("web-9", addr);
    for (int i = 0; i < 1000; ++i) r.mutable_info()->add_capabilities(std::string(100, 'c'));
    AddRegistration("1000 long capabilities", r, "capabilities");
  }
  AddRegistration("control: a good registration", req("fltest-good-1", addr), "", true);
}

// ---------------------------------------------------------------- after each case

void Campaign::UnblockFifos() {
  // A reader blocked in open() on one of our FIFOs (an agent given it as a
  // namespace) is released by a writer that opens and closes it at once.
  for (const auto& path : fifos_) {
    for (int i = 0; i < 3; ++i) {
      int fd = ::open(path.c_str(), O_WRONLY | O_NONBLOCK | O_CLOEXEC);
      if (fd < 0) break;
      ::close(fd);
    }
  }
}

std::vector<std::string> Campaign::Residue(bool registrations, bool qdiscs) {
  std::vector<std::string> out;
  if (!h1_->agent->Running()) {
    out.push_back("the agent is not running");
    return out;
  }
  // The agent's own list (what `faultline faults` shows). One retry: a call
  // right after a reply too large for gRPC's metadata limit (the 1 MiB name
  // case) can fail on the same channel.
  {
    v1::ListFaultsResponse resp;
    grpc::Status st;
    for (int attempt = 0; attempt < 2; ++attempt) {
      auto ctx = ContextWithDeadline(5s);
      resp.Clear();
      st = h1_->agent->stub().ListFaults(ctx.get(), v1::ListFaultsRequest(), &resp);
      if (st.ok()) break;
      std::this_thread::sleep_for(100ms);
    }
    if (!st.ok()) out.push_back("ListFaults failed: " + st.error_message());
    for (const auto& f : resp.faults()) {
      out.push_back(
          fmt::format("fault {} ({}) {}", f.id(), f.spec().ShortDebugString(), f.target()));
    }
  }
  // The kernel: our nftables tables and qdiscs in h1's network namespace.
  std::string err;
  for (const auto& t : dc_->FaultlineTables(*h1_, &err)) out.push_back("nft table " + t);
  if (!err.empty()) out.push_back("nft: " + err);
  if (qdiscs) {
    CommandResult q = h1_->ns->Ip({"qdisc", "show", "dev", "eth0"});
    for (const char* kind : {"tbf", "netem", "htb", "prio", "ingress"}) {
      if (q.out.find(std::string("qdisc ") + kind) != std::string::npos) {
        out.push_back(fmt::format("qdisc {} on h1's eth0", kind));
      }
    }
  }
  // Stopped processes in h1's PID namespace.
  char self_ns[128] = {};
  const std::string init_ns = fmt::format("/proc/{}/ns/pid", h1_->sim->init_pid());
  if (::readlink(init_ns.c_str(), self_ns, sizeof(self_ns) - 1) > 0) {
    std::unique_ptr<DIR, int (*)(DIR*)> proc(::opendir("/proc"), ::closedir);
    for (dirent* e = proc ? ::readdir(proc.get()) : nullptr; e != nullptr;
         e = ::readdir(proc.get())) {
      const pid_t pid = std::atoi(e->d_name);
      if (pid <= 0) continue;
      char ns[128] = {};
      if (::readlink(fmt::format("/proc/{}/ns/pid", pid).c_str(), ns, sizeof(ns) - 1) <= 0)
        continue;
      if (std::string(ns) != self_ns) continue;
      const char state = ProcessState(pid);
      if (state == 'T' || state == 't') {
        out.push_back(fmt::format("stopped process {} ({})", pid, ProcessComm(pid)));
      }
    }
  }
  for (const Victim& v : victims_) {
    if (!ProcessAlive(v.process.outer_pid)) out.push_back(fmt::format("victim {} died", v.comm));
  }
  // Fill files on the tmpfs, and ledger records.
  for (const std::string& folder :
       {h1_->sim->OutsidePath(disk_dir_), h1_->sim->OutsidePath(fill_dir_),
        h1_->agent->state_dir() + "/ledger"}) {
    std::unique_ptr<DIR, int (*)(DIR*)> d(::opendir(folder.c_str()), ::closedir);
    if (!d) {
      out.push_back("cannot list " + folder);
      continue;
    }
    while (dirent* e = ::readdir(d.get())) {
      const std::string name = e->d_name;
      if (name != "." && name != ".." && name != "lost+found") {
        out.push_back("file " + folder + "/" + name);
      }
    }
  }
  // Agents registered under names the campaign did not mean to keep.
  if (registrations) {
    auto ctx = ContextWithDeadline(5s);
    v1::ListAgentsResponse resp;
    grpc::Status st = ctl_stub_->ListAgents(ctx.get(), v1::ListAgentsRequest(), &resp);
    if (!st.ok()) out.push_back("ListAgents failed: " + st.error_message());
    for (const auto& agent : resp.agents()) {
      if (!allowed_agents_.contains(agent.name())) {
        out.push_back(fmt::format("registered agent \"{}\" at {}", agent.name(), agent.address()));
        allowed_agents_.insert(agent.name());  // counted once
      }
    }
  }
  return out;
}

void Campaign::CleanUp(const std::vector<std::string>& residue) {
  if (residue.empty()) return;
  RunCommand(Cli({"revert", "--all"}), 15s);
  // Processes left stopped in h1 are ours (the host's own): resume them.
  for (const auto& r : residue) {
    int pid = 0;
    if (std::sscanf(r.c_str(), "stopped process %d", &pid) == 1 && pid > 0) ::kill(pid, SIGCONT);
  }
  for (Victim& v : victims_) v.exec->KillGroup(SIGCONT);  // nsenter stops with its child
  (void)StartVictims();
}

Result Campaign::RunOne(const Case& c) {
  Result r;
  r.c = &c;
  r.attempt = c.run(c);
  UnblockFifos();
  // Killing `faultline run` does not end the run on the controller: abort it,
  // so that the next run finds h1 free.
  if (r.attempt.verdict == Verdict::kHung && c.category == "experiment run") {
    RunCommand(CtlCli({"abort"}), 15s);
  }
  if (c.after) c.after();
  // A daemon under test that died with this input crashed on it.
  if (!h1_->agent->Running()) {
    r.attempt.verdict = Verdict::kCrashed;
    r.attempt.output =
        "the agent died: " + h1_->agent->Log().substr(0, 2000) + "\n" + r.attempt.output;
    (void)dc_->StartAgent(*h1_);
  }
  if (!dc_->ControllerRunning()) {
    r.attempt.verdict = Verdict::kCrashed;
    r.attempt.output = "the controller died: " + dc_->ControllerLog() + "\n" + r.attempt.output;
    (void)dc_->StartController({"--max-fleet-percent", "100"});
    (void)dc_->WaitForHealthyAgents({"h1"}, 15s);
  }
  const auto t0 = Clock::now();
  // Only traffic shaping makes qdiscs: netem and bandwidth (from the CLI, an
  // RPC or a run), and the controls.
  const bool tc = c.good || c.category == "inject netem" || c.category == "inject bandwidth" ||
                  c.category == "lease/agent rpc" || c.category == "experiment run";
  r.residue = Residue(c.category == "registration", tc);
  residue_seconds_ += SecondsSince(t0);
  ++residue_checks_;
  CleanUp(r.residue);
  if (c.good) {
    r.pass = r.attempt.verdict == Verdict::kAccepted && r.residue.empty();
  } else {
    r.pass = r.attempt.verdict == Verdict::kRefused && r.residue.empty();
  }
  return r;
}

void Campaign::AddCases() {
  AddInjectCases();
  AddCliMiscCases();
  AddScheduleCases();
  AddGameDayCases();
  AddRpcCases();
  AddExperimentCases();
  AddDaemonCases();
  AddRegistrationCases();
}

void Campaign::RunAll() {
  const char* only = std::getenv("FAULTLINE_BAD_INPUTS_ONLY");  // a substring of case names
  for (const Case& c : cases_) {
    if (only != nullptr && (c.category + " " + c.name).find(only) == std::string::npos) continue;
    Result r = RunOne(c);
    if (verbose_ || (!r.pass && c.pending.empty())) {
      std::printf("%s %s\n", r.pass ? "  ok  " : (c.pending.empty() ? "  FAIL" : "  pend"),
                  r.Describe().c_str());
      if (verbose_ && !r.pass)
        std::printf("      full: %s\n", r.attempt.output.substr(0, 3000).c_str());
      std::fflush(stdout);
    }
    tally_.Add(r);
  }
}

TEST(BadInputs, RefusedCleanlyNamingTheField) {
  const auto t0 = Clock::now();
  Campaign campaign;
  absl::Status st = campaign.SetUp();
  if (!st.ok()) {
    campaign.TearDown();
    FAIL() << "set-up: " << st.message();
  }
  EXPECT_EQ(campaign.SelfTestProblems(), "") << "the residue check cannot see a fault";
  const double setup_s = SecondsSince(t0);
  campaign.AddCases();
  campaign.RunAll();
  const double run_s = SecondsSince(t0) - setup_s;
  campaign.TearDown();
  const Tally& tally = campaign.tally();
  std::printf("%s", tally.Table().c_str());
  std::printf("set-up %.1f s, %d bad inputs in %.1f s (%s), total %.1f s\n", setup_s, tally.tried(),
              run_s, campaign.ResidueTiming().c_str(), SecondsSince(t0));
  std::fflush(stdout);
  if (std::getenv("FAULTLINE_BAD_INPUTS_ONLY") == nullptr) {
    EXPECT_GE(tally.tried(), 150);
  }
  EXPECT_EQ(tally.failures().size(), 0u) << "see FAILING above";
}

}  // namespace
}  // namespace faultline::itest::bad_inputs
