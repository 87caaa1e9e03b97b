// Zone outage (issue 8, "Fleet experiments"), end to end in a datacenter made of
// namespaces (DESIGN.md, "Tests and the real kernel" and "Fleet runs"):
//
//   switch   netns fltest-<pid>-sw, a bridge "br0"; one port per host
//   ctl      10.88.0.2   faultline-controller (TCP for the agents, a unix socket
//                        for the CLI in the test's namespace)
//   a1, a2   10.88.0.11, .12   zone=a
//   b1, b2   10.88.0.21, .22   zone=b
//   c1, c2   10.88.0.31, .32   zone=c
//
// Every host is a SimHost (own network, PID and mount namespaces) running its
// own faultline-agent, which registers itself (--controller/--advertise), and a
// TCP listener (python3 http.server): harness/datacenter.h. A connectivity matrix of real TCP
// connects, made inside each host, checks that `zone_outage: {zone: a}` cuts
// zone a off from b and c in both directions and nothing else (not the
// control channel, not a1<->a2, not b<->c), that it ends with the fault's
// duration, and that no faultline nft table is left on any host.
#include <fmt/format.h>
#include <gmock/gmock.h>
#include <google/protobuf/util/json_util.h>
#include <gtest/gtest.h>
#include <signal.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "faultline/v1/controller.pb.h"
#include "harness/datacenter.h"
#include "harness/status_matchers.h"
#include "harness/subprocess.h"

namespace faultline::itest {
namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

constexpr int kListenerPort = 8080;

const std::vector<DcHostSpec>& HostSpecs() {
  static const auto* specs = new std::vector<DcHostSpec>{
      {"a1", "10.88.0.11", {{"zone", "a"}}, {}}, {"a2", "10.88.0.12", {{"zone", "a"}}, {}},
      {"b1", "10.88.0.21", {{"zone", "b"}}, {}}, {"b2", "10.88.0.22", {{"zone", "b"}}, {}},
      {"c1", "10.88.0.31", {{"zone", "c"}}, {}}, {"c2", "10.88.0.32", {{"zone", "c"}}, {}},
  };
  return *specs;
}

// Source -> target name -> connected. Targets are host names and "ctl".
using Matrix = std::map<std::string, std::map<std::string, bool>>;

class ZoneOutage : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_OK_AND_ASSIGN(dc_, Datacenter::Create("zone", HostSpecs()));
    ASSERT_OK(dc_->StartController());
    for (auto& host : dc_->hosts()) {
      ASSERT_OK(dc_->StartAgent(*host));
      ASSERT_OK(dc_->StartListener(*host, kListenerPort));
    }
    ASSERT_OK(dc_->WaitForHealthyAgents(dc_->HostNames(), 30s));
  }

  void TearDown() override {
    // The run first; the datacenter goes with its destructor.
    if (run_) run_->KillGroup(SIGKILL);
  }

  const std::vector<std::unique_ptr<DcHost>>& hosts() const { return dc_->hosts(); }

  // Every target a host's row of the matrix connects to: the other hosts'
  // listeners and the controller's TCP port.
  std::vector<std::string> Targets(const DcHost& from) const {
    std::vector<std::string> out;
    for (const auto& to : hosts()) {
      if (to.get() == &from) continue;
      out.push_back(fmt::format("{}={}:{}", to->name(), to->ip(), kListenerPort));
    }
    out.push_back(
        fmt::format("ctl={}:{}", Datacenter::kControllerIp, Datacenter::kControllerPort));
    return out;
  }

  // A row that cannot be measured marks every target not connected and records
  // why in `*error`.
  static std::map<std::string, bool> ParseRow(const CommandResult& r,
                                              const std::vector<std::string>& targets,
                                              std::string* error) {
    std::map<std::string, bool> row;
    for (const auto& t : targets) row[t.substr(0, t.find('='))] = false;
    if (!r.ok()) {
      *error += r.Describe() + "\n";
      return row;
    }
    for (const auto& [name, ok] : ParseTcpConnectOutput(r.out)) row[name] = ok;
    return row;
  }

  // The whole matrix: from each host, a TCP connect to each target (0.5 s
  // timeout each, in parallel); one python per host, all hosts at once (each
  // row takes about the connect timeout when something is cut).
  Matrix MeasureMatrix(std::string* error) {
    std::vector<std::unique_ptr<Subprocess>> runs;
    std::vector<std::vector<std::string>> targets;
    for (const auto& host : hosts()) {
      targets.push_back(Targets(*host));
      auto run = host->sim->Exec(TcpConnectArgv(0.5, targets.back()));
      if (!run.ok()) {
        *error += std::string(run.status().message()) + "\n";
        runs.push_back(nullptr);
        continue;
      }
      runs.push_back(*std::move(run));
    }
    Matrix m;
    for (size_t i = 0; i < hosts().size(); ++i) {
      CommandResult r;
      if (runs[i] == nullptr) {
        r.start_error = "not started";
      } else if (!runs[i]->Wait(10s)) {
        runs[i]->KillGroup(SIGKILL);
        runs[i]->Wait(2s);
        r.timed_out = true;
      } else {
        r.exit_code = runs[i]->exit_code();
        r.out = runs[i]->Stdout();
        r.err = runs[i]->Stderr();
      }
      m[hosts()[i]->name()] = ParseRow(r, targets[i], error);
    }
    return m;
  }

  // One connect from `from` to `to`'s listener.
  bool Connects(DcHost& from, const DcHost& to) {
    return dc_->Connects(from, to.ip(), kListenerPort);
  }

  static std::string Describe(const Matrix& m) {
    std::string out;
    for (const auto& [from, row] : m) {
      out += from + " ->";
      for (const auto& [to, ok] : row) out += fmt::format(" {}:{}", to, ok ? "ok" : "CUT");
      out += "\n";
    }
    return out;
  }

  static bool AllConnect(const Matrix& m) {
    for (const auto& [from, row] : m) {
      for (const auto& [to, ok] : row) {
        if (!ok) return false;
      }
    }
    return true;
  }

  // Waits (bounded) until every pair connects; returns the last matrix.
  Matrix WaitForFullMesh(std::chrono::seconds timeout, std::string* error) {
    Matrix m;
    const auto deadline = Clock::now() + timeout;
    for (int attempt = 0; attempt < 20; ++attempt) {
      error->clear();
      m = MeasureMatrix(error);
      if (AllConnect(m) || Clock::now() >= deadline) break;
      std::this_thread::sleep_for(200ms);
    }
    return m;
  }

  std::vector<std::string> FaultlineTables(const DcHost& host, std::string* error) {
    return dc_->FaultlineTables(host, error);
  }

  DcHost* Find(const std::string& name) const { return dc_->Find(name); }

  std::string ControllerLog() const { return dc_->ControllerLog(); }

  std::string Experiment() const {
    return fmt::format(R"(
name: zone-outage-test
description: Zone a is cut off from zones b and c; c1 keeps reaching c2.
targets:
  observer: {{names: [c1]}}
probes:
  - name: c2-tcp
    from: observer
    tcp: {{address: "{0}:{1}"}}
    interval: 200ms
    timeout: 500ms
faults:
  - zone_outage: {{zone: a}}
    duration: 6s
objectives: {{rto: 30s}}
duration: 7s
)",
                       Find("c2") ? Find("c2")->ip() : "", kListenerPort);
  }

  std::unique_ptr<Datacenter> dc_;
  std::unique_ptr<Subprocess> run_;  // destroyed before the datacenter
};

TEST_F(ZoneOutage, CutsTheZoneBothWaysAndNothingElse) {
  const auto t0 = Clock::now();
  auto since = [&] { return std::chrono::duration<double>(Clock::now() - t0).count(); };

  // Before: the python listeners take a moment to start; then every pair connects.
  std::string error;
  Matrix before = WaitForFullMesh(15s, &error);
  ASSERT_TRUE(AllConnect(before)) << "before the fault:\n" << Describe(before) << error;
  for (auto& host : hosts()) {
    std::string err;
    EXPECT_THAT(FaultlineTables(*host, &err), ::testing::IsEmpty()) << host->name();
    EXPECT_EQ(err, "");
  }
  std::printf("[%6.2fs] before: all %zu hosts reach each other and the controller\n", since(),
              hosts().size());

  // The run, in the background.
  ASSERT_OK(dc_->dir().WriteFile("zone.yaml", Experiment()));
  SubprocessOptions so;
  so.stdout_file = dc_->dir().Path("run.out");
  so.stderr_file = dc_->dir().Path("run.err");
  ASSERT_OK_AND_ASSIGN(run_, Subprocess::Start(dc_->Cli({"run", dc_->dir().Path("zone.yaml"), "-o", "json"}),
                                               so));
  const auto run_started = Clock::now();
  DcHost& a1 = *Find("a1");
  DcHost& b1 = *Find("b1");
  bool in_effect = false;
  for (int attempt = 0; attempt < 50 && Clock::now() - run_started < 5s; ++attempt) {
    if (!run_->Running()) break;
    if (!Connects(a1, b1)) {
      in_effect = true;
      break;
    }
    std::this_thread::sleep_for(50ms);
  }
  const double effect_s = std::chrono::duration<double>(Clock::now() - run_started).count();
  if (!in_effect) run_->Wait(30s);
  ASSERT_TRUE(in_effect) << "a1 -> b1 still connects " << effect_s
                         << " s after `faultline run` started\nrun: exit "
                         << (run_->exited() ? run_->exit_code() : -1) << "\n"
                         << run_->Stdout() << run_->Stderr() << "\ncontroller: " << ControllerLog();
  std::printf("[%6.2fs] a1 -> b1 cut %.2f s after `faultline run` started\n", since(), effect_s);

  // During: zone a is cut from b and c both ways, nothing else is.
  error.clear();
  const auto measured_at = Clock::now();
  Matrix during = MeasureMatrix(&error);
  const double matrix_s = std::chrono::duration<double>(Clock::now() - measured_at).count();
  EXPECT_EQ(error, "");
  std::printf("[%6.2fs] during (matrix took %.2f s):\n%s", since(), matrix_s,
              Describe(during).c_str());
  for (const auto& from : hosts()) {
    for (const auto& to : hosts()) {
      if (from == to) continue;
      const bool crosses = (from->label("zone") == "a") != (to->label("zone") == "a");
      EXPECT_EQ(during[from->name()][to->name()], !crosses)
          << from->name() << " -> " << to->name() << (crosses ? " should be cut" : " should connect");
    }
    EXPECT_TRUE(during[from->name()]["ctl"])
        << from->name() << " -> the controller: the control channel is never cut";
  }
  // Both sides enforce it: every agent has a faultline table while it lasts.
  for (auto& host : hosts()) {
    std::string err;
    EXPECT_THAT(FaultlineTables(*host, &err), ::testing::Not(::testing::IsEmpty()))
        << host->name() << " enforces no part of the outage " << err;
  }
  std::printf("[%6.2fs] during checks done\n", since());

  // The run ends (fault 6 s, run 7 s, then the recovery check).
  ASSERT_TRUE(run_->Wait(60s)) << "the run did not finish in 60 s";
  const double run_s = std::chrono::duration<double>(Clock::now() - run_started).count();
  const std::string out = run_->Stdout();
  EXPECT_EQ(run_->exit_code(), 0) << out << run_->Stderr();
  v1::RunReport report;
  ASSERT_TRUE(google::protobuf::util::JsonStringToMessage(out, &report).ok())
      << "exit " << run_->exit_code() << "\n" << out << run_->Stderr();
  EXPECT_EQ(report.verdict(), "pass") << report.reason() << "\n" << report.ShortDebugString();
  std::set<std::string> faulted;
  for (const auto& f : report.faults()) {
    EXPECT_EQ(f.kind(), "partition") << f.ShortDebugString();
    faulted.insert(f.agent());
  }
  EXPECT_EQ(report.faults_size(), static_cast<int>(hosts().size())) << report.ShortDebugString();
  EXPECT_THAT(faulted, ::testing::ElementsAre("a1", "a2", "b1", "b2", "c1", "c2"))
      << "one partition per agent, on both sides of the cut";
  std::printf("[%6.2fs] run finished after %.2f s: verdict %s, %d faults, start skew %.2f ms, "
              "end skew %.2f ms (clock error %.2f ms)\n",
              since(), run_s, report.verdict().c_str(), report.faults_size(), report.start_skew_ms(),
              report.end_skew_ms(), report.clock_error_ms());
  // A coordinated start and end: every agent applies at one instant and ends
  // at that instant + the duration, on its own clock. The skew is measured on
  // the controller's timeline from each agent's mapped apply time, each known
  // to ± the clock error: 20 ms, give or take what the measurement itself cannot
  // tell apart (the clock error grows on a loaded host).
  // Under the sanitizers (scripts/test's stage 2) the bound is scaled.
  const double slack = itest::TimingSlack();
  EXPECT_LE(report.start_skew_ms(), 20.0 * slack + 2 * report.clock_error_ms());
  // The end includes each agent's revert work (deleting its table), which six
  // agents on two cores do at once: a coarse bound.
  EXPECT_GT(report.end_skew_ms(), 0.0);
  EXPECT_LE(report.end_skew_ms(), 100.0);
  int reverted_by_deadline = 0;
  for (const auto& e : report.timeline()) {
    if (e.kind() == "reverted" && e.detail().find("(deadline)") != std::string::npos) ++reverted_by_deadline;
  }
  EXPECT_EQ(reverted_by_deadline, 6) << "each agent ended its part itself, at its deadline";
  for (const auto& e : report.timeline()) {
    if (e.kind() == "injected" || e.kind() == "reverted") {
      std::printf("  %s %s: %s\n", e.kind().c_str(), e.agent().c_str(), e.detail().c_str());
    }
  }

  // After: every pair connects again, and no faultline table is left.
  Matrix after = WaitForFullMesh(5s, &error);
  EXPECT_TRUE(AllConnect(after)) << "after the run:\n" << Describe(after) << error;
  for (auto& host : hosts()) {
    std::string err;
    EXPECT_THAT(FaultlineTables(*host, &err), ::testing::IsEmpty())
        << host->name() << " keeps a faultline nft table";
    EXPECT_EQ(err, "");
  }
  std::printf("[%6.2fs] after: full mesh again, no faultline nft table\n", since());
  std::fflush(stdout);
}

}  // namespace
}  // namespace faultline::itest
