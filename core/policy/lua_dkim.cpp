// policy/lua_dkim: the Lua side of DKIM (DESIGN §6b): msg:dkim_sign{...},
// which checks its table and records a signing request on the message (the
// submission stage signs after the last `message` handler, over the final
// headers), and mailgate.dkim.check_key(path [, algorithm]), with which a
// plugin declares a key at load time so a missing or unreadable key is a
// config error at check-config and reload, not a failure at send time.
// Promises: a bad table is a Lua error naming the field; nothing is
// recorded then. Lua errors are raised only after the C++ objects of the
// frame are gone (Lua unwinds with longjmp).
#include <lua.hpp>

#include <cstring>

#include "dkim/key_cache.hpp"
#include "dkim/names.hpp"
#include "dkim/signer.hpp"
#include "policy/lua_api.hpp"
#include "policy/units.hpp"
#include "text/ascii.hpp"

namespace mailgate::policy {

namespace {

// At most this many signatures per message (a customer's and an ESP's are
// the usual two; more is a mistake in a loop).
constexpr std::size_t kMaxSignatures = 8;

// Pushes t[name] of the table at `idx` without metamethods: C++ objects are
// alive in the callers' frames, so nothing here may raise a Lua error.
void raw_field(lua_State* L, int idx, const char* name) {
  lua_pushstring(L, name);
  lua_rawget(L, idx);
}

// The string field `name` of the table at `idx` ("" when absent); false with
// `err` set when it is there but not a string.
bool string_field(lua_State* L, int idx, const char* name, std::string& out, std::string& err) {
  raw_field(L, idx, name);
  const int t = lua_type(L, -1);
  if (t == LUA_TSTRING) {
    std::size_t n = 0;
    const char* s = lua_tolstring(L, -1, &n);
    out.assign(s, n);
  } else if (t != LUA_TNIL) {
    err = std::string(name) + " must be a string";
  }
  lua_pop(L, 1);
  return err.empty();
}

// Reads the table at `idx` into `r`; "" or what is wrong with it.
std::string read_request(lua_State* L, int idx, dkim::SignRequest& r) {
  static const char* const known[] = {"domain",  "selector",         "key",    "algorithm",
                                      "headers", "canonicalization", "expire", "on_error"};
  lua_pushnil(L);
  while (lua_next(L, idx) != 0) {
    bool ok = false;
    if (lua_type(L, -2) == LUA_TSTRING) {
      const char* k = lua_tostring(L, -2);
      for (const char* n : known) ok = ok || std::strcmp(k, n) == 0;
    }
    if (!ok) {
      lua_pop(L, 2);
      return "unknown field (known: domain, selector, key, algorithm, headers, "
             "canonicalization, expire, on_error)";
    }
    lua_pop(L, 1);
  }
  std::string err, algorithm, canon, on_error;
  if (!string_field(L, idx, "domain", r.domain, err) ||
      !string_field(L, idx, "selector", r.selector, err) ||
      !string_field(L, idx, "key", r.key_path, err) ||
      !string_field(L, idx, "algorithm", algorithm, err) ||
      !string_field(L, idx, "canonicalization", canon, err) ||
      !string_field(L, idx, "on_error", on_error, err))
    return err;
  r.domain = text::to_lower(r.domain);
  if (!dkim::valid_dns_name(r.domain)) return "domain must be a domain name (A-labels)";
  if (!dkim::valid_dns_name(r.selector)) return "selector must be a DNS label sequence";
  if (r.key_path.empty()) return "key (the PEM file of the private key) is required";
  if (!algorithm.empty()) {
    r.algorithm = dkim::parse_algorithm(algorithm);
    if (!r.algorithm) return "algorithm must be \"rsa-sha256\" or \"ed25519-sha256\"";
  }
  if (!canon.empty()) {
    auto c = dkim::parse_canonicalization(canon);
    if (!c) return "canonicalization must be \"relaxed/relaxed\", \"simple/simple\", ...";
    r.canonicalization = *c;
  }
  if (on_error.empty() || on_error == "tempfail") {
    r.send_unsigned_on_error = false;
  } else if (on_error == "send_unsigned") {
    r.send_unsigned_on_error = true;
  } else {
    return "on_error must be \"tempfail\" or \"send_unsigned\"";
  }

  raw_field(L, idx, "expire");
  if (lua_type(L, -1) == LUA_TNUMBER) {
    const auto s = lua_tointeger(L, -1);
    if (s > 0) r.expire = std::chrono::seconds(s);
  } else if (lua_type(L, -1) == LUA_TSTRING) {
    if (auto d = parse_duration(lua_tostring(L, -1)); d && d->count() >= 1000)
      r.expire = std::chrono::duration_cast<std::chrono::seconds>(*d);
  } else if (!lua_isnil(L, -1)) {
    err = "expire";
  }
  const bool expire_given = !lua_isnil(L, -1);
  lua_pop(L, 1);
  if (!err.empty() || (expire_given && !r.expire))
    return "expire must be a duration of at least 1s (\"7d\" or seconds)";

  raw_field(L, idx, "headers");
  if (lua_type(L, -1) == LUA_TTABLE) {
    const auto n = static_cast<lua_Integer>(lua_rawlen(L, -1));
    for (lua_Integer i = 1; i <= n && err.empty(); ++i) {
      lua_rawgeti(L, -1, i);
      std::size_t len = 0;
      const char* s = lua_type(L, -1) == LUA_TSTRING ? lua_tolstring(L, -1, &len) : nullptr;
      if (s == nullptr || len == 0 || len > 76 || std::memchr(s, ':', len) != nullptr)
        err = "headers must be a list of header field names";
      else
        r.headers.emplace_back(s, len);
      lua_pop(L, 1);
    }
  } else if (!lua_isnil(L, -1)) {
    err = "headers must be a list of header field names";
  }
  lua_pop(L, 1);
  return err;
}

}  // namespace

int msg_dkim_sign(lua_State* L, Message* m) {
  luaL_checktype(L, 2, LUA_TTABLE);
  if (m->dkim == nullptr)
    return luaL_error(L, "msg:dkim_sign can only be called in the message hook");
  if (m->dkim->size() >= kMaxSignatures)
    return luaL_error(L, "msg:dkim_sign: at most %d signatures per message",
                      static_cast<int>(kMaxSignatures));
  bool failed = false;
  {
    dkim::SignRequest r;
    auto err = read_request(L, 2, r);
    if (err.empty()) {
      m->dkim->push_back(std::move(r));
    } else {
      lua_pushfstring(L, "msg:dkim_sign: %s", err.c_str());
      failed = true;
    }
  }
  if (failed) return lua_error(L);
  return 0;
}

int dkim_check_key(lua_State* L, const Services* services) {
  std::size_t n = 0;
  const char* path = luaL_checklstring(L, 1, &n);
  const char* algorithm = luaL_optstring(L, 2, nullptr);
  if (current_call(L) != nullptr)
    return luaL_error(L,
                      "mailgate.dkim.check_key reads a file: call it while the config loads, "
                      "not in a hook");
  bool failed = false;
  std::string_view loaded;  // the key's algorithm name (a literal)
  {
    std::string err;
    try {
      const std::string p(path, n);
      auto key = services != nullptr && services->dkim_keys != nullptr
                     ? services->dkim_keys->get(p)
                     : dkim::SigningKey::load_file(p);
      if (algorithm != nullptr) {
        auto a = dkim::parse_algorithm(algorithm);
        if (!a)
          err = "algorithm must be \"rsa-sha256\" or \"ed25519-sha256\"";
        else if (*a != key->algorithm())
          err = "the key " + p + " is " + std::string(dkim::algorithm_name(key->algorithm())) +
                ", not " + algorithm;
      }
      if (err.empty()) loaded = dkim::algorithm_name(key->algorithm());
    } catch (const std::exception& e) {
      err = e.what();
    }
    if (!err.empty()) {
      lua_pushfstring(L, "mailgate.dkim.check_key: %s", err.c_str());
      failed = true;
    }
  }
  if (failed) return lua_error(L);
  lua_pushlstring(L, loaded.data(), loaded.size());
  return 1;
}

}  // namespace mailgate::policy
