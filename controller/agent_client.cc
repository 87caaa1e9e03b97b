#include "controller/agent_client.h"

#include <fmt/format.h>
#include <grpcpp/client_context.h>
#include <grpcpp/create_channel.h>
#include <grpcpp/security/credentials.h>

#include <chrono>
#include <memory>
#include <mutex>
#include <utility>

#include "absl/strings/cord.h"
#include "common/clock.h"
#include "common/grpc_status.h"

namespace faultline::controller {
namespace {

// Where an AgentClient error keeps the agent's own message.
constexpr char kAgentMessageUrl[] = "faultline.v1/agent-message";

void SetDeadline(grpc::ClientContext* ctx, std::chrono::milliseconds timeout) {
  ctx->set_deadline(std::chrono::system_clock::now() + timeout);
}

absl::Status CallError(const std::string& name, const std::string& address, const char* method,
                       const grpc::Status& st) {
  absl::Status out = FromGrpcStatus(grpc::Status(
      st.error_code(), fmt::format("agent {} ({}): {}: {} {}", name, address, method,
                                   GrpcCodeName(st.error_code()), st.error_message())));
  out.SetPayload(kAgentMessageUrl, absl::Cord(st.error_message()));
  return out;
}

}  // namespace

void CallCanceller::Cancel() {
  absl::MutexLock lock(&mu_);
  cancelled_ = true;
  if (ctx_ != nullptr) ctx_->TryCancel();
}

bool CallCanceller::cancelled() const {
  absl::MutexLock lock(&mu_);
  return cancelled_;
}

bool CallCanceller::Attach(grpc::ClientContext* ctx) {
  absl::MutexLock lock(&mu_);
  if (cancelled_) return false;
  ctx_ = ctx;
  return true;
}

void CallCanceller::Detach() {
  absl::MutexLock lock(&mu_);
  ctx_ = nullptr;
}

void WriterStop::Stop() {
  absl::MutexLock lock(&mu_);
  stopped_ = true;
  if (stream_ != nullptr) HalfCloseLocked();
}

void WriterStop::Cancel() {
  absl::MutexLock lock(&mu_);
  cancelled_ = true;
  if (ctx_ != nullptr) ctx_->TryCancel();
}

void WriterStop::Attach(grpc::ClientContext* ctx, Stream* stream) {
  absl::MutexLock lock(&mu_);
  ctx_ = ctx;
  stream_ = stream;
  half_closed_ = false;
  if (cancelled_) ctx_->TryCancel();
  if (stopped_) HalfCloseLocked();
}

void WriterStop::Detach() {
  absl::MutexLock lock(&mu_);
  // The call's last step: the client half-closes, if nobody did, before Finish.
  if (stream_ != nullptr && !cancelled_) HalfCloseLocked();
  ctx_ = nullptr;
  stream_ = nullptr;
}

void WriterStop::HalfCloseLocked() {
  if (half_closed_) return;
  half_closed_ = true;
  stream_->WritesDone();  // a write-side call: safe beside the reading thread
}

namespace {

// gRPC 1.51 (where its I/O manager does not run in the background, as here)
// runs every channel's callbacks on one shared queue with its own threads,
// counted by the channels that use it: the last such channel to go away shuts
// the queue down and joins its threads. When that happens on one of those
// threads (a callback holding the last reference to an AgentClient), the
// process crashes. One channel that is never destroyed, with one callback call
// made on it, holds the queue for the life of the process.
void HoldCallbackQueue() {
  static std::once_flag once;
  std::call_once(once, [] {
    static auto* const channel =
        new std::shared_ptr<grpc::Channel>(grpc::CreateChannel(
            "unix:/nonexistent/faultline-callback-queue", grpc::InsecureChannelCredentials()));
    static auto* const stub = v1::Agent::NewStub(*channel).release();
    static auto* const ctx = new grpc::ClientContext();
    static auto* const req = new v1::InfoRequest();
    static auto* const resp = new v1::InfoResponse();
    ctx->set_deadline(std::chrono::system_clock::now() + std::chrono::milliseconds(1));
    stub->async()->Info(ctx, req, resp, [](grpc::Status) {});
  });
}

}  // namespace

AgentClient::AgentClient(std::string name, std::string address,
                         std::shared_ptr<grpc::Channel> channel)
    : name_(std::move(name)),
      address_(std::move(address)),
      channel_(std::move(channel)),
      stub_(v1::Agent::NewStub(channel_)) {
  HoldCallbackQueue();
}

bool AgentClient::Connected() const {
  return channel_->GetState(/*try_to_connect=*/false) == GRPC_CHANNEL_READY;
}

void AgentClient::Connect() const { channel_->GetState(/*try_to_connect=*/true); }

absl::Status AgentClient::Error(const char* method, const grpc::Status& st) const {
  return CallError(name_, address_, method, st);
}

absl::StatusOr<InfoSample> AgentClient::Info(std::chrono::milliseconds timeout) const {
  grpc::ClientContext ctx;
  SetDeadline(&ctx, timeout);
  InfoSample sample;
  sample.t0_ns = NowRealtimeNs();
  grpc::Status st = stub_->Info(&ctx, v1::InfoRequest(), &sample.info);
  sample.t2_ns = NowRealtimeNs();
  if (!st.ok()) return Error("Info", st);
  return sample;
}

template <typename Req, typename Resp>
absl::StatusOr<Resp> AgentClient::Unary(const char* method, UnaryRpc<Req, Resp> rpc, const Req& req,
                                        std::chrono::milliseconds timeout) const {
  grpc::ClientContext ctx;
  SetDeadline(&ctx, timeout);
  Resp resp;
  grpc::Status st = (stub_.get()->*rpc)(&ctx, req, &resp);
  if (!st.ok()) return Error(method, st);
  return resp;
}

absl::StatusOr<v1::InjectResponse> AgentClient::Inject(const v1::InjectRequest& req,
                                                       std::chrono::milliseconds timeout) const {
  return Unary("Inject", &v1::Agent::Stub::Inject, req, timeout);
}

absl::StatusOr<v1::RevertAllResponse> AgentClient::RevertAll(
    const v1::RevertAllRequest& req, std::chrono::milliseconds timeout) const {
  return Unary("RevertAll", &v1::Agent::Stub::RevertAll, req, timeout);
}

absl::StatusOr<v1::RenewLeaseResponse> AgentClient::RenewLease(
    const v1::RenewLeaseRequest& req, std::chrono::milliseconds timeout) const {
  return Unary("RenewLease", &v1::Agent::Stub::RenewLease, req, timeout);
}

absl::StatusOr<v1::ListFaultsResponse> AgentClient::ListFaults(
    std::chrono::milliseconds timeout) const {
  return Unary("ListFaults", &v1::Agent::Stub::ListFaults, v1::ListFaultsRequest(), timeout);
}

absl::StatusOr<v1::CommitResponse> AgentClient::Commit(const v1::CommitRequest& req,
                                                       std::chrono::milliseconds timeout) const {
  return Unary("Commit", &v1::Agent::Stub::Commit, req, timeout);
}

template <typename Req, typename Resp>
void AgentClient::UnaryAsync(const char* method, AsyncRpc<Req, Resp> rpc, const Req& req,
                             std::chrono::milliseconds timeout,
                             std::function<void(absl::StatusOr<Resp>)> done) const {
  // What gRPC needs until the callback: owned by the callback from the start
  // (it may run before the call below returns).
  struct Call {
    grpc::ClientContext ctx;
    Req req;
    Resp resp;
  };
  auto owned = std::make_unique<Call>();
  owned->req = req;
  SetDeadline(&owned->ctx, timeout);
  Call* call = owned.release();
  (stub_->async()->*rpc)(
      &call->ctx, &call->req, &call->resp,
      // No reference to the channel here: gRPC's core keeps what an in-flight
      // call needs (and see HoldCallbackQueue).
      [call, method, name = name_, address = address_,
       done = std::move(done)](grpc::Status st) {
        std::unique_ptr<Call> adopted(call);
        if (!st.ok()) return done(CallError(name, address, method, st));
        done(std::move(adopted->resp));
      });
}

void AgentClient::InfoAsync(std::chrono::milliseconds timeout,
                            std::function<void(absl::StatusOr<InfoSample>)> done) const {
  const int64_t t0 = NowRealtimeNs();
  UnaryAsync<v1::InfoRequest, v1::InfoResponse>(
      "Info", &v1::Agent::Stub::async::Info, v1::InfoRequest(), timeout,
      [t0, done = std::move(done)](absl::StatusOr<v1::InfoResponse> resp) {
        const int64_t t2 = NowRealtimeNs();
        if (!resp.ok()) return done(resp.status());
        InfoSample sample;
        sample.info = std::move(*resp);
        sample.t0_ns = t0;
        sample.t2_ns = t2;
        done(std::move(sample));
      });
}

void AgentClient::InjectAsync(const v1::InjectRequest& req, std::chrono::milliseconds timeout,
                              std::function<void(absl::StatusOr<v1::InjectResponse>)> done) const {
  UnaryAsync("Inject", &v1::Agent::Stub::async::Inject, req, timeout, std::move(done));
}

void AgentClient::RevertAllAsync(
    const v1::RevertAllRequest& req, std::chrono::milliseconds timeout,
    std::function<void(absl::StatusOr<v1::RevertAllResponse>)> done) const {
  UnaryAsync("RevertAll", &v1::Agent::Stub::async::RevertAll, req, timeout, std::move(done));
}

void AgentClient::RenewLeaseAsync(
    const v1::RenewLeaseRequest& req, std::chrono::milliseconds timeout,
    std::function<void(absl::StatusOr<v1::RenewLeaseResponse>)> done) const {
  UnaryAsync("RenewLease", &v1::Agent::Stub::async::RenewLease, req, timeout, std::move(done));
}

void AgentClient::CommitAsync(const v1::CommitRequest& req, std::chrono::milliseconds timeout,
                              std::function<void(absl::StatusOr<v1::CommitResponse>)> done) const {
  UnaryAsync("Commit", &v1::Agent::Stub::async::Commit, req, timeout, std::move(done));
}

absl::Status AgentClient::RunProbe(const v1::RunProbeRequest& req,
                                   const std::function<bool(const v1::ProbeSample&)>& on_sample,
                                   CallCanceller* cancel) const {
  grpc::ClientContext ctx;  // no deadline: the stream lasts as long as the run
  if (!cancel->Attach(&ctx)) return absl::OkStatus();
  auto reader = stub_->RunProbe(&ctx, req);
  v1::ProbeSample sample;
  bool stopped = false;
  while (reader->Read(&sample)) {
    if (!on_sample(sample)) {
      stopped = true;
      ctx.TryCancel();
      break;
    }
  }
  grpc::Status st = reader->Finish();
  cancel->Detach();
  if (stopped || cancel->cancelled()) return absl::OkStatus();
  if (st.ok()) {
    return absl::UnavailableError(
        fmt::format("agent {} ({}): RunProbe: the agent ended the stream", name_, address_));
  }
  return Error("RunProbe", st);
}

absl::Status AgentClient::RunDataWriter(
    const v1::DataWriterControl& start,
    const std::function<void(const v1::DataWriterBatch&)>& on_batch, WriterStop* stop,
    std::chrono::milliseconds timeout) const {
  grpc::ClientContext ctx;
  SetDeadline(&ctx, timeout);
  auto stream = stub_->RunDataWriter(&ctx);
  bool done = false;
  if (stream->Write(start)) {
    stop->Attach(&ctx, stream.get());
    v1::DataWriterBatch batch;
    while (!done && stream->Read(&batch)) {
      on_batch(batch);
      done = batch.done();
    }
    stop->Detach();
  }
  grpc::Status st = stream->Finish();
  if (!st.ok()) return Error("RunDataWriter", st);
  if (!done) {
    return absl::UnavailableError(fmt::format(
        "agent {} ({}): RunDataWriter: the stream ended without the writer's last records", name_,
        address_));
  }
  return absl::OkStatus();
}

absl::StatusOr<v1::ReadDataResponse> AgentClient::ReadData(
    const v1::ReadDataRequest& req, std::chrono::milliseconds timeout) const {
  return Unary("ReadData", &v1::Agent::Stub::ReadData, req, timeout);
}

absl::StatusOr<v1::RunStepResponse> AgentClient::RunStep(const v1::RunStepRequest& req,
                                                         std::chrono::milliseconds slack,
                                                         CallCanceller* cancel) const {
  grpc::ClientContext ctx;
  SetDeadline(&ctx, std::chrono::milliseconds(req.timeout_ms()) + slack);
  if (cancel != nullptr && !cancel->Attach(&ctx)) {
    return absl::CancelledError(fmt::format("agent {} ({}): RunStep: cancelled", name_, address_));
  }
  v1::RunStepResponse resp;
  grpc::Status st = stub_->RunStep(&ctx, req, &resp);
  if (cancel != nullptr) cancel->Detach();
  if (!st.ok()) return Error("RunStep", st);
  return resp;
}

std::string AgentMessage(const absl::Status& st) {
  auto message = st.GetPayload(kAgentMessageUrl);
  if (message.has_value()) return std::string(*message);
  return std::string(st.message());
}

AgentClients::AgentClients(Dialer dial) : dial_(std::move(dial)) {}

absl::StatusOr<std::shared_ptr<AgentClient>> AgentClients::Get(const std::string& name,
                                                               const std::string& address) {
  {
    absl::MutexLock lock(&mu_);
    auto it = clients_.find(address);
    if (it != clients_.end() && it->second->name() == name) return it->second;
  }
  // Dialed outside the lock; a client made meanwhile by another thread wins.
  absl::StatusOr<std::shared_ptr<grpc::Channel>> channel =
      dial_ ? dial_(address) : absl::FailedPreconditionError("no dialer");
  if (!channel.ok()) {
    return absl::UnavailableError(fmt::format("agent {} ({}): cannot dial: {}", name, address,
                                              std::string(channel.status().message())));
  }
  auto client = std::make_shared<AgentClient>(name, address, std::move(*channel));
  absl::MutexLock lock(&mu_);
  auto& slot = clients_[address];
  if (slot == nullptr || slot->name() != name) slot = std::move(client);
  return slot;
}

}  // namespace faultline::controller
