// An exec policy for the probe tests: the commands given (as argv prefixes),
// run as the unprivileged user "nobody" (Debian has it).
#ifndef FAULTLINE_TESTS_UNIT_PROBES_TEST_EXEC_POLICY_H_
#define FAULTLINE_TESTS_UNIT_PROBES_TEST_EXEC_POLICY_H_

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "probes/exec_policy.h"

namespace faultline::testing_util {

inline ExecPolicy Allowing(const std::vector<std::vector<std::string>>& prefixes) {
  v1::ExecPolicy proto;
  proto.set_user("nobody");
  for (const auto& prefix : prefixes) {
    auto* rule = proto.add_allow();
    for (const auto& arg : prefix) rule->add_argv_prefix(arg);
  }
  auto policy = ExecPolicy::FromProto(proto);
  EXPECT_TRUE(policy.ok()) << policy.status();
  return policy.ok() ? *policy : ExecPolicy();
}

}  // namespace faultline::testing_util

#endif  // FAULTLINE_TESTS_UNIT_PROBES_TEST_EXEC_POLICY_H_
