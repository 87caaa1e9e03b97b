#include "probes/probe.h"

#include <fmt/format.h>

#include <algorithm>

#include "probes/probe_internal.h"
#include "common/status_macros.h"
#include "common/units.h"

namespace faultline {

absl::StatusOr<ProbeTiming> ParseProbeTiming(const v1::ProbeSpec& spec) {
  ProbeTiming timing{kDefaultInterval, kDefaultTimeout};
  if (!spec.interval().empty()) {
    ASSIGN_OR_RETURN(timing.interval, ParseDuration("interval", spec.interval()));
  }
  if (timing.interval < kMinInterval) {
    return absl::InvalidArgumentError(fmt::format("interval: must be at least {}, got {}",
                                                  FormatDuration(kMinInterval),
                                                  FormatDuration(timing.interval)));
  }
  if (timing.interval > kMaxInterval) {
    return absl::InvalidArgumentError(fmt::format("interval: must be at most {}, got {}",
                                                  FormatDuration(kMaxInterval),
                                                  FormatDuration(timing.interval)));
  }
  if (spec.timeout().empty()) {
    timing.timeout = std::min(timing.interval, kDefaultTimeout);
  } else {
    ASSIGN_OR_RETURN(timing.timeout, ParseDuration("timeout", spec.timeout()));
  }
  if (timing.timeout < kMinTimeout) {
    return absl::InvalidArgumentError(fmt::format("timeout: must be at least {}, got {}",
                                                  FormatDuration(kMinTimeout),
                                                  FormatDuration(timing.timeout)));
  }
  if (timing.timeout > kMaxTimeout) {
    return absl::InvalidArgumentError(fmt::format("timeout: must be at most {}, got {}",
                                                  FormatDuration(kMaxTimeout),
                                                  FormatDuration(timing.timeout)));
  }
  return timing;
}

namespace {

absl::StatusOr<std::unique_ptr<Probe>> Build(const v1::ProbeSpec& spec, const ExecPolicy* exec) {
  RETURN_IF_ERROR(ParseProbeTiming(spec).status());
  switch (spec.check_case()) {
    case v1::ProbeSpec::kTcp:
      return probes::MakeTcpProbe(spec.tcp());
    case v1::ProbeSpec::kHttp:
      return probes::MakeHttpProbe(spec.http());
    case v1::ProbeSpec::kExec:
      return probes::MakeExecProbe(spec.exec(), exec);
    case v1::ProbeSpec::kGrpcHealth:
      return probes::MakeGrpcHealthProbe(spec.grpc_health());
    case v1::ProbeSpec::kRedis:
      return probes::MakeRedisProbe(spec.redis());
    case v1::ProbeSpec::CHECK_NOT_SET:
      break;
  }
  return absl::InvalidArgumentError(
      "probe: exactly one of tcp, http, exec, grpc_health, redis is required");
}

}  // namespace

absl::StatusOr<std::unique_ptr<Probe>> MakeProbe(const v1::ProbeSpec& spec,
                                                 const ExecPolicy& exec) {
  return Build(spec, &exec);
}

absl::Status ValidateProbe(const v1::ProbeSpec& spec) { return Build(spec, nullptr).status(); }

}  // namespace faultline
