// Probes `from: controller`: the controller runs the check itself.
#ifndef FAULTLINE_CONTROLLER_LOCAL_PROBE_H_
#define FAULTLINE_CONTROLLER_LOCAL_PROBE_H_

#include "controller/runner.h"

namespace faultline::controller {

// A ProbeCheck for `spec`, run on the controller.
absl::StatusOr<ProbeCheck> MakeLocalProbe(const v1::ProbeSpec& spec);

}  // namespace faultline::controller

#endif  // FAULTLINE_CONTROLLER_LOCAL_PROBE_H_
