#include "controller/local_probe.h"

namespace faultline::controller {

// The probe implementations live in agent/probes/ (branch `probes`); until that
// library is merged the controller cannot run probes itself and experiments
// must run their probes `from:` a target.
absl::StatusOr<ProbeCheck> MakeLocalProbe(const v1::ProbeSpec& /*spec*/) {
  return absl::UnimplementedError(
      "probes from the controller need the probes library (not built in); use `from: TARGET`");
}

}  // namespace faultline::controller
