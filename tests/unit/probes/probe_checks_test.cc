// Each probe kind against real endpoints on loopback: a listening socket, a tiny
// HTTP server thread, child processes, and a grpc::Server with the default
// health service.
#include <grpcpp/grpcpp.h>
#include <grpcpp/health_check_service_interface.h>
#include <signal.h>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <memory>
#include <string>
#include <vector>

#include "probes/probe.h"
#include "probes/probe_runner.h"
#include "faultline/v1/agent.grpc.pb.h"
#include "tests/unit/probes/loopback_server.h"
#include "tests/unit/probes/test_exec_policy.h"

namespace faultline {
namespace {

using ::testing::HasSubstr;
using testing_util::ClosedPort;
using testing_util::HttpServer;
using testing_util::Listener;
using Ms = std::chrono::milliseconds;
using SteadyClock = std::chrono::steady_clock;

std::unique_ptr<Probe> Make(const v1::ProbeSpec& spec) {
  auto probe = MakeProbe(spec);
  EXPECT_TRUE(probe.ok()) << probe.status();
  return probe.ok() ? std::move(probe).value() : nullptr;
}

std::unique_ptr<Probe> Tcp(const std::string& address) {
  v1::ProbeSpec spec;
  spec.mutable_tcp()->set_address(address);
  return Make(spec);
}

std::unique_ptr<Probe> Http(const std::string& url, int status = 0,
                            const std::string& body = "") {
  v1::ProbeSpec spec;
  spec.mutable_http()->set_url(url);
  spec.mutable_http()->set_expect_status(status);
  spec.mutable_http()->set_expect_body(body);
  return Make(spec);
}

// An exec probe whose policy allows exactly its own command.
std::unique_ptr<Probe> Exec(std::initializer_list<std::string> argv) {
  v1::ProbeSpec spec;
  for (const auto& a : argv) spec.mutable_exec()->add_argv(a);
  auto probe = MakeProbe(spec, testing_util::Allowing({{*argv.begin()}}));
  EXPECT_TRUE(probe.ok()) << probe.status();
  return probe.ok() ? std::move(probe).value() : nullptr;
}

// ---- tcp ----

TEST(TcpProbeTest, ListeningSocketIsHealthy) {
  Listener listener;
  ASSERT_TRUE(listener.ok());
  auto probe = Tcp(listener.address());
  ASSERT_NE(probe, nullptr);
  ProbeResult r = probe->Check(Ms(500));
  EXPECT_TRUE(r.ok) << r.error;
  EXPECT_EQ(r.error, "");
}

TEST(TcpProbeTest, ClosedPortFails) {
  const int port = ClosedPort();
  auto probe = Tcp("127.0.0.1:" + std::to_string(port));
  ASSERT_NE(probe, nullptr);
  ProbeResult r = probe->Check(Ms(500));
  EXPECT_FALSE(r.ok);
  EXPECT_THAT(r.error, HasSubstr("Connection refused"));
}

TEST(TcpProbeTest, HostNameIsResolved) {
  Listener listener;
  ASSERT_TRUE(listener.ok());
  auto probe = Tcp("localhost:" + std::to_string(listener.port()));
  ASSERT_NE(probe, nullptr);
  // localhost may resolve to ::1 first, where nothing listens; 127.0.0.1 follows.
  ProbeResult r = probe->Check(Ms(2000));
  EXPECT_TRUE(r.ok) << r.error;
}

TEST(TcpProbeTest, Ipv6LoopbackLiteral) {
  int fd = ::socket(AF_INET6, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in6 addr{};
  addr.sin6_family = AF_INET6;
  addr.sin6_addr = in6addr_loopback;
  if (fd < 0 || ::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
    // No IPv6 loopback on this host (e.g. a container with IPv6 disabled): the
    // probe must still fail cleanly with a reason rather than be skipped.
    if (fd >= 0) ::close(fd);
    auto probe = Tcp("[::1]:" + std::to_string(ClosedPort()));
    ASSERT_NE(probe, nullptr);
    ProbeResult r = probe->Check(Ms(500));
    EXPECT_FALSE(r.ok);
    EXPECT_THAT(r.error, HasSubstr("[::1]:"));
    return;
  }
  ASSERT_EQ(::listen(fd, 4), 0);
  socklen_t len = sizeof(addr);
  ASSERT_EQ(::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len), 0);
  const int port = ntohs(addr.sin6_port);
  auto probe = Tcp("[::1]:" + std::to_string(port));
  ASSERT_NE(probe, nullptr);
  ProbeResult r = probe->Check(Ms(500));
  EXPECT_TRUE(r.ok) << r.error;
  ::close(fd);
  r = probe->Check(Ms(500));
  EXPECT_FALSE(r.ok);
  EXPECT_THAT(r.error, HasSubstr("connect [::1]:"));
}

// ---- http ----

constexpr char kOk[] =
    "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 15\r\n\r\nstatus: healthy";

TEST(HttpProbeTest, StatusMatchSendsHostAndConnectionClose) {
  HttpServer server(kOk);
  ASSERT_TRUE(server.ok());
  auto probe = Http(server.url("/healthz?deep=1"));
  ASSERT_NE(probe, nullptr);
  ProbeResult r = probe->Check(Ms(1000));
  EXPECT_TRUE(r.ok) << r.error;
  const std::string request = server.last_request();
  EXPECT_THAT(request, ::testing::StartsWith("GET /healthz?deep=1 HTTP/1.1\r\n"));
  EXPECT_THAT(request, HasSubstr("\r\nHost: 127.0.0.1:" + std::to_string(server.port()) +
                                 "\r\n"));
  EXPECT_THAT(request, HasSubstr("\r\nConnection: close\r\n"));
}

TEST(HttpProbeTest, BodyMatch) {
  HttpServer server(kOk);
  ASSERT_TRUE(server.ok());
  auto probe = Http(server.url(), 200, "healthy");
  ASSERT_NE(probe, nullptr);
  ProbeResult r = probe->Check(Ms(1000));
  EXPECT_TRUE(r.ok) << r.error;
}

TEST(HttpProbeTest, BodyMismatchFails) {
  HttpServer server(kOk);
  ASSERT_TRUE(server.ok());
  auto probe = Http(server.url(), 200, "leader");
  ASSERT_NE(probe, nullptr);
  ProbeResult r = probe->Check(Ms(1000));
  EXPECT_FALSE(r.ok);
  EXPECT_THAT(r.error, HasSubstr("does not contain \"leader\""));
}

TEST(HttpProbeTest, StatusMismatchFails) {
  HttpServer server(
      "HTTP/1.1 503 Service Unavailable\r\nTransfer-Encoding: chunked\r\n\r\n"
      "7\r\nstandby\r\n0\r\n\r\n");
  ASSERT_TRUE(server.ok());
  auto probe = Http(server.url());
  ASSERT_NE(probe, nullptr);
  ProbeResult r = probe->Check(Ms(1000));
  EXPECT_FALSE(r.ok);
  EXPECT_THAT(r.error, HasSubstr("status 503, expected 200"));

  // The same answer is healthy when 503 and "standby" are what is expected.
  auto standby = Http(server.url(), 503, "standby");
  ASSERT_NE(standby, nullptr);
  r = standby->Check(Ms(1000));
  EXPECT_TRUE(r.ok) << r.error;
}

TEST(HttpProbeTest, CloseDelimitedBody) {
  HttpServer server("HTTP/1.0 200 OK\r\n\r\nno length, ends at close");
  ASSERT_TRUE(server.ok());
  auto probe = Http(server.url(), 200, "ends at close");
  ASSERT_NE(probe, nullptr);
  ProbeResult r = probe->Check(Ms(1000));
  EXPECT_TRUE(r.ok) << r.error;
}

TEST(HttpProbeTest, SilentServerTimesOutWithinTheTimeout) {
  HttpServer server("", /*silent=*/true);
  ASSERT_TRUE(server.ok());
  auto probe = Http(server.url());
  ASSERT_NE(probe, nullptr);
  const auto start = SteadyClock::now();
  ProbeResult r = probe->Check(Ms(150));
  const auto took = SteadyClock::now() - start;
  EXPECT_FALSE(r.ok);
  EXPECT_THAT(r.error, HasSubstr("timed out"));
  EXPECT_GE(took, Ms(140));
  EXPECT_LT(took, Ms(400));
}

TEST(HttpProbeTest, ClosedPortFails) {
  auto probe = Http("http://127.0.0.1:" + std::to_string(ClosedPort()) + "/");
  ASSERT_NE(probe, nullptr);
  ProbeResult r = probe->Check(Ms(500));
  EXPECT_FALSE(r.ok);
  EXPECT_THAT(r.error, HasSubstr("Connection refused"));
}

// ---- exec ----

TEST(ExecProbeTest, TrueIsHealthyFalseIsNot) {
  auto ok = Exec({"/usr/bin/true"});
  ASSERT_NE(ok, nullptr);
  ProbeResult r = ok->Check(Ms(2000));
  EXPECT_TRUE(r.ok) << r.error;

  auto bad = Exec({"/usr/bin/false"});
  ASSERT_NE(bad, nullptr);
  r = bad->Check(Ms(2000));
  EXPECT_FALSE(r.ok);
  EXPECT_THAT(r.error, HasSubstr("exit status 1"));
}

TEST(ExecProbeTest, ArgumentsArePassedWithoutAShell) {
  // Through a shell "$HOME" would expand to its value and the test would fail;
  // as an argv element it is the literal text.
  const char* home = std::getenv("HOME");
  auto probe = Exec({"/usr/bin/test", "$HOME", "!=", home != nullptr ? home : "/"});
  ASSERT_NE(probe, nullptr);
  EXPECT_TRUE(probe->Check(Ms(2000)).ok);
  auto output = Exec({"/usr/bin/ls", "/nonexistent-faultline-dir"});
  ASSERT_NE(output, nullptr);
  ProbeResult r = output->Check(Ms(2000));
  EXPECT_FALSE(r.ok);
  EXPECT_THAT(r.error, HasSubstr("nonexistent-faultline-dir"));  // stderr is kept
}

TEST(ExecProbeTest, MissingCommandFails) {
  auto probe = Exec({"/usr/bin/faultline-no-such-command-xyz"});
  ASSERT_NE(probe, nullptr);
  ProbeResult r = probe->Check(Ms(2000));
  EXPECT_FALSE(r.ok);
  EXPECT_THAT(r.error, HasSubstr("No such file or directory"));
}

TEST(ExecProbeTest, RefusedWithoutAPolicy) {
  v1::ProbeSpec spec;
  spec.mutable_exec()->add_argv("/usr/bin/true");
  auto probe = MakeProbe(spec);
  EXPECT_EQ(probe.status().code(), absl::StatusCode::kPermissionDenied);
  EXPECT_THAT(std::string(probe.status().message()),
              HasSubstr("exec probe `/usr/bin/true` refused: no exec policy here allows any "
                        "command (exec.allow is empty"));
}

TEST(ExecProbeTest, OnlyWhatThePolicyAllows) {
  v1::ExecPolicy proto;
  proto.add_allow()->add_argv("/usr/bin/true");  // exactly this
  proto.add_allow()->add_argv_prefix("/usr/bin/test");
  proto.mutable_allow(1)->add_argv_prefix("-n");  // anything after these
  proto.set_user("nobody");
  auto loaded = ExecPolicy::FromProto(proto);
  ASSERT_TRUE(loaded.ok()) << loaded.status();
  const ExecPolicy policy = *loaded;
  auto make = [&](std::vector<std::string> argv) {
    v1::ProbeSpec spec;
    for (const auto& a : argv) spec.mutable_exec()->add_argv(a);
    return MakeProbe(spec, policy).status();
  };
  EXPECT_TRUE(make({"/usr/bin/true"}).ok());
  EXPECT_TRUE(make({"/usr/bin/test", "-n", "x"}).ok());    // prefix rule
  EXPECT_TRUE(make({"/usr/bin/test", "-n"}).ok());         // the prefix itself
  const absl::Status shell = make({"/bin/sh", "-c", "id"});
  EXPECT_EQ(shell.code(), absl::StatusCode::kPermissionDenied);
  EXPECT_THAT(std::string(shell.message()),
              HasSubstr("exec probe `/bin/sh -c id` refused: not allowed by the exec policy "
                        "(exec.allow: /usr/bin/true; /usr/bin/test -n ...)"));
  EXPECT_EQ(make({"/usr/bin/true", "extra"}).code(), absl::StatusCode::kPermissionDenied);
  EXPECT_EQ(make({"/usr/bin/test", "-z", "x"}).code(), absl::StatusCode::kPermissionDenied);
  // No PATH lookup: a bare name is refused before any policy is asked.
  const absl::Status bare = make({"true"});
  EXPECT_EQ(bare.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(bare.message()), HasSubstr("exec.argv[0]: must be an absolute path"));
}

TEST(ExecProbeTest, RunsAsThePolicyUserFromRootWithAMinimalEnvironment) {
  ASSERT_EQ(::geteuid(), 0u) << "the agent runs as root; so do these tests";
  ::setenv("FAULTLINE_TEST_SECRET", "s3cret", 1);
  // A shell here is the test's own command, allowed by the test's own policy.
  auto probe = Exec({"/bin/sh", "-c",
                     "test \"$(id -u):$(id -g):$(id -G)\" = 65534:65534:65534 && "
                     "test \"$(pwd)\" = / && test -z \"$FAULTLINE_TEST_SECRET\" && "
                     "test \"$HOME\" = /"});
  ::unsetenv("FAULTLINE_TEST_SECRET");
  ASSERT_NE(probe, nullptr);
  ProbeResult r = probe->Check(Ms(2000));
  EXPECT_TRUE(r.ok) << r.error;
}

TEST(ExecProbeTest, TimeoutKillsAndReapsTheChild) {
  auto probe = Exec({"/usr/bin/sleep", "5"});
  ASSERT_NE(probe, nullptr);
  const auto start = SteadyClock::now();
  ProbeResult r = probe->Check(Ms(200));
  const auto took = SteadyClock::now() - start;
  EXPECT_FALSE(r.ok);
  EXPECT_THAT(r.error, HasSubstr("timed out after 200 ms"));
  EXPECT_GE(took, Ms(190));
  EXPECT_LT(took, Ms(1000));
  // The message names the pid; it must be gone (killed and reaped, not a zombie).
  const size_t at = r.error.find("pid ");
  ASSERT_NE(at, std::string::npos);
  const pid_t pid = static_cast<pid_t>(std::stol(r.error.substr(at + 4)));
  ASSERT_GT(pid, 1);
  errno = 0;
  EXPECT_EQ(::kill(pid, 0), -1);
  EXPECT_EQ(errno, ESRCH);
}

// ---- grpc_health ----

class GrpcHealthProbeTest : public ::testing::Test {
 protected:
  void SetUp() override {
    grpc::EnableDefaultHealthCheckService(true);
    grpc::ServerBuilder builder;
    // A server needs one real service; the Agent service's stubs will do.
    builder.RegisterService(&agent_service_);
    builder.AddListeningPort("127.0.0.1:0", grpc::InsecureServerCredentials(), &port_);
    server_ = builder.BuildAndStart();
    ASSERT_NE(server_, nullptr);
    ASSERT_GT(port_, 0);
    ASSERT_NE(server_->GetHealthCheckService(), nullptr);
  }
  void TearDown() override {
    if (server_) server_->Shutdown(std::chrono::system_clock::now());
  }

  std::unique_ptr<Probe> HealthProbe(const std::string& service) {
    v1::ProbeSpec spec;
    spec.mutable_grpc_health()->set_address("127.0.0.1:" + std::to_string(port_));
    spec.mutable_grpc_health()->set_service(service);
    return Make(spec);
  }

  int port_ = 0;
  v1::Agent::Service agent_service_;
  std::unique_ptr<grpc::Server> server_;
};

TEST_F(GrpcHealthProbeTest, ServingIsHealthy) {
  auto probe = HealthProbe("");
  ASSERT_NE(probe, nullptr);
  ProbeResult r = probe->Check(Ms(2000));
  EXPECT_TRUE(r.ok) << r.error;
}

TEST_F(GrpcHealthProbeTest, NotServingFails) {
  server_->GetHealthCheckService()->SetServingStatus("db", false);
  auto probe = HealthProbe("db");
  ASSERT_NE(probe, nullptr);
  ProbeResult r = probe->Check(Ms(2000));
  EXPECT_FALSE(r.ok);
  EXPECT_THAT(r.error, HasSubstr("NOT_SERVING"));

  server_->GetHealthCheckService()->SetServingStatus("db", true);
  r = probe->Check(Ms(2000));
  EXPECT_TRUE(r.ok) << r.error;
}

TEST_F(GrpcHealthProbeTest, UnknownServiceFails) {
  auto probe = HealthProbe("no-such-service");
  ASSERT_NE(probe, nullptr);
  ProbeResult r = probe->Check(Ms(2000));
  EXPECT_FALSE(r.ok);
  EXPECT_THAT(r.error, HasSubstr("Health/Check"));
}

TEST_F(GrpcHealthProbeTest, HoldsATenMillisecondInterval) {
  v1::ProbeSpec spec;
  spec.mutable_grpc_health()->set_address("127.0.0.1:" + std::to_string(port_));
  spec.set_interval("10ms");
  spec.set_timeout("200ms");
  std::vector<v1::ProbeSample> samples;
  const auto start = SteadyClock::now();
  absl::Status status = RunProbeLoop(spec, 20, [&](const v1::ProbeSample& s) {
    samples.push_back(s);
    return true;
  });
  const auto took = SteadyClock::now() - start;
  ASSERT_TRUE(status.ok()) << status;
  ASSERT_EQ(samples.size(), 20u);
  int64_t max_latency = 0;
  for (const auto& s : samples) {
    EXPECT_TRUE(s.ok()) << s.error();
    max_latency = std::max<int64_t>(max_latency, s.latency_ns());
  }
  // A fresh channel per check still fits well inside 10 ms on loopback, so no
  // slot is skipped: 20 samples span 190 ms.
  EXPECT_LT(took, Ms(260)) << "slowest check " << max_latency / 1000 << " us";
}

TEST_F(GrpcHealthProbeTest, StoppedServerFailsWithinTheTimeout) {
  auto probe = HealthProbe("");
  ASSERT_NE(probe, nullptr);
  ASSERT_TRUE(probe->Check(Ms(2000)).ok);
  server_->Shutdown(std::chrono::system_clock::now());
  server_->Wait();
  server_.reset();
  const auto start = SteadyClock::now();
  ProbeResult r = probe->Check(Ms(300));
  const auto took = SteadyClock::now() - start;
  EXPECT_FALSE(r.ok);
  EXPECT_LT(took, Ms(800));
}

}  // namespace
}  // namespace faultline
