// app/admin_cli: see admin_cli.hpp.
#include "app/admin_cli.hpp"

#include <cstdlib>
#include <cstring>
#include <iostream>
#include <optional>

#include "adminclient/commands.hpp"
#include "adminclient/url.hpp"

namespace mailgate::app {
namespace {

using adminclient::kExitUsage;

int usage(const std::string& message) {
  std::cerr << "mailgate: " << message << "\nRun with --help for more information.\n";
  return kExitUsage;
}

std::optional<std::string> given(const CLI::Option* opt, const std::string& value) {
  if (opt == nullptr || opt->count() == 0) return std::nullopt;
  return value;
}

}  // namespace

AdminCli::AdminCli(CLI::App& app) {
  if (const char* env = std::getenv("MAILGATE_API_TOKEN")) token_ = env;

  queue_ = app.add_subcommand("queue", "admin: inspect and manage the queue (HTTP admin API)");
  queue_->require_subcommand(1);
  add_common(queue_);
  q_summary_ = queue_->add_subcommand("summary", "per-destination counts");
  q_list_ = queue_->add_subcommand("list", "list queued messages");
  list_dest_ = q_list_->add_option("--destination", destination_, "only this destination");
  q_list_->add_option("--limit", limit_, "messages per request (server default 100)")
      ->check(CLI::Range(1, 1000));
  q_list_->add_flag("--all", all_, "follow next_cursor to the end");
  q_show_ = queue_->add_subcommand("show", "one message with its recipients");
  q_show_->add_option("ID", id_, "message id (32 hex digits)")->required();
  q_suspend_ = queue_->add_subcommand("suspend", "stop delivering to a destination");
  q_resume_ = queue_->add_subcommand("resume", "resume a suspended destination");
  q_flush_ = queue_->add_subcommand("flush", "retry a destination's messages now");
  int n = 0;
  for (auto* sub : {q_suspend_, q_resume_, q_flush_})
    target_opt_[n++] =
        sub->add_option("DESTINATION", target_, "destination, e.g. gmail.com or [10.0.0.1]:25");
  q_bounce_ = queue_->add_subcommand("bounce", "bounce a message or a destination (DSNs sent)");
  bounce_id_ = q_bounce_->add_option("ID", id_, "message id");
  bounce_dest_ =
      q_bounce_->add_option("--destination", destination_, "bounce every message to this");
  bounce_id_->excludes(bounce_dest_);
  bounce_reason_ = q_bounce_->add_option("--reason", reason_, "text for the DSN");
  // Tenants and campaigns (README "Tenants, campaigns and fair scheduling").
  n = 0;
  for (auto* sub : {q_suspend_, q_resume_, q_flush_, q_bounce_}) {
    tenant_opt_[n] = sub->add_option("--tenant", tenant_, "only this tenant's messages");
    campaign_opt_[n] =
        sub->add_option("--campaign", campaign_, "only this campaign's (needs --tenant)")
            ->needs(tenant_opt_[n]);
    ++n;
  }
  tenant_opt_[3]->excludes(bounce_id_);

  suppression_ = app.add_subcommand("suppression", "admin: the suppression list (HTTP admin API)");
  suppression_->require_subcommand(1);
  add_common(suppression_);
  s_list_ = suppression_->add_subcommand("list", "list suppressed addresses");
  s_list_->add_option("--limit", limit_, "entries per request (server default 100)")
      ->check(CLI::Range(1, 1000));
  s_list_->add_flag("--all", all_, "follow next_cursor to the end");
  s_add_ = suppression_->add_subcommand("add", "suppress an address");
  s_add_->add_option("ADDRESS", address_, "email address")->required();
  add_reason_ = s_add_->add_option("--reason", reason_, "why (shown in the list)");
  s_remove_ = suppression_->add_subcommand("remove", "remove an address");
  s_remove_->add_option("ADDRESS", address_, "email address")->required();

  reload_ = app.add_subcommand("reload", "admin: reload the Lua config and plugins (HTTP API)");
  add_common(reload_);

  webhooks_ = app.add_subcommand("webhooks", "admin: webhook targets (HTTP admin API)");
  webhooks_->require_subcommand(1);
  add_common(webhooks_);
  w_status_ = webhooks_->add_subcommand("status", "targets, backlog, dead letters, last error");
  w_dead_ = webhooks_->add_subcommand("dead-letters", "list a target's dead letters");
  w_dead_->add_option("--limit", limit_, "entries to show (server default 100)")
      ->check(CLI::Range(1, 1000));
  w_replay_ = webhooks_->add_subcommand("replay", "requeue a target's dead letters");
  for (auto* sub : {w_dead_, w_replay_})
    sub->add_option("NAME", webhook_, "the target's name (mailgate.webhook{ name = ... })")
        ->required();
  for (auto* sub : {w_status_, w_dead_, w_replay_}) add_common(sub);

  shaping_ = app.add_subcommand("shaping", "admin: traffic shaping actions in force (HTTP API)");
  shaping_->require_subcommand(1);
  add_common(shaping_);
  sh_list_ = shaping_->add_subcommand("list", "actions in force: rule, path, until when");
  sh_clear_ = shaping_->add_subcommand("clear", "end an action (or every one) before its time");
  auto* clear_id = sh_clear_->add_option("ID", id_, "the action's id (shaping list)");
  sh_clear_->add_flag("--all", clear_all_, "every action in force")->excludes(clear_id);
  for (auto* sub : {sh_list_, sh_clear_}) add_common(sub);
  cluster_ = app.add_subcommand("cluster", "admin: nodes sharing one Redis (HTTP admin API)");
  cluster_->require_subcommand(1);
  add_common(cluster_);
  c_status_ = cluster_->add_subcommand("status", "nodes seen, their heartbeats, Redis latency");
  add_common(c_status_);

  for (auto* sub : {q_summary_, q_list_, q_show_, q_suspend_, q_resume_, q_flush_, q_bounce_,
                    s_list_, s_add_, s_remove_})
    add_common(sub);
}

void AdminCli::add_common(CLI::App* sub) {
  sub->add_option("--api", api_, "admin API base URL (http:// or https://)")->capture_default_str();
  sub->add_option("--token", token_, "bearer token (default: $MAILGATE_API_TOKEN)");
  sub->add_option("--cacert", cacert_,
                  "https: trust the certificates in this PEM file (e.g. the gateway's own "
                  "self-signed tls.cert) instead of the system's CAs");
  sub->add_flag("--json", json_, "print the server's JSON instead of a table");
}

bool AdminCli::is_admin_command(int argc, char** argv) {
  if (argc < 2) return false;
  for (const char* name : {"queue", "suppression", "reload", "webhooks", "shaping", "cluster"})
    if (std::strcmp(argv[1], name) == 0) return true;
  return false;
}

bool AdminCli::selected() const {
  return *queue_ || *suppression_ || *reload_ || *webhooks_ || *shaping_ || *cluster_;
}

int AdminCli::run() {
  std::string why;
  auto url = adminclient::parse_url(api_, &why);
  if (!url) return usage("--api " + api_ + ": " + why);
  std::optional<adminclient::ApiClient> api;
  try {
    adminclient::HttpOptions http;
    http.ca_file = cacert_;
    api.emplace(*url, token_, http);
  } catch (const std::invalid_argument& e) {
    return usage(std::string("--token: ") + e.what());
  }
  adminclient::Commands cmd(*api, json_, std::cout, std::cerr);

  adminclient::ListOptions list;
  if (limit_ > 0) list.limit = limit_;
  list.all = all_;

  if (*q_summary_) return cmd.queue_summary();
  if (*q_list_) {
    list.destination = given(list_dest_, destination_);
    if (list.destination && list.destination->empty())
      return usage("queue list: --destination must not be empty");
    return cmd.queue_list(list);
  }
  if (*q_show_) {
    if (id_.empty()) return usage("queue show: the message id must not be empty");
    return cmd.queue_show(id_);
  }
  for (auto [sub, action] : {std::pair{q_suspend_, "suspend"}, std::pair{q_resume_, "resume"},
                             std::pair{q_flush_, "flush"}}) {
    if (!*sub) continue;
    const bool tenant = sub->count("--tenant") > 0;
    if (tenant) {
      if (tenant_.empty()) return usage(std::string("queue ") + action + ": empty --tenant");
      return cmd.queue_tenant_action(action, tenant_, campaign_, target_);
    }
    if (target_.empty())
      return usage(std::string("queue ") + action + ": give a DESTINATION or --tenant T");
    return cmd.queue_action(action, target_);
  }
  if (*q_bounce_ && q_bounce_->count("--tenant") > 0) {
    if (tenant_.empty()) return usage("queue bounce: empty --tenant");
    return cmd.queue_bounce_tenant(tenant_, campaign_, destination_,
                                   given(bounce_reason_, reason_));
  }
  if (*q_bounce_) {
    auto id = given(bounce_id_, id_);
    auto dest = given(bounce_dest_, destination_);
    if (!id && !dest) return usage("queue bounce: give a message ID or --destination D");
    if ((id && id->empty()) || (dest && dest->empty()))
      return usage("queue bounce: empty message ID or destination");
    return cmd.queue_bounce(id, dest, given(bounce_reason_, reason_));
  }
  if (*s_list_) return cmd.suppression_list(list);
  if (*s_add_) {
    if (address_.empty()) return usage("suppression add: empty address");
    return cmd.suppression_add(address_, given(add_reason_, reason_));
  }
  if (*s_remove_) {
    if (address_.empty()) return usage("suppression remove: empty address");
    return cmd.suppression_remove(address_);
  }
  if (*reload_) return cmd.reload();
  if (*w_status_) return cmd.webhooks_status();
  if (*c_status_) return cmd.cluster_status();
  if (*w_dead_ || *w_replay_) {
    if (webhook_.empty()) return usage("webhooks: empty target name");
    return *w_dead_ ? cmd.webhooks_dead_letters(webhook_, list) : cmd.webhooks_replay(webhook_);
  }
  if (*sh_list_) return cmd.shaping_list();
  if (*sh_clear_) {
    if (clear_all_) return cmd.shaping_clear(std::nullopt);
    if (id_.empty()) return usage("shaping clear: give an action ID or --all");
    return cmd.shaping_clear(id_);
  }
  return usage("no admin command given");
}

}  // namespace mailgate::app
