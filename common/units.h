// Parsing and formatting of the human units used in flags and experiment files:
// durations ("250ms", "1m30s"), sizes ("100M", "1GiB"), percentages ("5%"),
// and rates ("1mbit"). Every parser names the field in its error.
#ifndef FAULTLINE_COMMON_UNITS_H_
#define FAULTLINE_COMMON_UNITS_H_

#include <chrono>
#include <cstdint>
#include <string>

#include "absl/status/statusor.h"

namespace faultline {

// Units ns, us, ms, s, m, h; components may be chained ("1m30s"). Negative values
// are rejected. An empty string is an error.
absl::StatusOr<std::chrono::nanoseconds> ParseDuration(const std::string& field,
                                                       const std::string& text);
std::string FormatDuration(std::chrono::nanoseconds d);
// "2026-11-25 20:31:05" (UTC); "-" for 0.
std::string FormatUtc(int64_t unix_ns);

// Bytes with an optional binary suffix: K/KB/KiB = 1024, M, G, T likewise.
absl::StatusOr<uint64_t> ParseSize(const std::string& field, const std::string& text);
std::string FormatSize(uint64_t bytes);

// "5%", "5" or "0.5%": a value in [0, 100].
absl::StatusOr<double> ParsePercent(const std::string& field, const std::string& text);

// tc-style rates: bit, kbit, mbit, gbit (SI, bits/s), bps, kbps, mbps, gbps
// (bytes/s). Returns bytes per second; must be > 0.
absl::StatusOr<uint64_t> ParseRate(const std::string& field, const std::string& text);

}  // namespace faultline

#endif  // FAULTLINE_COMMON_UNITS_H_
