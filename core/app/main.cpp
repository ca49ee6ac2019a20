// app/main: the mailgate command line (DESIGN §5): serve, check-config,
// config-reference, version, and the admin subcommands. Wires the modules together for
// `serve`, handles signals (SIGTERM/SIGINT drain, SIGHUP reload) and exits
// non-zero with a clear message on any start-up error.
#include <CLI/CLI.hpp>
#include <cstdio>
#include <string>
#include <vector>

#include "app/admin_cli.hpp"
#include "app/serve.hpp"
#include "app/spool_dump.hpp"
#include "policy/config.hpp"
#include "settings/gateway_config.hpp"

namespace {

int check_config(const std::string& path, const std::vector<std::string>& sets) {
  try {
    auto cfg = mailgate::policy::load_config(path, sets);
    std::printf("config OK: %s (hostname %s, %u workers, %zu listener(s), spool %s)\n",
                path.c_str(), cfg.hostname.c_str(), cfg.workers, cfg.listeners.size(),
                cfg.spool.path.c_str());
    return 0;
  } catch (const mailgate::policy::ConfigError& e) {
    std::fprintf(stderr, "mailgate: config error: %s\n", e.what());
    return 1;
  }
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
