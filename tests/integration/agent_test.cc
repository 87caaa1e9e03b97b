// End-to-end tests of faultline-agent: a real agent inside a simulated host
// (own PID and mount namespaces), real victim processes, a tmpfs mounted inside
// the host, gRPC straight to the agent and the `faultline` CLI.
#include <fmt/format.h>
#include <google/protobuf/util/json_util.h>
#include <gtest/gtest.h>
#include <httplib.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/statvfs.h>

#include <chrono>
#include <cmath>
#include <set>
#include <thread>

#include "common/endpoint.h"
#include "common/grpc_status.h"
#include "faultline/v1/agent.grpc.pb.h"
#include "harness/agent_process.h"
#include "harness/sim_host.h"
#include "harness/status_matchers.h"
#include "harness/subprocess.h"
#include "harness/test_dir.h"
#include "tests/unit/metrics/exposition.h"

namespace faultline::itest {
namespace {

using namespace std::chrono_literals;
using faultline::v1::FaultRecord;
using faultline::v1::FaultSpec;
using faultline::v1::InjectRequest;
using faultline::v1::InjectResponse;

using Clock = std::chrono::steady_clock;

double Seconds(Clock::duration d) { return std::chrono::duration<double>(d).count(); }

// Blocks used / total of the filesystem at `path` (seen from the test).
struct DiskUsage {
  uint64_t used_blocks = 0;
  uint64_t total_blocks = 0;
  double percent() const {
    return total_blocks == 0 ? 0 : 100.0 * static_cast<double>(used_blocks) / total_blocks;
  }
};
DiskUsage Usage(const std::string& path) {
  struct statvfs s {};
  DiskUsage u;
  if (statvfs(path.c_str(), &s) != 0) return u;
  u.total_blocks = s.f_blocks;
  u.used_blocks = s.f_blocks - s.f_bfree;
  return u;
}

FaultSpec PauseSpec(const std::string& name, const std::string& duration) {
  FaultSpec s;
  s.mutable_pause()->mutable_process()->set_name(name);
  s.set_duration(duration);
  return s;
}

FaultSpec KillSpec(const std::string& name) {
  FaultSpec s;
  s.mutable_kill()->mutable_process()->set_name(name);
  return s;
}

FaultSpec DiskFillSpec(const std::string& path, double percent, const std::string& duration) {
  FaultSpec s;
  s.mutable_disk_fill()->set_path(path);
  s.mutable_disk_fill()->set_percent(percent);
  s.set_duration(duration);
  return s;
}

std::string Describe(const grpc::Status& s) {
  return std::string(GrpcCodeName(s.error_code())) + ": " + s.error_message();
}

// A test with a temp dir, one simulated host and (once started) an agent in it.
class AgentTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto dir = TestDir::Create("agent");
    ASSERT_TRUE(dir.ok()) << dir.status().message();
    dir_ = std::move(*dir);
    // Its own network namespace: network fault kinds check and sweep the
    // namespace the agent runs in, which must never be the machine's.
    auto host = SimHost::Create("host", HostNet::kPrivate);
    ASSERT_TRUE(host.ok()) << host.status().message();
    host_ = std::move(*host);
  }

  // For the tests that dial TCP on the machine's loopback: the host then shares
  // the test's network namespace, so its agent gets a policy holding only the
  // kinds that never touch networking (no network check or sweep can then reach
  // the machine's own qdiscs or nftables ruleset). Returns the --policy flags.
  absl::StatusOr<std::vector<std::string>> UseLoopbackHost() {
    host_.reset();
    auto host = SimHost::Create("host", HostNet::kShared);
    if (!host.ok()) return host.status();
    host_ = std::move(*host);
    absl::Status st = dir_->WriteFile("loopback-policy.yaml",
                                      "allowed_kinds: [kill, pause, disk-fill]\n"
                                      "disk_fill_allow_tmpfs: true\n");
    if (!st.ok()) return st;
    return std::vector<std::string>{"--policy", dir_->Path("loopback-policy.yaml")};
  }

  void TearDown() override {
    if (HasFailure() && agent_ != nullptr) {
      std::printf("agent log:\n%s\n", agent_->Log().c_str());
    }
  }

  absl::Status StartAgent(AgentOptions options = {}) {
    auto agent = AgentProcess::Start(*host_, *dir_, std::move(options));
    if (!agent.ok()) return agent.status();
    agent_ = std::move(*agent);
    return absl::OkStatus();
  }

  // An agent whose policy lets disk fills use tmpfs (the tests fill tmpfs, which
  // the default policy refuses), followed by `more_policy` (YAML lines).
  absl::Status StartFillAgent(const std::string& more_policy = "") {
    absl::Status st =
        dir_->WriteFile("fill-policy.yaml", "disk_fill_allow_tmpfs: true\n" + more_policy);
    if (!st.ok()) return st;
    AgentOptions o;
    o.args = {"--policy", dir_->Path("fill-policy.yaml")};
    return StartAgent(std::move(o));
  }

  // Starts a copy of sleep named `comm` inside the host.
  absl::StatusOr<HostProcess> StartVictim(const std::string& comm) {
    auto binary = MakeVictimBinary(*dir_, comm);
    if (!binary.ok()) return binary.status();
    auto exec = host_->Exec({*binary, "600"});
    if (!exec.ok()) return exec.status();
    auto found = host_->Find(**exec);
    if (!found.ok()) return found.status();
    victims_.push_back(std::move(*exec));
    return *found;
  }

  // A tmpfs of `size` mounted in the host at <dir>/mnt; returns its host path.
  absl::StatusOr<std::string> MountTmpfs(const std::string& size = "16M") {
    std::string mnt = dir_->Path("mnt");
    absl::Status s = host_->MountTmpfs(mnt, size);
    if (!s.ok()) return s;
    return mnt;
  }

  grpc::Status Inject(const FaultSpec& spec, InjectResponse* response,
                      const std::string& lease_id = "", int64_t lease_ttl_ms = 0) {
    InjectRequest req;
    *req.mutable_spec() = spec;
    req.set_lease_id(lease_id);
    req.set_lease_ttl_ms(lease_ttl_ms);
    req.set_owner("fltest");
    auto ctx = ContextWithDeadline(15s);
    return agent_->stub().Inject(ctx.get(), req, response);
  }

  // Faults ListFaults reports in state ACTIVE (or PENDING).
  std::vector<FaultRecord> ActiveFaults() {
    faultline::v1::ListFaultsRequest req;
    faultline::v1::ListFaultsResponse resp;
    auto ctx = ContextWithDeadline(10s);
    grpc::Status s = agent_->stub().ListFaults(ctx.get(), req, &resp);
    EXPECT_TRUE(s.ok()) << Describe(s);
    std::vector<FaultRecord> out;
    for (const auto& f : resp.faults()) {
      if (f.state() == faultline::v1::FAULT_STATE_ACTIVE ||
          f.state() == faultline::v1::FAULT_STATE_PENDING) {
        out.push_back(f);
      }
    }
    return out;
  }

  CommandResult Cli(const std::vector<std::string>& args, const std::string& address = "") {
    auto cli = CliBinary();
    if (!cli.ok()) {
      CommandResult r;
      r.start_error = std::string(cli.status().message());
      return r;
    }
    std::vector<std::string> argv = {*cli, "--agent",
                                     address.empty() ? agent_->address() : address};
    argv.insert(argv.end(), args.begin(), args.end());
    return RunCommand(argv, 30s);
  }

  std::unique_ptr<TestDir> dir_;
  std::unique_ptr<SimHost> host_;
  std::vector<std::unique_ptr<Subprocess>> victims_;
  std::unique_ptr<AgentProcess> agent_;
};

bool Paused(const HostProcess& p) { return ProcessState(p.outer_pid) == 'T'; }
bool Running(const HostProcess& p) {
  char s = ProcessState(p.outer_pid);
  return s == 'S' || s == 'R';
}

TEST_F(AgentTest, InfoAnswersWithNameLabelsAndCapabilities) {
  AgentOptions o;
  o.args = {"--name", "fltest-info", "--label", "zone=a"};
  ASSERT_OK(StartAgent(o));
  faultline::v1::InfoResponse info;
  ASSERT_OK(WaitForInfo(agent_->stub(), 5s, &info));
  EXPECT_EQ(info.name(), "fltest-info");
  EXPECT_EQ(info.labels().at("zone"), "a");
  EXPECT_FALSE(info.version().empty());
  std::set<std::string> caps(info.capabilities().begin(), info.capabilities().end());
  EXPECT_TRUE(caps.count("kill") && caps.count("pause") && caps.count("disk-fill"))
      << info.ShortDebugString();
  EXPECT_GT(info.clock().realtime_ns(), 0);
  // The agent runs inside the host: it reports its pid there.
  EXPECT_EQ(info.pid(), agent_->inner_pid());
}

TEST_F(AgentTest, PauseResumesAtDeadline) {
  ASSERT_OK(StartAgent());
  ASSERT_OK_AND_ASSIGN(HostProcess victim, StartVictim("flpause"));
  ASSERT_OK_AND_ASSIGN(HostProcess bystander, StartVictim("flbystander"));
  InjectResponse resp;
  const auto t0 = Clock::now();
  grpc::Status s = Inject(PauseSpec("flpause", "2s"), &resp);
  ASSERT_TRUE(s.ok()) << Describe(s);
  EXPECT_EQ(resp.fault().state(), faultline::v1::FAULT_STATE_ACTIVE);
  EXPECT_FALSE(resp.fault().id().empty());
  ASSERT_EQ(resp.fault().processes_size(), 1) << resp.fault().ShortDebugString();
  EXPECT_EQ(resp.fault().processes(0).pid(), victim.inner_pid);
  EXPECT_GT(resp.fault().deadline_unix_ns(), resp.fault().injected_unix_ns());

  EXPECT_TRUE(WaitFor([&] { return Paused(victim); }, 1s)) << ProcessState(victim.outer_pid);
  EXPECT_TRUE(Running(bystander));
  ASSERT_EQ(ActiveFaults().size(), 1u);
  // Still paused shortly before the deadline...
  std::this_thread::sleep_until(t0 + 1500ms);
  EXPECT_TRUE(Paused(victim)) << "resumed before its deadline";
  // ...and running again within deadline + 1.5 s.
  EXPECT_TRUE(WaitFor([&] { return Running(victim); }, (t0 + 3500ms) - Clock::now()))
      << "state " << ProcessState(victim.outer_pid) << " "
      << Seconds(Clock::now() - t0) << "s after inject";
  EXPECT_TRUE(WaitFor([&] { return ActiveFaults().empty(); }, 1s));
  EXPECT_TRUE(ProcessAlive(victim.outer_pid));
}

TEST_F(AgentTest, RevertByIdResumesAtOnce) {
  ASSERT_OK(StartAgent());
  ASSERT_OK_AND_ASSIGN(HostProcess victim, StartVictim("flpause"));
  InjectResponse resp;
  grpc::Status s = Inject(PauseSpec("flpause", "10m"), &resp);
  ASSERT_TRUE(s.ok()) << Describe(s);
  ASSERT_TRUE(WaitFor([&] { return Paused(victim); }, 1s));
  faultline::v1::RevertRequest req;
  req.set_id(resp.fault().id());
  faultline::v1::RevertResponse rresp;
  auto ctx = ContextWithDeadline(10s);
  s = agent_->stub().Revert(ctx.get(), req, &rresp);
  ASSERT_TRUE(s.ok()) << Describe(s);
  EXPECT_EQ(rresp.fault().state(), faultline::v1::FAULT_STATE_REVERTED);
  EXPECT_TRUE(WaitFor([&] { return Running(victim); }, 500ms));
  EXPECT_TRUE(ActiveFaults().empty());
}

TEST_F(AgentTest, KillSignalsOnlyMatchingProcesses) {
  ASSERT_OK(StartAgent());
  ASSERT_OK_AND_ASSIGN(HostProcess a, StartVictim("flkill"));
  ASSERT_OK_AND_ASSIGN(HostProcess b, StartVictim("flkill"));
  ASSERT_OK_AND_ASSIGN(HostProcess bystander, StartVictim("flbystander"));
  FaultSpec spec = KillSpec("flkill");
  spec.mutable_kill()->set_mode(faultline::v1::SELECTION_MODE_ALL);
  InjectResponse resp;
  grpc::Status s = Inject(spec, &resp);
  ASSERT_TRUE(s.ok()) << Describe(s);
  EXPECT_EQ(resp.fault().state(), faultline::v1::FAULT_STATE_DONE);
  std::set<int> pids;
  for (const auto& p : resp.fault().processes()) pids.insert(p.pid());
  EXPECT_EQ(pids, (std::set<int>{a.inner_pid, b.inner_pid}));
  EXPECT_TRUE(WaitFor([&] { return !ProcessAlive(a.outer_pid) && !ProcessAlive(b.outer_pid); },
                      2s));
  EXPECT_TRUE(ProcessAlive(bystander.outer_pid));
  EXPECT_TRUE(ActiveFaults().empty()) << "a kill leaves nothing to revert";
}

TEST_F(AgentTest, KillModeOneTakesExactlyOneWithTheGivenSignal) {
  ASSERT_OK(StartAgent());
  ASSERT_OK_AND_ASSIGN(HostProcess a, StartVictim("flkill"));
  ASSERT_OK_AND_ASSIGN(HostProcess b, StartVictim("flkill"));
  FaultSpec spec = KillSpec("flkill");
  spec.mutable_kill()->set_mode(faultline::v1::SELECTION_MODE_ONE);
  spec.mutable_kill()->set_signal("TERM");
  InjectResponse resp;
  grpc::Status s = Inject(spec, &resp);
  ASSERT_TRUE(s.ok()) << Describe(s);
  ASSERT_EQ(resp.fault().processes_size(), 1);
  const bool took_a = resp.fault().processes(0).pid() == a.inner_pid;
  const HostProcess& gone = took_a ? a : b;
  const HostProcess& kept = took_a ? b : a;
  EXPECT_TRUE(WaitFor([&] { return !ProcessAlive(gone.outer_pid); }, 2s));
  std::this_thread::sleep_for(200ms);
  EXPECT_TRUE(ProcessAlive(kept.outer_pid));
}

TEST_F(AgentTest, DiskFillViaCliAndRevertAll) {
  ASSERT_OK_AND_ASSIGN(std::string mnt, MountTmpfs("16M"));
  const std::string outside = host_->OutsidePath(mnt);
  const DiskUsage before = Usage(outside);
  ASSERT_GT(before.total_blocks, 0u);
  ASSERT_OK(StartFillAgent());
  CommandResult r = Cli({"inject", "disk-fill", "--path", mnt, "--percent", "90",
                         "--duration", "60s"});
  ASSERT_TRUE(r.ok()) << r.Describe();
  const DiskUsage filled = Usage(outside);
  EXPECT_GE(filled.percent(), 90.0) << "used " << filled.used_blocks << "/" << filled.total_blocks;
  EXPECT_LT(filled.percent(), 100.0);

  CommandResult faults = Cli({"faults"});
  ASSERT_TRUE(faults.ok()) << faults.Describe();
  EXPECT_NE(faults.out.find("disk-fill"), std::string::npos) << faults.out;

  CommandResult json = Cli({"-o", "json", "faults"});
  ASSERT_TRUE(json.ok()) << json.Describe();
  // The kind is the spec's oneof member (`"disk_fill": {...}`), not a name.
  faultline::v1::ListFaultsResponse listed;
  google::protobuf::util::JsonParseOptions json_options;
  json_options.ignore_unknown_fields = true;
  ASSERT_TRUE(google::protobuf::util::JsonStringToMessage(json.out, &listed, json_options).ok())
      << json.out;
  ASSERT_EQ(listed.faults_size(), 1) << json.out;
  EXPECT_TRUE(listed.faults(0).spec().has_disk_fill()) << json.out;
  EXPECT_EQ(json.out.find_first_not_of(" \n"), json.out.find_first_of("{["));

  CommandResult revert = Cli({"revert", "--all"});
  ASSERT_TRUE(revert.ok()) << revert.Describe();
  EXPECT_TRUE(WaitFor([&] { return Usage(outside).used_blocks == before.used_blocks; }, 2s))
      << "used " << Usage(outside).used_blocks << " blocks, " << before.used_blocks
      << " before the fill";
  EXPECT_TRUE(ActiveFaults().empty());
}

TEST_F(AgentTest, DiskFillLeaveFreeAndBytes) {
  ASSERT_OK_AND_ASSIGN(std::string mnt, MountTmpfs("16M"));
  const std::string outside = host_->OutsidePath(mnt);
  struct statvfs sv {};
  ASSERT_EQ(statvfs(outside.c_str(), &sv), 0);
  ASSERT_OK(StartFillAgent());
  const uint64_t block = sv.f_frsize;

  FaultSpec spec;
  spec.mutable_disk_fill()->set_path(mnt);
  spec.mutable_disk_fill()->set_bytes("4M");
  spec.set_duration("60s");
  InjectResponse resp;
  grpc::Status s = Inject(spec, &resp);
  ASSERT_TRUE(s.ok()) << Describe(s);
  EXPECT_NEAR(static_cast<double>(Usage(outside).used_blocks * block), 4.0 * (1 << 20),
              64.0 * 1024);
  EXPECT_EQ(resp.fault().disk_fill().bytes(), 4u << 20);
  EXPECT_FALSE(resp.fault().disk_fill().file().empty());

  spec.mutable_disk_fill()->clear_bytes();
  spec.mutable_disk_fill()->set_leave_free("2M");
  s = Inject(spec, &resp);
  ASSERT_TRUE(s.ok()) << Describe(s);
  ASSERT_EQ(statvfs(outside.c_str(), &sv), 0);
  EXPECT_NEAR(static_cast<double>(sv.f_bavail * sv.f_frsize), 2.0 * (1 << 20), 64.0 * 1024);

  faultline::v1::RevertAllRequest req;
  faultline::v1::RevertAllResponse all;
  auto ctx = ContextWithDeadline(10s);
  s = agent_->stub().RevertAll(ctx.get(), req, &all);
  ASSERT_TRUE(s.ok()) << Describe(s);
  EXPECT_EQ(all.faults_size(), 2);
  EXPECT_EQ(Usage(outside).used_blocks, 0u);
}

TEST_F(AgentTest, SigkilledAgentRevertsPauseAndDiskFillOnRestart) {
  ASSERT_OK_AND_ASSIGN(std::string mnt, MountTmpfs("16M"));
  const std::string outside = host_->OutsidePath(mnt);
  const DiskUsage before = Usage(outside);
  ASSERT_OK(StartFillAgent());
  ASSERT_OK_AND_ASSIGN(HostProcess victim, StartVictim("flpause"));
  InjectResponse resp;
  grpc::Status s = Inject(PauseSpec("flpause", "10m"), &resp);
  ASSERT_TRUE(s.ok()) << Describe(s);
  s = Inject(DiskFillSpec(mnt, 90, "10m"), &resp);
  ASSERT_TRUE(s.ok()) << Describe(s);
  ASSERT_TRUE(WaitFor([&] { return Paused(victim); }, 1s));
  ASSERT_GE(Usage(outside).percent(), 90.0);

  ASSERT_OK(agent_->Kill());
  // A SIGKILLed agent cleans nothing up: the faults outlive it.
  std::this_thread::sleep_for(300ms);
  EXPECT_TRUE(Paused(victim));
  EXPECT_GE(Usage(outside).percent(), 90.0);

  const auto t0 = Clock::now();
  ASSERT_OK(agent_->Restart());
  const auto ready = Clock::now();
  // Both undone within 2 s of the restart.
  EXPECT_TRUE(WaitFor([&] { return Running(victim); }, t0 + 2s - Clock::now()))
      << "victim still " << ProcessState(victim.outer_pid) << " 2 s after the restart";
  EXPECT_TRUE(WaitFor([&] { return Usage(outside).used_blocks == before.used_blocks; },
                      t0 + 2s - Clock::now()))
      << "fill still " << Usage(outside).percent() << "% 2 s after the restart";
  std::printf("restart: answered after %.3f s, reverted %.3f s after start\n",
              Seconds(ready - t0), Seconds(Clock::now() - t0));
  EXPECT_TRUE(ActiveFaults().empty());
  EXPECT_TRUE(ProcessAlive(victim.outer_pid));
}

TEST_F(AgentTest, RevertAllFlagRevertsOffline) {
  ASSERT_OK(StartAgent());
  ASSERT_OK_AND_ASSIGN(HostProcess victim, StartVictim("flpause"));
  InjectResponse resp;
  grpc::Status s = Inject(PauseSpec("flpause", "10m"), &resp);
  ASSERT_TRUE(s.ok()) << Describe(s);
  ASSERT_TRUE(WaitFor([&] { return Paused(victim); }, 1s));
  ASSERT_OK(agent_->Kill());
  ASSERT_OK_AND_ASSIGN(std::string agent_bin, AgentBinary());
  CommandResult r =
      host_->Run({agent_bin, "--revert-all", "--state-dir", agent_->state_dir()}, 30s);
  EXPECT_TRUE(r.ok()) << r.Describe();
  EXPECT_TRUE(WaitFor([&] { return Running(victim); }, 500ms));
}

TEST_F(AgentTest, UnrenewedLeaseRevertsRenewedLeaseHolds) {
  ASSERT_OK(StartAgent());
  ASSERT_OK_AND_ASSIGN(HostProcess lapsed, StartVictim("fllapsed"));
  ASSERT_OK_AND_ASSIGN(HostProcess held, StartVictim("flheld"));
  InjectResponse resp;
  const auto t0 = Clock::now();
  grpc::Status s = Inject(PauseSpec("fllapsed", "60s"), &resp, "fltest-lease-a", 1000);
  ASSERT_TRUE(s.ok()) << Describe(s);
  EXPECT_EQ(resp.fault().lease_id(), "fltest-lease-a");
  s = Inject(PauseSpec("flheld", "60s"), &resp, "fltest-lease-b", 1000);
  ASSERT_TRUE(s.ok()) << Describe(s);
  ASSERT_TRUE(WaitFor([&] { return Paused(lapsed) && Paused(held); }, 1s));

  // Renew lease b every 300 ms for 3.6 s; lease a is never renewed.
  std::optional<double> lapsed_resumed_at;
  auto last_renewal = Clock::now();
  for (int i = 0; i < 12; ++i) {
    faultline::v1::RenewLeaseRequest req;
    req.set_lease_id("fltest-lease-b");
    req.set_ttl_ms(1000);
    faultline::v1::RenewLeaseResponse rr;
    auto ctx = ContextWithDeadline(2s);
    s = agent_->stub().RenewLease(ctx.get(), req, &rr);
    ASSERT_TRUE(s.ok()) << Describe(s);
    EXPECT_EQ(rr.faults(), 1);
    last_renewal = Clock::now();
    const auto next = last_renewal + 300ms;
    while (Clock::now() < next) {
      if (!lapsed_resumed_at && Running(lapsed)) lapsed_resumed_at = Seconds(Clock::now() - t0);
      std::this_thread::sleep_for(10ms);
    }
    EXPECT_TRUE(Paused(held)) << "renewed lease reverted after " << Seconds(Clock::now() - t0)
                              << " s";
  }
  ASSERT_TRUE(lapsed_resumed_at.has_value()) << "unrenewed lease never reverted";
  EXPECT_LE(*lapsed_resumed_at, 2.5) << "lease TTL 1 s, reverted after " << *lapsed_resumed_at;
  EXPECT_GE(*lapsed_resumed_at, 0.9) << "reverted before its TTL";
  // Once renewals stop, lease b lapses too.
  EXPECT_TRUE(WaitFor([&] { return Running(held); }, 2500ms - (Clock::now() - last_renewal)));
  EXPECT_TRUE(ActiveFaults().empty());
}

TEST_F(AgentTest, SigtermRevertsEverythingBeforeExit) {
  ASSERT_OK_AND_ASSIGN(std::string mnt, MountTmpfs("16M"));
  const std::string outside = host_->OutsidePath(mnt);
  const DiskUsage before = Usage(outside);
  ASSERT_OK(StartFillAgent());
  ASSERT_OK_AND_ASSIGN(HostProcess victim, StartVictim("flpause"));
  InjectResponse resp;
  grpc::Status s = Inject(PauseSpec("flpause", "10m"), &resp);
  ASSERT_TRUE(s.ok()) << Describe(s);
  s = Inject(DiskFillSpec(mnt, 90, "10m"), &resp);
  ASSERT_TRUE(s.ok()) << Describe(s);
  ASSERT_TRUE(WaitFor([&] { return Paused(victim); }, 1s));

  ASSERT_OK_AND_ASSIGN(int code, agent_->Terminate(15s));
  EXPECT_EQ(code, 0);
  // Checked right after the exit: SIGCONT and unlink are synchronous.
  EXPECT_TRUE(Running(victim)) << "victim " << ProcessState(victim.outer_pid);
  EXPECT_EQ(Usage(outside).used_blocks, before.used_blocks);
}

TEST_F(AgentTest, MutualTlsServesOnlyClientsOfItsCa) {
  ASSERT_OK_AND_ASSIGN(std::vector<std::string> policy, UseLoopbackHost());
  ASSERT_OK_AND_ASSIGN(TestCerts certs, MakeTestCerts(*dir_));
  ASSERT_OK_AND_ASSIGN(int port, PickFreePort());
  const std::string tcp = "127.0.0.1:" + std::to_string(port);
  AgentOptions o;
  o.listen = {tcp};
  o.args = {"--tls-cert", certs.server_cert, "--tls-key", certs.server_key, "--tls-ca", certs.ca};
  o.args.insert(o.args.end(), policy.begin(), policy.end());
  o.client_tls = certs.Client();
  ASSERT_OK(StartAgent(o));  // Start() waits for Info over mTLS with the good client
  faultline::v1::InfoResponse info;
  EXPECT_OK(WaitForInfo(agent_->stub(), 3s, &info));

  auto info_with = [&](std::shared_ptr<grpc::ChannelCredentials> creds) {
    auto ch = grpc::CreateChannel(tcp, creds);
    auto stub = faultline::v1::Agent::NewStub(ch);
    auto ctx = ContextWithDeadline(3s);
    faultline::v1::InfoRequest req;
    faultline::v1::InfoResponse resp;
    return stub->Info(ctx.get(), req, &resp);
  };
  ASSERT_OK_AND_ASSIGN(std::string ca_pem, ReadFileToString(certs.ca));
  grpc::SslCredentialsOptions no_cert;
  no_cert.pem_root_certs = ca_pem;
  grpc::Status s = info_with(grpc::SslCredentials(no_cert));
  EXPECT_FALSE(s.ok()) << "served a client without a certificate";
  // Refused in the handshake, not by a timeout.
  EXPECT_EQ(s.error_code(), grpc::StatusCode::UNAVAILABLE) << Describe(s);

  grpc::SslCredentialsOptions other;
  other.pem_root_certs = ca_pem;
  ASSERT_OK_AND_ASSIGN(other.pem_cert_chain, ReadFileToString(certs.other_client_cert));
  ASSERT_OK_AND_ASSIGN(other.pem_private_key, ReadFileToString(certs.other_client_key));
  s = info_with(grpc::SslCredentials(other));
  EXPECT_FALSE(s.ok()) << "served a client whose certificate is from another CA";
  EXPECT_EQ(s.error_code(), grpc::StatusCode::UNAVAILABLE) << Describe(s);

  s = info_with(grpc::InsecureChannelCredentials());
  EXPECT_FALSE(s.ok()) << "served a plaintext client on a TLS port";

  // The CLI with the good client certificate is served too.
  CommandResult r = Cli({"--tls-cert", certs.client_cert, "--tls-key", certs.client_key,
                         "--tls-ca", certs.ca, "info"});
  EXPECT_TRUE(r.ok()) << r.Describe();
}

TEST_F(AgentTest, TcpWithoutTlsOrInsecureRefusesToStart) {
  ASSERT_OK_AND_ASSIGN(std::vector<std::string> policy, UseLoopbackHost());
  ASSERT_OK_AND_ASSIGN(int port, PickFreePort());
  ASSERT_OK_AND_ASSIGN(std::string agent_bin, AgentBinary());
  ASSERT_OK_AND_ASSIGN(std::string state, dir_->MakeSubdir("state"));
  CommandResult r = host_->Run({agent_bin, "--listen", "127.0.0.1:" + std::to_string(port),
                                "--state-dir", state, policy[0], policy[1]},
                               20s);
  EXPECT_FALSE(r.timed_out) << "the agent started serving plain TCP";
  EXPECT_NE(r.exit_code, 0) << r.Describe();
  const std::string all = r.out + r.err;
  EXPECT_TRUE(all.find("--insecure") != std::string::npos || all.find("tls") != std::string::npos)
      << "no hint about TLS/--insecure: " << r.Describe();
}

// Flags the agent cannot use are refused at once, naming the flag, before it
// opens its state folder, recovers, or binds a socket: a bad --controller or
// --advertise used to be found only after it had started serving; a FIFO as
// --audit-log used to block open() for ever; a FIFO or a file as --state-dir
// said only "mkdir .../ledger: Not a directory".
TEST_F(AgentTest, UnusableFlagsAreRefusedBeforeAnythingStarts) {
  ASSERT_OK_AND_ASSIGN(std::vector<std::string> policy, UseLoopbackHost());
  ASSERT_OK_AND_ASSIGN(std::string agent_bin, AgentBinary());
  const std::string fifo = dir_->Path("flag-fifo");
  ASSERT_EQ(::mkfifo(fifo.c_str(), 0600), 0);
  ASSERT_OK(dir_->WriteFile("flag-file", "x"));
  struct Case {
    std::vector<std::string> args;
    std::string names;
  };
  const std::vector<Case> cases = {
      {{"--controller", "10.88.0.2:99999", "--advertise", "10.88.0.11:7601", "--name", "ok"},
       "--controller"},
      {{"--controller", "10.88.0.2:7500", "--advertise", "x y", "--name", "ok"}, "--advertise"},
      {{"--controller", "10.88.0.2:7500", "--name", "ok"}, "--advertise"},
      {{"--audit-log", fifo}, "--audit-log"},
      {{"--audit-log", dir_->path()}, "--audit-log"},
  };
  for (size_t i = 0; i < cases.size() + 2; ++i) {
    // The last two runs give a FIFO, then a file, as --state-dir.
    std::string state = i == cases.size() ? fifo : dir_->Path("flag-file");
    if (i < cases.size()) state = dir_->Path(fmt::format("flag-state-{}", i));
    const std::string names = i < cases.size() ? cases[i].names : "--state-dir " + state;
    const std::string sock = dir_->Path(fmt::format("flag-{}.sock", i));
    std::vector<std::string> argv = {agent_bin, "--listen", "unix:" + sock, "--state-dir", state,
                                     policy[0], policy[1]};
    if (i < cases.size()) argv.insert(argv.end(), cases[i].args.begin(), cases[i].args.end());
    const auto start = Clock::now();
    CommandResult r = host_->Run(argv, 20s);
    EXPECT_FALSE(r.timed_out) << names << ": " << r.Describe();
    EXPECT_LT(Clock::now() - start, 5s) << names;
    EXPECT_NE(r.exit_code, 0) << r.Describe();
    EXPECT_NE(r.err.find(names), std::string::npos) << names << ": " << r.Describe();
    struct stat st {};
    EXPECT_NE(::lstat(sock.c_str(), &st), 0) << names << ": the socket was bound";
    if (i < cases.size()) {
      EXPECT_NE(::lstat(state.c_str(), &st), 0) << names << ": the state folder was made";
    }
  }
}

TEST_F(AgentTest, InsecureTcpPauseKillAndDiskFillThroughCli) {
  ASSERT_OK_AND_ASSIGN(std::vector<std::string> policy, UseLoopbackHost());
  ASSERT_OK_AND_ASSIGN(std::string mnt, MountTmpfs("16M"));
  const std::string outside = host_->OutsidePath(mnt);
  const DiskUsage before = Usage(outside);
  ASSERT_OK_AND_ASSIGN(int port, PickFreePort());
  const std::string tcp = "127.0.0.1:" + std::to_string(port);
  AgentOptions o;
  o.listen = {tcp};
  o.args = {"--insecure", policy[0], policy[1]};
  o.client_insecure = true;
  ASSERT_OK(StartAgent(o));
  ASSERT_OK_AND_ASSIGN(HostProcess victim, StartVictim("fldemo"));

  CommandResult info = Cli({"--insecure", "info"});
  ASSERT_TRUE(info.ok()) << info.Describe();

  const auto t0 = Clock::now();
  CommandResult r = Cli({"--insecure", "inject", "pause", "--process-name", "fldemo",
                         "--duration", "2s"});
  ASSERT_TRUE(r.ok()) << r.Describe();
  EXPECT_TRUE(WaitFor([&] { return Paused(victim); }, 1s));
  std::this_thread::sleep_until(t0 + 1500ms);
  EXPECT_TRUE(Paused(victim));
  EXPECT_TRUE(WaitFor([&] { return Running(victim); }, (t0 + 3500ms) - Clock::now()));

  r = Cli({"--insecure", "inject", "kill", "--process-name", "fldemo"});
  ASSERT_TRUE(r.ok()) << r.Describe();
  EXPECT_TRUE(WaitFor([&] { return !ProcessAlive(victim.outer_pid); }, 2s));

  r = Cli({"--insecure", "inject", "disk-fill", "--path", mnt, "--percent", "90", "--duration",
           "60s"});
  ASSERT_TRUE(r.ok()) << r.Describe();
  EXPECT_GE(Usage(outside).percent(), 90.0);
  r = Cli({"--insecure", "revert", "--all"});
  ASSERT_TRUE(r.ok()) << r.Describe();
  EXPECT_TRUE(WaitFor([&] { return Usage(outside).used_blocks == before.used_blocks; }, 2s));
}

TEST_F(AgentTest, CliRejectsPercentOver100WithTheServersMessage) {
  ASSERT_OK_AND_ASSIGN(std::string mnt, MountTmpfs("16M"));
  const DiskUsage before = Usage(host_->OutsidePath(mnt));
  ASSERT_OK(StartAgent());
  CommandResult r =
      Cli({"inject", "disk-fill", "--path", mnt, "--percent", "150", "--duration", "60s"});
  EXPECT_FALSE(r.start_error.size()) << r.start_error;
  EXPECT_NE(r.exit_code, 0) << r.Describe();
  EXPECT_NE((r.out + r.err).find("percent"), std::string::npos) << r.Describe();
  EXPECT_EQ(Usage(host_->OutsidePath(mnt)).used_blocks, before.used_blocks);
  EXPECT_TRUE(ActiveFaults().empty());
}

struct BadInput {
  std::string label;
  FaultSpec spec;
  std::set<grpc::StatusCode> codes;
  std::string field;  // the message must name it
};

TEST_F(AgentTest, BadInputsAreRefusedAndChangeNothing) {
  ASSERT_OK_AND_ASSIGN(std::string mnt, MountTmpfs("16M"));
  const std::string outside = host_->OutsidePath(mnt);
  const DiskUsage before = Usage(outside);
  ASSERT_OK(StartAgent());
  ASSERT_OK_AND_ASSIGN(HostProcess victim, StartVictim("flvictim"));
  const std::set<grpc::StatusCode> kInvalid = {grpc::StatusCode::INVALID_ARGUMENT};
  const std::set<grpc::StatusCode> kRefused = {grpc::StatusCode::INVALID_ARGUMENT,
                                               grpc::StatusCode::FAILED_PRECONDITION,
                                               grpc::StatusCode::PERMISSION_DENIED};
  std::vector<BadInput> cases;
  cases.push_back({"percent 150", DiskFillSpec(mnt, 150, "60s"), kInvalid, "percent"});
  cases.push_back({"percent 0", DiskFillSpec(mnt, 0, "60s"), kInvalid, "percent"});
  {
    FaultSpec s = PauseSpec("flvictim", "30s");
    s.clear_kind();  // no kind set (a kind this build does not know arrives as none)
    cases.push_back({"no kind", s, kInvalid, "kind"});
  }
  cases.push_back({"pause without duration", PauseSpec("flvictim", ""), kInvalid, "duration"});
  cases.push_back({"bad duration", PauseSpec("flvictim", "ten seconds"), kInvalid, "duration"});
  cases.push_back({"negative duration", PauseSpec("flvictim", "-5s"), kInvalid, "duration"});
  {
    FaultSpec s = PauseSpec("", "30s");
    s.mutable_pause()->clear_process();
    cases.push_back({"missing selector", s, kInvalid, "process"});
  }
  {
    FaultSpec s = KillSpec("");
    s.mutable_kill()->mutable_process()->set_cmdline("([unclosed");
    cases.push_back({"regex error", s, kInvalid, "cmdline"});
  }
  {
    FaultSpec s = KillSpec("");
    s.mutable_kill()->mutable_process()->set_pid(1);
    cases.push_back({"pid 1", s, kRefused, "process.pid"});
  }
  {
    FaultSpec s = KillSpec("flvictim");
    s.mutable_kill()->set_signal("BOGUS");
    cases.push_back({"unknown signal", s, kInvalid, "signal"});
  }
  {
    FaultSpec s = PauseSpec("flvictim", "30s");
    // Text modes are refused by the CLI and YAML; over gRPC an unknown enum
    // number (proto3 enums are open) is the bad mode.
    s.mutable_pause()->set_mode(static_cast<faultline::v1::SelectionMode>(99));
    cases.push_back({"unknown mode", s, kInvalid, "mode"});
  }
  cases.push_back({"disk-fill path missing", DiskFillSpec(dir_->Path("no-such-dir"), 50, "60s"),
                   kRefused, "path"});
  cases.push_back({"disk-fill without path", DiskFillSpec("", 50, "60s"), kInvalid, "path"});
  {
    FaultSpec s = DiskFillSpec(mnt, 50, "60s");
    s.mutable_disk_fill()->clear_percent();
    cases.push_back({"disk-fill without amount", s, kInvalid, "percent"});
  }
  {
    FaultSpec s = DiskFillSpec(mnt, 50, "60s");
    s.mutable_disk_fill()->clear_percent();
    s.mutable_disk_fill()->set_bytes("lots");
    cases.push_back({"disk-fill bad size", s, kInvalid, "bytes"});
  }

  for (const BadInput& c : cases) {
    SCOPED_TRACE(c.label);
    InjectResponse resp;
    grpc::Status s = Inject(c.spec, &resp);
    EXPECT_FALSE(s.ok()) << "accepted: " << resp.ShortDebugString();
    EXPECT_TRUE(c.codes.count(s.error_code())) << Describe(s);
    EXPECT_NE(s.error_message().find(c.field), std::string::npos)
        << "message does not name `" << c.field << "`: " << s.error_message();
  }
  EXPECT_TRUE(ActiveFaults().empty());
  EXPECT_TRUE(Running(victim)) << "victim " << ProcessState(victim.outer_pid);
  EXPECT_TRUE(ProcessAlive(host_->init_pid()));
  EXPECT_EQ(Usage(outside).used_blocks, before.used_blocks);
}

TEST_F(AgentTest, PolicyRefusalsArePermissionDenied) {
  ASSERT_OK_AND_ASSIGN(std::string mnt, MountTmpfs("16M"));
  const std::string outside = host_->OutsidePath(mnt);
  const DiskUsage before = Usage(outside);
  ASSERT_OK(dir_->WriteFile("policy.yaml", "allowed_kinds: [pause, disk-fill]\n"
                                           "protected_processes: [flprotected]\n"
                                           "disk_fill_allow_tmpfs: true\n"
                                           "disk_fill_ceilings:\n"
                                           "  - {mount: \"" + mnt + "\", max_percent: 50}\n"));
  AgentOptions o;
  o.args = {"--policy", dir_->Path("policy.yaml")};
  ASSERT_OK(StartAgent(o));
  ASSERT_OK_AND_ASSIGN(HostProcess victim, StartVictim("flvictim"));
  ASSERT_OK_AND_ASSIGN(HostProcess protected_p, StartVictim("flprotected"));

  InjectResponse resp;
  grpc::Status s = Inject(KillSpec("flvictim"), &resp);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::PERMISSION_DENIED) << Describe(s);
  EXPECT_NE(s.error_message().find("kind"), std::string::npos) << s.error_message();

  s = Inject(PauseSpec("flprotected", "30s"), &resp);
  EXPECT_FALSE(s.ok());
  EXPECT_TRUE(s.error_code() == grpc::StatusCode::PERMISSION_DENIED ||
              s.error_code() == grpc::StatusCode::FAILED_PRECONDITION)
      << Describe(s);
  EXPECT_NE(s.error_message().find("flprotected"), std::string::npos) << s.error_message();

  s = Inject(DiskFillSpec(mnt, 90, "30s"), &resp);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::PERMISSION_DENIED) << Describe(s);
  EXPECT_NE(s.error_message().find("percent"), std::string::npos) << s.error_message();

  // Within the policy still works.
  s = Inject(DiskFillSpec(mnt, 40, "30s"), &resp);
  EXPECT_TRUE(s.ok()) << Describe(s);
  EXPECT_GE(Usage(outside).percent(), 40.0);
  EXPECT_LT(Usage(outside).percent(), 50.0);

  EXPECT_TRUE(ProcessAlive(victim.outer_pid));
  EXPECT_TRUE(Running(protected_p));
  ASSERT_EQ(ActiveFaults().size(), 1u);
  faultline::v1::RevertAllRequest req;
  faultline::v1::RevertAllResponse all;
  auto ctx = ContextWithDeadline(10s);
  s = agent_->stub().RevertAll(ctx.get(), req, &all);
  EXPECT_TRUE(s.ok()) << Describe(s);
  EXPECT_EQ(Usage(outside).used_blocks, before.used_blocks);
}

// Issue 9: a fill of tmpfs pins RAM; without the policy's opt-in it is refused,
// naming the field to set.
TEST_F(AgentTest, DiskFillOnTmpfsIsRefusedWithoutThePolicysOptIn) {
  ASSERT_OK_AND_ASSIGN(std::string mnt, MountTmpfs("16M"));
  const std::string outside = host_->OutsidePath(mnt);
  const DiskUsage before = Usage(outside);
  ASSERT_OK(StartAgent());
  InjectResponse resp;
  grpc::Status s = Inject(DiskFillSpec(mnt, 50, "30s"), &resp);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::PERMISSION_DENIED) << Describe(s);
  EXPECT_NE(s.error_message().find("tmpfs filesystem"), std::string::npos) << s.error_message();
  EXPECT_NE(s.error_message().find("disk_fill_allow_tmpfs: true"), std::string::npos)
      << s.error_message();
  EXPECT_EQ(Usage(outside).used_blocks, before.used_blocks);
  EXPECT_TRUE(ActiveFaults().empty());
}

// Issue 9: a bind mount of a filesystem with a ceiling got a fill past it (the
// ceiling was matched by path). Ceilings now match by device; a filesystem no
// ceiling names gets the default ceiling of 95%.
TEST_F(AgentTest, DiskFillCeilingsHoldThroughBindMountsAndDefaultTo95) {
  ASSERT_OK_AND_ASSIGN(std::string mnt, MountTmpfs("16M"));
  const std::string bind = dir_->Path("bind");
  const std::string other = dir_->Path("other");
  ASSERT_OK(host_->MountTmpfs(other, "16M"));
  CommandResult r = host_->Run({"mkdir", "-p", bind});
  ASSERT_TRUE(r.ok()) << r.Describe();
  r = host_->Run({"mount", "--bind", mnt, bind});
  ASSERT_TRUE(r.ok()) << r.Describe();
  const DiskUsage before = Usage(host_->OutsidePath(mnt));
  ASSERT_OK(StartFillAgent("disk_fill_ceilings: [{mount: \"" + mnt + "\", max_percent: 90}]\n"));

  InjectResponse resp;
  grpc::Status s = Inject(DiskFillSpec(bind, 95, "30s"), &resp);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::PERMISSION_DENIED) << Describe(s);
  EXPECT_NE(s.error_message().find("above the policy ceiling of 90% (disk_fill_ceilings: " + mnt),
            std::string::npos)
      << s.error_message();
  EXPECT_EQ(Usage(host_->OutsidePath(mnt)).used_blocks, before.used_blocks);

  s = Inject(DiskFillSpec(other, 96, "30s"), &resp);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::PERMISSION_DENIED) << Describe(s);
  EXPECT_NE(s.error_message().find("above the default ceiling of 95%"), std::string::npos)
      << s.error_message();
  // Within both ceilings still works.
  s = Inject(DiskFillSpec(bind, 85, "30s"), &resp);
  EXPECT_TRUE(s.ok()) << Describe(s);
  s = Inject(DiskFillSpec(other, 95, "30s"), &resp);
  EXPECT_TRUE(s.ok()) << Describe(s);
  EXPECT_GE(Usage(host_->OutsidePath(other)).percent(), 95.0);
  EXPECT_EQ(ActiveFaults().size(), 2u);
}

TEST_F(AgentTest, NeverTargetsItselfOrNothing) {
  ASSERT_OK(StartAgent());
  ASSERT_OK_AND_ASSIGN(HostProcess victim, StartVictim("flvictim"));
  InjectResponse resp;
  FaultSpec self = KillSpec("");
  self.mutable_kill()->mutable_process()->set_pid(agent_->inner_pid());
  grpc::Status s = Inject(self, &resp);
  EXPECT_FALSE(s.ok()) << "the agent accepted to kill itself";
  EXPECT_TRUE(s.error_code() == grpc::StatusCode::PERMISSION_DENIED ||
              s.error_code() == grpc::StatusCode::FAILED_PRECONDITION ||
              s.error_code() == grpc::StatusCode::INVALID_ARGUMENT)
      << Describe(s);
  EXPECT_TRUE(agent_->Running());

  // A selector matching no process is an error, not an empty success.
  s = Inject(PauseSpec("flnobody", "30s"), &resp);
  EXPECT_FALSE(s.ok()) << "accepted: " << resp.ShortDebugString();
  EXPECT_NE(s.error_message().find("flnobody"), std::string::npos) << Describe(s);
  EXPECT_TRUE(ActiveFaults().empty());
  EXPECT_TRUE(Running(victim));
}

TEST_F(AgentTest, DiskFillRevertedAtItsDeadline) {
  ASSERT_OK_AND_ASSIGN(std::string mnt, MountTmpfs("16M"));
  const std::string outside = host_->OutsidePath(mnt);
  const DiskUsage before = Usage(outside);
  ASSERT_OK(StartFillAgent());
  InjectResponse resp;
  const auto t0 = Clock::now();
  grpc::Status s = Inject(DiskFillSpec(mnt, 80, "2s"), &resp);
  ASSERT_TRUE(s.ok()) << Describe(s);
  EXPECT_GE(Usage(outside).percent(), 80.0);
  std::this_thread::sleep_until(t0 + 1500ms);
  EXPECT_GE(Usage(outside).percent(), 80.0) << "emptied before its deadline";
  EXPECT_TRUE(WaitFor([&] { return Usage(outside).used_blocks == before.used_blocks; },
                      t0 + 3500ms - Clock::now()))
      << "still " << Usage(outside).percent() << "% after " << Seconds(Clock::now() - t0) << " s";
  faultline::v1::ListFaultsRequest req;
  faultline::v1::ListFaultsResponse list;
  auto ctx = ContextWithDeadline(5s);
  s = agent_->stub().ListFaults(ctx.get(), req, &list);
  ASSERT_TRUE(s.ok()) << Describe(s);
  for (const auto& f : list.faults()) {
    if (f.id() != resp.fault().id()) continue;
    EXPECT_EQ(f.state(), faultline::v1::FAULT_STATE_REVERTED);
    EXPECT_EQ(f.revert_reason(), "deadline");
  }
}

TEST_F(AgentTest, CliRevertsOneFaultById) {
  ASSERT_OK(StartAgent());
  ASSERT_OK_AND_ASSIGN(HostProcess a, StartVictim("flfirst"));
  ASSERT_OK_AND_ASSIGN(HostProcess b, StartVictim("flsecond"));
  InjectResponse ra, rb;
  grpc::Status s = Inject(PauseSpec("flfirst", "10m"), &ra);
  ASSERT_TRUE(s.ok()) << Describe(s);
  s = Inject(PauseSpec("flsecond", "10m"), &rb);
  ASSERT_TRUE(s.ok()) << Describe(s);
  ASSERT_TRUE(WaitFor([&] { return Paused(a) && Paused(b); }, 1s));
  CommandResult r = Cli({"revert", ra.fault().id()});
  ASSERT_TRUE(r.ok()) << r.Describe();
  EXPECT_TRUE(WaitFor([&] { return Running(a); }, 500ms));
  EXPECT_TRUE(Paused(b));
  auto active = ActiveFaults();
  ASSERT_EQ(active.size(), 1u);
  EXPECT_EQ(active[0].id(), rb.fault().id());
  r = Cli({"revert", "no-such-fault"});
  EXPECT_NE(r.exit_code, 0) << r.Describe();
}

TEST_F(AgentTest, UnixSocketIsRootOnly) {
  ASSERT_OK(StartAgent());
  struct stat st {};
  const std::string path = agent_->address().substr(5);
  ASSERT_EQ(stat(path.c_str(), &st), 0) << path;
  EXPECT_TRUE(S_ISSOCK(st.st_mode));
  EXPECT_EQ(st.st_mode & 0777, 0600u) << std::oct << (st.st_mode & 0777);
}

// GET /metrics from an agent's --metrics listener, parsed strictly.
absl::StatusOr<testing::Exposition> ScrapeAgent(const std::string& address) {
  httplib::Client cli("http://" + address);
  cli.set_connection_timeout(2, 0);
  cli.set_read_timeout(5, 0);
  auto res = cli.Get("/metrics");
  if (!res) return absl::UnavailableError("GET /metrics: " + httplib::to_string(res.error()));
  if (res->status != 200) return absl::InternalError(fmt::format("GET /metrics: {}", res->status));
  return testing::ParseExposition(res->body);
}

// --metrics: the active fault by kind while it lasts; after a SIGKILL and a
// restart, the leftover the restart reverted; a bad address refused by name.
TEST_F(AgentTest, MetricsShowActiveFaultsAndWhatARestartSwept) {
  ASSERT_OK_AND_ASSIGN(std::vector<std::string> policy, UseLoopbackHost());
  ASSERT_OK_AND_ASSIGN(int port, PickFreePort());
  const std::string metrics = "127.0.0.1:" + std::to_string(port);
  AgentOptions o;
  o.args = policy;
  o.args.insert(o.args.end(), {"--metrics", metrics});
  ASSERT_OK(StartAgent(o));
  ASSERT_OK_AND_ASSIGN(HostProcess victim, StartVictim("flmetrics"));
  InjectResponse resp;
  grpc::Status s = Inject(PauseSpec("flmetrics", "10m"), &resp);
  ASSERT_TRUE(s.ok()) << Describe(s);
  ASSERT_OK_AND_ASSIGN(testing::Exposition during, ScrapeAgent(metrics));
  EXPECT_EQ(during.Value("faultline_faults_active", {{"kind", "pause"}}), 1);
  EXPECT_EQ(during.Value("faultline_leftovers_swept_total"), 0);
  EXPECT_EQ(during.Value("faultline_revert_failures_total"), 0);

  ASSERT_OK(agent_->Kill());
  ASSERT_OK(agent_->Restart());
  ASSERT_TRUE(WaitFor([&] { return Running(victim); }, 2s));
  ASSERT_OK_AND_ASSIGN(testing::Exposition after, ScrapeAgent(metrics));
  EXPECT_EQ(after.Value("faultline_leftovers_swept_total"), 1);
  EXPECT_TRUE(std::isnan(after.Value("faultline_faults_active", {{"kind", "pause"}})));

  ASSERT_OK_AND_ASSIGN(std::string agent_bin, AgentBinary());
  ASSERT_OK_AND_ASSIGN(std::string state, dir_->MakeSubdir("state2"));
  CommandResult r = host_->Run({agent_bin, "--listen", "unix:" + dir_->Path("a2.sock"), "--state-dir",
                                state, "--metrics", "localhost:9"},
                               20s);
  EXPECT_NE(r.exit_code, 0) << r.Describe();
  EXPECT_NE(r.err.find("--metrics"), std::string::npos) << r.Describe();
}

}  // namespace
}  // namespace faultline::itest
