// policy/policy: one worker's Lua state for one policy version, and the
// driver that runs a hook call as a Lua thread: resume, and when the hook
// yields for an asynchronous request (mailgate.dns.mx on the worker's
// io_context, mailgate.crypt_verify on the crypt pool), wait for it with the
// call's deadline, push the answer and resume again. A call whose limits
// failed (policy/sandbox: deadline, memory) is a failure whatever its thread
// returned. A state that hit policy.memory_limit is replaced, for the calls
// that start after, by one built from the same recorded sources. See
// runtime.hpp for the promises.
#include <spdlog/spdlog.h>
#include <asio/co_spawn.hpp>
#include <asio/detached.hpp>
#include <asio/post.hpp>
#include <asio/redirect_error.hpp>
#include <asio/steady_timer.hpp>
#include <asio/this_coro.hpp>
#include <asio/use_awaitable.hpp>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <utility>

#include <lua.hpp>

#include "dns/resolver.hpp"
#include "policy/crypt.hpp"
#include "policy/lua_api.hpp"
#include "policy/lua_state.hpp"
#include "policy/runtime.hpp"
#include "policy/sandbox.hpp"
#include "policy/units.hpp"

namespace mailgate::policy {

// One Lua state of a policy version, with the API context it was built with.
// Calls hold it by shared_ptr: a state replaced after hitting
// policy.memory_limit is closed when the last call running in it ends.
struct PolicyState {
  explicit PolicyState(std::size_t memory_limit) : lua(memory_limit) {}
  LuaState lua;  // first member: closed last, after nothing refers to `api`
  ApiContext api;
  std::array<bool, kEventCount> has{};
};

struct Policy::Impl {
  std::shared_ptr<PolicyState> state;
  PolicySources sources;  // the text this version was built from (rebuilds use it)
  std::uint64_t version = 0;
  const Config* config = nullptr;
  Services services;
  dns::Resolver* resolver = nullptr;
  HookStats* stats = nullptr;
  std::chrono::steady_clock::time_point next_rebuild{};  // after a failed replacement

  // Pushes the arguments on the thread and returns how many.
  using Pusher = std::function<int(lua_State*, HookCall&)>;
  // Reads the result at the top of the thread; false + err when it is invalid.
  using Reader = std::function<bool(lua_State*, std::string&)>;
  // "" or the error (already logged and counted). `secret` (the auth
  // event's password) is masked wherever it appears in the logged error.
  asio::awaitable<std::string> run(Event e, const Pusher& push, const Reader& read,
                                   std::string_view secret = {});

  // A new state running the recorded config text. Throws ConfigError.
  std::shared_ptr<PolicyState> build_state();
  // Replaces a state that hit policy.memory_limit (new calls get the new one).
  void replace_exhausted_state();
};

namespace {

struct PendingMx {
  explicit PendingMx(const asio::any_io_executor& ex) : timer(ex) {}
  asio::steady_timer timer;
  bool done = false;
  dns::MxAnswer answer;
};

asio::awaitable<void> lookup_mx(std::shared_ptr<PendingMx> p, dns::Resolver* r,
                                std::string domain) {
  auto answer = co_await r->mx(std::move(domain));
  p->answer = std::move(answer);
  p->done = true;
  p->timer.cancel();
}

// A crypt_verify check on the crypt pool. The pool holds only a weak_ptr
// (the timer must be destroyed on its worker, never on a pool thread); the
// completion is posted to the worker, which wakes the waiting call.
struct PendingCrypt {
  explicit PendingCrypt(const asio::any_io_executor& ex) : timer(ex) {}
  asio::steady_timer timer;
  bool done = false;
  bool matched = false;
};

// `text` with every occurrence of `secret` replaced by "***".
std::string mask(std::string text, std::string_view secret) {
  if (secret.empty()) return text;
  for (auto pos = text.find(secret); pos != std::string::npos; pos = text.find(secret, pos + 3))
    text.replace(pos, secret.size(), "***");
  return text;
}

std::uint64_t elapsed_ns(std::chrono::steady_clock::time_point since) {
  return static_cast<std::uint64_t>(
      std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now() - since)
          .count());
}

const smtp::Reply kHookFailure{451, "4.3.0", "temporary local problem (policy), try again later"};

// Runs Lua code of `call` on `co`: the call is the state's running one and
// the memory limit holds only for as long as the resume runs.
int resume_call(StateControl& ctl, lua_State* co, lua_State* from, HookCall& call, int nargs,
                int* nres) {
  ctl.running = &call;
  ctl.enforce = true;
  const int status = lua_resume(co, from, nargs, nres);
  ctl.enforce = false;
  ctl.running = nullptr;
  return status;
}

// "hook timed out (policy.hook_timeout 5s) at file:line".
std::string failure_message(const HookCall& call, const Config& config) {
  std::string text = failure_text(call.failure);
  const auto limit = call.failure == CallLimits::Failure::Timeout
                         ? format_duration(config.policy.hook_timeout)
                         : format_size(config.policy.memory_limit);
  text.insert(text.size() - 1, " " + limit);
  if (call.where[0] != '\0') text += std::string(" at ") + call.where;
  return text;
}

}  // namespace

asio::awaitable<std::string> Policy::Impl::run(Event e, const Pusher& push, const Reader& read,
                                               std::string_view secret) {
  const auto started = std::chrono::steady_clock::now();
  if (state->lua.control().exhausted) replace_exhausted_state();
  const std::shared_ptr<PolicyState> st = state;  // this call's state, whatever happens to `state`
  StateControl& ctl = st->lua.control();
  lua_State* L = st->lua.get();
  lua_State* co = lua_newthread(L);
  const int thread_ref = luaL_ref(L, LUA_REGISTRYINDEX);  // keeps the thread alive
  HookCall call;
  call.event = e;
  call.thread = co;
  call.deadline = started + config->policy.hook_timeout;

  push_dispatcher(co);
  push_handlers(co, e);
  int nargs = 1 + push(co, call);
  std::string error;
  for (;;) {
    int nres = 0;
    const int status = resume_call(ctl, co, L, call, nargs, &nres);
    if (call.failed()) {
      // Whatever the script did after (caught the error, returned a verdict).
      error = failure_message(call, *config);
      break;
    }
    if (status == LUA_OK) {
      if (nres == 0) lua_pushnil(co);
      if (!read(co, error) && error.empty()) error = "bad hook result";
      break;
    }
    if (status != LUA_YIELD) {
      error = lua_error_text(co, -1);
      break;
    }
    lua_pop(co, nres);
    const auto wait = std::exchange(call.wait, HookCall::Wait::None);
    if (wait == HookCall::Wait::None) {
      error =
          "a hook may not yield except through the mailgate API (coroutine.yield at hook level)";
      break;
    }
    if (wait == HookCall::Wait::Crypt) {
      std::string password = std::exchange(call.wait_arg, {});
      std::string hash = std::exchange(call.wait_arg2, {});
      if (services.crypt == nullptr) {
        error = "mailgate.crypt_verify: no crypt pool in this process";
        break;
      }
      auto ex = co_await asio::this_coro::executor;
      auto pending = std::make_shared<PendingCrypt>(ex);
      pending->timer.expires_at(call.deadline);
      const bool queued =
          services.crypt->submit(std::move(password), std::move(hash), call.deadline,
                                 [ex, weak = std::weak_ptr<PendingCrypt>(pending)](bool matched) {
                                   asio::post(ex, [weak, matched] {
                                     if (auto p = weak.lock()) {
                                       p->matched = matched;
                                       p->done = true;
                                       p->timer.cancel();
                                     }
                                   });
                                 });
      if (!queued) {
        error =
            "mailgate.crypt_verify: too many password checks waiting (the crypt pool's queue "
            "is full)";
        break;
      }
      if (!pending->done) {
        std::error_code ec;
        co_await pending->timer.async_wait(asio::redirect_error(asio::use_awaitable, ec));
      }
      if (!pending->done) {
        error = "hook timed out (policy.hook_timeout) waiting for mailgate.crypt_verify";
        break;
      }
      lua_pushboolean(co, pending->matched);
      nargs = 1;
      continue;
    }
    if (resolver == nullptr) {
      error = "mailgate.dns.mx: no resolver on this worker";
      break;
    }
    auto ex = co_await asio::this_coro::executor;
    auto pending = std::make_shared<PendingMx>(ex);
    pending->timer.expires_at(call.deadline);
    asio::co_spawn(ex, lookup_mx(pending, resolver, call.wait_arg), asio::detached);
    if (!pending->done) {
      std::error_code ec;
      co_await pending->timer.async_wait(asio::redirect_error(asio::use_awaitable, ec));
    }
    if (!pending->done) {
      error =
          "hook timed out (policy.hook_timeout) waiting for mailgate.dns.mx(" + call.wait_arg + ")";
      break;
    }
    push_mx_answer(co, pending->answer);
    nargs = 1;
  }
  // The call is over: msg objects it saw must not reach into freed C++ state.
  for (auto** box : call.boxes) *box = nullptr;
  // The thread is left as it is for the collector: no lua_settop on it, which
  // would run the __close of a to-be-closed variable in a frame the call left
  // (a stopped or failed call), outside any deadline.
  luaL_unref(L, LUA_REGISTRYINDEX, thread_ref);
  if (stats) {
    const auto i = static_cast<int>(e);
    stats->calls[i].fetch_add(1, std::memory_order_relaxed);
    stats->seconds[i]->observe(static_cast<double>(elapsed_ns(started)) / 1e9);
    if (!error.empty()) stats->errors[i].fetch_add(1, std::memory_order_relaxed);
  }
  if (!error.empty()) {
    error = mask(std::move(error), secret);
    spdlog::error("lua {} hook failed: {}", event_name(e), error);
  }
  if (call.failure == CallLimits::Failure::Memory) {
    spdlog::warn(
        "lua: a state of policy version {} reached policy.memory_limit ({}); new calls get a "
        "fresh state",
        version, format_size(config->policy.memory_limit));
  }
  co_return error;
}

void Policy::Impl::replace_exhausted_state() {
  const auto now = std::chrono::steady_clock::now();
  if (now < next_rebuild) return;
  try {
    state = build_state();
  } catch (const std::exception& e) {
    // Keep the full state (a collection may still help) and try again later.
    next_rebuild = now + std::chrono::seconds(10);
    spdlog::error("lua: cannot replace the full state of policy version {}: {}", version, e.what());
  }
}

HookStats::HookStats() {
  for (auto& h : seconds) h = std::make_unique<metrics::Histogram>(metrics::hook_buckets());
}

Policy::Policy(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Policy::~Policy() = default;
std::uint64_t Policy::version() const { return impl_->version; }
bool Policy::has(Event e) const { return impl_->state->has[static_cast<int>(e)]; }
std::shared_ptr<const egress::Plan> Policy::egress() const { return impl_->state->api.egress; }

namespace {

// The common shape of the SMTP-stage events: arguments in, verdict out.
asio::awaitable<Verdict> verdict_call(Policy::Impl& impl, Event e,
                                      const Policy::Impl::Pusher& push) {
  Verdict v;
  const Policy::Impl::Reader read = [&](lua_State* co, std::string& err) {
    return read_verdict(co, -1, e, v, err);
  };
  auto error = co_await impl.run(e, push, read);
  if (!error.empty()) {
    v = {};
    v.kind = Verdict::Kind::Tempfail;
    v.reply = kHookFailure;
    v.error = true;
  }
  co_return v;
}

}  // namespace

asio::awaitable<Verdict> Policy::connect(const ConnInfo& conn) {
  if (!has(Event::Connect)) co_return Verdict{};
  const Impl::Pusher push = [&](lua_State* co, HookCall&) {
    push_conn(co, conn);
    return 1;
  };
  auto v = co_await verdict_call(*impl_, Event::Connect, push);
  co_return v;
}

asio::awaitable<Verdict> Policy::helo(const ConnInfo& conn, std::string_view name) {
  if (!has(Event::Helo)) co_return Verdict{};
  const Impl::Pusher push = [&](lua_State* co, HookCall&) {
    push_conn(co, conn);
    lua_pushlstring(co, name.data(), name.size());
    return 2;
  };
  auto v = co_await verdict_call(*impl_, Event::Helo, push);
  co_return v;
}

asio::awaitable<AuthVerdict> Policy::auth(const ConnInfo& conn, std::string_view mechanism,
                                          std::string_view user, std::string_view password) {
  AuthVerdict v;
  v.kind = AuthVerdict::Kind::Reject;
  v.reply = {535, "5.7.8", "authentication credentials invalid"};
  if (!has(Event::Auth)) co_return v;  // nobody can vouch for anyone
  const Impl::Pusher push = [&](lua_State* co, HookCall&) {
    push_conn(co, conn);
    lua_pushlstring(co, mechanism.data(), mechanism.size());
    lua_pushlstring(co, user.data(), user.size());
    lua_pushlstring(co, password.data(), password.size());
    return 4;
  };
  const Impl::Reader read = [&](lua_State* co, std::string& err) {
    return read_auth(co, -1, v, err);
  };
  auto error = co_await impl_->run(Event::Auth, push, read, password);
  if (!error.empty()) {
    v = {};
    v.kind = AuthVerdict::Kind::Tempfail;
    v.reply = {454, "4.7.0", "temporary authentication failure"};
    v.error = true;
  }
  co_return v;
}

asio::awaitable<Verdict> Policy::mail_from(const TxInfo& tx) {
  if (!has(Event::MailFrom)) co_return Verdict{};
  const Impl::Pusher push = [&](lua_State* co, HookCall& call) {
    push_tx(co, tx, call);
    push_address(co, tx.sender);
    return 2;
  };
  auto v = co_await verdict_call(*impl_, Event::MailFrom, push);
  co_return v;
}

asio::awaitable<Verdict> Policy::rcpt_to(const TxInfo& tx, const AddressInfo& rcpt) {
  if (!has(Event::RcptTo)) co_return Verdict{};
  const Impl::Pusher push = [&](lua_State* co, HookCall& call) {
    push_tx(co, tx, call);
    push_address(co, rcpt);
    return 2;
  };
  auto v = co_await verdict_call(*impl_, Event::RcptTo, push);
  co_return v;
}

asio::awaitable<Verdict> Policy::message(const TxInfo& tx, Message& msg) {
  if (!has(Event::Message)) co_return Verdict{};
  const Impl::Pusher push = [&](lua_State* co, HookCall& call) {
    push_tx(co, tx, call);
    push_message(co, msg, call);
    return 2;
  };
  auto v = co_await verdict_call(*impl_, Event::Message, push);
  co_return v;
}

asio::awaitable<RouteDecision> Policy::route(Message& msg, std::string_view domain) {
  RouteDecision d;
  d.destination = std::string(domain);
  if (!has(Event::Route)) co_return d;
  const Impl::Pusher push = [&](lua_State* co, HookCall& call) {
    push_message(co, msg, call);
    lua_pushlstring(co, domain.data(), domain.size());
    return 2;
  };
  const Impl::Reader read = [&](lua_State* co, std::string& err) {
    return read_route(co, -1, 25, d, err);
  };
  auto error = co_await impl_->run(Event::Route, push, read);
  if (!error.empty()) {
    d.failure.kind = Verdict::Kind::Tempfail;
    d.failure.reply = kHookFailure;
    d.failure.error = true;
  }
  co_return d;
}

asio::awaitable<EgressPath> Policy::egress_path(std::string_view destination,
                                                const EgressPathInfo& path) {
  EgressPath p;
  if (!has(Event::EgressPath)) co_return p;
  const Impl::Pusher push = [&](lua_State* co, HookCall&) {
    lua_pushlstring(co, destination.data(), destination.size());
    lua_createtable(co, 0, 2);
    if (!path.site.empty()) {
      lua_pushlstring(co, path.site.data(), path.site.size());
      lua_setfield(co, -2, "site");
    }
    if (!path.source.empty()) {
      lua_pushlstring(co, path.source.data(), path.source.size());
      lua_setfield(co, -2, "source");
    }
    return 2;
  };
  const Impl::Reader read = [&](lua_State* co, std::string& err) {
    return read_egress(co, -1, p, err);
  };
  auto error = co_await impl_->run(Event::EgressPath, push, read);
  if (!error.empty()) {
    p = {};
    p.failed = true;
  }
  co_return p;
}

namespace {
asio::awaitable<std::string> outcome_call(Policy::Impl& impl, Event e, Message& msg,
                                          const AddressInfo& rcpt, const ReplyInfo& reply,
                                          const Policy::Impl::Reader& read) {
  const Policy::Impl::Pusher push = [&](lua_State* co, HookCall& call) {
    push_message(co, msg, call);
    push_address(co, rcpt);
    push_reply(co, reply);
    return 3;
  };
  auto error = co_await impl.run(e, push, read);
  co_return error;
}
}  // namespace

asio::awaitable<void> Policy::delivered(Message& msg, const AddressInfo& rcpt,
                                        const ReplyInfo& reply) {
  if (!has(Event::Delivered)) co_return;
  const Impl::Reader ignore = [](lua_State*, std::string&) { return true; };
  co_await outcome_call(*impl_, Event::Delivered, msg, rcpt, reply, ignore);
}

asio::awaitable<std::optional<Duration>> Policy::deferred(Message& msg, const AddressInfo& rcpt,
                                                          const ReplyInfo& reply) {
  std::optional<Duration> delay;
  if (!has(Event::Deferred)) co_return delay;
  const Impl::Reader read = [&](lua_State* co, std::string& err) {
    return read_delay(co, -1, delay, err);
  };
  auto error = co_await outcome_call(*impl_, Event::Deferred, msg, rcpt, reply, read);
  if (!error.empty()) delay.reset();
  co_return delay;
}

asio::awaitable<void> Policy::bounced(Message& msg, const AddressInfo& rcpt,
                                      const ReplyInfo& reply) {
  if (!has(Event::Bounced)) co_return;
  const Impl::Reader ignore = [](lua_State*, std::string&) { return true; };
  co_await outcome_call(*impl_, Event::Bounced, msg, rcpt, reply, ignore);
}

namespace {
int l_ignore(lua_State*) { return 0; }
}  // namespace

std::shared_ptr<PolicyState> Policy::Impl::build_state() {
  auto st = std::make_shared<PolicyState>(static_cast<std::size_t>(config->policy.memory_limit));
  st->api.config_dir = config->config_dir;
  st->api.plugin_dir = services.plugin_dir.empty() ? default_plugin_dir() : services.plugin_dir;
  st->api.services = &services;
  st->api.config = config;
  st->api.sources = &sources;
  lua_State* L = st->lua.get();
  try {
    install_mailgate_api(L, &st->api);
  } catch (const std::exception& e) {
    throw ConfigError(e.what());
  }
  // configure{} and listen{} were validated by load_config; a running
  // policy only takes the hooks.
  set_config_functions(L, l_ignore, l_ignore, l_ignore);
  StateControl& ctl = st->lua.control();
  ctl.enforce = true;  // the config file's own allocations count against the limit too
  const bool ok = load_source(L, sources.config) == LUA_OK && lua_pcall(L, 0, 0, 0) == LUA_OK;
  ctl.enforce = false;
  if (!ok) {
    if (ctl.exhausted) {
      throw ConfigError("policy.memory_limit (" + format_size(config->policy.memory_limit) +
                        ") reached while running the config file");
    }
    throw ConfigError(lua_error_text(L, -1));
  }
  for (int i = 0; i < kEventCount; ++i) st->has[i] = has_handlers(L, static_cast<Event>(i));
  return st;
}

PolicyRef build_policy(const std::string& config_path, std::uint64_t version, const Config& config,
                       const Services& services, dns::Resolver* resolver, HookStats* stats) {
  auto impl = std::make_unique<Policy::Impl>();
  impl->version = version;
  impl->config = &config;
  impl->services = services;
  impl->resolver = resolver;
  impl->stats = stats;
  {
    std::ifstream in(config_path, std::ios::binary);
    std::ostringstream text;
    text << in.rdbuf();
    if (!in) throw ConfigError("cannot open " + config_path);
    impl->sources.config = {"@" + config_path, std::move(text).str()};
  }
  impl->state = impl->build_state();
  return std::make_shared<Policy>(std::move(impl));
}

}  // namespace mailgate::policy
