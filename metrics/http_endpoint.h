#ifndef FAULTLINE_METRICS_HTTP_ENDPOINT_H_
#define FAULTLINE_METRICS_HTTP_ENDPOINT_H_

// A daemon's read-only HTTP listener: GET /metrics, and on the controller the
// dashboard's pages.

#include <functional>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/statusor.h"
#include "metrics/registry.h"

namespace httplib {
class Server;
}

namespace faultline::metrics {

struct HttpRequest {
  std::string path;
  std::vector<std::string> matches;  // the route pattern's groups (0: the whole path)
  std::function<std::string(const std::string&)> param;  // a query parameter, or ""
};

struct HttpResponse {
  int status = 200;
  std::string content_type = "text/plain; charset=utf-8";
  std::string body;
};

struct HttpRoute {
  std::string pattern;  // an ECMAScript regular expression matched against the whole path
  std::function<HttpResponse(const HttpRequest&)> handler;
};

// Checks an HTTP listen address ("HOST:PORT", a numeric address, not a unix
// socket) before anything starts. INVALID_ARGUMENT naming `flag`.
absl::Status CheckHttpAddress(const std::string& flag, const std::string& address);

// GET /metrics: `registry` in Prometheus' text format.
HttpRoute MetricsRoute(Registry* registry);

// Serves GET `routes` on its own threads (at most kWorkers requests at once;
// bounded reads and writes: a slow client cannot hold a worker for long).
// Owned by the daemon's main; the destructor stops it and joins. Handlers run
// on the listener's threads and must be thread-safe.
class HttpEndpoint {
 public:
  static constexpr int kWorkers = 4;

  // Binds `address` ("HOST:PORT", a numeric address; port 0 picks one) and
  // starts serving. `flag` names the option in errors ("--http").
  static absl::StatusOr<std::unique_ptr<HttpEndpoint>> Start(const std::string& flag,
                                                             const std::string& address,
                                                             std::vector<HttpRoute> routes);
  ~HttpEndpoint();
  HttpEndpoint(const HttpEndpoint&) = delete;
  HttpEndpoint& operator=(const HttpEndpoint&) = delete;

  // The bound address, as "HOST:PORT" (with the port picked for port 0).
  const std::string& address() const { return address_; }

 private:
  HttpEndpoint() = default;

  std::unique_ptr<httplib::Server> server_;
  std::thread thread_;
  std::string address_;
};

}  // namespace faultline::metrics

#endif  // FAULTLINE_METRICS_HTTP_ENDPOINT_H_
