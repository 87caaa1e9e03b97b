#include "controller/local_probe.h"

#include <memory>

#include "probes/probe.h"

namespace faultline::controller {

absl::StatusOr<ProbeCheck> MakeLocalProbe(const v1::ProbeSpec& spec) {
  auto probe = MakeProbe(spec);
  if (!probe.ok()) return probe.status();
  // Shared so the std::function stays copyable; only the probe's own thread calls it.
  std::shared_ptr<Probe> shared(std::move(*probe));
  return ProbeCheck([shared](std::chrono::nanoseconds timeout) {
    ProbeResult r = shared->Check(timeout);
    return std::make_pair(r.ok, r.error);
  });
}

}  // namespace faultline::controller
