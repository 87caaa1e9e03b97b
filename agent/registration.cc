#include "agent/registration.h"

#include <fmt/format.h>
#include <grpcpp/client_context.h>
#include <spdlog/spdlog.h>

#include "faultline/v1/controller.grpc.pb.h"

namespace faultline {

absl::Status Registrar::CheckAddresses(const RegistrationOptions& options) {
  if (options.advertise.empty()) {
    return absl::InvalidArgumentError(
        "--advertise: required with --controller (the address the controller dials)");
  }
  if (auto controller = ParseEndpoint("--controller", options.controller); !controller.ok()) {
    return controller.status();
  }
  return ParseEndpoint("--advertise", options.advertise).status();
}

absl::StatusOr<std::unique_ptr<Registrar>> Registrar::Start(RegistrationOptions options) {
  if (absl::Status st = CheckAddresses(options); !st.ok()) return st;
  if (!options.info) return absl::InvalidArgumentError("registration: no Info source");
  if (options.heartbeat < std::chrono::milliseconds(10)) {
    return absl::InvalidArgumentError("heartbeat: must be at least 10ms");
  }
  auto channel = Dial("--controller", options.controller, options.tls, options.insecure);
  if (!channel.ok()) return channel.status();
  std::unique_ptr<Registrar> r(new Registrar(std::move(options)));
  r->thread_ = std::thread([raw = r.get(), ch = *channel] { raw->Loop(ch); });
  return r;
}

Registrar::~Registrar() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
}

int64_t Registrar::accepted() const {
  std::lock_guard<std::mutex> lock(mu_);
  return accepted_;
}

void Registrar::Loop(std::shared_ptr<grpc::Channel> channel) {
  auto stub = v1::Controller::NewStub(channel);
  auto interval = options_.heartbeat;
  bool registered = false;
  bool warned = false;
  while (true) {
    v1::RegisterRequest req;
    req.set_address(options_.advertise);
    *req.mutable_info() = options_.info();
    v1::RegisterResponse resp;
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() +
                     std::max(interval, std::chrono::milliseconds(1000)));
    grpc::Status st = registered ? stub->Heartbeat(&ctx, req, &resp)
                                 : stub->Register(&ctx, req, &resp);
    if (st.ok()) {
      if (!registered) {
        spdlog::info("registered with controller {} as {} ({})", options_.controller,
                     req.info().name(), options_.advertise);
      }
      registered = true;
      warned = false;
      if (resp.heartbeat_interval_ms() >= 10) {
        interval = std::chrono::milliseconds(resp.heartbeat_interval_ms());
      }
      std::lock_guard<std::mutex> lock(mu_);
      ++accepted_;
    } else {
      if (!warned) {
        spdlog::warn("controller {}: {} (retrying every {} ms)", options_.controller,
                     st.error_message(), interval.count());
      }
      warned = true;
      registered = false;
    }
    std::unique_lock<std::mutex> lock(mu_);
    if (cv_.wait_for(lock, interval, [&] { return stop_; })) return;
  }
}

}  // namespace faultline
