// The agent's side of the controller link: registers with the controller
// (--controller ADDR --advertise ADDR) and heartbeats so the controller knows
// the agent is alive, where to dial it and what it can do.
#ifndef FAULTLINE_AGENT_REGISTRATION_H_
#define FAULTLINE_AGENT_REGISTRATION_H_

#include <chrono>
#include <condition_variable>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

#include "absl/status/statusor.h"
#include "common/endpoint.h"
#include "faultline/v1/agent.pb.h"

namespace faultline {

struct RegistrationOptions {
  std::string controller;  // the controller's address: HOST:PORT or unix:/PATH
  std::string advertise;   // where the controller dials this agent
  TlsFiles tls;
  bool insecure = false;
  // The agent's current Info (name, labels, version, capabilities, clock).
  std::function<v1::InfoResponse()> info;
  // Used until the controller says otherwise in its reply.
  std::chrono::milliseconds heartbeat{1000};
};

// A running registration: a background thread that registers, then heartbeats
// (re-registering after any failure, retrying with the heartbeat interval).
// Owned by the agent's main; destroying it stops the thread. Thread-safe.
class Registrar {
 public:
  // Parses --controller and --advertise (required) without dialling:
  // INVALID_ARGUMENT naming the flag. The agent calls it before it starts.
  static absl::Status CheckAddresses(const RegistrationOptions& options);
  // Checks the options and starts the thread; the controller need not be up.
  static absl::StatusOr<std::unique_ptr<Registrar>> Start(RegistrationOptions options);
  ~Registrar();
  Registrar(const Registrar&) = delete;
  Registrar& operator=(const Registrar&) = delete;

  // Heartbeats the controller accepted so far (for tests and status).
  int64_t accepted() const;

 private:
  explicit Registrar(RegistrationOptions options) : options_(std::move(options)) {}
  void Loop(std::shared_ptr<grpc::Channel> channel);

  const RegistrationOptions options_;
  mutable std::mutex mu_;
  std::condition_variable cv_;
  bool stop_ = false;
  int64_t accepted_ = 0;
  std::thread thread_;
};

}  // namespace faultline

#endif  // FAULTLINE_AGENT_REGISTRATION_H_
