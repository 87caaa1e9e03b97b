// A PostgreSQL 15 server for tests against a real database (the data
// workload's postgres driver; later integration tests): initdb into a
// temporary folder /tmp/fltest-<pid>-pg-XXXXXX, `postgres` listening on
// 127.0.0.1 (a kernel-chosen free port) and on a unix socket in that folder.
// initdb and postgres refuse to run as root, and tests run as root: the
// children drop to user `nobody` (the folder is chown'ed to it) before exec.
// docs/testing.md, "PostgreSQL in tests".
#ifndef FAULTLINE_TESTS_UNIT_WORKLOAD_POSTGRES_PROCESS_H_
#define FAULTLINE_TESTS_UNIT_WORKLOAD_POSTGRES_PROCESS_H_

#include <fcntl.h>
#include <grp.h>
#include <pwd.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <string>
#include <thread>
#include <vector>

#include "tests/unit/probes/redis_process.h"  // FreePort
#include "workload/postgres_driver.h"

namespace faultline::testing_util {

inline constexpr char kPostgresBin[] = "/usr/lib/postgresql/15/bin";

// Runs argv as `uid`:`gid` in a child (fork/exec, no shell), its output
// appended to `log_fd`, dying with the calling thread (PR_SET_PDEATHSIG, set
// after the uid change, which clears it), in a process group of its own (so
// its children can be killed with it). Returns the pid, or -1.
inline pid_t SpawnAs(std::vector<std::string> argv, uid_t uid, gid_t gid, int log_fd) {
  std::vector<char*> args;
  for (std::string& a : argv) args.push_back(a.data());
  args.push_back(nullptr);
  char lang[] = "LC_ALL=C";
  char* env[] = {lang, nullptr};
  const pid_t parent = ::getpid();
  const pid_t pid = ::fork();
  if (pid != 0) return pid;
  // The child: async-signal-safe calls only.
  ::setpgid(0, 0);
  if (::setgroups(0, nullptr) != 0 || ::setgid(gid) != 0 || ::setuid(uid) != 0) ::_exit(126);
  ::prctl(PR_SET_PDEATHSIG, SIGKILL);
  if (::getppid() != parent) ::_exit(125);
  ::dup2(log_fd, 1);
  ::dup2(log_fd, 2);
  int null = ::open("/dev/null", O_RDONLY);
  ::dup2(null, 0);
  ::execve(args[0], args.data(), env);
  ::_exit(127);
}

// One initdb'ed cluster and its postmaster. Owned by the test; not
// thread-safe. The destructor SIGKILLs the postmaster's process group (the
// postmaster and its backends) by pid, reaps it and removes the folder.
class PostgresProcess {
 public:
  // `settings`: extra `-c name=value` for postgres (e.g. synchronous_commit=off).
  explicit PostgresProcess(std::vector<std::string> settings = {})
      : settings_(std::move(settings)), port_(FreePort()) {}
  ~PostgresProcess() {
    Kill(/*whole_group=*/true);
    if (log_fd_ >= 0) ::close(log_fd_);
    std::error_code ignored;
    if (!dir_.empty()) std::filesystem::remove_all(dir_, ignored);
  }
  PostgresProcess(const PostgresProcess&) = delete;
  PostgresProcess& operator=(const PostgresProcess&) = delete;

  // initdb (once) and start the server; waits until it answers (at most
  // 20 s). Returns "" or what went wrong.
  std::string Start() {
    if (dir_.empty()) {
      if (std::string error = InitDb(); !error.empty()) return error;
    }
    for (int attempt = 0; attempt < 5; ++attempt) {
      pid_ = Spawn({std::string(kPostgresBin) + "/postgres", "-D", dir_ + "/data", "-c",
                      "listen_addresses=127.0.0.1", "-c", "port=" + std::to_string(port_), "-c",
                      "unix_socket_directories=" + dir_, "-c", "fsync=on", "-c",
                      "synchronous_commit=on", "-c", "max_connections=20", "-c",
                      "shared_buffers=16MB", "-c", "dynamic_shared_memory_type=mmap"},
                     settings_);
      if (pid_ < 0) return "fork failed";
      const std::string error = WaitReady();
      if (error.empty()) return "";
      if (error != "exited") return error;
      // Exited at once: e.g. the killed postmaster's backends still held its
      // shared memory. Try again shortly.
      std::this_thread::sleep_for(std::chrono::milliseconds(200));
    }
    return "postgres exited at start 5 times; see " + dir_ + "/postgres.log";
  }

  // SIGKILLs the postmaster (only it: its backends notice and exit, as after
  // a crash), or its whole process group; reaps it.
  void Kill(bool whole_group = false) {
    if (pid_ <= 0) return;
    ::kill(whole_group ? -pid_ : pid_, SIGKILL);
    ::waitpid(pid_, nullptr, 0);
    pid_ = -1;
  }

  int port() const { return port_; }
  const std::string& dir() const { return dir_; }
  // TCP on loopback, numeric (as the driver requires).
  std::string dsn() const {
    return "hostaddr=127.0.0.1 port=" + std::to_string(port_) + " user=faultline dbname=postgres";
  }
  // The unix socket in the folder.
  std::string socket_dsn() const {
    return "host=" + dir_ + " port=" + std::to_string(port_) + " user=faultline dbname=postgres";
  }

  // Runs one statement on a fresh connection (2 s bound); fails the test when
  // it cannot. Returns the first column of every row.
  std::vector<std::string> Query(const char* sql, const std::vector<std::string>& params = {}) {
    const auto deadline = workload::Clock::now() + std::chrono::seconds(2);
    auto connection = workload::PgConnection::Connect(dsn(), deadline);
    EXPECT_TRUE(connection.ok()) << connection.status();
    if (!connection.ok()) return {};
    auto result = connection->Exec(sql, params, deadline);
    EXPECT_TRUE(result.ok()) << result.status();
    std::vector<std::string> out;
    if (!result.ok()) return out;
    for (int i = 0; i < PQntuples(result->get()); ++i) {
      out.push_back(PQnfields(result->get()) > 0 ? PQgetvalue(result->get(), i, 0) : "");
    }
    return out;
  }

 private:
  std::string InitDb() {
    if (::access((std::string(kPostgresBin) + "/initdb").c_str(), X_OK) != 0) {
      return std::string(kPostgresBin) +
             "/initdb not found: install postgresql-15 (scripts/setup does)";
    }
    const passwd* nobody = ::getpwnam("nobody");
    if (nobody == nullptr) return "no user nobody";
    uid_ = nobody->pw_uid;
    gid_ = nobody->pw_gid;
    // PREFIX-PID-: scripts/cleanup-test-leftovers removes it once we are gone.
    std::string pattern = "/tmp/fltest-" + std::to_string(::getpid()) + "-pg-XXXXXX";
    if (::mkdtemp(pattern.data()) == nullptr) return "mkdtemp failed";
    dir_ = pattern;
    if (::chown(dir_.c_str(), uid_, gid_) != 0) return "chown " + dir_ + " failed";
    log_fd_ = ::open((dir_ + "/postgres.log").c_str(),
                     O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    if (log_fd_ < 0) return "cannot open the log";
    const pid_t pid = Spawn({std::string(kPostgresBin) + "/initdb", "-D", dir_ + "/data",
                               "-U", "faultline", "--auth=trust", "-E", "UTF8", "--locale=C",
                               "--no-sync"},
                              {});
    if (pid < 0) return "fork failed";
    int status = 0;
    for (int i = 0; i < 600; ++i) {  // 60 s
      if (::waitpid(pid, &status, WNOHANG) == pid) {
        if (WIFEXITED(status) && WEXITSTATUS(status) == 0) return "";
        return "initdb failed; see " + dir_ + "/postgres.log";
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    ::kill(-pid, SIGKILL);
    ::waitpid(pid, nullptr, 0);
    return "initdb did not finish within 60 s";
  }

  pid_t Spawn(std::vector<std::string> argv, const std::vector<std::string>& extra) {
    for (const std::string& s : extra) argv.insert(argv.end(), {"-c", s});
    return testing_util::SpawnAs(std::move(argv), uid_, gid_, log_fd_);
  }

  // "" when a connection answers SELECT 1; "exited" when the postmaster died.
  std::string WaitReady() {
    const auto until = std::chrono::steady_clock::now() + std::chrono::seconds(20);
    while (std::chrono::steady_clock::now() < until) {
      if (::waitpid(pid_, nullptr, WNOHANG) == pid_) {
        pid_ = -1;
        return "exited";
      }
      const auto deadline = workload::Clock::now() + std::chrono::milliseconds(500);
      auto connection = workload::PgConnection::Connect(dsn(), deadline);
      if (connection.ok() && connection->Exec("SELECT 1", {}, deadline).ok()) return "";
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    return "postgres did not answer within 20 s; see " + dir_ + "/postgres.log";
  }

  const std::vector<std::string> settings_;
  const int port_;
  std::string dir_;
  int log_fd_ = -1;
  uid_t uid_ = 0;
  gid_t gid_ = 0;
  pid_t pid_ = -1;
};

}  // namespace faultline::testing_util

#endif  // FAULTLINE_TESTS_UNIT_WORKLOAD_POSTGRES_PROCESS_H_
