#include "probes/exec_policy.h"

#include <fmt/format.h>
#include <fmt/ranges.h>
#include <pwd.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <utility>

namespace faultline {
namespace {

constexpr int kMaxRules = 64;
constexpr int kMaxArgs = 64;
constexpr size_t kMaxArgBytes = 4096;

// "/usr/bin/redis-cli -h ..." for messages.
std::string Show(const std::vector<std::string>& argv, bool prefix) {
  std::string text = fmt::format("{}", fmt::join(argv, " "));
  if (text.size() > 200) text = text.substr(0, 200) + "...";
  return prefix ? text + " ..." : text;
}

}  // namespace

absl::StatusOr<ExecPolicy> ExecPolicy::FromProto(const v1::ExecPolicy& proto,
                                                 const std::string& field) {
  ExecPolicy policy;
  policy.field_ = field;
  // "exec.allow[0]" (under `field`), or "allow[0]" when `field` is empty.
  const std::string prefix = field.empty() ? "" : field + ".";
  if (proto.allow_size() > kMaxRules) {
    return absl::InvalidArgumentError(
        fmt::format("{}allow: at most {} rules, got {}", prefix, kMaxRules, proto.allow_size()));
  }
  for (int i = 0; i < proto.allow_size(); ++i) {
    const v1::ExecRule& rule = proto.allow(i);
    const std::string path = fmt::format("{}allow[{}]", prefix, i);
    const bool exact = rule.argv_size() > 0;
    if (exact == (rule.argv_prefix_size() > 0)) {
      return absl::InvalidArgumentError(
          fmt::format("{}: exactly one of argv and argv_prefix is required", path));
    }
    const auto& args = exact ? rule.argv() : rule.argv_prefix();
    const char* key = exact ? "argv" : "argv_prefix";
    if (args.size() > kMaxArgs) {
      return absl::InvalidArgumentError(
          fmt::format("{}.{}: at most {} arguments", path, key, kMaxArgs));
    }
    if (args[0].empty() || args[0][0] != '/') {
      return absl::InvalidArgumentError(fmt::format(
          "{}.{}[0]: must be an absolute path (no PATH lookup), got \"{}\"", path, key, args[0]));
    }
    for (int j = 0; j < args.size(); ++j) {
      if (args[j].size() > kMaxArgBytes || args[j].find('\0') != std::string::npos) {
        return absl::InvalidArgumentError(fmt::format(
            "{}.{}[{}]: at most {} bytes, no NUL bytes", path, key, j, kMaxArgBytes));
      }
    }
    policy.rules_.push_back(Rule{{args.begin(), args.end()}, !exact});
  }
  if (policy.rules_.empty()) {
    if (!proto.user().empty()) {
      return absl::InvalidArgumentError(
          fmt::format("{}user: set, but {}allow is empty (no command may run)", prefix, prefix));
    }
    return policy;
  }
  if (proto.user().empty()) {
    return absl::InvalidArgumentError(fmt::format(
        "{}user: required with {}allow (the unprivileged user commands run as)", prefix, prefix));
  }
  passwd entry{};
  passwd* found = nullptr;
  std::vector<char> buf(16384);
  const int rc = ::getpwnam_r(proto.user().c_str(), &entry, buf.data(), buf.size(), &found);
  if (found == nullptr) {
    return absl::InvalidArgumentError(fmt::format(
        "{}user: no such user \"{}\"{}", prefix, proto.user(),
        rc != 0 ? fmt::format(" ({})", std::strerror(rc)) : ""));
  }
  if (found->pw_uid == 0 || found->pw_gid == 0) {
    return absl::InvalidArgumentError(fmt::format(
        "{}user: \"{}\" is root (uid or gid 0); name an unprivileged user", prefix,
        proto.user()));
  }
  policy.credentials_ = {proto.user(), found->pw_uid, found->pw_gid};
  return policy;
}

absl::Status ExecPolicy::Check(const std::vector<std::string>& argv, const char* what) const {
  for (const Rule& rule : rules_) {
    if (rule.prefix ? argv.size() >= rule.argv.size() &&
                          std::equal(rule.argv.begin(), rule.argv.end(), argv.begin())
                    : argv == rule.argv) {
      return absl::OkStatus();
    }
  }
  if (rules_.empty()) {
    return absl::PermissionDeniedError(fmt::format(
        "{} `{}` refused: no exec policy here allows any command ({}allow is empty; "
        "exec is opt-in, per command)",
        what, Show(argv, false), field_.empty() ? "" : field_ + "."));
  }
  std::vector<std::string> allowed;
  for (const Rule& rule : rules_) allowed.push_back(Show(rule.argv, rule.prefix));
  return absl::PermissionDeniedError(
      fmt::format("{} `{}` refused: not allowed by the exec policy ({}allow: {})", what,
                  Show(argv, false), field_.empty() ? "" : field_ + ".", fmt::join(allowed, "; ")));
}

}  // namespace faultline
