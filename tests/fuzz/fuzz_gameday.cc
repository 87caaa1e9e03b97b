// libFuzzer target: the game-day runbook loader (controller/gameday_spec.h),
// YAML text in, a plan or an INVALID_ARGUMENT listing every problem. The
// runbook may name two files the target always sends (an experiment and a
// drill) and any other (missing). Whatever the bytes, it must return (no
// crash, no sanitizer report); an accepted plan's steps must be describable.
#include <cstddef>
#include <cstdint>
#include <string>

#include "controller/gameday_spec.h"

namespace {

constexpr char kExperiment[] = R"(name: e
targets:
  t: {labels: {role: db}}
probes:
  - {name: p, tcp: {address: "127.0.0.1:9"}}
faults:
  - on: t
    pause: {process: {name: x}}
objectives: {rto: 5s}
duration: 1s
)";

constexpr char kDrill[] = R"(name: d
targets:
  db: {labels: {role: db}, count: 1}
drill:
  backup: {on: db, exec: {argv: [/bin/true]}}
  restore: {on: db, exec: {argv: [/bin/true]}}
  verify: {on: db, exec: {argv: [/bin/true]}}
objectives: {rto: 10m}
)";

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  faultline::v1::StartGameDayRequest req;
  req.set_yaml(std::string(reinterpret_cast<const char*>(data), size));
  (*req.mutable_files())["e.yaml"] = kExperiment;
  (*req.mutable_files())["d.yaml"] = kDrill;
  auto plan = faultline::controller::LoadGameDay(req);
  if (!plan.ok()) return 0;
  for (const auto& step : plan->spec().steps()) {
    (void)faultline::controller::StepKindOf(step);
    (void)faultline::controller::StepTitleOf(step);
    (void)faultline::controller::GameDayDuration(step.wait());
    for (const auto& branch : step.parallel()) (void)faultline::controller::StepTitleOf(branch);
  }
  (void)faultline::controller::GameDayFiles(plan->spec());
  return 0;
}
