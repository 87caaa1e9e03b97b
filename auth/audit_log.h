// The audit log (--audit-log FILE) of a daemon: one JSON line per mutating
// call (who, what, result), appended and fsync'ed before the call returns.
#ifndef FAULTLINE_AUTH_AUDIT_LOG_H_
#define FAULTLINE_AUTH_AUDIT_LOG_H_

#include <memory>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "auth/caller.h"
#include "common/unique_fd.h"

namespace faultline::auth {

// One audited call. `what_json` is a JSON value (an object, usually) that the
// caller has built from the request without secrets: fault specs, experiment
// names and digests, probe kinds and targets — never keys, tokens, passwords
// or probe argv/headers.
struct AuditEntry {
  std::string call;       // "Inject", "RunExperiment", ...
  std::string who;        // Caller::Who(), or "unknown" when not identified
  std::string peer;       // grpc's peer string
  std::string what_json = "{}";
  absl::Status result;    // OK or the error returned to the caller
};

// One open audit file (O_APPEND, mode 0600). Owned by the daemon's main,
// shared by its services; thread-safe (a mutex orders the lines; each line
// is one write() followed by fsync()).
class AuditLog {
 public:
  // `daemon` ("agent", "controller") is written into every line.
  static absl::StatusOr<std::unique_ptr<AuditLog>> Open(const std::string& path,
                                                        const std::string& daemon);

  // Appends the entry and fsyncs. An error is logged (once per failure) and
  // returned; the call it describes has already happened.
  absl::Status Record(const AuditEntry& entry);
  // The line Record writes (without the trailing newline), for tests.
  std::string Line(const AuditEntry& entry, int64_t unix_ns) const;

 private:
  AuditLog(std::string path, std::string daemon, UniqueFd fd)
      : path_(std::move(path)), daemon_(std::move(daemon)), fd_(std::move(fd)) {}

  const std::string path_;
  const std::string daemon_;
  absl::Mutex mu_;
  UniqueFd fd_ ABSL_GUARDED_BY(mu_);
};

// Lower-case hex SHA-256 of `data` (to name an experiment file in the log
// without copying it).
std::string Sha256Hex(const std::string& data);

// Records one call in `log` (which may be null: no audit log configured).
// `caller` is the Authorizer's answer for the call; when it refused, "who" is
// still the certificate's identity if there is one.
void Audit(AuditLog* log, const std::string& call, const PeerInfo& peer,
           const absl::StatusOr<Caller>& caller, const std::string& what_json,
           const absl::Status& result);

}  // namespace faultline::auth

#endif  // FAULTLINE_AUTH_AUDIT_LOG_H_
