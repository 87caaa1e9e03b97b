// Human renderings of a run report: the terminal text and the Markdown report.
#ifndef FAULTLINE_CONTROLLER_CLI_REPORT_H_
#define FAULTLINE_CONTROLLER_CLI_REPORT_H_

#include <cstdint>
#include <string>

#include "common/units.h"  // FormatUtc
#include "faultline/v1/controller.pb.h"

namespace faultline::cli {

std::string TextReport(const v1::RunReport& run);
std::string MarkdownReport(const v1::RunReport& run);

}  // namespace faultline::cli

#endif  // FAULTLINE_CONTROLLER_CLI_REPORT_H_
