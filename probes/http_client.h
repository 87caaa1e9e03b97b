// A minimal HTTP/1.1 client (plain http:// only), the one the http probe and
// the http data driver (workload/http_driver.cc) share: URL parsing, one
// request on a fresh connection bounded by a deadline, response parsing.
#ifndef FAULTLINE_PROBES_HTTP_CLIENT_H_
#define FAULTLINE_PROBES_HTTP_CLIENT_H_

#include <string>

#include "absl/status/statusor.h"
#include "probes/probe_net.h"

namespace faultline::probes {

// An http:// URL split for a request.
struct HttpUrl {
  HostPort target;
  std::string host_header;  // authority as written ("example.com:8080")
  std::string path;         // path and query, at least "/"; no fragment
};
// Errors name `field` ("http.url"). Host names are allowed: Resolver looks
// them up within each request's deadline.
absl::StatusOr<HttpUrl> ParseHttpUrl(const std::string& field, const std::string& url);

// The GET request the http probe sends (for url.path).
std::string BuildHttpRequest(const HttpUrl& url);
// `method` `path` (a path of url's server, "/..."), with `body` (text/plain,
// with its Content-Length whenever the method may carry one).
std::string BuildHttpRequest(const HttpUrl& url, const std::string& method,
                             const std::string& path, const std::string& body);

struct HttpResponse {
  int status = 0;
  std::string body;  // de-chunked
};
// Parses a complete response (status line, headers, body by Content-Length,
// chunked encoding, or up to the end of the data). `complete` is set when the data
// hold the whole response, so the reader can stop before the server closes.
absl::StatusOr<HttpResponse> ParseHttpResponse(const std::string& data, bool eof,
                                               bool* complete);

// Sends `request` (from BuildHttpRequest) to url.target on a fresh connection
// and reads the response (at most 1 MiB), never past `deadline`. `*sent`
// (optional) is set once any byte of the request may have reached the server:
// false means it certainly did not (no address, no connection).
absl::StatusOr<HttpResponse> FetchHttp(Resolver& resolver, const HttpUrl& url,
                                       const std::string& request, Clock::time_point deadline,
                                       bool* sent = nullptr);

}  // namespace faultline::probes

#endif  // FAULTLINE_PROBES_HTTP_CLIENT_H_
