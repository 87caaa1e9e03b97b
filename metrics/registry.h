#ifndef FAULTLINE_METRICS_REGISTRY_H_
#define FAULTLINE_METRICS_REGISTRY_H_

// Prometheus metrics of a Faultline daemon (controller or agent), rendered in
// the text exposition format (version 0.0.4) for GET /metrics.

#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"

namespace faultline::metrics {

// Label values, in the order of the family's label names.
using LabelValues = std::vector<std::string>;

class Registry;

// One metric family: a name, its help, its type, its label names and its
// series. Created and owned by a Registry, which outlives every use; updates
// and rendering take the registry's mutex. Thread-safe.
class Family {
 public:
  enum class Type { kCounter, kGauge, kHistogram };

  // Counters: adds `delta` (>= 0) to the series of `labels`.
  void Add(const LabelValues& labels, double delta = 1);
  // Gauges: sets the series of `labels`.
  void Set(const LabelValues& labels, double value);
  // Gauges: drops every series (a scrape callback then sets what is now).
  void Clear();
  // Histograms: counts `value` into the series of `labels`.
  void Observe(const LabelValues& labels, double value);

 private:
  friend class Registry;
  struct Series {
    double value = 0;              // counter, gauge; the histogram's sum
    std::vector<uint64_t> counts;  // histogram: per bucket (not cumulative), +Inf last
    uint64_t count = 0;            // histogram
  };
  Family(Registry* registry, std::string name, std::string help, Type type,
         std::vector<std::string> label_names, std::vector<double> buckets);
  // The series of `labels`, created if the family has room; nullptr if not
  // (a wrong label count, or past kMaxSeries: dropped, logged once).
  Series* SeriesLocked(const LabelValues& labels);
  void RenderLocked(std::string* out) const;

  Registry* const registry_;
  const std::string name_;
  const std::string help_;
  const Type type_;
  const std::vector<std::string> label_names_;
  const std::vector<double> buckets_;  // histogram upper bounds, ascending (without +Inf)
  std::map<LabelValues, Series> series_;
  bool overflow_logged_ = false;
};

// The metric families of one daemon and the callbacks that refresh gauges at
// each scrape. Owned by the daemon's main (or a test); families live as long
// as it. Thread-safe: one mutex guards every family's series; scrape
// callbacks run before it is taken, on the scraping thread.
class Registry {
 public:
  // At most this many series per family: label values come from user input
  // (experiment names), so a family cannot grow without bound.
  static constexpr size_t kMaxSeries = 1000;

  Family* AddCounter(const std::string& name, const std::string& help,
                     std::vector<std::string> label_names = {});
  Family* AddGauge(const std::string& name, const std::string& help,
                   std::vector<std::string> label_names = {});
  Family* AddHistogram(const std::string& name, const std::string& help,
                       std::vector<std::string> label_names, std::vector<double> buckets);
  // Runs before each Render (sets gauges that are read off live state).
  void OnScrape(std::function<void()> refresh);

  // The text exposition of every family, in the order they were added.
  std::string Render();

 private:
  friend class Family;
  Family* Add(const std::string& name, const std::string& help, Family::Type type,
              std::vector<std::string> label_names, std::vector<double> buckets);

  absl::Mutex mu_;
  std::vector<std::unique_ptr<Family>> families_ ABSL_GUARDED_BY(mu_);
  std::vector<std::function<void()>> refresh_ ABSL_GUARDED_BY(mu_);
};

// Seconds from a few milliseconds to an hour: recovery times and RPOs.
std::vector<double> SecondsBuckets();

}  // namespace faultline::metrics

#endif  // FAULTLINE_METRICS_REGISTRY_H_
