#include "common/yaml_proto.h"

#include <fmt/format.h>
#include <google/protobuf/descriptor.h>
#include <google/protobuf/util/json_util.h>
#include <yaml-cpp/eventhandler.h>
#include <yaml-cpp/parser.h>
#include <yaml-cpp/yaml.h>

#include <cmath>
#include <cstdlib>
#include <map>
#include <sstream>
#include <utility>
#include <vector>
#include <string>

#include "absl/strings/ascii.h"
#include "absl/strings/str_join.h"

#include "common/endpoint.h"
#include "common/files.h"
#include "common/status_macros.h"

namespace faultline {
namespace {

using google::protobuf::Descriptor;
using google::protobuf::FieldDescriptor;

// The enum's own name in UPPER_SNAKE plus "_": SelectionMode -> SELECTION_MODE_.
std::string EnumPrefix(const google::protobuf::EnumDescriptor& e) {
  std::string out;
  for (char c : e.name()) {
    if (absl::ascii_isupper(static_cast<unsigned char>(c)) && !out.empty()) out += '_';
    out += absl::ascii_toupper(static_cast<unsigned char>(c));
  }
  return out + "_";
}

// Input bounds: a larger document, or more problems than this, is refused or
// cut short rather than costing the caller time and memory.
constexpr size_t kMaxYamlBytes = 1 << 20;
constexpr size_t kMaxProblems = 20;
constexpr int kMaxDocuments = 16;

// Finds the first alias (*name). yaml-cpp expands aliases into shared nodes, so
// a few hundred bytes of nested aliases make a tree of billions of nodes for us
// to walk: aliases are refused before anything is built.
class AliasFinder final : public YAML::EventHandler {
 public:
  bool found = false;
  YAML::Mark at;

  void OnDocumentStart(const YAML::Mark&) override {}
  void OnDocumentEnd() override {}
  void OnNull(const YAML::Mark&, YAML::anchor_t) override {}
  void OnAlias(const YAML::Mark& mark, YAML::anchor_t) override {
    if (!found) at = mark;
    found = true;
  }
  void OnScalar(const YAML::Mark&, const std::string&, YAML::anchor_t,
                const std::string&) override {}
  void OnSequenceStart(const YAML::Mark&, const std::string&, YAML::anchor_t,
                       YAML::EmitterStyle::value) override {}
  void OnSequenceEnd() override {}
  void OnMapStart(const YAML::Mark&, const std::string&, YAML::anchor_t,
                  YAML::EmitterStyle::value) override {}
  void OnMapEnd() override {}
};

// INVALID_ARGUMENT for a document too large or holding an alias; OK otherwise
// (syntax errors are left to the real parse, which words them).
absl::Status CheckBounds(const std::string& yaml) {
  if (yaml.size() > kMaxYamlBytes) {
    return absl::InvalidArgumentError(
        fmt::format("document of {} bytes; at most {} KiB", yaml.size(), kMaxYamlBytes / 1024));
  }
  std::istringstream in(yaml);
  AliasFinder finder;
  try {
    YAML::Parser parser(in);
    for (int i = 0; i < kMaxDocuments && !finder.found && parser.HandleNextDocument(finder); ++i) {
    }
  } catch (const YAML::Exception&) {
    return absl::OkStatus();
  }
  if (finder.found) {
    return absl::InvalidArgumentError(fmt::format(
        "line {}, column {}: YAML aliases (*name) are not supported; write the value out",
        finder.at.line + 1, finder.at.column + 1));
  }
  return absl::OkStatus();
}

constexpr size_t kMaxProblemBytes = 300;

// At most kMaxProblems problems of at most kMaxProblemBytes each, and a count
// of the rest.
std::vector<std::string> CapProblems(std::vector<std::string> problems) {
  const size_t more = problems.size() > kMaxProblems ? problems.size() - kMaxProblems : 0;
  if (more > 0) problems.resize(kMaxProblems);
  for (std::string& p : problems) {
    if (p.size() > kMaxProblemBytes) p = p.substr(0, kMaxProblemBytes) + "...";
  }
  if (more > 0) problems.push_back(fmt::format("... and {} more", more));
  return problems;
}

bool IsUnspecified(const google::protobuf::EnumValueDescriptor& v) {
  const std::string& n = v.name();
  return n.size() >= 12 && n.compare(n.size() - 12, 12, "_UNSPECIFIED") == 0;
}

}  // namespace

std::string ShortEnumName(const google::protobuf::EnumValueDescriptor& value) {
  std::string name = value.name();
  const std::string prefix = EnumPrefix(*value.type());
  if (name.rfind(prefix, 0) == 0) name = name.substr(prefix.size());
  return absl::AsciiStrToLower(name);
}

std::string JsonQuote(const std::string& s) {
  std::string out = "\"";
  for (unsigned char c : s) {
    switch (c) {
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '\n': out += "\\n"; break;
      case '\t': out += "\\t"; break;
      case '\r': out += "\\r"; break;
      default:
        if (c < 0x20) out += fmt::format("\\u{:04x}", c);
        else out += static_cast<char>(c);
    }
  }
  return out + "\"";
}

namespace {

std::string Join(const std::string& path, const std::string& name) {
  return path.empty() ? name : path + "." + name;
}

bool IsInteger(const std::string& s) {
  if (s.empty()) return false;
  char* end = nullptr;
  errno = 0;
  std::strtoll(s.c_str(), &end, 10);
  return *end == '\0' && errno == 0;
}

bool IsNumber(const std::string& s) {
  if (s.empty()) return false;
  char* end = nullptr;
  double v = std::strtod(s.c_str(), &end);
  return *end == '\0' && std::isfinite(v);
}

std::string Describe(const YAML::Node& n) {
  if (n.IsScalar()) return fmt::format("\"{}\"", n.Scalar());
  if (n.IsSequence()) return "a list";
  if (n.IsMap()) return "a mapping";
  return "nothing";
}

class Converter {
 public:
  std::vector<std::string> problems;

  // Renders `node` as JSON for a message of type `desc`.
  std::string Message(const YAML::Node& node, const Descriptor* desc, const std::string& path) {
    if (!node.IsMap()) {
      if (node.IsNull()) return "{}";
      problems.push_back(fmt::format("{}: expected a mapping, got {}",
                                     path.empty() ? "(top)" : path, Describe(node)));
      return "{}";
    }
    std::string out = "{";
    bool first = true;
    std::map<const google::protobuf::OneofDescriptor*, std::string> oneofs_seen;
    for (const auto& kv : node) {
      const std::string key = kv.first.Scalar();
      const std::string fpath = Join(path, key);
      const FieldDescriptor* field = desc->FindFieldByName(key);
      if (field == nullptr) field = desc->FindFieldByCamelcaseName(key);
      if (field == nullptr) {
        std::vector<std::string> known;
        for (int i = 0; i < desc->field_count(); ++i) known.push_back(desc->field(i)->name());
        problems.push_back(
            fmt::format("{}: unknown field (known: {})", fpath, absl::StrJoin(known, ", ")));
        continue;
      }
      if (kv.second.IsNull()) continue;
      if (const auto* oneof = field->real_containing_oneof()) {
        auto [it, fresh] = oneofs_seen.emplace(oneof, field->name());
        if (!fresh) {
          std::vector<std::string> members;
          for (int i = 0; i < oneof->field_count(); ++i) members.push_back(oneof->field(i)->name());
          problems.push_back(fmt::format("{}: {} and {} are exclusive (give one of {})",
                                         path.empty() ? "(top)" : path, it->second, field->name(),
                                         absl::StrJoin(members, ", ")));
          continue;
        }
      }
      std::string value = Field(kv.second, field, fpath);
      out += fmt::format("{}{}:{}", first ? "" : ",", JsonQuote(field->name()), value);
      first = false;
    }
    return out + "}";
  }

 private:
  std::string Field(const YAML::Node& node, const FieldDescriptor* field,
                    const std::string& path) {
    if (field->is_map()) {
      if (!node.IsMap()) {
        problems.push_back(fmt::format("{}: expected a mapping, got {}", path, Describe(node)));
        return "{}";
      }
      const FieldDescriptor* value_field = field->message_type()->map_value();
      std::string out = "{";
      bool first = true;
      for (const auto& kv : node) {
        const std::string key = kv.first.Scalar();
        out += fmt::format("{}{}:{}", first ? "" : ",", JsonQuote(key),
                           Single(kv.second, value_field, path + "." + key));
        first = false;
      }
      return out + "}";
    }
    if (field->is_repeated()) {
      if (!node.IsSequence()) {
        problems.push_back(fmt::format("{}: expected a list, got {}", path, Describe(node)));
        return "[]";
      }
      std::string out = "[";
      for (size_t i = 0; i < node.size(); ++i) {
        out += (i ? "," : "") + Single(node[i], field, fmt::format("{}[{}]", path, i));
      }
      return out + "]";
    }
    return Single(node, field, path);
  }

  std::string Single(const YAML::Node& node, const FieldDescriptor* field,
                     const std::string& path) {
    if (field->type() == FieldDescriptor::TYPE_MESSAGE) {
      return Message(node, field->message_type(), path);
    }
    if (!node.IsScalar()) {
      problems.push_back(fmt::format("{}: expected a single value, got {}", path, Describe(node)));
      return "null";
    }
    const std::string s = node.Scalar();
    switch (field->cpp_type()) {
      case FieldDescriptor::CPPTYPE_INT32:
      case FieldDescriptor::CPPTYPE_INT64:
      case FieldDescriptor::CPPTYPE_UINT32:
      case FieldDescriptor::CPPTYPE_UINT64:
        if (!IsInteger(s)) {
          problems.push_back(fmt::format("{}: expected a whole number, got \"{}\"", path, s));
          return "0";
        }
        return s;
      case FieldDescriptor::CPPTYPE_DOUBLE:
      case FieldDescriptor::CPPTYPE_FLOAT:
        if (!IsNumber(s)) {
          problems.push_back(fmt::format("{}: expected a number, got \"{}\"", path, s));
          return "0";
        }
        return s;
      case FieldDescriptor::CPPTYPE_BOOL:
        if (s == "true" || s == "false") return s;
        problems.push_back(fmt::format("{}: expected true or false, got \"{}\"", path, s));
        return "false";
      case FieldDescriptor::CPPTYPE_ENUM: {
        const google::protobuf::EnumDescriptor* e = field->enum_type();
        const std::string want = absl::AsciiStrToLower(absl::StripAsciiWhitespace(s));
        std::vector<std::string> names;
        for (int i = 0; i < e->value_count(); ++i) {
          const auto* v = e->value(i);
          if (IsUnspecified(*v)) continue;
          if (ShortEnumName(*v) == want) return JsonQuote(v->name());
          names.push_back(ShortEnumName(*v));
        }
        problems.push_back(fmt::format("{}: must be one of {}, got \"{}\"", path,
                                       absl::StrJoin(names, ", "), s));
        return "0";
      }
      default:
        return JsonQuote(s);
    }
  }
};

}  // namespace

std::vector<std::string> CheckYamlAgainst(const std::string& yaml, const Descriptor* desc) {
  Converter c;
  if (absl::Status bounds = CheckBounds(yaml); !bounds.ok()) {
    return {std::string(bounds.message())};
  }
  try {
    YAML::Node root = YAML::Load(yaml);
    c.Message(root, desc, "");
  } catch (const YAML::Exception& e) {
    c.problems.push_back(fmt::format("line {}, column {}: {}", e.mark.line + 1,
                                     e.mark.column + 1, e.msg));
  }
  return CapProblems(std::move(c.problems));
}

absl::StatusOr<YAML::Node> LoadBoundedYaml(const std::string& yaml) {
  RETURN_IF_ERROR(CheckBounds(yaml));
  try {
    return YAML::Load(yaml);
  } catch (const YAML::Exception& e) {
    return absl::InvalidArgumentError(fmt::format("line {}, column {}: {}", e.mark.line + 1,
                                                  e.mark.column + 1, e.msg));
  }
}

absl::Status YamlToMessage(const std::string& yaml, google::protobuf::Message* out) {
  absl::StatusOr<YAML::Node> root = LoadBoundedYaml(yaml);
  if (!root.ok()) return root.status();
  return YamlNodeToMessage(*root, out);
}

absl::Status YamlNodeToMessage(const YAML::Node& root, google::protobuf::Message* out) {
  Converter c;
  std::string json;
  try {
    json = c.Message(root, out->GetDescriptor(), "");
  } catch (const YAML::Exception& e) {
    return absl::InvalidArgumentError(fmt::format("line {}, column {}: {}", e.mark.line + 1,
                                                  e.mark.column + 1, e.msg));
  }
  if (!c.problems.empty()) {
    return absl::InvalidArgumentError(absl::StrJoin(CapProblems(std::move(c.problems)), "\n"));
  }
  out->Clear();
  auto st = google::protobuf::util::JsonStringToMessage(json, out);
  if (!st.ok()) return absl::InvalidArgumentError(std::string(st.message()));
  return absl::OkStatus();
}

absl::Status YamlFileToMessage(const std::string& path, google::protobuf::Message* out) {
  auto text = ReadFileToString(path);
  if (!text.ok()) return text.status();
  absl::Status st = YamlToMessage(*text, out);
  if (!st.ok()) return absl::Status(st.code(), fmt::format("{}: {}", path, std::string(st.message())));
  return st;
}

}  // namespace faultline
