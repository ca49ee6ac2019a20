// webhooks/webhooks_config: the keys of `webhooks` and of mailgate.webhook{}.
#include "webhooks/webhooks_config.hpp"

#include "tenancy/tenancy.hpp"

#include <algorithm>

#include "config/schema.hpp"

namespace mailgate::webhooks {
namespace {

void target_name(const std::string& s, const std::string& key, const config::Context& ctx) {
  const bool ok = !s.empty() && s.size() <= 64 && std::all_of(s.begin(), s.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
           c == '-' || c == '.';
  });
  if (!ok)
    ctx.expected(key, "a name of 1-64 letters, digits, '_', '-' or '.'", config::Value::of(s));
}

void http_url(const std::string& s, const std::string& key, const config::Context& ctx) {
  const bool scheme = s.starts_with("http://") || s.starts_with("https://");
  const auto rest = s.substr(s.find("//") + 2);
  const bool printable = std::all_of(s.begin(), s.end(), [](char c) {
    return static_cast<unsigned char>(c) > 0x20 && static_cast<unsigned char>(c) < 0x7f;
  });
  if (!scheme || rest.empty() || rest[0] == '/' || !printable)
    ctx.expected(key, "an http:// or https:// URL", config::Value::of(s));
}

void event_names(const std::vector<std::string>& events, const std::string& key,
                 const config::Context& ctx) {
  for (std::size_t i = 0; i < events.size(); ++i) {
    if (std::find(std::begin(kEventNames), std::end(kEventNames), events[i]) ==
        std::end(kEventNames)) {
      std::string known;
      for (auto n : kEventNames) known += (known.empty() ? "" : " | ") + std::string(n);
      ctx.fail(key, config::item_path(key, static_cast<long long>(i + 1)) + ": unknown event \"" +
                        events[i] + "\" (" + known + ")");
    }
  }
}

void check_tenant(const std::string& s, const std::string& key, const config::Context& ctx) {
  // The names msg:set_tenant accepts.
  if (!s.empty() && !tenancy::valid_name(s))
    ctx.fail(key, key + ": a tenant is 1..64 bytes of letters, digits, '.', '_' or '-'");
}

void check_target(TargetConfig& t, const std::string& path, const config::Context& ctx) {
  if (t.batch_time > t.max_age)
    ctx.fail(config::field_path(path, "batch_time"),
             config::field_path(path, "batch_time") + ": must not be longer than max_age");
  if (t.retry_first > t.retry_max)
    ctx.fail(config::field_path(path, "retry_first"),
             config::field_path(path, "retry_first") + ": must not be longer than retry_max");
}

}  // namespace

const config::Section<WebhooksConfig>& webhooks_section() {
  using C = WebhooksConfig;
  static const config::Section<C> s{{
      config::size("max_backlog", &C::max_backlog,
                   "bytes of undelivered events kept per webhook target (spool and memory); "
                   "beyond, new events become dead letters",
                   4096),
      config::string("ca_file", &C::ca_file,
                     "https targets: trusted CA certificates (PEM); empty: the system's"),
  }};
  return s;
}

const config::Section<TargetConfig>& target_section() {
  using C = TargetConfig;
  static const config::Section<C> s{
      {
          config::string("name", &C::name, "the target's name (API, CLI, metric label)")
              .check(target_name)
              .required("(a name of letters, digits, '_', '-', '.')"),
          config::string("url", &C::url, "where events are POSTed (http:// or https://)")
              .check(http_url)
              .required("(an http:// or https:// URL)"),
          config::string("secret", &C::secret,
                         "HMAC-SHA256 key of X-Mailgate-Signature (never logged or shown)")
              .check(config::nonempty)
              .required("(the shared secret that signs every POST)"),
          config::strings("events", &C::events, "event names to send; empty: all")
              .check(event_names),
          config::integer("batch_size", &C::batch_size, "records per POST at most", 1, 10000),
          config::duration("batch_time", &C::batch_time,
                           "longest an event waits for a fuller batch"),
          config::duration("max_age", &C::max_age,
                           "an event not acknowledged by then is a dead letter"),
          config::duration("timeout", &C::timeout, "one POST (connection included)"),
          config::duration("retry_first", &C::retry_first,
                           "wait after the first failed POST (doubles, with jitter)"),
          config::duration("retry_max", &C::retry_max, "longest wait between POSTs of a batch"),
          config::string("tenant", &C::tenant,
                         "only this tenant's events (records whose `tenant` is this name)")
              .check(check_tenant),
      },
      check_target};
  return s;
}

void check_targets(const std::vector<TargetConfig>& targets, const config::Context& ctx) {
  for (std::size_t i = 0; i < targets.size(); ++i)
    for (std::size_t j = 0; j < i; ++j)
      if (targets[i].name == targets[j].name) {
        const auto key =
            config::field_path(config::item_path("webhook", static_cast<long long>(i + 1)), "name");
        ctx.fail(key, key + ": \"" + targets[i].name + "\" is already a webhook target's name");
      }
}

}  // namespace mailgate::webhooks
