#include "controller/data_workloads.h"

#include <fmt/format.h>
#include <fmt/ranges.h>
#include <spdlog/spdlog.h>

#include <utility>

#include "common/status_macros.h"
#include "common/units.h"
#include "workload/data_log.h"

namespace faultline::controller {

absl::StatusOr<std::unique_ptr<DataWorkloads>> DataWorkloads::Make(const v1::Experiment& exp,
                                                                   const std::string& run_id) {
  std::vector<Workload> workloads;
  for (int i = 0; i < exp.data_size(); ++i) {
    const std::string field = fmt::format("data[{}]", i);
    Workload w;
    w.spec = exp.data(i);
    ASSIGN_OR_RETURN(w.settings, workload::ValidateDataWorkload(field, w.spec));
    ASSIGN_OR_RETURN(w.driver, workload::MakeDataDriver(field, w.spec, run_id));
    workloads.push_back(std::move(w));
  }
  return std::unique_ptr<DataWorkloads>(new DataWorkloads(std::move(workloads)));
}

DataWorkloads::DataWorkloads(std::vector<Workload> workloads) : workloads_(std::move(workloads)) {}

DataWorkloads::~DataWorkloads() {
  for (Workload& w : workloads_) {
    if (w.writer) w.writer->Stop();
  }
}

void DataWorkloads::Start() {
  for (Workload& w : workloads_) {
    w.writer = std::make_unique<workload::DataWriter>(w.driver.get(), w.settings);
    w.writer->Start();
  }
}

std::vector<v1::DataResult> DataWorkloads::Finish() {
  // Every writer stops first: the reads see no write in flight.
  std::vector<std::vector<v1::WriteRecord>> records;
  for (Workload& w : workloads_) {
    records.push_back(w.writer ? w.writer->Stop() : std::vector<v1::WriteRecord>{});
  }
  std::vector<v1::DataResult> results;
  for (size_t i = 0; i < workloads_.size(); ++i) {
    results.push_back(ReadOne(workloads_[i], records[i]));
  }
  return results;
}

v1::DataResult DataWorkloads::Labelled(const Workload& w, v1::DataResult result) {
  result.set_name(w.spec.name());
  result.set_from(w.spec.from().empty() ? "controller" : w.spec.from());
  result.set_driver(w.driver->Kind());
  result.set_rate_per_s(w.settings.rate_per_s);
  return result;
}

v1::DataResult DataWorkloads::ReadOne(Workload& w, const std::vector<v1::WriteRecord>& records) {
  std::vector<int64_t> sent;
  sent.reserve(records.size());
  for (const v1::WriteRecord& r : records) sent.push_back(r.seq());
  workload::ReadBackResult read = workload::ReadBack(*w.driver, sent, w.settings.read_timeout);
  v1::DataResult result =
      Labelled(w, workload::Analyze(records, read.present, w.driver->CanList(), w.settings.period));
  result.set_reads(read.reads);
  result.set_read_stable(read.stable);
  if (read.reads == 0) {
    result.set_error(fmt::format("not read back within {}: {}",
                                 FormatDuration(w.settings.read_timeout),
                                 std::string(read.error.message())));
    // Nothing was read: no write can be called lost.
    result.set_writes_lost(0);
    result.clear_first_lost();
    result.set_rpo_ms(0);
    result.set_writes_recovered(0);
    result.set_writes_unexpected(-1);
    return result;
  }
  if (!read.stable) {
    result.set_error(fmt::format("two reads never agreed within {}; figures from the last read",
                                 FormatDuration(w.settings.read_timeout)));
  }
  if (!w.spec.keep()) {
    absl::Status st = w.driver->Cleanup(workload::Clock::now() + w.settings.read_timeout);
    if (!st.ok()) spdlog::warn("data {}: cleanup: {}", w.spec.name(), std::string(st.message()));
  }
  return result;
}

std::vector<v1::DataResult> DataWorkloads::Abandon(const std::string& why) {
  std::vector<v1::DataResult> results;
  for (Workload& w : workloads_) {
    std::vector<v1::WriteRecord> records =
        w.writer ? w.writer->Stop() : std::vector<v1::WriteRecord>{};
    v1::DataResult result = Labelled(w, workload::Analyze(records, {}, false, w.settings.period));
    result.set_writes_lost(0);
    result.clear_first_lost();
    result.set_rpo_ms(0);
    result.set_error("not read back: " + why);
    results.push_back(std::move(result));
    if (!w.spec.keep()) {
      absl::Status st = w.driver->Cleanup(workload::Clock::now() + std::chrono::seconds(2));
      if (!st.ok()) spdlog::warn("data {}: cleanup: {}", w.spec.name(), std::string(st.message()));
    }
  }
  return results;
}

std::optional<std::string> DataFailure(const v1::Experiment& exp, const v1::RunReport& report) {
  std::vector<std::string> reasons;
  const std::optional<double> rpo_ms =
      report.rpo_target_ms() > 0 ? std::optional<double>(report.rpo_target_ms()) : std::nullopt;
  const bool objectives = rpo_ms || exp.objectives().has_max_lost_writes();
  for (const v1::DataResult& r : report.data()) {
    if (r.reads() == 0) {
      if (!objectives) continue;
      reasons.push_back(fmt::format("data {}: {}", r.name(), r.error()));
      continue;
    }
    if (rpo_ms && r.rpo_ms() > *rpo_ms) {
      reasons.push_back(fmt::format("data {}: RPO {:.0f} ms (± {:.0f}) exceeds the objective {}",
                                    r.name(), r.rpo_ms(), r.rpo_error_ms(), exp.objectives().rpo()));
    }
    if (exp.objectives().has_max_lost_writes() &&
        r.writes_lost() > exp.objectives().max_lost_writes()) {
      reasons.push_back(fmt::format("data {}: {} acknowledged writes lost, at most {} allowed",
                                    r.name(), r.writes_lost(),
                                    exp.objectives().max_lost_writes()));
    }
  }
  if (reasons.empty()) return std::nullopt;
  return fmt::format("{}", fmt::join(reasons, "; "));
}

}  // namespace faultline::controller
