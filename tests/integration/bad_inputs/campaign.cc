// Running and grading the bad-input cases, and their table (campaign.h).
#include "bad_inputs/campaign.h"

#include <fmt/format.h>
#include <signal.h>

#include <thread>

#include "common/files.h"
#include "harness/subprocess.h"

namespace faultline::itest::bad_inputs {
namespace {

using Clock = std::chrono::steady_clock;

double Since(Clock::time_point t) {
  return std::chrono::duration<double>(Clock::now() - t).count();
}

std::string ReadOrEmpty(const std::string& path) {
  auto text = ReadFileToString(path, 16 << 20);
  return text.ok() ? *text : "";
}

// The first line of `text` that holds `needle` (else the first line), cut
// short for the table.
std::string Excerpt(const std::string& text, const std::string& needle) {
  size_t at = needle.empty() ? std::string::npos : text.find(needle);
  size_t start = at == std::string::npos ? 0 : text.rfind('\n', at);
  start = (start == std::string::npos || at == std::string::npos) ? 0 : start + 1;
  size_t end = text.find('\n', start);
  std::string line = text.substr(start, end == std::string::npos ? std::string::npos : end - start);
  std::string out;
  for (unsigned char c : line) {
    if (c < 0x20 || c >= 0x7f) {
      out += fmt::format("\\x{:02x}", c);
    } else {
      out += static_cast<char>(c);
    }
  }
  return out.size() > 220 ? out.substr(0, 220) + "..." : out;
}

}  // namespace

const char* VerdictName(Verdict v) {
  switch (v) {
    case Verdict::kRefused:
      return "refused";
    case Verdict::kRefusedUnnamed:
      return "refused-unnamed";
    case Verdict::kAccepted:
      return "accepted";
    case Verdict::kHung:
      return "hung";
    case Verdict::kCrashed:
      return "crashed";
  }
  return "?";
}

std::string Result::Describe() const {
  std::string s = fmt::format("[{}] {}: {} (exit {}, {:.2f} s)", c->category, c->name,
                              VerdictName(attempt.verdict), attempt.exit_code, attempt.seconds);
  if (!c->good) s += fmt::format(" expected \"{}\"", c->expect);
  if (!c->pending.empty()) s += fmt::format(" pending: {}", c->pending);
  for (const auto& r : residue) s += "\n      residue: " + r;
  if (!attempt.output.empty()) s += "\n      said: " + Excerpt(attempt.output, c->expect);
  return s;
}

Verdict Grade(int exit_code, const std::string& output, const std::string& expect) {
  if (exit_code == 0) return Verdict::kAccepted;
  // The CLI's own RPC deadline: the agent or the controller did not answer.
  if (output.find("DEADLINE_EXCEEDED") != std::string::npos) return Verdict::kHung;
  if (!expect.empty() && output.find(expect) != std::string::npos) return Verdict::kRefused;
  return Verdict::kRefusedUnnamed;
}

Attempt RunProgram(const std::vector<std::string>& argv, const std::string& expect,
                   std::chrono::milliseconds timeout) {
  Attempt a;
  const auto t0 = Clock::now();
  auto proc = Subprocess::Start(argv);
  if (!proc.ok()) {
    a.verdict = Verdict::kRefusedUnnamed;
    a.output = "cannot start: " + std::string(proc.status().message());
    return a;
  }
  const bool exited = (*proc)->Wait(timeout);
  a.seconds = Since(t0);
  if (!exited) {
    (*proc)->Stop();  // SIGKILL by pid (its own group)
    a.verdict = Verdict::kHung;
    a.output = (*proc)->Stderr() + (*proc)->Stdout();
    return a;
  }
  a.exit_code = (*proc)->exit_code();
  a.output = (*proc)->Stderr() + (*proc)->Stdout();
  a.verdict = (*proc)->signaled() ? Verdict::kCrashed : Grade(a.exit_code, a.output, expect);
  return a;
}

Attempt RunDaemon(SimHost& host, const std::vector<std::string>& argv, const std::string& log_file,
                  const std::string& serving_marker, const std::string& expect,
                  std::chrono::milliseconds timeout, const std::string& survive_expect) {
  Attempt a;
  const auto t0 = Clock::now();
  SubprocessOptions so;
  so.stdout_file = log_file;
  so.stderr_file = log_file + ".err";
  auto proc = host.Exec(argv, so);
  if (!proc.ok()) {
    a.verdict = Verdict::kRefusedUnnamed;
    a.output = "cannot start: " + std::string(proc.status().message());
    return a;
  }
  bool serving = false;
  bool exited = false;
  const auto deadline = t0 + timeout;
  while (Clock::now() < deadline) {
    if (!(*proc)->Running()) {
      exited = true;
      break;
    }
    if (ReadOrEmpty(so.stderr_file).find(serving_marker) != std::string::npos ||
        ReadOrEmpty(so.stdout_file).find(serving_marker) != std::string::npos) {
      serving = true;
      break;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  if (serving) {
    // A daemon that checks some flags only after it serves exits at once.
    exited = WaitFor([&] { return !(*proc)->Running(); }, std::chrono::milliseconds(300));
  } else if (!exited) {
    exited = !(*proc)->Running();
  }
  a.seconds = Since(t0);
  a.output = ReadOrEmpty(so.stderr_file) + ReadOrEmpty(so.stdout_file);
  if (exited) {
    a.exit_code = (*proc)->exit_code();
    a.verdict = (*proc)->signaled() ? Verdict::kCrashed : Grade(a.exit_code, a.output, expect);
  } else if (serving) {
    // Give a refusal logged just after the start a moment to be written.
    if (!survive_expect.empty()) {
      WaitFor([&] { return ReadOrEmpty(so.stderr_file).find(survive_expect) != std::string::npos; },
              std::chrono::milliseconds(500));
      a.output = ReadOrEmpty(so.stderr_file) + ReadOrEmpty(so.stdout_file);
    }
    a.exit_code = 0;
    a.verdict = !survive_expect.empty() && a.output.find(survive_expect) != std::string::npos
                    ? Verdict::kRefused
                    : Verdict::kAccepted;
  } else {
    a.verdict = Verdict::kHung;
  }
  (*proc)->Stop();  // SIGKILL by pid: the daemon first, then nsenter's group
  return a;
}

Attempt GradeGrpc(const grpc::Status& st, const std::string& expect, double seconds) {
  Attempt a;
  a.seconds = seconds;
  a.exit_code = static_cast<int>(st.error_code());
  a.output =
      st.ok() ? "OK" : fmt::format("{}: {}", static_cast<int>(st.error_code()), st.error_message());
  if (st.ok()) {
    a.verdict = Verdict::kAccepted;
  } else if (st.error_code() == grpc::StatusCode::DEADLINE_EXCEEDED) {
    a.verdict = Verdict::kHung;
  } else {
    a.verdict = !expect.empty() && st.error_message().find(expect) != std::string::npos
                    ? Verdict::kRefused
                    : Verdict::kRefusedUnnamed;
  }
  return a;
}

void Tally::Counts::Add(const Result& r) {
  if (r.c->good) {
    ++controls;
    if (r.pass) ++controls_ok;
    return;
  }
  ++tried;
  if (!r.c->pending.empty()) {
    ++pending;
    return;
  }
  switch (r.attempt.verdict) {
    case Verdict::kRefused:
      ++refused;
      break;
    case Verdict::kRefusedUnnamed:
      ++unnamed;
      break;
    case Verdict::kAccepted:
      ++accepted_bad;
      break;
    case Verdict::kHung:
      ++hung;
      break;
    case Verdict::kCrashed:
      ++crashed;
      break;
  }
  if (!r.residue.empty()) ++residue;
}

std::string Tally::Counts::Line(const std::string& label) const {
  return fmt::format(
      "{:<22} tried {:>3}, refused {:>3}, hung {}, crashed {}, residue {}, accepted-bad {}, "
      "unnamed {}, pending {}; controls {}/{} accepted",
      label, tried, refused, hung, crashed, residue, accepted_bad, unnamed, pending, controls_ok,
      controls);
}

void Tally::Add(const Result& r) {
  if (!by_category_.contains(r.c->category)) order_.push_back(r.c->category);
  by_category_[r.c->category].Add(r);
  total_.Add(r);
  if (!r.c->pending.empty() && !r.c->good) {
    pending_.push_back(r);
  } else if (!r.pass) {
    failures_.push_back(r);
  }
}

std::string Tally::Table() const {
  std::string out = "\n==== bad inputs (issue 9), per category ====\n";
  for (const auto& cat : order_) out += "  " + by_category_.at(cat).Line(cat) + "\n";
  out += fmt::format(
      "bad inputs: tried {}, refused {}, hung {}, crashed {}, residue {}, accepted-bad {}, "
      "refused-unnamed {}, pending {}; controls (good inputs) {}/{} accepted\n",
      total_.tried, total_.refused, total_.hung, total_.crashed, total_.residue,
      total_.accepted_bad, total_.unnamed, total_.pending, total_.controls_ok, total_.controls);
  if (!pending_.empty()) {
    out += "pending (not failing; flip on when the fix lands):\n";
    for (const auto& r : pending_) out += "  " + r.Describe() + "\n";
  }
  if (!failures_.empty()) {
    out += "FAILING:\n";
    for (const auto& r : failures_) out += "  " + r.Describe() + "\n";
  }
  return out;
}

}  // namespace faultline::itest::bad_inputs
