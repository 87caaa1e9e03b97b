// Named network namespaces and veth pairs for network tests, made with `ip`
// (argv, no shell). Nothing is ever created in the machine's own namespace.
#ifndef FAULTLINE_TESTS_INTEGRATION_HARNESS_NETNS_H_
#define FAULTLINE_TESTS_INTEGRATION_HARNESS_NETNS_H_

#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "harness/subprocess.h"

namespace faultline::itest {

// A named network namespace fltest-<pid>-<suffix> (`ip netns add`), deleted by the
// destructor (its interfaces, veth ends included, go with it). Owned by the test;
// not thread-safe.
class NetNs {
 public:
  // `suffix` keeps names short: interface names are limited to 15 characters,
  // namespace names are not.
  static absl::StatusOr<std::unique_ptr<NetNs>> Create(const std::string& suffix);
  ~NetNs();
  NetNs(const NetNs&) = delete;
  NetNs& operator=(const NetNs&) = delete;

  const std::string& name() const { return name_; }
  std::string path() const { return "/run/netns/" + name_; }

  // `ip -n NAME args...`
  CommandResult Ip(const std::vector<std::string>& args) const;
  // Runs argv inside the namespace (`ip netns exec NAME argv...`).
  CommandResult Run(const std::vector<std::string>& argv,
                    std::chrono::milliseconds timeout = std::chrono::seconds(30)) const;

  absl::Status LoUp() const;
  absl::Status LinkUp(const std::string& ifname) const;
  // `cidr` like "10.77.0.1/24".
  absl::Status AddAddress(const std::string& ifname, const std::string& cidr) const;

 private:
  explicit NetNs(std::string name) : name_(std::move(name)) {}
  std::string name_;
};

// A veth pair with one end in each namespace, created directly there
// (`ip link add A netns NS1 type veth peer name B netns NS2`). The destructor
// deletes it (deleting one end removes both). Must not outlive the namespaces.
class VethPair {
 public:
  static absl::StatusOr<std::unique_ptr<VethPair>> Create(const NetNs& ns_a,
                                                          const std::string& name_a,
                                                          const NetNs& ns_b,
                                                          const std::string& name_b);
  ~VethPair();
  VethPair(const VethPair&) = delete;
  VethPair& operator=(const VethPair&) = delete;

  const std::string& name_a() const { return name_a_; }
  const std::string& name_b() const { return name_b_; }

 private:
  VethPair(const NetNs& ns_a, std::string a, std::string b)
      : ns_a_(ns_a), name_a_(std::move(a)), name_b_(std::move(b)) {}
  const NetNs& ns_a_;
  std::string name_a_;
  std::string name_b_;
};

// Two namespaces joined by a veth pair, addressed and up (lo up on both):
// the common set-up of a two-host network test.
struct NetLink2 {
  std::unique_ptr<NetNs> a;
  std::unique_ptr<NetNs> b;
  std::unique_ptr<VethPair> veth;  // declared last: destroyed first
};
absl::StatusOr<NetLink2> MakeLinkedPair(const std::string& suffix_a, const std::string& cidr_a,
                                        const std::string& suffix_b, const std::string& cidr_b);

// A Linux bridge `bridge` inside `ns` (the "switch" of a simulated datacenter),
// up. It goes with the namespace.
absl::Status AddBridge(const NetNs& ns, const std::string& bridge);

// Joins `host` to the bridge `bridge` in `sw`: a veth pair with `host_if` in the
// host (addressed `cidr`, up) and `port_if` in the switch (a port of the bridge,
// up). The pair is deleted by its destructor (or with either namespace).
absl::StatusOr<std::unique_ptr<VethPair>> JoinBridge(const NetNs& sw, const std::string& bridge,
                                                     const std::string& port_if,
                                                     const NetNs& host,
                                                     const std::string& host_if,
                                                     const std::string& cidr);

}  // namespace faultline::itest

#endif  // FAULTLINE_TESTS_INTEGRATION_HARNESS_NETNS_H_
