#include "agent/data_writers.h"

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <utility>
#include <vector>

#include "common/status_macros.h"
#include "common/units.h"
#include "workload/data_writer.h"
#include "workload/seq_ranges.h"

namespace faultline::agent {
namespace {

using Clock = std::chrono::steady_clock;

// The run id is part of every key: the same rules as a workload's name, a
// little longer (run ids look like "20261125-203012-5f3a").
absl::Status CheckRunId(const std::string& run_id) {
  bool ok = !run_id.empty() && run_id.size() <= 64;
  for (char c : run_id) {
    ok = ok && ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                c == '-' || c == '_' || c == '.');
  }
  if (ok) return absl::OkStatus();
  return absl::InvalidArgumentError("run_id: expected 1 to 64 of [A-Za-z0-9._-]");
}

// A workload of a run: its run id and the whole spec (a ReadData that names
// the run but describes the workload otherwise gets a driver of its own).
std::string KeyOf(const std::string& run_id, const v1::DataWorkload& spec) {
  return run_id + '\n' + spec.SerializeAsString();
}

absl::StatusOr<std::unique_ptr<workload::DataDriver>> DriverFor(const v1::DataWorkload& spec,
                                                                const std::string& run_id,
                                                                workload::DataSettings* settings) {
  RETURN_IF_ERROR(CheckRunId(run_id));
  ASSIGN_OR_RETURN(*settings, workload::ValidateDataWorkload("workload", spec));
  return workload::MakeDataDriver("workload", spec, run_id);
}

}  // namespace

DataWriters::Writer::~Writer() {
  absl::MutexLock lock(&owner_->mu_);
  --owner_->running_;
}

std::string DataWriters::Writer::Run(const std::function<bool(const v1::DataWriterBatch&)>& send,
                                     absl::Notification* stop,
                                     const std::function<bool()>& cancelled) {
  const Clock::time_point until = Clock::now() + bound_;
  workload::DataWriter writer(driver_.get(), settings_);
  writer.Start();
  std::string why;
  int64_t sent = 0;
  while (why.empty()) {
    const auto left = until - Clock::now();
    const auto wait = std::min<Clock::duration>(kBatchEvery, std::max<Clock::duration>(left, {}));
    if (stop->WaitForNotificationWithTimeout(absl::FromChrono(wait))) {
      why = "client";
    } else if (cancelled()) {
      why = "call cancelled";
    } else if (owner_->shutting_down()) {
      why = "agent shutting down";
    } else if (Clock::now() >= until) {
      why = fmt::format("bound of {} passed", FormatDuration(bound_));
    } else {
      v1::DataWriterBatch batch;
      for (v1::WriteRecord& r : writer.TakeRecords()) *batch.add_writes() = std::move(r);
      sent += batch.writes_size();
      if (!send(batch)) why = "client gone";
    }
  }
  v1::DataWriterBatch last;
  for (v1::WriteRecord& r : writer.Stop()) *last.add_writes() = std::move(r);
  sent += last.writes_size();
  last.set_done(true);
  last.set_stopped(why);
  if (why != "call cancelled" && why != "client gone") send(last);
  spdlog::info("data writer {} ({}) stopped ({}) after {} writes", name_, driver_->Kind(), why,
               sent);
  owner_->Keep(key_, std::move(driver_));
  return why;
}

absl::StatusOr<std::unique_ptr<DataWriters::Writer>> DataWriters::Admit(
    const v1::DataWriterControl& start) {
  const auto bound = std::chrono::milliseconds(start.max_write_ms());
  if (bound < std::chrono::milliseconds(1) || bound > kMaxWrite) {
    return absl::InvalidArgumentError(fmt::format(
        "max_write_ms: {} is outside 1 to {}", start.max_write_ms(),
        std::chrono::duration_cast<std::chrono::milliseconds>(kMaxWrite).count()));
  }
  workload::DataSettings settings;
  // Made before a slot is taken: parsing only, nothing is connected yet.
  ASSIGN_OR_RETURN(std::unique_ptr<workload::DataDriver> driver,
                   DriverFor(start.workload(), start.run_id(), &settings));
  absl::MutexLock lock(&mu_);
  if (shutdown_) return absl::UnavailableError("the agent is shutting down");
  if (running_ >= max_writers_) {
    return absl::ResourceExhaustedError(fmt::format(
        "this agent already runs {} data writers, its most at once; wait for a run to end",
        running_));
  }
  ++running_;
  return std::unique_ptr<Writer>(new Writer(this, start.workload().name(),
                                            KeyOf(start.run_id(), start.workload()),
                                            std::move(driver), settings, bound));
}

void DataWriters::Keep(std::string key, std::unique_ptr<workload::DataDriver> driver) {
  std::vector<Kept> dropped;  // declared first: closed after the lock is released
  absl::MutexLock lock(&mu_);
  const auto now = Clock::now();
  std::vector<Kept> kept;
  for (Kept& k : kept_) {
    (now - k.since > kKeepFor || k.key == key ? dropped : kept).push_back(std::move(k));
  }
  while (static_cast<int>(kept.size()) >= kMaxKept) {  // the oldest go first
    dropped.push_back(std::move(kept.front()));
    kept.erase(kept.begin());
  }
  kept.push_back({std::move(key), std::move(driver), now});
  kept_ = std::move(kept);
}

std::unique_ptr<workload::DataDriver> DataWriters::TakeKept(const std::string& key) {
  absl::MutexLock lock(&mu_);
  for (auto it = kept_.begin(); it != kept_.end(); ++it) {
    if (it->key != key) continue;
    std::unique_ptr<workload::DataDriver> driver = std::move(it->driver);
    kept_.erase(it);
    return driver;
  }
  return nullptr;
}

absl::StatusOr<v1::ReadDataResponse> DataWriters::Read(const v1::ReadDataRequest& req) {
  if (req.writes() < 0) return absl::InvalidArgumentError("writes: must be at least 0");
  if (req.cleanup_timeout_ms() < 0 || req.cleanup_timeout_ms() > 60000) {
    return absl::InvalidArgumentError("cleanup_timeout_ms: 0 to 60000");
  }
  workload::DataSettings settings;
  ASSIGN_OR_RETURN(std::unique_ptr<workload::DataDriver> driver,
                   DriverFor(req.workload(), req.run_id(), &settings));
  if (auto kept = TakeKept(KeyOf(req.run_id(), req.workload()))) driver = std::move(kept);
  v1::ReadDataResponse resp;
  resp.set_driver(driver->Kind());
  resp.set_can_list(driver->CanList());
  if (req.read()) {
    // A driver that cannot list looks each sent write up: 1..writes.
    std::vector<int64_t> sent;
    if (!driver->CanList()) {
      sent.reserve(static_cast<size_t>(std::min<int64_t>(req.writes(), 1 << 20)));
      for (int64_t seq = 1; seq <= req.writes(); ++seq) sent.push_back(seq);
    }
    workload::ReadBackResult read = workload::ReadBack(*driver, sent, settings.read_timeout);
    resp.set_reads(read.reads);
    resp.set_stable(read.stable);
    if (!read.error.ok()) resp.set_read_error(std::string(read.error.message()));
    workload::AppendSeqRanges(read.present, resp.mutable_present());
    // Nothing read: the service is out of reach, and so is a cleanup.
    if (read.reads == 0) return resp;
  }
  if (req.cleanup() && !req.workload().keep()) {
    const auto timeout = req.cleanup_timeout_ms() > 0
                             ? std::chrono::nanoseconds(std::chrono::milliseconds(req.cleanup_timeout_ms()))
                             : settings.read_timeout;
    absl::Status st = driver->Cleanup(workload::Clock::now() +
                                      std::chrono::duration_cast<workload::Clock::duration>(timeout));
    if (!st.ok()) resp.set_cleanup_error(std::string(st.message()));
  }
  return resp;
}

void DataWriters::Shutdown() {
  absl::MutexLock lock(&mu_);
  shutdown_ = true;
}

int DataWriters::running() const {
  absl::MutexLock lock(&mu_);
  return running_;
}

int DataWriters::kept() const {
  absl::MutexLock lock(&mu_);
  return static_cast<int>(kept_.size());
}

bool DataWriters::shutting_down() const {
  absl::MutexLock lock(&mu_);
  return shutdown_;
}

}  // namespace faultline::agent
