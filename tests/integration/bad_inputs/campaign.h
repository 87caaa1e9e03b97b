// The bad-input campaign of issue 9 ("Trust boundaries"): a list of cases, each
// one bad input given to a real program (the faultline CLI, a daemon started
// with bad flags or files, or one gRPC call), run with a hard timeout, graded
// (refused naming the field, accepted, hung, crashed) and followed by a check
// that nothing was left behind; and the table that sums them up.
#ifndef FAULTLINE_TESTS_INTEGRATION_BAD_INPUTS_CAMPAIGN_H_
#define FAULTLINE_TESTS_INTEGRATION_BAD_INPUTS_CAMPAIGN_H_

#include <grpcpp/grpcpp.h>

#include <chrono>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include "harness/sim_host.h"

namespace faultline::itest::bad_inputs {

// What the program under test did with one input.
enum class Verdict {
  kRefused,         // non-zero exit (or an error status) naming what the case expects
  kRefusedUnnamed,  // refused, but the message does not name the field
  kAccepted,        // exit 0 / OK / a daemon that started serving
  kHung,            // still running at the timeout (killed), or a deadline passed
  kCrashed,         // killed by a signal, or a daemon under test died
};
const char* VerdictName(Verdict v);

// One attempt: the verdict and what the program said.
struct Attempt {
  Verdict verdict = Verdict::kHung;
  int exit_code = -1;  // the process's exit code, or the gRPC status code
  std::string output;  // stderr then stdout, or the gRPC message
  double seconds = 0;
};

// One case. `run` makes the attempt and grades it against `expect` (the
// substring a refusal must contain: the field or flag the case targets).
// A control (`good`) must be accepted. A `pending` case names the fix that is
// still under way: it is run and shown, never failing. `after` cleans up what
// an accepted control did (e.g. reverts its fault) before the residue check.
struct Case {
  std::string category;
  std::string name;
  std::string expect;
  bool good = false;
  std::string pending;
  std::function<Attempt(const Case&)> run;
  std::function<void()> after;
};

// A case's outcome: the attempt, what it left behind, and whether it passes.
struct Result {
  const Case* c = nullptr;
  Attempt attempt;
  std::vector<std::string> residue;
  bool pass = false;
  std::string Describe() const;
};

// Grades a finished attempt's output: refused (naming `expect` or not) or
// accepted by its exit code.
Verdict Grade(int exit_code, const std::string& output, const std::string& expect);

// Runs argv (no shell) to completion or `timeout`; past it the child and its
// group are SIGKILLed (by pid) and the attempt is "hung".
Attempt RunProgram(const std::vector<std::string>& argv, const std::string& expect,
                   std::chrono::milliseconds timeout);

// Starts a daemon inside `host` with stdout/stderr in `log_file` and watches it
// until it exits (graded like a program), logs `serving_marker` (accepted), or
// `timeout` passes (hung). The daemon is stopped (by pid) before returning.
// With `survive_expect`, a daemon that serves and whose log contains it
// counts as refused (it refused the bad item and went on, as documented).
Attempt RunDaemon(SimHost& host, const std::vector<std::string>& argv, const std::string& log_file,
                  const std::string& serving_marker, const std::string& expect,
                  std::chrono::milliseconds timeout, const std::string& survive_expect = "");

// Grades a gRPC status: OK = accepted, DEADLINE_EXCEEDED = hung, else refused.
Attempt GradeGrpc(const grpc::Status& st, const std::string& expect, double seconds);

// Counts results per category and in total, and prints the table.
class Tally {
 public:
  void Add(const Result& r);
  // The table: one line per category, the totals line, controls, pending cases.
  std::string Table() const;
  // Failing results (a bad input accepted, hung, crashed, left residue or
  // refused without naming its field; a control refused or leaving residue).
  const std::vector<Result>& failures() const { return failures_; }
  const std::vector<Result>& pending() const { return pending_; }
  int tried() const { return total_.tried; }

 private:
  struct Counts {
    int tried = 0, refused = 0, unnamed = 0, hung = 0, crashed = 0, residue = 0, accepted_bad = 0;
    int pending = 0, controls = 0, controls_ok = 0;
    void Add(const Result& r);
    std::string Line(const std::string& label) const;
  };
  std::map<std::string, Counts> by_category_;
  std::vector<std::string> order_;
  Counts total_;
  std::vector<Result> failures_;
  std::vector<Result> pending_;
};

}  // namespace faultline::itest::bad_inputs

#endif  // FAULTLINE_TESTS_INTEGRATION_BAD_INPUTS_CAMPAIGN_H_
