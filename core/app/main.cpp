// app/main: the mailgate command line (DESIGN §5): serve, check-config,
// config-reference, version, tls self-signed, dkim keygen, and the admin subcommands.
// Wires the modules together for `serve`, handles signals (SIGTERM/SIGINT drain,
// SIGHUP reload) and exits non-zero with a clear message on any start-up error.
#include <CLI/CLI.hpp>
#include <cstdio>
#include <string>
#include <vector>

#include "app/admin_cli.hpp"
#include "app/config_load.hpp"
#include "app/dkim_keygen.hpp"
#include "app/serve.hpp"
#include "app/spool_dump.hpp"
#include "app/tls_cli.hpp"
#include "settings/gateway_config.hpp"

namespace {

int check_config(const std::string& path, const std::vector<std::string>& sets) {
  const auto cfg = mailgate::app::load_config_or_report(path, sets);
  if (!cfg) return 1;
  std::printf("config OK: %s (hostname %s, %u workers, %zu listener(s), spool %s)\n", path.c_str(),
              cfg->hostname.c_str(), cfg->workers, cfg->listeners.size(), cfg->spool.path.c_str());
  if (cfg->cluster.enabled()) std::printf("warning: %s\n", mailgate::cluster::kClusterNotYetShared);
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"mailgate: high-throughput SMTP gateway for bulk senders"};
  app.require_subcommand(1);
  std::string config = "conf/mailgate.lua";
  std::vector<std::string> sets;

  auto* serve = app.add_subcommand("serve", "run the gateway in the foreground");
  serve->add_option("--config", config, "config file")->capture_default_str();
  serve->add_option("--set", sets, "override a configure{} key: dotted.key=value");

  auto* check = app.add_subcommand("check-config", "validate the config and exit");
  check->add_option("--config", config, "config file")->capture_default_str();
  check->add_option("--set", sets, "override a configure{} key: dotted.key=value");

  app.add_subcommand("config-reference",
                     "print the reference of every config key (Markdown, as in the README)");
  app.add_subcommand("version", "print the version");

  auto* spool_cmd = app.add_subcommand("spool", "offline spool inspection");
  spool_cmd->require_subcommand(1);
  auto* dump = spool_cmd->add_subcommand("dump", "print every spooled message as JSON lines");
  std::string spool_path = "var/spool";
  bool bodies = false;
  dump->add_option("--path", spool_path, "spool directory")->capture_default_str();
  dump->add_flag("--bodies", bodies, "include each body, base64-encoded");

  auto* tls_cmd = app.add_subcommand("tls", "TLS certificates");
  tls_cmd->require_subcommand(1);
  auto* self_signed = tls_cmd->add_subcommand(
      "self-signed", "make the self-signed pairs the config asks for (self_signed = true)");
  self_signed->add_option("--config", config, "config file")->capture_default_str();
  self_signed->add_option("--set", sets, "override a configure{} key: dotted.key=value");

  auto* dkim_cmd = app.add_subcommand("dkim", "DKIM keys");
  dkim_cmd->require_subcommand(1);
  auto* keygen = dkim_cmd->add_subcommand(
      "keygen", "make a DKIM key: write the private key, print the DNS TXT record");
  mailgate::app::KeygenOptions kg;
  keygen->add_option("--domain", kg.domain, "the signing domain (d=)")->required();
  keygen->add_option("--selector", kg.selector, "the selector (s=)")->required();
  keygen->add_option("--algorithm", kg.algorithm, "rsa-2048 (rsa-1024..rsa-4096) or ed25519")
      ->capture_default_str();
  keygen->add_option("--out", kg.out_dir, "directory for the private key")->capture_default_str();

  mailgate::app::AdminCli admin(app);  // queue, suppression, reload

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    const int rc = app.exit(e);
    // The admin commands promise exit code 2 for every usage error.
    return rc != 0 && mailgate::app::AdminCli::is_admin_command(argc, argv) ? 2 : rc;
  }

  if (*serve) return mailgate::app::serve(config, sets);
  if (*check) return check_config(config, sets);
  if (*dump) return mailgate::app::spool_dump(spool_path, bodies);
  if (*self_signed) return mailgate::app::make_self_signed_pairs(config, sets);
  if (*keygen) return mailgate::app::dkim_keygen(kg);
  if (app.got_subcommand("config-reference")) {
    std::fputs(mailgate::settings::reference_markdown().c_str(), stdout);
    return 0;
  }
  if (app.got_subcommand("version")) {
    std::printf("mailgate %s\n", MAILGATE_VERSION);
    return 0;
  }
  if (admin.selected()) return admin.run();
  return 2;
}
