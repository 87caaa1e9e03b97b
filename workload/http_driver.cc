#include "workload/http_driver.h"

#include <fmt/format.h>

#include <algorithm>
#include <utility>

#include "common/clock.h"
#include "common/status_macros.h"
#include "common/text.h"

namespace faultline::workload {
namespace {

using probes::HttpResponse;
using probes::HttpUrl;

// A key as one path segment: unreserved characters and ':' as they are,
// anything else %XX (run ids and names are plain already; this is a guard).
std::string PathSegment(const std::string& key) {
  std::string out;
  for (unsigned char c : key) {
    const bool plain = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                       c == '-' || c == '_' || c == '.' || c == '~' || c == ':';
    out += plain ? std::string(1, static_cast<char>(c)) : fmt::format("%{:02X}", c);
  }
  return out;
}

// Writes with PUT, reads back with GET, one request per connection. Remembers
// the highest sequence number it saw so that Cleanup can DELETE them all (the
// service cannot list). Owned by one writer or reader at a time; not
// thread-safe.
class HttpDriver final : public DataDriver {
 public:
  HttpDriver(HttpUrl url, const std::string& key_prefix)
      : url_(std::move(url)),
        base_path_(url_.path.back() == '/' ? url_.path : url_.path + "/"),
        key_prefix_(PathSegment(key_prefix)) {}

  std::string Kind() const override { return "http"; }
  bool CanList() const override { return false; }

  v1::WriteRecord::Outcome Write(int64_t seq, Clock::time_point deadline,
                                 std::string* error) override {
    highest_seq_ = std::max(highest_seq_, seq);
    bool sent = false;
    auto response = Send("PUT", seq, fmt::format("{}:{}", seq, NowRealtimeNs()), deadline, &sent);
    if (!response.ok()) {
      *error = fmt::format("PUT: {}", std::string(response.status().message()));
      return sent ? v1::WriteRecord::UNKNOWN : v1::WriteRecord::FAILED;
    }
    if (response->status / 100 == 2) return v1::WriteRecord::ACKED;
    *error = fmt::format("PUT answered {}", response->status);
    // A gateway's "no (valid) answer from upstream": the write may have been
    // applied behind it. Any other answer is a refusal.
    if (response->status == 502 || response->status == 504) return v1::WriteRecord::UNKNOWN;
    return v1::WriteRecord::FAILED;
  }

  absl::StatusOr<std::set<int64_t>> ReadAll(const std::vector<int64_t>& sent,
                                            Clock::time_point deadline) override {
    std::set<int64_t> present;
    for (int64_t seq : sent) {
      highest_seq_ = std::max(highest_seq_, seq);
      auto response = Send("GET", seq, "", deadline, nullptr);
      if (!response.ok()) {
        return absl::Status(response.status().code(),
                            fmt::format("GET {}: {}", Path(seq), std::string(response.status().message())));
      }
      if (response->status == 404) continue;
      if (response->status != 200) {
        return absl::UnavailableError(
            fmt::format("GET {} answered {}", Path(seq), response->status));
      }
      // A 200 for some other body (a catch-all page) is not this write.
      if (response->body.rfind(fmt::format("{}:", seq), 0) != 0) {
        return absl::DataLossError(fmt::format("GET {} answered 200 with \"{}\", not this write",
                                               Path(seq), Printable(response->body)));
      }
      present.insert(seq);
    }
    return present;
  }

  absl::Status Cleanup(Clock::time_point deadline) override {
    absl::Status first_error;
    for (int64_t seq = 1; seq <= highest_seq_ && Clock::now() < deadline; ++seq) {
      auto response = Send("DELETE", seq, "", deadline, nullptr);
      absl::Status status = response.status();
      if (response.ok() && response->status / 100 != 2 && response->status != 404) {
        status = absl::UnavailableError(fmt::format("answered {}", response->status));
      }
      if (!status.ok() && first_error.ok()) {
        first_error = absl::Status(status.code(),
                                   fmt::format("DELETE {}: {}", Path(seq), std::string(status.message())));
      }
    }
    if (first_error.ok() && Clock::now() >= deadline && highest_seq_ > 0) {
      return absl::DeadlineExceededError("DELETE: timed out before every key was removed");
    }
    return first_error;
  }

 private:
  std::string Path(int64_t seq) const { return base_path_ + key_prefix_ + std::to_string(seq); }

  absl::StatusOr<HttpResponse> Send(const std::string& method, int64_t seq,
                                    const std::string& body, Clock::time_point deadline,
                                    bool* sent) {
    return probes::FetchHttp(resolver_, url_,
                             probes::BuildHttpRequest(url_, method, Path(seq), body), deadline,
                             sent);
  }

  const HttpUrl url_;
  const std::string base_path_;   // ends with '/'
  const std::string key_prefix_;  // "faultline:<run>:<name>:", as a path segment
  probes::Resolver resolver_;
  int64_t highest_seq_ = 0;
};

}  // namespace

absl::StatusOr<HttpUrl> ParseDataUrl(const std::string& field, const std::string& url) {
  if (url.find_first_of("?#") != std::string::npos) {
    return absl::InvalidArgumentError(fmt::format(
        "{}: \"{}\": no query or fragment: the key is appended to the path (URL/<key>)", field,
        Printable(url)));
  }
  return probes::ParseHttpUrl(field, url);
}

absl::StatusOr<std::unique_ptr<DataDriver>> MakeHttpDriver(const std::string& field,
                                                           const v1::HttpData& spec,
                                                           const std::string& run_id,
                                                           const std::string& name) {
  ASSIGN_OR_RETURN(HttpUrl url, ParseDataUrl(field + ".url", spec.url()));
  return std::unique_ptr<DataDriver>(
      std::make_unique<HttpDriver>(std::move(url), fmt::format("faultline:{}:{}:", run_id, name)));
}

}  // namespace faultline::workload
