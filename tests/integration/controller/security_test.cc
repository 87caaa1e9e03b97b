// Trust boundaries (issue 9, items 1 and 3) with the real daemons: mutual TLS
// on every TCP listener, roles from certificate identities, the agent name
// pinned to its certificate and to whoever registered it first, refused
// registrations never stored, address changes logged, unix sockets 0600, and
// the audit log of both daemons. The controller runs in the test's network
// namespace; the agent in a SimHost sharing it (loopback), registering with
// its own agent certificate.
#include <fmt/format.h>
#include <gmock/gmock.h>
#include <google/protobuf/struct.pb.h>
#include <google/protobuf/util/json_util.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/stat.h>

#include <chrono>
#include <fstream>
#include <sstream>
#include <thread>

#include "common/endpoint.h"
#include "common/status_macros.h"
#include "controller/store.h"
#include "faultline/v1/agent.grpc.pb.h"
#include "faultline/v1/controller.grpc.pb.h"
#include "harness/agent_process.h"
#include "harness/sim_host.h"
#include "harness/status_matchers.h"
#include "harness/subprocess.h"
#include "harness/test_dir.h"

namespace faultline::itest {
namespace {

using namespace std::chrono_literals;
using ::testing::HasSubstr;

absl::StatusOr<std::string> ControllerBinary() {
  const char* p = std::getenv("FAULTLINE_CONTROLLER");
  if (p == nullptr || *p == '\0') return absl::FailedPreconditionError("FAULTLINE_CONTROLLER unset");
  return std::string(p);
}

std::string ReadAll(const std::string& path) {
  auto text = ReadFileToString(path);
  return text.ok() ? *text : "";
}

std::vector<google::protobuf::Struct> JsonLines(const std::string& text) {
  std::vector<google::protobuf::Struct> out;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) {
    google::protobuf::Struct s;
    EXPECT_TRUE(google::protobuf::util::JsonStringToMessage(line, &s).ok()) << line;
    out.push_back(s);
  }
  return out;
}

// The audit lines for `call`.
std::vector<google::protobuf::Struct> AuditLines(const std::string& path, const std::string& call) {
  std::vector<google::protobuf::Struct> out;
  for (auto& s : JsonLines(ReadAll(path))) {
    if (s.fields().at("call").string_value() == call) out.push_back(s);
  }
  return out;
}

std::string Field(const google::protobuf::Struct& s, const std::string& name) {
  auto it = s.fields().find(name);
  return it == s.fields().end() ? "" : it->second.string_value();
}

mode_t SocketMode(const std::string& path) {
  struct stat st {};
  if (::lstat(path.c_str(), &st) != 0) return 0;
  EXPECT_TRUE(S_ISSOCK(st.st_mode)) << path;
  return st.st_mode & 07777;
}

class SecurityTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_OK_AND_ASSIGN(dir_, TestDir::Create("sec"));
    ASSERT_OK_AND_ASSIGN(certs_, MakeTestCerts(*dir_));
    ASSERT_OK_AND_ASSIGN(agent_tls_, IssueTestCert(certs_, "agent", "db-1", {"127.0.0.1"}));
    ASSERT_OK_AND_ASSIGN(host_, SimHost::Create("sec"));
    ASSERT_OK(StartController());
    ASSERT_OK_AND_ASSIGN(int agent_port, PickFreePort());
    agent_tcp_ = fmt::format("127.0.0.1:{}", agent_port);
    ASSERT_OK(dir_->WriteFile("policy.yaml", "allowed_kinds: [kill, pause]\n"));
    AgentOptions o;
    o.listen = {"unix:" + dir_->Path("agent.sock"), agent_tcp_};
    o.args = TlsArgs(agent_tls_);
    o.args.insert(o.args.end(),
                  {"--name", "db-1", "--label", "role=db", "--policy", dir_->Path("policy.yaml"),
                   "--controller", controller_tcp_, "--advertise", agent_tcp_, "--audit-log",
                   dir_->Path("agent-audit.log")});
    ASSERT_OK_AND_ASSIGN(agent_, AgentProcess::Start(*host_, *dir_, o));
    ASSERT_OK(WaitForAgent("db-1", agent_tcp_));
    // Something for dry-run pauses to match.
    ASSERT_OK_AND_ASSIGN(std::string victim_bin, MakeVictimBinary(*dir_, "flsec-victim"));
    ASSERT_OK_AND_ASSIGN(victim_, host_->Exec({victim_bin, "300"}));
  }

  void TearDown() override {
    agent_.reset();
    victim_.reset();
    if (controller_) controller_->KillGroup(SIGKILL);
  }

  absl::Status StartController() {
    ASSIGN_OR_RETURN(std::string bin, ControllerBinary());
    ASSIGN_OR_RETURN(int port, PickFreePort());
    controller_tcp_ = fmt::format("127.0.0.1:{}", port);
    controller_unix_ = "unix:" + dir_->Path("ctl.sock");
    SubprocessOptions so;
    so.stdout_file = dir_->Path("controller.out");
    so.stderr_file = dir_->Path("controller.err");
    std::vector<std::string> argv = {bin, "--listen", controller_tcp_, "--listen", controller_unix_,
                                     "--db", dir_->Path("faultline.db"), "--heartbeat-ms", "100",
                                     "--audit-log", dir_->Path("controller-audit.log")};
    for (const auto& a : TlsArgs(certs_.Controller())) argv.push_back(a);
    ASSIGN_OR_RETURN(controller_, Subprocess::Start(argv, so));
    return absl::OkStatus();
  }

  std::string ControllerLog() const { return ReadAll(dir_->Path("controller.err")); }

  // `faultline` with `tls` against the controller's TCP address (or, with an
  // empty cert, its unix socket).
  CommandResult Cli(const TlsFiles& tls, std::vector<std::string> args) {
    auto cli = CliBinary();
    EXPECT_TRUE(cli.ok());
    std::vector<std::string> argv = {cli.ok() ? *cli : "faultline", "--controller",
                                     tls.cert.empty() ? controller_unix_ : controller_tcp_};
    if (!tls.cert.empty()) {
      for (const auto& a : TlsArgs(tls)) argv.push_back(a);
    }
    argv.insert(argv.end(), args.begin(), args.end());
    return RunCommand(argv, 60s);
  }

  absl::Status WaitForAgent(const std::string& name, const std::string& address) {
    std::string last;
    bool ok = WaitFor(
        [&] {
          CommandResult r = Cli(certs_.Viewer(), {"agents", "-o", "json"});
          last = r.ok() ? r.out : r.Describe();
          return r.ok() && AllAgentsHealthy(r.out, {name}) &&
                 r.out.find(address) != std::string::npos;
        },
        15s);
    if (!ok) {
      return absl::DeadlineExceededError(fmt::format("{} not healthy at {}: {}\n{}\n{}", name,
                                                     address, last, ControllerLog(),
                                                     agent_->Log()));
    }
    return absl::OkStatus();
  }

  std::unique_ptr<v1::Controller::Stub> ControllerStub(const std::string& target,
                                                       const TlsFiles& tls) {
    auto channel = Dial("controller", target, tls, false);
    EXPECT_TRUE(channel.ok()) << channel.status();
    return v1::Controller::NewStub(*channel);
  }

  grpc::Status Register(v1::Controller::Stub& stub, const std::string& name,
                        const std::string& address) {
    v1::RegisterRequest req;
    req.set_address(address);
    req.mutable_info()->set_name(name);
    (*req.mutable_info()->mutable_labels())["role"] = "db";
    v1::RegisterResponse resp;
    auto ctx = ContextWithDeadline(5s);
    return stub.Register(ctx.get(), req, &resp);
  }

  std::unique_ptr<v1::Agent::Stub> AgentStub(const TlsFiles& tls) {
    auto channel = Dial("agent", agent_tcp_, tls, false);
    EXPECT_TRUE(channel.ok()) << channel.status();
    return v1::Agent::NewStub(*channel);
  }

  std::unique_ptr<TestDir> dir_;
  TestCerts certs_;
  TlsFiles agent_tls_;
  std::unique_ptr<SimHost> host_;
  std::unique_ptr<Subprocess> controller_;
  std::string controller_tcp_;
  std::string controller_unix_;
  std::string agent_tcp_;
  std::unique_ptr<AgentProcess> agent_;
  std::unique_ptr<Subprocess> victim_;
};

TEST_F(SecurityTest, ViewerReadsButCannotRunOrAbort) {
  ASSERT_OK(dir_->WriteFile("exp.yaml", R"(
name: pause-db
targets:
  db: {labels: {role: db}, count: 1}
probes:
  - name: local
    from: db
    tcp: {address: "127.0.0.1:9"}
faults:
  - on: db
    pause: {process: {name: fltest-nothing}}
objectives: {rto: 5s}
duration: 1s
)"));
  CommandResult r = Cli(certs_.Viewer(), {"run", dir_->Path("exp.yaml")});
  EXPECT_EQ(r.exit_code, 1) << r.Describe();
  EXPECT_THAT(r.err, HasSubstr("PERMISSION_DENIED"));
  EXPECT_THAT(r.err, HasSubstr("RunExperiment: spiffe://faultline/viewer/fltest-viewer may not "
                               "call it (role viewer); it needs operator"));
  r = Cli(certs_.Viewer(), {"abort"});
  EXPECT_EQ(r.exit_code, 1) << r.Describe();
  EXPECT_THAT(r.err, HasSubstr("PERMISSION_DENIED"));
  EXPECT_TRUE(Cli(certs_.Viewer(), {"runs"}).ok());
  EXPECT_TRUE(Cli(certs_.Viewer(), {"agents"}).ok());
  // An agent certificate reads nothing from the controller.
  r = Cli(agent_tls_, {"agents"});
  EXPECT_EQ(r.exit_code, 1) << r.Describe();
  EXPECT_THAT(r.err, HasSubstr("PERMISSION_DENIED"));

  auto runs = AuditLines(dir_->Path("controller-audit.log"), "RunExperiment");
  ASSERT_EQ(runs.size(), 1u) << ReadAll(dir_->Path("controller-audit.log"));
  EXPECT_EQ(Field(runs[0], "who"), "spiffe://faultline/viewer/fltest-viewer");
  EXPECT_EQ(Field(runs[0], "result"), "error");
  EXPECT_EQ(Field(runs[0], "code"), "PERMISSION_DENIED");
  auto aborts = AuditLines(dir_->Path("controller-audit.log"), "Abort");
  ASSERT_EQ(aborts.size(), 1u);
  EXPECT_EQ(Field(aborts[0], "result"), "error");
}

TEST_F(SecurityTest, ViewerSeesSchedulesButCannotChangeThem) {
  ASSERT_OK(dir_->WriteFile("sched.yaml", R"(
name: pause-db
targets:
  db: {labels: {role: db}, count: 1}
probes:
  - {name: svc, tcp: {address: "127.0.0.1:9"}}
faults:
  - on: db
    pause: {process: {name: fltest-nothing}}
objectives: {rto: 5s}
duration: 1s
)"));
  CommandResult r = Cli(certs_.Viewer(), {"schedule", "add", "nightly", "--experiment",
                                          dir_->Path("sched.yaml"), "--cron", "0 3 * * *"});
  EXPECT_EQ(r.exit_code, 1) << r.Describe();
  EXPECT_THAT(r.err, HasSubstr("AddSchedule: spiffe://faultline/viewer/fltest-viewer may not "
                               "call it (role viewer); it needs operator"));
  r = Cli(certs_.Viewer(), {"blackout", "add", "freeze", "--from", "now", "--to", "now+1h"});
  EXPECT_EQ(r.exit_code, 1) << r.Describe();
  EXPECT_THAT(r.err, HasSubstr("PERMISSION_DENIED"));
  EXPECT_TRUE(Cli(certs_.Viewer(), {"schedules"}).ok());
  EXPECT_TRUE(Cli(certs_.Viewer(), {"blackouts"}).ok());
  // An operator may; the change is audited with its identity.
  r = Cli(certs_.Client(), {"schedule", "add", "nightly", "--experiment",
                              dir_->Path("sched.yaml"), "--cron", "0 3 * * *"});
  EXPECT_TRUE(r.ok()) << r.Describe();
  r = Cli(certs_.Viewer(), {"schedule", "show", "nightly"});
  EXPECT_TRUE(r.ok()) << r.Describe();
  EXPECT_THAT(r.out, HasSubstr("spiffe://faultline/operator/"));
  auto adds = AuditLines(dir_->Path("controller-audit.log"), "AddSchedule");
  ASSERT_EQ(adds.size(), 2u) << ReadAll(dir_->Path("controller-audit.log"));
  EXPECT_EQ(Field(adds[0], "code"), "PERMISSION_DENIED");
  EXPECT_EQ(Field(adds[1], "result"), "ok");
}

TEST_F(SecurityTest, GameDayActionsCarryTheCallersIdentity) {
  ASSERT_OK(dir_->WriteFile("gd.yaml", R"(
gameday: fltest-gd
steps:
  - note: Announce it.
  - gate: {prompt: "Ready?", timeout: 60s}
  - wait: 100ms
)"));
  CommandResult r = Cli(certs_.Viewer(), {"gameday", "start", dir_->Path("gd.yaml")});
  EXPECT_EQ(r.exit_code, 1) << r.Describe();
  EXPECT_THAT(r.err, HasSubstr("StartGameDay: spiffe://faultline/viewer/fltest-viewer may not "
                               "call it (role viewer); it needs operator"));
  r = Cli(certs_.Client(), {"-o", "json", "gameday", "start", dir_->Path("gd.yaml")});
  ASSERT_TRUE(r.ok()) << r.Describe();
  google::protobuf::Struct started;
  ASSERT_TRUE(google::protobuf::util::JsonStringToMessage(r.out, &started).ok()) << r.out;
  const std::string id = Field(started, "id");
  ASSERT_THAT(id, ::testing::StartsWith("fltest-gd-")) << r.out;
  // Waiting at the gate: a viewer sees it and may not approve it.
  for (int i = 0; i < 100; ++i) {
    r = Cli(certs_.Viewer(), {"gameday", "status", id});
    if (r.out.find("WAITING at step 2") != std::string::npos) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  EXPECT_THAT(r.out, HasSubstr("WAITING at step 2: Ready?")) << r.Describe();
  r = Cli(certs_.Viewer(), {"gameday", "approve", id});
  EXPECT_EQ(r.exit_code, 1) << r.Describe();
  EXPECT_THAT(r.err, HasSubstr("PERMISSION_DENIED"));
  r = Cli(certs_.Client(), {"gameday", "approve", id, "--note", "on-call ready"});
  ASSERT_TRUE(r.ok()) << r.Describe();
  for (int i = 0; i < 100; ++i) {
    r = Cli(certs_.Viewer(), {"gameday", "report", id});
    if (r.out.find("**state**: completed") != std::string::npos) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  ASSERT_TRUE(r.ok()) << r.Describe();
  EXPECT_THAT(r.out, HasSubstr("**result**: pass"));
  EXPECT_THAT(r.out, HasSubstr("| 2 | gate | Ready? | ok |"));
  EXPECT_THAT(r.out, HasSubstr("spiffe://faultline/operator/"));
  EXPECT_THAT(r.out, HasSubstr("approved: on-call ready"));
  auto approvals = AuditLines(dir_->Path("controller-audit.log"), "ApproveGameDay");
  ASSERT_EQ(approvals.size(), 2u) << ReadAll(dir_->Path("controller-audit.log"));
  EXPECT_EQ(Field(approvals[0], "code"), "PERMISSION_DENIED");
  EXPECT_EQ(Field(approvals[1], "result"), "ok");
}

TEST_F(SecurityTest, OperatorCannotRegisterAndNamesMustMatchCertificates) {
  auto as_operator = ControllerStub(controller_tcp_, certs_.Client());
  grpc::Status st = Register(*as_operator, "fltest-operator", "127.0.0.1:9");
  EXPECT_EQ(st.error_code(), grpc::StatusCode::PERMISSION_DENIED) << st.error_message();
  EXPECT_THAT(st.error_message(), HasSubstr("it needs agent"));

  // Another agent's certificate cannot take db-1's name (and so its address).
  ASSERT_OK_AND_ASSIGN(TlsFiles db2, IssueTestCert(certs_, "agent", "db-2", {"127.0.0.1"}));
  auto as_db2 = ControllerStub(controller_tcp_, db2);
  st = Register(*as_db2, "db-1", "127.0.0.1:9");
  EXPECT_EQ(st.error_code(), grpc::StatusCode::PERMISSION_DENIED) << st.error_message();
  EXPECT_THAT(st.error_message(), HasSubstr("info.name: \"db-1\" is not the name in the caller's "
                                            "certificate (spiffe://faultline/agent/db-2)"));
  EXPECT_TRUE(Register(*as_db2, "db-2", "127.0.0.1:9").ok());

  // Re-registering a name from a different identity: the controller's unix
  // socket (root: operator, and agent for local agents) cannot take db-1 over.
  auto local = ControllerStub(controller_unix_, TlsFiles{});
  st = Register(*local, "db-1", "127.0.0.1:9");
  EXPECT_EQ(st.error_code(), grpc::StatusCode::PERMISSION_DENIED) << st.error_message();
  EXPECT_THAT(st.error_message(),
              HasSubstr("info.name: \"db-1\" is registered by spiffe://faultline/agent/db-1"));
  ASSERT_TRUE(Register(*local, "local-1", "unix:/run/fltest-local.sock").ok());
  st = Register(*as_db2, "db-2", "127.0.0.1:9");  // still db-2's own
  EXPECT_TRUE(st.ok()) << st.error_message();

  // db-1 kept its address; the refusals reached neither the list nor the store.
  CommandResult r = Cli(certs_.Viewer(), {"agents", "-o", "json"});
  ASSERT_TRUE(r.ok()) << r.Describe();
  v1::ListAgentsResponse list;
  ASSERT_TRUE(google::protobuf::util::JsonStringToMessage(r.out, &list).ok());
  for (const auto& a : list.agents()) {
    if (a.name() == "db-1") {
      EXPECT_EQ(a.address(), agent_tcp_);
    }
  }
  auto store = controller::Store::Open(dir_->Path("faultline.db"));
  ASSERT_TRUE(store.ok()) << store.status();
  auto stored = (*store)->ListAgents();
  ASSERT_TRUE(stored.ok());
  std::map<std::string, std::string> identity_of;
  for (const auto& a : *stored) identity_of[a.info.name()] = a.identity;
  EXPECT_EQ(identity_of["db-1"], "spiffe://faultline/agent/db-1");
  EXPECT_EQ(identity_of["db-2"], "spiffe://faultline/agent/db-2");
  EXPECT_EQ(identity_of["local-1"], "unix:uid=0");
  EXPECT_EQ(identity_of.size(), 3u);
}

TEST_F(SecurityTest, BadNamesAreRefusedNamingTheFieldAndNeverStored) {
  auto local = ControllerStub(controller_unix_, TlsFiles{});
  for (const std::string& name :
       {std::string("db-9\nweb-9   127.0.0.1:1   role=db   healthy"), std::string("\x1b[31mdb-9"),
        std::string("DB-9"), std::string(64, 'a')}) {
    grpc::Status st = Register(*local, name, "127.0.0.1:1");
    EXPECT_EQ(st.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << name;
    EXPECT_THAT(st.error_message(), HasSubstr("info.name: "));
    EXPECT_THAT(st.error_message(), HasSubstr("[a-z0-9][a-z0-9.-]{0,62}"));
  }
  grpc::Status st = Register(*local, "db-9", "127.0.0.1:1\n");
  EXPECT_EQ(st.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(st.error_message(), HasSubstr("address"));
  CommandResult r = Cli(TlsFiles{}, {"agents"});
  ASSERT_TRUE(r.ok()) << r.Describe();
  EXPECT_EQ(r.out.find("db-9"), std::string::npos) << r.out;
  EXPECT_EQ(r.out.find('\x1b'), std::string::npos);
  auto store = controller::Store::Open(dir_->Path("faultline.db"));
  ASSERT_TRUE(store.ok());
  auto stored = (*store)->ListAgents();
  ASSERT_TRUE(stored.ok());
  ASSERT_EQ(stored->size(), 1u);
  EXPECT_EQ((*stored)[0].info.name(), "db-1");
  // Every refusal is in the audit log.
  int refused = 0;
  for (const auto& line : AuditLines(dir_->Path("controller-audit.log"), "Register")) {
    if (Field(line, "code") == "INVALID_ARGUMENT") ++refused;
  }
  EXPECT_EQ(refused, 5);
}

TEST_F(SecurityTest, AddressChangesAreLogged) {
  ASSERT_OK_AND_ASSIGN(TlsFiles db3, IssueTestCert(certs_, "agent", "db-3", {"127.0.0.1"}));
  auto as_db3 = ControllerStub(controller_tcp_, db3);
  ASSERT_TRUE(Register(*as_db3, "db-3", "127.0.0.1:7001").ok());
  ASSERT_TRUE(Register(*as_db3, "db-3", "127.0.0.1:7002").ok());
  EXPECT_TRUE(WaitFor(
      [&] {
        return ControllerLog().find("agent db-3 changed its address from 127.0.0.1:7001 to "
                                    "127.0.0.1:7002 (spiffe://faultline/agent/db-3)") !=
               std::string::npos;
      },
      3s))
      << ControllerLog();
  bool audited = false;
  for (const auto& line : AuditLines(dir_->Path("controller-audit.log"), "Register")) {
    const auto& what = line.fields().at("what").struct_value().fields();
    if (what.at("name").string_value() == "db-3" &&
        what.at("previous_address").string_value() == "127.0.0.1:7001") {
      audited = true;
      EXPECT_EQ(what.at("address").string_value(), "127.0.0.1:7002");
      EXPECT_EQ(Field(line, "who"), "spiffe://faultline/agent/db-3");
    }
  }
  EXPECT_TRUE(audited) << ReadAll(dir_->Path("controller-audit.log"));
}

TEST_F(SecurityTest, AgentTakesFaultsOnlyFromControllersAndOperators) {
  ASSERT_OK_AND_ASSIGN(TlsFiles db2, IssueTestCert(certs_, "agent", "db-2", {"127.0.0.1"}));
  v1::InjectRequest inject;
  inject.mutable_spec()->mutable_pause()->mutable_process()->set_name("flsec-victim");
  inject.mutable_spec()->set_duration("1s");
  inject.set_dry_run(true);
  for (const TlsFiles& tls : {db2, certs_.Viewer()}) {
    auto stub = AgentStub(tls);
    v1::InjectResponse resp;
    auto ctx = ContextWithDeadline(5s);
    grpc::Status st = stub->Inject(ctx.get(), inject, &resp);
    EXPECT_EQ(st.error_code(), grpc::StatusCode::PERMISSION_DENIED) << tls.cert;
    EXPECT_THAT(st.error_message(), HasSubstr("Inject: spiffe://faultline/"));
    EXPECT_THAT(st.error_message(), HasSubstr("it needs controller or operator"));
    v1::RevertAllResponse reverted;
    auto ctx2 = ContextWithDeadline(5s);
    st = stub->RevertAll(ctx2.get(), v1::RevertAllRequest(), &reverted);
    EXPECT_EQ(st.error_code(), grpc::StatusCode::PERMISSION_DENIED);
    v1::RunProbeRequest probe;
    probe.mutable_probe()->mutable_tcp()->set_address("127.0.0.1:9");
    probe.set_max_samples(1);
    auto ctx3 = ContextWithDeadline(5s);
    auto reader = stub->RunProbe(ctx3.get(), probe);
    v1::ProbeSample sample;
    EXPECT_FALSE(reader->Read(&sample));
    EXPECT_EQ(reader->Finish().error_code(), grpc::StatusCode::PERMISSION_DENIED);
    // Data workloads (issue 10) take the same roles as probes.
    v1::DataWriterControl start;
    start.mutable_workload()->set_name("orders");
    start.mutable_workload()->mutable_redis()->set_address("127.0.0.1:9");
    start.set_run_id("r-1");
    start.set_max_write_ms(1000);
    auto ctx4 = ContextWithDeadline(5s);
    auto writer = stub->RunDataWriter(ctx4.get());
    writer->Write(start);
    writer->WritesDone();
    v1::DataWriterBatch batch;
    EXPECT_FALSE(writer->Read(&batch));
    grpc::Status writer_st = writer->Finish();
    EXPECT_EQ(writer_st.error_code(), grpc::StatusCode::PERMISSION_DENIED);
    EXPECT_THAT(writer_st.error_message(), HasSubstr("RunDataWriter: spiffe://faultline/"));
    v1::ReadDataRequest read;
    *read.mutable_workload() = start.workload();
    read.set_run_id("r-1");
    read.set_cleanup(true);
    v1::ReadDataResponse read_resp;
    auto ctx5 = ContextWithDeadline(5s);
    EXPECT_EQ(stub->ReadData(ctx5.get(), read, &read_resp).error_code(),
              grpc::StatusCode::PERMISSION_DENIED);
    // Drill steps (issue 10) too: running a command is a mutation.
    v1::RunStepRequest step;
    step.add_argv("/bin/true");
    step.set_timeout_ms(1000);
    v1::RunStepResponse step_resp;
    auto ctx6 = ContextWithDeadline(5s);
    grpc::Status step_st = stub->RunStep(ctx6.get(), step, &step_resp);
    EXPECT_EQ(step_st.error_code(), grpc::StatusCode::PERMISSION_DENIED);
    EXPECT_THAT(step_st.error_message(), HasSubstr("RunStep: spiffe://faultline/"));
  }
  // A viewer may look; an agent may not even look.
  {
    v1::InfoResponse info;
    auto ctx = ContextWithDeadline(5s);
    EXPECT_TRUE(AgentStub(certs_.Viewer())->Info(ctx.get(), v1::InfoRequest(), &info).ok());
    auto ctx2 = ContextWithDeadline(5s);
    EXPECT_EQ(AgentStub(db2)->Info(ctx2.get(), v1::InfoRequest(), &info).error_code(),
              grpc::StatusCode::PERMISSION_DENIED);
  }
  // Operators and controllers may.
  for (const TlsFiles& tls : {certs_.Client(), certs_.Controller()}) {
    v1::InjectResponse resp;
    auto ctx = ContextWithDeadline(5s);
    grpc::Status st = AgentStub(tls)->Inject(ctx.get(), inject, &resp);
    EXPECT_TRUE(st.ok()) << tls.cert << ": " << st.error_message();
  }
  const std::string audit = dir_->Path("agent-audit.log");
  auto injects = AuditLines(audit, "Inject");
  ASSERT_EQ(injects.size(), 4u) << ReadAll(audit);
  EXPECT_EQ(Field(injects[0], "who"), "spiffe://faultline/agent/db-2");
  EXPECT_EQ(Field(injects[0], "result"), "error");
  EXPECT_EQ(Field(injects[1], "who"), "spiffe://faultline/viewer/fltest-viewer");
  EXPECT_EQ(Field(injects[2], "who"), "spiffe://faultline/operator/fltest-operator");
  EXPECT_EQ(Field(injects[2], "result"), "ok");
  EXPECT_EQ(Field(injects[3], "who"), "spiffe://faultline/controller/fltest-controller");
  EXPECT_TRUE(injects[2].fields().at("what").struct_value().fields().contains("spec"));
}

TEST_F(SecurityTest, NoClientCertificateOrAnotherCaIsRefused) {
  ASSERT_OK_AND_ASSIGN(std::string ca_pem, ReadFileToString(certs_.ca));
  for (const std::string& target : {controller_tcp_, agent_tcp_}) {
    grpc::SslCredentialsOptions no_cert;
    no_cert.pem_root_certs = ca_pem;
    auto stub = v1::Agent::NewStub(grpc::CreateChannel(target, grpc::SslCredentials(no_cert)));
    v1::InfoResponse info;
    auto ctx = ContextWithDeadline(5s);
    grpc::Status st = stub->Info(ctx.get(), v1::InfoRequest(), &info);
    EXPECT_EQ(st.error_code(), grpc::StatusCode::UNAVAILABLE) << target << " " << st.error_message();

    grpc::SslCredentialsOptions other;
    other.pem_root_certs = ca_pem;
    ASSERT_OK_AND_ASSIGN(other.pem_cert_chain, ReadFileToString(certs_.other_client_cert));
    ASSERT_OK_AND_ASSIGN(other.pem_private_key, ReadFileToString(certs_.other_client_key));
    auto other_stub = v1::Controller::NewStub(grpc::CreateChannel(target, grpc::SslCredentials(other)));
    v1::ListAgentsResponse list;
    auto ctx2 = ContextWithDeadline(5s);
    st = other_stub->ListAgents(ctx2.get(), v1::ListAgentsRequest(), &list);
    EXPECT_EQ(st.error_code(), grpc::StatusCode::UNAVAILABLE) << target << " " << st.error_message();

    auto plain = v1::Controller::NewStub(grpc::CreateChannel(target, grpc::InsecureChannelCredentials()));
    auto ctx3 = ContextWithDeadline(5s);
    EXPECT_FALSE(plain->ListAgents(ctx3.get(), v1::ListAgentsRequest(), &list).ok()) << target;
  }
  CommandResult r = Cli(certs_.OtherClient(), {"agents"});
  EXPECT_EQ(r.exit_code, 1) << r.Describe();
}

TEST_F(SecurityTest, UnixSocketsAreOwnerOnly) {
  // The test runs with umask 022: the daemons must not follow it.
  EXPECT_EQ(SocketMode(dir_->Path("ctl.sock")), 0600u);
  EXPECT_EQ(SocketMode(dir_->Path("agent.sock")), 0600u);
  // Peer credentials are logged.
  CommandResult r = Cli(TlsFiles{}, {"agents"});
  ASSERT_TRUE(r.ok()) << r.Describe();
  EXPECT_TRUE(WaitFor(
      [&] {
        return ControllerLog().find("connection from pid") != std::string::npos &&
               ControllerLog().find("uid 0 gid 0 (root)") != std::string::npos;
      },
      3s))
      << ControllerLog();
}

TEST_F(SecurityTest, AuditLogRecordsMutatingCallsWithoutSecrets) {
  // Through the agent's unix socket as root: who is the uid.
  auto cli = CliBinary();
  ASSERT_TRUE(cli.ok());
  CommandResult r = RunCommand({*cli, "--agent", "unix:" + dir_->Path("agent.sock"), "inject",
                                "pause", "--process-name", "flsec-victim", "--duration", "1s",
                                "--dry-run"},
                               30s);
  ASSERT_TRUE(r.ok()) << r.Describe();
  // A probe whose URL carries credentials and a token.
  v1::RunProbeRequest probe;
  probe.mutable_probe()->set_name("web");
  probe.mutable_probe()->mutable_http()->set_url("http://admin:hunter2@127.0.0.1:9/health?token=s3cr3t");
  probe.mutable_probe()->set_interval("50ms");
  probe.mutable_probe()->set_timeout("100ms");
  probe.set_max_samples(1);
  auto ctx = ContextWithDeadline(10s);
  auto reader = AgentStub(certs_.Client())->RunProbe(ctx.get(), probe);
  v1::ProbeSample sample;
  while (reader->Read(&sample)) {
  }
  (void)reader->Finish();

  const std::string audit = dir_->Path("agent-audit.log");
  const std::string text = ReadAll(audit);
  auto injects = AuditLines(audit, "Inject");
  ASSERT_EQ(injects.size(), 1u) << text;
  EXPECT_THAT(Field(injects[0], "who"), ::testing::MatchesRegex("unix uid=0 pid=[0-9]+"));
  EXPECT_EQ(Field(injects[0], "result"), "ok");
  auto probes = AuditLines(audit, "RunProbe");
  ASSERT_EQ(probes.size(), 1u) << text;
  const auto& what = probes[0].fields().at("what").struct_value().fields().at("probe").struct_value().fields();
  EXPECT_EQ(what.at("kind").string_value(), "http");
  EXPECT_EQ(what.at("target").string_value(), "http://127.0.0.1:9/health");
  EXPECT_EQ(text.find("hunter2"), std::string::npos) << text;
  EXPECT_EQ(text.find("s3cr3t"), std::string::npos) << text;
  // Heartbeats that change nothing are not audited; the registration is.
  const std::string ctl_text = ReadAll(dir_->Path("controller-audit.log"));
  auto registers = AuditLines(dir_->Path("controller-audit.log"), "Register");
  ASSERT_GE(registers.size(), 1u) << ctl_text;
  EXPECT_EQ(Field(registers[0], "who"), "spiffe://faultline/agent/db-1");
  EXPECT_LE(AuditLines(dir_->Path("controller-audit.log"), "Heartbeat").size(), 1u) << ctl_text;
  for (const std::string& t : {text, ctl_text}) {
    EXPECT_EQ(t.find("PRIVATE KEY"), std::string::npos);
    EXPECT_EQ(t.find("BEGIN CERTIFICATE"), std::string::npos);
  }
  struct stat st {};
  ASSERT_EQ(::stat(audit.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
}

// --db and --audit-log name files the controller opens at start: a device
// (`sqlite: disk I/O error` for /dev/zero) or a FIFO (whose open waits for a
// writer for good) is refused at once, naming the flag. No root needed.
TEST(ControllerFiles, DbAndAuditLogMustBeRegularFilesOrAbsent) {
  auto bin = ControllerBinary();
  ASSERT_TRUE(bin.ok()) << bin.status() << " (meson test sets it)";
  auto dir = TestDir::Create("ctlfiles");
  ASSERT_TRUE(dir.ok()) << dir.status();
  const std::string fifo = (*dir)->Path("fifo");
  ASSERT_EQ(::mkfifo(fifo.c_str(), 0600), 0);
  const std::vector<std::string> base = {*bin, "--listen", "unix:" + (*dir)->Path("c.sock")};
  auto run = [&](std::vector<std::string> extra) {
    std::vector<std::string> argv = base;
    argv.insert(argv.end(), extra.begin(), extra.end());
    return RunCommand(argv, std::chrono::seconds(5));
  };
  CommandResult r = run({"--db", "/dev/zero"});
  EXPECT_FALSE(r.timed_out);
  EXPECT_NE(r.exit_code, 0);
  EXPECT_THAT(r.err, HasSubstr("--db: /dev/zero is a character device"));
  r = run({"--db", fifo});
  EXPECT_FALSE(r.timed_out);
  EXPECT_THAT(r.err, HasSubstr("--db: " + fifo + " is a FIFO"));
  r = run({"--db", (*dir)->Path("f.db"), "--audit-log", fifo});
  EXPECT_FALSE(r.timed_out);
  EXPECT_NE(r.exit_code, 0);
  EXPECT_THAT(r.err, HasSubstr("--audit-log: " + fifo + " is a FIFO"));
}

}  // namespace
}  // namespace faultline::itest
