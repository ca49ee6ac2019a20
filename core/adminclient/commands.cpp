// adminclient/commands: see commands.hpp.
#include "adminclient/commands.hpp"

#include <set>

#include "adminclient/render.hpp"
#include "adminclient/table.hpp"
#include "text/ascii.hpp"

namespace mailgate::adminclient {
namespace {

// A 2xx answer whose shape is not what the contract says.
[[noreturn]] void unexpected(const std::string& what) {
  throw ApiError(200, "unexpected answer from the server: " + what);
}

std::string string_field(const Json& j, const char* key, const std::string& fallback) {
  if (j.is_object())
    if (auto it = j.find(key); it != j.end() && it->is_string()) return it->get<std::string>();
  return fallback;
}

}  // namespace

Commands::Commands(const ApiClient& api, bool json, std::ostream& out, std::ostream& err)
    : api_(api), json_(json), out_(out), err_(err) {}

template <class F>
int Commands::guarded(F&& body) {
  try {
    body();
    out_.flush();
    return kExitOk;
  } catch (const HttpError& e) {
    out_.flush();
    if (e.kind() == HttpError::Kind::Protocol) {
      err_ << "mailgate: the admin API at " << api_.url().str()
           << " did not answer with valid HTTP: " << e.what() << "\n"
           << "mailgate: check that --api points at the gateway's http.listen address "
              "(https:// when http.tls is set)\n";
    } else if (e.kind() == HttpError::Kind::Tls) {
      err_ << "mailgate: TLS with the admin API at " << api_.url().str() << " failed: " << e.what()
           << "\n"
           << "mailgate: for a self-signed certificate pass --cacert with it (the gateway's "
              "tls.cert or http.tls.cert)\n";
    } else {
      err_ << "mailgate: cannot reach the admin API at " << api_.url().str() << ": " << e.what()
           << "\n"
           << "mailgate: is the gateway running, and does --api match its http.listen setting?\n";
    }
    return kExitUnreachable;
  } catch (const ApiError& e) {
    out_.flush();
    err_ << "mailgate: " << e.status() << ": " << sanitize(e.what()) << "\n";
    if (e.status() == 401)
      err_ << "mailgate: pass --token TOKEN or set MAILGATE_API_TOKEN (http.token)\n";
    return kExitApiError;
  } catch (const Json::exception& e) {
    out_.flush();
    err_ << "mailgate: unexpected answer from the server: " << e.what() << "\n";
    return kExitApiError;
  } catch (const std::exception& e) {
    out_.flush();
    err_ << "mailgate: " << e.what() << "\n";
    return kExitApiError;
  }
}

void Commands::print_json(const Json& j) {
  out_ << j.dump(2, ' ', false, Json::error_handler_t::replace) << "\n";
}

Json Commands::list(const std::string& path, std::string query, const char* key,
                    const ListOptions& o, bool& more) {
  auto add = [&query](const char* name, const std::string& value) {
    query += (query.empty() ? "?" : "&");
    query += name;
    query += '=';
    query += text::percent_encode(value);
  };
  if (o.limit) {
    add("limit", std::to_string(*o.limit));
  } else if (o.all) {
    add("limit", "1000");  // fewer round trips; the contract's maximum
  }
  Json merged;
  Json items = Json::array();
  std::set<std::string> seen;
  std::string cursor;
  more = false;
  while (true) {
    std::string target = path + query;
    if (!cursor.empty())
      target += (query.empty() ? "?cursor=" : "&cursor=") + text::percent_encode(cursor);
    Json page = api_.call("GET", target);
    if (!page.is_object() || !page.contains(key) || !page[key].is_array())
      unexpected(std::string("no \"") + key + "\" array");
    for (auto& item : page[key]) items.push_back(std::move(item));
    merged = std::move(page);
    const auto& next = merged.contains("next_cursor") ? merged["next_cursor"] : Json();
    if (!next.is_string() || next.get_ref<const std::string&>().empty()) break;
    if (!o.all) {
      more = true;
      break;
    }
    cursor = next.get<std::string>();
    if (!seen.insert(cursor).second) unexpected("next_cursor repeats \"" + cursor + "\"");
  }
  merged[key] = std::move(items);
  if (o.all) merged["next_cursor"] = nullptr;
  return merged;
}

int Commands::queue_summary() {
  return guarded([&] {
    Json q = api_.call("GET", "/api/v1/queue");
    if (!q.is_object()) unexpected("not an object");
    if (json_) return print_json(q);
    out_ << render_queue_summary(q);
  });
}

int Commands::queue_list(const ListOptions& o) {
  return guarded([&] {
    std::string query;
    if (o.destination) query = "?destination=" + text::percent_encode(*o.destination);
    bool more = false;
    Json page = list("/api/v1/messages", query, "messages", o, more);
    if (json_) return print_json(page);
    out_ << render_message_list(page["messages"]);
    if (more) out_ << "(more messages: use --all to list them all)\n";
  });
}

int Commands::queue_show(const std::string& id) {
  return guarded([&] {
    Json m = api_.call("GET", "/api/v1/messages/" + text::percent_encode(id));
    if (!m.is_object()) unexpected("not an object");
    if (json_) return print_json(m);
    out_ << render_message(m);
  });
}

int Commands::queue_action(const std::string& action, const std::string& destination) {
  return guarded([&] {
    Json r = api_.call("POST", "/api/v1/queue/" + text::percent_encode(destination) + "/" + action);
    if (json_) return print_json(r);
    const std::string done = action == "suspend"  ? "suspended"
                             : action == "resume" ? "resumed"
                             : action == "flush"  ? "flushed"
                                                  : action;
    out_ << done << " " << sanitize(string_field(r, "destination", destination)) << "\n";
  });
}

namespace {
Json tenant_body(const std::string& tenant, const std::string& campaign,
                 const std::string& destination) {
  Json body = Json::object();
  body["tenant"] = tenant;
  if (!campaign.empty()) body["campaign"] = campaign;
  if (!destination.empty()) body["destination"] = destination;
  return body;
}
}  // namespace

int Commands::queue_tenant_action(const std::string& action, const std::string& tenant,
                                  const std::string& campaign, const std::string& destination) {
  return guarded([&] {
    Json body = tenant_body(tenant, campaign, destination);
    Json r = api_.call("POST", "/api/v1/queue/" + action, &body);
    if (json_) return print_json(r);
    const std::string done = action == "suspend"  ? "suspended"
                             : action == "resume" ? "resumed"
                                                  : "flushed";
    out_ << done << " tenant " << sanitize(tenant);
    if (!campaign.empty()) out_ << " campaign " << sanitize(campaign);
    if (!destination.empty()) out_ << " at " << sanitize(destination);
    if (r.is_object() && r.contains("flushed")) out_ << " (" << cell(r["flushed"]) << " messages)";
    out_ << "\n";
  });
}

int Commands::queue_bounce_tenant(const std::string& tenant, const std::string& campaign,
                                  const std::string& destination,
                                  const std::optional<std::string>& reason) {
  return post_bounce(tenant_body(tenant, campaign, destination), reason);
}

int Commands::queue_bounce(const std::optional<std::string>& id,
                           const std::optional<std::string>& destination,
                           const std::optional<std::string>& reason) {
  Json body = Json::object();
  if (id) body["id"] = *id;
  if (destination) body["destination"] = *destination;
  return post_bounce(std::move(body), reason);
}

int Commands::post_bounce(Json body, const std::optional<std::string>& reason) {
  return guarded([&] {
    if (reason) body["reason"] = *reason;
    Json r = api_.call("POST", "/api/v1/bounce", &body);
    if (json_) return print_json(r);
    print_count(r, "bounced", "bounced", "message", "messages");
  });
}

int Commands::suppression_list(const ListOptions& o) {
  return guarded([&] {
    bool more = false;
    Json page = list("/api/v1/suppression", "", "entries", o, more);
    if (json_) return print_json(page);
    out_ << render_suppression_list(page["entries"]);
    if (more) out_ << "(more entries: use --all to list them all)\n";
  });
}

int Commands::suppression_add(const std::string& address,
                              const std::optional<std::string>& reason) {
  return guarded([&] {
    Json body = {{"address", address}};
    if (reason) body["reason"] = *reason;
    Json r = api_.call("POST", "/api/v1/suppression", &body);
    if (json_) return print_json(r);
    out_ << "added " << sanitize(string_field(r, "address", address))
         << " to the suppression list\n";
  });
}

int Commands::suppression_remove(const std::string& address) {
  return guarded([&] {
    Json r = api_.call("DELETE", "/api/v1/suppression/" + text::percent_encode(address));
    if (json_) return print_json(r);
    out_ << "removed " << sanitize(string_field(r, "address", address))
         << " from the suppression list\n";
  });
}

int Commands::reload() {
  return guarded([&] {
    Json r = api_.call("POST", "/api/v1/reload");
    if (json_) return print_json(r);
    const auto& v = r.is_object() && r.contains("version") ? r["version"] : Json();
    out_ << "reloaded the configuration" << (v.is_null() ? "" : " (version " + cell(v) + ")")
         << "\n";
  });
}

int Commands::webhooks_status() {
  return show("/api/v1/webhooks", "targets",
              [](const Json& r) { return render_webhook_targets(r["targets"]); });
}

int Commands::cluster_status() { return show("/api/v1/cluster", "nodes", render_cluster); }

int Commands::show(const std::string& target, const char* key,
                   const std::function<std::string(const Json&)>& render) {
  return guarded([&] {
    Json r = api_.call("GET", target);
    if (!r.is_object() || !r.contains(key)) unexpected(std::string("no \"") + key + "\" array");
    if (json_) return print_json(r);
    out_ << render(r);
  });
}

void Commands::print_count(const Json& r, const char* key, std::string_view verb,
                           std::string_view one, std::string_view many, std::string_view tail) {
  const auto& n = r.is_object() && r.contains(key) ? r[key] : Json();
  if (!n.is_number_integer()) unexpected(std::string("no \"") + key + "\" count");
  out_ << verb << " " << cell(n) << " " << (n == 1 ? one : many) << tail << "\n";
}

int Commands::webhooks_dead_letters(const std::string& name, const ListOptions& o) {
  return guarded([&] {
    std::string target = "/api/v1/webhooks/" + text::percent_encode(name) + "/dead_letters";
    if (o.limit) target += "?limit=" + std::to_string(*o.limit);
    Json r = api_.call("GET", target);
    if (!r.is_object() || !r.contains("dead_letters")) unexpected("no \"dead_letters\" array");
    if (json_) return print_json(r);
    out_ << render_dead_letters(r["dead_letters"]);
  });
}

int Commands::webhooks_replay(const std::string& name) {
  return guarded([&] {
    Json r = api_.call("POST", "/api/v1/webhooks/" + text::percent_encode(name) + "/replay");
    if (json_) return print_json(r);
    print_count(r, "replayed", "requeued", "dead letter", "dead letters", " of " + sanitize(name));
  });
}

int Commands::shaping_list() {
  return show("/api/v1/shaping", "actions",
              [](const Json& r) { return render_shaping_actions(r["actions"]); });
}

int Commands::shaping_clear(const std::optional<std::string>& id) {
  return guarded([&] {
    Json r = api_.call("DELETE",
                       id ? "/api/v1/shaping/" + text::percent_encode(*id) : "/api/v1/shaping");
    if (json_) return print_json(r);
    print_count(r, "cleared", "cleared", "shaping action", "shaping actions");
  });
}

}  // namespace mailgate::adminclient
