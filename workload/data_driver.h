// How a data workload talks to its service (docs/experiments.md, "Data and
// RPO"): one driver per kind of service (Redis, PostgreSQL, HTTP), each
// writing a workload's keys `faultline:<run>:<name>:<seq>` (rows for
// PostgreSQL) and reading them back. MakeDataDriver
// validates a DataWorkload and makes its driver; ValidateDataWorkload checks
// it without making one (the experiment loader).
#ifndef FAULTLINE_WORKLOAD_DATA_DRIVER_H_
#define FAULTLINE_WORKLOAD_DATA_DRIVER_H_

#include <chrono>
#include <cstdint>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "faultline/v1/data.pb.h"

namespace faultline::workload {

using Clock = std::chrono::steady_clock;

// One service's writes and reads for one workload of one run. Owned by one
// writer or reader at a time; not thread-safe.
class DataDriver {
 public:
  virtual ~DataDriver() = default;
  virtual std::string Kind() const = 0;  // "redis", "postgres", "http"
  // Writes `seq` before `deadline`: ACKED when the service confirmed it,
  // FAILED when it certainly did not take it (refused, or never sent),
  // UNKNOWN when the write may have been applied (no answer, broken
  // connection). `error` gets the reason of anything but ACKED.
  virtual v1::WriteRecord::Outcome Write(int64_t seq, Clock::time_point deadline,
                                         std::string* error) = 0;
  // Whether ReadAll lists every key of the workload (else it looks up `sent`).
  virtual bool CanList() const = 0;
  // The sequence numbers present now.
  virtual absl::StatusOr<std::set<int64_t>> ReadAll(const std::vector<int64_t>& sent,
                                                    Clock::time_point deadline) = 0;
  // Removes the workload's keys.
  virtual absl::Status Cleanup(Clock::time_point deadline) = 0;
};

// The parsed settings of a DataWorkload, with defaults applied.
struct DataSettings {
  std::chrono::nanoseconds period{std::chrono::milliseconds(10)};  // 1 / rate
  std::chrono::nanoseconds timeout{std::chrono::seconds(1)};       // one write
  std::chrono::nanoseconds read_timeout{std::chrono::seconds(30)};
  double rate_per_s = 100;
};

// Checks `spec` (errors name `field`.x, e.g. "data[0].rate") and returns its
// settings.
absl::StatusOr<DataSettings> ValidateDataWorkload(const std::string& field,
                                                  const v1::DataWorkload& spec);

// Validates `spec` and makes its driver for run `run_id`.
absl::StatusOr<std::unique_ptr<DataDriver>> MakeDataDriver(const std::string& field,
                                                           const v1::DataWorkload& spec,
                                                           const std::string& run_id);

}  // namespace faultline::workload

#endif  // FAULTLINE_WORKLOAD_DATA_DRIVER_H_
