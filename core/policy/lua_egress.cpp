// policy/lua_egress: the bulk-sending declarations of the Lua API (DESIGN
// §6b): mailgate.source{}, mailgate.pool{}, mailgate.site{} build the
// state's egress::Plan (ApiContext::egress), and msg:set_pool(name) in the
// message hook picks a declared pool for the message.
// Promises: a bad declaration (unknown key, wrong type, malformed address,
// rate or warm-up, a pool naming an undeclared source, a weight <= 0, a
// duplicate source or pool) is a Lua error at the declaring line, so
// check-config and reload refuse the file; a site declared again replaces
// the earlier one (overrides of plugins/shaping/providers.lua);
// mailgate.shaping_rule{} compiles its `match` once (egress/reply_pattern)
// and refuses an unknown site, action, duration or pattern feature;
// msg:set_pool with an unknown pool is a Lua error, i.e. the hook fails and
// the message is refused with 451 4.3.0 (logged with the pool's name).
// Errors are raised only after the frame's C++ objects are gone.
#include <lua.hpp>

#include <algorithm>
#include <cctype>
#include <chrono>
#include <string>

#include "egress/egress_plan.hpp"
#include "policy/lua_api.hpp"
#include "policy/units.hpp"

namespace mailgate::policy {
namespace {

// Reads t[key] as a string into `out` ("" when absent); false + err on a wrong type.
bool string_field(lua_State* L, int t, const char* key, std::string& out, std::string& err,
                  const std::string& what) {
  lua_getfield(L, t, key);
  bool ok = true;
  if (lua_type(L, -1) == LUA_TSTRING) {
    std::size_t n = 0;
    const char* s = lua_tolstring(L, -1, &n);
    out.assign(s, n);
  } else if (!lua_isnil(L, -1)) {
    err = what + ": " + key + " must be a string";
    ok = false;
  }
  lua_pop(L, 1);
  return ok;
}

// t[key] as a positive integer (absent: `out` unchanged).
bool uint_field(lua_State* L, int t, const char* key, unsigned& out, std::string& err,
                const std::string& what) {
  lua_getfield(L, t, key);
  bool ok = true;
  if (lua_isinteger(L, -1) && lua_tointeger(L, -1) >= 0 && lua_tointeger(L, -1) <= 1'000'000) {
    out = static_cast<unsigned>(lua_tointeger(L, -1));
  } else if (!lua_isnil(L, -1)) {
    err = what + ": " + key + " must be a whole number (0 .. 1000000)";
    ok = false;
  }
  lua_pop(L, 1);
  return ok;
}

// Every string key of table t is one of `allowed`.
bool only_keys(lua_State* L, int t, std::initializer_list<const char*> allowed, std::string& err,
               const std::string& what) {
  lua_pushnil(L);
  while (lua_next(L, t) != 0) {
    lua_pop(L, 1);
    if (lua_type(L, -1) != LUA_TSTRING) continue;  // array part: checked by the caller
    const char* k = lua_tostring(L, -1);
    if (std::none_of(allowed.begin(), allowed.end(),
                     [&](const char* a) { return std::string_view(a) == k; })) {
      err = what + ": unknown key '" + k + "'";
      lua_pop(L, 1);
      return false;
    }
  }
  return true;
}

std::string declare_source(lua_State* L, egress::Plan& plan) {
  std::string err;
  egress::Source s;
  if (!only_keys(L, 1, {"name", "address", "ehlo_name", "warmup"}, err, "mailgate.source") ||
      !string_field(L, 1, "name", s.name, err, "mailgate.source") ||
      !string_field(L, 1, "address", s.address, err, "mailgate.source '" + s.name + "'") ||
      !string_field(L, 1, "ehlo_name", s.ehlo_name, err, "mailgate.source '" + s.name + "'"))
    return err;
  const std::string what = "mailgate.source '" + s.name + "': warmup";
  lua_getfield(L, 1, "warmup");
  if (lua_istable(L, -1)) {
    const int w = lua_absindex(L, -1);
    egress::Warmup wu;
    std::string start;
    if (!only_keys(L, w, {"start", "factor", "days"}, err, what) ||
        !string_field(L, w, "start", start, err, what) ||
        !uint_field(L, w, "days", wu.days, err, what)) {
      lua_pop(L, 1);
      return err;
    }
    if (auto n = egress::parse_per_day(start)) {
      wu.start = *n;
    } else {
      lua_pop(L, 1);
      return what + ".start: expected \"N/day\", got '" + start + "'";
    }
    lua_getfield(L, w, "factor");
    if (lua_isnumber(L, -1)) {
      wu.factor = lua_tonumber(L, -1);
    } else if (!lua_isnil(L, -1)) {
      lua_pop(L, 2);
      return what + ".factor must be a number";
    }
    lua_pop(L, 1);
    s.warmup = wu;
  } else if (!lua_isnil(L, -1)) {
    lua_pop(L, 1);
    return what + " must be a table { start, factor, days }";
  }
  lua_pop(L, 1);
  return plan.add_source(std::move(s));
}

std::string declare_pool(lua_State* L, egress::Plan& plan) {
  std::string err;
  egress::Pool p;
  if (!only_keys(L, 1, {"name", "sources"}, err, "mailgate.pool") ||
      !string_field(L, 1, "name", p.name, err, "mailgate.pool"))
    return err;
  const std::string what = "mailgate.pool '" + p.name + "'";
  lua_getfield(L, 1, "sources");
  if (!lua_istable(L, -1)) {
    lua_pop(L, 1);
    return what + ": sources must be a list, e.g. { { \"ip1\", weight = 3 }, \"ip2\" }";
  }
  const int list = lua_absindex(L, -1);
  const auto n = static_cast<lua_Integer>(lua_rawlen(L, list));
  for (lua_Integer i = 1; i <= n && err.empty(); ++i) {
    lua_rawgeti(L, list, i);
    egress::PoolMember m;
    if (lua_type(L, -1) == LUA_TSTRING) {
      m.source = lua_tostring(L, -1);
    } else if (lua_istable(L, -1)) {
      const int e = lua_absindex(L, -1);
      lua_rawgeti(L, e, 1);
      if (lua_type(L, -1) == LUA_TSTRING) m.source = lua_tostring(L, -1);
      lua_pop(L, 1);
      lua_getfield(L, e, "weight");
      if (lua_isinteger(L, -1) && lua_tointeger(L, -1) > 0 && lua_tointeger(L, -1) <= 1'000'000)
        m.weight = static_cast<unsigned>(lua_tointeger(L, -1));
      else if (!lua_isnil(L, -1))
        err = what + ": weight of source #" + std::to_string(i) +
              " must be a whole number > 0 (and at most 1000000)";
      lua_pop(L, 1);
    }
    if (m.source.empty() && err.empty())
      err = what + ": source #" + std::to_string(i) + " must be a name or { name, weight = N }";
    lua_pop(L, 1);
    p.members.push_back(std::move(m));
  }
  lua_pop(L, 1);
  if (!err.empty()) return err;
  return plan.add_pool(std::move(p));
}

std::string declare_site(lua_State* L, egress::Plan& plan) {
  std::string err;
  egress::Site s;
  std::string rate;
  if (!only_keys(
          L, 1, {"name", "mx_suffixes", "max_connections", "max_message_rate", "max_message_burst"},
          err, "mailgate.site") ||
      !string_field(L, 1, "name", s.name, err, "mailgate.site"))
    return err;
  const std::string what = "mailgate.site '" + s.name + "'";
  unsigned burst = 1;
  if (!uint_field(L, 1, "max_connections", s.max_connections, err, what) ||
      !uint_field(L, 1, "max_message_burst", burst, err, what) ||
      !string_field(L, 1, "max_message_rate", rate, err, what))
    return err;
  if (s.name.empty()) return "mailgate.site: name is required";
  s.max_message_burst = std::max(1u, burst);
  if (!rate.empty()) {
    auto r = parse_rate(rate);
    if (!r || r->per_second() <= 0)
      return what + ": max_message_rate: expected a rate like \"100/s\", got '" + rate + "'";
    s.max_message_rate = r->per_second();
  }
  lua_getfield(L, 1, "mx_suffixes");
  if (lua_istable(L, -1)) {
    const int list = lua_absindex(L, -1);
    const auto n = static_cast<lua_Integer>(lua_rawlen(L, list));
    for (lua_Integer i = 1; i <= n; ++i) {
      lua_rawgeti(L, list, i);
      if (lua_type(L, -1) == LUA_TSTRING) {
        std::string suffix = lua_tostring(L, -1);
        for (auto& c : suffix) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
        if (!suffix.empty() && suffix.back() == '.') suffix.pop_back();
        if (!suffix.empty() && suffix.front() != '.') suffix.insert(suffix.begin(), '.');
        if (suffix.size() > 1) s.mx_suffixes.push_back(std::move(suffix));
      }
      lua_pop(L, 1);
    }
  }
  lua_pop(L, 1);
  if (s.mx_suffixes.empty())
    return what + ": mx_suffixes must list at least one host name suffix, e.g. { \".google.com\" }";
  return plan.add_site(std::move(s));
}

using Declare = std::string (*)(lua_State*, egress::Plan&);

int declare(lua_State* L, Declare fn) {
  luaL_checktype(L, 1, LUA_TTABLE);
  auto* ctx = api_context(L);
  bool failed = false;
  {
    std::string err = ctx ? fn(L, *ctx->egress) : "no API context";
    if (!err.empty()) {
      lua_pushlstring(L, err.data(), err.size());
      failed = true;
    }
  }
  if (failed) return luaL_error(L, "%s", lua_tostring(L, -1));
  return 0;
}

int l_source(lua_State* L) { return declare(L, declare_source); }
int l_pool(lua_State* L) { return declare(L, declare_pool); }
int l_site(lua_State* L) { return declare(L, declare_site); }
// mailgate.shaping_rule { name?, match, site, action, duration }: action is
// "suspend" | "suspend_tenant" | "suspend_campaign" | { set = { max_message_rate,
// max_connections } }; the name defaults to "<site>-<n>" (n: the rule's place).
std::string declare_shaping_rule(lua_State* L, egress::Plan& plan) {
  std::string err, match, duration, action;
  egress::ShapingRule r;
  if (!only_keys(L, 1, {"name", "match", "site", "action", "duration"}, err,
                 "mailgate.shaping_rule") ||
      !string_field(L, 1, "name", r.name, err, "mailgate.shaping_rule") ||
      !string_field(L, 1, "site", r.site, err, "mailgate.shaping_rule") ||
      !string_field(L, 1, "match", match, err, "mailgate.shaping_rule") ||
      !string_field(L, 1, "duration", duration, err, "mailgate.shaping_rule"))
    return err;
  if (r.name.empty()) r.name = r.site + "-" + std::to_string(plan.shaping_rules().size() + 1);
  const std::string what = "mailgate.shaping_rule '" + r.name + "'";
  if (r.site.empty()) return what + ": site is required (a mailgate.site name)";
  auto pattern = egress::ReplyPattern::compile(match, err);
  if (!pattern) return what + ": match: " + err;
  r.pattern = std::move(*pattern);
  auto d = parse_duration(duration);
  if (duration.empty() || !d)
    return what + ": duration: expected e.g. \"2h\", got '" + duration + "'";
  r.duration_ms = std::chrono::duration_cast<std::chrono::milliseconds>(*d).count();
  lua_getfield(L, 1, "action");
  if (lua_type(L, -1) == LUA_TSTRING) {
    const std::string_view a = lua_tostring(L, -1);
    if (a == "suspend")
      r.kind = egress::ShapingKind::Suspend;
    else if (a == "suspend_tenant")
      r.kind = egress::ShapingKind::SuspendTenant;
    else if (a == "suspend_campaign")
      r.kind = egress::ShapingKind::SuspendCampaign;
    else
      err = what +
            ": action must be \"suspend\", \"suspend_tenant\", \"suspend_campaign\" or "
            "{ set = { max_message_rate = ..., max_connections = ... } }";
  } else if (lua_istable(L, -1)) {
    const int t = lua_absindex(L, -1);
    r.kind = egress::ShapingKind::Override;
    lua_getfield(L, t, "set");
    const int set = lua_absindex(L, -1);
    std::string rate;
    if (!only_keys(L, t, {"set"}, err, what + ": action") || !lua_istable(L, set)) {
      if (err.empty()) err = what + ": action: set must be a table";
    } else if (only_keys(L, set, {"max_message_rate", "max_connections"}, err, what + ": set") &&
               uint_field(L, set, "max_connections", r.set.max_connections, err, what + ": set") &&
               string_field(L, set, "max_message_rate", rate, err, what + ": set") &&
               !rate.empty()) {
      auto pr = parse_rate(rate);
      if (!pr || pr->per_second() <= 0)
        err = what + ": set.max_message_rate: expected a rate like \"10/min\", got '" + rate + "'";
      else
        r.set.max_message_rate = pr->per_second();
    }
    lua_pop(L, 1);
  } else {
    err = what + ": action is required";
  }
  lua_pop(L, 1);
  if (!err.empty()) return err;
  return plan.add_shaping_rule(std::move(r));
}

int l_shaping_rule(lua_State* L) { return declare(L, declare_shaping_rule); }

}  // namespace

void install_egress_api(lua_State* L) {
  static constexpr luaL_Reg kFunctions[] = {{"source", l_source},
                                            {"pool", l_pool},
                                            {"site", l_site},
                                            {"shaping_rule", l_shaping_rule},
                                            {nullptr, nullptr}};
  lua_getglobal(L, "mailgate");
  luaL_setfuncs(L, kFunctions, 0);
  lua_pop(L, 1);
}

int msg_set_pool(lua_State* L, Message* m) {
  std::size_t n = 0;
  const char* name = luaL_checklstring(L, 2, &n);
  if (m->pool == nullptr)
    return luaL_error(L, "msg:set_pool: a pool can only be chosen in the message hook");
  auto* ctx = api_context(L);
  if (ctx == nullptr || ctx->egress->pool(std::string_view(name, n)) == nullptr)
    return luaL_error(L, "msg:set_pool: unknown pool '%s' (declare it with mailgate.pool{})", name);
  m->pool->assign(name, n);
  return 0;
}

}  // namespace mailgate::policy
