// A restore drill's rules (docs/experiments.md, "Restore drills"): what an
// experiment with a `drill:` may hold, and its steps' defaults. Kept apart
// from the drill's runner (drill.h) so the experiment validator and its fuzz
// target need no agent client.
#ifndef FAULTLINE_CONTROLLER_DRILL_SPEC_H_
#define FAULTLINE_CONTROLLER_DRILL_SPEC_H_

#include <chrono>
#include <string>
#include <vector>

#include "faultline/v1/experiment.pb.h"

namespace faultline::controller {

inline constexpr std::chrono::minutes kDefaultStepTimeout{30};
inline constexpr std::chrono::seconds kDefaultMarkerEvery{1};

// The problems of an experiment with a `drill:` (each "path: reason"):
// its steps and marker, the objectives it measures, and the fields a drill
// does not take (faults, probes, data, stop_when, duration).
void ValidateDrillExperiment(const v1::Experiment& exp, std::vector<std::string>* problems);

// A validated step's timeout (default 30m) and marker period (default 1s).
std::chrono::milliseconds StepTimeout(const v1::DrillStep& step);
std::chrono::nanoseconds MarkerEvery(const v1::DrillMarker& marker);

}  // namespace faultline::controller

#endif  // FAULTLINE_CONTROLLER_DRILL_SPEC_H_
