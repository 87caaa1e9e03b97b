// The http client shared by the http probe and the http data driver
// (probes/http_client.h).
#include "probes/http_client.h"

#include <fmt/format.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <utility>

#include "absl/strings/ascii.h"
#include "common/status_macros.h"

namespace faultline::probes {
namespace {

constexpr size_t kMaxResponseBytes = 1 << 20;

std::string Lower(const std::string& s) { return absl::AsciiStrToLower(s); }
std::string Trim(const std::string& s) { return std::string(absl::StripAsciiWhitespace(s)); }

// Short, printable form of user text for error messages.
std::string Quote(const std::string& s) {
  std::string out = s.size() > 64 ? s.substr(0, 64) + "..." : s;
  for (char& c : out) {
    if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) c = '?';
  }
  return "\"" + out + "\"";
}

// Decodes a chunked body starting at data[pos]. Returns false (and leaves
// *complete false) while more data is needed.
absl::Status DecodeChunked(const std::string& data, size_t pos, std::string* body,
                           bool* complete) {
  *complete = false;
  body->clear();
  for (;;) {
    size_t eol = data.find("\r\n", pos);
    if (eol == std::string::npos) return absl::OkStatus();
    std::string size_text = data.substr(pos, eol - pos);
    size_t semi = size_text.find(';');
    if (semi != std::string::npos) size_text.resize(semi);
    size_text = Trim(size_text);
    char* end = nullptr;
    errno = 0;
    unsigned long long size = std::strtoull(size_text.c_str(), &end, 16);
    if (size_text.empty() || *end != '\0' || errno != 0 || size > kMaxResponseBytes) {
      return absl::DataLossError(fmt::format("bad chunk size {}", Quote(size_text)));
    }
    pos = eol + 2;
    if (size == 0) {
      // Trailers end with an empty line; accept the bare terminator too.
      *complete = data.find("\r\n", pos) != std::string::npos;
      return absl::OkStatus();
    }
    if (data.size() < pos + size + 2) return absl::OkStatus();
    body->append(data, pos, size);
    pos += size + 2;
  }
}

}  // namespace

absl::StatusOr<HttpUrl> ParseHttpUrl(const std::string& field, const std::string& url) {
  if (url.empty()) {
    return absl::InvalidArgumentError(fmt::format("{}: required (http://HOST[:PORT]/PATH)", field));
  }
  const std::string scheme = "http://";
  if (Lower(url.substr(0, scheme.size())) != scheme) {
    return absl::InvalidArgumentError(
        fmt::format("{}: only http:// is supported, got {}", field, Quote(url)));
  }
  for (char c : url) {
    if (static_cast<unsigned char>(c) <= 0x20 || c == 0x7f) {
      return absl::InvalidArgumentError(
          fmt::format("{}: spaces and control characters are not allowed, got {}", field,
                      Quote(url)));
    }
  }
  std::string rest = url.substr(scheme.size());
  size_t hash = rest.find('#');
  if (hash != std::string::npos) rest.resize(hash);
  size_t auth_end = rest.find_first_of("/?");
  std::string authority = rest.substr(0, auth_end);
  std::string path = auth_end == std::string::npos ? "" : rest.substr(auth_end);
  if (path.empty() || path[0] != '/') path = "/" + path;
  if (authority.find('@') != std::string::npos) {
    return absl::InvalidArgumentError(
        fmt::format("{}: user names and passwords in the URL are not supported", field));
  }
  if (authority.empty()) {
    return absl::InvalidArgumentError(fmt::format("{}: missing host in {}", field, Quote(url)));
  }
  // Add the default port unless one is given (mind IPv6 brackets).
  std::string host_port = authority;
  size_t bracket = authority.rfind(']');
  size_t colon = authority.rfind(':');
  bool has_port = colon != std::string::npos &&
                  (bracket == std::string::npos || colon > bracket);
  if (authority.front() != '[' && std::count(authority.begin(), authority.end(), ':') > 1) {
    has_port = false;  // unbracketed IPv6: ParseHostPort reports it
  }
  if (!has_port) host_port += ":80";
  HttpUrl out;
  ASSIGN_OR_RETURN(out.target, ParseHostPort(field, host_port));
  out.host_header = authority;
  out.path = path;
  return out;
}

std::string BuildHttpRequest(const HttpUrl& url) {
  return BuildHttpRequest(url, "GET", url.path, "");
}

std::string BuildHttpRequest(const HttpUrl& url, const std::string& method,
                             const std::string& path, const std::string& body) {
  const bool carries_body = !body.empty() || method == "PUT" || method == "POST";
  return fmt::format(
      "{} {} HTTP/1.1\r\nHost: {}\r\nUser-Agent: faultline-probe\r\nAccept: */*\r\n"
      "{}Connection: close\r\n\r\n{}",
      method, path, url.host_header,
      carries_body
          ? fmt::format("Content-Type: text/plain\r\nContent-Length: {}\r\n", body.size())
          : "",
      body);
}

absl::StatusOr<HttpResponse> ParseHttpResponse(const std::string& data, bool eof,
                                               bool* complete) {
  *complete = false;
  HttpResponse response;
  size_t header_end = data.find("\r\n\r\n");
  if (header_end == std::string::npos) {
    if (eof) {
      return absl::DataLossError(data.empty() ? "connection closed without a response"
                                              : "connection closed inside the headers");
    }
    return response;
  }
  size_t line_end = data.find("\r\n");
  const std::string status_line = data.substr(0, line_end);
  // "HTTP/1.1 200 OK"
  if (status_line.rfind("HTTP/1.", 0) != 0 || status_line.size() < 12 ||
      status_line[8] != ' ' || !std::isdigit(static_cast<unsigned char>(status_line[9])) ||
      !std::isdigit(static_cast<unsigned char>(status_line[10])) ||
      !std::isdigit(static_cast<unsigned char>(status_line[11])) ||
      (status_line.size() > 12 && status_line[12] != ' ')) {
    return absl::DataLossError(fmt::format("bad status line {}", Quote(status_line)));
  }
  response.status = std::atoi(status_line.substr(9, 3).c_str());

  bool chunked = false;
  long long content_length = -1;
  size_t pos = line_end + 2;
  while (pos < header_end) {
    size_t eol = data.find("\r\n", pos);
    const std::string line = data.substr(pos, eol - pos);
    pos = eol + 2;
    size_t colon = line.find(':');
    if (colon == std::string::npos) continue;
    const std::string name = Lower(Trim(line.substr(0, colon)));
    const std::string value = Trim(line.substr(colon + 1));
    if (name == "transfer-encoding" && Lower(value).find("chunked") != std::string::npos) {
      chunked = true;
    } else if (name == "content-length") {
      char* end = nullptr;
      errno = 0;
      content_length = std::strtoll(value.c_str(), &end, 10);
      if (value.empty() || *end != '\0' || errno != 0 || content_length < 0) {
        return absl::DataLossError(fmt::format("bad Content-Length {}", Quote(value)));
      }
    }
  }
  const size_t body_start = header_end + 4;
  if (response.status == 204 || response.status == 304 || response.status / 100 == 1) {
    *complete = true;
    return response;
  }
  if (chunked) {
    RETURN_IF_ERROR(DecodeChunked(data, body_start, &response.body, complete));
    if (!*complete && eof) return absl::DataLossError("connection closed inside the body");
    return response;
  }
  if (content_length >= 0) {
    if (data.size() - body_start >= static_cast<size_t>(content_length)) {
      response.body = data.substr(body_start, static_cast<size_t>(content_length));
      *complete = true;
    } else if (eof) {
      return absl::DataLossError(
          fmt::format("connection closed after {} of {} body bytes",
                      data.size() - body_start, content_length));
    }
    return response;
  }
  // No length: the body runs to the end of the connection.
  response.body = data.substr(body_start);
  *complete = eof;
  return response;
}

absl::StatusOr<HttpResponse> FetchHttp(Resolver& resolver, const HttpUrl& url,
                                       const std::string& request, Clock::time_point deadline,
                                       bool* sent) {
  if (sent != nullptr) *sent = false;
  ASSIGN_OR_RETURN(auto addresses, resolver.Resolve(url.target, deadline));
  ASSIGN_OR_RETURN(UniqueFd fd, ConnectTcp(addresses, deadline));
  if (sent != nullptr) *sent = true;
  RETURN_IF_ERROR(SendAll(fd.get(), request, deadline, "sending the request"));
  std::string data;
  for (;;) {
    ASSIGN_OR_RETURN(const bool open, RecvSome(fd.get(), &data, deadline, "reading the response"));
    if (data.size() > kMaxResponseBytes) {
      return absl::ResourceExhaustedError("response larger than 1 MiB");
    }
    bool complete = false;
    ASSIGN_OR_RETURN(HttpResponse response, ParseHttpResponse(data, !open, &complete));
    if (complete) return response;
    if (!open) return absl::DataLossError("connection closed before the response ended");
  }
}

}  // namespace faultline::probes
