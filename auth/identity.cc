#include "auth/identity.h"

#include <arpa/inet.h>
#include <fmt/format.h>
#include <openssl/bio.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include <memory>

#include "common/status_macros.h"

namespace faultline::auth {
namespace {

constexpr char kSpiffePrefix[] = "spiffe://faultline/";
constexpr char kDnsSuffix[] = ".faultline";
constexpr size_t kMaxNameLength = 63;

struct BioFree {
  void operator()(BIO* b) const { BIO_free(b); }
};
struct X509Free {
  void operator()(X509* x) const { X509_free(x); }
};
struct GeneralNamesFree {
  void operator()(GENERAL_NAMES* n) const { GENERAL_NAMES_free(n); }
};

// Printable rendering of untrusted text for error messages: control bytes and
// non-ASCII as \xNN, at most 80 characters.
std::string Quote(const std::string& text) {
  std::string out = "\"";
  for (size_t i = 0; i < text.size() && i < 80; ++i) {
    const auto c = static_cast<unsigned char>(text[i]);
    if (c < 0x20 || c >= 0x7f || c == '"' || c == '\\') {
      out += fmt::format("\\x{:02x}", c);
    } else {
      out += static_cast<char>(c);
    }
  }
  if (text.size() > 80) out += "...";
  return out + "\"";
}

std::string Asn1Text(const ASN1_STRING* s) {
  return std::string(reinterpret_cast<const char*>(ASN1_STRING_get0_data(s)),
                     static_cast<size_t>(ASN1_STRING_length(s)));
}

std::string IpText(const ASN1_OCTET_STRING* s) {
  char buf[INET6_ADDRSTRLEN] = {};
  const int len = ASN1_STRING_length(s);
  const unsigned char* data = ASN1_STRING_get0_data(s);
  if (len == 4 && inet_ntop(AF_INET, data, buf, sizeof(buf)) != nullptr) return buf;
  if (len == 16 && inet_ntop(AF_INET6, data, buf, sizeof(buf)) != nullptr) return buf;
  return "?";
}

// The one faultline identity among `candidates` (already parsed); NOT_FOUND
// when there is none.
absl::StatusOr<Identity> Single(const std::vector<Identity>& found, const char* kind) {
  if (found.empty()) return absl::NotFoundError("none");
  for (const auto& id : found) {
    if (!(id == found.front())) {
      return absl::PermissionDeniedError(fmt::format(
          "certificate: ambiguous identity: {} SANs name both {} and {}", kind,
          found.front().Uri(), id.Uri()));
    }
  }
  return found.front();
}

}  // namespace

const char* RoleName(Role role) {
  switch (role) {
    case Role::kAgent: return "agent";
    case Role::kController: return "controller";
    case Role::kOperator: return "operator";
    case Role::kViewer: return "viewer";
  }
  return "?";
}

absl::StatusOr<Role> ParseRole(const std::string& field, const std::string& text) {
  for (Role r : {Role::kAgent, Role::kController, Role::kOperator, Role::kViewer}) {
    if (text == RoleName(r)) return r;
  }
  return absl::InvalidArgumentError(fmt::format(
      "{}: unknown role {}: expected agent, controller, operator or viewer", field, Quote(text)));
}

std::string Identity::Uri() const {
  return fmt::format("{}{}/{}", kSpiffePrefix, RoleName(role), name);
}

absl::Status ValidateName(const std::string& field, const std::string& name) {
  if (name.empty()) return absl::InvalidArgumentError(fmt::format("{}: required", field));
  if (name.size() > kMaxNameLength) {
    return absl::InvalidArgumentError(fmt::format(
        "{}: {} characters, at most {} allowed ([a-z0-9][a-z0-9.-]{{0,62}})", field,
        name.size(), kMaxNameLength));
  }
  for (size_t i = 0; i < name.size(); ++i) {
    const auto c = static_cast<unsigned char>(name[i]);
    const bool lower_digit = (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
    if (lower_digit || (i > 0 && (c == '.' || c == '-'))) continue;
    std::string what;
    if (c < 0x20 || c == 0x7f) {
      what = fmt::format("control character \\x{:02x}", c);
    } else if (c >= 'A' && c <= 'Z') {
      what = fmt::format("upper-case letter '{}'", static_cast<char>(c));
    } else if (c >= 0x80) {
      what = "non-ASCII byte";
    } else {
      what = fmt::format("character '{}'", static_cast<char>(c));
    }
    return absl::InvalidArgumentError(fmt::format(
        "{}: {} at position {} in {}: names are [a-z0-9][a-z0-9.-]{{0,62}}", field, what, i,
        Quote(name)));
  }
  return absl::OkStatus();
}

absl::StatusOr<Identity> ParseSpiffeUri(const std::string& uri) {
  if (uri.rfind(kSpiffePrefix, 0) != 0) return absl::NotFoundError("not a faultline SPIFFE ID");
  const std::string rest = uri.substr(sizeof(kSpiffePrefix) - 1);
  const size_t slash = rest.find('/');
  if (slash == std::string::npos) {
    return absl::InvalidArgumentError(
        fmt::format("certificate: URI SAN {}: expected spiffe://faultline/<role>/<name>", Quote(uri)));
  }
  Identity id;
  ASSIGN_OR_RETURN(id.role, ParseRole("certificate: URI SAN role", rest.substr(0, slash)));
  id.name = rest.substr(slash + 1);
  RETURN_IF_ERROR(ValidateName("certificate: URI SAN name", id.name));
  return id;
}

absl::StatusOr<Identity> ParseDnsIdentity(const std::string& dns) {
  const size_t suffix = sizeof(kDnsSuffix) - 1;
  if (dns.size() <= suffix || dns.compare(dns.size() - suffix, suffix, kDnsSuffix) != 0) {
    return absl::NotFoundError("not a faultline DNS identity");
  }
  const std::string head = dns.substr(0, dns.size() - suffix);  // <name>.<role>
  const size_t dot = head.rfind('.');
  if (dot == std::string::npos) return absl::NotFoundError("not a faultline DNS identity");
  auto role = ParseRole("certificate: DNS SAN role", head.substr(dot + 1));
  if (!role.ok()) return absl::NotFoundError("not a faultline DNS identity");
  Identity id;
  id.role = *role;
  id.name = head.substr(0, dot);
  RETURN_IF_ERROR(ValidateName("certificate: DNS SAN name", id.name));
  return id;
}

absl::StatusOr<SubjectAltNames> CertificateSans(const std::string& pem) {
  std::unique_ptr<BIO, BioFree> bio(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())));
  if (!bio) return absl::InternalError("certificate: out of memory");
  std::unique_ptr<X509, X509Free> cert(PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr));
  if (!cert) return absl::InvalidArgumentError("certificate: not a PEM certificate");
  SubjectAltNames out;
  std::unique_ptr<GENERAL_NAMES, GeneralNamesFree> names(static_cast<GENERAL_NAMES*>(
      X509_get_ext_d2i(cert.get(), NID_subject_alt_name, nullptr, nullptr)));
  if (!names) return out;
  for (int i = 0; i < sk_GENERAL_NAME_num(names.get()); ++i) {
    const GENERAL_NAME* n = sk_GENERAL_NAME_value(names.get(), i);
    if (n->type == GEN_URI) out.uris.push_back(Asn1Text(n->d.uniformResourceIdentifier));
    if (n->type == GEN_DNS) out.dns.push_back(Asn1Text(n->d.dNSName));
    if (n->type == GEN_IPADD) out.ips.push_back(IpText(n->d.iPAddress));
  }
  return out;
}

absl::StatusOr<Identity> IdentityFromSans(const SubjectAltNames& sans) {
  std::vector<Identity> from_uris;
  for (const auto& uri : sans.uris) {
    auto id = ParseSpiffeUri(uri);
    if (id.ok()) {
      from_uris.push_back(*id);
    } else if (!absl::IsNotFound(id.status())) {
      return absl::PermissionDeniedError(id.status().message());
    }
  }
  auto single = Single(from_uris, "URI");
  if (!absl::IsNotFound(single.status())) return single;
  std::vector<Identity> from_dns;
  for (const auto& dns : sans.dns) {
    auto id = ParseDnsIdentity(dns);
    if (id.ok()) {
      from_dns.push_back(*id);
    } else if (!absl::IsNotFound(id.status())) {
      return absl::PermissionDeniedError(id.status().message());
    }
  }
  single = Single(from_dns, "DNS");
  if (!absl::IsNotFound(single.status())) return single;
  return absl::PermissionDeniedError(
      "certificate: no faultline identity: expected a URI SAN spiffe://faultline/<role>/<name> "
      "(or a DNS SAN <name>.<role>.faultline); make one with `faultline certs issue ROLE NAME`");
}

absl::StatusOr<Identity> IdentityFromCertificatePem(const std::string& pem) {
  ASSIGN_OR_RETURN(SubjectAltNames sans, CertificateSans(pem));
  return IdentityFromSans(sans);
}

}  // namespace faultline::auth
