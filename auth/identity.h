// Who a caller is: a role and a name, as carried by a certificate's URI SAN
// "spiffe://faultline/<role>/<name>" (or a DNS SAN "<name>.<role>.faultline" as
// a fallback). The one home of identity parsing and of the agent-name rule.
#ifndef FAULTLINE_AUTH_IDENTITY_H_
#define FAULTLINE_AUTH_IDENTITY_H_

#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace faultline::auth {

enum class Role { kAgent, kController, kOperator, kViewer };

// "agent", "controller", "operator", "viewer".
const char* RoleName(Role role);
// The inverse of RoleName; INVALID_ARGUMENT naming `field` otherwise.
absl::StatusOr<Role> ParseRole(const std::string& field, const std::string& text);

// A role and a name. A value type.
struct Identity {
  Role role = Role::kViewer;
  std::string name;

  // "spiffe://faultline/<role>/<name>".
  std::string Uri() const;
  bool operator==(const Identity& other) const {
    return role == other.role && name == other.name;
  }
};

// Names of agents and of certificate identities: [a-z0-9][a-z0-9.-]{0,62}.
// INVALID_ARGUMENT naming `field` and saying what is wrong (a control
// character, an upper-case letter, the length...).
absl::Status ValidateName(const std::string& field, const std::string& name);

// "spiffe://faultline/<role>/<name>" -> identity. NOT_FOUND when the URI is
// not a faultline SPIFFE ID at all; INVALID_ARGUMENT when it is one with a bad
// role or name.
absl::StatusOr<Identity> ParseSpiffeUri(const std::string& uri);
// "<name>.<role>.faultline" -> identity; NOT_FOUND / INVALID_ARGUMENT as above.
absl::StatusOr<Identity> ParseDnsIdentity(const std::string& dns);

// The subject alternative names of a certificate.
struct SubjectAltNames {
  std::vector<std::string> uris;
  std::vector<std::string> dns;
  std::vector<std::string> ips;  // text form
};
// Parses the first certificate of `pem` (OpenSSL) and returns its SANs.
absl::StatusOr<SubjectAltNames> CertificateSans(const std::string& pem);
// The faultline identity in `sans`: the URI SANs first; the DNS SANs only when
// no URI SAN is a faultline identity. Two different faultline identities at the
// same level are refused (PERMISSION_DENIED, ambiguous); none at all is
// PERMISSION_DENIED naming the expected form.
absl::StatusOr<Identity> IdentityFromSans(const SubjectAltNames& sans);
// CertificateSans + IdentityFromSans.
absl::StatusOr<Identity> IdentityFromCertificatePem(const std::string& pem);

}  // namespace faultline::auth

#endif  // FAULTLINE_AUTH_IDENTITY_H_
