#include "auth/certs.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <fmt/format.h>
#include <openssl/bn.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <memory>

#include "common/files.h"
#include "common/status_macros.h"
#include "common/unique_fd.h"

namespace faultline::auth {
namespace {

struct BioFree {
  void operator()(BIO* b) const { BIO_free(b); }
};
struct X509Free {
  void operator()(X509* x) const { X509_free(x); }
};
struct PkeyFree {
  void operator()(EVP_PKEY* k) const { EVP_PKEY_free(k); }
};
struct BnFree {
  void operator()(BIGNUM* b) const { BN_free(b); }
};
struct ExtFree {
  void operator()(X509_EXTENSION* e) const { X509_EXTENSION_free(e); }
};
using BioPtr = std::unique_ptr<BIO, BioFree>;
using X509Ptr = std::unique_ptr<X509, X509Free>;
using PkeyPtr = std::unique_ptr<EVP_PKEY, PkeyFree>;

// The newest OpenSSL error as text ("what: reason").
absl::Status SslError(const std::string& what) {
  const unsigned long e = ERR_get_error();
  char buf[256] = {};
  if (e != 0) ERR_error_string_n(e, buf, sizeof(buf));
  ERR_clear_error();
  return absl::InternalError(fmt::format("{}: {}", what, e != 0 ? buf : "OpenSSL error"));
}

absl::StatusOr<PkeyPtr> NewP256Key() {
  PkeyPtr key(EVP_PKEY_Q_keygen(nullptr, nullptr, "EC", "P-256"));
  if (!key) return SslError("EC P-256 key generation");
  return key;
}

// PEM text of `key` (PKCS#8, unencrypted) or `cert`.
absl::StatusOr<std::string> ToPem(EVP_PKEY* key, X509* cert) {
  BioPtr bio(BIO_new(BIO_s_mem()));
  if (!bio) return SslError("BIO_new");
  const int ok = key != nullptr
                     ? PEM_write_bio_PrivateKey(bio.get(), key, nullptr, nullptr, 0, nullptr, nullptr)
                     : PEM_write_bio_X509(bio.get(), cert);
  if (ok != 1) return SslError("PEM encoding");
  char* data = nullptr;
  const long len = BIO_get_mem_data(bio.get(), &data);
  return std::string(data, static_cast<size_t>(len));
}

// Writes `data` to `path` with `mode` (O_EXCL unless `force`, which unlinks
// first), fsync'ed. Never follows a symlink.
absl::Status WriteNewFile(const std::string& path, const std::string& data, mode_t mode,
                          bool force) {
  if (force && ::unlink(path.c_str()) != 0 && errno != ENOENT) {
    return absl::InternalError(fmt::format("remove {}: {}", path, std::strerror(errno)));
  }
  UniqueFd fd(::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, mode));
  if (!fd) {
    if (errno == EEXIST) {
      return absl::AlreadyExistsError(
          fmt::format("{} exists (pass --force to replace it)", path));
    }
    return absl::InternalError(fmt::format("create {}: {}", path, std::strerror(errno)));
  }
  if (::fchmod(fd.get(), mode) != 0) {
    return absl::InternalError(fmt::format("chmod {}: {}", path, std::strerror(errno)));
  }
  size_t done = 0;
  while (done < data.size()) {
    const ssize_t n = ::write(fd.get(), data.data() + done, data.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return absl::InternalError(fmt::format("write {}: {}", path, std::strerror(errno)));
    done += static_cast<size_t>(n);
  }
  if (::fsync(fd.get()) != 0) {
    return absl::InternalError(fmt::format("fsync {}: {}", path, std::strerror(errno)));
  }
  return absl::OkStatus();
}

absl::Status AddExtension(X509* cert, X509V3_CTX* ctx, int nid, const std::string& value) {
  std::unique_ptr<X509_EXTENSION, ExtFree> ext(
      X509V3_EXT_conf_nid(nullptr, ctx, nid, value.c_str()));
  if (!ext) return SslError(fmt::format("extension {} = {}", OBJ_nid2sn(nid), value));
  if (X509_add_ext(cert, ext.get(), -1) != 1) return SslError("X509_add_ext");
  return absl::OkStatus();
}

// A v3 certificate for `key` with a random 127-bit serial, valid from an hour
// ago for `days`, subject O=faultline, OU=`unit`, CN=`common_name`.
absl::StatusOr<X509Ptr> NewCertificate(EVP_PKEY* key, const std::string& unit,
                                       const std::string& common_name, int days) {
  X509Ptr cert(X509_new());
  if (!cert) return SslError("X509_new");
  if (X509_set_version(cert.get(), 2) != 1) return SslError("X509_set_version");
  unsigned char serial[16];
  if (RAND_bytes(serial, sizeof(serial)) != 1) return SslError("RAND_bytes");
  serial[0] &= 0x7f;
  std::unique_ptr<BIGNUM, BnFree> bn(BN_bin2bn(serial, sizeof(serial), nullptr));
  if (!bn || BN_to_ASN1_INTEGER(bn.get(), X509_get_serialNumber(cert.get())) == nullptr) {
    return SslError("serial number");
  }
  if (X509_gmtime_adj(X509_getm_notBefore(cert.get()), -3600) == nullptr ||
      X509_gmtime_adj(X509_getm_notAfter(cert.get()), static_cast<long>(days) * 86400) ==
          nullptr) {
    return SslError("validity");
  }
  if (X509_set_pubkey(cert.get(), key) != 1) return SslError("X509_set_pubkey");
  X509_NAME* subject = X509_get_subject_name(cert.get());
  auto add = [&](const char* field, const std::string& value) {
    return X509_NAME_add_entry_by_txt(subject, field, MBSTRING_UTF8,
                                      reinterpret_cast<const unsigned char*>(value.c_str()), -1,
                                      -1, 0) == 1;
  };
  if (!add("O", "faultline") || !add("OU", unit) || !add("CN", common_name)) {
    return SslError("subject name");
  }
  return cert;
}

absl::StatusOr<X509Ptr> ReadCertificate(const std::string& path) {
  BioPtr bio(BIO_new_file(path.c_str(), "r"));
  if (!bio) return absl::NotFoundError(fmt::format("cannot read {}: run `faultline certs init` first", path));
  X509Ptr cert(PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr));
  if (!cert) return SslError(fmt::format("{}: not a PEM certificate", path));
  return cert;
}

absl::StatusOr<PkeyPtr> ReadKey(const std::string& path) {
  BioPtr bio(BIO_new_file(path.c_str(), "r"));
  if (!bio) return absl::NotFoundError(fmt::format("cannot read {}", path));
  PkeyPtr key(PEM_read_bio_PrivateKey(bio.get(), nullptr, nullptr, nullptr));
  if (!key) return SslError(fmt::format("{}: not a PEM private key", path));
  return key;
}

absl::Status CheckDays(int days) {
  if (days < 1 || days > 36500) {
    return absl::InvalidArgumentError(fmt::format("--days: between 1 and 36500, got {}", days));
  }
  return absl::OkStatus();
}

// "IP:a, IP:b, DNS:c" for the options, each checked (addresses parsed, host
// names [A-Za-z0-9.-], so nothing can smuggle in another SAN).
absl::StatusOr<std::string> ExtraSans(const IssueOptions& options) {
  std::string out;
  for (const auto& ip : options.ips) {
    unsigned char buf[16];
    if (inet_pton(AF_INET, ip.c_str(), buf) != 1 && inet_pton(AF_INET6, ip.c_str(), buf) != 1) {
      return absl::InvalidArgumentError(fmt::format("--ip: not an IP address: \"{}\"", ip));
    }
    out += ",IP:" + ip;
  }
  for (const auto& dns : options.dns) {
    bool ok = !dns.empty() && dns.size() <= 253;
    for (char c : dns) {
      ok = ok && ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                  c == '.' || c == '-');
    }
    if (!ok) {
      return absl::InvalidArgumentError(
          fmt::format("--dns: not a host name ([A-Za-z0-9.-], 1-253 characters): \"{}\"", dns));
    }
    out += ",DNS:" + dns;
  }
  return out;
}

}  // namespace

CertFiles CaPaths(const std::string& dir) { return {dir + "/ca.crt", dir + "/ca.key"}; }

CertFiles CertificatePaths(const std::string& dir, const Identity& identity) {
  const std::string base = fmt::format("{}/{}-{}", dir, RoleName(identity.role), identity.name);
  return {base + ".crt", base + ".key"};
}

absl::StatusOr<CertFiles> InitCa(const std::string& dir, int days, bool force) {
  RETURN_IF_ERROR(CheckDays(days));
  RETURN_IF_ERROR(MakeDirs(dir, 0700));
  const CertFiles paths = CaPaths(dir);
  if (!force && ::access(paths.key.c_str(), F_OK) == 0) {
    return absl::AlreadyExistsError(
        fmt::format("{} exists: a CA is already there (pass --force to replace it, which "
                    "invalidates every certificate it signed)",
                    paths.key));
  }
  ASSIGN_OR_RETURN(PkeyPtr key, NewP256Key());
  ASSIGN_OR_RETURN(X509Ptr cert, NewCertificate(key.get(), "ca", "faultline development CA", days));
  if (X509_set_issuer_name(cert.get(), X509_get_subject_name(cert.get())) != 1) {
    return SslError("issuer name");
  }
  X509V3_CTX ctx;
  X509V3_set_ctx_nodb(&ctx);
  X509V3_set_ctx(&ctx, cert.get(), cert.get(), nullptr, nullptr, 0);
  RETURN_IF_ERROR(AddExtension(cert.get(), &ctx, NID_basic_constraints, "critical,CA:TRUE,pathlen:0"));
  RETURN_IF_ERROR(AddExtension(cert.get(), &ctx, NID_key_usage, "critical,keyCertSign,cRLSign"));
  RETURN_IF_ERROR(AddExtension(cert.get(), &ctx, NID_subject_key_identifier, "hash"));
  RETURN_IF_ERROR(AddExtension(cert.get(), &ctx, NID_authority_key_identifier, "keyid:always"));
  if (X509_sign(cert.get(), key.get(), EVP_sha256()) == 0) return SslError("signing the CA");
  ASSIGN_OR_RETURN(std::string key_pem, ToPem(key.get(), nullptr));
  ASSIGN_OR_RETURN(std::string cert_pem, ToPem(nullptr, cert.get()));
  RETURN_IF_ERROR(WriteNewFile(paths.key, key_pem, 0600, force));
  RETURN_IF_ERROR(WriteNewFile(paths.cert, cert_pem, 0644, force));
  return paths;
}

absl::StatusOr<CertFiles> IssueCertificate(const std::string& dir, const Identity& identity,
                                           const IssueOptions& options) {
  RETURN_IF_ERROR(CheckDays(options.days));
  RETURN_IF_ERROR(ValidateName("NAME", identity.name));
  ASSIGN_OR_RETURN(std::string extra, ExtraSans(options));
  const CertFiles ca_paths = CaPaths(dir);
  ASSIGN_OR_RETURN(X509Ptr ca, ReadCertificate(ca_paths.cert));
  ASSIGN_OR_RETURN(PkeyPtr ca_key, ReadKey(ca_paths.key));
  if (X509_check_private_key(ca.get(), ca_key.get()) != 1) {
    ERR_clear_error();
    return absl::FailedPreconditionError(
        fmt::format("{} does not belong to {}", ca_paths.key, ca_paths.cert));
  }
  ASSIGN_OR_RETURN(PkeyPtr key, NewP256Key());
  ASSIGN_OR_RETURN(X509Ptr cert,
                   NewCertificate(key.get(), RoleName(identity.role), identity.name, options.days));
  if (X509_set_issuer_name(cert.get(), X509_get_subject_name(ca.get())) != 1) {
    return SslError("issuer name");
  }
  const bool server = identity.role == Role::kAgent || identity.role == Role::kController;
  X509V3_CTX ctx;
  X509V3_set_ctx_nodb(&ctx);
  X509V3_set_ctx(&ctx, ca.get(), cert.get(), nullptr, nullptr, 0);
  RETURN_IF_ERROR(AddExtension(cert.get(), &ctx, NID_basic_constraints, "critical,CA:FALSE"));
  RETURN_IF_ERROR(AddExtension(cert.get(), &ctx, NID_key_usage, "critical,digitalSignature"));
  RETURN_IF_ERROR(AddExtension(cert.get(), &ctx, NID_ext_key_usage,
                               server ? "serverAuth,clientAuth" : "clientAuth"));
  RETURN_IF_ERROR(AddExtension(cert.get(), &ctx, NID_subject_alt_name,
                               "URI:" + identity.Uri() + extra));
  RETURN_IF_ERROR(AddExtension(cert.get(), &ctx, NID_subject_key_identifier, "hash"));
  RETURN_IF_ERROR(AddExtension(cert.get(), &ctx, NID_authority_key_identifier, "keyid:always"));
  if (X509_sign(cert.get(), ca_key.get(), EVP_sha256()) == 0) return SslError("signing");
  ASSIGN_OR_RETURN(std::string key_pem, ToPem(key.get(), nullptr));
  ASSIGN_OR_RETURN(std::string cert_pem, ToPem(nullptr, cert.get()));
  const CertFiles paths = CertificatePaths(dir, identity);
  RETURN_IF_ERROR(WriteNewFile(paths.key, key_pem, 0600, options.force));
  RETURN_IF_ERROR(WriteNewFile(paths.cert, cert_pem, 0644, options.force));
  return paths;
}

}  // namespace faultline::auth
