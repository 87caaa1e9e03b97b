// faultline: the command-line client. Wiring only; commands live beside it.
#include <CLI/CLI.hpp>

#include <cstdio>

#include "controller/cli/cli.h"

int main(int argc, char** argv) {
  faultline::cli::CliContext ctx;
  CLI::App app{"faultline: chaos experiments with measured RTO/RPO"};
  app.require_subcommand(1);
  app.fallthrough();  // global flags such as -o json may follow the command
  app.set_version_flag("--version", std::string("faultline ") + FAULTLINE_VERSION);
  app.add_option("--agent", ctx.agent, "talk straight to one agent: unix:/PATH or HOST:PORT");
  app.add_option("--controller", ctx.controller, "controller address: HOST:PORT or unix:/PATH")
      ->capture_default_str();
  app.add_flag("--insecure", ctx.insecure, "plain TCP without TLS");
  app.add_option("--tls-cert", ctx.tls.cert,
                 "client certificate (PEM; spiffe://faultline/operator/NAME to change things, "
                 "viewer/NAME to look)");
  app.add_option("--tls-key", ctx.tls.key, "client key (PEM)");
  app.add_option("--tls-ca", ctx.tls.ca, "CA of the server's certificate (PEM)");
  app.add_option("-o,--output", ctx.output, "table|json")
      ->check(CLI::IsMember({"table", "json"}))
      ->capture_default_str();
  faultline::cli::AddAgentCommands(app, ctx);
  faultline::cli::AddControllerCommands(app, ctx);
  faultline::cli::AddScheduleCommands(app, ctx);
  faultline::cli::AddGameDayCommands(app, ctx);
  faultline::cli::AddCertsCommands(app, ctx);
  if (absl::Status utf8 = faultline::cli::CheckArgsUtf8(argc, argv); !utf8.ok()) {
    ctx.Fail(utf8);
    return ctx.exit_code;
  }
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    // "inject cpu": CLI11 would say only that a subcommand is required.
    absl::Status kind = e.get_exit_code() == 0 ? absl::OkStatus()  // --help, --version
                                               : faultline::cli::UnknownKindError(app);
    if (!kind.ok()) {
      ctx.Fail(kind);
      return ctx.exit_code;
    }
    return app.exit(e);
  }
  // Written out now, not by exit(): a leak check at exit (the sanitizer
  // builds) ends the process without flushing stdio, and a report must not
  // be lost with it.
  std::fflush(nullptr);
  return ctx.exit_code;
}
