// app/admin_cli: the admin subcommands of the mailgate command line
// (DESIGN §5): `queue summary|list|show|suspend|resume|flush|bounce`,
// `suppression list|add|remove`, `webhooks status|dead-letters|replay`,
// `shaping list|clear [ID|--all]` and
// `reload`, all clients of the HTTP admin
// API (adminclient module). Promises: the common options --api URL (default
// http://127.0.0.1:8025), --token TOKEN (default $MAILGATE_API_TOKEN) and
// --json are accepted both before and after the leaf subcommand; run()
// returns 0 ok, 1 server error, 2 usage error, 3 API unreachable
// (adminclient/commands.hpp); a CLI11 parse error of an admin command maps to
// 2 through is_admin_command().
#pragma once

#include <CLI/CLI.hpp>
#include <string>

namespace mailgate::app {

class AdminCli {
 public:
  // Registers the admin subcommands on `app`; `this` must outlive parsing.
  explicit AdminCli(CLI::App& app);
  AdminCli(const AdminCli&) = delete;
  AdminCli& operator=(const AdminCli&) = delete;

  // True when argv's subcommand is an admin one (so usage errors exit 2).
  static bool is_admin_command(int argc, char** argv);
  // True after parsing when an admin subcommand was given.
  bool selected() const;
  // Runs the selected command; returns the exit code.
  int run();

 private:
  void add_common(CLI::App* sub);

  CLI::App* queue_ = nullptr;
  CLI::App* suppression_ = nullptr;
  CLI::App* reload_ = nullptr;
  CLI::App* webhooks_ = nullptr;
  CLI::App *w_status_ = nullptr, *w_dead_ = nullptr, *w_replay_ = nullptr;
  CLI::App *shaping_ = nullptr, *sh_list_ = nullptr, *sh_clear_ = nullptr;
  bool clear_all_ = false;  // shaping clear --all
  CLI::App *cluster_ = nullptr, *c_status_ = nullptr;
  CLI::App *q_summary_, *q_list_, *q_show_, *q_suspend_, *q_resume_, *q_flush_, *q_bounce_;
  CLI::App *s_list_, *s_add_, *s_remove_;

  std::string api_ = "http://127.0.0.1:8025";
  std::string token_;
  std::string cacert_;  // https: the certificate(s) to trust instead of the system's CAs
  bool json_ = false;
  std::string destination_;  // queue list --destination, queue bounce --destination
  int limit_ = 0;            // 0: not given
  bool all_ = false;
  std::string id_;                 // queue show, queue bounce
  std::string target_;             // queue suspend/resume/flush DESTINATION
  std::string tenant_, campaign_;  // queue suspend/resume/flush/bounce --tenant T --campaign C
  CLI::Option *target_opt_[3] = {}, *tenant_opt_[4] = {}, *campaign_opt_[4] = {};
  std::string address_;  // suppression add/remove
  std::string webhook_;  // webhooks dead-letters/replay NAME
  std::string reason_;
  CLI::Option *list_dest_ = nullptr, *bounce_dest_ = nullptr, *bounce_id_ = nullptr;
  CLI::Option *bounce_reason_ = nullptr, *add_reason_ = nullptr;
};

}  // namespace mailgate::app
