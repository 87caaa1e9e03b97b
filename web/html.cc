#include "web/html.h"

#include <fmt/format.h>

namespace faultline::web {

std::string Html(const std::string& s) {
  std::string out;
  out.reserve(s.size());
  for (char c : s) {
    switch (c) {
      case '&': out += "&amp;"; break;
      case '<': out += "&lt;"; break;
      case '>': out += "&gt;"; break;
      case '"': out += "&quot;"; break;
      case '\'': out += "&#39;"; break;
      default: out += c;
    }
  }
  return out;
}

namespace {
constexpr char kStyle[] =
    "body{font-family:system-ui,sans-serif;margin:1.5em 2em;color:#1d1d1f}"
    "a{color:#0b57d0;text-decoration:none}a:hover{text-decoration:underline}"
    "nav{margin-bottom:1em}nav a{margin-right:1em}"
    "table{border-collapse:collapse;margin:0.5em 0 1.5em}"
    "td,th{border:1px solid #d0d0d0;padding:3px 8px;text-align:left;font-size:14px}"
    "th{background:#f3f3f3}"
    ".ok,.pass,.healthy,.completed{color:#176b21}"
    ".failed,.fail,.timed_out,.aborted,.interrupted,.unhealthy,.error,.stopped{color:#b00020}"
    ".waiting,.running,.not_steady{color:#8a5a00}"
    ".zone{display:inline-block;vertical-align:top;margin-right:1.5em}"
    ".muted{color:#777}svg text{font-family:system-ui,sans-serif;font-size:12px}";
}  // namespace

std::string Page(const std::string& title, const std::string& body,
                 const std::string& head_extra) {
  return fmt::format(
      "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
      "<title>{}</title>\n<style>{}</style>{}</head><body>\n{}</body></html>\n",
      Html(title), kStyle, head_extra, body);
}

}  // namespace faultline::web
