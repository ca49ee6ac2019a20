// adminclient/render: see render.hpp.
#include "adminclient/render.hpp"

#include <ctime>

#include <cmath>
#include <cstdio>

#include "adminclient/table.hpp"

namespace mailgate::adminclient {
namespace {

const Json& field(const Json& obj, const char* key) {
  static const Json kNull;
  if (!obj.is_object()) return kNull;
  auto it = obj.find(key);
  return it == obj.end() ? kNull : *it;
}

const Json& array_or_empty(const Json& value) {
  static const Json kEmpty = Json::array();
  return value.is_array() ? value : kEmpty;
}

std::string sender_cell(const Json& sender) {
  if (sender.is_string() && sender.get_ref<const std::string&>().empty()) return "<>";
  return cell(sender);
}

}  // namespace

std::string format_age(double seconds) {
  if (!std::isfinite(seconds) || seconds < 0) return "-";
  const auto s = static_cast<long long>(seconds);
  char buf[48];
  if (s < 60) {
    std::snprintf(buf, sizeof buf, "%llds", s);
  } else if (s < 3600) {
    std::snprintf(buf, sizeof buf, "%lldm%02llds", s / 60, s % 60);
  } else if (s < 86400) {
    std::snprintf(buf, sizeof buf, "%lldh%02lldm", s / 3600, s % 3600 / 60);
  } else {
    std::snprintf(buf, sizeof buf, "%lldd%02lldh", s / 86400, s % 86400 / 3600);
  }
  return buf;
}

std::string cell(const Json& value) {
  if (value.is_string()) return value.get<std::string>();
  if (value.is_boolean()) return value.get<bool>() ? "yes" : "no";
  if (value.is_number_integer()) return value.dump();
  if (value.is_number_float()) {
    const double d = value.get<double>();
    if (!std::isfinite(d)) return "-";
    char buf[64];
    if (d == std::floor(d) && std::fabs(d) < 1e15) {
      std::snprintf(buf, sizeof buf, "%.0f", d);
    } else {
      std::snprintf(buf, sizeof buf, "%.1f", d);
    }
    return buf;
  }
  if (value.is_null()) return "-";
  return value.dump(-1, ' ', false, Json::error_handler_t::replace);
}

std::string render_queue_summary(const Json& queue) {
  using A = Table::Align;
  Table t({"DESTINATION", "SCHEDULED", "READY", "IN-FLIGHT", "CONN", "SUSPENDED", "OLDEST"},
          {A::Left, A::Right, A::Right, A::Right, A::Right, A::Left, A::Right});
  for (const auto& d : array_or_empty(field(queue, "destinations"))) {
    const auto& age = field(d, "oldest_age_seconds");
    t.add_row({cell(field(d, "name")), cell(field(d, "scheduled")), cell(field(d, "ready")),
               cell(field(d, "in_flight")), cell(field(d, "connections")),
               cell(field(d, "suspended")), age.is_number() ? format_age(age.get<double>()) : "-"});
  }
  std::string out = t.render();
  const auto& totals = field(queue, "totals");
  if (totals.is_object()) {
    const auto& n = field(totals, "destinations");
    out += cell(n) + (n == 1 ? " destination: " : " destinations: ") +
           cell(field(totals, "scheduled")) + " scheduled, " + cell(field(totals, "ready")) +
           " ready, " + cell(field(totals, "in_flight")) + " in flight\n";
  }
  return out;
}

std::string render_message_list(const Json& messages) {
  using A = Table::Align;
  Table t({"ID", "DESTINATION", "SENDER", "RECIPIENTS", "ATTEMPTS", "NEXT"},
          {A::Left, A::Left, A::Left, A::Left, A::Right, A::Left});
  for (const auto& m : array_or_empty(messages)) {
    const auto& rcpts = array_or_empty(field(m, "recipients"));
    std::string r = rcpts.empty() ? "-" : cell(field(rcpts[0], "address"));
    if (rcpts.size() > 1) r += " +" + std::to_string(rcpts.size() - 1);
    t.add_row({cell(field(m, "id")), cell(field(m, "destination")), sender_cell(field(m, "sender")),
               r, cell(field(m, "attempts")), cell(field(m, "next_attempt"))});
  }
  return t.render();
}

std::string render_message(const Json& message) {
  std::string out;
  auto line = [&](const char* label, const std::string& value) {
    std::string l = label;
    l.resize(10, ' ');
    out += l + sanitize(value) + "\n";
  };
  line("id", cell(field(message, "id")));
  line("sender", sender_cell(field(message, "sender")));
  line("size", cell(field(message, "size")));
  line("received", cell(field(message, "received")));
  const auto& meta = field(message, "meta");
  if (meta.is_object() && !meta.empty()) {
    std::string m;
    for (const auto& [k, v] : meta.items()) m += (m.empty() ? "" : ", ") + k + "=" + cell(v);
    line("meta", m);
  }
  for (const auto& d : array_or_empty(field(message, "destinations"))) {
    out += "\ndestination " + sanitize(cell(field(d, "name"))) + ": " + cell(field(d, "attempts")) +
           " attempt(s), next " + sanitize(cell(field(d, "next_attempt"))) + "\n";
    Table t({"  RECIPIENT", "STATE", "LAST REPLY"});
    for (const auto& r : array_or_empty(field(d, "recipients")))
      t.add_row({"  " + cell(field(r, "address")), cell(field(r, "state")),
                 cell(field(r, "last_reply"))});
    out += t.render();
  }
  return out;
}

std::string render_suppression_list(const Json& entries) {
  Table t({"ADDRESS", "ADDED", "REASON"});
  for (const auto& e : array_or_empty(entries))
    t.add_row({cell(field(e, "address")), cell(field(e, "added")), cell(field(e, "reason"))});
  return t.render();
}

std::string render_webhook_targets(const Json& targets) {
  Table t({"TARGET", "URL", "BACKLOG", "BYTES", "DEAD", "SENT", "FAILED", "LAST-ERROR"},
          {Table::Align::Left, Table::Align::Left, Table::Align::Right, Table::Align::Right,
           Table::Align::Right, Table::Align::Right, Table::Align::Right, Table::Align::Left});
  for (const auto& w : array_or_empty(targets)) {
    t.add_row({cell(field(w, "name")), cell(field(w, "url")), cell(field(w, "backlog_events")),
               cell(field(w, "backlog_bytes")), cell(field(w, "dead_letters")),
               cell(field(w, "sent")), cell(field(w, "failed")), cell(field(w, "last_error"))});
  }
  if (t.rows() == 0) return "no webhook targets (mailgate.webhook{} in the config)\n";
  return t.render();
}

std::string render_cluster(const Json& c) {
  const auto& redis = field(c, "redis");
  const bool up = field(redis, "up").is_boolean() && field(redis, "up").get<bool>();
  std::string out = "node " + cell(field(c, "node")) + ", redis " + cell(field(redis, "url")) +
                    (up ? " up, latency " + cell(field(redis, "latency_ms")) + " ms"
                        : " DOWN (" + cell(field(redis, "last_error")) + "): local limits") +
                    ", " + cell(field(c, "live_nodes")) + " live node(s)\n";
  Table t({"NODE", "LAST-SEEN", "AGE-MS", "CONNECTIONS", "LIVE"},
          {Table::Align::Left, Table::Align::Left, Table::Align::Right, Table::Align::Right,
           Table::Align::Left});
  for (const auto& n : array_or_empty(field(c, "nodes"))) {
    t.add_row({cell(field(n, "node")), cell(field(n, "last_seen")), cell(field(n, "age_ms")),
               cell(field(n, "connections")), cell(field(n, "live"))});
  }
  std::string tail;
  if (const auto& l = field(c, "leases"); l.is_object()) {
    const bool shared = field(l, "shared").is_boolean() && field(l, "shared").get<bool>();
    tail += "connection leases: " + cell(field(l, "held")) + " held" +
            (shared ? " (shared in Redis)" : " (LOCAL share: Redis down or not yet known)") + ", " +
            cell(field(l, "refused")) + " refused, " + cell(field(l, "expired")) +
            " expired dropped\n";
    Table keys({"LIMIT", "HELD", "SPARE", "MAX"},
               {Table::Align::Left, Table::Align::Right, Table::Align::Right, Table::Align::Right});
    for (const auto& k : array_or_empty(field(l, "keys")))
      keys.add_row({cell(field(k, "key")), cell(field(k, "held")), cell(field(k, "spare")),
                    cell(field(k, "max"))});
    if (keys.rows() > 0) tail += keys.render();
  }
  // One line per replicated table (refused: rows read from Redis not applied).
  for (const char* table : {"suppression", "suspensions", "shaping"}) {
    const auto& s = field(c, table);
    if (!s.is_object()) continue;
    tail += std::string(table) + " sync: " + cell(field(s, "applied")) + " applied, " +
            cell(field(s, "pushed")) + " pushed, " + cell(field(s, "pending")) + " pending, lag " +
            cell(field(s, "lag_seconds")) + " s";
    if (const auto& r = field(s, "refused"); r.is_number() && r.get<double>() > 0)
      tail += ", " + cell(r) + " refused";
    tail += "\n";
  }
  if (t.rows() == 0) return out + "no heartbeats seen yet\n" + tail;
  return out + t.render() + tail;
}

std::string render_dead_letters(const Json& dead_letters) {
  Table t({"SEQ", "QUEUED", "EVENT", "ID", "RECIPIENT", "REASON"}, {Table::Align::Right});
  for (const auto& d : array_or_empty(dead_letters)) {
    const auto& e = field(d, "event");
    t.add_row({cell(field(d, "seq")), cell(field(d, "queued")), cell(field(e, "event")),
               cell(field(e, "id")), cell(field(e, "recipient")), cell(field(d, "reason"))});
  }
  if (t.rows() == 0) return "no dead letters\n";
  return t.render();
}

std::string render_shaping_actions(const Json& actions) {
  Table t({"ID", "RULE", "ACTION", "SITE", "SOURCE", "TENANT", "CAMPAIGN", "UNTIL"});
  for (const auto& a : array_or_empty(actions)) {
    std::string until = cell(field(a, "until"));
    if (const auto& u = field(a, "until"); u.is_number_integer()) {
      const std::time_t secs = static_cast<std::time_t>(u.get<std::int64_t>() / 1000);
      std::tm tm{};
      char buf[32];
      if (gmtime_r(&secs, &tm) && std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm))
        until = buf;
    }
    std::string action = cell(field(a, "action"));
    if (const auto& set = field(a, "set"); set.is_object())
      for (const auto& [k, v] : set.items()) action += " " + k + "=" + cell(v);
    t.add_row({cell(field(a, "id")), cell(field(a, "rule")), action, cell(field(a, "site")),
               cell(field(a, "source")), cell(field(a, "tenant")), cell(field(a, "campaign")),
               until});
  }
  if (t.rows() == 0) return "no shaping actions in force\n";
  return t.render();
}

}  // namespace mailgate::adminclient
