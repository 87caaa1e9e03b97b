#include "workload/data_driver.h"

#include <fmt/format.h>

#include <cerrno>
#include <cmath>
#include <cstdlib>

#include "common/status_macros.h"
#include "common/units.h"
#include "workload/http_driver.h"
#include "workload/postgres_driver.h"
#include "workload/redis_driver.h"

namespace faultline::workload {
namespace {

constexpr double kMaxRate = 1000;
constexpr auto kMaxTimeout = std::chrono::seconds(10);
constexpr auto kMaxReadTimeout = std::chrono::minutes(10);

bool NameChar(char c) { return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' || c == '-'; }

absl::Status CheckName(const std::string& field, const std::string& name) {
  bool ok = !name.empty() && name.size() <= 32 && name[0] != '_' && name[0] != '-';
  for (char c : name) ok = ok && NameChar(c);
  if (ok) return absl::OkStatus();
  return absl::InvalidArgumentError(fmt::format(
      "{}.name: \"{}\": expected [a-z0-9][a-z0-9_-]{{0,31}} (it is part of every key)", field,
      name.size() > 40 ? name.substr(0, 40) + "..." : name));
}

// "200/s": writes per second, 1 to 1000.
absl::StatusOr<double> ParseWriteRate(const std::string& field, const std::string& text) {
  const std::string bad = fmt::format(
      "{}: \"{}\": expected writes per second, e.g. \"200/s\" (1/s to {}/s)", field,
      text.size() > 40 ? text.substr(0, 40) + "..." : text, kMaxRate);
  if (text.size() < 3 || text.size() > 16 || text.substr(text.size() - 2) != "/s") {
    return absl::InvalidArgumentError(bad);
  }
  const std::string number = text.substr(0, text.size() - 2);
  char* end = nullptr;
  errno = 0;
  const double rate = std::strtod(number.c_str(), &end);
  if (errno != 0 || end != number.c_str() + number.size() || !std::isfinite(rate) || rate < 1 ||
      rate > kMaxRate || number.find_first_not_of("0123456789.") != std::string::npos) {
    return absl::InvalidArgumentError(bad);
  }
  return rate;
}

absl::StatusOr<std::chrono::nanoseconds> BoundedDuration(const std::string& field,
                                                         const std::string& text,
                                                         std::chrono::nanoseconds fallback,
                                                         std::chrono::nanoseconds most) {
  if (text.empty()) return fallback;
  ASSIGN_OR_RETURN(std::chrono::nanoseconds d, ParseDuration(field, text));
  if (d < std::chrono::milliseconds(1) || d > most) {
    return absl::InvalidArgumentError(
        fmt::format("{}: {} is outside 1ms to {}", field, text, FormatDuration(most)));
  }
  return d;
}

}  // namespace

absl::StatusOr<DataSettings> ValidateDataWorkload(const std::string& field,
                                                  const v1::DataWorkload& spec) {
  RETURN_IF_ERROR(CheckName(field, spec.name()));
  const int drivers = spec.has_redis() + spec.has_postgres() + spec.has_http();
  if (drivers != 1) {
    return absl::InvalidArgumentError(fmt::format(
        "{}: exactly one of redis, postgres and http is required, got {}", field, drivers));
  }
  if (spec.has_postgres()) {
    RETURN_IF_ERROR(ValidatePostgresDsn(field + ".postgres.dsn", spec.postgres().dsn()));
  }
  if (spec.has_http()) {
    RETURN_IF_ERROR(ParseDataUrl(field + ".http.url", spec.http().url()).status());
  }
  DataSettings s;
  if (!spec.rate().empty()) {
    ASSIGN_OR_RETURN(s.rate_per_s, ParseWriteRate(field + ".rate", spec.rate()));
  }
  s.period = std::chrono::nanoseconds(static_cast<int64_t>(std::llround(1e9 / s.rate_per_s)));
  ASSIGN_OR_RETURN(s.timeout,
                   BoundedDuration(field + ".timeout", spec.timeout(), s.timeout, kMaxTimeout));
  ASSIGN_OR_RETURN(s.read_timeout, BoundedDuration(field + ".read_timeout", spec.read_timeout(),
                                                   s.read_timeout, kMaxReadTimeout));
  return s;
}

absl::StatusOr<std::unique_ptr<DataDriver>> MakeDataDriver(const std::string& field,
                                                           const v1::DataWorkload& spec,
                                                           const std::string& run_id) {
  ASSIGN_OR_RETURN(DataSettings settings, ValidateDataWorkload(field, spec));
  (void)settings;
  if (spec.has_postgres()) {
    return MakePostgresDriver(field + ".postgres", spec.postgres(), run_id, spec.name());
  }
  if (spec.has_http()) return MakeHttpDriver(field + ".http", spec.http(), run_id, spec.name());
  return MakeRedisDriver(field + ".redis", spec.redis(),
                         fmt::format("faultline:{}:{}:", run_id, spec.name()));
}

}  // namespace faultline::workload
