#include "spec/signals.h"

#include <csignal>
#include <cstdlib>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/match.h"
#include "common/text.h"
#include "fmt/format.h"

namespace faultline::spec {
namespace {

struct SignalEntry {
  const char* name;  // without the SIG prefix
  int signo;
};

constexpr SignalEntry kSignals[] = {
    {"HUP", SIGHUP},       {"INT", SIGINT},       {"QUIT", SIGQUIT},   {"ILL", SIGILL},
    {"TRAP", SIGTRAP},     {"ABRT", SIGABRT},     {"IOT", SIGIOT},     {"BUS", SIGBUS},
    {"FPE", SIGFPE},       {"KILL", SIGKILL},     {"USR1", SIGUSR1},   {"SEGV", SIGSEGV},
    {"USR2", SIGUSR2},     {"PIPE", SIGPIPE},     {"ALRM", SIGALRM},   {"TERM", SIGTERM},
    {"STKFLT", SIGSTKFLT}, {"CHLD", SIGCHLD},     {"CONT", SIGCONT},   {"STOP", SIGSTOP},
    {"TSTP", SIGTSTP},     {"TTIN", SIGTTIN},     {"TTOU", SIGTTOU},   {"URG", SIGURG},
    {"XCPU", SIGXCPU},     {"XFSZ", SIGXFSZ},     {"VTALRM", SIGVTALRM}, {"PROF", SIGPROF},
    {"WINCH", SIGWINCH},   {"IO", SIGIO},         {"POLL", SIGPOLL},   {"PWR", SIGPWR},
    {"SYS", SIGSYS},
};

absl::Status Unknown(const std::string& text) {
  return absl::InvalidArgumentError(fmt::format("signal: unknown signal \"{}\"", Printable(text)));
}

}  // namespace

absl::StatusOr<int> ParseSignal(const std::string& text) {
  std::string s = absl::AsciiStrToUpper(absl::StripAsciiWhitespace(text));
  if (s.empty()) return Unknown(text);
  int n = 0;
  if (absl::ascii_isdigit(static_cast<unsigned char>(s[0]))) {
    if (!absl::SimpleAtoi(s, &n) || n < 1 || n > SIGRTMAX) return Unknown(text);
    return n;
  }
  if (absl::StartsWith(s, "SIG")) s = s.substr(3);
  for (const auto& e : kSignals) {
    if (s == e.name) return e.signo;
  }
  // RTMIN, RTMIN+N, RTMAX, RTMAX-N as in kill(1).
  auto offset = [&](const std::string& prefix, int base, int sign) -> absl::StatusOr<int> {
    std::string rest = s.substr(prefix.size());
    int k = 0;
    if (!rest.empty()) {
      if (rest[0] != (sign > 0 ? '+' : '-') || !absl::SimpleAtoi(rest.substr(1), &k) || k < 0) {
        return Unknown(text);
      }
    }
    int v = base + sign * k;
    if (v < SIGRTMIN || v > SIGRTMAX) return Unknown(text);
    return v;
  };
  if (absl::StartsWith(s, "RTMIN")) return offset("RTMIN", SIGRTMIN, +1);
  if (absl::StartsWith(s, "RTMAX")) return offset("RTMAX", SIGRTMAX, -1);
  return Unknown(text);
}

std::string SignalName(int signo) {
  for (const auto& e : kSignals) {
    // IOT and POLL alias ABRT and IO; the table lists the usual name first.
    if (e.signo == signo) return std::string("SIG") + e.name;
  }
  if (signo >= SIGRTMIN && signo <= SIGRTMAX) {
    return signo == SIGRTMIN ? "SIGRTMIN" : fmt::format("SIGRTMIN+{}", signo - SIGRTMIN);
  }
  return std::to_string(signo);
}

}  // namespace faultline::spec
