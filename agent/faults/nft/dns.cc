#include "agent/faults/nft/dns.h"

#include <fmt/format.h>
#include <sys/stat.h>

#include "absl/strings/str_join.h"
#include "agent/faults/netns.h"
#include "common/endpoint.h"
#include "common/files.h"
#include "common/status_macros.h"

namespace faultline::agent::nft {
namespace {

constexpr uint16_t kDnsPort = 53;

std::vector<std::string> SplitComma(const std::string& s) {
  std::vector<std::string> out;
  size_t start = 0;
  while (start <= s.size()) {
    const size_t comma = s.find(',', start);
    const size_t end = comma == std::string::npos ? s.size() : comma;
    if (end > start) out.push_back(s.substr(start, end - start));
    if (comma == std::string::npos) break;
    start = comma + 1;
  }
  return out;
}

}  // namespace

std::string DnsHandler::ResolvConfPath(const v1::FaultSpec& spec) const {
  if (spec.netns_pid() > 0) return fmt::format("/proc/{}/root/etc/resolv.conf", spec.netns_pid());
  if (!spec.netns().empty() && spec.netns()[0] != '/') {
    const std::string per_ns = fmt::format("/etc/netns/{}/resolv.conf", spec.netns());
    struct stat st {};
    if (::stat(per_ns.c_str(), &st) == 0) return per_ns;
  }
  return resolv_conf_;
}

absl::StatusOr<BlockSpec> DnsHandler::MakeBlock(const v1::FaultSpec& spec,
                                                const std::string& /*netns_path*/, Detail* detail,
                                                std::vector<std::string>* notes) const {
  BlockSpec block;
  std::vector<Cidr> resolvers;
  const v1::DnsFault& dns = spec.dns();
  if (!dns.resolvers().empty()) {
    ASSIGN_OR_RETURN(resolvers,
                     spec::ParseCidrList("resolvers", {dns.resolvers().begin(), dns.resolvers().end()}));
  } else if (auto it = detail->find("resolvers"); it != detail->end()) {
    // Plan's pick, read back from the record: parsed again, never trusted as text.
    ASSIGN_OR_RETURN(resolvers, spec::ParseCidrList("net.detail resolvers", SplitComma(it->second)));
  } else {
    const std::string path = ResolvConfPath(spec);
    auto text = ReadFileToString(path, 64 * 1024);  // a resolv.conf is a few lines
    if (!text.ok()) {
      return absl::FailedPreconditionError(fmt::format(
          "resolvers: none given and {}", std::string(text.status().message())));
    }
    std::vector<std::string> skipped;
    const std::vector<std::string> found = ParseResolvConf(*text, &skipped);
    for (const auto& s : skipped) {
      notes->push_back(fmt::format("note: {}: nameserver {} is not a plain IP address; not blocked",
                                   path, s));
    }
    if (found.empty()) {
      return absl::FailedPreconditionError(
          fmt::format("resolvers: none given and {} lists no nameserver", path));
    }
    ASSIGN_OR_RETURN(resolvers, spec::ParseCidrList(path, found));
    notes->push_back(fmt::format("resolvers from {}", path));
  }
  block.peers = NormalizeCidrs(std::move(resolvers), nullptr);
  (*detail)["resolvers"] = absl::StrJoin(
      block.peers, ",", [](std::string* out, const Cidr& c) { out->append(c.ToString()); });
  block.ports = {kDnsPort};
  block.protocol = Protocol::kAny;  // udp and tcp
  block.direction = FromProto(dns.direction());
  block.reject = dns.reject();
  return block;
}

}  // namespace faultline::agent::nft
