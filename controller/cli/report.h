// Human renderings of a run report: the terminal text and the Markdown report.
#ifndef FAULTLINE_CONTROLLER_CLI_REPORT_H_
#define FAULTLINE_CONTROLLER_CLI_REPORT_H_

#include <cstdint>
#include <string>

#include "faultline/v1/controller.pb.h"

namespace faultline::cli {

std::string TextReport(const v1::RunReport& run);
std::string MarkdownReport(const v1::RunReport& run);
// "2026-11-25 20:31:05" (UTC); "-" for 0.
std::string FormatUtc(int64_t unix_ns);

}  // namespace faultline::cli

#endif  // FAULTLINE_CONTROLLER_CLI_REPORT_H_
