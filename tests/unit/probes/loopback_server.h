// Loopback-only helpers for the probe tests: a listening TCP socket and a tiny
// HTTP server thread, both on 127.0.0.1 with a kernel-chosen port.
#ifndef FAULTLINE_TESTS_UNIT_PROBES_LOOPBACK_SERVER_H_
#define FAULTLINE_TESTS_UNIT_PROBES_LOOPBACK_SERVER_H_

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <mutex>
#include <string>
#include <thread>

namespace faultline::testing_util {

// A TCP socket listening on 127.0.0.1; closed on destruction.
class Listener {
 public:
  // port 0: the kernel picks one.
  explicit Listener(int port = 0) {
    fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    int one = 1;
    if (fd_ >= 0) ::setsockopt(fd_, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    addr.sin_port = htons(static_cast<uint16_t>(port));
    ok_ = fd_ >= 0 && ::bind(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0 &&
          ::listen(fd_, SOMAXCONN) == 0;
    socklen_t len = sizeof(addr);
    if (ok_ && ::getsockname(fd_, reinterpret_cast<sockaddr*>(&addr), &len) == 0) {
      port_ = ntohs(addr.sin_port);
    }
  }
  ~Listener() { Close(); }
  Listener(const Listener&) = delete;
  Listener& operator=(const Listener&) = delete;

  void Close() {
    if (fd_ >= 0) {
      ::shutdown(fd_, SHUT_RDWR);
      ::close(fd_);
      fd_ = -1;
    }
  }
  bool ok() const { return ok_ && port_ != 0; }
  int fd() const { return fd_; }
  int port() const { return port_; }
  std::string address() const { return "127.0.0.1:" + std::to_string(port_); }

 private:
  int fd_ = -1;
  bool ok_ = false;
  int port_ = 0;
};

// A port on 127.0.0.1 where nothing listens (bound once, then released).
inline int ClosedPort() {
  Listener l;
  int port = l.port();
  return port;
}

// Answers every connection with `response` (raw bytes, sent after the request
// headers arrive), or with nothing at all when `silent`. Keeps the last request.
class HttpServer {
 public:
  explicit HttpServer(std::string response, bool silent = false)
      : response_(std::move(response)), silent_(silent) {
    thread_ = std::thread([this] { Serve(); });
  }
  ~HttpServer() {
    stop_ = true;
    listener_.Close();  // wakes accept()
    thread_.join();
  }
  HttpServer(const HttpServer&) = delete;
  HttpServer& operator=(const HttpServer&) = delete;

  bool ok() const { return listener_.ok(); }
  int port() const { return listener_.port(); }
  std::string url(const std::string& path = "/") const {
    return "http://127.0.0.1:" + std::to_string(port()) + path;
  }
  std::string last_request() {
    std::lock_guard<std::mutex> lock(mu_);
    return last_request_;
  }

 private:
  void Serve() {
    for (int i = 0; i < 10000 && !stop_; ++i) {  // bounded
      int fd = ::accept4(listener_.fd(), nullptr, nullptr, SOCK_CLOEXEC);
      if (fd < 0) return;
      timeval tv{2, 0};
      ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
      std::string request;
      char buf[4096];
      while (request.find("\r\n\r\n") == std::string::npos && request.size() < 65536) {
        ssize_t n = ::recv(fd, buf, sizeof(buf), 0);
        if (n <= 0) break;
        request.append(buf, static_cast<size_t>(n));
      }
      {
        std::lock_guard<std::mutex> lock(mu_);
        last_request_ = request;
      }
      if (silent_) {
        // Hold the connection open without answering until the client gives up.
        while (::recv(fd, buf, sizeof(buf), 0) > 0) {
        }
      } else {
        size_t sent = 0;
        while (sent < response_.size()) {
          ssize_t n = ::send(fd, response_.data() + sent, response_.size() - sent,
                             MSG_NOSIGNAL);
          if (n <= 0) break;
          sent += static_cast<size_t>(n);
        }
      }
      ::close(fd);
    }
  }

  Listener listener_;
  const std::string response_;
  const bool silent_;
  std::atomic<bool> stop_{false};
  std::mutex mu_;
  std::string last_request_;
  std::thread thread_;
};

}  // namespace faultline::testing_util

#endif  // FAULTLINE_TESTS_UNIT_PROBES_LOOPBACK_SERVER_H_
