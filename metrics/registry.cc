#include "metrics/registry.h"

#include <cmath>

#include "fmt/format.h"
#include "spdlog/spdlog.h"

namespace faultline::metrics {
namespace {

// A label value in the exposition format: backslash, quote and newline escaped.
std::string EscapeLabel(const std::string& v) {
  std::string out;
  out.reserve(v.size());
  for (char c : v) {
    if (c == '\\') {
      out += "\\\\";
    } else if (c == '"') {
      out += "\\\"";
    } else if (c == '\n') {
      out += "\\n";
    } else {
      out += c;
    }
  }
  return out;
}

// Help text: backslash and newline escaped.
std::string EscapeHelp(const std::string& v) {
  std::string out;
  for (char c : v) out += c == '\\' ? "\\\\" : c == '\n' ? "\\n" : std::string(1, c);
  return out;
}

std::string Number(double v) {
  if (std::isnan(v)) return "NaN";
  if (std::isinf(v)) return v > 0 ? "+Inf" : "-Inf";
  return fmt::format("{}", v);
}

// {a="x",b="y"} (with `extra` appended, e.g. le="0.5"); empty without labels.
std::string LabelSet(const std::vector<std::string>& names, const LabelValues& values,
                     const std::string& extra = "") {
  std::string out;
  for (size_t i = 0; i < names.size(); ++i) {
    out += fmt::format("{}{}=\"{}\"", out.empty() ? "" : ",", names[i], EscapeLabel(values[i]));
  }
  if (!extra.empty()) out += (out.empty() ? "" : ",") + extra;
  return out.empty() ? "" : "{" + out + "}";
}

const char* TypeName(Family::Type t) {
  switch (t) {
    case Family::Type::kCounter:
      return "counter";
    case Family::Type::kGauge:
      return "gauge";
    case Family::Type::kHistogram:
      return "histogram";
  }
  return "untyped";
}

}  // namespace

Family::Family(Registry* registry, std::string name, std::string help, Type type,
               std::vector<std::string> label_names, std::vector<double> buckets)
    : registry_(registry),
      name_(std::move(name)),
      help_(std::move(help)),
      type_(type),
      label_names_(std::move(label_names)),
      buckets_(std::move(buckets)) {}

Family::Series* Family::SeriesLocked(const LabelValues& labels) {
  if (labels.size() != label_names_.size()) {
    spdlog::error("metric {}: {} label values for {} labels", name_, labels.size(),
                  label_names_.size());
    return nullptr;
  }
  auto it = series_.find(labels);
  if (it != series_.end()) return &it->second;
  if (series_.size() >= Registry::kMaxSeries) {
    if (!overflow_logged_) {
      spdlog::warn("metric {}: more than {} series; new ones are dropped", name_,
                   Registry::kMaxSeries);
      overflow_logged_ = true;
    }
    return nullptr;
  }
  Series& s = series_[labels];
  if (type_ == Type::kHistogram) s.counts.assign(buckets_.size() + 1, 0);
  return &s;
}

void Family::Add(const LabelValues& labels, double delta) {
  if (!(delta >= 0)) return;  // a counter never goes down (NaN neither)
  absl::MutexLock lock(&registry_->mu_);
  if (Series* s = SeriesLocked(labels)) s->value += delta;
}

void Family::Set(const LabelValues& labels, double value) {
  absl::MutexLock lock(&registry_->mu_);
  if (Series* s = SeriesLocked(labels)) s->value = value;
}

void Family::Clear() {
  absl::MutexLock lock(&registry_->mu_);
  series_.clear();
}

void Family::Observe(const LabelValues& labels, double value) {
  if (std::isnan(value)) return;
  absl::MutexLock lock(&registry_->mu_);
  Series* s = SeriesLocked(labels);
  if (s == nullptr) return;
  size_t b = 0;
  while (b < buckets_.size() && value > buckets_[b]) ++b;
  ++s->counts[b];
  ++s->count;
  s->value += value;
}

void Family::RenderLocked(std::string* out) const {
  *out += fmt::format("# HELP {} {}\n# TYPE {} {}\n", name_, EscapeHelp(help_), name_,
                      TypeName(type_));
  for (const auto& [labels, s] : series_) {
    if (type_ != Type::kHistogram) {
      *out += fmt::format("{}{} {}\n", name_, LabelSet(label_names_, labels), Number(s.value));
      continue;
    }
    uint64_t cumulative = 0;
    for (size_t b = 0; b <= buckets_.size(); ++b) {
      cumulative += s.counts[b];
      const std::string le = b < buckets_.size() ? Number(buckets_[b]) : "+Inf";
      *out += fmt::format("{}_bucket{} {}\n", name_,
                          LabelSet(label_names_, labels, "le=\"" + le + "\""), cumulative);
    }
    *out += fmt::format("{}_sum{} {}\n", name_, LabelSet(label_names_, labels), Number(s.value));
    *out += fmt::format("{}_count{} {}\n", name_, LabelSet(label_names_, labels), s.count);
  }
}

Family* Registry::Add(const std::string& name, const std::string& help, Family::Type type,
                      std::vector<std::string> label_names, std::vector<double> buckets) {
  absl::MutexLock lock(&mu_);
  families_.push_back(std::unique_ptr<Family>(
      new Family(this, name, help, type, std::move(label_names), std::move(buckets))));
  return families_.back().get();
}

Family* Registry::AddCounter(const std::string& name, const std::string& help,
                             std::vector<std::string> label_names) {
  return Add(name, help, Family::Type::kCounter, std::move(label_names), {});
}

Family* Registry::AddGauge(const std::string& name, const std::string& help,
                           std::vector<std::string> label_names) {
  return Add(name, help, Family::Type::kGauge, std::move(label_names), {});
}

Family* Registry::AddHistogram(const std::string& name, const std::string& help,
                               std::vector<std::string> label_names, std::vector<double> buckets) {
  return Add(name, help, Family::Type::kHistogram, std::move(label_names), std::move(buckets));
}

void Registry::OnScrape(std::function<void()> refresh) {
  absl::MutexLock lock(&mu_);
  refresh_.push_back(std::move(refresh));
}

std::string Registry::Render() {
  std::vector<std::function<void()>> refresh;
  {
    absl::MutexLock lock(&mu_);
    refresh = refresh_;
  }
  for (const auto& r : refresh) r();  // they take the lock through Set/Clear
  absl::MutexLock lock(&mu_);
  std::string out;
  for (const auto& f : families_) f->RenderLocked(&out);
  return out;
}

std::vector<double> SecondsBuckets() {
  return {0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800, 3600};
}

}  // namespace faultline::metrics
