// Crash trials: the agent is SIGKILLed at random points while it injects, while
// it reverts, and during its own start-up recovery, for four kinds (pause,
// disk-fill, partition, bandwidth); restarted, it must leave nothing behind
// within 3 s: no stopped victim, no fill file, no faultline nftables table, no
// qdisc of ours, no ledger file (record or half-written .tmp).
//
// Everything happens inside one SimHost with its own network, PID and mount
// namespaces and a tmpfs the test mounts there. The random kill points come
// from a seeded generator; the seed is printed (FAULTLINE_CRASH_SEED=N repeats
// a run), FAULTLINE_CRASH_TRIALS sets the trials per kind (default 100).
//
// Also: two agents with different state folders fill one tmpfs; one agent's
// start-up sweep leaves the other's live fill file alone.
#include <fmt/format.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>

#include <array>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <map>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "agent/faults/net/tc_netlink.h"
#include "agent/faults/netns.h"
#include "agent/faults/nft/nft_session.h"
#include "common/grpc_status.h"
#include "faultline/v1/agent.grpc.pb.h"
#include "harness/agent_process.h"
#include "harness/sim_host.h"
#include "harness/status_matchers.h"
#include "harness/subprocess.h"
#include "harness/test_dir.h"

namespace faultline::itest {
namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;
using faultline::v1::FaultSpec;

constexpr char kVictim[] = "fltcrashvictim";
constexpr auto kCleanWithin = 3s;

enum class Phase { kInject, kRevert, kRecovery };
constexpr std::array<Phase, 3> kPhases = {Phase::kInject, Phase::kRevert, Phase::kRecovery};
const char* PhaseName(Phase p) {
  switch (p) {
    case Phase::kInject: return "inject";
    case Phase::kRevert: return "revert";
    case Phase::kRecovery: return "start-up recovery";
  }
  return "?";
}

int EnvInt(const char* name, int fallback) {
  const char* v = std::getenv(name);
  return v != nullptr && *v != '\0' ? std::atoi(v) : fallback;
}

double Ms(Clock::duration d) { return std::chrono::duration<double, std::milli>(d).count(); }

std::string Describe(const grpc::Status& s) {
  return std::string(GrpcCodeName(s.error_code())) + ": " + s.error_message();
}

// One SimHost (own network namespace: lo is the shaped interface), a victim
// process for pause, a tmpfs for disk fill, and an agent.
class CrashTrialTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_OK_AND_ASSIGN(dir_, TestDir::Create("crash"));
    ASSERT_OK_AND_ASSIGN(host_, SimHost::Create("crash", HostNet::kPrivate));
    mnt_ = dir_->Path("mnt");
    ASSERT_OK(host_->MountTmpfs(mnt_, "16M"));
    // The trials fill a tmpfs: the policy has to allow it.
    ASSERT_OK(dir_->WriteFile("tmpfs-fill.yaml", "disk_fill_allow_tmpfs: true\n"));
    ASSERT_OK_AND_ASSIGN(std::string victim_bin, MakeVictimBinary(*dir_, kVictim));
    ASSERT_OK_AND_ASSIGN(victim_exec_, host_->Exec({victim_bin, "600"}));
    ASSERT_OK_AND_ASSIGN(victim_, host_->Find(*victim_exec_));
    netns_path_ = fmt::format("/proc/{}/ns/net", host_->init_pid());
    tc_baseline_ = TcState();
    ASSERT_EQ(tc_baseline_.find("ERROR"), std::string::npos) << tc_baseline_;
  }

  void TearDown() override {
    if (HasFailure() && agent_ != nullptr) {
      const std::string log = agent_->Log();
      // The last runs only: a trial run restarts the agent hundreds of times.
      std::printf("agent log (tail):\n%s\n",
                  log.substr(log.size() > 8000 ? log.size() - 8000 : 0).c_str());
    }
    // A paused nsenter stays stopped after its child continues (harness README).
    if (victim_exec_ != nullptr) victim_exec_->KillGroup(SIGCONT);
  }

  AgentOptions Options(const std::string& name) {
    AgentOptions o;
    o.listen = {"unix:" + dir_->Path(name + ".sock")};
    o.state_dir = dir_->Path(name + "-state");
    o.args = {"--policy", dir_->Path("tmpfs-fill.yaml")};
    return o;
  }

  absl::Status StartAgent() {
    options_ = Options("agent");
    auto agent = AgentProcess::Start(*host_, *dir_, options_);
    if (!agent.ok()) return agent.status();
    agent_ = std::move(*agent);
    return absl::OkStatus();
  }

  FaultSpec Spec(const std::string& kind) const {
    FaultSpec s;
    s.set_duration("5m");
    if (kind == "pause") {
      s.mutable_pause()->mutable_process()->set_name(kVictim);
    } else if (kind == "disk-fill") {
      s.mutable_disk_fill()->set_path(mnt_);
      s.mutable_disk_fill()->set_percent(50);
    } else if (kind == "partition") {
      s.mutable_partition()->add_peers("10.99.0.0/24");
      s.mutable_partition()->add_ports(6379);
    } else if (kind == "bandwidth") {
      s.mutable_bandwidth()->set_interface("lo");
      s.mutable_bandwidth()->set_rate("1mbit");
    }
    return s;
  }

  grpc::Status Inject(const FaultSpec& spec, v1::InjectResponse* resp,
                      std::chrono::milliseconds timeout = 10s) {
    v1::InjectRequest req;
    *req.mutable_spec() = spec;
    req.set_owner("fltest-crash");
    auto ctx = ContextWithDeadline(timeout);
    return agent_->stub().Inject(ctx.get(), req, resp);
  }

  grpc::Status Revert(const std::string& id, std::chrono::milliseconds timeout = 10s) {
    v1::RevertRequest req;
    req.set_id(id);
    v1::RevertResponse resp;
    auto ctx = ContextWithDeadline(timeout);
    return agent_->stub().Revert(ctx.get(), req, &resp);
  }

  // Every qdisc of the host's namespace, through netlink from this process (a
  // check runs after every kill: no `tc` process each time).
  std::string TcState() {
    std::string out;
    absl::Status st = agent::RunInNetns(netns_path_, [&]() -> absl::Status {
      auto sock = agent::net::TcSocket::Connect();
      if (!sock.ok()) return sock.status();
      auto qdiscs = sock->Qdiscs();
      if (!qdiscs.ok()) return qdiscs.status();
      for (const auto& q : *qdiscs) {
        out += fmt::format("{} {:x}:{:x} parent {:x} on {}\n", q.kind, q.handle >> 16,
                           q.handle & 0xffff, q.parent, q.ifindex);
      }
      return absl::OkStatus();
    });
    return st.ok() ? out : "ERROR: " + std::string(st.message());
  }

  // What is left of any fault in the host, one line per leftover; empty when clean.
  std::vector<std::string> Leftovers() {
    std::vector<std::string> out;
    const char state = ProcessState(victim_.outer_pid);
    if (state == 'T' || state == 't') out.push_back(fmt::format("victim {} stopped", victim_.outer_pid));
    std::error_code ec;
    for (const auto& e : std::filesystem::directory_iterator(host_->OutsidePath(mnt_), ec)) {
      const std::string name = e.path().filename();
      if (name.rfind(".faultline-fill-", 0) == 0) out.push_back("fill file " + name);
    }
    if (ec) out.push_back("cannot list the tmpfs: " + ec.message());
    auto tables = agent::nft::RunNft(netns_path_, "list tables");
    if (!tables.ok()) {
      out.push_back("nft: " + std::string(tables.status().message()));
    } else if (tables->find("faultline") != std::string::npos) {
      out.push_back("nft table: " + *tables);
    }
    const std::string tc = TcState();
    if (tc != tc_baseline_) out.push_back("qdisc: " + tc);
    const std::string ledger = options_.state_dir + "/ledger";
    for (const auto& e : std::filesystem::directory_iterator(ledger, ec)) {
      out.push_back("ledger file " + std::string(e.path().filename()));
    }
    return out;
  }

  // Restarts the killed agent and waits until nothing is left. Returns the
  // leftovers still there after kCleanWithin (empty = clean) and the time it took.
  std::vector<std::string> RestartAndCheck(double* clean_ms) {
    const auto start = Clock::now();
    absl::Status st = agent_->Restart();
    if (!st.ok()) return {"restart failed: " + std::string(st.message())};
    std::vector<std::string> left;
    WaitFor([&] { return (left = Leftovers()).empty(); }, kCleanWithin - (Clock::now() - start));
    *clean_ms = Ms(Clock::now() - start);
    return left;
  }

  // The agent's command line as AgentProcess runs it (for a launch the test
  // kills during start-up).
  std::vector<std::string> AgentArgv() {
    auto bin = AgentBinary();
    std::vector<std::string> argv = {bin.ok() ? *bin : "faultline-agent", "--state-dir",
                                     options_.state_dir};
    for (const auto& l : options_.listen) {
      argv.push_back("--listen");
      argv.push_back(l);
    }
    argv.insert(argv.end(), options_.args.begin(), options_.args.end());
    return argv;
  }

  std::unique_ptr<TestDir> dir_;
  std::unique_ptr<SimHost> host_;
  std::string mnt_;
  std::string netns_path_;
  std::string tc_baseline_;
  std::unique_ptr<Subprocess> victim_exec_;
  HostProcess victim_;
  AgentOptions options_;
  std::unique_ptr<AgentProcess> agent_;
};

struct Cell {
  int trials = 0;
  int leftovers = 0;
  int rpc_done = 0;  // the RPC answered before the kill
  double max_clean_ms = 0;
};

TEST_F(CrashTrialTest, RandomKillsLeaveNothingBehind) {
  const int trials_per_kind = EnvInt("FAULTLINE_CRASH_TRIALS", 100);
  const uint64_t seed = static_cast<uint64_t>(
      EnvInt("FAULTLINE_CRASH_SEED", static_cast<int>(std::random_device{}() & 0x7fffffff)));
  std::printf("crash trials: seed %llu (FAULTLINE_CRASH_SEED=%llu repeats it), %d per kind\n",
              static_cast<unsigned long long>(seed), static_cast<unsigned long long>(seed),
              trials_per_kind);
  std::mt19937_64 rng(seed);
  ASSERT_OK(StartAgent());
  const std::vector<std::string> kinds = {"pause", "disk-fill", "partition", "bandwidth"};

  // Calibration: how long an inject, a revert and a start take here, so the
  // kill points spread over the whole of each.
  std::map<std::string, double> inject_ms, revert_ms;
  for (const auto& kind : kinds) {
    for (int i = 0; i < 3; ++i) {
      v1::InjectResponse resp;
      auto t0 = Clock::now();
      grpc::Status s = Inject(Spec(kind), &resp);
      ASSERT_TRUE(s.ok()) << kind << ": " << Describe(s);
      inject_ms[kind] = std::max(inject_ms[kind], Ms(Clock::now() - t0));
      t0 = Clock::now();
      s = Revert(resp.fault().id());
      ASSERT_TRUE(s.ok()) << kind << ": " << Describe(s);
      revert_ms[kind] = std::max(revert_ms[kind], Ms(Clock::now() - t0));
    }
  }
  ASSERT_OK(agent_->Kill());
  auto t0 = Clock::now();
  ASSERT_OK(agent_->Restart());
  const double start_ms = Ms(Clock::now() - t0);
  for (const auto& kind : kinds) {
    std::printf("  %-9s inject %.1f ms, revert %.1f ms; agent start %.1f ms\n", kind.c_str(),
                inject_ms[kind], revert_ms[kind], start_ms);
  }
  ASSERT_TRUE(Leftovers().empty());

  std::map<std::pair<std::string, Phase>, Cell> table;
  std::vector<std::string> failures;
  const auto all_start = Clock::now();
  for (int t = 0; t < trials_per_kind * static_cast<int>(kinds.size()); ++t) {
    const std::string& kind = kinds[t % kinds.size()];
    const Phase phase = kPhases[(t / kinds.size()) % kPhases.size()];
    Cell& cell = table[{kind, phase}];
    ++cell.trials;
    // Kill points: uniform over 1.5x the measured length of the operation.
    auto delay = [&](double window_ms) {
      std::uniform_real_distribution<double> d(0, std::max(2.0, 1.5 * window_ms));
      return std::chrono::microseconds(static_cast<int64_t>(d(rng) * 1000));
    };
    const std::string where = fmt::format("trial {} ({} during {})", t, kind, PhaseName(phase));
    switch (phase) {
      case Phase::kInject: {
        const auto kill_after = delay(inject_ms[kind]);
        grpc::Status s;
        std::thread rpc([&] {
          v1::InjectResponse resp;
          s = Inject(Spec(kind), &resp, 5s);
        });
        std::this_thread::sleep_for(kill_after);
        const absl::Status killed = agent_->Kill();
        rpc.join();
        ASSERT_OK(killed);
        if (s.ok()) ++cell.rpc_done;
        break;
      }
      case Phase::kRevert: {
        v1::InjectResponse resp;
        grpc::Status s = Inject(Spec(kind), &resp);
        ASSERT_TRUE(s.ok()) << where << ": " << Describe(s);
        const auto kill_after = delay(revert_ms[kind]);
        std::thread rpc([&] { s = Revert(resp.fault().id(), 5s); });
        std::this_thread::sleep_for(kill_after);
        const absl::Status killed = agent_->Kill();
        rpc.join();
        ASSERT_OK(killed);
        if (s.ok()) ++cell.rpc_done;
        break;
      }
      case Phase::kRecovery: {
        v1::InjectResponse resp;
        grpc::Status s = Inject(Spec(kind), &resp);
        ASSERT_TRUE(s.ok()) << where << ": " << Describe(s);
        ASSERT_OK(agent_->Kill());
        // A start the test kills part way: before, during or after its recovery.
        SubprocessOptions so;
        so.stdout_file = dir_->Path("killed-start.out");
        so.stderr_file = dir_->Path("killed-start.err");
        ASSERT_OK_AND_ASSIGN(auto exec, host_->Exec(AgentArgv(), so));
        ASSERT_OK_AND_ASSIGN(HostProcess p, host_->Find(*exec, 10s));
        std::this_thread::sleep_for(delay(start_ms));
        ::kill(p.outer_pid, SIGKILL);
        exec->Wait(10s);
        break;
      }
    }
    double clean_ms = 0;
    std::vector<std::string> left = RestartAndCheck(&clean_ms);
    cell.max_clean_ms = std::max(cell.max_clean_ms, clean_ms);
    if (!left.empty()) {
      ++cell.leftovers;
      failures.push_back(fmt::format("{}: {}", where, fmt::join(left, "; ")));
      // Start the next trial from a clean host: a stopped victim would stop
      // every later pause trial from meaning anything.
      ::kill(victim_.outer_pid, SIGCONT);
    }
  }
  const double total_s = Ms(Clock::now() - all_start) / 1000;

  std::printf("\ncrash trials, seed %llu: %d kills in %.1f s\n",
              static_cast<unsigned long long>(seed),
              trials_per_kind * static_cast<int>(kinds.size()), total_s);
  std::printf("%-10s %-18s %7s %10s %9s %14s\n", "kind", "killed during", "trials", "rpc done",
              "leftover", "clean (max ms)");
  for (const auto& kind : kinds) {
    for (Phase phase : kPhases) {
      const Cell& c = table[{kind, phase}];
      std::printf("%-10s %-18s %7d %10d %9d %14.0f\n", kind.c_str(), PhaseName(phase), c.trials,
                  c.rpc_done, c.leftovers, c.max_clean_ms);
    }
  }
  // What the restarts had to clean up, from the agent's own log.
  const std::string log = agent_->Log();
  auto occurrences = [&](const std::string& needle) {
    int n = 0;
    for (size_t pos = log.find(needle); pos != std::string::npos; pos = log.find(needle, pos + 1)) ++n;
    return n;
  };
  std::printf("restarts that found: %d half-written ledger records (<id>.fault.tmp, removed), "
              "%d ledger records to revert, %d tagged leftovers swept\n",
              occurrences("removed a half-written ledger record"), occurrences("reverted: recovery"),
              occurrences("swept leftover"));
  EXPECT_TRUE(failures.empty()) << fmt::format("{} trials left something behind:\n{}",
                                               failures.size(), fmt::join(failures, "\n"));
}

// Two agents with their own state folders fill one shared tmpfs. One agent's
// start-up sweep removes only its own fill files, never the other's live one.
TEST_F(CrashTrialTest, ASweepLeavesAnotherAgentsFillAlone) {
  ASSERT_OK(dir_->WriteFile("fill-only.yaml",
                            "allowed_kinds: [disk-fill]\ndisk_fill_allow_tmpfs: true\n"));
  AgentOptions oa = Options("a");
  AgentOptions ob = Options("b");
  oa.args = ob.args = {"--policy", dir_->Path("fill-only.yaml")};
  ASSERT_OK_AND_ASSIGN(auto a, AgentProcess::Start(*host_, *dir_, oa));
  ASSERT_OK_AND_ASSIGN(auto b, AgentProcess::Start(*host_, *dir_, ob));

  auto inject = [&](AgentProcess& agent, double percent) -> std::string {
    v1::InjectRequest req;
    FaultSpec s;
    s.set_duration("5m");
    s.mutable_disk_fill()->set_path(mnt_);
    s.mutable_disk_fill()->set_percent(percent);
    *req.mutable_spec() = s;
    v1::InjectResponse resp;
    auto ctx = ContextWithDeadline(10s);
    grpc::Status st = agent.stub().Inject(ctx.get(), req, &resp);
    EXPECT_TRUE(st.ok()) << Describe(st);
    return host_->OutsidePath(resp.fault().disk_fill().file());
  };
  const std::string a_file = inject(*a, 30);
  ASSERT_TRUE(std::filesystem::exists(a_file)) << a_file;
  // b's leftover: b dies with its fill active.
  const std::string b_file = inject(*b, 60);
  ASSERT_TRUE(std::filesystem::exists(b_file)) << b_file;
  EXPECT_NE(a_file, b_file);
  // The ledger-less case: b also loses its ledger, so only the sweep can find
  // its file; a's live fill (in a's ledger, a running) must survive b's sweep.
  ASSERT_OK(b->Kill());
  std::filesystem::remove_all(ob.state_dir + "/ledger");
  ASSERT_OK(b->Restart());
  EXPECT_FALSE(std::filesystem::exists(b_file)) << "b's own leftover was not swept\n" << b->Log();
  EXPECT_TRUE(std::filesystem::exists(a_file)) << "b's sweep deleted a's live fill file\n"
                                               << b->Log();
  // And the other way round, through a restart of a that lost its ledger too.
  const std::string b_file2 = inject(*b, 60);
  ASSERT_OK(a->Kill());
  std::filesystem::remove_all(oa.state_dir + "/ledger");
  ASSERT_OK(a->Restart());
  EXPECT_FALSE(std::filesystem::exists(a_file));
  EXPECT_TRUE(std::filesystem::exists(b_file2)) << "a's sweep deleted b's live fill file\n"
                                                << a->Log();
  // b reverts its own.
  v1::RevertAllRequest req;
  v1::RevertAllResponse resp;
  auto ctx = ContextWithDeadline(10s);
  ASSERT_TRUE(b->stub().RevertAll(ctx.get(), req, &resp).ok());
  EXPECT_FALSE(std::filesystem::exists(b_file2));
}

}  // namespace
}  // namespace faultline::itest
