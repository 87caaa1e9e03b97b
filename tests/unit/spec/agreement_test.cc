// One answer everywhere: the same fault, written as `faultline inject` flags and
// as an experiment file's `faults:` entry, goes through the CLI's spec building,
// `faultline validate` (LoadExperiment) and the agent's dry-run Inject (a real
// FaultManager with the real handlers); all three accept it, or all three
// refuse it naming the same field. The test runs in a network namespace of its
// own (unshare), so the agent's dry-run plans read only that namespace.
#include <sched.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "agent/fault_manager.h"
#include "agent/faults/proc_process_table.h"
#include "agent/faults/registry.h"
#include "controller/cli/cli.h"
#include "controller/experiment.h"
#include "common/endpoint.h"
#include "fmt/format.h"
#include "fmt/ranges.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace faultline {
namespace {

struct Case {
  std::string kind;               // `faultline inject KIND`
  std::vector<std::string> args;  // its flags
  std::string yaml;               // the same fault in an experiment (`on: t` is added)
  std::string refused;            // "" = accepted; else the field every path names
};

// "kill.mode" from "kill.mode: must be ..." (first line; an experiment's
// "faults[0]." prefix removed).
std::string FieldOf(const absl::Status& st) {
  std::string msg(st.message());
  msg = msg.substr(0, msg.find('\n'));
  if (msg.rfind("faults[0].", 0) == 0) msg = msg.substr(10);
  return msg.substr(0, msg.find(": "));
}

// What one path answered: "" = accepted, else the field it named.
std::string Answer(const absl::Status& st) { return st.ok() ? "" : FieldOf(st); }

class Agreement : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    // Everything the dry-run plans read (interfaces, nft tables) is ours alone.
    ASSERT_EQ(::unshare(CLONE_NEWNET), 0) << "the unit suite runs as root: " << std::strerror(errno);
    child_ = ::fork();
    ASSERT_GE(child_, 0);
    if (child_ == 0) {
      ::execl("/bin/sleep", "sleep", "60", nullptr);
      ::_exit(127);
    }
    // Until the child has exec'ed, it is still called like this test.
    for (int i = 0; i < 200; ++i) {
      std::string comm;
      if (auto text = ReadFileToString(fmt::format("/proc/{}/comm", child_)); text.ok()) comm = *text;
      if (comm.rfind("sleep", 0) == 0) break;
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    dir_ = std::filesystem::temp_directory_path() /
           fmt::format("fltest-agreement-{}", ::getpid());
    std::filesystem::create_directories(dir_ / "state");
    std::filesystem::create_directories(dir_ / "fill");
    auto ledger = agent::Ledger::Open((dir_ / "state").string());
    ASSERT_TRUE(ledger.ok()) << ledger.status();
    agent::FaultContext ctx;
    ctx.policy = &policy_;
    ctx.processes = &processes_;
    ctx.agent_pid = ::getpid();
    manager_ = new agent::FaultManager(std::move(*ledger), agent::MakeDefaultHandlers(), ctx);
  }

  static void TearDownTestSuite() {
    delete manager_;
    manager_ = nullptr;
    if (child_ > 0) {
      ::kill(child_, SIGKILL);
      ::waitpid(child_, nullptr, 0);
    }
    std::error_code ec;
    std::filesystem::remove_all(dir_, ec);
  }

  // The agent's answer to a dry run of `spec`: refusals of the spec itself
  // (INVALID_ARGUMENT, PERMISSION_DENIED) name a field; a host that cannot do
  // it (no sch_netem here, nothing to fill) has still accepted the spec.
  static std::string AgentAnswer(const v1::FaultSpec& spec) {
    v1::InjectRequest req;
    *req.mutable_spec() = spec;
    req.set_dry_run(true);
    auto resp = manager_->Inject(req);
    if (resp.ok()) {
      ++planned_;
      return "";
    }
    const auto code = resp.status().code();
    if (code == absl::StatusCode::kInvalidArgument || code == absl::StatusCode::kPermissionDenied) {
      return FieldOf(resp.status());
    }
    return "";
  }

  static std::string ExperimentYaml(const std::string& fault) {
    return fmt::format(R"(
name: agreement
targets:
  t: {{names: [host-1]}}
probes:
  - {{name: p, tcp: {{address: "127.0.0.1:1"}}}}
faults:
  - {{on: t, {}}}
objectives: {{rto: 10s}}
duration: 1m
)",
                       fault);
  }

  static std::string Expand(const std::string& text) {
    std::string out = text;
    const std::string pid = std::to_string(child_);
    const std::string fill = (dir_ / "fill").string();
    for (size_t at; (at = out.find("$PID")) != std::string::npos;) out.replace(at, 4, pid);
    for (size_t at; (at = out.find("$FILL")) != std::string::npos;) out.replace(at, 5, fill);
    return out;
  }

  static inline pid_t child_ = -1;
  static inline std::filesystem::path dir_;
  static inline v1::Policy policy_;
  static inline agent::ProcProcessTable processes_{"/proc"};
  static inline agent::FaultManager* manager_ = nullptr;
  static inline int planned_ = 0;  // dry runs the agent planned in full
};

const std::vector<Case>& Cases() {
  static const std::vector<Case> cases = {
      // kill: selection
      {"kill", {"--pid", "$PID"}, "kill: {process: {pid: $PID}}", ""},
      {"kill", {"--process-name", "sleep"}, "kill: {process: {name: sleep}}", ""},
      {"kill", {"--pid", "$PID", "--mode", "ALL"}, "kill: {process: {pid: $PID}, mode: ALL}", ""},
      {"kill", {"--pid", "$PID", "--mode", "all"}, "kill: {process: {pid: $PID}, mode: all}", ""},
      {"kill", {"--pid", "$PID", "--mode", "most"}, "kill: {process: {pid: $PID}, mode: most}", "kill.mode"},
      {"kill", {"--pid", "$PID", "--mode", "count"}, "kill: {process: {pid: $PID}, mode: count}", "kill.count"},
      {"kill", {"--pid", "$PID", "--mode", "count", "--count", "2"},
       "kill: {process: {pid: $PID}, mode: count, count: 2}", ""},
      {"kill", {"--pid", "$PID", "--count", "2"}, "kill: {process: {pid: $PID}, count: 2}", "kill.count"},
      {"kill", {"--pid", "$PID", "--mode", "percent", "--percent", "50"},
       "kill: {process: {pid: $PID}, mode: percent, percent: 50}", ""},
      {"kill", {"--pid", "$PID", "--mode", "percent", "--percent", "150"},
       "kill: {process: {pid: $PID}, mode: percent, percent: 150}", "kill.percent"},
      {"kill", {"--pid", "$PID", "--mode", "percent"}, "kill: {process: {pid: $PID}, mode: percent}",
       "kill.percent"},
      {"kill", {}, "kill: {}", "kill.process"},
      {"kill", {"--pid", "1"}, "kill: {process: {pid: 1}}", "kill.process.pid"},
      {"kill", {"--pid", "-3"}, "kill: {process: {pid: -3}}", "kill.process.pid"},
      {"kill", {"--pid", "abc"}, "kill: {process: {pid: abc}}", "kill.process.pid"},
      {"kill", {"--process-name", "a-name-longer-than-fifteen"},
       "kill: {process: {name: a-name-longer-than-fifteen}}", "kill.process.name"},
      {"kill", {"--cmdline", "(a)\\1"}, R"(kill: {process: {cmdline: "(a)\\1"}})", "kill.process.cmdline"},
      {"kill", {"--cmdline", "[unclosed"}, R"(kill: {process: {cmdline: "[unclosed"}})",
       "kill.process.cmdline"},
      {"kill", {"--cmdline", "^sleep 6[0-9]$"}, R"(kill: {process: {cmdline: "^sleep 6[0-9]$"}})", ""},
      {"kill", {"--pidfile", "run/x.pid"}, "kill: {process: {pidfile: run/x.pid}}", "kill.process.pidfile"},
      {"kill", {"--cgroup", "system.slice"}, "kill: {process: {cgroup: system.slice}}", "kill.process.cgroup"},
      // kill: signals
      {"kill", {"--pid", "$PID", "--signal", "15"}, "kill: {process: {pid: $PID}, signal: 15}", ""},
      {"kill", {"--pid", "$PID", "--signal", "term"}, "kill: {process: {pid: $PID}, signal: term}", ""},
      {"kill", {"--pid", "$PID", "--signal", "SIGUSR1"}, "kill: {process: {pid: $PID}, signal: SIGUSR1}", ""},
      {"kill", {"--pid", "$PID", "--signal", "RTMIN+3"}, "kill: {process: {pid: $PID}, signal: RTMIN+3}", ""},
      {"kill", {"--pid", "$PID", "--signal", "STOP"}, "kill: {process: {pid: $PID}, signal: STOP}", "kill.signal"},
      {"kill", {"--pid", "$PID", "--signal", "CONT"}, "kill: {process: {pid: $PID}, signal: CONT}", "kill.signal"},
      {"kill", {"--pid", "$PID", "--signal", "FOO"}, "kill: {process: {pid: $PID}, signal: FOO}", "kill.signal"},
      {"kill", {"--pid", "$PID", "--signal", "99"}, "kill: {process: {pid: $PID}, signal: 99}", "kill.signal"},
      // pause
      {"pause", {"--pid", "$PID", "--duration", "30s"}, "pause: {process: {pid: $PID}}, duration: 30s", ""},
      {"pause", {"--pid", "$PID", "--mode", "ALL", "--duration", "30s"},
       "pause: {process: {pid: $PID}, mode: ALL}, duration: 30s", ""},
      {"pause", {"--pid", "$PID", "--duration", "0s"}, "pause: {process: {pid: $PID}}, duration: 0s", "duration"},
      {"pause", {"--pid", "$PID", "--duration", "soon"}, "pause: {process: {pid: $PID}}, duration: soon",
       "duration"},
      {"pause", {"--cmdline", "(a)\\1", "--duration", "30s"},
       R"(pause: {process: {cmdline: "(a)\\1"}}, duration: 30s)", "pause.process.cmdline"},
      {"kill", {"--pid", "$PID", "--duration", "30s"}, "kill: {process: {pid: $PID}}, duration: 30s", "duration"},
      // disk-fill
      {"disk-fill", {"--path", "$FILL", "--bytes", "1M", "--duration", "30s"},
       "disk_fill: {path: $FILL, bytes: 1M}, duration: 30s", ""},
      {"disk-fill", {"--path", "$FILL", "--percent", "150", "--duration", "30s"},
       "disk_fill: {path: $FILL, percent: 150}, duration: 30s", "disk_fill.percent"},
      {"disk-fill", {"--path", "$FILL", "--percent", "50", "--bytes", "1M", "--duration", "30s"},
       "disk_fill: {path: $FILL, percent: 50, bytes: 1M}, duration: 30s", "disk_fill.bytes"},
      {"disk-fill", {"--path", "$FILL", "--duration", "30s"}, "disk_fill: {path: $FILL}, duration: 30s",
       "disk_fill.percent"},
      {"disk-fill", {"--path", "var/lib", "--bytes", "1M", "--duration", "30s"},
       "disk_fill: {path: var/lib, bytes: 1M}, duration: 30s", "disk_fill.path"},
      {"disk-fill", {"--path", "$FILL", "--leave-free", "lots", "--duration", "30s"},
       "disk_fill: {path: $FILL, leave_free: lots}, duration: 30s", "disk_fill.leave_free"},
      {"disk-fill", {"--path", "$FILL", "--percent", "lots", "--duration", "30s"},
       "disk_fill: {path: $FILL, percent: lots}, duration: 30s", "disk_fill.percent"},
      // netem (this kernel has no sch_netem: the agent accepts the spec, the host refuses)
      {"netem", {"--interface", "lo", "--delay", "100ms", "--duration", "30s"},
       "netem: {interface: lo, delay: 100ms}, duration: 30s", ""},
      {"netem", {"--delay", "100ms", "--duration", "30s"}, "netem: {delay: 100ms}, duration: 30s",
       "netem.interface"},
      {"netem", {"--interface", "lo", "--delay", "fast", "--duration", "30s"},
       "netem: {interface: lo, delay: fast}, duration: 30s", "netem.delay"},
      {"netem", {"--interface", "lo", "--loss", "150%", "--duration", "30s"},
       "netem: {interface: lo, loss: 150%}, duration: 30s", "netem.loss"},
      {"netem", {"--interface", "lo", "--jitter", "10ms", "--duration", "30s"},
       "netem: {interface: lo, jitter: 10ms}, duration: 30s", "netem.jitter"},
      {"netem", {"--interface", "lo", "--duration", "30s"}, "netem: {interface: lo}, duration: 30s", "netem"},
      {"netem", {"--interface", "lo", "--delay", "1ms", "--to", "10.0.0.0/33", "--duration", "30s"},
       "netem: {interface: lo, delay: 1ms, to: [10.0.0.0/33]}, duration: 30s", "netem.to[0]"},
      {"netem", {"--interface", "lo", "--delay", "1ms", "--netns", "a/b", "--duration", "30s"},
       "netem: {interface: lo, delay: 1ms}, netns: a/b, duration: 30s", "netns"},
      {"netem", {"--interface", "lo", "--delay", "1ms", "--netns", "x", "--netns-pid", "$PID", "--duration", "30s"},
       "netem: {interface: lo, delay: 1ms}, netns: x, netns_pid: $PID, duration: 30s", "netns"},
      // bandwidth
      {"bandwidth", {"--interface", "lo", "--rate", "1mbit", "--duration", "30s"},
       "bandwidth: {interface: lo, rate: 1mbit}, duration: 30s", ""},
      {"bandwidth", {"--interface", "lo", "--duration", "30s"}, "bandwidth: {interface: lo}, duration: 30s",
       "bandwidth.rate"},
      {"bandwidth", {"--interface", "lo", "--rate", "fast", "--duration", "30s"},
       "bandwidth: {interface: lo, rate: fast}, duration: 30s", "bandwidth.rate"},
      // partition
      {"partition", {"--peer", "10.99.0.0/24", "--duration", "30s"},
       "partition: {peers: [10.99.0.0/24]}, duration: 30s", ""},
      {"partition", {"--duration", "30s"}, "partition: {}, duration: 30s", "partition.peers"},
      {"partition", {"--peer", "10.0.0.300", "--duration", "30s"},
       "partition: {peers: [10.0.0.300]}, duration: 30s", "partition.peers[0]"},
      {"partition", {"--peer", "10.99.0.0/24", "--port", "70000", "--duration", "30s"},
       "partition: {peers: [10.99.0.0/24], ports: [70000]}, duration: 30s", "partition.ports[0]"},
      {"partition", {"--peer", "10.99.0.0/24", "--port", "http", "--duration", "30s"},
       "partition: {peers: [10.99.0.0/24], ports: [http]}, duration: 30s", "partition.ports[0]"},
      {"partition", {"--peer", "10.99.0.0/24", "--protocol", "TCP", "--duration", "30s"},
       "partition: {peers: [10.99.0.0/24], protocol: TCP}, duration: 30s", ""},
      {"partition", {"--peer", "10.99.0.0/24", "--protocol", "sctp", "--duration", "30s"},
       "partition: {peers: [10.99.0.0/24], protocol: sctp}, duration: 30s", "partition.protocol"},
      {"partition", {"--peer", "10.99.0.0/24", "--direction", "Ingress", "--reject", "--duration", "30s"},
       "partition: {peers: [10.99.0.0/24], direction: Ingress, reject: true}, duration: 30s", ""},
      {"partition", {"--peer", "10.99.0.0/24", "--direction", "sideways", "--duration", "30s"},
       "partition: {peers: [10.99.0.0/24], direction: sideways}, duration: 30s", "partition.direction"},
      // dns
      {"dns", {"--resolver", "10.99.0.53", "--duration", "30s"}, "dns: {resolvers: [10.99.0.53]}, duration: 30s", ""},
      {"dns", {"--resolver", "resolver-1", "--duration", "30s"},
       "dns: {resolvers: [resolver-1]}, duration: 30s", "dns.resolvers[0]"},
      {"dns", {"--resolver", "10.99.0.53", "--direction", "egress", "--duration", "30s"},
       "dns: {resolvers: [10.99.0.53], direction: egress}, duration: 30s", ""},
  };
  return cases;
}

TEST_F(Agreement, CliValidateAndAgentGiveTheSameAnswer) {
  ASSERT_GE(Cases().size(), 40u);
  int refused = 0;
  for (const Case& c : Cases()) {
    std::vector<std::string> args;
    for (const auto& a : c.args) args.push_back(Expand(a));
    const std::string yaml = ExperimentYaml(Expand(c.yaml));
    const std::string label = fmt::format("{} {} | {}", c.kind, fmt::join(args, " "), Expand(c.yaml));

    auto cli = cli::FaultSpecFromFlags(c.kind, args);
    auto exp = controller::LoadExperiment(yaml);
    EXPECT_EQ(Answer(cli.status()), c.refused) << label << "\n  CLI: " << cli.status();
    EXPECT_EQ(Answer(exp.status()), c.refused) << label << "\n  validate: " << exp.status();

    // The agent takes typed specs only: what the CLI would send, unchecked.
    auto built = cli::FaultSpecFromFlags(c.kind, args, /*validate=*/false);
    if (built.ok()) {
      EXPECT_EQ(AgentAnswer(*built), c.refused) << label << "\n  agent refused it";
      // And the spec validate would send for the experiment entry is the same.
      if (exp.ok()) {
        EXPECT_EQ(controller::FaultSpecFor(*exp, 0).SerializeAsString(), built->SerializeAsString())
            << label;
      }
    } else {
      // Not even a spec (a wrong type, an unknown enum value): nothing could
      // reach the agent, and both text paths refused it.
      EXPECT_FALSE(c.refused.empty()) << label << ": " << built.status();
    }
    if (!c.refused.empty()) ++refused;
  }
  std::printf("%zu cases: %zu accepted, %d refused; %d planned in full by the agent\n",
              Cases().size(), Cases().size() - refused, refused, planned_);
  EXPECT_GE(refused, 20);
  // Most accepted cases went all the way through the agent's plan (the rest
  // were refused by this host: no sch_netem, no nftables for a dry run).
  EXPECT_GE(planned_, 15);
}

}  // namespace
}  // namespace faultline
