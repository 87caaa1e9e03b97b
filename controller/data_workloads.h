// The data workloads of one run (docs/experiments.md, "Data and RPO"): a
// writer per workload from the steady state to the end, then, once the faults
// are reverted and the service has recovered, a read-back and the figures.
// A writer runs on the controller (`from: controller`) or on the first agent
// of a target (`from: <target>`, "Writers on agents"); both go through one
// interface, so stopping, reading, cleaning up and the figures are one path.
// The verdict rule for objectives.rpo and objectives.max_lost_writes.
#ifndef FAULTLINE_CONTROLLER_DATA_WORKLOADS_H_
#define FAULTLINE_CONTROLLER_DATA_WORKLOADS_H_

#include <chrono>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "controller/agent_client.h"
#include "controller/targets.h"
#include "controller/timeline/clock_offset.h"
#include "faultline/v1/controller.pb.h"
#include "faultline/v1/experiment.pb.h"
#include "workload/data_driver.h"
#include "workload/data_writer.h"

namespace faultline::controller {

// What one read-back found, wherever it ran.
struct DataReadOutcome {
  workload::ReadBackResult read;
  bool can_list = false;  // the read saw every key of the workload
  absl::Status cleanup;   // OK: removed, or not asked
};

// Where one workload's writes come from and its read-back runs: the
// controller (a workload::DataWriter here) or an agent (its RunDataWriter and
// ReadData calls). Owned by DataWorkloads; Start, Stop, Read and Cleanup from
// one thread, in that order.
class DataSite {
 public:
  virtual ~DataSite() = default;
  // "controller" or the agent's name.
  virtual std::string From() const = 0;
  virtual void Start() = 0;
  // Stops the writer and returns every write's record (times on the
  // controller's clock). Not OK when the writer failed (refused, or its agent
  // went away): the records are then incomplete.
  virtual absl::Status Stop(std::vector<v1::WriteRecord>* records) = 0;
  // Reads back the writes of `records` until two reads agree (read_timeout),
  // then removes the keys if `cleanup` and something was read.
  virtual DataReadOutcome Read(const std::vector<v1::WriteRecord>& records, bool cleanup) = 0;
  // Removes the keys without reading, within `timeout`.
  virtual absl::Status Cleanup(std::chrono::milliseconds timeout) = 0;
};

// What DataWorkloads::Make needs to put writers on agents.
struct DataSiteContext {
  std::string run_id;
  // The run's frozen targets: `from: <target>` takes the target's first agent.
  const std::map<std::string, std::vector<AgentRef>>* targets = nullptr;
  AgentClients* clients = nullptr;
  // Agents' clock offsets, by name: an agent writer's times are mapped onto
  // the controller's clock through its agent's (none known: left as they are).
  const std::map<std::string, timeline::ClockOffset>* clocks = nullptr;
  // How long an agent's writer may write at most (it stops by itself then).
  std::chrono::milliseconds max_write{std::chrono::hours(1)};
};

// Owned by the run; used from its Execute() thread only. Writers run on
// threads of their own (workload::DataWriter, or an agent call's) and stop at
// Finish, Abandon or destruction at the latest.
class DataWorkloads {
 public:
  // Makes every workload's site (the experiment was validated before); an
  // error names the field (`data[0].from: target x matched no agent`).
  static absl::StatusOr<std::unique_ptr<DataWorkloads>> Make(const v1::Experiment& exp,
                                                             const DataSiteContext& context);
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
    std::unique_ptr<DataSite> site;
    bool started = false;
  };
  explicit DataWorkloads(std::vector<Workload> workloads);
  static v1::DataResult ReadOne(Workload& w, const std::vector<v1::WriteRecord>& records);
  // The figures of a workload that was not read back: its counts, no loss,
  // `error`; its keys removed unless it keeps them.
  static v1::DataResult Unread(Workload& w, const std::vector<v1::WriteRecord>& records,
                               const std::string& error);
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
