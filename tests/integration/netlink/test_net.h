// Throwaway hosts for the traffic-control tests (integration and VM lab):
// anonymous network namespaces joined by veth pairs created directly inside
// them, plus TCP/UDP measurement helpers. Nothing here touches the machine's
// own namespace: the namespaces live only as long as their fd (RAII), so a
// crashed test leaves nothing behind; interfaces are created inside them.
#ifndef FAULTLINE_TESTS_INTEGRATION_NETLINK_TEST_NET_H_
#define FAULTLINE_TESTS_INTEGRATION_NETLINK_TEST_NET_H_

#include <cstdint>
#include <functional>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace faultline::testing {

// An anonymous network namespace held open by an fd. Owned by the test; not
// thread-safe. `label` (fltest-<pid>-<suffix>) is for messages only.
class TestNetns {
 public:
  explicit TestNetns(const std::string& suffix);
  ~TestNetns();
  TestNetns(const TestNetns&) = delete;
  TestNetns& operator=(const TestNetns&) = delete;

  bool ok() const { return fd_ >= 0; }
  int fd() const { return fd_; }
  // /proc/<pid>/fd/<fd>: usable as FaultSpec.netns and with nsenter --net=.
  std::string path() const;
  const std::string& label() const { return label_; }
  // Runs `fn` on a thread inside the namespace.
  absl::Status Run(const std::function<absl::Status()>& fn) const;

 private:
  int fd_ = -1;
  std::string label_;
};

// veth `name_a` in `a` with peer `name_b` in `b`, both up, lo up in both.
absl::Status CreateVethPair(const TestNetns& a, const std::string& name_a, const TestNetns& b,
                            const std::string& name_b);
// Adds "10.77.0.1/24" to `ifname` in `ns`.
absl::Status AddAddress(const TestNetns& ns, const std::string& ifname, const std::string& cidr);

// A socket created inside `ns` (sockets keep their namespace for life).
absl::StatusOr<int> SocketIn(const TestNetns& ns, int type);

// Bytes/s received by a TCP receiver in `to_ns` on addr:port from a sender in
// `from_ns`, measured over `seconds` after `warmup_seconds` of sending.
absl::StatusOr<double> MeasureTcpThroughput(const TestNetns& from_ns, const TestNetns& to_ns,
                                            const std::string& addr, uint16_t port,
                                            double warmup_seconds, double seconds);

// A UDP echo server in `ns` on addr:port, running until destroyed.
class UdpEchoServer {
 public:
  UdpEchoServer(const TestNetns& ns, const std::string& addr, uint16_t port);
  ~UdpEchoServer();
  UdpEchoServer(const UdpEchoServer&) = delete;
  UdpEchoServer& operator=(const UdpEchoServer&) = delete;
  absl::Status status() const { return status_; }

 private:
  int fd_ = -1;
  int stop_pipe_[2] = {-1, -1};
  absl::Status status_;
  std::thread thread_;
};

// Median round trip in ms over `count` UDP echoes from `from_ns` to addr:port
// (each waits up to `timeout_ms`); the number of replies in *received.
absl::StatusOr<double> MeasureUdpRtt(const TestNetns& from_ns, const std::string& addr,
                                     uint16_t port, int count, int timeout_ms, int* received);

// Runs argv (no shell), returns its stdout+stderr; error if it exits non-zero.
absl::StatusOr<std::string> RunCapture(const std::vector<std::string>& argv);

// `tc qdisc show`, `tc class show` and `tc filter show` of `dev` in `ns`.
absl::StatusOr<std::string> TcDump(const TestNetns& ns, const std::string& dev);

}  // namespace faultline::testing

#endif  // FAULTLINE_TESTS_INTEGRATION_NETLINK_TEST_NET_H_
