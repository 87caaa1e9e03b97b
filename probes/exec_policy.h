// Which commands exec probes may run, and as whom (issue "Trust boundaries"):
// exec is opt-in, per command. An agent or controller without a policy runs no
// exec probe at all; with one, only the argument vectors it allows, as its
// unprivileged user.
#ifndef FAULTLINE_PROBES_EXEC_POLICY_H_
#define FAULTLINE_PROBES_EXEC_POLICY_H_

#include <sys/types.h>

#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "faultline/v1/policy.pb.h"

namespace faultline {

// The credentials an allowed command runs with.
struct ExecCredentials {
  std::string user;
  uid_t uid = 0;
  gid_t gid = 0;
};

// A validated v1::ExecPolicy with its user resolved. Immutable after
// construction, so safe to share between threads. Default-constructed: no
// policy, every exec refused.
class ExecPolicy {
 public:
  ExecPolicy() = default;

  // Validates `proto` (INVALID_ARGUMENT naming the field under `field`, e.g.
  // "exec.allow[1].argv[0]: must be an absolute path") and resolves `user`,
  // which must exist and not be root.
  static absl::StatusOr<ExecPolicy> FromProto(const v1::ExecPolicy& proto,
                                              const std::string& field = "exec");

  // OK when a rule allows exactly this argument vector; else PERMISSION_DENIED
  // naming the policy ("`what` `ARGV` refused: not allowed by the exec policy
  // (exec.allow: ...)").
  absl::Status Check(const std::vector<std::string>& argv,
                     const char* what = "exec probe") const;

  bool empty() const { return rules_.empty(); }
  const ExecCredentials& credentials() const { return credentials_; }

 private:
  struct Rule {
    std::vector<std::string> argv;
    bool prefix = false;
  };
  std::vector<Rule> rules_;
  ExecCredentials credentials_;
  std::string field_ = "exec";
};

}  // namespace faultline

#endif  // FAULTLINE_PROBES_EXEC_POLICY_H_
