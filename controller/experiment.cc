#include "controller/experiment.h"

#include <fmt/format.h>
#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <regex>
#include <set>

#include "probes/probe.h"
#include "common/endpoint.h"
#include "common/units.h"
#include "common/yaml_proto.h"

namespace faultline::controller {
namespace {

constexpr std::chrono::nanoseconds kMinProbeInterval = std::chrono::milliseconds(10);
constexpr std::chrono::nanoseconds kDefaultProbeInterval = std::chrono::seconds(1);

// Moves the flat FaultSpec fields of every `faults:` entry under `spec`, so the
// YAML matches ExperimentFault. Returns a copy; `root` is not changed.
YAML::Node NestFaultSpecs(const YAML::Node& root) {
  if (!root.IsMap()) return root;
  const YAML::Node faults = root["faults"];
  if (!faults || !faults.IsSequence()) return root;
  YAML::Node nested(YAML::NodeType::Sequence);
  for (const auto& f : faults) {
    if (!f.IsMap()) {
      nested.push_back(f);
      continue;
    }
    YAML::Node entry(YAML::NodeType::Map);
    YAML::Node spec(YAML::NodeType::Map);
    for (const auto& kv : f) {
      const std::string key = kv.first.Scalar();
      if (key == "on") {
        entry["on"] = kv.second;
      } else {
        spec[key] = kv.second;
      }
    }
    entry["spec"] = spec;
    nested.push_back(entry);
  }
  YAML::Node out(YAML::NodeType::Map);
  for (const auto& kv : root) {
    const std::string key = kv.first.Scalar();
    out[key] = key == "faults" ? nested : kv.second;
  }
  return out;
}

// Rewrites "faults[3].spec.x" paths back to the flat form the user wrote.
std::string FlattenFaultPaths(const std::string& message) {
  static const std::regex kSpecPath(R"(faults\[(\d+)\]\.spec\.)");
  static const std::regex kUnknown(R"(^(faults\[\d+\]\.[A-Za-z0-9_]+: unknown field \(known: ))");
  std::string out;
  size_t start = 0;
  while (start <= message.size()) {
    size_t end = message.find('\n', start);
    if (end == std::string::npos) end = message.size();
    std::string line = std::regex_replace(message.substr(start, end - start), kSpecPath,
                                          "faults[$1].");
    line = std::regex_replace(line, kUnknown, "$1on, ");
    out += (out.empty() ? "" : "\n") + line;
    start = end + 1;
  }
  return out;
}

std::string JoinLines(const std::vector<std::string>& lines) {
  std::string out;
  for (const auto& l : lines) out += (out.empty() ? "" : "\n") + l;
  return out;
}

bool ValidName(const std::string& s) {
  static const std::regex kName("^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$");
  return std::regex_match(s, kName);
}

// Parses `text` as a duration into `out`; records the problem under `path`.
bool CheckDuration(const std::string& path, const std::string& text, bool required,
                   std::vector<std::string>* problems, std::chrono::nanoseconds* out = nullptr) {
  if (text.empty()) {
    if (required) problems->push_back(fmt::format("{}: required (e.g. \"30s\")", path));
    return false;
  }
  auto d = ParseDuration(path, text);
  if (!d.ok()) {
    problems->push_back(std::string(d.status().message()));
    return false;
  }
  if (out != nullptr) *out = *d;
  return true;
}

void CheckSize(const std::string& path, const std::string& text,
               std::vector<std::string>* problems) {
  if (text.empty()) return;
  auto s = ParseSize(path, text);
  if (!s.ok()) problems->push_back(std::string(s.status().message()));
}

void ValidateFaultFields(const std::string& path, const v1::FaultSpec& spec,
                         std::vector<std::string>* problems) {
  const std::string& kind = spec.kind();
  if (kind == "kill" || kind == "pause") {
    const auto& p = spec.process();
    if (p.pid() == 0 && p.name().empty() && p.cmdline().empty() && p.pidfile().empty() &&
        p.cgroup().empty()) {
      problems->push_back(fmt::format(
          "{}.process: needs at least one of pid, name, cmdline, pidfile, cgroup", path));
    }
    if (!p.cmdline().empty()) {
      try {
        std::regex re(p.cmdline());
      } catch (const std::regex_error& e) {
        problems->push_back(fmt::format("{}.process.cmdline: invalid regex: {}", path, e.what()));
      }
    }
    static const std::set<std::string> kModes = {"", "one", "all", "count", "percent"};
    if (!kModes.contains(spec.mode())) {
      problems->push_back(fmt::format(
          "{}.mode: must be one, all, count or percent, got \"{}\"", path, spec.mode()));
    }
    if (spec.mode() == "count" && spec.count() <= 0) {
      problems->push_back(fmt::format("{}.count: must be at least 1 with mode count", path));
    }
    if (spec.mode() == "percent" &&
        (!spec.has_percent() || spec.percent() <= 0 || spec.percent() > 100)) {
      problems->push_back(
          fmt::format("{}.percent: must be between 1 and 100 with mode percent", path));
    }
    if (kind == "pause" && !spec.signal().empty()) {
      problems->push_back(fmt::format("{}.signal: only for kind kill", path));
    }
    if (kind == "kill" && !spec.signal().empty()) {
      static const std::set<std::string> kSignals = {"KILL", "TERM", "INT", "HUP", "QUIT",
                                                     "ABRT", "USR1", "USR2", "SIGKILL",
                                                     "SIGTERM", "SIGINT", "SIGHUP", "SIGQUIT",
                                                     "SIGABRT", "SIGUSR1", "SIGUSR2"};
      if (!kSignals.contains(spec.signal())) {
        problems->push_back(fmt::format("{}.signal: unknown signal \"{}\"", path, spec.signal()));
      }
    }
  } else if (kind == "disk-fill") {
    if (spec.path().empty() || spec.path()[0] != '/') {
      problems->push_back(fmt::format("{}.path: must be an absolute directory path", path));
    }
    int how = (spec.has_percent() ? 1 : 0) + (spec.leave_free().empty() ? 0 : 1) +
              (spec.bytes().empty() ? 0 : 1);
    if (how != 1) {
      problems->push_back(
          fmt::format("{}: needs exactly one of percent, leave_free, bytes", path));
    }
    if (spec.has_percent() && (spec.percent() <= 0 || spec.percent() > 100)) {
      problems->push_back(fmt::format("{}.percent: must be between 1 and 100, got {}", path,
                                      spec.percent()));
    }
    CheckSize(path + ".leave_free", spec.leave_free(), problems);
    CheckSize(path + ".bytes", spec.bytes(), problems);
  } else if (kind == "netem" || kind == "bandwidth") {
    if (spec.interface().empty()) {
      problems->push_back(fmt::format("{}.interface: required for kind {}", path, kind));
    }
    if (kind == "bandwidth" && spec.rate().empty()) {
      problems->push_back(fmt::format("{}.rate: required for kind bandwidth", path));
    }
    if (!spec.rate().empty()) {
      auto r = ParseRate(path + ".rate", spec.rate());
      if (!r.ok()) problems->push_back(std::string(r.status().message()));
    }
    if (!spec.delay().empty()) CheckDuration(path + ".delay", spec.delay(), false, problems);
    if (!spec.jitter().empty()) CheckDuration(path + ".jitter", spec.jitter(), false, problems);
    for (const auto& [name, value] :
         {std::pair{"loss", spec.loss()}, std::pair{"duplicate", spec.duplicate()},
          std::pair{"corrupt", spec.corrupt()}, std::pair{"reorder", spec.reorder()},
          std::pair{"delay_correlation", spec.delay_correlation()}}) {
      if (value.empty()) continue;
      auto p = ParsePercent(fmt::format("{}.{}", path, name), value);
      if (!p.ok()) problems->push_back(std::string(p.status().message()));
    }
    if (kind == "netem" && spec.delay().empty() && spec.loss().empty() &&
        spec.duplicate().empty() && spec.corrupt().empty() && spec.reorder().empty() &&
        spec.rate().empty()) {
      problems->push_back(fmt::format(
          "{}: netem needs at least one of delay, loss, duplicate, corrupt, reorder, rate",
          path));
    }
  } else if (kind == "partition") {
    if (spec.peers().empty()) {
      problems->push_back(fmt::format("{}.peers: required for kind partition", path));
    }
  }
  if (kind == "partition" || kind == "dns") {
    static const std::set<std::string> kDirections = {"", "both", "ingress", "egress"};
    if (!kDirections.contains(spec.direction())) {
      problems->push_back(fmt::format("{}.direction: must be both, ingress or egress, got \"{}\"",
                                      path, spec.direction()));
    }
    static const std::set<std::string> kProtocols = {"", "tcp", "udp"};
    if (!kProtocols.contains(spec.protocol())) {
      problems->push_back(
          fmt::format("{}.protocol: must be tcp or udp, got \"{}\"", path, spec.protocol()));
    }
  }
}

}  // namespace

const std::vector<std::string>& KnownFaultKinds() {
  static const std::vector<std::string> kKinds = {"kill",      "pause",     "disk-fill", "netem",
                                                  "bandwidth", "partition", "dns"};
  return kKinds;
}

absl::StatusOr<v1::Experiment> ParseExperimentYaml(const std::string& yaml) {
  YAML::Node root;
  try {
    root = YAML::Load(yaml);
  } catch (const YAML::Exception& e) {
    return absl::InvalidArgumentError(
        fmt::format("line {}, column {}: {}", e.mark.line + 1, e.mark.column + 1, e.msg));
  }
  if (!root.IsMap()) {
    return absl::InvalidArgumentError("(top): expected a mapping with name, targets, probes, "
                                      "faults, objectives, duration");
  }
  YAML::Emitter out;
  out << NestFaultSpecs(root);
  v1::Experiment exp;
  absl::Status st = YamlToMessage(out.c_str(), &exp);
  if (!st.ok()) {
    return absl::Status(st.code(), FlattenFaultPaths(std::string(st.message())));
  }
  return exp;
}

std::vector<std::string> ValidateExperiment(const v1::Experiment& exp) {
  std::vector<std::string> problems;
  if (exp.name().empty()) {
    problems.push_back("name: required");
  } else if (!ValidName(exp.name())) {
    problems.push_back(fmt::format(
        "name: letters, digits, '.', '_' and '-' only (at most 63), got \"{}\"", exp.name()));
  }

  // Targets.
  if (exp.targets().empty()) problems.push_back("targets: at least one target is required");
  std::vector<std::string> target_names;
  for (const auto& [name, _] : exp.targets()) target_names.push_back(name);
  std::sort(target_names.begin(), target_names.end());
  for (const auto& name : target_names) {
    const v1::TargetSelector& t = exp.targets().at(name);
    const std::string path = "targets." + name;
    if (name == kFromController) {
      problems.push_back(fmt::format("{}: \"{}\" is reserved for probes run by the controller",
                                     path, kFromController));
    }
    if (t.labels().empty() && t.names().empty()) {
      problems.push_back(fmt::format("{}: needs labels or names (an empty selector would pick "
                                     "every agent)", path));
    }
    if (t.count() < 0) {
      problems.push_back(fmt::format("{}.count: must be at least 1, got {}", path, t.count()));
    }
    if (t.has_percent() && (t.percent() <= 0 || t.percent() > 100)) {
      problems.push_back(fmt::format("{}.percent: must be between 1 and 100, got {}", path,
                                     t.percent()));
    }
    if (t.count() > 0 && t.has_percent()) {
      problems.push_back(fmt::format("{}: count and percent are exclusive", path));
    }
  }
  auto known_target = [&](const std::string& n) { return exp.targets().contains(n); };
  auto known_list = [&] {
    std::string s;
    for (const auto& n : target_names) s += (s.empty() ? "" : ", ") + n;
    return s.empty() ? std::string("none defined") : s;
  };

  // Probes.
  if (exp.probes().empty()) problems.push_back("probes: at least one probe is required");
  std::set<std::string> probe_names;
  for (int i = 0; i < exp.probes_size(); ++i) {
    const v1::ExperimentProbe& p = exp.probes(i);
    const std::string path = fmt::format("probes[{}]", i);
    const size_t before = problems.size();
    if (p.name().empty()) {
      problems.push_back(path + ".name: required");
    } else if (!probe_names.insert(p.name()).second) {
      problems.push_back(fmt::format("{}.name: \"{}\" is used twice", path, p.name()));
    }
    if (!p.from().empty() && p.from() != kFromController && !known_target(p.from())) {
      problems.push_back(fmt::format("{}.from: unknown target \"{}\" (targets: {}; or {})", path,
                                     p.from(), known_list(), kFromController));
    }
    int checks = (p.has_tcp() ? 1 : 0) + (p.has_http() ? 1 : 0) + (p.has_exec() ? 1 : 0) +
                 (p.has_grpc_health() ? 1 : 0);
    if (checks != 1) {
      problems.push_back(fmt::format(
          "{}: needs exactly one of tcp, http, exec, grpc_health, got {}", path, checks));
    }
    if (p.has_tcp()) {
      auto ep = ParseEndpoint(path + ".tcp.address", p.tcp().address());
      if (p.tcp().address().empty()) {
        problems.push_back(path + ".tcp.address: required (HOST:PORT)");
      } else if (!ep.ok() || ep->is_unix) {
        problems.push_back(fmt::format("{}.tcp.address: expected HOST:PORT, got \"{}\"", path,
                                       p.tcp().address()));
      }
    }
    if (p.has_http()) {
      if (p.http().url().rfind("http://", 0) != 0) {
        problems.push_back(fmt::format("{}.http.url: must start with http://, got \"{}\"", path,
                                       p.http().url()));
      }
      if (p.http().expect_status() != 0 &&
          (p.http().expect_status() < 100 || p.http().expect_status() > 599)) {
        problems.push_back(fmt::format("{}.http.expect_status: must be 100..599, got {}", path,
                                       p.http().expect_status()));
      }
    }
    if (p.has_exec() && p.exec().argv().empty()) {
      problems.push_back(path + ".exec.argv: must not be empty");
    }
    if (p.has_grpc_health() && p.grpc_health().address().empty()) {
      problems.push_back(path + ".grpc_health.address: required");
    }
    std::chrono::nanoseconds interval = kDefaultProbeInterval;
    if (CheckDuration(path + ".interval", p.interval(), false, &problems, &interval) &&
        interval < kMinProbeInterval) {
      problems.push_back(fmt::format("{}.interval: must be at least 10ms, got {}", path,
                                     p.interval()));
    }
    CheckDuration(path + ".timeout", p.timeout(), false, &problems);
    // The probe library's own checks (URL syntax, timeout bounds...), when ours
    // found nothing: the same code validates it on the agent.
    if (problems.size() == before) {
      auto probe = MakeProbe(ToProbeSpec(p));
      if (!probe.ok()) problems.push_back(fmt::format("{}.{}", path, std::string(probe.status().message())));
    }
  }

  // Faults.
  if (exp.faults().empty()) problems.push_back("faults: at least one fault is required");
  std::chrono::nanoseconds duration{0};
  bool have_duration = CheckDuration("duration", exp.duration(), true, &problems, &duration);
  if (have_duration && duration.count() == 0) problems.push_back("duration: must be above 0");
  for (int i = 0; i < exp.faults_size(); ++i) {
    const v1::ExperimentFault& f = exp.faults(i);
    const std::string path = fmt::format("faults[{}]", i);
    if (f.on().empty()) {
      problems.push_back(fmt::format("{}.on: required (targets: {})", path, known_list()));
    } else if (!known_target(f.on())) {
      problems.push_back(
          fmt::format("{}.on: unknown target \"{}\" (targets: {})", path, f.on(), known_list()));
    }
    const auto& kinds = KnownFaultKinds();
    if (f.spec().kind().empty()) {
      problems.push_back(path + ".kind: required");
    } else if (std::find(kinds.begin(), kinds.end(), f.spec().kind()) == kinds.end()) {
      std::string all;
      for (const auto& k : kinds) all += (all.empty() ? "" : ", ") + k;
      problems.push_back(
          fmt::format("{}.kind: unknown kind \"{}\" (known: {})", path, f.spec().kind(), all));
    } else {
      ValidateFaultFields(path, f.spec(), &problems);
    }
    std::chrono::nanoseconds fd{0};
    if (!f.spec().duration().empty()) {
      if (f.spec().kind() == "kill") {
        problems.push_back(path + ".duration: kill is an action and has no duration");
      } else if (CheckDuration(path + ".duration", f.spec().duration(), false, &problems, &fd) &&
                 have_duration && fd > duration) {
        problems.push_back(fmt::format("{}.duration: {} is longer than the experiment's duration {}",
                                       path, f.spec().duration(), exp.duration()));
      }
    }
  }

  // Objectives.
  CheckDuration("objectives.rto", exp.objectives().rto(), true, &problems);
  if (exp.objectives().recovered_after() < 0) {
    problems.push_back(fmt::format("objectives.recovered_after: must be at least 1, got {}",
                                   exp.objectives().recovered_after()));
  }
  return problems;
}

absl::StatusOr<v1::Experiment> LoadExperiment(const std::string& yaml) {
  auto exp = ParseExperimentYaml(yaml);
  if (!exp.ok()) return exp.status();
  auto problems = ValidateExperiment(*exp);
  if (!problems.empty()) return absl::InvalidArgumentError(JoinLines(problems));
  return exp;
}

absl::StatusOr<v1::Experiment> LoadExperimentFile(const std::string& path) {
  auto text = ReadFileToString(path);
  if (!text.ok()) return text.status();
  return LoadExperiment(*text);
}

v1::ProbeSpec ToProbeSpec(const v1::ExperimentProbe& probe) {
  v1::ProbeSpec spec;
  spec.set_name(probe.name());
  if (probe.has_tcp()) *spec.mutable_tcp() = probe.tcp();
  if (probe.has_http()) *spec.mutable_http() = probe.http();
  if (probe.has_exec()) *spec.mutable_exec() = probe.exec();
  if (probe.has_grpc_health()) *spec.mutable_grpc_health() = probe.grpc_health();
  spec.set_interval(probe.interval());
  spec.set_timeout(probe.timeout());
  return spec;
}

namespace {
std::chrono::nanoseconds DurationOr(const std::string& text, std::chrono::nanoseconds dflt) {
  if (text.empty()) return dflt;
  auto d = ParseDuration("", text);
  return d.ok() ? *d : dflt;
}
}  // namespace

std::chrono::nanoseconds ExperimentDuration(const v1::Experiment& exp) {
  return DurationOr(exp.duration(), std::chrono::nanoseconds(0));
}
std::chrono::nanoseconds RtoTarget(const v1::Experiment& exp) {
  return DurationOr(exp.objectives().rto(), std::chrono::nanoseconds(0));
}
std::chrono::nanoseconds ProbeInterval(const v1::ExperimentProbe& probe) {
  return DurationOr(probe.interval(), kDefaultProbeInterval);
}
int RecoveredAfter(const v1::Experiment& exp) {
  return exp.objectives().recovered_after() > 0 ? exp.objectives().recovered_after()
                                                : kDefaultRecoveredAfter;
}

}  // namespace faultline::controller
