// tcp probe: healthy when a TCP connection to the address is established.
#include <utility>

#include "probes/probe_internal.h"
#include "common/status_macros.h"

namespace faultline::probes {
namespace {

// Connects afresh at every check. Owned by the runner; not thread-safe.
class TcpProbe final : public Probe {
 public:
  explicit TcpProbe(HostPort target) : target_(std::move(target)) {}

  ProbeResult Check(std::chrono::nanoseconds timeout) override {
    const Clock::time_point deadline =
        Clock::now() + std::chrono::duration_cast<Clock::duration>(timeout);
    auto addresses = resolver_.Resolve(target_, deadline);
    if (!addresses.ok()) return {false, std::string(addresses.status().message())};
    auto fd = ConnectTcp(*addresses, deadline);
    if (!fd.ok()) return {false, std::string(fd.status().message())};
    return {true, ""};
  }

 private:
  const HostPort target_;
  Resolver resolver_;
};

}  // namespace

absl::StatusOr<std::unique_ptr<Probe>> MakeTcpProbe(const v1::TcpProbe& spec) {
  ASSIGN_OR_RETURN(HostPort target, ParseHostPort("tcp.address", spec.address()));
  return std::unique_ptr<Probe>(std::make_unique<TcpProbe>(std::move(target)));
}

}  // namespace faultline::probes
