#include "metrics/http_endpoint.h"

#include <arpa/inet.h>
#include <httplib.h>

#include "common/endpoint.h"
#include "fmt/format.h"
#include "spdlog/spdlog.h"

namespace faultline::metrics {
namespace {

// A request arrives at once or not at all; an idle kept-alive connection
// holds a worker, so it is let go soon.
constexpr time_t kIoTimeoutS = 2;
constexpr time_t kKeepAliveS = 1;
constexpr size_t kMaxRequestBody = 16 * 1024;
constexpr size_t kMaxKeepAlive = 100;

void Serve(const HttpRoute& route, const httplib::Request& req, httplib::Response& res) {
  HttpRequest r;
  r.path = req.path;
  for (const auto& m : req.matches) r.matches.push_back(m.str());
  r.param = [&req](const std::string& key) {
    return req.has_param(key) ? req.get_param_value(key) : std::string();
  };
  HttpResponse out = route.handler(r);
  res.status = out.status;
  res.set_header("Cache-Control", "no-store");
  res.set_header("X-Content-Type-Options", "nosniff");
  res.set_content(std::move(out.body), out.content_type);
}

absl::StatusOr<Endpoint> ParseHttpAddress(const std::string& flag, const std::string& address) {
  absl::StatusOr<Endpoint> ep = ParseEndpoint(flag, address);
  if (!ep.ok()) return ep.status();
  if (ep->is_unix) return absl::InvalidArgumentError(flag + ": expected HOST:PORT, not a unix socket");
  in6_addr any;
  if (inet_pton(AF_INET, ep->host.c_str(), &any) != 1 && inet_pton(AF_INET6, ep->host.c_str(), &any) != 1) {
    return absl::InvalidArgumentError(
        fmt::format("{}: \"{}\" is not a numeric address (no name lookups)", flag, ep->host));
  }
  return ep;
}

}  // namespace

absl::Status CheckHttpAddress(const std::string& flag, const std::string& address) {
  return ParseHttpAddress(flag, address).status();
}

HttpRoute MetricsRoute(Registry* registry) {
  return {"/metrics", [registry](const HttpRequest&) {
            return HttpResponse{200, "text/plain; version=0.0.4; charset=utf-8",
                                registry->Render()};
          }};
}

absl::StatusOr<std::unique_ptr<HttpEndpoint>> HttpEndpoint::Start(const std::string& flag,
                                                                  const std::string& address,
                                                                  std::vector<HttpRoute> routes) {
  absl::StatusOr<Endpoint> ep = ParseHttpAddress(flag, address);
  if (!ep.ok()) return ep.status();
  std::unique_ptr<HttpEndpoint> e(new HttpEndpoint());
  e->server_ = std::make_unique<httplib::Server>();
  httplib::Server& s = *e->server_;
  s.new_task_queue = [] { return new httplib::ThreadPool(kWorkers); };
  s.set_read_timeout(kIoTimeoutS, 0);
  s.set_write_timeout(kIoTimeoutS, 0);
  s.set_idle_interval(0, 100000);
  s.set_keep_alive_max_count(kMaxKeepAlive);
  s.set_keep_alive_timeout(kKeepAliveS);
  s.set_payload_max_length(kMaxRequestBody);
  // SO_REUSEADDR (a restart may bind while old connections linger), never
  // cpp-httplib's default SO_REUSEPORT: a second listener on the port would
  // share its connections.
  s.set_socket_options([](int sock) {
    int yes = 1;
    setsockopt(sock, SOL_SOCKET, SO_REUSEADDR, &yes, sizeof yes);
  });
  for (auto& route : routes) {
    s.Get(route.pattern, [route](const httplib::Request& req, httplib::Response& res) {
      Serve(route, req, res);
    });
  }
  s.set_error_handler([](const httplib::Request&, httplib::Response& res) {
    if (res.body.empty()) res.set_content(fmt::format("{}\n", res.status), "text/plain");
  });
  const int port = ep->port == 0 ? s.bind_to_any_port(ep->host) : (s.bind_to_port(ep->host, ep->port) ? ep->port : -1);
  if (port <= 0) {
    return absl::UnavailableError(fmt::format("{}: cannot listen on {}: {}", flag, address,
                                              std::strerror(errno)));
  }
  e->address_ = ep->host.find(':') != std::string::npos ? fmt::format("[{}]:{}", ep->host, port)
                                                         : fmt::format("{}:{}", ep->host, port);
  e->thread_ = std::thread([&s] { s.listen_after_bind(); });
  // cpp-httplib's stop() is lost if it comes before the listener runs: wait
  // for it (a thread start; bounded), so the destructor can always stop it.
  for (int i = 0; i < 5000 && !s.is_running(); ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  spdlog::info("serving HTTP on {}", e->address_);
  return e;
}

HttpEndpoint::~HttpEndpoint() {
  if (server_ != nullptr) server_->stop();
  if (thread_.joinable()) thread_.join();
}

}  // namespace faultline::metrics
