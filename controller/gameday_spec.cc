#include "controller/gameday_spec.h"

#include <fmt/format.h>

#include <algorithm>
#include <filesystem>
#include <utility>

#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "common/files.h"
#include "common/status_macros.h"
#include "common/text.h"
#include "common/units.h"
#include "common/yaml_proto.h"
#include "controller/experiment.h"
#include "probes/probe.h"

namespace faultline::controller {
namespace {

constexpr char kController[] = "controller";



int KindCount(const v1::GameDayStep& s) {
  return (!s.note().empty()) + s.has_gate() + (!s.experiment().empty()) + (!s.drill().empty()) +
         (!s.wait().empty()) + s.has_check() + (s.parallel_size() > 0);
}



// A duration field of a step: required or optional, above 0, at most 24h.
void CheckWaitField(const std::string& path, const std::string& text, bool required,
                    std::vector<std::string>* problems) {
  std::chrono::nanoseconds d{0};
  if (!CheckDuration(path, text, required, problems, &d)) return;
  if (d.count() <= 0) {
    problems->push_back(fmt::format("{}: must be above 0", path));
  } else if (d > kMaxGameDayWait) {
    problems->push_back(
        fmt::format("{}: at most {}, got {}", path, FormatDuration(kMaxGameDayWait), text));
  }
}


// One step's fields; `in_parallel` for a branch of a parallel step.
void ValidateStep(const std::string& path, const v1::GameDayStep& s, bool in_parallel,
                  const v1::StartGameDayRequest& req, v1::GameDayPlan* plan,
                  std::vector<std::string>* problems) {
  const int kinds = KindCount(s);
  if (kinds != 1) {
    problems->push_back(fmt::format(
        "{}: {} of note, gate, experiment, drill, wait, check, parallel; a step is exactly one",
        path, kinds == 0 ? "none" : "more than one"));
    return;
  }
  const std::string kind = StepKindOf(s);
  if (in_parallel && (kind == "gate" || kind == "parallel")) {
    problems->push_back(fmt::format(
        "{}: a {} cannot run in parallel (branches are experiment, drill, wait, check, note)",
        path, kind));
    return;
  }
  if (kind == "note") CheckGameDayText(path + ".note", s.note(), true, problems);
  if (kind == "gate") {
    CheckGameDayText(path + ".gate.prompt", s.gate().prompt(), true, problems);
    CheckWaitField(path + ".gate.timeout", s.gate().timeout(), false, problems);
    const std::string& t = s.gate().on_timeout();
    if (!t.empty() && t != "abort" && t != "continue") {
      problems->push_back(fmt::format("{}.gate.on_timeout: abort or continue, got \"{}\"", path,
                                      Printable(t)));
    }
  }
  if (kind == "experiment" || kind == "drill") {
    const std::string& file = kind == "experiment" ? s.experiment() : s.drill();
    const std::string field = fmt::format("{}.{}", path, kind);
    auto it = req.files().find(file);
    if (it == req.files().end()) {
      problems->push_back(fmt::format(
          "{}: \"{}\" was not sent with the runbook (the CLI sends every file a step names)",
          field, Printable(file)));
      return;
    }
    auto exp = LoadExperiment(it->second);
    if (!exp.ok()) {
      for (const auto& line : absl::StrSplit(exp.status().message(), '\n')) {
        problems->push_back(fmt::format("{} ({}): {}", field, Printable(file), std::string(line)));
      }
      return;
    }
    if (kind == "drill" && !exp->has_drill()) {
      problems->push_back(fmt::format(
          "{}: \"{}\" holds no drill (it is an experiment: write experiment: {})", field,
          Printable(file), Printable(file)));
      return;
    }
    (*plan->mutable_experiments())[file] = *exp;
  }
  if (kind == "wait") CheckWaitField(path + ".wait", s.wait(), true, problems);
  if (kind == "check") {
    const v1::GameDayCheck& c = s.check();
    if (!c.has_probe()) {
      problems->push_back(fmt::format("{}.check.probe: required", path));
    } else {
      if (!c.probe().from().empty() && c.probe().from() != kController) {
        problems->push_back(fmt::format(
            "{}.check.probe.from: a game day's check runs on the controller; remove from", path));
      }
      if (absl::Status st = ValidateProbe(ToProbeSpec(c.probe())); !st.ok()) {
        problems->push_back(fmt::format("{}.check.probe.{}", path, std::string(st.message())));
      }
    }
    if (!c.expect().empty() && c.expect() != "pass" && c.expect() != "fail") {
      problems->push_back(fmt::format("{}.check.expect: pass or fail, got \"{}\"", path,
                                      Printable(c.expect())));
    }
    CheckWaitField(path + ".check.within", c.within(), false, problems);
  }
  if (kind == "parallel") {
    if (s.parallel_size() < 2 || s.parallel_size() > kMaxParallelBranches) {
      problems->push_back(fmt::format("{}.parallel: 2 to {} branches, got {}", path,
                                      kMaxParallelBranches, s.parallel_size()));
      return;
    }
    for (int j = 0; j < s.parallel_size(); ++j) {
      ValidateStep(fmt::format("{}.parallel[{}]", path, j), s.parallel(j), true, req, plan,
                   problems);
    }
  }
}

}  // namespace

std::string StepKindOf(const v1::GameDayStep& s) {
  if (!s.note().empty()) return "note";
  if (s.has_gate()) return "gate";
  if (!s.experiment().empty()) return "experiment";
  if (!s.drill().empty()) return "drill";
  if (!s.wait().empty()) return "wait";
  if (s.has_check()) return "check";
  if (s.parallel_size() > 0) return "parallel";
  return "";
}

std::string StepTitleOf(const v1::GameDayStep& s) {
  const std::string kind = StepKindOf(s);
  if (kind == "note") return s.note();
  if (kind == "gate") return s.gate().prompt();
  if (kind == "experiment") return s.experiment();
  if (kind == "drill") return s.drill();
  if (kind == "wait") return s.wait();
  if (kind == "check") {
    return fmt::format("probe {} expect {}{}", s.check().probe().name(),
                       s.check().expect().empty() ? "pass" : s.check().expect(),
                       s.check().within().empty() ? "" : " within " + s.check().within());
  }
  if (kind == "parallel") return fmt::format("{} branches", s.parallel_size());
  return "";
}

std::chrono::nanoseconds GameDayDuration(const std::string& text) {
  if (text.empty()) return std::chrono::nanoseconds(0);
  auto d = ParseDuration("", text);
  return d.ok() ? *d : std::chrono::nanoseconds(0);
}

void CheckGameDayText(const std::string& path, const std::string& text, bool required,
               std::vector<std::string>* problems) {
  if (text.empty()) {
    if (required) problems->push_back(fmt::format("{}: required", path));
  } else if (text.size() > kMaxGameDayTextBytes) {
    problems->push_back(fmt::format("{}: at most {} bytes, got {}", path, kMaxGameDayTextBytes,
                                    text.size()));
  }
}


absl::StatusOr<v1::GameDaySpec> ParseGameDayYaml(const std::string& yaml) {
  ASSIGN_OR_RETURN(YAML::Node root, LoadBoundedYaml(yaml));
  if (!root.IsMap()) {
    return absl::InvalidArgumentError("(top): expected a mapping with gameday, description, steps");
  }
  v1::GameDaySpec spec;
  RETURN_IF_ERROR(YamlNodeToMessage(root, &spec));
  return spec;
}

std::vector<std::string> GameDayFiles(const v1::GameDaySpec& spec) {
  std::vector<std::string> out;
  auto add = [&](const std::string& f) {
    if (!f.empty() && std::find(out.begin(), out.end(), f) == out.end()) out.push_back(f);
  };
  for (const auto& s : spec.steps()) {
    add(s.experiment());
    add(s.drill());
    for (const auto& b : s.parallel()) {
      add(b.experiment());
      add(b.drill());
    }
  }
  return out;
}

absl::StatusOr<v1::GameDayPlan> LoadGameDay(const v1::StartGameDayRequest& req) {
  ASSIGN_OR_RETURN(v1::GameDaySpec spec, ParseGameDayYaml(req.yaml()));
  std::vector<std::string> problems;
  if (std::string p = IdNameProblem("gameday", spec.gameday()); !p.empty()) problems.push_back(p);
  CheckGameDayText("description", spec.description(), false, &problems);
  if (spec.steps().empty()) problems.push_back("steps: at least one step is required");
  if (spec.steps_size() > kMaxGameDaySteps) {
    problems.push_back(
        fmt::format("steps: at most {}, got {}", kMaxGameDaySteps, spec.steps_size()));
  }
  v1::GameDayPlan plan;
  if (problems.empty()) {
    for (int i = 0; i < spec.steps_size(); ++i) {
      ValidateStep(fmt::format("steps[{}]", i), spec.steps(i), false, req, &plan, &problems);
    }
  }
  if (!problems.empty()) return absl::InvalidArgumentError(absl::StrJoin(problems, "\n"));
  *plan.mutable_spec() = std::move(spec);
  plan.set_file(req.file());
  return plan;
}

absl::StatusOr<v1::StartGameDayRequest> ReadGameDayFiles(const std::string& path) {
  v1::StartGameDayRequest req;
  ASSIGN_OR_RETURN(*req.mutable_yaml(), ReadFileToString(path));
  req.set_file(path);
  auto spec = ParseGameDayYaml(req.yaml());
  if (!spec.ok()) {
    return absl::InvalidArgumentError(
        fmt::format("{}: {}", path, std::string(spec.status().message())));
  }
  const std::filesystem::path dir = std::filesystem::path(path).parent_path();
  for (const std::string& f : GameDayFiles(*spec)) {
    const std::filesystem::path p =
        std::filesystem::path(f).is_absolute() ? std::filesystem::path(f) : dir / f;
    auto text = ReadFileToString(p.string());
    if (!text.ok()) {
      return absl::Status(text.status().code(),
                          fmt::format("{}: step file \"{}\": {}", path, Printable(f),
                                      std::string(text.status().message())));
    }
    (*req.mutable_files())[f] = std::move(*text);
  }
  return req;
}


}  // namespace faultline::controller
