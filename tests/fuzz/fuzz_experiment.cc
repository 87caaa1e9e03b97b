// libFuzzer target: the experiment loader (controller/experiment.h), YAML text
// in, a validated v1::Experiment or an INVALID_ARGUMENT listing every problem.
// Whatever the bytes, it must return (no crash, no sanitizer report); a
// loaded experiment must be usable by what the runner calls next.
#include <cstddef>
#include <cstdint>
#include <string>

#include "controller/experiment.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string yaml(reinterpret_cast<const char*>(data), size);
  auto exp = faultline::controller::LoadExperiment(yaml);
  if (!exp.ok()) return 0;
  // What the runner derives from an accepted experiment.
  (void)faultline::controller::ExperimentDuration(*exp);
  (void)faultline::controller::RtoTarget(*exp);
  (void)faultline::controller::RecoveredAfter(*exp);
  for (int i = 0; i < exp->faults_size(); ++i) {
    (void)faultline::controller::FaultSpecFor(*exp, i);
  }
  for (int i = 0; i < exp->probes_size(); ++i) {
    (void)faultline::controller::ToProbeSpec(exp->probes(i));
    (void)faultline::controller::ProbeInterval(exp->probes(i));
  }
  return 0;
}
