// Data writers on agents (issue 10, "RPO, measured"; docs/experiments.md,
// "Writers on agents"), end to end in a datacenter made of namespaces
// (harness/datacenter.h):
//
//   ctl  10.88.0.2    faultline-controller
//   a1   10.88.0.11   zone=a: redis-server on 10.88.0.11:6379
//   c1   10.88.0.31   zone=c: redis-server on 127.0.0.1:6379 (its own loopback)
//
// One run, a zone-a outage of 3 s, three workloads:
//   local  from c1 to 127.0.0.1:6379: only c1 reaches that server, so every
//          write acked proves the writer ran on c1's network path;
//   ctl    from the controller to 127.0.0.1:6379: the controller's own
//          loopback has no server, nothing is acked, nothing read back;
//   cut    from c1 to a1's server, across the outage: writes during the cut
//          fail or time out (never acked), none is lost, and the server's own
//          keys (kept) hold no write sent while the cut was in force.
//
// And a split brain (SplitBrain below): a primary in zone a, its replica in
// zone b, Sentinels only in zones b and c (quorum 2, outside a), and a writer
// on a1 in zone a. The zone-a outage makes the Sentinels promote b1 while a1,
// cut off, still acks the writer's writes on the connection it keeps; when
// zone a comes back a1 is made a replica and those writes are gone. The test's
// own truth: every SET a1 executed (MONITOR, inside a1) whose key b1 does not
// hold after the run (the workload keeps its keys).
#include <fmt/format.h>
#include <gmock/gmock.h>
#include <google/protobuf/util/json_util.h>
#include <gtest/gtest.h>
#include <signal.h>

#include <algorithm>
#include <charconv>
#include <chrono>
#include <cstdio>
#include <map>
#include <set>
#include <sstream>
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

constexpr int kRedisPort = 6379;
// How far from the cut's edges a write may still have got through (sent just
// before the cut and answered late, or the kernel's rule removal racing).
constexpr int64_t kEdgeNs = 300'000'000;

class DataFromAgent : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_OK_AND_ASSIGN(dc_, Datacenter::Create("data", {
        {"a1", "10.88.0.11", {{"zone", "a"}}, {}},
        {"c1", "10.88.0.31", {{"zone", "c"}}, {}},
    }));
    ASSERT_OK(dc_->StartController());
    for (auto& host : dc_->hosts()) ASSERT_OK(dc_->StartAgent(*host));
    ASSERT_OK(dc_->WaitForHealthyAgents(dc_->HostNames(), 30s));
    ASSERT_NO_FATAL_FAILURE(StartRedis(*dc_->Find("a1"), dc_->Find("a1")->ip()));
    ASSERT_NO_FATAL_FAILURE(StartRedis(*dc_->Find("c1"), "127.0.0.1"));
  }

  void TearDown() override {
    if (run_) run_->KillGroup(SIGKILL);
    for (auto& r : redis_) r->KillGroup(SIGKILL);
  }

  void StartRedis(DcHost& host, const std::string& ip, std::vector<std::string> extra = {}) {
    std::vector<std::string> argv = {"redis-server", "--bind", ip, "--port",
                                     std::to_string(kRedisPort), "--save", "",
                                     "--appendonly", "no", "--protected-mode", "no"};
    argv.insert(argv.end(), extra.begin(), extra.end());
    ASSERT_OK_AND_ASSIGN(auto server, host.sim->Exec(argv));
    redis_.push_back(std::move(server));
    bool up = false;
    for (int i = 0; i < 50 && !up; ++i) {
      up = Redis(host, ip, {"PING"}).out.starts_with("PONG");
      if (!up) std::this_thread::sleep_for(100ms);
    }
    ASSERT_TRUE(up) << "redis-server in " << host.name() << " on " << ip << " did not answer";
  }

  static CommandResult Redis(DcHost& host, const std::string& ip, std::vector<std::string> args) {
    return RedisAt(host, ip, kRedisPort, std::move(args));
  }
  static CommandResult RedisAt(DcHost& host, const std::string& ip, int port,
                               std::vector<std::string> args) {
    std::vector<std::string> argv = {"redis-cli", "--raw", "-h", ip, "-p", std::to_string(port)};
    argv.insert(argv.end(), args.begin(), args.end());
    return host.sim->Run(argv, 10s);
  }

  // The values ("<seq>:<unix ns when sent>") of every key matching `pattern`
  // on the server at ip, read inside `host`.
  static std::vector<std::string> Values(DcHost& host, const std::string& ip,
                                         const std::string& pattern, std::string* error) {
    CommandResult r = Redis(host, ip,
                            {"EVAL",
                             "local out = {} for _, k in ipairs(redis.call('KEYS', ARGV[1])) do "
                             "out[#out + 1] = redis.call('GET', k) end return out",
                             "0", pattern});
    if (!r.ok()) *error = r.Describe();
    std::vector<std::string> values;
    std::istringstream lines(r.out);
    for (std::string line; std::getline(lines, line);) {
      if (!line.empty()) values.push_back(line);
    }
    return values;
  }

  // Runs `yaml` (`faultline run -o json`, in the background) and parses the
  // report it prints; a fatal failure when it does not within `timeout`.
  void Run(const std::string& yaml, std::chrono::seconds timeout, v1::RunReport* report) {
    ASSERT_OK(dc_->dir().WriteFile("run.yaml", yaml));
    SubprocessOptions so;
    so.stdout_file = dc_->dir().Path("run.out");
    so.stderr_file = dc_->dir().Path("run.err");
    ASSERT_OK_AND_ASSIGN(run_, Subprocess::Start(dc_->Cli({"run", dc_->dir().Path("run.yaml"),
                                                           "-o", "json"}),
                                                 so));
    ASSERT_TRUE(run_->Wait(timeout)) << "the run did not finish in " << timeout.count() << " s";
    const std::string out = run_->Stdout();
    ASSERT_TRUE(google::protobuf::util::JsonStringToMessage(out, report).ok())
        << "exit " << run_->exit_code() << "\n" << out << run_->Stderr() << "\ncontroller: "
        << dc_->ControllerLog();
    for (const auto& d : report->data()) {
      std::printf("data %s from %s: attempted %ld, acked %ld, lost %ld, recovered %ld, "
                  "unexpected %ld, reads %d, stable %d, rpo %.1f ms (± %.0f); error \"%s\"\n",
                  d.name().c_str(), d.from().c_str(), static_cast<long>(d.writes_attempted()),
                  static_cast<long>(d.writes_acked()), static_cast<long>(d.writes_lost()),
                  static_cast<long>(d.writes_recovered()),
                  static_cast<long>(d.writes_unexpected()), d.reads(), d.read_stable(),
                  d.rpo_ms(), d.rpo_error_ms(), d.error().c_str());
    }
    std::printf("verdict %s: %s\n", report->verdict().c_str(), report->reason().c_str());
  }

  std::string Experiment() const {
    return fmt::format(R"(
name: data-from-agent
description: Writers on c1 write through c1's own network; a zone-a outage cuts one of them.
targets:
  client: {{names: [c1]}}
probes:
  - name: c1-redis
    from: client
    tcp: {{address: "127.0.0.1:{1}"}}
    interval: 100ms
    timeout: 500ms
faults:
  - zone_outage: {{zone: a}}
    duration: 3s
data:
  - name: local
    from: client
    redis: {{address: "127.0.0.1:{1}"}}
    rate: 50/s
    read_timeout: 5s
  - name: ctl
    redis: {{address: "127.0.0.1:{1}"}}
    rate: 20/s
    timeout: 200ms
    read_timeout: 1s
  - name: cut
    from: client
    redis: {{address: "{0}:{1}"}}
    rate: 50/s
    timeout: 200ms
    read_timeout: 5s
    keep: true
objectives: {{rto: 30s}}
duration: 4s
)",
                       dc_->Find("a1")->ip(), kRedisPort);
  }

  std::unique_ptr<Datacenter> dc_;
  std::vector<std::unique_ptr<Subprocess>> redis_;
  std::unique_ptr<Subprocess> run_;  // destroyed before the datacenter
};

const v1::DataResult* Named(const v1::RunReport& report, const std::string& name) {
  for (const auto& d : report.data()) {
    if (d.name() == name) return &d;
  }
  return nullptr;
}

TEST_F(DataFromAgent, WritesTakeTheAgentsNetworkPathAndAZoneOutageCutsThem) {
  const auto t0 = Clock::now();
  v1::RunReport report;
  ASSERT_NO_FATAL_FAILURE(Run(Experiment(), 60s, &report));
  EXPECT_EQ(run_->exit_code(), 0);
  EXPECT_EQ(report.verdict(), "pass") << report.reason();
  ASSERT_EQ(report.data_size(), 3) << report.ShortDebugString();

  // local: c1's own loopback server, reachable from c1 only.
  const v1::DataResult* local = Named(report, "local");
  ASSERT_NE(local, nullptr);
  EXPECT_EQ(local->from(), "c1");
  EXPECT_GT(local->writes_acked(), 50) << "about 50/s for the whole run";
  EXPECT_EQ(local->writes_acked(), local->writes_attempted()) << "loopback: nothing to fail";
  EXPECT_EQ(local->writes_lost(), 0);
  EXPECT_EQ(local->writes_unexpected(), 0) << "every key read back was sent";
  EXPECT_GT(local->reads(), 0);
  EXPECT_TRUE(local->read_stable());
  EXPECT_EQ(local->error(), "");

  // ctl: the same address from the controller's host: no server there.
  const v1::DataResult* ctl = Named(report, "ctl");
  ASSERT_NE(ctl, nullptr);
  EXPECT_EQ(ctl->from(), "controller");
  EXPECT_GT(ctl->writes_attempted(), 0);
  EXPECT_EQ(ctl->writes_acked(), 0);
  EXPECT_EQ(ctl->reads(), 0);
  EXPECT_THAT(ctl->error(), ::testing::HasSubstr("not read back"));

  // cut: across the zone-a outage.
  const v1::DataResult* cut = Named(report, "cut");
  ASSERT_NE(cut, nullptr);
  EXPECT_EQ(cut->from(), "c1");
  EXPECT_GT(cut->writes_acked(), 50);
  EXPECT_EQ(cut->writes_lost(), 0) << "a cut loses no acknowledged write of a single server";
  const int64_t not_acked = cut->writes_attempted() - cut->writes_acked();
  // 3 s of cut, each write failing within its 200 ms timeout.
  EXPECT_GE(not_acked, 5) << "writes during the cut must fail or time out, not be acked";
  EXPECT_GT(cut->reads(), 0);
  EXPECT_TRUE(cut->read_stable());

  // The truth on a1's server: the cut's keys were kept; none was sent (by
  // c1's writer, on this machine's clock) well inside the cut.
  int64_t cut_from = 0, cut_to = 0;
  for (const auto& e : report.timeline()) {
    if (e.kind() == "injected") cut_from = std::max(cut_from, e.unix_ns());
    if (e.kind() == "reverted") cut_to = cut_to == 0 ? e.unix_ns() : std::min(cut_to, e.unix_ns());
  }
  ASSERT_GT(cut_from, 0);
  ASSERT_GT(cut_to, cut_from + 2 * kEdgeNs) << report.ShortDebugString();
  std::string error;
  DcHost& a1 = *dc_->Find("a1");
  const std::vector<std::string> kept =
      Values(a1, a1.ip(), fmt::format("faultline:{}:cut:*", report.run_id()), &error);
  ASSERT_EQ(error, "");
  EXPECT_EQ(static_cast<int64_t>(kept.size()), cut->writes_acked() + cut->writes_recovered());
  int inside = 0, before = 0, after = 0;
  for (const std::string& v : kept) {
    int64_t sent_ns = 0;
    const size_t colon = v.find(':');
    ASSERT_NE(colon, std::string::npos) << v;
    std::from_chars(v.data() + colon + 1, v.data() + v.size(), sent_ns);
    if (sent_ns > cut_from + kEdgeNs && sent_ns < cut_to - kEdgeNs) ++inside;
    if (sent_ns < cut_from) ++before;
    if (sent_ns > cut_to) ++after;
  }
  EXPECT_EQ(inside, 0) << "writes sent while zone a was cut off reached its server";
  EXPECT_GT(before, 0);
  EXPECT_GT(after, 0) << "the writer wrote again once the outage ended";
  std::printf("cut: %.2f s; a1 holds %zu keys: %d sent before, %d after, %d inside\n",
              static_cast<double>(cut_to - cut_from) / 1e9, kept.size(), before, after, inside);

  // The local workload's keys were removed on c1 (by c1's agent: ReadData).
  DcHost& c1 = *dc_->Find("c1");
  EXPECT_THAT(Values(c1, "127.0.0.1", fmt::format("faultline:{}:local:*", report.run_id()), &error),
              ::testing::IsEmpty());
  EXPECT_EQ(error, "");
  std::printf("test took %.1f s\n", std::chrono::duration<double>(Clock::now() - t0).count());
}

class SplitBrain : public DataFromAgent {
 protected:
  void SetUp() override {
    ASSERT_OK_AND_ASSIGN(dc_, Datacenter::Create("split", {
        {"a1", "10.88.0.11", {{"zone", "a"}}, {}},
        {"b1", "10.88.0.21", {{"zone", "b"}}, {}},
        {"c1", "10.88.0.31", {{"zone", "c"}}, {}},
    }));
    ASSERT_OK(dc_->StartController());
    for (auto& host : dc_->hosts()) ASSERT_OK(dc_->StartAgent(*host));
    ASSERT_OK(dc_->WaitForHealthyAgents(dc_->HostNames(), 30s));
    DcHost& a1 = *dc_->Find("a1");
    DcHost& b1 = *dc_->Find("b1");
    ASSERT_NO_FATAL_FAILURE(StartRedis(a1, a1.ip()));
    // Every SET a1 executes, from now on.
    SubprocessOptions so;
    so.stdout_file = dc_->dir().Path("a1-monitor.out");
    ASSERT_OK_AND_ASSIGN(monitor_, a1.sim->Exec({"redis-cli", "-h", a1.ip(), "-p",
                                                 std::to_string(kRedisPort), "monitor"},
                                                so));
    ASSERT_NO_FATAL_FAILURE(StartRedis(b1, b1.ip(), {"--replicaof", a1.ip(), "6379"}));
    for (const char* name : {"b1", "c1"}) {
      DcHost& host = *dc_->Find(name);
      const std::string conf = fmt::format("sentinel-{}.conf", name);
      ASSERT_OK(dc_->dir().WriteFile(
          conf, fmt::format("port 26379\nbind {}\nprotected-mode no\ndir {}\n"
                            "sentinel monitor mymaster {} 6379 2\n"
                            "sentinel down-after-milliseconds mymaster 1000\n"
                            "sentinel failover-timeout mymaster 2000\n",
                            host.ip(), dc_->dir().Path(""), a1.ip())));
      ASSERT_OK_AND_ASSIGN(auto sentinel, host.sim->Exec({"redis-sentinel", dc_->dir().Path(conf)}));
      redis_.push_back(std::move(sentinel));
    }
    // Ready: the replica is linked and each Sentinel knows the other and the
    // replica (a Sentinel that does not know the replica cannot promote it).
    bool ready = false;
    for (int i = 0; i < 300 && !ready; ++i) {
      ready = Redis(b1, b1.ip(), {"INFO", "replication"}).out.find("master_link_status:up") !=
              std::string::npos;
      for (const char* name : {"b1", "c1"}) {
        DcHost& host = *dc_->Find(name);
        const std::string master =
            RedisAt(host, host.ip(), 26379, {"SENTINEL", "MASTER", "mymaster"}).out;
        ready = ready && Field(master, "num-other-sentinels") == "1" &&
                Field(master, "num-slaves") == "1";
      }
      if (!ready) std::this_thread::sleep_for(100ms);
    }
    ASSERT_TRUE(ready) << "Redis and its Sentinels did not come up";
  }

  void TearDown() override {
    if (monitor_) monitor_->KillGroup(SIGKILL);
    DataFromAgent::TearDown();
  }

  // A field of `SENTINEL MASTER` (--raw: name and value lines in turn).
  static std::string Field(const std::string& reply, const std::string& name) {
    std::istringstream lines(reply);
    for (std::string line; std::getline(lines, line);) {
      if (line == name && std::getline(lines, line)) return line;
    }
    return "";
  }

  std::string Experiment() const {
    return R"(
name: split-brain
description: Zone a is cut off; a writer inside it keeps writing to the old primary.
targets:
  writer: {names: [a1]}
  observer: {names: [c1]}
probes:
  - name: primary-write
    from: observer
    redis: {sentinels: ["10.88.0.21:26379", "10.88.0.31:26379"], master: mymaster, write: true}
    interval: 100ms
    timeout: 500ms
faults:
  - zone_outage: {zone: a}
    duration: 6s
data:
  - name: orders
    from: writer
    redis: {sentinels: ["10.88.0.21:26379", "10.88.0.31:26379"], master: mymaster}
    rate: 50/s
    timeout: 250ms
    read_timeout: 10s
    keep: true
objectives: {rto: 30s, max_lost_writes: 0}
duration: 6s
)";
  }

  std::unique_ptr<Subprocess> monitor_;
};

TEST_F(SplitBrain, WritesTheOldPrimaryAckedInTheCutAreLostAndCountedExactly) {
  const auto t0 = Clock::now();
  v1::RunReport report;
  ASSERT_NO_FATAL_FAILURE(Run(Experiment(), 90s, &report));
  ASSERT_EQ(report.data_size(), 1) << report.ShortDebugString();
  const v1::DataResult& d = report.data(0);
  std::printf("RTO %.0f ms\n", report.time_to_recover_ms());
  EXPECT_EQ(d.from(), "a1");
  EXPECT_TRUE(d.read_stable());

  // The truth: what a1 executed, less what b1 (the primary now) holds.
  monitor_->KillGroup(SIGKILL);
  monitor_->Wait(5s);
  const std::string monitored = monitor_->Stdout();
  const std::string prefix = fmt::format("faultline:{}:orders:", report.run_id());
  std::map<int64_t, int64_t> set_on_a1;  // seq -> sent ns
  std::istringstream lines(monitored);
  for (std::string line; std::getline(lines, line);) {
    const size_t at = line.find("\"SET\" \"" + prefix);
    if (at == std::string::npos) continue;
    // ... "SET" "faultline:<run>:orders:<seq>" "<seq>:<ns>"
    const size_t value = line.find("\" \"", at + 7) + 3;
    int64_t seq = 0, ns = 0;
    const char* p = line.data() + value;
    auto [after_seq, ec] = std::from_chars(p, line.data() + line.size(), seq);
    if (ec != std::errc() || *after_seq != ':') continue;
    std::from_chars(after_seq + 1, line.data() + line.size(), ns);
    set_on_a1[seq] = ns;
  }
  DcHost& b1 = *dc_->Find("b1");
  std::string error;
  std::set<int64_t> on_b1;
  for (const std::string& v : Values(b1, b1.ip(), prefix + "*", &error)) {
    int64_t seq = 0;
    std::from_chars(v.data(), v.data() + v.size(), seq);
    on_b1.insert(seq);
  }
  ASSERT_EQ(error, "");
  std::vector<int64_t> truth;
  int64_t first_ns = 0, last_ns = 0;
  for (const auto& [seq, ns] : set_on_a1) {
    if (on_b1.contains(seq)) continue;
    truth.push_back(seq);
    first_ns = first_ns == 0 ? ns : std::min(first_ns, ns);
    last_ns = std::max(last_ns, ns);
  }
  std::printf("truth: a1 executed %zu SETs of the workload; %zu of them are not on b1, sent "
              "over %.1f ms; b1 holds %zu keys\n",
              set_on_a1.size(), truth.size(), static_cast<double>(last_ns - first_ns) / 1e6,
              on_b1.size());
  ASSERT_GT(set_on_a1.size(), 50u) << "MONITOR saw too little: " << monitored.substr(0, 500);
  EXPECT_GT(d.writes_lost(), 10) << "a1 acked writes for seconds after b1 was promoted";
  EXPECT_EQ(d.writes_lost(), static_cast<int64_t>(truth.size()));
  for (int i = 0; i < d.first_lost_size() && i < static_cast<int>(truth.size()); ++i) {
    EXPECT_EQ(d.first_lost(i), truth[i]);
  }
  // RPO: ack times against the truth's send times, one write's round trip apart.
  EXPECT_NEAR(d.rpo_ms(), static_cast<double>(last_ns - first_ns) / 1e6, 50.0);
  EXPECT_EQ(report.verdict(), "fail");
  EXPECT_THAT(report.reason(), ::testing::HasSubstr("acknowledged writes lost"));
  std::printf("test took %.1f s\n", std::chrono::duration<double>(Clock::now() - t0).count());
}

}  // namespace
}  // namespace faultline::itest
