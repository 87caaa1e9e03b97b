// A development certificate authority for Faultline's mutual TLS, made with
// OpenSSL's library (never by running the openssl program): `faultline certs
// init DIR` and `faultline certs issue ROLE NAME`, and the test harness.
#ifndef FAULTLINE_AUTH_CERTS_H_
#define FAULTLINE_AUTH_CERTS_H_

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "auth/identity.h"

namespace faultline::auth {

// The two files of a certificate: the certificate (PEM, mode 0644) and its
// private key (PEM PKCS#8, EC P-256, mode 0600).
struct CertFiles {
  std::string cert;
  std::string key;
};

struct IssueOptions {
  std::vector<std::string> ips;  // extra IP SANs (addresses a server listens on)
  std::vector<std::string> dns;  // extra DNS SANs (host names a server is dialled by)
  int days = 365;
  bool force = false;            // replace existing files
};

// `dir`/ca.crt and `dir`/ca.key: a self-signed CA (CN "faultline development
// CA", basicConstraints CA:TRUE pathlen:0). Creates `dir` (0700) if missing;
// refuses to replace an existing CA unless `force`.
absl::StatusOr<CertFiles> InitCa(const std::string& dir, int days = 3650, bool force = false);

// `dir`/<role>-<name>.crt and .key signed by `dir`/ca.{crt,key}: URI SAN
// spiffe://faultline/<role>/<name> plus the options' IP and DNS SANs; extended
// key usage clientAuth (and serverAuth for agent and controller).
absl::StatusOr<CertFiles> IssueCertificate(const std::string& dir, const Identity& identity,
                                           const IssueOptions& options = {});

// The file names IssueCertificate writes (whether or not they exist).
CertFiles CertificatePaths(const std::string& dir, const Identity& identity);
CertFiles CaPaths(const std::string& dir);

}  // namespace faultline::auth

#endif  // FAULTLINE_AUTH_CERTS_H_
