// policy/runtime: the Lua policy at run time (DESIGN §3, §6). One Lua state
// per worker per policy version (`Policy`); every hook call runs in its own
// Lua thread, so a hook waiting on DNS yields its coroutine instead of
// blocking the worker. `PolicyRuntime` holds the current version of every
// worker and swaps it on reload.
// Promises:
// - Handlers of an event run in registration order; the first non-nil result
//   wins.
// - The auth event never accepts unless a handler returned true: no handler,
//   every handler nil, an error or a timeout is a refusal (AuthVerdict).
// - A Lua error, a bad return value, a call running past policy.hook_timeout
//   (wall clock, waits included; an instruction-count hook on every Lua
//   thread of the state stops busy loops, a step budget stops runaway
//   patterns), or an allocation past policy.memory_limit is a Verdict with
//   `error` set and reply 451 4.3.0 — logged with the script location and
//   counted, never an accept. A call that timed out or ran out of memory has
//   failed even if the script caught the error and returned a verdict.
// - A state that hit policy.memory_limit is replaced by a fresh one of the
//   same version (the same config and plugin text) for the calls that start
//   after; it is closed when the calls still running in it end.
// - A Policy is used only on its worker's thread. Callers hold a PolicyRef for
//   the whole transaction or delivery attempt, so a Lua state is closed only
//   when no call can still be suspended in it.
// - Reload builds and runs the config on every worker's new state before any
//   swap: a config with an error changes nothing and returns the error.
#pragma once

#include <array>
#include <asio/awaitable.hpp>
#include <asio/io_context.hpp>
#include <atomic>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "metrics/histogram.hpp"
#include "policy/config.hpp"
#include "policy/header_section.hpp"
#include "policy/hook_event.hpp"
#include "smtp/reply.hpp"
#include "smtp/tls_mode.hpp"

namespace mailgate::dns {
class Resolver;
}
namespace mailgate::dkim {
struct SignRequest;
class KeyCache;
}  // namespace mailgate::dkim
namespace mailgate::ratelimit {
class SharedLimiter;
}
namespace mailgate::egress {
class Plan;
}

namespace mailgate::policy {

// What a hook decided for an SMTP stage.
struct Verdict {
  enum class Kind { None, Accept, Reject, Tempfail };
  Kind kind = Kind::None;
  smtp::Reply reply;   // Reject / Tempfail (and errors: 451 4.3.0)
  bool error = false;  // the hook failed; kind is Tempfail
};

struct ConnInfo {
  std::string remote_ip;
  std::uint16_t remote_port = 0;
  std::string local_ip;
  std::uint16_t local_port = 0;
  std::string listener;  // the configured listen address
  bool tls = false;
  std::string helo;
  // The user the client authenticated as (SMTP AUTH), "" when it did not.
  // Hooks see it as conn.auth and tx.auth (nil when empty).
  std::string auth{};  // (braces: positional initializers may stop before it)
};

// An envelope address as hooks see it: params keys upper case as on the
// wire (SIZE, BODY, NOTIFY, ORCPT, ...); `user` keeps its case; `domain` is
// the normalized form (dns::normalize_domain: A-label, lower case, as the
// resolver sees it) and `domain_unicode` its Unicode spelling.
struct AddressInfo {
  std::string address, user, domain, domain_unicode;
  std::vector<std::pair<std::string, std::string>> params;
  // rcpt_to only: relay control refused this recipient (a handler may still
  // grant it with mailgate.accept(); checks that cost something can skip it).
  bool relay_refused = false;
};
AddressInfo make_address_info(std::string_view address);

// What the auth hook decided about one AUTH attempt (Policy::auth). `reply`
// is what the session answers, whatever the kind:
//   Accept   235 2.7.0 authentication successful  (a handler returned true)
//   Reject   535 5.7.8 authentication credentials invalid  (false, every
//            handler nil, or no handler), or a mailgate.reject() verdict's reply
//   Tempfail a mailgate.tempfail() verdict's reply, or 454 4.7.0 with `error`
//            set when the hook failed (Lua error, bad result, hook_timeout,
//            memory limit, mailgate.crypt_verify refused for a full queue)
struct AuthVerdict {
  enum class Kind { Accept, Reject, Tempfail };
  Kind kind = Kind::Reject;
  smtp::Reply reply;
  bool error = false;
  bool accepted() const { return kind == Kind::Accept; }
};

struct TxInfo {
  std::string id;                  // from MAIL on
  const ConnInfo* conn = nullptr;  // tx.auth is conn->auth
  AddressInfo sender;
  std::vector<AddressInfo> recipients;  // accepted so far
};

// The `msg` object. Headers are read-only unless `headers_writable`; meta is
// per-message metadata kept in the spool with the envelope.
struct Message {
  std::string id;
  std::uint64_t size = 0;
  std::string sender;
  std::vector<std::string> recipients;
  HeaderSection* headers = nullptr;  // null: not available to this hook
  bool headers_writable = false;
  std::map<std::string, std::string>* meta = nullptr;  // null: none
  bool meta_writable = false;
  bool dsn = false;  // a delivery status notification the gateway generated
  // The message hook: where msg:dkim_sign{} records its requests, in call
  // order (null elsewhere: the call is an error).
  std::vector<dkim::SignRequest>* dkim = nullptr;
  // The message hook: where msg:set_pool(name) records the pool (null elsewhere).
  std::string* pool = nullptr;
};

struct ReplyInfo {
  int code = 0;
  std::string enhanced, text, bounce_class;
};

// SMTP AUTH to a smarthost (a route result's `auth = { user, password,
// plaintext }`). The user is part of the destination's name, so mail for
// different accounts of one smarthost never shares a queue or a connection.
struct SmarthostAuth {
  std::string user;
  std::string password;    // never logged, never shown by the admin API
  bool plaintext = false;  // may be sent without TLS (loopback tests)
};

struct RouteDecision {
  enum class Kind { Mx, Smarthost, Discard, Consume };
  Kind kind = Kind::Mx;
  // Consume: parse the message as inbound feedback instead of relaying it.
  enum class Consume { Bounce, Complaint };
  Consume consume = Consume::Bounce;
  // The domain, or "[host]:port" for a smarthost, "user@[host]:port" for a
  // smarthost with `auth`.
  std::string destination;
  std::optional<smtp::TlsMode> tls;  // none: the destination's own setting
  std::optional<SmarthostAuth> auth;
  Verdict failure;  // error set: the hook failed (tempfail the message)
};

// Shaping of one destination (egress_path); unset fields keep the defaults
// of delivery.* in the config.
struct EgressPath {
  std::optional<std::uint32_t> max_connections;
  std::optional<std::uint32_t> max_messages_per_connection;
  std::optional<Rate> max_message_rate;
  std::uint32_t max_message_burst = 1;
  std::optional<Rate> max_connection_rate;
  std::optional<smtp::TlsMode> tls;
  std::optional<std::string> source_address;
  std::optional<std::string> ehlo_name;
  bool failed = false;  // the hook failed: defaults apply until the next reload
};

// egress_path's second argument, `path = { site, source, pool }` (DESIGN
// §6b): the destination's provider site and source ("" = none: nil in Lua).
// A destination's queue is per source, not per pool, so `pool` is nil.
struct EgressPathInfo {
  std::string site;
  std::string source;
};
// The default argument of Policy::egress_path: an object, not `{}` (g++ 12
// destroys a temporary bound in a co_await expression twice).
inline const EgressPathInfo kNoEgressPath{};

// Process-wide services shared by every worker's state.
class SuppressionStore {
 public:
  virtual ~SuppressionStore() = default;
  virtual bool has(std::string_view address) const = 0;
  virtual void add(std::string_view address, std::string_view reason) = 0;
  virtual bool remove(std::string_view address) = 0;
};

// Per worker (written by its hook calls only), summed at scrape time.
struct HookStats {
  HookStats();
  std::array<std::atomic<std::uint64_t>, kEventCount> calls{}, errors{};
  std::array<std::unique_ptr<metrics::Histogram>, kEventCount> seconds;  // call durations
};

class CryptPool;

struct Services {
  ratelimit::SharedLimiter* limiter = nullptr;
  SuppressionStore* suppression = nullptr;
  // mailgate.crypt_verify runs here (null: the call fails the hook).
  CryptPool* crypt = nullptr;
  // DKIM keys by path (mailgate.dkim.check_key loads into it; cleared at
  // reload so keys are read again). Null: check_key reads without caching.
  dkim::KeyCache* dkim_keys = nullptr;
  std::string plugin_dir;  // shipped plugins (mailgate.use falls back here)
};

class Policy {
 public:
  struct Impl;
  explicit Policy(std::unique_ptr<Impl> impl);
  ~Policy();

  std::uint64_t version() const;
  bool has(Event e) const;
  // What this version's mailgate.source/pool/site{} declared (never null).
  std::shared_ptr<const egress::Plan> egress() const;

  asio::awaitable<Verdict> connect(const ConnInfo& conn);
  asio::awaitable<Verdict> helo(const ConnInfo& conn, std::string_view name);
  // One AUTH attempt, after the SASL exchange decoded the credentials
  // (smtp/sasl): `mechanism` upper case ("PLAIN", "LOGIN"). Handlers run in
  // order until one returns non-nil; see AuthVerdict for the mapping. Never
  // accepts on an error. The password is passed to Lua and nowhere else: it
  // is masked in the hook's error log line.
  asio::awaitable<AuthVerdict> auth(const ConnInfo& conn, std::string_view mechanism,
                                    std::string_view user, std::string_view password);
  asio::awaitable<Verdict> mail_from(const TxInfo& tx);
  asio::awaitable<Verdict> rcpt_to(const TxInfo& tx, const AddressInfo& rcpt);
  asio::awaitable<Verdict> message(const TxInfo& tx, Message& msg);
  asio::awaitable<RouteDecision> route(Message& msg, std::string_view domain);
  asio::awaitable<EgressPath> egress_path(std::string_view destination,
                                          const EgressPathInfo& path = kNoEgressPath);
  // delivered / bounced: for side effects (suppression, logs). deferred: may
  // return a new retry delay.
  asio::awaitable<void> delivered(Message& msg, const AddressInfo& rcpt, const ReplyInfo& reply);
  asio::awaitable<std::optional<Duration>> deferred(Message& msg, const AddressInfo& rcpt,
                                                    const ReplyInfo& reply);
  asio::awaitable<void> bounced(Message& msg, const AddressInfo& rcpt, const ReplyInfo& reply);

 private:
  std::unique_ptr<Impl> impl_;
};
using PolicyRef = std::shared_ptr<Policy>;

// Builds one worker's state: runs the config file (configure{} and listen{}
// are ignored: they were validated by load_config and need a restart to
// change). Throws ConfigError. `resolver` may be null (mailgate.dns.mx then
// fails the hook).
PolicyRef build_policy(const std::string& config_path, std::uint64_t version, const Config& config,
                       const Services& services, dns::Resolver* resolver, HookStats* stats);

class PolicyRuntime {
 public:
  // `resolvers[i]` and `contexts[i]` belong to worker i.
  PolicyRuntime(std::string config_path, std::vector<std::string> overrides, const Config& config,
                Services services, std::vector<asio::io_context*> contexts,
                std::vector<dns::Resolver*> resolvers);
  ~PolicyRuntime();

  // Builds version 1 for every worker (before the workers run). Throws ConfigError.
  void start();
  // The worker's current version. Only on worker `index`'s thread.
  PolicyRef current(unsigned index) const;
  // Any thread but a worker's: validates the file, builds new states, and
  // swaps them in on each worker. Returns "" or the error (nothing changed).
  std::string reload();
  std::uint64_t version() const { return version_.load(); }
  const HookStats& stats(unsigned index) const { return *stats_[index]; }
  // The pool for CPU-heavy work (crypt checks, DKIM signing) and the DKIM
  // key cache, shared by every worker.
  CryptPool* pool() const { return services_.crypt; }
  dkim::KeyCache* dkim_keys() const { return services_.dkim_keys; }
  // After the workers stopped and before their io_contexts are destroyed:
  // joins the crypt pool (its completions are posted to the workers).
  void shutdown();

 private:
  std::string path_;
  std::vector<std::string> overrides_;
  const Config& config_;
  Services services_;
  std::vector<asio::io_context*> contexts_;
  std::vector<dns::Resolver*> resolvers_;
  std::vector<std::unique_ptr<HookStats>> stats_;
  std::unique_ptr<CryptPool> crypt_;           // when `services` came without one
  std::unique_ptr<dkim::KeyCache> dkim_keys_;  // likewise
  std::vector<PolicyRef> current_;             // slot i: touched only on worker i (after start)
  std::mutex reload_mu_;                       // one reload at a time (SIGHUP and HTTP may race)
  std::atomic<std::uint64_t> version_{0};
};

}  // namespace mailgate::policy
