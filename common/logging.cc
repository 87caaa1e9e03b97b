#include "common/logging.h"

#include <fmt/format.h>
#include <spdlog/sinks/stdout_sinks.h>
#include <spdlog/spdlog.h>

namespace faultline {

absl::Status InitLogging(const std::string& level) {
  auto lvl = spdlog::level::from_str(level);
  if (lvl == spdlog::level::off && level != "off") {
    return absl::InvalidArgumentError(fmt::format(
        "--log-level: unknown level \"{}\" (trace, debug, info, warn, error, off)", level));
  }
  auto logger = spdlog::stderr_logger_mt("faultline");
  spdlog::set_default_logger(logger);
  spdlog::set_level(lvl);
  spdlog::set_pattern("%Y-%m-%dT%H:%M:%S.%e %^%l%$ %v");
  return absl::OkStatus();
}

}  // namespace faultline
