// The data workloads of one run (docs/experiments.md, "Data and RPO"): a
// writer per workload from the steady state to the end, then, once the faults
// are reverted and the service has recovered, a read-back and the figures.
// The verdict rule for objectives.rpo and objectives.max_lost_writes.
#ifndef FAULTLINE_CONTROLLER_DATA_WORKLOADS_H_
#define FAULTLINE_CONTROLLER_DATA_WORKLOADS_H_

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "faultline/v1/controller.pb.h"
#include "faultline/v1/experiment.pb.h"
#include "workload/data_driver.h"
#include "workload/data_writer.h"

namespace faultline::controller {

// Owned by the run; used from its Execute() thread only. Writers run on
// threads of their own (workload::DataWriter) and stop at Finish, Abandon or
// destruction at the latest.
class DataWorkloads {
 public:
  // Makes every workload's driver (the experiment was validated before).
  static absl::StatusOr<std::unique_ptr<DataWorkloads>> Make(const v1::Experiment& exp,
                                                             const std::string& run_id);
  ~DataWorkloads();

  bool empty() const { return workloads_.empty(); }
  void Start();
  // Stops the writers, reads every workload back, removes its keys unless it
  // keeps them, and returns the figures.
  std::vector<v1::DataResult> Finish();
  // Stops the writers without reading back (an aborted or failed run); removes
  // the keys unless a workload keeps them (briefly: 2 s at most each).
  std::vector<v1::DataResult> Abandon(const std::string& why);

 private:
  struct Workload {
    v1::DataWorkload spec;
    workload::DataSettings settings;
    std::unique_ptr<workload::DataDriver> driver;
    std::unique_ptr<workload::DataWriter> writer;
  };
  explicit DataWorkloads(std::vector<Workload> workloads);
  static v1::DataResult ReadOne(Workload& w, const std::vector<v1::WriteRecord>& records);
  // `result` with the workload's name, origin, driver and rate.
  static v1::DataResult Labelled(const Workload& w, v1::DataResult result);

  std::vector<Workload> workloads_;
};

// Why the report's data figures fail the run (its rpo_target_ms,
// objectives.max_lost_writes, or a workload that could not be read back), or
// nothing.
std::optional<std::string> DataFailure(const v1::Experiment& exp, const v1::RunReport& report);

}  // namespace faultline::controller

#endif  // FAULTLINE_CONTROLLER_DATA_WORKLOADS_H_
