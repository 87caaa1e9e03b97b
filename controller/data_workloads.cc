#include "controller/data_workloads.h"

#include <fmt/format.h>
#include <fmt/ranges.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <thread>
#include <utility>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "common/status_macros.h"
#include "common/units.h"
#include "controller/experiment.h"
#include "workload/data_log.h"
#include "workload/seq_ranges.h"

namespace faultline::controller {
namespace {

using std::chrono::milliseconds;

// After Stop(), how long an agent's writer has to send its last records before
// its call is cut off (its batches come every 200 ms).
constexpr milliseconds kAgentStopWait{10000};
// An agent call's time beyond the work it bounds itself.
constexpr milliseconds kAgentCallSlack{10000};
// Read-backs may list keys nobody sent (a sign of a bug): at most this many
// beyond the writes sent are taken from an agent's answer.
constexpr int64_t kMaxUnexpected = 100000;

milliseconds Ms(std::chrono::nanoseconds d) {
  return std::chrono::duration_cast<milliseconds>(d);
}

std::vector<int64_t> SeqsOf(const std::vector<v1::WriteRecord>& records) {
  std::vector<int64_t> sent;
  sent.reserve(records.size());
  for (const v1::WriteRecord& r : records) sent.push_back(r.seq());
  return sent;
}

std::string DriverName(const v1::DataWorkload& spec) {
  if (spec.has_postgres()) return "postgres";
  if (spec.has_http()) return "http";
  return "redis";
}

// A writer on the controller: a workload::DataWriter and its driver.
class ControllerSite final : public DataSite {
 public:
  ControllerSite(std::unique_ptr<workload::DataDriver> driver, workload::DataSettings settings)
      : driver_(std::move(driver)), settings_(settings) {}

  std::string From() const override { return kFromController; }

  void Start() override {
    writer_ = std::make_unique<workload::DataWriter>(driver_.get(), settings_);
    writer_->Start();
  }

  absl::Status Stop(std::vector<v1::WriteRecord>* records) override {
    if (writer_) *records = writer_->Stop();
    return absl::OkStatus();
  }

  DataReadOutcome Read(const std::vector<v1::WriteRecord>& records, bool cleanup) override {
    DataReadOutcome out;
    out.can_list = driver_->CanList();
    out.read = workload::ReadBack(*driver_, SeqsOf(records), settings_.read_timeout);
    if (cleanup && out.read.reads > 0) {
      out.cleanup = driver_->Cleanup(workload::Clock::now() + settings_.read_timeout);
    }
    return out;
  }

  absl::Status Cleanup(milliseconds timeout) override {
    return driver_->Cleanup(workload::Clock::now() + timeout);
  }

 private:
  const std::unique_ptr<workload::DataDriver> driver_;
  const workload::DataSettings settings_;
  std::unique_ptr<workload::DataWriter> writer_;
};

// A writer on an agent: its RunDataWriter call on a thread of its own, which
// gathers the batches; the read-back and cleanup through ReadData. The agent
// stops writing when the call ends, so the writer never outlives the run.
class AgentSite final : public DataSite {
 public:
  AgentSite(std::shared_ptr<AgentClient> client, v1::DataWorkload spec, std::string run_id,
            workload::DataSettings settings, milliseconds max_write,
            std::optional<timeline::ClockOffset> clock)
      : client_(std::move(client)),
        spec_(std::move(spec)),
        run_id_(std::move(run_id)),
        settings_(settings),
        max_write_(max_write),
        clock_(clock) {}

  ~AgentSite() override {
    stop_.Cancel();
    if (thread_.joinable()) thread_.join();
  }

  std::string From() const override { return client_->name(); }

  void Start() override {
    v1::DataWriterControl start;
    *start.mutable_workload() = spec_;
    start.set_run_id(run_id_);
    start.set_max_write_ms(max_write_.count());
    thread_ = std::thread([this, start] {
      absl::Status st = client_->RunDataWriter(
          start, [this](const v1::DataWriterBatch& batch) { Add(batch); }, &stop_,
          max_write_ + kAgentStopWait + kAgentCallSlack);
      absl::MutexLock lock(&mu_);
      status_ = std::move(st);
      ended_ = true;
    });
  }

  absl::Status Stop(std::vector<v1::WriteRecord>* records) override {
    if (!thread_.joinable()) return absl::OkStatus();
    stop_.Stop();
    {
      absl::MutexLock lock(&mu_);
      mu_.AwaitWithTimeout(absl::Condition(&ended_), absl::FromChrono(kAgentStopWait));
    }
    stop_.Cancel();  // ends a call whose agent did not answer in time
    thread_.join();
    absl::MutexLock lock(&mu_);
    *records = std::move(records_);
    if (!status_.ok()) return status_;
    if (stopped_ != "client") {
      // The records are whole, but the writer stopped before the run's end.
      spdlog::warn("data {}: the writer on agent {} stopped early: {}", spec_.name(),
                   client_->name(), stopped_);
    }
    return absl::OkStatus();
  }

  DataReadOutcome Read(const std::vector<v1::WriteRecord>& records, bool cleanup) override {
    v1::ReadDataRequest req = Request(records);
    req.set_read(true);
    req.set_cleanup(cleanup);
    DataReadOutcome out;
    auto resp = client_->ReadData(req, Ms(2 * settings_.read_timeout) + kAgentCallSlack);
    if (!resp.ok()) {
      out.read.error = resp.status();
      out.cleanup = resp.status();
      return out;
    }
    out.can_list = resp->can_list();
    out.read.reads = resp->reads();
    out.read.stable = resp->stable();
    if (!resp->read_error().empty()) out.read.error = absl::UnavailableError(resp->read_error());
    if (!resp->cleanup_error().empty()) {
      out.cleanup = absl::UnavailableError(resp->cleanup_error());
    }
    auto present = workload::SeqsOfRanges(resp->present(), req.writes() + kMaxUnexpected);
    if (!present.ok()) {
      out.read.reads = 0;
      out.read.error = absl::DataLossError(fmt::format(
          "agent {}: ReadData: {}", client_->name(), std::string(present.status().message())));
      return out;
    }
    out.read.present = std::move(*present);
    return out;
  }

  absl::Status Cleanup(milliseconds timeout) override {
    v1::ReadDataRequest req = Request({});
    req.set_cleanup(true);
    req.set_cleanup_timeout_ms(timeout.count());
    auto resp = client_->ReadData(req, timeout + kAgentCallSlack);
    if (!resp.ok()) return resp.status();
    if (!resp->cleanup_error().empty()) return absl::UnavailableError(resp->cleanup_error());
    return absl::OkStatus();
  }

 private:
  v1::ReadDataRequest Request(const std::vector<v1::WriteRecord>& records) const {
    v1::ReadDataRequest req;
    *req.mutable_workload() = spec_;
    req.set_run_id(run_id_);
    int64_t writes = 0;
    for (const v1::WriteRecord& r : records) writes = std::max(writes, r.seq());
    req.set_writes(writes);
    return req;
  }

  // One batch, on the call's thread: its times onto the controller's clock.
  void Add(const v1::DataWriterBatch& batch) {
    absl::MutexLock lock(&mu_);
    for (v1::WriteRecord r : batch.writes()) {
      if (clock_) {
        r.set_invoke_unix_ns(timeline::ToControllerClock(r.invoke_unix_ns(), *clock_).ns);
        r.set_done_unix_ns(timeline::ToControllerClock(r.done_unix_ns(), *clock_).ns);
      }
      records_.push_back(std::move(r));
    }
    if (batch.done()) stopped_ = batch.stopped();
  }

  const std::shared_ptr<AgentClient> client_;
  const v1::DataWorkload spec_;
  const std::string run_id_;
  const workload::DataSettings settings_;
  const milliseconds max_write_;
  const std::optional<timeline::ClockOffset> clock_;
  WriterStop stop_;
  std::thread thread_;
  absl::Mutex mu_;
  std::vector<v1::WriteRecord> records_ ABSL_GUARDED_BY(mu_);
  std::string stopped_ ABSL_GUARDED_BY(mu_);  // the last batch's reason
  absl::Status status_ ABSL_GUARDED_BY(mu_);  // the call's end
  bool ended_ ABSL_GUARDED_BY(mu_) = false;
};

absl::StatusOr<std::unique_ptr<DataSite>> MakeSite(const std::string& field,
                                                   const v1::DataWorkload& spec,
                                                   const workload::DataSettings& settings,
                                                   const DataSiteContext& context) {
  if (spec.from().empty() || spec.from() == kFromController) {
    ASSIGN_OR_RETURN(auto driver, workload::MakeDataDriver(field, spec, context.run_id));
    return std::unique_ptr<DataSite>(std::make_unique<ControllerSite>(std::move(driver), settings));
  }
  const std::vector<AgentRef>* agents = nullptr;
  if (context.targets != nullptr) {
    if (auto it = context.targets->find(spec.from()); it != context.targets->end()) {
      agents = &it->second;
    }
  }
  if (agents == nullptr || agents->empty() || context.clients == nullptr) {
    return absl::FailedPreconditionError(
        fmt::format("{}.from: target {} matched no agent", field, spec.from()));
  }
  const AgentRef& agent = agents->front();
  ASSIGN_OR_RETURN(std::shared_ptr<AgentClient> client,
                   context.clients->Get(agent.name, agent.address));
  std::optional<timeline::ClockOffset> clock;
  if (context.clocks != nullptr) {
    if (auto it = context.clocks->find(agent.name); it != context.clocks->end()) clock = it->second;
  }
  return std::unique_ptr<DataSite>(std::make_unique<AgentSite>(
      std::move(client), spec, context.run_id, settings, context.max_write, clock));
}

}  // namespace

absl::StatusOr<std::unique_ptr<DataWorkloads>> DataWorkloads::Make(
    const v1::Experiment& exp, const DataSiteContext& context) {
  std::vector<Workload> workloads;
  for (int i = 0; i < exp.data_size(); ++i) {
    const std::string field = fmt::format("data[{}]", i);
    Workload w;
    w.spec = exp.data(i);
    ASSIGN_OR_RETURN(w.settings, workload::ValidateDataWorkload(field, w.spec));
    ASSIGN_OR_RETURN(w.site, MakeSite(field, w.spec, w.settings, context));
    workloads.push_back(std::move(w));
  }
  return std::unique_ptr<DataWorkloads>(new DataWorkloads(std::move(workloads)));
}

DataWorkloads::DataWorkloads(std::vector<Workload> workloads) : workloads_(std::move(workloads)) {}

DataWorkloads::~DataWorkloads() {
  std::vector<v1::WriteRecord> ignored;
  for (Workload& w : workloads_) {
    if (w.started) w.site->Stop(&ignored).IgnoreError();
  }
}

void DataWorkloads::Start() {
  for (Workload& w : workloads_) {
    w.site->Start();
    w.started = true;
  }
}

std::vector<v1::DataResult> DataWorkloads::Finish() {
  // Every writer stops first: the reads see no write in flight.
  std::vector<std::vector<v1::WriteRecord>> records(workloads_.size());
  std::vector<absl::Status> stopped;
  for (size_t i = 0; i < workloads_.size(); ++i) {
    stopped.push_back(workloads_[i].started ? workloads_[i].site->Stop(&records[i])
                                            : absl::OkStatus());
    workloads_[i].started = false;
  }
  std::vector<v1::DataResult> results;
  for (size_t i = 0; i < workloads_.size(); ++i) {
    if (!stopped[i].ok()) {
      // Records are missing: no figure could be trusted.
      results.push_back(Unread(workloads_[i], records[i],
                               "the writer failed: " + std::string(stopped[i].message())));
      continue;
    }
    results.push_back(ReadOne(workloads_[i], records[i]));
  }
  return results;
}

v1::DataResult DataWorkloads::Labelled(const Workload& w, v1::DataResult result) {
  result.set_name(w.spec.name());
  result.set_from(w.site->From());
  result.set_driver(DriverName(w.spec));
  result.set_rate_per_s(w.settings.rate_per_s);
  return result;
}

v1::DataResult DataWorkloads::ReadOne(Workload& w, const std::vector<v1::WriteRecord>& records) {
  const DataReadOutcome out = w.site->Read(records, !w.spec.keep());
  const workload::ReadBackResult& read = out.read;
  v1::DataResult result =
      Labelled(w, workload::Analyze(records, read.present, out.can_list, w.settings.period));
  result.set_reads(read.reads);
  result.set_read_stable(read.stable);
  if (read.reads == 0) {
    result.set_error(fmt::format("not read back within {}: {}{}",
                                 FormatDuration(w.settings.read_timeout),
                                 std::string(read.error.message()),
                                 w.spec.keep() ? "" : "; its keys were not removed"));
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
  if (!out.cleanup.ok()) {
    spdlog::warn("data {}: cleanup: {}", w.spec.name(), std::string(out.cleanup.message()));
  }
  return result;
}

v1::DataResult DataWorkloads::Unread(Workload& w, const std::vector<v1::WriteRecord>& records,
                                     const std::string& error) {
  v1::DataResult result = Labelled(w, workload::Analyze(records, {}, false, w.settings.period));
  result.set_writes_lost(0);
  result.clear_first_lost();
  result.set_rpo_ms(0);
  std::string why = error;
  if (!w.spec.keep()) {
    absl::Status st = w.site->Cleanup(std::chrono::seconds(2));
    if (!st.ok()) {
      spdlog::warn("data {}: cleanup: {}", w.spec.name(), std::string(st.message()));
      why += fmt::format("; its keys are left behind (cleanup: {})", std::string(st.message()));
    }
  }
  result.set_error(why);
  return result;
}

std::vector<v1::DataResult> DataWorkloads::Abandon(const std::string& why) {
  std::vector<v1::DataResult> results;
  for (Workload& w : workloads_) {
    std::vector<v1::WriteRecord> records;
    absl::Status stopped = w.started ? w.site->Stop(&records) : absl::OkStatus();
    w.started = false;
    std::string error = "not read back: " + why;
    if (!stopped.ok()) error += "; the writer failed: " + std::string(stopped.message());
    results.push_back(Unread(w, records, error));
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
