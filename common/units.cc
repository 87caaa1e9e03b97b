#include "common/units.h"

#include <fmt/format.h>

#include "absl/strings/ascii.h"

#include <cctype>
#include <cmath>
#include <cstdlib>
#include <ctime>
#include <limits>
#include <utility>
#include <vector>

#include "common/text.h"

namespace faultline {
namespace {

absl::Status Invalid(const std::string& field, const std::string& what) {
  return absl::InvalidArgumentError(fmt::format("{}: {}", field, what));
}

// Splits "12.5ms" into number 12.5 and unit "ms" starting at *pos.
bool NextNumber(const std::string& s, size_t* pos, double* value, std::string* unit) {
  size_t i = *pos;
  size_t start = i;
  bool digits = false;
  while (i < s.size() && (std::isdigit(static_cast<unsigned char>(s[i])) || s[i] == '.')) {
    digits |= std::isdigit(static_cast<unsigned char>(s[i])) != 0;
    ++i;
  }
  if (!digits) return false;
  char* end = nullptr;
  std::string num = s.substr(start, i - start);
  *value = std::strtod(num.c_str(), &end);
  if (end != num.c_str() + num.size()) return false;
  size_t ustart = i;
  // Letters, and the bytes of "µ" (UTF-8 C2 B5) for microseconds.
  while (i < s.size() && (std::isalpha(static_cast<unsigned char>(s[i])) ||
                          static_cast<unsigned char>(s[i]) >= 0x80)) {
    ++i;
  }
  *unit = s.substr(ustart, i - ustart);
  *pos = i;
  return true;
}

std::string Lower(const std::string& s) { return absl::AsciiStrToLower(s); }
std::string Trim(const std::string& s) { return std::string(absl::StripAsciiWhitespace(s)); }

}  // namespace

absl::StatusOr<std::chrono::nanoseconds> ParseDuration(const std::string& field,
                                                       const std::string& raw) {
  const std::string text = Trim(raw);
  auto bad = [&](const std::string& why) {
    return Invalid(field, fmt::format("invalid duration \"{}\": {} (use e.g. 250ms, 30s, 5m)",
                                      Printable(raw), why));
  };
  if (text.empty()) return bad("empty");
  if (text[0] == '-') return bad("must not be negative");
  size_t pos = 0;
  long double total_ns = 0;
  while (pos < text.size()) {
    double v = 0;
    std::string unit;
    if (!NextNumber(text, &pos, &v, &unit)) return bad("expected a number");
    long double scale = 0;
    if (unit == "ns") scale = 1;
    else if (unit == "us" || unit == "µs") scale = 1e3;
    else if (unit == "ms") scale = 1e6;
    else if (unit == "s") scale = 1e9;
    else if (unit == "m") scale = 60e9;
    else if (unit == "h") scale = 3600e9;
    else if (unit.empty()) return bad("missing unit");
    else return bad(fmt::format("unknown unit \"{}\"", Printable(unit)));
    total_ns += v * scale;
  }
  if (total_ns > static_cast<long double>(std::numeric_limits<int64_t>::max() / 2)) {
    return bad("too large");
  }
  return std::chrono::nanoseconds(static_cast<int64_t>(std::llround(total_ns)));
}

std::string FormatDuration(std::chrono::nanoseconds d) {
  int64_t ns = d.count();
  if (ns == 0) return "0s";
  if (ns % 3600000000000LL == 0) return fmt::format("{}h", ns / 3600000000000LL);
  if (ns % 60000000000LL == 0) return fmt::format("{}m", ns / 60000000000LL);
  if (ns % 1000000000LL == 0) return fmt::format("{}s", ns / 1000000000LL);
  if (ns % 1000000LL == 0) return fmt::format("{}ms", ns / 1000000LL);
  if (ns % 1000LL == 0) return fmt::format("{}us", ns / 1000LL);
  return fmt::format("{}ns", ns);
}

absl::StatusOr<uint64_t> ParseSize(const std::string& field, const std::string& raw) {
  const std::string text = Trim(raw);
  auto bad = [&](const std::string& why) {
    return Invalid(field, fmt::format("invalid size \"{}\": {} (use e.g. 4096, 100M, 2G)",
                                      Printable(raw), why));
  };
  if (text.empty()) return bad("empty");
  if (text[0] == '-') return bad("must not be negative");
  size_t pos = 0;
  double v = 0;
  std::string unit;
  if (!NextNumber(text, &pos, &v, &unit) || pos != text.size()) return bad("expected a number");
  const std::string u = Lower(unit);
  long double scale = 0;
  if (u.empty() || u == "b") scale = 1;
  else if (u == "k" || u == "kb" || u == "kib") scale = 1024.0L;
  else if (u == "m" || u == "mb" || u == "mib") scale = 1024.0L * 1024;
  else if (u == "g" || u == "gb" || u == "gib") scale = 1024.0L * 1024 * 1024;
  else if (u == "t" || u == "tb" || u == "tib") scale = 1024.0L * 1024 * 1024 * 1024;
  else return bad(fmt::format("unknown unit \"{}\"", Printable(unit)));
  long double bytes = v * scale;
  if (bytes > static_cast<long double>(std::numeric_limits<int64_t>::max())) return bad("too large");
  return static_cast<uint64_t>(std::llround(bytes));
}

std::string FormatSize(uint64_t bytes) {
  static const char* kUnits[] = {"B", "KiB", "MiB", "GiB", "TiB"};
  double v = static_cast<double>(bytes);
  int i = 0;
  while (v >= 1024 && i < 4) {
    v /= 1024;
    ++i;
  }
  if (i == 0) return fmt::format("{}B", bytes);
  return fmt::format("{:.1f}{}", v, kUnits[i]);
}

absl::StatusOr<double> ParsePercent(const std::string& field, const std::string& raw) {
  std::string text = Trim(raw);
  if (!text.empty() && text.back() == '%') text.pop_back();
  char* end = nullptr;
  double v = text.empty() ? 0 : std::strtod(text.c_str(), &end);
  if (text.empty() || end != text.c_str() + text.size() || !std::isfinite(v)) {
    return Invalid(field, fmt::format("invalid percentage \"{}\" (use e.g. 5%)", Printable(raw)));
  }
  if (v < 0 || v > 100) {
    return Invalid(field, fmt::format("must be between 0 and 100, got {}", Printable(raw)));
  }
  return v;
}

absl::StatusOr<uint64_t> ParseRate(const std::string& field, const std::string& raw) {
  const std::string text = Trim(raw);
  auto bad = [&](const std::string& why) {
    return Invalid(field, fmt::format("invalid rate \"{}\": {} (use e.g. 1mbit, 500kbit)",
                                      Printable(raw), why));
  };
  if (text.empty()) return bad("empty");
  if (text[0] == '-') return bad("must not be negative");
  size_t pos = 0;
  double v = 0;
  std::string unit;
  if (!NextNumber(text, &pos, &v, &unit) || pos != text.size()) return bad("expected a number");
  const std::string u = Lower(unit);
  static const std::vector<std::pair<std::string, long double>> kUnits = {
      {"bit", 1.0L / 8},       {"kbit", 1e3L / 8}, {"mbit", 1e6L / 8}, {"gbit", 1e9L / 8},
      {"bps", 1},              {"kbps", 1e3L},     {"mbps", 1e6L},     {"gbps", 1e9L},
  };
  for (const auto& [name, scale] : kUnits) {
    if (u == name) {
      long double bytes = v * scale;
      if (bytes < 1) return bad("must be at least 8bit");
      if (bytes > 4e12L) return bad("too large");
      return static_cast<uint64_t>(std::llround(bytes));
    }
  }
  return bad(unit.empty() ? "missing unit" : fmt::format("unknown unit \"{}\"", Printable(unit)));
}

std::string FormatUtc(int64_t unix_ns) {
  if (unix_ns == 0) return "-";
  const time_t secs = static_cast<time_t>(unix_ns / 1000000000);
  tm utc{};
  gmtime_r(&secs, &utc);
  return fmt::format("{:04}-{:02}-{:02} {:02}:{:02}:{:02}", utc.tm_year + 1900, utc.tm_mon + 1,
                     utc.tm_mday, utc.tm_hour, utc.tm_min, utc.tm_sec);
}

}  // namespace faultline
