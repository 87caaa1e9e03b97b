// Reads YAML into a protobuf message: yaml-cpp parses, the tree is checked
// against the message's descriptor (unknown fields and wrong types are reported
// with their path, e.g. "faults[0].percent: expected a number, got \"x\""), then
// rendered as JSON and parsed by protobuf's JSON parser. Every problem found is
// reported, one per line. Enum values are written short and in any case
// (`mode: all` for SELECTION_MODE_ALL); two members of one oneof are refused.
#ifndef FAULTLINE_COMMON_YAML_PROTO_H_
#define FAULTLINE_COMMON_YAML_PROTO_H_

#include <google/protobuf/descriptor.h>
#include <google/protobuf/message.h>
#include <yaml-cpp/yaml.h>

#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace faultline {

// Parses YAML text within the project's input bounds: a document over 1 MiB or
// holding an alias (*name) is INVALID_ARGUMENT before anything is built (an alias
// bomb expands into billions of nodes); a syntax error is INVALID_ARGUMENT
// "line L, column C: reason". Every YAML text from users goes through this.
absl::StatusOr<YAML::Node> LoadBoundedYaml(const std::string& yaml);

// On error the status message lists every problem ("path: reason"), one a line.
absl::Status YamlToMessage(const std::string& yaml, google::protobuf::Message* out);
absl::Status YamlNodeToMessage(const YAML::Node& node, google::protobuf::Message* out);
absl::Status YamlFileToMessage(const std::string& path, google::protobuf::Message* out);

// An enum value as people write it: the value's name without the enum's own
// prefix, lower case (SELECTION_MODE_ALL -> "all"). YAML and flags accept it in
// any case; *_UNSPECIFIED values are never accepted.
std::string ShortEnumName(const google::protobuf::EnumValueDescriptor& value);

// `s` as a JSON string literal, quotes included.
std::string JsonQuote(const std::string& s);

// The problems found, each "path: reason"; empty when the YAML fits the message.
std::vector<std::string> CheckYamlAgainst(const std::string& yaml,
                                          const google::protobuf::Descriptor* desc);

}  // namespace faultline

#endif  // FAULTLINE_COMMON_YAML_PROTO_H_
