// The fleet's safety nets (issue 8, "Fleet experiments"), end to end against
// real agents in a datacenter made of namespaces (harness/datacenter.h):
//
//   ctl      10.88.0.2    faultline-controller --max-fleet-percent 50
//                         --protected-label tier=critical --max-concurrent-runs 2
//   a1, a2   10.88.0.11, .12   zone=a; a2's policy allows only kill and pause
//   b1, b2   10.88.0.21, .22   zone=b; each runs a victim process "flvictim"
//                              and a TCP listener on :8080
//   c1, c2   10.88.0.31, .32   zone=c; c2 is tier=critical, listens on :8080
//   cl       10.88.0.41        role=client: every probe runs from here
//
// Seven registered agents, so one agent is 14% of the fleet. The checks look
// at the kernel, not only at the report: a faultline nft table in a host's
// network namespace (listed through libnftables), a victim's state in /proc
// (T while paused), real TCP connects from the client, each agent's
// ListFaults and its ledger folder.
//
//   TwoPhaseStart   one agent refusing at prepare means nothing is applied on
//                   any agent; the error names each refusing agent.
//   StopConditions  failing_for, failure_ratio + window and agents_lost each
//                   stop a 60 s fault within seconds and revert it.
//   BlastRadius     limits.max_agents, limits.max_percent, --max-fleet-percent,
//                   --protected-label, --max-concurrent-runs, and two runs
//                   never holding the same agent: each refused before
//                   anything is injected, naming the limit and the agents.
//
// One datacenter is shared by every test (SetUpTestSuite); each test starts
// from a clean, healthy fleet (SetUp checks it) and leaves one.
#include <dirent.h>
#include <fmt/format.h>
#include <gmock/gmock.h>
#include <google/protobuf/util/json_util.h>
#include <gtest/gtest.h>
#include <signal.h>

#include <chrono>
#include <cstdio>
#include <map>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "common/status_macros.h"
#include "faultline/v1/agent.grpc.pb.h"
#include "faultline/v1/controller.pb.h"
#include "harness/datacenter.h"
#include "harness/status_matchers.h"
#include "harness/subprocess.h"

namespace faultline::itest {
namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::Not;

constexpr int kListenerPort = 8080;
constexpr char kVictim[] = "flvictim";
constexpr char kClientIp[] = "10.88.0.41";
constexpr char kRestrictedPolicy[] = "allowed_kinds: [kill, pause]\n";
const std::vector<std::string> kControllerFlags = {
    "--max-fleet-percent", "50", "--protected-label", "tier=critical", "--max-concurrent-runs",
    "2"};

std::vector<DcHostSpec> HostSpecs() {
  return {
      {"a1", "10.88.0.11", {{"zone", "a"}}, {}},
      {"a2", "10.88.0.12", {{"zone", "a"}}, {}},  // --policy: added once the dir exists
      {"b1", "10.88.0.21", {{"zone", "b"}}, {}},
      {"b2", "10.88.0.22", {{"zone", "b"}}, {}},
      {"c1", "10.88.0.31", {{"zone", "c"}}, {}},
      {"c2", "10.88.0.32", {{"zone", "c"}, {"tier", "critical"}}, {}},
      {"cl", kClientIp, {{"role", "client"}}, {}},
  };
}

double SecondsSince(Clock::time_point t) {
  return std::chrono::duration<double>(Clock::now() - t).count();
}

// What a run of `faultline run FILE -o json` came back with.
struct RunOutcome {
  int exit_code = -1;
  bool finished = false;
  bool parsed = false;
  v1::RunReport report;
  std::string out;
  std::string err;
  double seconds = 0;  // from start to exit

  std::string Describe() const {
    return fmt::format("exit {}{}\nstdout: {}\nstderr: {}", exit_code,
                       finished ? "" : " (did not finish)", out, err);
  }
  // Index of the first timeline event of `kind` (and `agent`, if given); -1 if none.
  int Find(const std::string& kind, const std::string& agent = "") const {
    for (int i = 0; i < report.timeline_size(); ++i) {
      const auto& e = report.timeline(i);
      if (e.kind() == kind && (agent.empty() || e.agent() == agent)) return i;
    }
    return -1;
  }
  int Count(const std::string& kind) const {
    int n = 0;
    for (const auto& e : report.timeline()) n += e.kind() == kind;
    return n;
  }
  std::string Timeline() const {
    std::string out;
    for (const auto& e : report.timeline()) {
      out += fmt::format("  {:9.1f} {:<16} {:<4} {}\n", e.at_ms(), e.kind(), e.agent(), e.detail());
    }
    return out;
  }
};

// What the kernel showed while a run was going: hosts seen holding a faultline
// nft table, and victims seen paused.
struct Watched {
  std::set<std::string> tables;   // host names
  std::set<std::string> paused;   // host names whose victim was in state T
  int rounds = 0;
  std::string errors;
};

// One victim process in a host.
struct Victim {
  std::string host;
  std::unique_ptr<Subprocess> exec;  // nsenter (stopped while its child is paused)
  HostProcess process;
};

class FleetSafety : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    absl::Status st = BuildDatacenter();
    if (!st.ok()) setup_error_ = new std::string(st.message());
  }

  static void TearDownTestSuite() {
    const auto t0 = Clock::now();
    victims_.clear();
    dc_.reset();
    std::printf("[datacenter] removed in %.2f s\n", SecondsSince(t0));
    delete setup_error_;
    setup_error_ = nullptr;
  }

  static absl::Status BuildDatacenter() {
    const auto t0 = Clock::now();
    ASSIGN_OR_RETURN(dc_, Datacenter::Create("safety", HostSpecs()));
    RETURN_IF_ERROR(dc_->dir().WriteFile("restricted-policy.yaml", kRestrictedPolicy));
    dc_->Find("a2")->spec.agent_args = {"--policy", dc_->dir().Path("restricted-policy.yaml")};
    RETURN_IF_ERROR(dc_->Start(kControllerFlags, 30s));
    for (const char* name : {"b1", "b2", "c2"}) {
      RETURN_IF_ERROR(dc_->StartListener(*dc_->Find(name), kListenerPort));
    }
    ASSIGN_OR_RETURN(std::string victim_bin, MakeVictimBinary(dc_->dir(), kVictim));
    for (const char* name : {"b1", "b2"}) {
      Victim v;
      v.host = name;
      ASSIGN_OR_RETURN(v.exec, dc_->Find(name)->sim->Exec({victim_bin, "100000"}));
      ASSIGN_OR_RETURN(v.process, dc_->Find(name)->sim->Find(*v.exec));
      victims_.push_back(std::move(v));
    }
    // The python listeners take a moment to start.
    DcHost& client = *dc_->Find("cl");
    for (const char* name : {"b1", "b2", "c2"}) {
      const DcHost& to = *dc_->Find(name);
      if (!WaitFor([&] { return dc_->Connects(client, to.ip(), kListenerPort); }, 15s)) {
        return absl::DeadlineExceededError(fmt::format("cl cannot reach {}:{}", to.ip(), kListenerPort));
      }
    }
    std::printf("[datacenter] %zu hosts, controller and agents up in %.2f s\n",
                dc_->hosts().size(), SecondsSince(t0));
    return absl::OkStatus();
  }

  void SetUp() override {
    if (setup_error_ != nullptr) GTEST_FAIL() << "datacenter: " << *setup_error_;
    ASSERT_NE(dc_, nullptr);
    // A clean, healthy fleet: every agent healthy, no fault anywhere.
    ASSERT_OK(dc_->WaitForHealthyAgents(dc_->HostNames(), 15s));
    for (const auto& host : dc_->hosts()) {
      std::string err;
      ASSERT_THAT(dc_->FaultlineTables(*host, &err), IsEmpty()) << host->name() << " " << err;
      ASSERT_THAT(ActiveFaults(*host), IsEmpty()) << host->name();
    }
    for (const Victim& v : victims_) {
      ASSERT_TRUE(ProcessAlive(v.process.outer_pid)) << v.host << "'s victim died";
      ASSERT_NE(ProcessState(v.process.outer_pid), 'T') << v.host << "'s victim is paused";
    }
    for (const auto& host : dc_->hosts()) log_offsets_[host->name()] = host->agent->Log().size();
    test_start_ = Clock::now();
  }

  void TearDown() override {
    for (auto& run : background_) {
      if (run) run->KillGroup(SIGKILL);
    }
    background_.clear();
    if (dc_ == nullptr) return;
    if (HasFailure()) {
      // Leave a clean fleet for the next test whatever happened.
      RunCommand(dc_->Cli({"abort"}), 15s);
      for (const auto& host : dc_->hosts()) {
        if (!host->agent->Running()) (void)dc_->StartAgent(*host);
      }
      std::printf("controller log:\n%s\nagent logs (this test):\n%s\n", dc_->ControllerLog().c_str(),
                  AgentLogsSince().c_str());
    }
    std::printf("[%s] %.2f s\n", ::testing::UnitTest::GetInstance()->current_test_info()->name(),
                SecondsSince(test_start_));
    std::fflush(stdout);
  }

  // ---- Runs ----

  // Starts `faultline run FILE -o json` in the background.
  Subprocess* StartRun(const std::string& name, const std::string& yaml) {
    const std::string file = name + ".yaml";
    EXPECT_OK(dc_->dir().WriteFile(file, yaml));
    SubprocessOptions so;
    so.stdout_file = dc_->dir().Path(name + ".out");
    so.stderr_file = dc_->dir().Path(name + ".err");
    auto run = Subprocess::Start(dc_->Cli({"run", dc_->dir().Path(file), "-o", "json"}), so);
    EXPECT_TRUE(run.ok()) << run.status().message();
    if (!run.ok()) return nullptr;
    background_.push_back(*std::move(run));
    run_started_[background_.back().get()] = Clock::now();
    return background_.back().get();
  }

  // Waits up to `timeout` for a background run to exit and reads its report.
  RunOutcome FinishRun(Subprocess* run, std::chrono::milliseconds timeout) {
    RunOutcome o;
    if (run == nullptr) return o;
    o.finished = run->Wait(timeout);
    o.seconds = SecondsSince(run_started_[run]);
    if (!o.finished) {
      run->KillGroup(SIGKILL);
      run->Wait(5s);
    }
    o.exit_code = run->exit_code();
    o.out = run->Stdout();
    o.err = run->Stderr();
    o.parsed = o.finished && google::protobuf::util::JsonStringToMessage(o.out, &o.report).ok();
    return o;
  }

  // Polls the kernel of every host (faultline tables, victims' states) until
  // `run` exits or `timeout` passes.
  Watched WatchUntilExit(Subprocess* run, std::chrono::milliseconds timeout) {
    Watched w;
    const auto deadline = Clock::now() + timeout;
    while (run != nullptr && Clock::now() < deadline && w.rounds < 100000) {
      const bool running = run->Running();
      ++w.rounds;
      for (const auto& host : dc_->hosts()) {
        if (!dc_->FaultlineTables(*host, &w.errors).empty()) w.tables.insert(host->name());
      }
      for (const Victim& v : victims_) {
        if (ProcessState(v.process.outer_pid) == 'T') w.paused.insert(v.host);
      }
      if (!running) break;  // one last look after the exit
    }
    return w;
  }

  // Runs an experiment to its end while watching the kernel.
  RunOutcome RunWatched(const std::string& name, const std::string& yaml, Watched* watched,
                        std::chrono::milliseconds timeout = 60s) {
    Subprocess* run = StartRun(name, yaml);
    *watched = WatchUntilExit(run, timeout);
    return FinishRun(run, 5s);
  }

  // ---- The kernel and the agents ----

  static std::vector<std::string> Tables(const std::string& host) {
    std::string err;
    auto tables = dc_->FaultlineTables(*dc_->Find(host), &err);
    EXPECT_EQ(err, "");
    return tables;
  }

  // Waits up to `timeout` until `host` holds a faultline table (or none).
  static bool WaitForTables(const std::string& host, bool present, std::chrono::milliseconds timeout) {
    return WaitFor([&] { return Tables(host).empty() != present; }, timeout);
  }

  static Victim& VictimOn(const std::string& host) {
    for (Victim& v : victims_) {
      if (v.host == host) return v;
    }
    ADD_FAILURE() << "no victim on " << host;
    return victims_.front();
  }

  static char VictimState(const std::string& host) {
    return ProcessState(VictimOn(host).process.outer_pid);
  }

  // The faults an agent holds (prepared or active), from its ListFaults.
  static std::vector<std::string> ActiveFaults(DcHost& host) {
    auto ctx = ContextWithDeadline(5s);
    v1::ListFaultsResponse resp;
    grpc::Status st = host.agent->stub().ListFaults(ctx.get(), v1::ListFaultsRequest(), &resp);
    if (!st.ok()) return {"ListFaults failed: " + st.error_message()};
    std::vector<std::string> out;
    for (const auto& f : resp.faults()) out.push_back(f.ShortDebugString());
    return out;
  }

  // The files in an agent's ledger folder (one per fault not yet reverted).
  static std::vector<std::string> LedgerFiles(const DcHost& host) {
    std::vector<std::string> out;
    const std::string dir = host.agent->state_dir() + "/ledger";
    DIR* d = opendir(dir.c_str());
    if (d == nullptr) return {"cannot open " + dir};
    while (dirent* e = readdir(d)) {
      const std::string name = e->d_name;
      if (name != "." && name != "..") out.push_back(name);
    }
    closedir(d);
    return out;
  }

  // What `host`'s agent logged since this test started.
  std::string LogSince(const DcHost& host) {
    const std::string log = host.agent->Log();
    const size_t from = log_offsets_[host.name()];
    return from <= log.size() ? log.substr(from) : log;
  }

  std::string AgentLogsSince() {
    std::string out;
    for (const auto& host : dc_->hosts()) out += fmt::format("--- {}:\n{}", host->name(), LogSince(*host));
    return out;
  }

  // How many faults `host`'s agent applied since this test started (its log
  // says "fault ID (KIND) active for ..." for each).
  int AppliedSince(const DcHost& host) {
    const std::string log = LogSince(host);
    int n = 0;
    for (size_t at = log.find(" active for "); at != std::string::npos;
         at = log.find(" active for ", at + 1)) {
      ++n;
    }
    return n;
  }

  // Nothing left on any agent: no table, no fault listed, an empty ledger, no
  // victim paused; and no agent applied a fault in this test but `applied`
  // (host -> how many it applied, e.g. another run's pause).
  void ExpectNothingAppliedAnywhere(const std::map<std::string, int>& applied = {}) {
    for (const auto& host : dc_->hosts()) {
      std::string err;
      EXPECT_THAT(dc_->FaultlineTables(*host, &err), IsEmpty()) << host->name();
      EXPECT_THAT(ActiveFaults(*host), IsEmpty()) << host->name();
      EXPECT_THAT(LedgerFiles(*host), IsEmpty()) << host->name() << "'s ledger";
      auto it = applied.find(host->name());
      EXPECT_EQ(AppliedSince(*host), it == applied.end() ? 0 : it->second)
          << host->name() << " applied faults:\n" << LogSince(*host);
    }
    for (const Victim& v : victims_) {
      EXPECT_NE(ProcessState(v.process.outer_pid), 'T') << v.host << "'s victim is paused";
    }
  }

  // A refused run: an error before anything was injected, naming the limit.
  void ExpectRefusedBeforeInjecting(const RunOutcome& o, const Watched& w) {
    ASSERT_TRUE(o.parsed) << o.Describe();
    EXPECT_EQ(o.exit_code, 2) << o.Describe();
    EXPECT_EQ(o.report.verdict(), "error") << o.report.reason();
    EXPECT_EQ(o.Find("injected"), -1) << o.Timeline();
    EXPECT_EQ(o.Find("steady"), -1) << "refused before its probes even started\n" << o.Timeline();
    EXPECT_EQ(o.report.faults_size(), 0) << o.report.ShortDebugString();
    EXPECT_EQ(o.report.agents_size(), 0) << "no agent was leased";
    EXPECT_THAT(w.tables, IsEmpty()) << "a faultline nft table appeared";
    EXPECT_EQ(w.errors, "");
    EXPECT_GT(w.rounds, 0);
    ExpectNothingAppliedAnywhere();
  }

  static std::string Ip(const std::string& host) { return dc_->Find(host)->ip(); }

  // An experiment: `targets` and `faults` as YAML flow lines; probes from the
  // client: "svc" (b1's listener) and "c2" (c2's listener, never cut).
  static std::string Experiment(const std::string& name, const std::string& targets,
                                const std::string& faults, const std::string& extra = "") {
    return fmt::format(R"(
name: {0}
targets:
  client: {{names: [cl]}}
{1}
probes:
  - name: c2-tcp
    from: client
    tcp: {{address: "{2}:{4}"}}
    interval: 100ms
    timeout: 300ms
  - name: b1-tcp
    from: client
    tcp: {{address: "{3}:{4}"}}
    interval: 100ms
    timeout: 300ms
faults:
{5}
objectives: {{rto: 60s, recovered_after: 3}}
duration: 60s
{6}
)",
                       name, targets, Ip("c2"), Ip("b1"), kListenerPort, faults, extra);
  }

  // A partition cutting `on` off from the client.
  static std::string PartitionFromClient(const std::string& on) {
    return fmt::format("  - {{on: {}, duration: 60s, partition: {{peers: [\"{}/32\"]}}}}", on,
                       kClientIp);
  }
  static std::string PauseVictim(const std::string& on) {
    return fmt::format("  - {{on: {}, duration: 60s, pause: {{process: {{name: {}}}}}}}", on, kVictim);
  }

  // Asserts the run was stopped by stop_when[0] with `words` in its reason,
  // `stopped` coming before each of `agents`' `reverted` (or revert_failed),
  // within `max_s` of the injection and well before the 60 s duration.
  void ExpectStopped(const RunOutcome& o, const std::string& words,
                     const std::vector<std::string>& reverted, double min_s, double max_s) {
    ASSERT_TRUE(o.parsed) << o.Describe();
    EXPECT_EQ(o.report.verdict(), "stopped") << o.report.reason() << "\n" << o.Timeline();
    EXPECT_EQ(o.exit_code, 2);
    EXPECT_THAT(o.report.reason(), HasSubstr("stop_when[0]: "));
    EXPECT_THAT(o.report.reason(), HasSubstr(words));
    EXPECT_LT(o.seconds, 30.0) << "a 60 s fault: the stop, not the duration, ended the run";
    const int injected = o.Find("injected");
    const int stopped = o.Find("stopped");
    ASSERT_GE(injected, 0) << o.Timeline();
    ASSERT_GE(stopped, 0) << o.Timeline();
    EXPECT_EQ(o.Count("stopped"), 1) << o.Timeline();
    EXPECT_THAT(o.report.timeline(stopped).detail(), HasSubstr(words));
    const double after_s =
        (o.report.timeline(stopped).at_ms() - o.report.timeline(injected).at_ms()) / 1000;
    EXPECT_GE(after_s, min_s) << o.Timeline();
    EXPECT_LE(after_s, max_s) << o.Timeline();
    for (const std::string& agent : reverted) {
      int r = o.Find("reverted", agent);
      if (r < 0) r = o.Find("revert_failed", agent);
      ASSERT_GE(r, 0) << agent << " has no reverted event\n" << o.Timeline();
      // The agent's revert time is mapped onto the controller's clock (± the
      // clock error), so it may show up to that much before `stopped`.
      EXPECT_GE(o.report.timeline(r).at_ms() + o.report.clock_error_ms(),
                o.report.timeline(stopped).at_ms())
          << "`stopped` comes before " << agent << "'s revert (± "
          << o.report.clock_error_ms() << " ms)\n" << o.Timeline();
    }
    std::printf("  stopped %.2f s after the injection, run took %.2f s: %s\n", after_s, o.seconds,
                o.report.reason().c_str());
  }

  // Aborts every run (`faultline abort`) and waits for the background runs.
  void AbortAll() {
    CommandResult r = RunCommand(dc_->Cli({"abort"}), 15s);
    EXPECT_TRUE(r.ok()) << r.Describe();
  }

  static std::unique_ptr<Datacenter> dc_;
  static std::vector<Victim> victims_;
  static std::string* setup_error_;
  std::vector<std::unique_ptr<Subprocess>> background_;
  std::map<Subprocess*, Clock::time_point> run_started_;
  std::map<std::string, size_t> log_offsets_;
  Clock::time_point test_start_;
};

std::unique_ptr<Datacenter> FleetSafety::dc_;
std::vector<Victim> FleetSafety::victims_;
std::string* FleetSafety::setup_error_ = nullptr;

// ---- The two-phase start ----

// a1 and a2 get a partition, b1 a pause; a2's policy refuses partitions. a1
// and b1 prepared theirs (ledger, lease), then forgot them: no table, no
// pause, at any moment of the run.
TEST_F(FleetSafety, OneRefusingAgentMeansNothingIsApplied) {
  Watched w;
  RunOutcome o = RunWatched(
      "refuse-one",
      Experiment("refuse-one", "  net: {names: [a1, a2]}\n  proc: {names: [b1]}",
                 PartitionFromClient("net") + "\n" + PauseVictim("proc")),
      &w);
  ASSERT_TRUE(o.parsed) << o.Describe();
  EXPECT_EQ(o.exit_code, 2);
  EXPECT_EQ(o.report.verdict(), "error") << o.Timeline();
  const std::string& reason = o.report.reason();
  EXPECT_THAT(reason, HasSubstr("faults[0] (partition) on agent a2: "));
  EXPECT_THAT(reason, HasSubstr("not allowed by this agent's policy"));
  EXPECT_THAT(reason, Not(HasSubstr("on agent a1"))) << "a1 did not refuse";
  EXPECT_THAT(reason, Not(HasSubstr("on agent b1"))) << "b1 did not refuse";
  EXPECT_EQ(o.Find("injected"), -1) << o.Timeline();
  EXPECT_GE(o.Find("steady"), 0) << "the run got as far as the prepare\n" << o.Timeline();
  // Never applied, at any moment: watched the kernel all through the run.
  EXPECT_THAT(w.tables, IsEmpty()) << "a faultline nft table appeared";
  EXPECT_THAT(w.paused, IsEmpty()) << "a victim was paused";
  EXPECT_EQ(w.errors, "");
  EXPECT_GT(w.rounds, 0);
  ExpectNothingAppliedAnywhere();
  // The agents that did not refuse prepared their part, and forgot it.
  for (const char* name : {"a1", "b1"}) {
    const std::string log = LogSince(*dc_->Find(name));
    EXPECT_THAT(log, HasSubstr(") prepared: ")) << name;
    EXPECT_THAT(log, HasSubstr("never applied")) << name;
  }
  std::printf("  refused: %s (%d kernel checks during the run)\n", reason.c_str(), w.rounds);
}

// Two agents refuse for different reasons (a2's policy; no matching process
// on c1): the error names both, and b1, which prepared, never pauses.
TEST_F(FleetSafety, EveryRefusingAgentIsNamed) {
  Watched w;
  RunOutcome o = RunWatched(
      "refuse-two",
      Experiment("refuse-two", "  net: {names: [a2]}\n  proc: {names: [b1, c1]}",
                 PartitionFromClient("net") + "\n" + PauseVictim("proc")),
      &w);
  ASSERT_TRUE(o.parsed) << o.Describe();
  EXPECT_EQ(o.report.verdict(), "error") << o.Timeline();
  const std::string& reason = o.report.reason();
  EXPECT_THAT(reason, HasSubstr("faults[0] (partition) on agent a2: "));
  EXPECT_THAT(reason, HasSubstr("faults[1] (pause) on agent c1: "));
  EXPECT_THAT(reason, HasSubstr("no process matches"));
  EXPECT_THAT(reason, Not(HasSubstr("on agent b1")));
  EXPECT_EQ(o.Find("injected"), -1) << o.Timeline();
  EXPECT_THAT(w.tables, IsEmpty());
  EXPECT_THAT(w.paused, IsEmpty()) << "b1's victim was paused";
  ExpectNothingAppliedAnywhere();
  EXPECT_THAT(LogSince(*dc_->Find("b1")), HasSubstr("never applied"));
  std::printf("  refused: %s\n", reason.c_str());
}

// ---- Stop conditions ----

// b1 is cut off from the client for 60 s; the client's probe of b1 fails
// because of it; `failing_for: 1s` stops the run and reverts the partition.
TEST_F(FleetSafety, FailingForStopsAndReverts) {
  DcHost& client = *dc_->Find("cl");
  Subprocess* run = StartRun(
      "failing-for",
      Experiment("failing-for", "  svc: {names: [b1]}", PartitionFromClient("svc"),
                 "stop_when:\n  - {probe: b1-tcp, failing_for: 1s}"));
  ASSERT_NE(run, nullptr);
  ASSERT_TRUE(WaitForTables("b1", true, 15s)) << "the partition never appeared on b1\n"
                                               << FinishRun(run, 30s).Describe();
  const bool cut = !dc_->Connects(client, Ip("b1"), kListenerPort);
  RunOutcome o = FinishRun(run, 30s);
  EXPECT_TRUE(cut) << "the client still reached b1 during the partition";
  ExpectStopped(o, "probe b1-tcp failing for 1.0 s", {"b1"}, 0.8, 8.0);
  // Really gone: the table, the agent's record, the cut.
  EXPECT_TRUE(WaitForTables("b1", false, 5s)) << "b1 keeps its faultline table";
  EXPECT_THAT(ActiveFaults(*dc_->Find("b1")), IsEmpty());
  EXPECT_THAT(LedgerFiles(*dc_->Find("b1")), IsEmpty());
  EXPECT_TRUE(dc_->Connects(client, Ip("b1"), kListenerPort));
}

TEST_F(FleetSafety, FailureRatioStopsAndReverts) {
  DcHost& client = *dc_->Find("cl");
  Subprocess* run = StartRun(
      "failure-ratio",
      Experiment("failure-ratio", "  svc: {names: [b1]}", PartitionFromClient("svc"),
                 "stop_when:\n  - {probe: b1-tcp, failure_ratio: 0.5, window: 2s}"));
  ASSERT_NE(run, nullptr);
  ASSERT_TRUE(WaitForTables("b1", true, 15s)) << "the partition never appeared on b1\n"
                                               << FinishRun(run, 30s).Describe();
  RunOutcome o = FinishRun(run, 30s);
  // At least half of the last 2 s failed: about 1 s of the fault at the
  // earliest (the window must also span 2 s of samples since the steady state).
  ExpectStopped(o, "failure_ratio 0.5", {"b1"}, 0.5, 8.0);
  EXPECT_THAT(o.report.reason(), HasSubstr("probe b1-tcp failed "));
  EXPECT_THAT(o.report.reason(), HasSubstr("in the last 2.0 s"));
  EXPECT_TRUE(WaitForTables("b1", false, 5s)) << "b1 keeps its faultline table";
  EXPECT_THAT(ActiveFaults(*dc_->Find("b1")), IsEmpty());
  EXPECT_THAT(LedgerFiles(*dc_->Find("b1")), IsEmpty());
  EXPECT_TRUE(dc_->Connects(client, Ip("b1"), kListenerPort));
}

// b1 and b2 hold a partition (from c1, which no probe uses); b2's agent is
// SIGKILLed mid-run. The next lease renewal cannot reach it: the run stops,
// b1's part is reverted at once, b2's is reported revert_failed and stays in
// b2's kernel (nobody is left there to remove it) until b2's agent starts
// again and reverts what its ledger holds.
TEST_F(FleetSafety, AgentsLostStopsAndReverts) {
  DcHost& b2 = *dc_->Find("b2");
  DcHost& c1 = *dc_->Find("c1");
  Subprocess* run = StartRun(
      "agents-lost",
      Experiment("agents-lost", "  svc: {names: [b1, b2]}",
                 fmt::format("  - {{on: svc, duration: 60s, partition: {{peers: [\"{}/32\"]}}}}",
                             Ip("c1")),
                 "stop_when:\n  - {agents_lost: 1}"));
  ASSERT_NE(run, nullptr);
  ASSERT_TRUE(WaitForTables("b1", true, 15s) && WaitForTables("b2", true, 5s))
      << "the partition never appeared on b1 and b2\n" << FinishRun(run, 30s).Describe();
  EXPECT_FALSE(dc_->Connects(c1, Ip("b2"), kListenerPort)) << "c1 still reaches b2";
  const auto killed_at = Clock::now();
  ASSERT_OK(b2.agent->Kill());
  RunOutcome o = FinishRun(run, 30s);
  const double stop_after_kill_s = SecondsSince(killed_at);
  ExpectStopped(o, "1 target agent lost: b2", {"b1", "b2"}, 0.0, 15.0);
  EXPECT_LT(stop_after_kill_s, 10.0) << "the run ended long after the agent was lost";
  EXPECT_GE(o.Find("reverted", "b1"), 0) << o.Timeline();
  EXPECT_GE(o.Find("revert_failed", "b2"), 0) << o.Timeline();
  // b1: gone at once.
  EXPECT_TRUE(WaitForTables("b1", false, 5s)) << "b1 keeps its faultline table";
  EXPECT_THAT(ActiveFaults(*dc_->Find("b1")), IsEmpty());
  // b2: still cut while its agent is dead; its ledger still holds the fault.
  EXPECT_THAT(Tables("b2"), Not(IsEmpty()));
  EXPECT_THAT(LedgerFiles(b2), Not(IsEmpty()));
  // Its agent starts again: it reverts the ledger's fault before serving.
  const auto restart_at = Clock::now();
  ASSERT_OK(b2.agent->Restart());
  EXPECT_TRUE(WaitForTables("b2", false, 10s)) << "b2's restarted agent left the partition\n"
                                               << b2.agent->Log();
  std::printf("  b2's partition gone %.2f s after its agent restarted\n", SecondsSince(restart_at));
  EXPECT_THAT(LedgerFiles(b2), IsEmpty());
  EXPECT_THAT(ActiveFaults(b2), IsEmpty());
  EXPECT_TRUE(WaitFor([&] { return dc_->Connects(c1, Ip("b2"), kListenerPort); }, 5s));
  ASSERT_OK(dc_->WaitForHealthyAgents({"b2"}, 15s));
}

// ---- Blast radius ----

TEST_F(FleetSafety, ExperimentMaxAgentsRefuses) {
  Watched w;
  RunOutcome o = RunWatched("max-agents",
                            Experiment("max-agents", "  svc: {names: [b1, c1]}",
                                       PartitionFromClient("svc"), "limits: {max_agents: 1}"),
                            &w);
  ExpectRefusedBeforeInjecting(o, w);
  EXPECT_THAT(o.report.reason(),
              HasSubstr("limits.max_agents 1: the run would take out 2 of 7 registered agents "
                        "(29%): b1, c1"));
}

TEST_F(FleetSafety, ExperimentMaxPercentRefuses) {
  Watched w;
  RunOutcome o = RunWatched("max-percent",
                            Experiment("max-percent", "  svc: {names: [b1]}",
                                       PartitionFromClient("svc"), "limits: {max_percent: 10}"),
                            &w);
  ExpectRefusedBeforeInjecting(o, w);
  EXPECT_THAT(o.report.reason(),
              HasSubstr("limits.max_percent 10: the run would take out 1 of 7 registered agents "
                        "(14%): b1"));
}

TEST_F(FleetSafety, ControllerMaxFleetPercentRefuses) {
  Watched w;
  RunOutcome o = RunWatched(
      "fleet-percent",
      Experiment("fleet-percent", "  svc: {names: [a1, b1, b2, c1]}", PartitionFromClient("svc")),
      &w);
  ExpectRefusedBeforeInjecting(o, w);
  EXPECT_THAT(o.report.reason(),
              HasSubstr("--max-fleet-percent 50: the run would take out 4 of 7 registered agents "
                        "(57%): a1, b1, b2, c1"));
}

TEST_F(FleetSafety, ProtectedLabelRefuses) {
  Watched w;
  RunOutcome o = RunWatched(
      "protected",
      Experiment("protected", "  svc: {names: [c1, c2]}", PartitionFromClient("svc")), &w);
  ExpectRefusedBeforeInjecting(o, w);
  EXPECT_THAT(o.report.reason(),
              HasSubstr("--protected-label: the run would give faults to protected agents: "
                        "c2 (tier=critical)"));
  EXPECT_THAT(o.report.reason(), Not(HasSubstr("c1"))) << "c1 is not protected";
}

// Run A pauses b1's victim for 60 s; run B wants a partition on b1 and c1 and
// is refused, naming b1 and run A. Nothing of B reaches any kernel; A's pause
// is untouched until the abort.
TEST_F(FleetSafety, TwoRunsNeverHoldTheSameAgent) {
  Subprocess* a = StartRun("hold-a", Experiment("hold-a", "  proc: {names: [b1]}", PauseVictim("proc")));
  ASSERT_NE(a, nullptr);
  ASSERT_TRUE(WaitFor([] { return VictimState("b1") == 'T'; }, 15s))
      << "run A never paused b1's victim\n" << FinishRun(a, 1s).Describe();
  Watched w;
  RunOutcome b = RunWatched("hold-b",
                            Experiment("hold-b", "  svc: {names: [b1, c1]}", PartitionFromClient("svc")),
                            &w);
  EXPECT_EQ(VictimState("b1"), 'T') << "run A's pause holds through B's refusal";
  AbortAll();
  RunOutcome ra = FinishRun(a, 30s);
  ASSERT_TRUE(ra.parsed) << ra.Describe();
  EXPECT_EQ(ra.report.verdict(), "aborted") << ra.report.reason();
  EXPECT_TRUE(WaitFor([] { return VictimState("b1") != 'T'; }, 5s)) << "b1's victim still paused";
  // B: refused before anything was injected, naming the agent and the run.
  ASSERT_TRUE(b.parsed) << b.Describe();
  EXPECT_EQ(b.report.verdict(), "error");
  EXPECT_THAT(b.report.reason(), HasSubstr(fmt::format(
                                     "agents held by another run: b1 (run {})", ra.report.run_id())));
  // (Run A's id is hex and may hold "c1" itself: look at the names only.)
  std::string names = b.report.reason();
  for (size_t at; (at = names.find(ra.report.run_id())) != std::string::npos;) {
    names.erase(at, ra.report.run_id().size());
  }
  EXPECT_THAT(names, Not(HasSubstr("c1"))) << "c1 is free: " << b.report.reason();
  EXPECT_EQ(b.Find("injected"), -1) << b.Timeline();
  EXPECT_EQ(b.report.faults_size(), 0);
  EXPECT_THAT(w.tables, IsEmpty()) << "run B's partition reached a kernel";
  EXPECT_EQ(w.paused, std::set<std::string>{"b1"}) << "only run A's pause, on b1";
  ExpectNothingAppliedAnywhere({{"b1", 1}});
}

// Two runs hold b1 and b2 (a pause each); a third, on c1, is refused by
// --max-concurrent-runs 2, naming the runs and agents in the way.
TEST_F(FleetSafety, MaxConcurrentRunsRefuses) {
  Subprocess* a = StartRun("conc-a", Experiment("conc-a", "  proc: {names: [b1]}", PauseVictim("proc")));
  Subprocess* b = StartRun("conc-b", Experiment("conc-b", "  proc: {names: [b2]}", PauseVictim("proc")));
  ASSERT_NE(a, nullptr);
  ASSERT_NE(b, nullptr);
  ASSERT_TRUE(WaitFor([] { return VictimState("b1") == 'T' && VictimState("b2") == 'T'; }, 15s))
      << "runs A and B never paused both victims\n"
      << FinishRun(a, 1s).Describe() << FinishRun(b, 1s).Describe();
  Watched w;
  RunOutcome c = RunWatched("conc-c",
                            Experiment("conc-c", "  svc: {names: [c1]}", PartitionFromClient("svc")),
                            &w);
  AbortAll();
  RunOutcome ra = FinishRun(a, 30s);
  RunOutcome rb = FinishRun(b, 30s);
  ASSERT_TRUE(ra.parsed && rb.parsed) << ra.Describe() << rb.Describe();
  EXPECT_EQ(ra.report.verdict(), "aborted");
  EXPECT_EQ(rb.report.verdict(), "aborted");
  EXPECT_TRUE(WaitFor([] { return VictimState("b1") != 'T' && VictimState("b2") != 'T'; }, 5s));
  ASSERT_TRUE(c.parsed) << c.Describe();
  EXPECT_EQ(c.report.verdict(), "error");
  EXPECT_THAT(c.report.reason(), HasSubstr("--max-concurrent-runs 2: 2 runs hold agents now"));
  EXPECT_THAT(c.report.reason(), HasSubstr(fmt::format("{}: b1", ra.report.run_id())));
  EXPECT_THAT(c.report.reason(), HasSubstr(fmt::format("{}: b2", rb.report.run_id())));
  EXPECT_THAT(c.report.reason(), HasSubstr("the run would hold c1"));
  EXPECT_EQ(c.Find("injected"), -1) << c.Timeline();
  EXPECT_EQ(c.report.faults_size(), 0);
  EXPECT_THAT(w.tables, IsEmpty()) << "run C's partition reached a kernel";
  ExpectNothingAppliedAnywhere({{"b1", 1}, {"b2", 1}});
}

}  // namespace
}  // namespace faultline::itest
