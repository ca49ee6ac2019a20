// delivery/delivery_config: the keys of the `delivery` section, its retry
// table and its bounce rules.
#include "delivery/delivery_config.hpp"

#include <fstream>

#include "config/schema.hpp"
#include "feedback/feedback_config.hpp"

namespace mailgate::delivery {
namespace {

void first_within_max(RetryConfig& r, const std::string& path, const config::Context& ctx) {
  if (r.first <= r.max) return;
  const auto key = config::field_path(path, "first");
  ctx.fail(key, key + ": must not be longer than " + config::field_path(path, "max"));
}

const config::Section<RetryConfig>& retry_section() {
  using C = RetryConfig;
  static const config::Section<C> s{
      {
          config::duration("first", &C::first,
                           "backoff start: the first retry of a message (and the wait of a "
                           "destination no server of which could be reached)"),
          config::duration("max", &C::max, "backoff cap (the backoff doubles up to it)"),
          config::duration("max_age", &C::max_age,
                           "expiry age: older messages bounce at their next attempt"),
          config::duration("delay_warning", &C::delay_warning,
                           "one delay DSN after this age (`0`: never)", /*allow_zero=*/true),
      },
      first_within_max};
  return s;
}

const config::Section<ClientTimeoutConfig>& client_timeout_section() {
  using C = ClientTimeoutConfig;
  static const config::Section<C> s{{
      config::duration("connect", &C::connect, "the TCP connection to each MX address"),
      config::duration("greeting", &C::greeting, "the server's 220 greeting (RFC 5321 §4.5.3.2.1)"),
      config::duration("command", &C::command,
                       "the reply to EHLO, MAIL, RCPT, STARTTLS (and its TLS handshake), AUTH, "
                       "RSET, QUIT (§4.5.3.2.2-3)"),
      config::duration("data_init", &C::data_init, "the 354 reply to DATA (§4.5.3.2.4)"),
      config::duration("data_block", &C::data_block,
                       "sending each block of the message (§4.5.3.2.5)"),
      config::duration("data_end", &C::data_end,
                       "the reply to the final dot (§4.5.3.2.6); past it the attempt counts as "
                       "a temporary failure and the message is retried (it may arrive twice)"),
  }};
  return s;
}

std::vector<std::pair<std::string, smtp::TlsMode>> tls_modes() {
  std::vector<std::pair<std::string, smtp::TlsMode>> out;
  for (auto m : smtp::kTlsModes) out.emplace_back(smtp::to_string(m), m);
  return out;
}

// A mode DESIGN §6b names but this build does not have yet is refused, so
// that nothing is delivered with less protection than the config asks for.
void refuse_unbuilt_tls_mode(const smtp::TlsMode& m, const std::string& key,
                             const config::Context& ctx) {
  if (!smtp::tls_mode_built(m))
    ctx.fail(key, key + ": \"" + std::string(smtp::to_string(m)) + "\" is not implemented yet");
}

void readable_file(const std::string& path, const std::string& key, const config::Context& ctx) {
  if (path.empty()) return;
  if (!std::ifstream(path).good()) ctx.fail(key, key + ": cannot read " + path);
}

std::vector<std::pair<std::string, smtp::BounceClass>> bounce_classes() {
  std::vector<std::pair<std::string, smtp::BounceClass>> out;
  for (auto c :
       {smtp::BounceClass::BadMailbox, smtp::BounceClass::BadDomain,
        smtp::BounceClass::PolicyReputation, smtp::BounceClass::Content, smtp::BounceClass::Quota,
        smtp::BounceClass::Routing, smtp::BounceClass::Transient, smtp::BounceClass::Other}) {
    out.emplace_back(smtp::to_string(c), c);
  }
  return out;
}

const config::Section<smtp::BounceRule>& bounce_rule_section() {
  using C = smtp::BounceRule;
  static const config::Section<C> s{{
      config::choice("class", &C::cls, "the `bounce_class` a matching reply gets", bounce_classes(),
                     "bad-mailbox, bad-domain, policy, content, quota, routing, transient or other")
          .required("(bad-mailbox, bad-domain, policy, content, quota, routing, transient, other)"),
      config::string("enhanced", &C::enhanced_prefix,
                     "prefix of the reply's enhanced status code (`\"5.7.\"`, `\"5.1.1\"`)"),
      config::string("text", &C::text_pattern, "case-insensitive substring of the reply's text"),
      config::integer("code_min", &C::code_min, "lowest reply code the rule matches", 400, 599),
      config::integer("code_max", &C::code_max, "highest reply code the rule matches", 400, 599),
  }};
  return s;
}

void verp_template(const std::string& t, const std::string& key, const config::Context& ctx) {
  std::string error;
  feedback::parse_verp_template(t, error);
  if (!error.empty()) ctx.fail(key, key + ": " + error + " (e.g. \"b+{id}.{rcpt_hash}@bounces.example.com\")");
}

void verp_needs_secret(DeliveryConfig& d, const std::string& path, const config::Context& ctx) {
  const auto key = config::field_path(path, "verp_secret");
  if (!d.verp.empty() && d.verp_secret.size() < feedback::kMinVerpSecret)
    ctx.fail(key, key + ": required with verp, at least " +
                      std::to_string(feedback::kMinVerpSecret) + " characters");
}

}  // namespace

const config::Section<DeliveryConfig>& delivery_section() {
  using C = DeliveryConfig;
  static const config::Section<C> s{{
      config::integer("port", &C::port, "remote SMTP port", 1, 65535),
      config::section("retry", &C::retry, retry_section(), "when failed deliveries are retried"),
      config::integer("max_connections", &C::max_connections,
                      "connections per destination, over all workers", 1),
      config::integer("max_messages_per_connection", &C::max_messages_per_connection,
                      "then a new connection", 1),
      config::choice(
          "tls", &C::tls,
          "outbound STARTTLS (TLS 1.2+, SNI = MX name): `opportunistic` uses it when offered and "
          "accepts any certificate (RFC 7435; a failed handshake is retried in plaintext on a new "
          "connection); `required` defers the destination with `421 4.7.10` when the MX does not "
          "offer it or the handshake fails (`4.7.5`), and also accepts any certificate "
          "(encryption, not authentication); `verify` also defers (`4.7.5`) unless the "
          "certificate chains to a trusted CA (`tls_ca_file`) and names the MX host (RFC 6125 / "
          "RFC 7672 §3.2.2: a subjectAltName DNS name, `*` only as the whole leftmost label); "
          "`dane` (RFC 7672) looks up the TLSA records of each MX host whose MX and address "
          "answers are DNSSEC-authentic (AD from a validating resolver, `dns.servers`): usable "
          "ones make STARTTLS mandatory (`4.7.10`) and the certificate must match them (else "
          "`4.7.5`), a failed TLSA lookup defers (`4.7.5`), none or not authentic: as "
          "`opportunistic` (see \"Outbound DANE\"); `disabled` never uses it",
          tls_modes())
          .check(refuse_unbuilt_tls_mode),
      config::string("tls_ca_file", &C::tls_ca_file,
                     "PEM file of the CA certificates `verify` (and MTA-STS, for its MX hosts and "
                     "policy servers) trusts instead of the system's CA store")
          .check(readable_file),
      config::boolean("mta_sts", &C::mta_sts,
                      "honour MTA-STS policies (RFC 8461): `enforce` delivers only to the MX "
                      "hosts a domain's policy lists, with verified certificates (else `4.7.5`); "
                      "`testing` delivers and reports (`mailgate_tls_rpt_sessions_total`)"),
      config::sections("bounce_rules", &C::bounce_rules, bounce_rule_section(),
                       "operator rules for `bounce_class`, tried in order before the built-in "
                       "ones (see \"Delivery\"); a rule matches when all its keys do",
                       "rule tables"),
      config::duration(
          "drain_timeout", &C::drain_timeout,
          "on SIGTERM, how long delivery attempts already talking to a remote server may take to "
          "finish and record their results (a remote may take minutes to answer the end of "
          "data, RFC 5321 §4.5.3.2.6); attempts still running then are abandoned and retried "
          "after the restart, so their recipients may get the message twice"),
      config::section("timeouts", &C::timeouts, client_timeout_section(),
                      "time limits of an outbound SMTP session, per step; an expired one is a "
                      "temporary failure (`4.4.2`)"),
      config::string("verp", &C::verp,
                     "VERP return path of outbound mail, e.g. "
                     "`\"b+{id}.{rcpt_hash}@bounces.example.com\"`: `{id}` is the message id, "
                     "`{rcpt_hash}` the first 10 base32 characters of "
                     "HMAC-SHA256(verp_secret, id ‖ lower-cased recipient); each recipient then "
                     "gets its own transaction (see \"Inbound bounces and complaints\"); a "
                     "message with the null sender keeps it")
          .check(verp_template),
      config::string("verp_secret", &C::verp_secret,
                     "HMAC key of `{rcpt_hash}` (required with `verp`, 16 characters or more; "
                     "never logged or shown)"),
  }, verp_needs_secret};
  return s;
}

}  // namespace mailgate::delivery
