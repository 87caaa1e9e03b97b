#include "workload/postgres_driver.h"

#include <arpa/inet.h>
#include <fmt/format.h>
#include <netinet/in.h>
#include <poll.h>

#include <charconv>
#include <cstring>
#include <optional>
#include <utility>

#include "absl/strings/str_split.h"
#include "common/clock.h"
#include "common/status_macros.h"
#include "common/text.h"
#include "probes/probe_net.h"

namespace faultline::workload {
namespace {

// Upper bounds of the poll loops; the deadline is what ends them in practice.
constexpr int kMaxConnectSteps = 1000;
constexpr int kMaxIoSteps = 1 << 20;

constexpr char kTableExists[] = "SELECT to_regclass('faultline_writes') IS NOT NULL";
constexpr char kCreateTable[] =
    "CREATE TABLE IF NOT EXISTS faultline_writes (run text NOT NULL, name text NOT NULL, "
    "seq bigint NOT NULL, written_unix_ns bigint NOT NULL, PRIMARY KEY (run, name, seq))";
constexpr char kInsert[] =
    "INSERT INTO faultline_writes (run, name, seq, written_unix_ns) VALUES ($1, $2, $3, $4)";
constexpr char kSelect[] = "SELECT seq FROM faultline_writes WHERE run = $1 AND name = $2";
constexpr char kDelete[] = "DELETE FROM faultline_writes WHERE run = $1 AND name = $2";

// SQLSTATEs: the table is missing; it appeared meanwhile (a concurrent CREATE).
constexpr char kUndefinedTable[] = "42P01";
constexpr char kDuplicateTable[] = "42P07";
constexpr char kUniqueViolation[] = "23505";

// libpq's messages end with a newline and may span lines: one line.
std::string OneLine(const char* text) {
  std::string out = text == nullptr ? "" : text;
  while (!out.empty() && (out.back() == '\n' || out.back() == ' ')) out.pop_back();
  for (char& c : out) {
    if (c == '\n' || c == '\t') c = ' ';
  }
  return out.empty() ? "unknown error" : out;
}

bool NumericAddress(const std::string& text) {
  in6_addr buf;
  return inet_pton(AF_INET, text.c_str(), &buf) == 1 || inet_pton(AF_INET6, text.c_str(), &buf) == 1;
}

struct ConninfoDeleter {
  void operator()(PQconninfoOption* options) const { PQconninfoFree(options); }
};

}  // namespace

absl::Status ValidatePostgresDsn(const std::string& field, const std::string& dsn) {
  if (dsn.empty()) {
    return absl::InvalidArgumentError(fmt::format(
        "{}: required (a libpq connection string, e.g. \"hostaddr=10.0.0.5 port=5432 "
        "dbname=app user=faultline\")",
        field));
  }
  char* raw_error = nullptr;
  std::unique_ptr<PQconninfoOption, ConninfoDeleter> options(
      PQconninfoParse(dsn.c_str(), &raw_error));
  if (options == nullptr) {
    const std::string reason = raw_error == nullptr ? "out of memory" : OneLine(raw_error);
    PQfreemem(raw_error);
    return absl::InvalidArgumentError(
        fmt::format("{}: not a libpq connection string: {}", field, Printable(reason, 200)));
  }
  std::string host, hostaddr, port;
  for (const PQconninfoOption* o = options.get(); o->keyword != nullptr; ++o) {
    if (o->val == nullptr) continue;
    if (std::strcmp(o->keyword, "host") == 0) host = o->val;
    if (std::strcmp(o->keyword, "hostaddr") == 0) hostaddr = o->val;
    if (std::strcmp(o->keyword, "port") == 0) port = o->val;
  }
  if (host.empty() && hostaddr.empty()) {
    return absl::InvalidArgumentError(fmt::format(
        "{}: name the server: host= (a numeric address or a unix socket folder such as "
        "/var/run/postgresql) or hostaddr= (without them libpq would take PGHOST or its "
        "default socket)",
        field));
  }
  const std::vector<std::string> hosts = absl::StrSplit(host, ',');
  const std::vector<std::string> addrs =
      hostaddr.empty() ? std::vector<std::string>{} : absl::StrSplit(hostaddr, ',');
  for (size_t i = 0; i < std::max(hosts.size(), addrs.size()); ++i) {
    const std::string addr = i < addrs.size() ? addrs[i] : "";
    const std::string name = i < hosts.size() ? hosts[i] : "";
    if (!addr.empty()) {
      if (NumericAddress(addr)) continue;
      return absl::InvalidArgumentError(fmt::format(
          "{}: hostaddr \"{}\" is not a numeric IPv4 or IPv6 address", field, Printable(addr)));
    }
    if (name.empty()) {
      return absl::InvalidArgumentError(fmt::format(
          "{}: host entry {} is empty (libpq would take its default socket)", field, i + 1));
    }
    if (name[0] == '/' || NumericAddress(name)) continue;
    return absl::InvalidArgumentError(fmt::format(
        "{}: host \"{}\" is a name; give a numeric address (host=10.0.0.5, or hostaddr= beside "
        "the name) or a unix socket folder (host=/var/run/postgresql): libpq resolves names "
        "with a blocking lookup that no write's timeout could bound",
        field, Printable(name)));
  }
  if (!port.empty()) {
    const std::vector<std::string> ports = absl::StrSplit(port, ',');
    for (const std::string& p : ports) {
      int value = 0;
      auto [ptr, ec] = std::from_chars(p.data(), p.data() + p.size(), value);
      if (ec != std::errc() || ptr != p.data() + p.size() || value < 1 || value > 65535) {
        return absl::InvalidArgumentError(fmt::format(
            "{}: port \"{}\" is not a number between 1 and 65535", field, Printable(p)));
      }
    }
  }
  return absl::OkStatus();
}

absl::StatusOr<PgConnection> PgConnection::Connect(const std::string& dsn,
                                                   Clock::time_point deadline) {
  // expand_dbname: `dsn` is a whole connection string; the application name
  // shows in pg_stat_activity unless the dsn names one.
  const char* const keywords[] = {"dbname", "fallback_application_name", nullptr};
  const char* const values[] = {dsn.c_str(), "faultline", nullptr};
  std::unique_ptr<PGconn, PgConnDeleter> conn(PQconnectStartParams(keywords, values, 1));
  if (conn == nullptr) return absl::ResourceExhaustedError("libpq: out of memory");
  // Notices ("relation already exists, skipping") are not ours to print.
  PQsetNoticeProcessor(conn.get(), [](void*, const char*) {}, nullptr);
  if (PQstatus(conn.get()) == CONNECTION_BAD) {
    return absl::UnavailableError(fmt::format("connecting: {}", OneLine(PQerrorMessage(conn.get()))));
  }
  PostgresPollingStatusType state = PGRES_POLLING_WRITING;
  for (int step = 0; step < kMaxConnectSteps; ++step) {
    if (state == PGRES_POLLING_OK) {
      if (PQsetnonblocking(conn.get(), 1) != 0) {
        return absl::UnavailableError(
            fmt::format("connecting: {}", OneLine(PQerrorMessage(conn.get()))));
      }
      return PgConnection(std::move(conn));
    }
    const int fd = PQsocket(conn.get());
    if (state == PGRES_POLLING_FAILED || fd < 0) {
      return absl::UnavailableError(
          fmt::format("connecting: {}", OneLine(PQerrorMessage(conn.get()))));
    }
    RETURN_IF_ERROR(probes::WaitReady(fd, state == PGRES_POLLING_READING ? POLLIN : POLLOUT,
                                      deadline, "connecting"));
    state = PQconnectPoll(conn.get());
  }
  return absl::UnavailableError("connecting: too many steps");
}

bool PgConnection::Alive() {
  return conn_ != nullptr && PQstatus(conn_.get()) == CONNECTION_OK &&
         PQconsumeInput(conn_.get()) == 1 && PQstatus(conn_.get()) == CONNECTION_OK;
}

absl::StatusOr<PgResult> PgConnection::Exec(const char* sql,
                                            const std::vector<std::string>& params,
                                            Clock::time_point deadline, Failure* failure,
                                            std::string* sqlstate) {
  Failure ignored_failure;
  std::string ignored_state;
  if (failure == nullptr) failure = &ignored_failure;
  if (sqlstate == nullptr) sqlstate = &ignored_state;
  sqlstate->clear();
  *failure = Failure::kNotSent;
  PGconn* conn = conn_.get();
  std::vector<const char*> values;
  for (const std::string& p : params) values.push_back(p.c_str());
  if (conn == nullptr) return absl::UnavailableError("sending: no connection");
  if (Clock::now() >= deadline) return absl::DeadlineExceededError("timed out before sending");
  if (PQsendQueryParams(conn, sql, static_cast<int>(values.size()), nullptr, values.data(),
                        nullptr, nullptr, 0) == 0) {
    const std::string why = OneLine(PQerrorMessage(conn));
    conn_.reset();
    return absl::UnavailableError(fmt::format("sending: {}", why));
  }
  // From here on the statement may have reached the server.
  *failure = Failure::kNoAnswer;
  auto lost = [&](const absl::Status& status) {
    conn_.reset();  // an answer may still come: this connection cannot be trusted again
    return status;
  };
  const int fd = PQsocket(conn);
  int step = 0;
  for (; step < kMaxIoSteps; ++step) {
    const int flushed = PQflush(conn);
    if (flushed == 0) break;
    if (flushed < 0) {
      return lost(absl::UnavailableError(fmt::format("sending: {}", OneLine(PQerrorMessage(conn)))));
    }
    absl::Status ready = probes::WaitReady(fd, POLLOUT | POLLIN, deadline, "sending the statement");
    if (!ready.ok()) return lost(ready);
    if (PQconsumeInput(conn) == 0) {
      return lost(absl::UnavailableError(fmt::format("sending: {}", OneLine(PQerrorMessage(conn)))));
    }
  }
  PgResult outcome;  // the statement's result (the first one)
  for (; step < kMaxIoSteps; ++step) {
    if (PQconsumeInput(conn) == 0) {
      return lost(absl::UnavailableError(
          fmt::format("waiting for the answer: {}", OneLine(PQerrorMessage(conn)))));
    }
    if (PQisBusy(conn)) {
      absl::Status ready = probes::WaitReady(fd, POLLIN, deadline, "waiting for the answer");
      if (!ready.ok()) return lost(ready);
      continue;
    }
    PgResult result(PQgetResult(conn));
    if (result == nullptr) break;  // the statement is done
    if (outcome == nullptr) outcome = std::move(result);
  }
  if (outcome == nullptr || step >= kMaxIoSteps) {
    return lost(absl::UnavailableError("no answer to the statement"));
  }
  const ExecStatusType status = PQresultStatus(outcome.get());
  if (status == PGRES_COMMAND_OK || status == PGRES_TUPLES_OK) return outcome;
  const char* code = PQresultErrorField(outcome.get(), PG_DIAG_SQLSTATE);
  const char* severity = PQresultErrorField(outcome.get(), PG_DIAG_SEVERITY_NONLOCALIZED);
  const std::string message = OneLine(PQresultErrorMessage(outcome.get()));
  if (code != nullptr) *sqlstate = code;
  // An ERROR from the server aborts the statement (autocommit): not applied.
  // A FATAL or PANIC ends the session, perhaps after the commit; an error
  // without a SQLSTATE is libpq's own (the connection broke).
  if (status == PGRES_FATAL_ERROR && code != nullptr && severity != nullptr &&
      std::strcmp(severity, "ERROR") == 0 && PQstatus(conn) == CONNECTION_OK) {
    *failure = Failure::kRefused;
    return absl::FailedPreconditionError(message);
  }
  return lost(absl::UnavailableError(message));
}

namespace {

// Writes and reads one workload's rows. Keeps one connection between writes,
// as a client does, and connects again after any failure; reads and cleanup
// use a fresh connection each. Owned by one writer or reader at a time; not
// thread-safe.
class PostgresDriver final : public DataDriver {
 public:
  PostgresDriver(std::string dsn, std::string run, std::string name)
      : dsn_(std::move(dsn)), run_(std::move(run)), name_(std::move(name)) {}

  std::string Kind() const override { return "postgres"; }
  bool CanList() const override { return true; }

  v1::WriteRecord::Outcome Write(int64_t seq, Clock::time_point deadline,
                                 std::string* error) override {
    if (connection_ && !connection_->Alive()) connection_.reset();  // closed while idle
    if (!connection_) {
      absl::StatusOr<PgConnection> connection = PgConnection::Connect(dsn_, deadline);
      absl::Status ready = connection.ok() ? EnsureTable(*connection, deadline) : connection.status();
      if (!ready.ok()) {
        *error = std::string(ready.message());
        return v1::WriteRecord::FAILED;  // the INSERT was never sent
      }
      connection_ = std::move(*connection);
    }
    PgConnection::Failure failure;
    auto result = connection_->Exec(
        kInsert, {run_, name_, std::to_string(seq), std::to_string(NowRealtimeNs())}, deadline,
        &failure);
    if (result.ok()) return v1::WriteRecord::ACKED;
    connection_.reset();  // e.g. a read-only server: connect again, perhaps to the new primary
    *error = fmt::format("INSERT: {}", std::string(result.status().message()));
    return failure == PgConnection::Failure::kNoAnswer ? v1::WriteRecord::UNKNOWN
                                                       : v1::WriteRecord::FAILED;
  }

  absl::StatusOr<std::set<int64_t>> ReadAll(const std::vector<int64_t>&,
                                            Clock::time_point deadline) override {
    ASSIGN_OR_RETURN(PgConnection connection, PgConnection::Connect(dsn_, deadline));
    std::string sqlstate;
    auto result = connection.Exec(kSelect, {run_, name_}, deadline, nullptr, &sqlstate);
    if (!result.ok() && sqlstate == kUndefinedTable) return std::set<int64_t>{};  // none written
    if (!result.ok()) return Named("SELECT", result.status());
    std::set<int64_t> present;
    const int rows = PQntuples(result->get());
    for (int i = 0; i < rows; ++i) {
      const char* text = PQgetvalue(result->get(), i, 0);
      const char* end = text + std::strlen(text);
      int64_t seq = 0;
      auto [ptr, ec] = std::from_chars(text, end, seq);
      if (ec != std::errc() || ptr != end) {
        return absl::DataLossError(fmt::format("SELECT answered seq \"{}\"", Printable(text)));
      }
      present.insert(seq);
    }
    return present;
  }

  absl::Status Cleanup(Clock::time_point deadline) override {
    connection_.reset();
    ASSIGN_OR_RETURN(PgConnection connection, PgConnection::Connect(dsn_, deadline));
    std::string sqlstate;
    auto result = connection.Exec(kDelete, {run_, name_}, deadline, nullptr, &sqlstate);
    if (!result.ok() && sqlstate != kUndefinedTable) return Named("DELETE", result.status());
    return absl::OkStatus();
  }

 private:
  static absl::Status Named(const char* what, const absl::Status& status) {
    return absl::Status(status.code(), fmt::format("{}: {}", what, std::string(status.message())));
  }

  // Creates the table unless it is there (checked first: CREATE needs a
  // privilege that writing into an existing table does not).
  static absl::Status EnsureTable(PgConnection& connection, Clock::time_point deadline) {
    ASSIGN_OR_RETURN(PgResult exists, connection.Exec(kTableExists, {}, deadline));
    if (PQntuples(exists.get()) == 1 && std::strcmp(PQgetvalue(exists.get(), 0, 0), "t") == 0) {
      return absl::OkStatus();
    }
    std::string sqlstate;
    auto created = connection.Exec(kCreateTable, {}, deadline, nullptr, &sqlstate);
    if (created.ok() || sqlstate == kDuplicateTable || sqlstate == kUniqueViolation) {
      return absl::OkStatus();  // ours, or a concurrent writer's
    }
    return Named("creating table faultline_writes", created.status());
  }

  const std::string dsn_;
  const std::string run_;
  const std::string name_;
  std::optional<PgConnection> connection_;  // the writer's, kept between writes
};

}  // namespace

absl::StatusOr<std::unique_ptr<DataDriver>> MakePostgresDriver(const std::string& field,
                                                               const v1::PostgresData& spec,
                                                               const std::string& run_id,
                                                               const std::string& name) {
  RETURN_IF_ERROR(ValidatePostgresDsn(field + ".dsn", spec.dsn()));
  return std::unique_ptr<DataDriver>(std::make_unique<PostgresDriver>(spec.dsn(), run_id, name));
}

}  // namespace faultline::workload
