// A redis-server or redis-sentinel child process for tests against real
// servers on loopback (the redis probe's, the data workload's).
#ifndef FAULTLINE_TESTS_UNIT_PROBES_REDIS_PROCESS_H_
#define FAULTLINE_TESTS_UNIT_PROBES_REDIS_PROCESS_H_

#include <fcntl.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <chrono>
#include <string>
#include <thread>
#include <vector>

#include "probes/redis_client.h"
#include "tests/unit/probes/loopback_server.h"

namespace faultline::testing_util {

// A port nobody listens on right now (the kernel picks it; closed again).
inline int FreePort() {
  testing_util::Listener listener;
  return listener.port();
}

// One redis-server or redis-sentinel child: started with fork/exec (no shell),
// killed with its parent (PR_SET_PDEATHSIG), SIGKILLed and reaped by the
// destructor. Owned by the test; not thread-safe.
class RedisProcess {
 public:
  RedisProcess(std::vector<std::string> argv, int port) : port_(port) {
    std::vector<char*> args;
    for (std::string& a : argv) args.push_back(a.data());
    args.push_back(nullptr);
    pid_ = ::fork();
    if (pid_ == 0) {
      ::prctl(PR_SET_PDEATHSIG, SIGKILL);
      int null = ::open("/dev/null", O_WRONLY);
      ::dup2(null, 1);
      ::dup2(null, 2);
      ::execvp(args[0], args.data());
      ::_exit(127);
    }
  }
  ~RedisProcess() { Kill(); }
  RedisProcess(const RedisProcess&) = delete;
  RedisProcess& operator=(const RedisProcess&) = delete;

  void Kill() {
    if (pid_ <= 0) return;
    ::kill(pid_, SIGKILL);
    ::waitpid(pid_, nullptr, 0);
    pid_ = -1;
  }
  int port() const { return port_; }
  std::string address() const { return "127.0.0.1:" + std::to_string(port_); }

  // Runs one command on it; fails the test when it cannot.
  probes::RedisValue Run(const std::vector<std::string>& argv) {
    probes::Resolver resolver;
    const auto deadline = probes::Clock::now() + std::chrono::milliseconds(1000);
    auto connection = probes::RedisConnection::Connect({"127.0.0.1", static_cast<uint16_t>(port_)},
                                               resolver, deadline);
    EXPECT_TRUE(connection.ok()) << connection.status();
    if (!connection.ok()) return {};
    auto reply = connection->Command(argv, deadline);
    EXPECT_TRUE(reply.ok()) << reply.status();
    return reply.ok() ? *reply : probes::RedisValue{};
  }

  // Waits (at most 5 s) until PING answers.
  bool WaitReady() {
    probes::Resolver resolver;
    for (int i = 0; i < 100; ++i) {
      const auto deadline = probes::Clock::now() + std::chrono::milliseconds(200);
      auto connection = probes::RedisConnection::Connect(
          {"127.0.0.1", static_cast<uint16_t>(port_)}, resolver, deadline);
      if (connection.ok()) {
        auto reply = connection->Command({"PING"}, deadline);
        if (reply.ok() && reply->str == "PONG") return true;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    return false;
  }

 private:
  pid_t pid_ = -1;
  const int port_;
};

}  // namespace faultline::testing_util

#endif  // FAULTLINE_TESTS_UNIT_PROBES_REDIS_PROCESS_H_
