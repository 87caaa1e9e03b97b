// Signal names and numbers as users write them in specs and on the CLI.
#ifndef FAULTLINE_SPEC_SIGNALS_H_
#define FAULTLINE_SPEC_SIGNALS_H_

#include <string>

#include "absl/status/statusor.h"

namespace faultline::spec {

// Accepts "KILL", "SIGKILL", "kill", "sigkill", " 9 " and the other standard
// signals (TERM, INT, HUP, QUIT, USR1, USR2, ABRT, ALRM, STOP, CONT, ...), or a
// number in [1, SIGRTMAX]. INVALID_ARGUMENT `signal: unknown signal "FOO"`.
absl::StatusOr<int> ParseSignal(const std::string& text);

// "SIGKILL" for 9; "SIGRTMIN+3" for real-time signals; the number otherwise.
std::string SignalName(int signo);

}  // namespace faultline::spec

#endif  // FAULTLINE_SPEC_SIGNALS_H_
