#include "controller/experiment.h"

#include <fmt/format.h>
#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <tuple>
#include <set>

#include "absl/strings/ascii.h"
#include "absl/strings/str_join.h"
#include "common/endpoint.h"
#include "common/status_macros.h"
#include "common/text.h"
#include "common/units.h"
#include "common/yaml_proto.h"
#include "controller/drill_spec.h"
#include "controller/targets.h"
#include "controller/zone_outage.h"
#include "probes/probe.h"
#include "spec/fault_spec.h"
#include "workload/data_driver.h"

namespace faultline::controller {
namespace {

constexpr std::chrono::nanoseconds kMinProbeInterval = std::chrono::milliseconds(10);
constexpr std::chrono::nanoseconds kDefaultProbeInterval = std::chrono::seconds(1);

// An old flat entry (`kind: kill` beside `on`) as the new form: the kind is a
// key holding its own fields. Returns "" when `entry` has no `kind:` key.
std::string OldFormHint(const YAML::Node& entry) {
  if (!entry.IsMap() || !entry["kind"] || !entry["kind"].IsScalar()) return "";
  const std::string kind = entry["kind"].Scalar();
  const spec::FaultKind* k = spec::FindKind(kind);
  YAML::Node shared(YAML::NodeType::Map);
  YAML::Node own(YAML::NodeType::Map);
  for (const auto& kv : entry) {
    const std::string key = kv.first.Scalar();
    if (key == "kind") continue;
    if (key == "on" || key == "duration" || key == "netns" || key == "netns_pid") {
      shared[key] = kv.second;
    } else {
      own[key] = kv.second;
    }
  }
  shared[k != nullptr ? k->field : kind] = own;
  YAML::Emitter out;
  out << YAML::Flow << shared;
  return out.c_str();
}

// Refuses the flat form of earlier versions with the new form of each entry.
std::vector<std::string> OldFormProblems(const YAML::Node& root) {
  std::vector<std::string> problems;
  const YAML::Node faults = root["faults"];
  if (!faults || !faults.IsSequence()) return problems;
  for (size_t i = 0; i < faults.size(); ++i) {
    const std::string hint = OldFormHint(faults[i]);
    if (hint.empty()) continue;
    problems.push_back(fmt::format(
        "faults[{}].kind: the kind is now a key holding its fields; write - {}", i, hint));
  }
  return problems;
}

std::string JoinLines(const std::vector<std::string>& lines) { return absl::StrJoin(lines, "\n"); }

// At most this many targets, probes, faults or stop conditions in one file,
// and consecutive samples for `recovered_after`.
constexpr int kMaxEntries = 64;
// Each data workload is a writer thread and a connection for the whole run.
constexpr int kMaxDataWorkloads = 8;
constexpr int kMaxRecoveredAfter = 1000;

// [A-Za-z0-9][A-Za-z0-9_.-]{0,62}, without std::regex (recursive: a long
// input would cost stack).
bool ValidName(const std::string& s) {
  if (s.empty() || s.size() > 63 || !absl::ascii_isalnum(static_cast<unsigned char>(s[0]))) {
    return false;
  }
  return std::all_of(s.begin(), s.end(), [](char c) {
    return absl::ascii_isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '.' || c == '-';
  });
}

// A probe's or a data workload's `from` (at `path`): the controller, or a
// target of the experiment.
void CheckFrom(const std::string& path, const std::string& from, const v1::Experiment& exp,
               std::vector<std::string>* problems) {
  if (from.empty() || from == kFromController || exp.targets().contains(from)) return;
  std::vector<std::string> names;
  for (const auto& [name, _] : exp.targets()) names.push_back(name);
  std::sort(names.begin(), names.end());
  problems->push_back(fmt::format("{}.from: unknown target \"{}\" (targets: {}; or {})", path,
                                  Printable(from),
                                  names.empty() ? std::string("none defined") : absl::StrJoin(names, ", "),
                                  kFromController));
}

// Data workloads (workload/data_driver.h) and the objectives that need them.
void ValidateData(const v1::Experiment& exp, std::vector<std::string>* problems) {
  std::set<std::string> names;
  for (int i = 0; i < exp.data_size(); ++i) {
    const std::string path = fmt::format("data[{}]", i);
    auto settings = workload::ValidateDataWorkload(path, exp.data(i));
    if (!settings.ok()) problems->push_back(std::string(settings.status().message()));
    CheckFrom(path, exp.data(i).from(), exp, problems);
    if (!names.insert(exp.data(i).name()).second) {
      problems->push_back(fmt::format("{}.name: \"{}\" is used twice", path, Printable(exp.data(i).name())));
    }
  }
  std::chrono::nanoseconds rpo{0};
  if (CheckDuration("objectives.rpo", exp.objectives().rpo(), false, problems, &rpo) &&
      rpo > spec::kMaxFaultDuration) {
    problems->push_back(fmt::format("objectives.rpo: at most {}, got {}",
                                    FormatDuration(spec::kMaxFaultDuration), exp.objectives().rpo()));
  }
  if (exp.objectives().has_max_lost_writes() && exp.objectives().max_lost_writes() < 0) {
    problems->push_back(fmt::format("objectives.max_lost_writes: must be at least 0, got {}",
                                    exp.objectives().max_lost_writes()));
  }
  if (exp.data().empty() &&
      (!exp.objectives().rpo().empty() || exp.objectives().has_max_lost_writes())) {
    problems->push_back(
        "objectives.rpo: measured by a data workload; add one under data (docs/experiments.md)");
  }
}

// A zone_outage entry: it picks its agents by zone (no `on`), and its own
// fields follow controller/zone_outage.h.
void ValidateZoneOutageEntry(const std::string& path, const v1::ExperimentFault& f,
                             std::vector<std::string>* problems) {
  if (!f.on().empty()) {
    problems->push_back(fmt::format(
        "{}.on: a zone_outage picks its agents by their zone label; remove on", path));
  }
  if (!f.netns().empty() || f.netns_pid() != 0) {
    problems->push_back(fmt::format("{}.netns: not for a zone_outage", path));
  }
  absl::Status st = ValidateZoneOutage(f.zone_outage());
  if (!st.ok()) {
    problems->push_back(fmt::format("{}.zone_outage.{}", path, std::string(st.message())));
  }
}

}  // namespace

bool CheckDuration(const std::string& path, const std::string& text, bool required,
                   std::vector<std::string>* problems, std::chrono::nanoseconds* out) {
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

absl::StatusOr<v1::Experiment> ParseExperimentYaml(const std::string& yaml) {
  absl::StatusOr<YAML::Node> loaded = LoadBoundedYaml(yaml);
  if (!loaded.ok()) return loaded.status();
  const YAML::Node& root = *loaded;
  if (!root.IsMap()) {
    return absl::InvalidArgumentError("(top): expected a mapping with name, targets, probes, "
                                      "faults, objectives, duration");
  }
  if (auto old = OldFormProblems(root); !old.empty()) {
    return absl::InvalidArgumentError(JoinLines(old));
  }
  v1::Experiment exp;
  RETURN_IF_ERROR(YamlNodeToMessage(root, &exp));
  return exp;
}

std::vector<std::string> ValidateExperiment(const v1::Experiment& exp) {
  std::vector<std::string> problems;
  if (exp.name().empty()) {
    problems.push_back("name: required");
  } else if (!ValidName(exp.name())) {
    problems.push_back(fmt::format(
        "name: letters, digits, '.', '_' and '-' only (at most 63), got \"{}\"", Printable(exp.name())));
  }

  // Sizes: what one experiment may hold.
  for (const auto& [field, size, max] :
       {std::tuple<const char*, int, int>{"targets", exp.targets_size(), kMaxEntries},
        {"probes", exp.probes_size(), kMaxEntries},
        {"faults", exp.faults_size(), kMaxEntries},
        {"stop_when", exp.stop_when_size(), kMaxEntries},
        {"data", exp.data_size(), kMaxDataWorkloads}}) {
    if (size > max) problems.push_back(fmt::format("{}: at most {}, got {}", field, max, size));
  }

  // Targets.
  const bool only_zone_outages =
      !exp.faults().empty() && std::all_of(exp.faults().begin(), exp.faults().end(),
                                           [](const auto& f) { return f.has_zone_outage(); });
  if (exp.targets().empty() && !only_zone_outages) {
    problems.push_back("targets: at least one target is required");
  }
  std::vector<std::string> target_names;
  for (const auto& [name, _] : exp.targets()) target_names.push_back(name);
  std::sort(target_names.begin(), target_names.end());
  for (const auto& name : target_names) {
    const v1::TargetSelector& t = exp.targets().at(name);
    const std::string path = "targets." + name;
    if (!ValidName(name)) {
      problems.push_back(fmt::format(
          "targets: names are letters, digits, '.', '_' and '-' (at most 63), got \"{}\"",
          Printable(name)));
      continue;
    }
    if (name == kFromController) {
      problems.push_back(fmt::format("{}: \"{}\" is reserved for probes run by the controller",
                                     path, kFromController));
    }
    if (t.labels().empty() && t.names().empty() && t.selector().empty()) {
      problems.push_back(fmt::format("{}: needs labels or names, or a selector (an empty target "
                                     "would pick every agent)", path));
    }
    if (!t.selector().empty()) {
      if (auto parsed = ParseLabelSelector(t.selector()); !parsed.ok()) {
        problems.push_back(fmt::format("{}.selector: {}", path, std::string(parsed.status().message())));
      }
    }
    for (int i = 0; i < t.exclude_size(); ++i) {
      if (t.exclude(i).empty()) problems.push_back(fmt::format("{}.exclude[{}]: empty agent name", path, i));
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
  // A restore drill takes its own fields only (controller/drill_spec.h).
  if (exp.has_drill()) {
    ValidateDrillExperiment(exp, &problems);
    return problems;
  }
  auto known_target = [&](const std::string& n) { return exp.targets().contains(n); };
  auto known_list = [&] {
    return target_names.empty() ? std::string("none defined") : absl::StrJoin(target_names, ", ");
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
    } else if (!ValidName(p.name())) {
      problems.push_back(fmt::format(
          "{}.name: letters, digits, '.', '_' and '-' only (at most 63), got \"{}\"", path,
          Printable(p.name())));
    } else if (!probe_names.insert(p.name()).second) {
      problems.push_back(fmt::format("{}.name: \"{}\" is used twice", path, Printable(p.name())));
    }
    CheckFrom(path, p.from(), exp, &problems);
    int checks = (p.has_tcp() ? 1 : 0) + (p.has_http() ? 1 : 0) + (p.has_exec() ? 1 : 0) +
                 (p.has_grpc_health() ? 1 : 0) + (p.has_redis() ? 1 : 0);
    if (checks != 1) {
      problems.push_back(fmt::format(
          "{}: needs exactly one of tcp, http, exec, grpc_health, redis, got {}", path, checks));
    }
    if (p.has_tcp()) {
      auto ep = ParseEndpoint(path + ".tcp.address", p.tcp().address());
      if (p.tcp().address().empty()) {
        problems.push_back(path + ".tcp.address: required (HOST:PORT)");
      } else if (!ep.ok() || ep->is_unix) {
        problems.push_back(fmt::format("{}.tcp.address: expected HOST:PORT, got \"{}\"", path,
                                       Printable(p.tcp().address())));
      }
    }
    if (p.has_http()) {
      if (p.http().url().rfind("http://", 0) != 0) {
        problems.push_back(fmt::format("{}.http.url: must start with http://, got \"{}\"", path,
                                       Printable(p.http().url())));
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
      const absl::Status probe = ValidateProbe(ToProbeSpec(p));
      if (!probe.ok()) problems.push_back(fmt::format("{}.{}", path, std::string(probe.message())));
    }
  }

  // Faults.
  if (exp.faults().empty()) problems.push_back("faults: at least one fault is required");
  std::chrono::nanoseconds duration{0};
  bool have_duration = CheckDuration("duration", exp.duration(), true, &problems, &duration);
  if (have_duration && duration.count() == 0) problems.push_back("duration: must be above 0");
  if (have_duration && duration > spec::kMaxFaultDuration) {
    problems.push_back(fmt::format("duration: at most {}, got {}",
                                   FormatDuration(spec::kMaxFaultDuration), exp.duration()));
  }
  for (int i = 0; i < exp.faults_size(); ++i) {
    const v1::ExperimentFault& f = exp.faults(i);
    const std::string path = fmt::format("faults[{}]", i);
    auto fault_duration = ParseDuration("duration", f.duration());
    if (f.has_zone_outage()) {
      ValidateZoneOutageEntry(path, f, &problems);
    } else {
      if (f.on().empty()) {
        problems.push_back(fmt::format("{}.on: required (targets: {})", path, known_list()));
      } else if (!known_target(f.on())) {
        problems.push_back(
            fmt::format("{}.on: unknown target \"{}\" (targets: {})", path, Printable(f.on()), known_list()));
      }
      // The fault's own fields, through exactly the code the agent runs (with a
      // stand-in duration when the experiment's own is missing or broken, which
      // is reported above).
      v1::FaultSpec spec = FaultSpecFor(exp, i);
      if (!have_duration && f.duration().empty() && !spec.duration().empty()) {
        spec.set_duration("1s");
      }
      auto checked = spec::Validate(spec);
      if (!checked.ok()) {
        problems.push_back(fmt::format("{}.{}", path, std::string(checked.status().message())));
      }
    }
    if (f.has_zone_outage() && !fault_duration.ok() && !f.duration().empty()) {
      problems.push_back(fmt::format("{}.{}", path, std::string(fault_duration.status().message())));
    } else if (f.has_zone_outage() && fault_duration.ok() && fault_duration->count() <= 0 &&
               !f.duration().empty()) {
      problems.push_back(fmt::format("{}.duration: must be greater than 0", path));
    }
    if (!f.duration().empty() && fault_duration.ok() && have_duration && *fault_duration > duration) {
      problems.push_back(fmt::format("{}.duration: {} is longer than the experiment's duration {}",
                                     path, f.duration(), exp.duration()));
    }
  }

  // Limits (the blast radius is checked again, with the fleet, at the start).
  if (exp.limits().max_agents() < 0) {
    problems.push_back(fmt::format("limits.max_agents: must be at least 1, got {}",
                                   exp.limits().max_agents()));
  }
  if (exp.limits().has_max_percent() &&
      !(exp.limits().max_percent() > 0 && exp.limits().max_percent() <= 100)) {
    problems.push_back(fmt::format("limits.max_percent: must be above 0 and at most 100, got {:g}",
                                   exp.limits().max_percent()));
  }

  // Objectives.
  std::chrono::nanoseconds rto{0};
  if (CheckDuration("objectives.rto", exp.objectives().rto(), true, &problems, &rto) &&
      rto > spec::kMaxFaultDuration) {
    problems.push_back(fmt::format("objectives.rto: at most {}, got {}",
                                   FormatDuration(spec::kMaxFaultDuration),
                                   exp.objectives().rto()));
  }
  if (exp.objectives().recovered_after() < 0 ||
      exp.objectives().recovered_after() > kMaxRecoveredAfter) {
    problems.push_back(fmt::format("objectives.recovered_after: must be between 1 and {}, got {}",
                                   kMaxRecoveredAfter, exp.objectives().recovered_after()));
  }

  ValidateData(exp, &problems);

  // Stop conditions: exactly one of failing_for / failure_ratio + window /
  // agents_lost; the first two name a probe of the experiment.
  for (int i = 0; i < exp.stop_when_size(); ++i) {
    const v1::StopCondition& c = exp.stop_when(i);
    const std::string path = fmt::format("stop_when[{}]", i);
    const bool by_time = !c.failing_for().empty();
    const bool by_ratio = c.has_failure_ratio() || !c.window().empty();
    const bool by_agents = c.agents_lost() != 0;
    const int kinds = static_cast<int>(by_time) + static_cast<int>(by_ratio) +
                      static_cast<int>(by_agents);
    if (kinds == 0) {
      problems.push_back(fmt::format(
          "{}: needs one of failing_for, failure_ratio with window, or agents_lost", path));
    } else if (kinds > 1) {
      problems.push_back(fmt::format(
          "{}: failing_for, failure_ratio with window and agents_lost are exclusive", path));
    }
    std::vector<std::string> probe_names;
    for (const auto& p : exp.probes()) probe_names.push_back(p.name());
    if (by_time || by_ratio) {
      if (c.probe().empty()) {
        problems.push_back(fmt::format("{}.probe: required (probes: {})", path,
                                       absl::StrJoin(probe_names, ", ")));
      } else if (std::find(probe_names.begin(), probe_names.end(), c.probe()) ==
                 probe_names.end()) {
        problems.push_back(fmt::format("{}.probe: unknown probe \"{}\" (probes: {})", path,
                                       Printable(c.probe()), absl::StrJoin(probe_names, ", ")));
      }
    } else if (by_agents && !c.probe().empty()) {
      problems.push_back(fmt::format("{}.probe: not with agents_lost", path));
    }
    std::chrono::nanoseconds span{0};
    if (by_time && CheckDuration(path + ".failing_for", c.failing_for(), true, &problems, &span) &&
        span.count() <= 0) {
      problems.push_back(fmt::format("{}.failing_for: must be above 0", path));
    }
    if (by_ratio) {
      if (!c.has_failure_ratio()) {
        problems.push_back(fmt::format("{}.failure_ratio: required with window", path));
      } else if (!(c.failure_ratio() > 0 && c.failure_ratio() <= 1)) {
        problems.push_back(fmt::format("{}.failure_ratio: must be above 0 and at most 1, got {}",
                                       path, c.failure_ratio()));
      }
      if (c.window().empty()) {
        problems.push_back(fmt::format("{}.window: required with failure_ratio", path));
      } else if (CheckDuration(path + ".window", c.window(), true, &problems, &span) &&
                 span.count() <= 0) {
        problems.push_back(fmt::format("{}.window: must be above 0", path));
      }
    }
    if (c.agents_lost() < 0) {
      problems.push_back(fmt::format("{}.agents_lost: must be at least 1, got {}", path,
                                     c.agents_lost()));
    }
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

v1::FaultSpec FaultSpecFor(const v1::Experiment& exp, int i) {
  v1::FaultSpec spec = spec::FromExperimentFault(exp.faults(i));
  const spec::FaultKind* kind = spec::KindOf(spec);
  if (kind != nullptr && kind->reversible && spec.duration().empty()) {
    spec.set_duration(exp.duration());
  }
  return spec;
}

v1::ProbeSpec ToProbeSpec(const v1::ExperimentProbe& probe) {
  v1::ProbeSpec spec;
  spec.set_name(probe.name());
  if (probe.has_tcp()) *spec.mutable_tcp() = probe.tcp();
  if (probe.has_http()) *spec.mutable_http() = probe.http();
  if (probe.has_exec()) *spec.mutable_exec() = probe.exec();
  if (probe.has_grpc_health()) *spec.mutable_grpc_health() = probe.grpc_health();
  if (probe.has_redis()) *spec.mutable_redis() = probe.redis();
  spec.set_interval(probe.interval());
  spec.set_timeout(probe.timeout());
  return spec;
}

std::chrono::nanoseconds DurationOr(const std::string& text, std::chrono::nanoseconds dflt) {
  if (text.empty()) return dflt;
  auto d = ParseDuration("", text);
  return d.ok() ? *d : dflt;
}

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

std::string IdNameProblem(const std::string& field, const std::string& name) {
  const bool ok = !name.empty() && name.size() <= 63 &&
                  (absl::ascii_islower(name[0]) || absl::ascii_isdigit(name[0])) &&
                  std::all_of(name.begin(), name.end(), [](char c) {
                    return absl::ascii_islower(c) || absl::ascii_isdigit(c) || c == '-';
                  });
  if (ok) return "";
  return fmt::format("{}: must match [a-z0-9][a-z0-9-]{{0,62}} (it starts each run id), got \"{}\"",
                     field, Printable(name));
}

}  // namespace faultline::controller
