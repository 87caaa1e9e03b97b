// MakeProbe / ParseProbeTiming validation, and the parsers and encoders behind
// the probes. No sockets.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <functional>
#include <string>
#include <vector>

#include "probes/probe.h"
#include "probes/probe_internal.h"
#include "probes/probe_runner.h"

namespace faultline {
namespace {

using ::testing::HasSubstr;
using ::testing::StartsWith;

v1::ProbeSpec TcpSpec() {
  v1::ProbeSpec spec;
  spec.set_name("t");
  spec.mutable_tcp()->set_address("127.0.0.1:80");
  spec.set_interval("10ms");
  spec.set_timeout("50ms");
  return spec;
}

struct BadSpec {
  std::string what;
  std::function<void(v1::ProbeSpec*)> mutate;
  std::string message_prefix;
};

TEST(ProbeValidationTest, EveryFieldIsCheckedAndNamed) {
  const std::vector<BadSpec> cases = {
      {"no check", [](v1::ProbeSpec* s) { s->clear_tcp(); }, "probe: exactly one of"},
      {"interval too small", [](v1::ProbeSpec* s) { s->set_interval("5ms"); },
       "interval: must be at least 10ms"},
      {"interval garbage", [](v1::ProbeSpec* s) { s->set_interval("fast"); }, "interval:"},
      {"interval too large", [](v1::ProbeSpec* s) { s->set_interval("2h"); },
       "interval: must be at most"},
      {"timeout zero", [](v1::ProbeSpec* s) { s->set_timeout("0ms"); },
       "timeout: must be at least"},
      {"timeout garbage", [](v1::ProbeSpec* s) { s->set_timeout("-1s"); }, "timeout:"},
      {"timeout too large", [](v1::ProbeSpec* s) { s->set_timeout("1h"); },
       "timeout: must be at most"},
      {"tcp empty", [](v1::ProbeSpec* s) { s->mutable_tcp()->set_address(""); },
       "tcp.address: required"},
      {"tcp no port", [](v1::ProbeSpec* s) { s->mutable_tcp()->set_address("db.local"); },
       "tcp.address:"},
      {"tcp port 0", [](v1::ProbeSpec* s) { s->mutable_tcp()->set_address("10.0.0.1:0"); },
       "tcp.address: port must be between 1 and 65535"},
      {"tcp port big", [](v1::ProbeSpec* s) { s->mutable_tcp()->set_address("h:70000"); },
       "tcp.address: invalid port"},
      {"tcp ipv6 no brackets", [](v1::ProbeSpec* s) { s->mutable_tcp()->set_address("::1:80"); },
       "tcp.address: IPv6 addresses need brackets"},
      {"tcp unix", [](v1::ProbeSpec* s) { s->mutable_tcp()->set_address("unix:/x"); },
       "tcp.address:"},
      {"http https", [](v1::ProbeSpec* s) { s->mutable_http()->set_url("https://a/"); },
       "http.url: only http:// is supported"},
      {"http empty", [](v1::ProbeSpec* s) { s->mutable_http()->set_url(""); },
       "http.url: required"},
      {"http no host", [](v1::ProbeSpec* s) { s->mutable_http()->set_url("http:///x"); },
       "http.url: missing host"},
      {"http userinfo",
       [](v1::ProbeSpec* s) { s->mutable_http()->set_url("http://u:p@host/"); },
       "http.url: user names"},
      {"http header injection",
       [](v1::ProbeSpec* s) { s->mutable_http()->set_url("http://h/\r\nX: y"); },
       "http.url: spaces and control characters"},
      {"http bad port", [](v1::ProbeSpec* s) { s->mutable_http()->set_url("http://h:0/"); },
       "http.url: port must be"},
      {"http status",
       [](v1::ProbeSpec* s) {
         s->mutable_http()->set_url("http://h/");
         s->mutable_http()->set_expect_status(700);
       },
       "http.expect_status: must be between 100 and 599, got 700"},
      {"exec empty", [](v1::ProbeSpec* s) { s->mutable_exec(); }, "exec.argv: must not be empty"},
      {"exec empty command",
       [](v1::ProbeSpec* s) {
         s->mutable_exec()->add_argv("");
         s->mutable_exec()->add_argv("x");
       },
       "exec.argv[0]:"},
      {"grpc empty", [](v1::ProbeSpec* s) { s->mutable_grpc_health(); },
       "grpc_health.address: required"},
      {"grpc relative unix",
       [](v1::ProbeSpec* s) { s->mutable_grpc_health()->set_address("unix:rel"); },
       "grpc_health.address: unix socket path must be absolute"},
      {"grpc service",
       [](v1::ProbeSpec* s) {
         s->mutable_grpc_health()->set_address("127.0.0.1:1");
         s->mutable_grpc_health()->set_service("a\nb");
       },
       "grpc_health.service:"},
      {"redis empty", [](v1::ProbeSpec* s) { s->mutable_redis(); },
       "redis: exactly one of address (a server) and sentinels"},
      {"redis both",
       [](v1::ProbeSpec* s) {
         s->mutable_redis()->set_address("10.0.0.1:6379");
         s->mutable_redis()->add_sentinels("10.0.0.2:26379");
         s->mutable_redis()->set_master("mymaster");
       },
       "redis: exactly one of address (a server) and sentinels"},
      {"redis bad address",
       [](v1::ProbeSpec* s) { s->mutable_redis()->set_address("10.0.0.1"); },
       "redis.address:"},
      {"redis master without sentinels",
       [](v1::ProbeSpec* s) {
         s->mutable_redis()->set_address("10.0.0.1:6379");
         s->mutable_redis()->set_master("mymaster");
       },
       "redis.master: only with sentinels"},
      {"redis sentinels without master",
       [](v1::ProbeSpec* s) { s->mutable_redis()->add_sentinels("10.0.0.2:26379"); },
       "redis.master: required with sentinels"},
      {"redis bad sentinel",
       [](v1::ProbeSpec* s) {
         s->mutable_redis()->add_sentinels("10.0.0.2:26379");
         s->mutable_redis()->add_sentinels("10.0.0.3:0");
         s->mutable_redis()->set_master("mymaster");
       },
       "redis.sentinels[1]:"},
      {"redis key without write",
       [](v1::ProbeSpec* s) {
         s->mutable_redis()->set_address("10.0.0.1:6379");
         s->mutable_redis()->set_key("k");
       },
       "redis.key: only with write: true"},
  };
  for (const BadSpec& c : cases) {
    v1::ProbeSpec spec = TcpSpec();
    c.mutate(&spec);
    const absl::Status status = ValidateProbe(spec);
    EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument) << c.what;
    EXPECT_THAT(std::string(status.message()), StartsWith(c.message_prefix)) << c.what;
  }
}

TEST(ProbeValidationTest, ValidSpecsBuild) {
  std::vector<v1::ProbeSpec> specs(8, TcpSpec());
  specs[1].mutable_tcp()->set_address("[::1]:6379");
  specs[2].mutable_http()->set_url("http://localhost:8080/healthz?full=1");
  specs[3].mutable_exec()->add_argv("/usr/bin/true");
  specs[4].mutable_grpc_health()->set_address("unix:/run/svc.sock");
  specs[5].mutable_grpc_health()->set_address("[::1]:50051");
  specs[6].mutable_redis()->set_address("localhost:6379");
  specs[7].mutable_redis()->add_sentinels("10.0.0.2:26379");
  specs[7].mutable_redis()->set_master("mymaster");
  specs[7].mutable_redis()->set_write(true);
  for (const auto& spec : specs) {
    const absl::Status status = ValidateProbe(spec);
    EXPECT_TRUE(status.ok()) << spec.ShortDebugString() << ": " << status;
  }
}

TEST(ProbeValidationTest, ExecPolicyIsValidatedAtLoad) {
  struct BadPolicy {
    const char* what;
    std::function<void(v1::ExecPolicy*)> mutate;
    const char* message_prefix;
  };
  const std::vector<BadPolicy> cases = {
      {"no user", [](v1::ExecPolicy* p) { p->add_allow()->add_argv("/usr/bin/true"); },
       "exec.user: required with exec.allow"},
      {"root",
       [](v1::ExecPolicy* p) {
         p->add_allow()->add_argv("/usr/bin/true");
         p->set_user("root");
       },
       "exec.user: \"root\" is root"},
      {"unknown user",
       [](v1::ExecPolicy* p) {
         p->add_allow()->add_argv("/usr/bin/true");
         p->set_user("faultline-no-such-user");
       },
       "exec.user: no such user \"faultline-no-such-user\""},
      {"relative",
       [](v1::ExecPolicy* p) {
         p->add_allow()->add_argv("true");
         p->set_user("nobody");
       },
       "exec.allow[0].argv[0]: must be an absolute path"},
      {"both",
       [](v1::ExecPolicy* p) {
         auto* rule = p->add_allow();
         rule->add_argv("/usr/bin/true");
         rule->add_argv_prefix("/usr/bin/true");
         p->set_user("nobody");
       },
       "exec.allow[0]: exactly one of argv and argv_prefix"},
      {"user without rules", [](v1::ExecPolicy* p) { p->set_user("nobody"); },
       "exec.user: set, but exec.allow is empty"},
  };
  for (const BadPolicy& c : cases) {
    v1::ExecPolicy proto;
    c.mutate(&proto);
    auto policy = ExecPolicy::FromProto(proto);
    EXPECT_EQ(policy.status().code(), absl::StatusCode::kInvalidArgument) << c.what;
    EXPECT_THAT(std::string(policy.status().message()), StartsWith(c.message_prefix))
        << c.what;
  }
  v1::ExecPolicy ok;
  ok.add_allow()->add_argv_prefix("/usr/bin/redis-cli");
  ok.set_user("nobody");
  auto policy = ExecPolicy::FromProto(ok);
  ASSERT_TRUE(policy.ok()) << policy.status();
  EXPECT_EQ(policy->credentials().uid, 65534u);
  EXPECT_TRUE(ExecPolicy::FromProto(v1::ExecPolicy()).ok());  // no policy: nothing runs
}

TEST(ProbeValidationTest, TimingDefaultsAndLimits) {
  v1::ProbeSpec spec = TcpSpec();
  spec.clear_interval();
  spec.clear_timeout();
  auto timing = ParseProbeTiming(spec);
  ASSERT_TRUE(timing.ok());
  EXPECT_EQ(timing->interval, std::chrono::seconds(1));
  EXPECT_EQ(timing->timeout, std::chrono::seconds(1));

  spec.set_interval("10ms");
  timing = ParseProbeTiming(spec);
  ASSERT_TRUE(timing.ok());
  EXPECT_EQ(timing->interval, std::chrono::milliseconds(10));
  EXPECT_EQ(timing->timeout, std::chrono::milliseconds(10));  // defaults to the interval

  spec.set_timeout("200ms");  // longer than the interval is allowed (slots are skipped)
  timing = ParseProbeTiming(spec);
  ASSERT_TRUE(timing.ok());
  EXPECT_EQ(timing->timeout, std::chrono::milliseconds(200));
}

TEST(ProbeValidationTest, RunProbeLoopRejectsBadInputWithoutEmitting) {
  int emitted = 0;
  auto emit = [&](const v1::ProbeSample&) { return ++emitted < 100; };
  absl::Status s = RunProbeLoop(TcpSpec(), -1, emit);
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(s.message()), HasSubstr("max_samples"));
  v1::ProbeSpec bad = TcpSpec();
  bad.set_interval("1ms");
  s = RunProbeLoop(bad, 1, emit);
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(s.message()), StartsWith("interval:"));
  EXPECT_EQ(emitted, 0);
}

TEST(HttpUrlTest, SplitsUrls) {
  auto u = probes::ParseHttpUrl("url", "http://example.com/a/b?c=d#frag");
  ASSERT_TRUE(u.ok()) << u.status();
  EXPECT_EQ(u->target.host, "example.com");
  EXPECT_EQ(u->target.port, 80);
  EXPECT_EQ(u->host_header, "example.com");
  EXPECT_EQ(u->path, "/a/b?c=d");

  u = probes::ParseHttpUrl("url", "HTTP://[::1]:8080");
  ASSERT_TRUE(u.ok()) << u.status();
  EXPECT_EQ(u->target.host, "::1");
  EXPECT_EQ(u->target.port, 8080);
  EXPECT_EQ(u->host_header, "[::1]:8080");
  EXPECT_EQ(u->path, "/");

  u = probes::ParseHttpUrl("url", "http://[fe80::1]?x");
  ASSERT_TRUE(u.ok()) << u.status();
  EXPECT_EQ(u->target.port, 80);
  EXPECT_EQ(u->path, "/?x");

  const std::string req = probes::BuildHttpRequest(*probes::ParseHttpUrl("u", "http://h:81/z"));
  EXPECT_EQ(req,
            "GET /z HTTP/1.1\r\nHost: h:81\r\nUser-Agent: faultline-probe\r\nAccept: */*\r\n"
            "Connection: close\r\n\r\n");
}

TEST(HttpResponseTest, ParsesLengthChunkedAndCloseDelimited) {
  bool complete = false;
  auto r = probes::ParseHttpResponse("HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhel", false,
                                     &complete);
  ASSERT_TRUE(r.ok());
  EXPECT_FALSE(complete);
  r = probes::ParseHttpResponse("HTTP/1.1 200 OK\r\ncontent-length: 5\r\n\r\nhello", false,
                                &complete);
  ASSERT_TRUE(r.ok());
  EXPECT_TRUE(complete);
  EXPECT_EQ(r->status, 200);
  EXPECT_EQ(r->body, "hello");

  const std::string chunked =
      "HTTP/1.1 503 Service Unavailable\r\nTransfer-Encoding: chunked\r\n\r\n"
      "4\r\ndown\r\n8;ext=1\r\n for now\r\n0\r\n\r\n";
  r = probes::ParseHttpResponse(chunked.substr(0, chunked.size() - 5), false, &complete);
  ASSERT_TRUE(r.ok());
  EXPECT_FALSE(complete);
  r = probes::ParseHttpResponse(chunked, false, &complete);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_TRUE(complete);
  EXPECT_EQ(r->status, 503);
  EXPECT_EQ(r->body, "down for now");

  r = probes::ParseHttpResponse("HTTP/1.0 200 OK\r\n\r\nuntil close", false, &complete);
  ASSERT_TRUE(r.ok());
  EXPECT_FALSE(complete);
  r = probes::ParseHttpResponse("HTTP/1.0 200 OK\r\n\r\nuntil close", true, &complete);
  ASSERT_TRUE(r.ok());
  EXPECT_TRUE(complete);
  EXPECT_EQ(r->body, "until close");

  EXPECT_FALSE(probes::ParseHttpResponse("SSH-2.0-OpenSSH\r\n\r\n", false, &complete).ok());
  EXPECT_FALSE(probes::ParseHttpResponse("HTTP/1.1 200 OK\r\nContent-Length: 9\r\n\r\nab",
                                         true, &complete).ok());
  EXPECT_FALSE(probes::ParseHttpResponse("", true, &complete).ok());
}

TEST(HealthWireTest, EncodesRequestAndDecodesResponse) {
  EXPECT_EQ(probes::EncodeHealthCheckRequest(""), "");
  EXPECT_EQ(probes::EncodeHealthCheckRequest("svc"), std::string("\x0a\x03svc", 5));
  const std::string long_name(200, 'x');
  const std::string encoded = probes::EncodeHealthCheckRequest(long_name);
  EXPECT_EQ(encoded.substr(0, 3), std::string("\x0a\xc8\x01", 3));  // varint 200
  EXPECT_EQ(encoded.size(), 203u);

  EXPECT_EQ(*probes::DecodeHealthCheckResponse(""), 0);
  EXPECT_EQ(*probes::DecodeHealthCheckResponse(std::string("\x08\x01", 2)), 1);
  EXPECT_EQ(*probes::DecodeHealthCheckResponse(std::string("\x08\x02", 2)), 2);
  // Unknown fields (string 2, fixed32 3) are skipped.
  EXPECT_EQ(*probes::DecodeHealthCheckResponse(
                std::string("\x12\x02hi\x1d\x00\x00\x00\x00\x08\x01", 11)),
            1);
  EXPECT_FALSE(probes::DecodeHealthCheckResponse(std::string("\x08", 1)).ok());
  EXPECT_FALSE(probes::DecodeHealthCheckResponse(std::string("\x12\x05hi", 4)).ok());
}

}  // namespace
}  // namespace faultline
