#include "auth/audit_log.h"

#include <fcntl.h>
#include <fmt/format.h>
#include <openssl/evp.h>
#include <spdlog/spdlog.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <ctime>

#include "common/clock.h"
#include "common/grpc_status.h"
#include "common/yaml_proto.h"

namespace faultline::auth {
namespace {

// RFC 3339 UTC with nanoseconds.
std::string Rfc3339(int64_t unix_ns) {
  const time_t secs = static_cast<time_t>(unix_ns / 1000000000);
  struct tm tm {};
  gmtime_r(&secs, &tm);
  char buf[32];
  std::strftime(buf, sizeof(buf), "%Y-%m-%dT%H:%M:%S", &tm);
  return fmt::format("{}.{:09d}Z", buf, unix_ns % 1000000000);
}

}  // namespace

absl::StatusOr<std::unique_ptr<AuditLog>> AuditLog::Open(const std::string& path,
                                                         const std::string& daemon) {
  // O_NONBLOCK: a FIFO given as the log must be refused, not wait for a reader
  // in open() (ENXIO when it has none). It is cleared once the file is known
  // to be a regular file.
  UniqueFd fd(::open(path.c_str(),
                     O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK, 0600));
  if (!fd) {
    const int err = errno;
    if (err == ENXIO || err == EISDIR) {
      return absl::FailedPreconditionError(
          fmt::format("--audit-log: {} is not a regular file", path));
    }
    return absl::FailedPreconditionError(
        fmt::format("--audit-log: cannot open {}: {}", path, std::strerror(err)));
  }
  struct stat st {};
  if (::fstat(fd.get(), &st) != 0 || !S_ISREG(st.st_mode)) {
    return absl::FailedPreconditionError(fmt::format("--audit-log: {} is not a regular file", path));
  }
  const int flags = ::fcntl(fd.get(), F_GETFL);
  if (flags < 0 || ::fcntl(fd.get(), F_SETFL, flags & ~O_NONBLOCK) != 0) {
    return absl::FailedPreconditionError(
        fmt::format("--audit-log: {}: fcntl: {}", path, std::strerror(errno)));
  }
  return std::unique_ptr<AuditLog>(new AuditLog(path, daemon, std::move(fd)));
}

std::string AuditLog::Line(const AuditEntry& entry, int64_t unix_ns) const {
  std::string line = fmt::format(
      "{{\"time\":{},\"unix_ns\":{},\"daemon\":{},\"call\":{},\"who\":{},\"peer\":{},\"what\":{},",
      JsonQuote(Rfc3339(unix_ns)), unix_ns, JsonQuote(daemon_), JsonQuote(entry.call),
      JsonQuote(entry.who), JsonQuote(entry.peer),
      entry.what_json.empty() ? "{}" : entry.what_json);
  if (entry.result.ok()) {
    line += "\"result\":\"ok\"}";
  } else {
    line += fmt::format(
        "\"result\":\"error\",\"code\":{},\"error\":{}}}",
        JsonQuote(GrpcCodeName(static_cast<grpc::StatusCode>(entry.result.code()))),
        JsonQuote(std::string(entry.result.message())));
  }
  return line;
}

absl::Status AuditLog::Record(const AuditEntry& entry) {
  std::string line = Line(entry, NowRealtimeNs());
  // A line never spans two: the JSON quoting above escapes every newline.
  line += '\n';
  absl::MutexLock lock(&mu_);
  size_t done = 0;
  while (done < line.size()) {
    const ssize_t n = ::write(fd_.get(), line.data() + done, line.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      auto st = absl::InternalError(fmt::format("audit log {}: write: {}", path_, std::strerror(errno)));
      spdlog::error("{}", std::string(st.message()));
      return st;
    }
    done += static_cast<size_t>(n);
  }
  if (::fsync(fd_.get()) != 0) {
    auto st = absl::InternalError(fmt::format("audit log {}: fsync: {}", path_, std::strerror(errno)));
    spdlog::error("{}", std::string(st.message()));
    return st;
  }
  return absl::OkStatus();
}

std::string Sha256Hex(const std::string& data) {
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  if (EVP_Digest(data.data(), data.size(), digest, &len, EVP_sha256(), nullptr) != 1) return "";
  std::string out;
  for (unsigned int i = 0; i < len; ++i) out += fmt::format("{:02x}", digest[i]);
  return out;
}

void Audit(AuditLog* log, const std::string& call, const PeerInfo& peer,
           const absl::StatusOr<Caller>& caller, const std::string& what_json,
           const absl::Status& result) {
  if (log == nullptr) return;
  AuditEntry e;
  e.call = call;
  if (caller.ok()) {
    e.who = caller->Who();
  } else if (auto id = IdentityFromCertificatePem(peer.pem_cert); !peer.pem_cert.empty() && id.ok()) {
    e.who = id->Uri();  // identified, but refused (wrong role)
  } else if (peer.peer.rfind("fd:", 0) == 0) {
    e.who = "unix " + peer.peer;  // its uid is in the daemon's log
  } else {
    e.who = "unknown";
  }
  e.peer = peer.peer;
  e.what_json = what_json;
  e.result = result;
  (void)log->Record(e);
}

}  // namespace faultline::auth
