// A strict parser of Prometheus' text exposition format (0.0.4), for tests
// that scrape /metrics: names, label syntax and escapes, # TYPE before its
// samples, no duplicate series, histogram buckets cumulative with +Inf equal
// to _count. Header-only.
#ifndef FAULTLINE_TESTS_UNIT_METRICS_EXPOSITION_H_
#define FAULTLINE_TESTS_UNIT_METRICS_EXPOSITION_H_

#include <cmath>
#include <cstdlib>
#include <map>
#include <regex>
#include <set>
#include <sstream>
#include <string>

#include "absl/status/statusor.h"
#include "fmt/format.h"

namespace faultline::testing {

// Parsed samples: name{a="x",b="y"} (labels sorted, values unescaped) -> value.
struct Exposition {
  std::map<std::string, double> samples;
  std::map<std::string, std::string> types;  // family -> type

  // The value of `name` with exactly `labels`, or NaN.
  double Value(const std::string& name, const std::map<std::string, std::string>& labels = {}) const {
    auto it = samples.find(Key(name, labels));
    return it == samples.end() ? std::nan("") : it->second;
  }
  static std::string Key(const std::string& name, const std::map<std::string, std::string>& labels) {
    std::string k = name + "{";
    bool first = true;
    for (const auto& [l, v] : labels) {
      k += fmt::format("{}{}=\"{}\"", first ? "" : ",", l, v);
      first = false;
    }
    return k + "}";
  }
};

namespace exposition_internal {

inline absl::Status Bad(int line, const std::string& why) {
  return absl::InvalidArgumentError(fmt::format("line {}: {}", line, why));
}

// Parses one quoted label value from s[j] (after the opening quote); returns
// the index of the closing quote, or npos.
inline size_t ParseValue(const std::string& s, size_t j, std::string* value, bool* bad_escape) {
  for (; j < s.size() && s[j] != '"'; ++j) {
    if (s[j] != '\\') {
      *value += s[j];
      continue;
    }
    if (++j >= s.size()) return std::string::npos;
    if (s[j] == 'n') {
      *value += '\n';
    } else if (s[j] == '\\' || s[j] == '"') {
      *value += s[j];
    } else {
      *bad_escape = true;
    }
  }
  return j < s.size() ? j : std::string::npos;
}

// Parses {a="x",...} at `s` (from '{'). Returns the index after '}'.
inline absl::StatusOr<size_t> ParseLabels(const std::string& s, size_t i, int line,
                                          std::map<std::string, std::string>* labels) {
  static const std::regex kLabelName("[a-zA-Z_][a-zA-Z0-9_]*");
  ++i;  // '{'
  while (i < s.size() && s[i] != '}') {
    const size_t eq = s.find('=', i);
    if (eq == std::string::npos) return Bad(line, "label without '='");
    const std::string name = s.substr(i, eq - i);
    if (!std::regex_match(name, kLabelName)) return Bad(line, "bad label name " + name);
    if (eq + 1 >= s.size() || s[eq + 1] != '"') return Bad(line, "label value not quoted");
    std::string value;
    bool bad_escape = false;
    const size_t close = ParseValue(s, eq + 2, &value, &bad_escape);
    if (close == std::string::npos) return Bad(line, "unterminated label value");
    if (bad_escape) return Bad(line, "bad escape in label " + name);
    if (!labels->emplace(name, value).second) return Bad(line, "duplicate label " + name);
    i = close + 1;
    if (i < s.size() && s[i] == ',') ++i;
  }
  if (i >= s.size()) return Bad(line, "unterminated label set");
  return i + 1;
}

// The family a sample name belongs to, given the declared types.
inline std::string FamilyOf(const std::string& name, const std::map<std::string, std::string>& types) {
  for (const std::string sfx : {"_bucket", "_sum", "_count"}) {
    if (name.size() <= sfx.size() || name.compare(name.size() - sfx.size(), sfx.size(), sfx) != 0) {
      continue;
    }
    auto it = types.find(name.substr(0, name.size() - sfx.size()));
    if (it != types.end() && it->second == "histogram") return it->first;
  }
  return name;
}

struct Parsed {
  std::string name;
  std::map<std::string, std::string> labels;
  double value = 0;
};

// Buckets cumulative, +Inf present and equal to _count, for every histogram series.
inline absl::Status CheckHistograms(const std::vector<Parsed>& parsed, const Exposition& e) {
  std::map<std::string, std::map<double, double>> buckets;  // _count key -> le -> count
  for (const Parsed& p : parsed) {
    if (p.name.size() < 7 || p.name.compare(p.name.size() - 7, 7, "_bucket") != 0) continue;
    auto le = p.labels.find("le");
    if (le == p.labels.end()) return absl::InvalidArgumentError(p.name + ": bucket without le");
    const double bound = le->second == "+Inf" ? INFINITY : std::strtod(le->second.c_str(), nullptr);
    std::map<std::string, std::string> rest = p.labels;
    rest.erase("le");
    buckets[Exposition::Key(p.name.substr(0, p.name.size() - 7) + "_count", rest)][bound] = p.value;
  }
  for (const auto& [count_key, by_le] : buckets) {
    double last = 0;
    for (const auto& [bound, count] : by_le) {
      if (count < last) return absl::InvalidArgumentError(count_key + ": buckets not cumulative");
      last = count;
    }
    if (!std::isinf(by_le.rbegin()->first)) return absl::InvalidArgumentError(count_key + ": no +Inf");
    auto it = e.samples.find(count_key);
    if (it == e.samples.end() || it->second != last) {
      return absl::InvalidArgumentError(count_key + ": +Inf bucket differs from _count");
    }
  }
  return absl::OkStatus();
}

// One sample line.
inline absl::StatusOr<Parsed> ParseSample(const std::string& s, int line) {
  static const std::regex kName("[a-zA-Z_:][a-zA-Z0-9_:]*");
  Parsed p;
  size_t i = 0;
  while (i < s.size() && s[i] != '{' && s[i] != ' ') ++i;
  p.name = s.substr(0, i);
  if (!std::regex_match(p.name, kName)) return Bad(line, "bad metric name " + p.name);
  if (i < s.size() && s[i] == '{') {
    absl::StatusOr<size_t> end = ParseLabels(s, i, line, &p.labels);
    if (!end.ok()) return end.status();
    i = *end;
  }
  if (i >= s.size() || s[i] != ' ') return Bad(line, "no value");
  const std::string value = s.substr(i + 1);
  if (value == "+Inf" || value == "-Inf" || value == "NaN") {
    p.value = value == "NaN" ? std::nan("") : value == "+Inf" ? INFINITY : -INFINITY;
    return p;
  }
  char* end = nullptr;
  p.value = std::strtod(value.c_str(), &end);
  if (end == value.c_str() || *end != '\0') return Bad(line, "bad value " + value);
  return p;
}

}  // namespace exposition_internal

inline absl::StatusOr<Exposition> ParseExposition(const std::string& text) {
  using exposition_internal::Bad;
  static const std::regex kType(
      "# TYPE ([a-zA-Z_:][a-zA-Z0-9_:]*) (counter|gauge|histogram|summary|untyped)");
  Exposition e;
  std::vector<exposition_internal::Parsed> parsed;
  std::set<std::string> sampled;  // families with samples so far
  std::istringstream in(text);
  std::string s;
  for (int line = 1; std::getline(in, s); ++line) {
    std::smatch m;
    if (s.rfind("# TYPE ", 0) == 0) {
      if (!std::regex_match(s, m, kType)) return Bad(line, "bad TYPE line: " + s);
      if (sampled.count(m[1]) > 0) return Bad(line, "TYPE after samples of " + m[1].str());
      if (!e.types.emplace(m[1], m[2]).second) return Bad(line, "second TYPE for " + m[1].str());
      continue;
    }
    if (s.empty() || s[0] == '#') continue;  // HELP and comments
    auto p = exposition_internal::ParseSample(s, line);
    if (!p.ok()) return p.status();
    const std::string family = exposition_internal::FamilyOf(p->name, e.types);
    if (e.types.count(family) == 0) return Bad(line, "sample of " + family + " before its TYPE");
    sampled.insert(family);
    if (!e.samples.emplace(Exposition::Key(p->name, p->labels), p->value).second) {
      return Bad(line, "duplicate series " + Exposition::Key(p->name, p->labels));
    }
    parsed.push_back(*std::move(p));
  }
  absl::Status h = exposition_internal::CheckHistograms(parsed, e);
  if (!h.ok()) return h;
  return e;
}

}  // namespace faultline::testing

#endif  // FAULTLINE_TESTS_UNIT_METRICS_EXPOSITION_H_
