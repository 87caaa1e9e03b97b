// The PostgreSQL driver of data workloads, through libpq: one autocommit
// INSERT per write into the table `faultline_writes` (created when missing),
// SELECT to read back, DELETE to clean up. Every step (connect, send, answer)
// is bounded by a deadline: libpq's asynchronous calls and poll() on its
// socket, never a blocking call. docs/experiments.md, "Data and RPO".
#ifndef FAULTLINE_WORKLOAD_POSTGRES_DRIVER_H_
#define FAULTLINE_WORKLOAD_POSTGRES_DRIVER_H_

#include <libpq-fe.h>

#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "faultline/v1/data.pb.h"
#include "workload/data_driver.h"

namespace faultline::workload {

// Checks a libpq connection string (key=value or postgresql:// URI) without
// connecting: it parses (PQconninfoParse), and it names its servers by
// address only (host= numeric or an absolute unix socket folder, or
// hostaddr=): libpq resolves host names with a blocking getaddrinfo() that no
// deadline can bound. Errors name `field` ("data[0].postgres.dsn").
absl::Status ValidatePostgresDsn(const std::string& field, const std::string& dsn);

// Deleters of libpq's handles, for std::unique_ptr.
struct PgConnDeleter {
  void operator()(PGconn* conn) const { PQfinish(conn); }
};
struct PgResultDeleter {
  void operator()(PGresult* result) const { PQclear(result); }
};
using PgResult = std::unique_ptr<PGresult, PgResultDeleter>;

// One libpq connection, every call bounded by a deadline. Owns its PGconn
// (PQfinish on destruction). Used by one thread at a time; not thread-safe.
class PgConnection {
 public:
  // Why Exec failed: the statement certainly did not reach the server
  // (kNotSent), the server refused it with an ERROR (kRefused: not applied;
  // the connection is still usable), or it was sent and no complete answer
  // came (kNoAnswer: it may have been applied; the connection is dropped).
  enum class Failure { kNotSent, kRefused, kNoAnswer };

  // Connects with PQconnectStartParams/PQconnectPoll, waiting on the socket
  // no longer than `deadline`. `dsn` should have passed ValidatePostgresDsn.
  static absl::StatusOr<PgConnection> Connect(const std::string& dsn, Clock::time_point deadline);

  // Runs one parameterised statement (PQsendQueryParams; parameters as text)
  // and returns its result (COMMAND_OK or TUPLES_OK). On failure `*failure`
  // (optional) says which kind, and `*sqlstate` (optional) the server's code.
  absl::StatusOr<PgResult> Exec(const char* sql, const std::vector<std::string>& params,
                                Clock::time_point deadline, Failure* failure = nullptr,
                                std::string* sqlstate = nullptr);

  // Whether the connection is still open: reads what an idle connection has
  // (a server's goodbye, its end of stream) without waiting.
  bool Alive();

 private:
  explicit PgConnection(std::unique_ptr<PGconn, PgConnDeleter> conn) : conn_(std::move(conn)) {}

  std::unique_ptr<PGconn, PgConnDeleter> conn_;
};

// Errors name `field` ("data[0].postgres").
absl::StatusOr<std::unique_ptr<DataDriver>> MakePostgresDriver(const std::string& field,
                                                               const v1::PostgresData& spec,
                                                               const std::string& run_id,
                                                               const std::string& name);

}  // namespace faultline::workload

#endif  // FAULTLINE_WORKLOAD_POSTGRES_DRIVER_H_
