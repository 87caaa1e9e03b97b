// Benchmark (not a test): apply + revert of a bandwidth (or netem) fault
// through the handler's netlink path, against the same change made by running
// `tc qdisc add` / `tc qdisc del` as processes, side by side in one run, in a
// throwaway network namespace. Prints both and the ratio; timing never fails.
//
//   tc_bench [--iterations N] [--kind bandwidth|netem]
#include <fmt/format.h>
#include <spawn.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "agent/faults/fault_handler.h"
#include "agent/faults/net/net_handlers.h"
#include "agent/faults/net/tc_netlink.h"
#include "agent/faults/net/tc_spec.h"
#include "tests/integration/netlink/test_net.h"

extern char** environ;

namespace {

using Clock = std::chrono::steady_clock;
using faultline::agent::FaultContext;
using faultline::testing::CreateVethPair;
using faultline::testing::TestNetns;

double Ms(Clock::duration d) { return std::chrono::duration<double, std::milli>(d).count(); }

// CPU time (user + system, ms) of this process (all threads) or of its waited-for children.
double CpuMs(int who) {
  rusage ru{};
  ::getrusage(who, &ru);
  return (ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * 1e3 +
         (ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e3;
}

// Runs argv (no shell) in the calling thread's network namespace; true on exit 0.
bool Run(const std::vector<std::string>& argv) {
  std::vector<char*> args;
  for (const std::string& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  pid_t pid = 0;
  if (::posix_spawnp(&pid, args[0], nullptr, nullptr, args.data(), environ) != 0) return false;
  int status = 0;
  ::waitpid(pid, &status, 0);
  return WIFEXITED(status) && WEXITSTATUS(status) == 0;
}

int Fail(const std::string& what) {
  fmt::print(stderr, "tc_bench: {}\n", what);
  return 1;
}

}  // namespace

int main(int argc, char** argv) {
  int iterations = 200;
  std::string kind = "bandwidth";
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    if (arg == "--iterations" && i + 1 < argc) {
      iterations = std::max(1, std::atoi(argv[++i]));
    } else if (arg == "--kind" && i + 1 < argc) {
      kind = argv[++i];
    } else if (arg.rfind("--gtest", 0) == 0) {
      // The VM lab's init passes gtest flags to every binary it runs.
    } else {
      fmt::print(stderr, "usage: {} [--iterations N] [--kind bandwidth|netem]\n", argv[0]);
      return 2;
    }
  }
  if (kind != "bandwidth" && kind != "netem") return Fail("--kind must be bandwidth or netem");

  TestNetns ns("bench");
  if (!ns.ok()) return Fail("cannot create a network namespace (needs root)");
  if (auto s = CreateVethPair(ns, "va", ns, "vb"); !s.ok()) {
    return Fail(std::string(s.message()));
  }

  auto handler = kind == "bandwidth" ? faultline::agent::MakeBandwidthHandler()
                                     : faultline::agent::MakeNetemHandler();
  FaultContext ctx;
  faultline::v1::FaultSpec spec;
  if (kind == "bandwidth") {
    spec.mutable_bandwidth()->set_interface("va");
  } else {
    spec.mutable_netem()->set_interface("va");
  }
  spec.set_netns(ns.path());
  std::vector<std::string> tc_add = {"tc", "qdisc", "add", "dev", "va", "root", "handle", "fa17:"};
  if (kind == "bandwidth") {
    spec.mutable_bandwidth()->set_rate("1mbit");
    const auto p = faultline::agent::net::TbfParamsForRate(125000);
    for (const std::string& a : {std::string("tbf"), std::string("rate"), std::string("1mbit"),
                                 std::string("burst"), std::to_string(p.burst),
                                 std::string("limit"), std::to_string(p.limit)}) {
      tc_add.push_back(a);
    }
  } else {
    spec.mutable_netem()->set_delay("100ms");
    for (const char* a : {"netem", "delay", "100ms"}) tc_add.push_back(a);
  }
  const std::vector<std::string> tc_del = {"tc", "qdisc", "del", "dev", "va", "root",
                                           "handle", "fa17:"};

  faultline::v1::FaultRecord record;
  *record.mutable_spec() = spec;
  auto plan = handler->Plan(spec, ctx, &record);
  if (!plan.ok()) return Fail(std::string(plan.status().message()));

  // Warm-up of both paths (page cache, first exec of tc).
  if (auto s = handler->Apply(&record, ctx); !s.ok()) return Fail(std::string(s.message()));
  if (auto s = handler->Revert(record, ctx); !s.ok()) return Fail(std::string(s.message()));
  bool tc_ok = true;
  (void)ns.Run([&] {
    tc_ok = Run(tc_add) && Run(tc_del);
    return absl::OkStatus();
  });
  if (!tc_ok) return Fail("tc qdisc add/del failed (is iproute2 installed?)");

  // Alternate the two so both see the same machine load.
  Clock::duration handler_total{}, tc_total{}, apply_total{};
  double handler_cpu = 0, tc_cpu = 0;
  for (int i = 0; i < iterations; ++i) {
    const double c0 = CpuMs(RUSAGE_SELF);
    auto t0 = Clock::now();
    if (auto s = handler->Apply(&record, ctx); !s.ok()) return Fail(std::string(s.message()));
    auto tm = Clock::now();
    if (auto s = handler->Revert(record, ctx); !s.ok()) return Fail(std::string(s.message()));
    handler_total += Clock::now() - t0;
    apply_total += tm - t0;
    handler_cpu += CpuMs(RUSAGE_SELF) - c0;
    // tc runs in the namespace: children inherit the spawning thread's netns.
    (void)ns.Run([&] {
      const double c1 = CpuMs(RUSAGE_SELF) + CpuMs(RUSAGE_CHILDREN);
      auto t1 = Clock::now();
      tc_ok = Run(tc_add) && Run(tc_del);
      tc_total += Clock::now() - t1;
      tc_cpu += CpuMs(RUSAGE_SELF) + CpuMs(RUSAGE_CHILDREN) - c1;
      return absl::OkStatus();
    });
    if (!tc_ok) return Fail("tc qdisc add/del failed");
  }
  // The kernel's own share: the same add+delete on one open socket, no
  // namespace thread, no lookups (what neither path can go below).
  Clock::duration raw_total{};
  absl::Status raw = ns.Run([&]() -> absl::Status {
    auto sock = faultline::agent::net::TcSocket::Connect();
    if (!sock.ok()) return sock.status();
    auto index = sock->LinkIndex("va");
    if (!index.ok()) return index.status();
    const auto params = faultline::agent::net::TbfParamsForRate(125000);
    auto t0 = Clock::now();
    for (int i = 0; i < iterations; ++i) {
      absl::Status added = sock->AddTbf(*index, faultline::agent::net::kParentRoot,
                                        faultline::agent::net::kRootHandle, params);
      absl::Status deleted = sock->DeleteQdisc(*index, faultline::agent::net::kParentRoot,
                                               faultline::agent::net::kRootHandle);
      if (!added.ok() || !deleted.ok()) return added.ok() ? deleted : added;
    }
    raw_total = Clock::now() - t0;
    return absl::OkStatus();
  });
  if (!raw.ok()) return Fail(std::string(raw.message()));
  const double h = Ms(handler_total) / iterations;
  const double t = Ms(tc_total) / iterations;
  fmt::print("{} fault, apply+revert, {} iterations each, in a throwaway netns:\n", kind,
             iterations);
  fmt::print("  handler (libnl, incl. netns thread): {:8.3f} ms per apply+revert\n", h);
  fmt::print("    of which apply: {:.3f} ms\n", Ms(apply_total) / iterations);
  fmt::print("  tc qdisc add + tc qdisc del (exec):  {:8.3f} ms per apply+revert\n", t);
  fmt::print("  ratio: handler is {:.1f}x faster (wall clock)\n", t / h);
  fmt::print("  CPU per apply+revert: handler {:.3f} ms, tc {:.3f} ms: {:.1f}x less\n",
             handler_cpu / iterations, tc_cpu / iterations,
             handler_cpu > 0 ? tc_cpu / handler_cpu : 0.0);
  fmt::print("  (kernel floor: raw netlink tbf add+del on one socket: {:.3f} ms)\n",
             Ms(raw_total) / iterations);
  return 0;
}
