#include "workload/data_writer.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <optional>
#include <string>
#include <utility>

#include "common/clock.h"

namespace faultline::workload {
namespace {

// Between two reads of the read-back: replication has a moment to settle.
constexpr auto kReadPause = std::chrono::milliseconds(200);

}  // namespace

DataWriter::DataWriter(DataDriver* driver, DataSettings settings)
    : driver_(driver), settings_(settings) {}

DataWriter::~DataWriter() {
  if (thread_.joinable()) Stop();
}

void DataWriter::Start() { thread_ = std::thread([this] { Loop(); }); }

std::vector<v1::WriteRecord> DataWriter::TakeRecords() {
  absl::MutexLock lock(&mu_);
  return std::exchange(records_, {});
}

std::vector<v1::WriteRecord> DataWriter::Stop() {
  if (!stop_.HasBeenNotified()) stop_.Notify();
  if (thread_.joinable()) thread_.join();
  return TakeRecords();
}

void DataWriter::Loop() {
  const auto period = std::chrono::duration_cast<Clock::duration>(settings_.period);
  const auto timeout = std::chrono::duration_cast<Clock::duration>(settings_.timeout);
  Clock::time_point next = Clock::now();
  int64_t seq = 0;
  std::string error;
  while (!stop_.HasBeenNotified()) {
    v1::WriteRecord record;
    record.set_seq(++seq);
    record.set_invoke_unix_ns(NowRealtimeNs());
    error.clear();
    record.set_outcome(driver_->Write(seq, Clock::now() + timeout, &error));
    record.set_done_unix_ns(NowRealtimeNs());
    if (record.outcome() != v1::WriteRecord::ACKED) {
      spdlog::debug("data write {}: {}", seq, error);
    }
    {
      absl::MutexLock lock(&mu_);
      records_.push_back(std::move(record));
    }
    next += period;
    const Clock::time_point now = Clock::now();
    if (next < now) next += ((now - next) / period + 1) * period;  // skip missed slots
    stop_.WaitForNotificationWithTimeout(absl::FromChrono(next - now));
  }
}

ReadBackResult ReadBack(DataDriver& driver, const std::vector<int64_t>& sent,
                        std::chrono::nanoseconds timeout) {
  const Clock::time_point deadline =
      Clock::now() + std::chrono::duration_cast<Clock::duration>(timeout);
  ReadBackResult result;
  std::optional<std::set<int64_t>> previous;
  while (Clock::now() < deadline) {
    auto read = driver.ReadAll(sent, deadline);
    if (read.ok()) {
      ++result.reads;
      result.error = absl::OkStatus();
      if (previous && *previous == *read) {
        result.present = std::move(*read);
        result.stable = true;
        return result;
      }
      previous = std::move(*read);
    } else {
      result.error = read.status();
    }
    const auto pause = std::min<Clock::duration>(kReadPause, deadline - Clock::now());
    if (pause > Clock::duration::zero()) std::this_thread::sleep_for(pause);
  }
  if (previous) {
    result.present = std::move(*previous);
    result.error = absl::OkStatus();
  }
  return result;
}

}  // namespace faultline::workload
