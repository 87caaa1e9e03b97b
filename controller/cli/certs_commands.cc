// `faultline certs init DIR` and `faultline certs issue ROLE NAME`: a
// development CA and certificates for Faultline's mutual TLS (auth/certs.h,
// OpenSSL's library; the openssl program is never run).
#include <cstdio>

#include "auth/certs.h"
#include "common/yaml_proto.h"
#include "controller/cli/cli.h"

namespace faultline::cli {
namespace {

void Print(CliContext& ctx, const auth::CertFiles& files, const std::string& what) {
  if (ctx.Json()) {
    std::printf("{\"cert\":%s,\"key\":%s}\n", JsonQuote(files.cert).c_str(),
                JsonQuote(files.key).c_str());
    return;
  }
  std::printf("%s\n  certificate  %s\n  private key  %s (mode 0600)\n", what.c_str(),
              files.cert.c_str(), files.key.c_str());
}

}  // namespace

void AddCertsCommands(CLI::App& app, CliContext& ctx) {
  CLI::App* certs = app.add_subcommand(
      "certs", "a development CA and certificates for mutual TLS (roles from identities)");
  certs->require_subcommand(1);

  struct InitArgs {
    std::string dir;
    int days = 3650;
    bool force = false;
  };
  auto init_args = std::make_shared<InitArgs>();
  CLI::App* init = certs->add_subcommand("init", "create DIR/ca.crt and DIR/ca.key");
  init->add_option("DIR", init_args->dir, "folder for the CA (created 0700)")->required();
  init->add_option("--days", init_args->days, "validity")->capture_default_str();
  init->add_flag("--force", init_args->force, "replace an existing CA");
  init->callback([&ctx, init_args] {
    auto files = auth::InitCa(init_args->dir, init_args->days, init_args->force);
    if (!files.ok()) return ctx.Fail(files.status());
    Print(ctx, *files, "created a development CA");
  });

  struct IssueArgs {
    std::string role;
    std::string name;
    std::string dir = ".";
    auth::IssueOptions options;
  };
  auto issue_args = std::make_shared<IssueArgs>();
  CLI::App* issue = certs->add_subcommand(
      "issue", "issue DIR/ROLE-NAME.crt and .key (URI SAN spiffe://faultline/ROLE/NAME)");
  issue->add_option("ROLE", issue_args->role, "agent, controller, operator or viewer")->required();
  issue->add_option("NAME", issue_args->name, "[a-z0-9][a-z0-9.-]{0,62} (an agent: its --name)")
      ->required();
  issue->add_option("--dir", issue_args->dir, "folder holding ca.crt and ca.key (from `certs init`)")
      ->capture_default_str();
  issue->add_option("--ip", issue_args->options.ips,
                    "an IP address the holder serves on (IP SAN; repeatable)");
  issue->add_option("--dns", issue_args->options.dns,
                    "a host name the holder is dialled by (DNS SAN; repeatable)");
  issue->add_option("--days", issue_args->options.days, "validity")->capture_default_str();
  issue->add_flag("--force", issue_args->options.force, "replace existing files");
  issue->callback([&ctx, issue_args] {
    auto role = auth::ParseRole("ROLE", issue_args->role);
    if (!role.ok()) return ctx.Fail(role.status());
    auth::Identity identity{*role, issue_args->name};
    auto files = auth::IssueCertificate(issue_args->dir, identity, issue_args->options);
    if (!files.ok()) return ctx.Fail(files.status());
    Print(ctx, *files, "issued " + identity.Uri());
  });
}

}  // namespace faultline::cli
