// A data workload's writer and reader (docs/experiments.md, "Data and RPO").
// The writer sends sequence-numbered writes at a steady rate on a thread of
// its own and records each one's invoke time, answer time and outcome; the
// reader reads the workload back until two reads agree.
#ifndef FAULTLINE_WORKLOAD_DATA_WRITER_H_
#define FAULTLINE_WORKLOAD_DATA_WRITER_H_

#include <chrono>
#include <cstdint>
#include <memory>
#include <set>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "faultline/v1/data.pb.h"
#include "workload/data_driver.h"

namespace faultline::workload {

// One workload's writer. Owned by the run (or an agent's RunDataWriter call);
// Start and Stop from one thread, TakeRecords from any.
// Writes go one after another, write k due at start + k × period: a write that
// takes longer than the period (a timeout during an outage) makes the writer
// skip the slots it missed rather than burst, so the records' times stay one
// period apart at most outside failed writes.
class DataWriter {
 public:
  DataWriter(DataDriver* driver, DataSettings settings);  // driver: borrowed
  ~DataWriter();
  DataWriter(const DataWriter&) = delete;
  DataWriter& operator=(const DataWriter&) = delete;

  void Start();
  // The records of the writes done since the last TakeRecords (an agent
  // streams them in batches while the writer runs).
  std::vector<v1::WriteRecord> TakeRecords();
  // Stops after the write in progress, and returns the records not taken yet
  // (every write's, without TakeRecords).
  std::vector<v1::WriteRecord> Stop();

 private:
  void Loop();

  DataDriver* const driver_;
  const DataSettings settings_;
  absl::Notification stop_;
  std::thread thread_;
  absl::Mutex mu_;
  std::vector<v1::WriteRecord> records_ ABSL_GUARDED_BY(mu_);  // not taken yet
};

// What the reader found.
struct ReadBackResult {
  std::set<int64_t> present;  // from the last successful read
  int reads = 0;              // successful reads
  bool stable = false;        // the last two agreed
  absl::Status error;         // the last failed read's error, if no read succeeded
};

// Reads the workload back (`sent`: the sequence numbers written) until two
// successive reads agree, a short pause apart, or `timeout` passes.
ReadBackResult ReadBack(DataDriver& driver, const std::vector<int64_t>& sent,
                        std::chrono::nanoseconds timeout);

}  // namespace faultline::workload

#endif  // FAULTLINE_WORKLOAD_DATA_WRITER_H_
