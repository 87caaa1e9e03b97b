// The data workload's http driver against a small real key-value server on
// loopback (a thread with a listening socket): acked writes read back; 500s
// are FAILED writes, counted exactly; keys the server drops are counted lost,
// exactly; a silent server makes UNKNOWN writes on time; bad URLs are refused
// naming the field.
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "probes/http_client.h"
#include "tests/unit/probes/loopback_server.h"
#include "tests/unit/workload/data_test_util.h"
#include "workload/data_driver.h"
#include "workload/data_log.h"
#include "workload/data_writer.h"

namespace faultline::workload {
namespace {

using testing::HasSubstr;
using Ms = std::chrono::milliseconds;

constexpr char kKeyPrefix[] = "/kv/faultline:test-run:orders:";

// A key-value store over HTTP/1.1 on 127.0.0.1: PUT stores the body, GET
// answers it (404 if absent), DELETE removes; one request per connection.
// While `failing`, PUTs are answered 500 (and counted). Owned by the test;
// Store/Drop/counters are thread-safe.
class KvServer {
 public:
  KvServer() { thread_ = std::thread([this] { Serve(); }); }
  ~KvServer() {
    stop_ = true;
    thread_.join();
  }
  KvServer(const KvServer&) = delete;
  KvServer& operator=(const KvServer&) = delete;

  std::string url() const { return "http://127.0.0.1:" + std::to_string(listener_.port()) + "/kv"; }
  void set_failing(bool failing) { failing_ = failing; }
  int refused_puts() const { return refused_puts_; }
  bool Drop(const std::string& path) {
    std::lock_guard<std::mutex> lock(mu_);
    return store_.erase(path) == 1;
  }
  size_t Size() {
    std::lock_guard<std::mutex> lock(mu_);
    return store_.size();
  }

 private:
  void Serve() {
    for (int i = 0; i < 1000000 && !stop_; ++i) {  // bounded
      pollfd pfd{listener_.fd(), POLLIN, 0};
      if (::poll(&pfd, 1, 50) <= 0) continue;
      const int fd = ::accept4(listener_.fd(), nullptr, nullptr, SOCK_CLOEXEC);
      if (fd < 0) continue;
      timeval tv{2, 0};
      ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
      std::string request;
      char buf[4096];
      size_t header_end = std::string::npos;
      size_t length = 0;
      for (int r = 0; r < 100; ++r) {
        header_end = request.find("\r\n\r\n");
        if (header_end != std::string::npos) {
          const size_t at = request.find("Content-Length: ");
          length = at == std::string::npos ? 0 : std::stoul(request.substr(at + 16));
          if (request.size() >= header_end + 4 + length) break;
        }
        const ssize_t n = ::recv(fd, buf, sizeof(buf), 0);
        if (n <= 0) break;
        request.append(buf, static_cast<size_t>(n));
      }
      if (header_end != std::string::npos) Answer(fd, request, header_end, length);
      ::close(fd);
    }
  }

  void Answer(int fd, const std::string& request, size_t header_end, size_t length) {
    const size_t sp1 = request.find(' ');
    const size_t sp2 = request.find(' ', sp1 + 1);
    const std::string method = request.substr(0, sp1);
    const std::string path = request.substr(sp1 + 1, sp2 - sp1 - 1);
    int status = 200;
    std::string body;
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (method == "PUT" && failing_) {
        status = 500;
        ++refused_puts_;
      } else if (method == "PUT") {
        store_[path] = request.substr(header_end + 4, length);
        status = 201;
      } else if (method == "GET") {
        auto it = store_.find(path);
        status = it == store_.end() ? 404 : 200;
        if (it != store_.end()) body = it->second;
      } else if (method == "DELETE") {
        status = store_.erase(path) == 1 ? 204 : 404;
      } else {
        status = 405;
      }
    }
    const std::string response =
        "HTTP/1.1 " + std::to_string(status) + " X\r\nContent-Length: " +
        std::to_string(body.size()) + "\r\nConnection: close\r\n\r\n" + body;
    ::send(fd, response.data(), response.size(), MSG_NOSIGNAL);
  }

  testing_util::Listener listener_;
  std::atomic<bool> stop_{false};
  std::atomic<bool> failing_{false};
  std::atomic<int> refused_puts_{0};
  std::mutex mu_;
  std::map<std::string, std::string> store_;  // path -> body
  std::thread thread_;
};

std::unique_ptr<DataDriver> Driver(const std::string& url) {
  return testing_util::MakeOrdersDriver(
      [&](v1::DataWorkload& spec) { spec.mutable_http()->set_url(url); });
}

TEST(HttpData, FailuresAreCountedAndDroppedKeysAreLostExactly) {
  KvServer server;
  std::unique_ptr<DataDriver> driver = Driver(server.url());
  ASSERT_NE(driver, nullptr);
  EXPECT_FALSE(driver->CanList());
  EXPECT_EQ(driver->Kind(), "http");
  DataSettings settings;
  settings.period = Ms(5);
  DataWriter writer(driver.get(), settings);
  writer.Start();
  std::this_thread::sleep_for(Ms(400));
  server.set_failing(true);
  std::this_thread::sleep_for(Ms(300));
  server.set_failing(false);
  std::this_thread::sleep_for(Ms(300));
  const std::vector<v1::WriteRecord> records = writer.Stop();

  // The server "loses" three acked keys.
  std::vector<int64_t> acked;
  int failed = 0;
  for (const auto& r : records) {
    if (r.outcome() == v1::WriteRecord::ACKED) acked.push_back(r.seq());
    if (r.outcome() == v1::WriteRecord::FAILED) ++failed;
    EXPECT_NE(r.outcome(), v1::WriteRecord::UNKNOWN) << r.seq();
  }
  ASSERT_GE(acked.size(), 50u);
  const std::vector<int64_t> dropped = {acked[3], acked[10], acked[acked.size() - 1]};
  for (int64_t seq : dropped) ASSERT_TRUE(server.Drop(kKeyPrefix + std::to_string(seq)));

  ReadBackResult read = ReadBack(*driver, testing_util::SentSeqs(records), std::chrono::seconds(10));
  ASSERT_TRUE(read.stable) << read.error;
  v1::DataResult result = Analyze(records, read.present, driver->CanList(), settings.period);
  std::printf("http: attempted %lld, acked %lld, failed %d (server refused %d), lost %lld\n",
              static_cast<long long>(result.writes_attempted()),
              static_cast<long long>(result.writes_acked()), failed, server.refused_puts(),
              static_cast<long long>(result.writes_lost()));
  EXPECT_GT(failed, 0);
  EXPECT_EQ(failed, server.refused_puts());
  EXPECT_EQ(result.writes_lost(), 3);
  EXPECT_THAT(result.first_lost(), testing::ElementsAreArray(dropped));
  EXPECT_EQ(result.writes_recovered(), 0);
  EXPECT_EQ(result.writes_unexpected(), -1);

  ASSERT_TRUE(driver->Cleanup(Clock::now() + Ms(5000)).ok());
  EXPECT_EQ(server.Size(), 0u) << "cleanup left keys behind";
}

// A server that accepts and never answers: UNKNOWN (sent), on time. A closed
// port: FAILED (never sent). Reads that meet them fail with the reason.
TEST(HttpData, SilentAndClosedServers) {
  testing_util::HttpServer silent("", /*silent=*/true);
  std::unique_ptr<DataDriver> driver = Driver(silent.url("/kv"));
  ASSERT_NE(driver, nullptr);
  std::string error;
  const auto start = Clock::now();
  EXPECT_EQ(driver->Write(1, start + Ms(200), &error), v1::WriteRecord::UNKNOWN);
  EXPECT_LT(Clock::now() - start, testing_util::OnTime(Ms(500)));
  EXPECT_THAT(error, HasSubstr("timed out"));
  EXPECT_THAT(silent.last_request(), HasSubstr("PUT /kv/faultline:test-run:orders:1 HTTP/1.1"));

  std::unique_ptr<DataDriver> closed =
      Driver("http://127.0.0.1:" + std::to_string(testing_util::ClosedPort()) + "/");
  ASSERT_NE(closed, nullptr);
  EXPECT_EQ(closed->Write(1, Clock::now() + Ms(500), &error), v1::WriteRecord::FAILED);
  auto read = closed->ReadAll({1}, Clock::now() + Ms(500));
  ASSERT_FALSE(read.ok());
  EXPECT_THAT(std::string(read.status().message()), HasSubstr("GET /faultline:test-run:orders:1"));

  // A server that answers 200 to anything is not holding our writes.
  testing_util::HttpServer catch_all("HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello");
  std::unique_ptr<DataDriver> wrong = Driver(catch_all.url("/kv/"));
  ASSERT_NE(wrong, nullptr);
  read = wrong->ReadAll({1}, Clock::now() + Ms(1000));
  ASSERT_FALSE(read.ok());
  EXPECT_THAT(std::string(read.status().message()), HasSubstr("not this write"));
}

TEST(HttpData, BadUrlsAreRefusedNamingTheField) {
  const std::vector<std::pair<std::string, std::string>> bad = {
      {"", "required"},
      {"https://127.0.0.1:8443/kv", "only http://"},
      {"http://127.0.0.1:8080/kv?x=1", "no query or fragment"},
      {"http://127.0.0.1:8080/kv#top", "no query or fragment"},
      {"http://user:pw@127.0.0.1/kv", "user names and passwords"},
      {"http://127.0.0.1:99999/kv", "port"},
      {"http:///kv", "missing host"},
      {"http://::1/kv", "IPv6 addresses need brackets"},
      {"http://127.0.0.1/k v", "spaces and control characters"},
  };
  auto with = [](const std::string& url) {
    return [url](v1::DataWorkload& spec) { spec.mutable_http()->set_url(url); };
  };
  for (const auto& [url, reason] : bad) {
    testing_util::ExpectRefused(with(url), "data[0].http.url", reason, url);
  }
  for (const std::string url : {"http://127.0.0.1:8080/kv", "http://[::1]:8080/",
                                "http://127.0.0.1", "http://kv.internal/v1/"}) {
    testing_util::ExpectAccepted(with(url), url);
  }
}

}  // namespace
}  // namespace faultline::workload
