// Data workloads run on this host for a controller (docs/experiments.md,
// "Writers on agents"): the writer behind RunDataWriter and the read-back and
// cleanup behind ReadData, so that a workload's writes take this host's own
// network path to the service.
#ifndef FAULTLINE_AGENT_DATA_WRITERS_H_
#define FAULTLINE_AGENT_DATA_WRITERS_H_

#include <chrono>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "faultline/v1/agent.pb.h"
#include "workload/data_driver.h"

namespace faultline::agent {

// The agent's data writers: at most `max_writers` at once (each is a thread
// and a connection), each bounded by its request's max_write_ms and stopped by
// Shutdown(). Writing to a service is no host-side fault: nothing goes to the
// ledger, and an agent that dies leaves the workload's keys behind (the
// controller's cleanup, through ReadData, then fails and says so). Owned by
// the agent's service; thread-safe. Nothing slow runs under mu_.
class DataWriters {
 public:
  static constexpr int kMaxWriters = 4;
  // How often a running writer hands its new records over.
  static constexpr std::chrono::milliseconds kBatchEvery{200};
  static constexpr std::chrono::hours kMaxWrite{6};

  explicit DataWriters(int max_writers = kMaxWriters) : max_writers_(max_writers) {}

  // One admitted writer: its slot (given back when destroyed) and its driver.
  // Made by Admit; used by one thread.
  class Writer {
   public:
    ~Writer();
    Writer(const Writer&) = delete;
    Writer& operator=(const Writer&) = delete;

    // Writes until `stop` is notified, `cancelled()` holds, the bound passes
    // or the agent shuts down; hands the records to `send` every kBatchEvery
    // (a false return: the caller is gone, the writer stops), the last batch
    // with done and why it stopped. Returns that reason.
    std::string Run(const std::function<bool(const v1::DataWriterBatch&)>& send,
                    absl::Notification* stop, const std::function<bool()>& cancelled);

   private:
    friend class DataWriters;
    Writer(DataWriters* owner, std::string name, std::string key,
           std::unique_ptr<workload::DataDriver> driver, workload::DataSettings settings,
           std::chrono::milliseconds bound)
        : owner_(owner),
          name_(std::move(name)),
          key_(std::move(key)),
          driver_(std::move(driver)),
          settings_(settings),
          bound_(bound) {}

    DataWriters* const owner_;
    const std::string name_;  // the workload's
    const std::string key_;   // KeyOf its run and workload
    std::unique_ptr<workload::DataDriver> driver_;  // kept by the owner once Run ends
    const workload::DataSettings settings_;
    const std::chrono::milliseconds bound_;
  };

  // Validates `start` (never trusting the caller: the workload's own rules
  // and the bound) and takes a writer slot: RESOURCE_EXHAUSTED when all are
  // taken, UNAVAILABLE after Shutdown().
  absl::StatusOr<std::unique_ptr<Writer>> Admit(const v1::DataWriterControl& start);

  // Reads the workload back (until two reads agree, within its read_timeout)
  // and/or removes its keys, as `req` asks.
  // The driver of the workload's writer, when it ran here, reads: it starts
  // where the writer ended (the Sentinel that answered it last, not the first
  // of the list, which may be one that was cut off and still names the old
  // primary), as the controller's own reader does.
  absl::StatusOr<v1::ReadDataResponse> Read(const v1::ReadDataRequest& req);

  // Every running writer stops at its next batch; no new one is admitted.
  void Shutdown();
  int running() const;
  // Finished writers' drivers kept for their ReadData.
  int kept() const;

 private:
  // A finished writer's driver, kept for its workload's ReadData.
  struct Kept {
    std::string key;
    std::unique_ptr<workload::DataDriver> driver;
    std::chrono::steady_clock::time_point since;
  };
  static constexpr int kMaxKept = 16;
  static constexpr std::chrono::minutes kKeepFor{10};

  bool shutting_down() const;
  void Keep(std::string key, std::unique_ptr<workload::DataDriver> driver);
  // The kept driver of `key` (taken out), or null.
  std::unique_ptr<workload::DataDriver> TakeKept(const std::string& key);

  const int max_writers_;
  mutable absl::Mutex mu_;
  int running_ ABSL_GUARDED_BY(mu_) = 0;
  bool shutdown_ ABSL_GUARDED_BY(mu_) = false;
  // Oldest first; at most kMaxKept, none older than kKeepFor once another comes.
  std::vector<Kept> kept_ ABSL_GUARDED_BY(mu_);
};

}  // namespace faultline::agent

#endif  // FAULTLINE_AGENT_DATA_WRITERS_H_
