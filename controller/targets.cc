#include "controller/targets.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <optional>

#include "absl/strings/ascii.h"

namespace faultline::controller {
namespace {

bool IsWordStart(char c) { return absl::ascii_isalnum(static_cast<unsigned char>(c)); }
bool IsWordChar(char c) {
  return IsWordStart(c) || c == '_' || c == '.' || c == '/' || c == '-';
}

// A cursor over a selector's text; every error names what was expected and where.
class SelectorParser {
 public:
  explicit SelectorParser(std::string_view text) : text_(text) {}

  absl::StatusOr<std::vector<LabelRequirement>> Parse() {
    std::vector<LabelRequirement> out;
    for (;;) {
      auto req = Requirement();
      if (!req.ok()) return req.status();
      out.push_back(std::move(*req));
      SkipSpace();
      if (AtEnd()) return out;
      if (Peek() != ',') return Expected("\",\" or the end");
      ++pos_;
    }
  }

 private:
  bool AtEnd() const { return pos_ >= text_.size(); }
  char Peek() const { return AtEnd() ? '\0' : text_[pos_]; }
  void SkipSpace() {
    while (!AtEnd() && absl::ascii_isspace(static_cast<unsigned char>(text_[pos_]))) ++pos_;
  }
  bool Consume(std::string_view token) {
    if (text_.substr(pos_, token.size()) != token) return false;
    pos_ += token.size();
    return true;
  }

  absl::Status Expected(std::string_view what) const {
    std::string_view before = text_.substr(0, pos_);
    while (!before.empty() && absl::ascii_isspace(static_cast<unsigned char>(before.back()))) {
      before.remove_suffix(1);
    }
    if (before.empty()) return absl::InvalidArgumentError(fmt::format("expected {} at {}", what, pos_));
    return absl::InvalidArgumentError(
        fmt::format("expected {} after \"{}\" at {}", what, before, pos_));
  }

  // A key or a value: [A-Za-z0-9][A-Za-z0-9_./-]*, after optional whitespace.
  std::optional<std::string> Word() {
    SkipSpace();
    if (AtEnd() || !IsWordStart(text_[pos_])) return std::nullopt;
    size_t start = pos_;
    while (!AtEnd() && IsWordChar(text_[pos_])) ++pos_;
    return std::string(text_.substr(start, pos_ - start));
  }

  absl::StatusOr<LabelRequirement> Requirement() {
    LabelRequirement req;
    SkipSpace();
    if (Consume("!")) {
      std::optional<std::string> key = Word();
      if (!key) return Expected("a key");
      req.key = std::move(*key);
      req.op = LabelRequirement::Op::kNotExists;
      return req;
    }
    std::optional<std::string> key = Word();
    if (!key) return Expected("a key");
    req.key = std::move(*key);
    SkipSpace();
    if (AtEnd() || Peek() == ',') {
      req.op = LabelRequirement::Op::kExists;
      return req;
    }
    if (Consume("==") || Consume("=")) {
      req.op = LabelRequirement::Op::kEquals;
    } else if (Consume("!=")) {
      req.op = LabelRequirement::Op::kNotEquals;
    } else {
      const size_t at = pos_;
      std::optional<std::string> word = Word();
      if (word == "in") {
        req.op = LabelRequirement::Op::kIn;
      } else if (word == "notin") {
        req.op = LabelRequirement::Op::kNotIn;
      } else {
        pos_ = at;
        return Expected("\"=\", \"==\", \"!=\", \"in\", \"notin\", \",\" or the end");
      }
      SkipSpace();
      if (!Consume("(")) return Expected("\"(\"");
      for (;;) {
        std::optional<std::string> value = Word();
        if (!value) return Expected("a value");
        req.values.push_back(std::move(*value));
        SkipSpace();
        if (Consume(",")) continue;
        if (Consume(")")) return req;
        return Expected("\")\"");
      }
    }
    std::optional<std::string> value = Word();
    if (!value) return Expected("a value");
    req.values.push_back(std::move(*value));
    return req;
  }

  std::string_view text_;
  size_t pos_ = 0;
};

}  // namespace

absl::StatusOr<std::vector<LabelRequirement>> ParseLabelSelector(std::string_view text) {
  return SelectorParser(text).Parse();
}

bool Matches(const std::vector<LabelRequirement>& requirements,
             const std::map<std::string, std::string>& labels) {
  for (const LabelRequirement& r : requirements) {
    auto it = labels.find(r.key);
    const bool has = it != labels.end();
    auto in_values = [&] {
      return has && std::find(r.values.begin(), r.values.end(), it->second) != r.values.end();
    };
    bool ok = false;
    switch (r.op) {
      case LabelRequirement::Op::kEquals:
      case LabelRequirement::Op::kIn: ok = in_values(); break;
      case LabelRequirement::Op::kNotEquals:
      case LabelRequirement::Op::kNotIn: ok = !in_values(); break;
      case LabelRequirement::Op::kExists: ok = has; break;
      case LabelRequirement::Op::kNotExists: ok = !has; break;
    }
    if (!ok) return false;
  }
  return true;
}

absl::StatusOr<std::vector<AgentRef>> ResolveSelector(const std::string& path,
                                                      const v1::TargetSelector& selector,
                                                      const std::vector<AgentRef>& agents,
                                                      std::mt19937_64& rng) {
  std::vector<LabelRequirement> requirements;
  if (!selector.selector().empty()) {
    auto parsed = ParseLabelSelector(selector.selector());
    if (!parsed.ok()) {
      return absl::InvalidArgumentError(
          fmt::format("{}.selector: {}", path, std::string(parsed.status().message())));
    }
    requirements = std::move(*parsed);
  }
  std::vector<AgentRef> matching;
  int unhealthy = 0;
  for (const AgentRef& a : agents) {
    if (std::find(selector.exclude().begin(), selector.exclude().end(), a.name) !=
        selector.exclude().end()) {
      continue;
    }
    bool match = Matches(requirements, a.labels);
    for (const auto& [k, v] : selector.labels()) {
      if (!match) break;
      auto it = a.labels.find(k);
      if (it == a.labels.end() || it->second != v) {
        match = false;
        break;
      }
    }
    if (match && !selector.names().empty()) {
      match = std::find(selector.names().begin(), selector.names().end(), a.name) !=
              selector.names().end();
    }
    if (!match) continue;
    if (!a.healthy) {
      ++unhealthy;
      continue;
    }
    matching.push_back(a);
  }
  // A stable order first, so a seeded pick is reproducible.
  std::sort(matching.begin(), matching.end(),
            [](const AgentRef& a, const AgentRef& b) { return a.name < b.name; });
  size_t want = matching.size();
  if (selector.count() > 0) {
    want = static_cast<size_t>(selector.count());
  } else if (selector.has_percent()) {
    want = static_cast<size_t>(
        std::max(1.0, std::ceil(static_cast<double>(matching.size()) * selector.percent() / 100)));
  }
  if (matching.empty() && selector.on_empty() == v1::TargetSelector::ON_EMPTY_SKIP) {
    return matching;
  }
  if (matching.empty() || matching.size() < want) {
    return absl::FailedPreconditionError(fmt::format(
        "{}: {} healthy agent(s) match, {} needed{}", path, matching.size(),
        std::max<size_t>(want, 1),
        unhealthy > 0 ? fmt::format(" ({} matching agent(s) unhealthy)", unhealthy) : ""));
  }
  if (selector.has_seed()) {
    std::mt19937_64 own(selector.seed());
    std::shuffle(matching.begin(), matching.end(), own);
  } else {
    std::shuffle(matching.begin(), matching.end(), rng);
  }
  matching.resize(want);
  std::sort(matching.begin(), matching.end(),
            [](const AgentRef& a, const AgentRef& b) { return a.name < b.name; });
  return matching;
}

absl::StatusOr<std::map<std::string, std::vector<AgentRef>>> ResolveTargets(
    const v1::Experiment& exp, const std::vector<AgentRef>& agents, std::mt19937_64& rng) {
  std::map<std::string, std::vector<AgentRef>> out;
  std::string errors;
  // std::map order: resolution is deterministic for a given seed.
  std::map<std::string, v1::TargetSelector> sorted(exp.targets().begin(), exp.targets().end());
  for (const auto& [name, selector] : sorted) {
    auto picked = ResolveSelector("targets." + name, selector, agents, rng);
    if (!picked.ok()) {
      errors += (errors.empty() ? "" : "\n") + std::string(picked.status().message());
      continue;
    }
    out[name] = std::move(*picked);
  }
  if (!errors.empty()) return absl::FailedPreconditionError(errors);
  return out;
}

}  // namespace faultline::controller
