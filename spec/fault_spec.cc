#include "spec/fault_spec.h"

#include <fmt/format.h>
#include <google/protobuf/descriptor.h>
#include <google/protobuf/reflection.h>
#include <yaml-cpp/yaml.h>

#include <csignal>
#include <cstdlib>

#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "common/status_macros.h"
#include "common/text.h"
#include "common/units.h"
#include "common/yaml_proto.h"
#include "spec/disk_fill.h"
#include "spec/net.h"
#include "spec/process.h"
#include "spec/signals.h"

namespace faultline::spec {
namespace {

using google::protobuf::FieldDescriptor;
using google::protobuf::Message;

// Signals that stop or resume a process: `kill` with them would leave a
// process stopped with nothing to resume it (or resume someone else's stop).
// The pause fault stops and resumes, with a deadline and a ledger record.
bool IsStopOrContinue(int signo) {
  return signo == SIGSTOP || signo == SIGTSTP || signo == SIGTTIN || signo == SIGTTOU ||
         signo == SIGCONT;
}

// An enum field holds a number the enum does not define (proto3 keeps those).
template <typename IsValid>
absl::Status KnownEnum(const char* field, int value, IsValid is_valid) {
  if (is_valid(value)) return absl::OkStatus();
  return absl::InvalidArgumentError(fmt::format("{}: unknown value {}", field, value));
}

absl::Status ValidateKill(const v1::FaultSpec& spec) {
  RETURN_IF_ERROR(ValidateSelection(ProcessSelection::Of(spec.kill())));
  const std::string& text = spec.kill().signal();
  ASSIGN_OR_RETURN(const int signo, ParseSignal(text.empty() ? "KILL" : text));
  if (IsStopOrContinue(signo)) {
    return absl::InvalidArgumentError(fmt::format(
        "signal: {} stops or resumes a process, which kill cannot undo; use the pause fault "
        "(SIGSTOP, with a deadline, resumed at revert)",
        SignalName(signo)));
  }
  return absl::OkStatus();
}

absl::Status ValidatePause(const v1::FaultSpec& spec) {
  return ValidateSelection(ProcessSelection::Of(spec.pause()));
}

absl::Status ValidateFill(const v1::FaultSpec& spec) { return ValidateDiskFill(spec.disk_fill()); }

absl::Status ValidateTc(const v1::FaultSpec& spec) { return ParseTcSpec(spec).status(); }

absl::Status ValidatePartition(const v1::FaultSpec& spec) {
  const v1::PartitionFault& p = spec.partition();
  RETURN_IF_ERROR(KnownEnum("protocol", p.protocol(), v1::Protocol_IsValid));
  RETURN_IF_ERROR(KnownEnum("direction", p.direction(), v1::Direction_IsValid));
  if (p.peers().empty()) return absl::InvalidArgumentError("peers: at least one CIDR is required");
  RETURN_IF_ERROR(ParseCidrList("peers", {p.peers().begin(), p.peers().end()}).status());
  RETURN_IF_ERROR(ParseCidrList("keep", {p.keep().begin(), p.keep().end()}).status());
  return ParsePorts({p.ports().begin(), p.ports().end()}).status();
}

absl::Status ValidateDns(const v1::FaultSpec& spec) {
  RETURN_IF_ERROR(KnownEnum("direction", spec.dns().direction(), v1::Direction_IsValid));
  const auto& r = spec.dns().resolvers();
  return ParseCidrList("resolvers", {r.begin(), r.end()}).status();
}

std::vector<Flag> ProcessFlags(const std::string& kind_field) {
  const std::string p = kind_field + ".";
  return {
      {"process-name", p + "process.name", "exact process name (comm)"},
      {"pid", p + "process.pid", "process id"},
      {"cmdline", p + "process.cmdline", "regex searched in the command line"},
      {"pidfile", p + "process.pidfile", "file holding the pid"},
      {"cgroup", p + "process.cgroup", "cgroup v2 path"},
      {"mode", p + "mode", "one|all|count|percent (default one)"},
      {"count", p + "count", "processes to pick with --mode count"},
      {"percent", p + "percent", "share of processes to pick with --mode percent"},
  };
}

std::vector<Flag> NetnsFlags() {
  return {{"netns", "netns", "target network namespace: NAME or PATH"},
          {"netns-pid", "netns_pid", "use the network namespace of this pid"}};
}

std::vector<Flag> ShapeFlags(const std::string& kind_field) {
  std::vector<Flag> f = {
      {"interface", kind_field + ".interface", "network interface"},
      {"to", kind_field + ".to", "only traffic to CIDR[:PORT] (repeatable)", true},
  };
  for (auto& n : NetnsFlags()) f.push_back(n);
  return f;
}

std::vector<Flag> Concat(std::vector<Flag> a, const std::vector<Flag>& b) {
  a.insert(a.end(), b.begin(), b.end());
  return a;
}

std::vector<FaultKind> MakeKinds() {
  std::vector<FaultKind> kinds;
  kinds.push_back({"kill", "kill", v1::FaultSpec::kKill, false, false,
                   Concat(ProcessFlags("kill"),
                          {{"signal", "kill.signal", "KILL (default), TERM, INT, HUP, 15, ..."}}),
                   &ValidateKill});
  kinds.push_back({"pause", "pause", v1::FaultSpec::kPause, true, false, ProcessFlags("pause"),
                   &ValidatePause});
  kinds.push_back({"disk-fill", "disk_fill", v1::FaultSpec::kDiskFill, true, false,
                   {{"path", "disk_fill.path", "a folder on the filesystem to fill"},
                    {"percent", "disk_fill.percent", "fill until the filesystem is P% used"},
                    {"leave-free", "disk_fill.leave_free", "fill until SIZE is left free (e.g. 100M)"},
                    {"bytes", "disk_fill.bytes", "allocate SIZE (e.g. 1G)"}},
                   &ValidateFill});
  kinds.push_back({"netem", "netem", v1::FaultSpec::kNetem, true, true,
                   Concat(ShapeFlags("netem"),
                          {{"delay", "netem.delay", "added delay, e.g. 100ms"},
                           {"jitter", "netem.jitter", "delay jitter, e.g. 10ms"},
                           {"delay-correlation", "netem.delay_correlation", "e.g. 25%"},
                           {"loss", "netem.loss", "packet loss, e.g. 5%"},
                           {"duplicate", "netem.duplicate", "e.g. 1%"},
                           {"corrupt", "netem.corrupt", "e.g. 1%"},
                           {"reorder", "netem.reorder", "e.g. 25%"},
                           {"rate", "netem.rate", "e.g. 1mbit"}}),
                   &ValidateTc});
  kinds.push_back({"bandwidth", "bandwidth", v1::FaultSpec::kBandwidth, true, true,
                   Concat(ShapeFlags("bandwidth"),
                          {{"rate", "bandwidth.rate", "rate limit, e.g. 1mbit"}}),
                   &ValidateTc});
  kinds.push_back(
      {"partition", "partition", v1::FaultSpec::kPartition, true, true,
       Concat({{"peer", "partition.peers", "CIDR to cut off (repeatable)", true},
               {"port", "partition.ports", "only this port (repeatable)", true},
               {"protocol", "partition.protocol", "tcp|udp (default both)"},
               {"direction", "partition.direction", "both|ingress|egress (default both)"},
               {"reject", "partition.reject", "reject instead of silently dropping", false, true},
               {"keep", "partition.keep", "CIDR never cut, even inside a peer (repeatable)", true}},
              NetnsFlags()),
       &ValidatePartition});
  kinds.push_back(
      {"dns", "dns", v1::FaultSpec::kDns, true, true,
       Concat({{"resolver", "dns.resolvers", "resolver address (default: resolv.conf)", true},
               {"direction", "dns.direction", "both|ingress|egress (default both)"},
               {"reject", "dns.reject", "reject instead of silently dropping", false, true}},
              NetnsFlags()),
       &ValidateDns});
  // Every kind takes --duration, so that a kill given one hears why not.
  for (auto& k : kinds) {
    k.flags.push_back({"duration", "duration",
                       k.reversible ? "how long the fault lasts, e.g. 30s" : "(none: an action)"});
  }
  return kinds;
}

// "disk_fill." + a message relative to the kind's message, unless it already
// names the kind itself ("netem: give at least one of ...").
absl::Status UnderKind(const FaultKind& kind, const absl::Status& st) {
  if (st.ok()) return st;
  const std::string msg(st.message());
  if (msg.rfind(kind.field + ":", 0) == 0) return st;
  return absl::Status(st.code(), fmt::format("{}.{}", kind.field, msg));
}


// Appends "path=value" for every set field of `m`, depth first.
void DescribeFields(const Message& m, const std::string& prefix, std::vector<std::string>* out) {
  std::vector<const FieldDescriptor*> fields;
  m.GetReflection()->ListFields(m, &fields);
  for (const FieldDescriptor* f : fields) {
    const std::string path = prefix.empty() ? f->name() : prefix + "." + f->name();
    const auto* r = m.GetReflection();
    if (f->type() == FieldDescriptor::TYPE_MESSAGE && !f->is_repeated()) {
      DescribeFields(r->GetMessage(m, f), path, out);
      continue;
    }
    std::string value;
    if (f->is_repeated()) {
      std::vector<std::string> items;
      for (int i = 0; i < r->FieldSize(m, f); ++i) {
        items.push_back(f->cpp_type() == FieldDescriptor::CPPTYPE_STRING
                            ? r->GetRepeatedString(m, f, i)
                            : std::to_string(r->GetRepeatedUInt32(m, f, i)));
      }
      value = absl::StrJoin(items, ",");
    } else {
      switch (f->cpp_type()) {
        case FieldDescriptor::CPPTYPE_STRING: value = r->GetString(m, f); break;
        case FieldDescriptor::CPPTYPE_INT32: value = std::to_string(r->GetInt32(m, f)); break;
        case FieldDescriptor::CPPTYPE_DOUBLE: value = fmt::format("{:g}", r->GetDouble(m, f)); break;
        case FieldDescriptor::CPPTYPE_BOOL: value = r->GetBool(m, f) ? "true" : "false"; break;
        case FieldDescriptor::CPPTYPE_ENUM: value = ShortEnumName(*r->GetEnum(m, f)); break;
        default: value = "?";
      }
    }
    out->push_back(fmt::format("{}={}", path, value));
  }
}

}  // namespace

const std::vector<FaultKind>& Kinds() {
  static const std::vector<FaultKind> kinds = MakeKinds();
  return kinds;
}

std::string KindNames() {
  std::vector<std::string> names;
  for (const auto& k : Kinds()) names.push_back(k.name);
  return absl::StrJoin(names, ", ");
}

const FaultKind* KindOf(const v1::FaultSpec& spec) {
  for (const auto& k : Kinds()) {
    if (k.kind_case == spec.kind_case()) return &k;
  }
  return nullptr;
}

const FaultKind& KindFor(v1::FaultSpec::KindCase kind_case) {
  for (const auto& k : Kinds()) {
    if (k.kind_case == kind_case) return k;
  }
  std::abort();  // every case of the oneof has an entry in MakeKinds
}

const FaultKind* FindKind(const std::string& name) {
  for (const auto& k : Kinds()) {
    if (k.name == name || k.field == name) return &k;
  }
  return nullptr;
}

std::string KindName(const v1::FaultSpec& spec) {
  const FaultKind* k = KindOf(spec);
  return k == nullptr ? std::string() : k->name;
}

absl::StatusOr<Checked> Validate(const v1::FaultSpec& spec) {
  Checked out;
  out.kind = KindOf(spec);
  if (out.kind == nullptr) {
    return absl::InvalidArgumentError(
        fmt::format("kind: give one fault kind ({})", absl::StrJoin(
            [] {
              std::vector<std::string> f;
              for (const auto& k : Kinds()) f.push_back(k.field);
              return f;
            }(),
            ", ")));
  }
  const FaultKind& kind = *out.kind;
  if (kind.reversible) {
    if (spec.duration().empty()) {
      return absl::InvalidArgumentError(
          fmt::format("duration: required for {} (e.g. 30s)", kind.name));
    }
    ASSIGN_OR_RETURN(out.duration, ParseDuration("duration", spec.duration()));
    if (out.duration.count() <= 0) return absl::InvalidArgumentError("duration: must be greater than 0");
    if (out.duration > kMaxFaultDuration) {
      return absl::InvalidArgumentError(fmt::format(
          "duration: at most {} (a fault is an experiment, not a state), got {}",
          FormatDuration(kMaxFaultDuration), spec.duration()));
    }
  } else if (!spec.duration().empty()) {
    return absl::InvalidArgumentError(
        fmt::format("duration: {} is a one-off action and takes no duration", kind.name));
  }
  if (kind.network) {
    RETURN_IF_ERROR(ValidateNetnsFields(spec));
  } else if (!spec.netns().empty() || spec.netns_pid() != 0) {
    return absl::InvalidArgumentError(fmt::format(
        "{}: only network faults take a network namespace, not {}",
        spec.netns().empty() ? "netns_pid" : "netns", kind.name));
  }
  RETURN_IF_ERROR(UnderKind(kind, kind.validate(spec)));
  return out;
}

absl::Status QualifyField(const FaultKind& kind, const absl::Status& st) {
  if (st.ok()) return st;
  const std::string msg(st.message());
  const size_t end = msg.find_first_of(".[: ");
  if (end == std::string::npos || end == 0) return st;
  const FieldDescriptor* kind_field = v1::FaultSpec::descriptor()->FindFieldByName(kind.field);
  if (kind_field == nullptr || kind_field->message_type()->FindFieldByName(msg.substr(0, end)) == nullptr) {
    return st;
  }
  return absl::Status(st.code(), fmt::format("{}.{}", kind.field, msg));
}

v1::FaultSpec FromExperimentFault(const v1::ExperimentFault& fault) {
  // ExperimentFault is FaultSpec plus `on` (field 1, unknown to FaultSpec);
  // the shared fields have the same numbers (a unit test checks it).
  v1::FaultSpec spec;
  spec.ParseFromString(fault.SerializeAsString());
  spec.GetReflection()->MutableUnknownFields(&spec)->Clear();
  return spec;
}

namespace {

// A flag's values go into proto string fields, which must be UTF-8: refused
// here naming the flag, rather than by protobuf naming nothing.
absl::Status CheckFlagUtf8(const Flag& flag, const std::vector<std::string>& items) {
  for (const std::string& v : items) {
    if (!IsValidUtf8(v)) {
      return absl::InvalidArgumentError(
          fmt::format("--{}: \"{}\" is not valid UTF-8", flag.name, Printable(v)));
    }
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<v1::FaultSpec> BuildFromFlags(
    const FaultKind& kind,
    const std::vector<std::pair<const Flag*, std::vector<std::string>>>& values) {
  YAML::Node root(YAML::NodeType::Map);
  root[kind.field] = YAML::Node(YAML::NodeType::Map);
  for (const auto& [flag, items] : values) {
    if (items.empty()) continue;
    RETURN_IF_ERROR(CheckFlagUtf8(*flag, items));
    std::vector<std::string> parts = absl::StrSplit(flag->field, '.');
    YAML::Node node = root;
    for (size_t i = 0; i + 1 < parts.size(); ++i) {
      if (!node[parts[i]]) node[parts[i]] = YAML::Node(YAML::NodeType::Map);
      node.reset(node[parts[i]]);
    }
    if (flag->repeated) {
      YAML::Node list(YAML::NodeType::Sequence);
      for (const auto& v : items) list.push_back(v);
      node[parts.back()] = list;
    } else {
      node[parts.back()] = items.back();
    }
  }
  v1::FaultSpec spec;
  RETURN_IF_ERROR(YamlNodeToMessage(root, &spec));
  return spec;
}

std::string Describe(const v1::FaultSpec& spec) {
  const FaultKind* kind = KindOf(spec);
  std::vector<std::string> parts = {kind == nullptr ? "(no kind)" : kind->name};
  if (kind != nullptr) {
    const auto* r = spec.GetReflection();
    const FieldDescriptor* f = spec.GetDescriptor()->FindFieldByName(kind->field);
    DescribeFields(r->GetMessage(spec, f), "", &parts);
  }
  if (!spec.duration().empty()) parts.push_back("duration=" + spec.duration());
  if (!spec.netns().empty()) parts.push_back("netns=" + spec.netns());
  if (spec.netns_pid() != 0) parts.push_back(fmt::format("netns_pid={}", spec.netns_pid()));
  return absl::StrJoin(parts, " ");
}

}  // namespace faultline::spec
