// The controller's client side of the faultline.v1.Agent service: one
// AgentClient per agent, shared through AgentClients by the runner (its
// phases, lease loop and probe streams) and the controller service.
#ifndef FAULTLINE_CONTROLLER_AGENT_CLIENT_H_
#define FAULTLINE_CONTROLLER_AGENT_CLIENT_H_

#include <grpcpp/channel.h>
#include <grpcpp/support/sync_stream.h>

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "faultline/v1/agent.grpc.pb.h"

namespace grpc {
class ClientContext;
}  // namespace grpc

namespace faultline::controller {

// A channel to an agent's advertised address.
using Dialer =
    std::function<absl::StatusOr<std::shared_ptr<grpc::Channel>>(const std::string& address)>;

// An Info answer and the controller's realtime clock around the call, for the
// NTP-style offset estimate (t0 = sent, t2 = answered; t1 is in info.clock()).
struct InfoSample {
  v1::InfoResponse info;
  int64_t t0_ns = 0;
  int64_t t2_ns = 0;
};

// Cancels one call (a RunProbe stream) from another thread. Thread-safe. Once
// cancelled it stays cancelled: a call started after Cancel() ends at once.
class CallCanceller {
 public:
  void Cancel();
  bool cancelled() const;

 private:
  friend class AgentClient;
  // Registers the live call; false if already cancelled.
  bool Attach(grpc::ClientContext* ctx);
  void Detach();

  mutable absl::Mutex mu_;
  bool cancelled_ ABSL_GUARDED_BY(mu_) = false;
  grpc::ClientContext* ctx_ ABSL_GUARDED_BY(mu_) = nullptr;
};

// Ends a RunDataWriter call from another thread: Stop() half-closes it (the
// agent stops the writer and sends its last records), Cancel() cuts it off.
// Thread-safe. Either one, made before the call starts, ends it at once.
class WriterStop {
 public:
  void Stop();
  void Cancel();

 private:
  friend class AgentClient;
  using Stream = grpc::ClientReaderWriter<v1::DataWriterControl, v1::DataWriterBatch>;
  // Registers the live call, acting on a Stop() or Cancel() made before.
  void Attach(grpc::ClientContext* ctx, Stream* stream);
  void Detach();
  void HalfCloseLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  absl::Mutex mu_;
  bool stopped_ ABSL_GUARDED_BY(mu_) = false;
  bool cancelled_ ABSL_GUARDED_BY(mu_) = false;
  bool half_closed_ ABSL_GUARDED_BY(mu_) = false;  // WritesDone() is called once
  grpc::ClientContext* ctx_ ABSL_GUARDED_BY(mu_) = nullptr;
  Stream* stream_ ABSL_GUARDED_BY(mu_) = nullptr;
};

// A client of one agent: its channel and stub, made once and reused for every
// call. Errors are absl::Statuses with the agent's gRPC code and the message
// "agent NAME (ADDR): Method: CODE the agent's message"; AgentMessage() gives
// back the agent's own words. Every call takes its own deadline. Owned (shared)
// by AgentClients and whoever got it from there; thread-safe (gRPC stubs are).
class AgentClient {
 public:
  AgentClient(std::string name, std::string address, std::shared_ptr<grpc::Channel> channel);

  const std::string& name() const { return name_; }
  const std::string& address() const { return address_; }
  // Whether the channel is connected now (a call on it pays no connect).
  bool Connected() const;
  // Starts connecting in the background, if not connected; returns at once.
  void Connect() const;

  absl::StatusOr<InfoSample> Info(std::chrono::milliseconds timeout) const;
  absl::StatusOr<v1::InjectResponse> Inject(const v1::InjectRequest& req,
                                            std::chrono::milliseconds timeout) const;
  absl::StatusOr<v1::RevertAllResponse> RevertAll(const v1::RevertAllRequest& req,
                                                  std::chrono::milliseconds timeout) const;
  absl::StatusOr<v1::RenewLeaseResponse> RenewLease(const v1::RenewLeaseRequest& req,
                                                    std::chrono::milliseconds timeout) const;
  absl::StatusOr<v1::ListFaultsResponse> ListFaults(std::chrono::milliseconds timeout) const;
  absl::StatusOr<v1::CommitResponse> Commit(const v1::CommitRequest& req,
                                            std::chrono::milliseconds timeout) const;
  // The asynchronous twins of the calls above, for fan-outs to many agents at
  // once (ForEachAsync): each returns at once and calls `done` exactly once,
  // on a gRPC thread, with what the blocking call would have returned. `done`
  // must not block; it may start further calls. The call does not need this
  // client to outlive it.
  void InfoAsync(std::chrono::milliseconds timeout,
                 std::function<void(absl::StatusOr<InfoSample>)> done) const;
  void InjectAsync(const v1::InjectRequest& req, std::chrono::milliseconds timeout,
                   std::function<void(absl::StatusOr<v1::InjectResponse>)> done) const;
  void RevertAllAsync(const v1::RevertAllRequest& req, std::chrono::milliseconds timeout,
                      std::function<void(absl::StatusOr<v1::RevertAllResponse>)> done) const;
  void RenewLeaseAsync(const v1::RenewLeaseRequest& req, std::chrono::milliseconds timeout,
                       std::function<void(absl::StatusOr<v1::RenewLeaseResponse>)> done) const;
  void CommitAsync(const v1::CommitRequest& req, std::chrono::milliseconds timeout,
                   std::function<void(absl::StatusOr<v1::CommitResponse>)> done) const;
  // Streams the agent's samples to `on_sample` (on the calling thread) until the
  // agent ends the stream, `on_sample` returns false or `cancel` is cancelled.
  // Returns OK when stopped by `on_sample` or by `cancel`, else the stream's end
  // status (an error, for a probe stream that should not end).
  absl::Status RunProbe(const v1::RunProbeRequest& req,
                        const std::function<bool(const v1::ProbeSample&)>& on_sample,
                        CallCanceller* cancel) const;
  // Runs a data writer on the agent (docs/experiments.md, "Writers on
  // agents"): sends `start`, hands every batch to `on_batch` (on the calling
  // thread) until the last one (done), and returns OK then. `stop` ends it;
  // `timeout` bounds the whole call. An error when the agent refused the
  // writer, the call broke or was cancelled, or the stream ended without the
  // last batch.
  absl::Status RunDataWriter(const v1::DataWriterControl& start,
                             const std::function<void(const v1::DataWriterBatch&)>& on_batch,
                             WriterStop* stop, std::chrono::milliseconds timeout) const;
  absl::StatusOr<v1::ReadDataResponse> ReadData(const v1::ReadDataRequest& req,
                                                std::chrono::milliseconds timeout) const;
  // Runs one drill step on the agent and waits for its end (the call's
  // deadline: the step's timeout plus `slack`). `cancel` (optional) ends the
  // call, and the agent then kills the step.
  absl::StatusOr<v1::RunStepResponse> RunStep(const v1::RunStepRequest& req,
                                              std::chrono::milliseconds slack,
                                              CallCanceller* cancel) const;

 private:
  template <typename Req, typename Resp>
  using UnaryRpc = grpc::Status (v1::Agent::Stub::*)(grpc::ClientContext*, const Req&, Resp*);
  // One unary call: its deadline, the call, the error wording.
  template <typename Req, typename Resp>
  absl::StatusOr<Resp> Unary(const char* method, UnaryRpc<Req, Resp> rpc, const Req& req,
                             std::chrono::milliseconds timeout) const;
  template <typename Req, typename Resp>
  using AsyncRpc = void (v1::Agent::Stub::async::*)(grpc::ClientContext*, const Req*, Resp*,
                                                    std::function<void(grpc::Status)>);
  // One asynchronous unary call (gRPC's callback API): its deadline, the call,
  // the error wording.
  template <typename Req, typename Resp>
  void UnaryAsync(const char* method, AsyncRpc<Req, Resp> rpc, const Req& req,
                  std::chrono::milliseconds timeout,
                  std::function<void(absl::StatusOr<Resp>)> done) const;
  absl::Status Error(const char* method, const grpc::Status& st) const;

  const std::string name_;
  const std::string address_;
  const std::shared_ptr<grpc::Channel> channel_;
  const std::unique_ptr<v1::Agent::Stub> stub_;
};

// The agent's own message in a status from an AgentClient call (without the
// "agent NAME (ADDR): Method: CODE " prefix); the whole message otherwise.
std::string AgentMessage(const absl::Status& st);

// The controller's AgentClients, one per agent address, dialed on first use
// through `dial` and kept. Owned by the controller service (or a test) and
// shared by its runs; must outlive them. Thread-safe.
class AgentClients {
 public:
  explicit AgentClients(Dialer dial);

  // The client for `address` (`name` names the agent in errors; a name that
  // changed for an address makes a new client). UNAVAILABLE if it cannot be
  // dialed ("agent NAME (ADDR): cannot dial: ...").
  absl::StatusOr<std::shared_ptr<AgentClient>> Get(const std::string& name,
                                                   const std::string& address);

 private:
  const Dialer dial_;
  absl::Mutex mu_;
  std::map<std::string, std::shared_ptr<AgentClient>> clients_ ABSL_GUARDED_BY(mu_);  // by address
};

}  // namespace faultline::controller

#endif  // FAULTLINE_CONTROLLER_AGENT_CLIENT_H_
