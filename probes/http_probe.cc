// http probe: a minimal HTTP/1.1 GET client (plain http:// only), healthy when
// the status matches and the body contains the expected text.
#include <fmt/format.h>

#include <utility>

#include "common/status_macros.h"
#include "common/text.h"
#include "probes/http_client.h"
#include "probes/probe_internal.h"

namespace faultline::probes {
namespace {

// One GET per check on a fresh connection. Owned by the runner; not thread-safe.
class HttpProbe final : public Probe {
 public:
  HttpProbe(HttpUrl url, int expect_status, std::string expect_body)
      : url_(std::move(url)),
        request_(BuildHttpRequest(url_)),
        expect_status_(expect_status),
        expect_body_(std::move(expect_body)) {}

  ProbeResult Check(std::chrono::nanoseconds timeout) override {
    const Clock::time_point deadline =
        Clock::now() + std::chrono::duration_cast<Clock::duration>(timeout);
    auto response = FetchHttp(resolver_, url_, request_, deadline);
    if (!response.ok()) return {false, std::string(response.status().message())};
    if (response->status != expect_status_) {
      return {false, fmt::format("status {}, expected {}", response->status, expect_status_)};
    }
    if (!expect_body_.empty() && response->body.find(expect_body_) == std::string::npos) {
      return {false, fmt::format("status {} but the body does not contain {}",
                                 response->status, "\"" + Printable(expect_body_) + "\"")};
    }
    return {true, ""};
  }

 private:
  const HttpUrl url_;
  const std::string request_;
  const int expect_status_;
  const std::string expect_body_;
  Resolver resolver_;
};

}  // namespace

absl::StatusOr<std::unique_ptr<Probe>> MakeHttpProbe(const v1::HttpProbe& spec) {
  ASSIGN_OR_RETURN(HttpUrl url, ParseHttpUrl("http.url", spec.url()));
  int expect_status = spec.expect_status() == 0 ? 200 : spec.expect_status();
  if (expect_status < 100 || expect_status > 599) {
    return absl::InvalidArgumentError(fmt::format(
        "http.expect_status: must be between 100 and 599, got {}", spec.expect_status()));
  }
  return std::unique_ptr<Probe>(
      std::make_unique<HttpProbe>(std::move(url), expect_status, spec.expect_body()));
}

}  // namespace faultline::probes
