#include "controller/cli/cli.h"

namespace faultline::cli {

void AddControllerCommands(CLI::App& /*app*/, CliContext& /*ctx*/) {}

}  // namespace faultline::cli
