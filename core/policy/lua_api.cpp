// policy/lua_api: see lua_api.hpp. Every lua_CFunction here follows one rule:
// C++ objects with destructors live in an inner scope that ends before any
// luaL_error/lua_error, because Lua unwinds with longjmp.
#include "policy/lua_api.hpp"

#include "dns/idna.hpp"
#include "mime/address_list.hpp"
#include "ratelimit/gcra.hpp"
#include "smtp/command.hpp"
#include "smtp/sasl.hpp"
#include "smtp/tls_mode.hpp"

#include <spdlog/spdlog.h>

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <optional>
#include <sstream>

#include <asio/ip/address.hpp>
#include <lua.hpp>

#include "net/cidr.hpp"
#include "policy/lua_state.hpp"
#include "policy/units.hpp"
#include "ratelimit/shared_limiter.hpp"
#include "tenancy/tenancy.hpp"
#include "text/ascii.hpp"

namespace mailgate::policy {
namespace {

char kContextKey;     // registry: light userdata ApiContext*
char kHandlersKey;    // registry: { [event name] = { fn, ... } }
char kDispatcherKey;  // registry: the dispatcher function
char kVerdictMtKey;   // registry: metatable marking verdict tables

// Runs handlers in order; the first non-nil result wins.
constexpr const char* kDispatcher = R"lua(
return function(list, ...)
  for i = 1, #list do
    local r = list[i](...)
    if r ~= nil then return r end
  end
  return nil
end
)lua";

ApiContext* context(lua_State* L) {
  lua_rawgetp(L, LUA_REGISTRYINDEX, &kContextKey);
  auto* ctx = static_cast<ApiContext*>(lua_touserdata(L, -1));
  lua_pop(L, 1);
  return ctx;
}

// mailgate.on(event, fn)
int l_on(lua_State* L) {
  const char* name = luaL_checkstring(L, 1);
  luaL_checktype(L, 2, LUA_TFUNCTION);
  if (!parse_event(name)) {
    return luaL_error(L,
                      "mailgate.on: unknown event '%s' (connect, helo, auth, mail_from, rcpt_to, "
                      "message, route, egress_path, delivered, deferred, bounced)",
                      name);
  }
  lua_rawgetp(L, LUA_REGISTRYINDEX, &kHandlersKey);
  if (lua_getfield(L, -1, name) != LUA_TTABLE) {
    lua_pop(L, 1);
    lua_newtable(L);
    lua_pushvalue(L, -1);
    lua_setfield(L, -3, name);
  }
  const auto n = static_cast<lua_Integer>(lua_rawlen(L, -1));
  lua_pushvalue(L, 2);
  lua_rawseti(L, -2, n + 1);
  return 0;
}

// Lower-case letters, digits and '_', in at most two parts split by '/'
// ("shaping/providers": plugins/shaping/providers.lua); never a path out.
bool plugin_name_ok(const char* s) {
  if (*s == '\0' || *s == '/' || std::strlen(s) > 64) return false;
  int slashes = 0;
  for (const char* p = s; *p; ++p) {
    if (*p == '/') {
      if (++slashes > 1 || p[1] == '\0') return false;
      continue;
    }
    if (!((*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') || *p == '_')) return false;
  }
  return true;
}

// The whole of a file, or nullopt.
std::optional<std::string> read_whole_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return std::nullopt;
  std::ostringstream text;
  text << in.rdbuf();
  if (in.bad()) return std::nullopt;
  return std::move(text).str();
}

// mailgate.use(name [, opts]): loads plugins/NAME.lua next to the config file,
// else the shipped one; the file returns function(opts) that registers hooks.
// A plugin this policy version already loaded comes from its recorded text.
int l_use(lua_State* L) {
  const char* name = luaL_checkstring(L, 1);
  if (!lua_isnoneornil(L, 2)) luaL_checktype(L, 2, LUA_TTABLE);
  if (!plugin_name_ok(name)) return luaL_error(L, "mailgate.use: bad plugin name '%s'", name);
  lua_settop(L, 2);  // opts (or nil) at 2, whatever is pushed above it
  auto* ctx = context(L);
  const PolicySources::File* plugin = nullptr;  // points into the sources: outlives the scope
  bool unreadable = false;
  {
    namespace fs = std::filesystem;
    PolicySources& sources = ctx->sources != nullptr ? *ctx->sources : ctx->own_sources;
    if (auto it = sources.plugins.find(name); it != sources.plugins.end()) {
      plugin = &it->second;
    } else {
      std::error_code ec;
      const std::string file = std::string(name) + ".lua";
      for (const auto& dir : {fs::path(ctx->config_dir) / "plugins", fs::path(ctx->plugin_dir)}) {
        if (dir.empty()) continue;
        const auto path = (dir / file).string();
        if (!fs::is_regular_file(path, ec)) continue;
        if (auto text = read_whole_file(path)) {
          plugin = &(sources.plugins[name] = {"@" + path, std::move(*text)});
        } else {
          unreadable = true;
        }
        break;
      }
    }
  }
  if (unreadable) return luaL_error(L, "mailgate.use: cannot read plugin '%s'", name);
  if (plugin == nullptr) {
    // lua_error longjmps: no C++ object may be alive at that point.
    const char* shipped = ctx->plugin_dir.empty() ? nullptr : ctx->plugin_dir.c_str();
    luaL_where(L, 1);
    lua_pushfstring(L, "mailgate.use: plugin '%s' not found in %s/plugins or %s", name,
                    ctx->config_dir.c_str(),
                    shipped != nullptr ? shipped
                                       : "the shipped plugins (none beside the binary: "
                                         "../share/mailgate/plugins or plugins/)");
    lua_concat(L, 2);
    return lua_error(L);
  }
  if (load_source(L, *plugin) != LUA_OK) return lua_error(L);
  lua_call(L, 0, 1);
  if (lua_type(L, -1) != LUA_TFUNCTION)
    return luaL_error(L, "mailgate.use: plugin '%s' must return function(opts)", name);
  if (lua_isnoneornil(L, 2)) {
    lua_newtable(L);
  } else {
    lua_pushvalue(L, 2);
  }
  lua_call(L, 1, 0);
  return 0;
}

// stat(2) of a file mailgate.read_file / file_info may use: false (with nil
// and "PATH: why" pushed, the functions' error return) unless it is a
// regular file.
bool stat_regular_file(lua_State* L, const char* path, struct stat& st) {
  if (::stat(path, &st) != 0) {
    lua_pushnil(L);
    lua_pushfstring(L, "%s: %s", path, std::strerror(errno));
    return false;
  }
  if (!S_ISREG(st.st_mode)) {
    lua_pushnil(L);
    lua_pushfstring(L, "%s: not a regular file", path);
    return false;
  }
  return true;
}

// mailgate.read_file(path [, max_bytes]): the whole file as a string, or nil
// and "PATH: reason" (like io.open). Regular files only (a FIFO or a device
// could block the worker for good), at most max_bytes (default 16 MiB). It
// reads on the worker's thread: for small local files (routing tables, lists).
// The Lua buffer is made before the file is opened and the descriptor closed
// before any Lua call that can raise, so an error never leaks it.
int l_read_file(lua_State* L) {
  const char* path = luaL_checkstring(L, 1);
  const lua_Integer max = luaL_optinteger(L, 2, lua_Integer{16} << 20);
  luaL_argcheck(L, max >= 0, 2, "must not be negative");
  struct stat st {};
  if (!stat_regular_file(L, path, st)) return 2;
  if (st.st_size > max) {
    lua_pushnil(L);
    lua_pushfstring(L, "%s: larger than %I bytes", path, max);
    return 2;
  }
  const auto size = static_cast<std::size_t>(st.st_size);
  luaL_Buffer b;
  char* buf = luaL_buffinitsize(L, &b, size);
  std::size_t got = 0;
  int err = 0;
  const int fd = ::open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY);
  if (fd < 0) {
    err = errno;
  } else {
    struct stat now {};
    if (::fstat(fd, &now) != 0) {
      err = errno;
    } else if (!S_ISREG(now.st_mode)) {
      err = EINVAL;
    } else {
      while (got < size) {
        const ssize_t n = ::read(fd, buf + got, size - got);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) err = errno;
        if (n <= 0) break;
        got += static_cast<std::size_t>(n);
      }
    }
    ::close(fd);
  }
  if (err != 0) {
    lua_pushnil(L);
    lua_pushfstring(L, "%s: %s", path, std::strerror(err));
    return 2;
  }
  luaL_pushresultsize(&b, got);
  return 1;
}

// mailgate.file_info(path): { mtime = seconds, mtime_ns = nanoseconds since
// the epoch, size = bytes } of a regular file, or nil and "PATH: reason" (like
// read_file, whose rules it follows: regular files only). One stat(2): cheap
// enough to ask before every use of a file a plugin keeps in memory.
int l_file_info(lua_State* L) {
  const char* path = luaL_checkstring(L, 1);
  struct stat st {};
  if (!stat_regular_file(L, path, st)) return 2;
  lua_createtable(L, 0, 3);
  lua_pushinteger(L, static_cast<lua_Integer>(st.st_mtim.tv_sec));
  lua_setfield(L, -2, "mtime");
  lua_pushinteger(L, static_cast<lua_Integer>(st.st_mtim.tv_sec) * 1'000'000'000 +
                         static_cast<lua_Integer>(st.st_mtim.tv_nsec));
  lua_setfield(L, -2, "mtime_ns");
  lua_pushinteger(L, static_cast<lua_Integer>(st.st_size));
  lua_setfield(L, -2, "size");
  return 1;
}

// mailgate.crypt_verify(password, hash): true when crypt(3) of `password`
// with the setting of `hash` gives `hash` (policy/crypt). The check runs on
// the crypt pool, off the worker: the hook's thread yields and the driver
// resumes it with the result. Inputs that cannot match (empty, a NUL, longer
// than crypt takes) are false at once, without a thread hop.
int l_crypt_verify(lua_State* L) {
  std::size_t plen = 0, hlen = 0;
  const char* password = luaL_checklstring(L, 1, &plen);
  const char* hash = luaL_checklstring(L, 2, &hlen);
  HookCall* call = current_call(L);
  if (call == nullptr)
    return luaL_error(L, "mailgate.crypt_verify can only be called inside a hook");
  if (L != call->thread || !lua_isyieldable(L)) {
    return luaL_error(L,
                      "mailgate.crypt_verify must be called from the hook's own code, not from a "
                      "coroutine it made or a function called from C (e.g. a string.gsub or "
                      "table.sort callback)");
  }
  if (plen == 0 || hlen == 0 || plen > 512 || hlen > 512 || std::memchr(password, 0, plen) ||
      std::memchr(hash, 0, hlen)) {
    lua_pushboolean(L, 0);
    return 1;
  }
  call->wait = HookCall::Wait::Crypt;
  call->wait_arg.assign(password, plen);
  call->wait_arg2.assign(hash, hlen);
  return lua_yield(L, 0);
}

// Verdicts: tables marked by a shared metatable, so a hook returning some
// other table is an error rather than a silent decision.
int make_verdict(lua_State* L, const char* kind, int default_code, int lo, int hi,
                 const char* default_enhanced) {
  const lua_Integer code = luaL_optinteger(L, 1, default_code);
  const char* text =
      luaL_optstring(L, 2, kind[0] == 'r' ? "rejected by policy" : "temporarily refused by policy");
  if (code < lo || code > hi)
    return luaL_error(L, "mailgate.%s: code must be %d..%d, got %d", kind, lo, hi,
                      static_cast<int>(code));
  if (std::strchr(text, '\r') != nullptr || std::strlen(text) > 512)
    return luaL_error(L, "mailgate.%s: text must be at most 512 bytes without CR", kind);
  // "5.7.1 text": take the enhanced code from the text when it starts with one.
  const char* rest = text;
  char enhanced[16] = {};
  {
    int a = 0, b = 0, c = 0, n = 0;
    if (std::sscanf(text, "%1d.%3d.%3d%n", &a, &b, &c, &n) == 3 && (text[n] == ' ' || !text[n])) {
      if (a != static_cast<int>(code / 100))
        return luaL_error(L, "mailgate.%s: enhanced code %d.x.x does not match code %d", kind, a,
                          static_cast<int>(code));
      std::snprintf(enhanced, sizeof enhanced, "%d.%d.%d", a, b, c);
      rest = text + n + (text[n] == ' ');
    } else {
      std::snprintf(enhanced, sizeof enhanced, "%s", default_enhanced);
    }
  }
  lua_createtable(L, 0, 4);
  lua_pushstring(L, kind);
  lua_setfield(L, -2, "verdict");
  lua_pushinteger(L, code);
  lua_setfield(L, -2, "code");
  lua_pushstring(L, enhanced);
  lua_setfield(L, -2, "enhanced");
  lua_pushstring(L, rest);
  lua_setfield(L, -2, "text");
  lua_rawgetp(L, LUA_REGISTRYINDEX, &kVerdictMtKey);
  lua_setmetatable(L, -2);
  return 1;
}

int l_reject(lua_State* L) { return make_verdict(L, "reject", 550, 500, 599, "5.7.1"); }
int l_tempfail(lua_State* L) { return make_verdict(L, "tempfail", 451, 400, 499, "4.7.1"); }
int l_accept(lua_State* L) {
  lua_createtable(L, 0, 1);
  lua_pushstring(L, "accept");
  lua_setfield(L, -2, "verdict");
  lua_rawgetp(L, LUA_REGISTRYINDEX, &kVerdictMtKey);
  lua_setmetatable(L, -2);
  return 1;
}

int l_log(lua_State* L) {
  const char* level = luaL_checkstring(L, 1);
  const char* msg = luaL_tolstring(L, 2, nullptr);
  static const char* const kLevels[] = {"trace", "debug", "info", "warn", "error", nullptr};
  int lvl = -1;
  for (int i = 0; kLevels[i] != nullptr; ++i)
    if (std::strcmp(kLevels[i], level) == 0) lvl = i;
  if (lvl < 0) return luaL_argerror(L, 1, "level must be trace, debug, info, warn or error");
  lua_Debug ar;
  int line = 0;
  const char* src = "?";
  if (lua_getstack(L, 1, &ar) && lua_getinfo(L, "Sl", &ar)) {
    line = ar.currentline;
    src = ar.short_src;
  }
  spdlog::log(static_cast<spdlog::level::level_enum>(lvl), "lua {}:{}: {}", src, line, msg);
  return 0;
}

// mailgate.dns.mx(domain): yields; the driver resumes the thread with the answer.
int l_dns_mx(lua_State* L) {
  const char* domain = luaL_checkstring(L, 1);
  HookCall* call = current_call(L);
  if (call == nullptr) return luaL_error(L, "mailgate.dns.mx can only be called inside a hook");
  // Only the call's own thread goes back to the driver when it yields.
  if (L != call->thread || !lua_isyieldable(L)) {
    return luaL_error(L,
                      "mailgate.dns.mx must be called from the hook's own code, not from a "
                      "coroutine it made or a function called from C (e.g. a string.gsub or "
                      "table.sort callback)");
  }
  call->wait = HookCall::Wait::Mx;
  call->wait_arg = domain;
  return lua_yield(L, 0);
}

// mailgate.ratelimit.check(key, rate [, burst]): true when admitted. The
// burst defaults to the rate's count ("100/min": up to 100 at once, then
// refilled at 100 per minute), i.e. "N per interval".
int l_ratelimit_check(lua_State* L) {
  std::size_t klen = 0;
  const char* key = luaL_checklstring(L, 1, &klen);
  const char* rate_text = luaL_checkstring(L, 2);
  const lua_Integer burst_arg = luaL_optinteger(L, 3, 0);
  auto* ctx = context(L);
  if (ctx->services == nullptr || ctx->services->limiter == nullptr)
    return luaL_error(L, "mailgate.ratelimit.check can only be called inside a hook");
  auto rate = parse_rate(rate_text);
  if (!rate)
    return luaL_error(L, "mailgate.ratelimit.check: bad rate '%s' (\"N/s\", \"N/min\", \"N/h\")",
                      rate_text);
  if (burst_arg < 0) return luaL_error(L, "mailgate.ratelimit.check: burst must be >= 1");
  const auto burst = static_cast<std::uint32_t>(
      burst_arg > 0 ? burst_arg : std::max<lua_Integer>(1, static_cast<lua_Integer>(rate->count)));
  const auto now = ratelimit::steady_us();
  bool ok = false;
  {
    std::string_view k(key, klen);
    // The rate joins the key: two limits on one key do not share a bucket.
    std::string full = std::string(k) + '\x1f' + rate_text;
    ok = ctx->services->limiter->check(full, rate->per_second(), burst, now);
  }
  lua_pushboolean(L, ok);
  return 1;
}

// The suppression list of the running hook; outside a hook, a Lua error
// saying that mailgate.suppression.<fn> can only be called inside one.
SuppressionStore& suppression_in_hook(lua_State* L, const char* fn) {
  auto* ctx = context(L);
  SuppressionStore* s = ctx->services ? ctx->services->suppression : nullptr;
  if (s == nullptr) luaL_error(L, "mailgate.suppression.%s can only be called inside a hook", fn);
  return *s;
}

int l_suppression_add(lua_State* L) {
  std::size_t alen = 0, rlen = 0;
  const char* a = luaL_checklstring(L, 1, &alen);
  const char* r = luaL_optlstring(L, 2, "", &rlen);
  auto& s = suppression_in_hook(L, "add");
  if (alen == 0 || alen > 320 || std::memchr(a, '@', alen) == nullptr)
    return luaL_error(L, "mailgate.suppression.add: expected an address");
  s.add(std::string_view(a, alen), std::string_view(r, rlen));
  return 0;
}

int l_suppression_has(lua_State* L) {
  std::size_t alen = 0;
  const char* a = luaL_checklstring(L, 1, &alen);
  lua_pushboolean(L, suppression_in_hook(L, "has").has(std::string_view(a, alen)));
  return 1;
}

int l_suppression_remove(lua_State* L) {
  std::size_t alen = 0;
  const char* a = luaL_checklstring(L, 1, &alen);
  lua_pushboolean(L, suppression_in_hook(L, "remove").remove(std::string_view(a, alen)));
  return 1;
}

// mailgate.net.contains(networks, ip): true when `ip` is in one of the
// CIDR networks of the array (IPv4-mapped IPv6 matches IPv4 networks).
int l_net_contains(lua_State* L) {
  luaL_checktype(L, 1, LUA_TTABLE);
  std::size_t iplen = 0;
  const char* ip = luaL_checklstring(L, 2, &iplen);
  const auto n = static_cast<lua_Integer>(lua_rawlen(L, 1));
  bool found = false;
  for (lua_Integer i = 1; i <= n && !found; ++i) {
    lua_rawgeti(L, 1, i);
    std::size_t len = 0;
    const char* text = lua_tolstring(L, -1, &len);
    bool bad = text == nullptr;
    if (!bad) {
      auto cidr = net::Cidr::parse(std::string_view(text, len));
      bad = !cidr;
      found = cidr && cidr->contains(std::string_view(ip, iplen));
    }
    if (bad) return luaL_error(L, "mailgate.net.contains: networks[%d] is not a network", (int)i);
    lua_pop(L, 1);
  }
  lua_pushboolean(L, found);
  return 1;
}

// mailgate.mime.addresses(value): the mailboxes of an RFC 5322 address list
// (a From:/To:/Cc: value) as { {address, local, domain, display}, ... }, or
// nil and a reason when the value is not an address list. `domain` is the
// normalized form (as the resolver sees it); quoting and comments cannot
// make a display name look like an address.
int l_mime_addresses(lua_State* L) {
  std::size_t len = 0;
  const char* v = luaL_checklstring(L, 1, &len);
  const auto list = mime::parse_address_list(std::string_view(v, len));
  if (!list) {
    lua_pushnil(L);
    lua_pushliteral(L, "not an RFC 5322 address list");
    return 2;
  }
  auto field = [L](const char* name, std::string_view v) {
    lua_pushlstring(L, v.data(), v.size());
    lua_setfield(L, -2, name);
  };
  lua_createtable(L, static_cast<int>(list->size()), 0);
  lua_Integer i = 0;
  for (const auto& m : *list) {
    lua_createtable(L, 0, 4);
    const auto domain = dns::normalize_domain(m.domain);
    field("address", m.local + "@" + domain);
    field("local", m.local);
    field("domain", domain);
    field("display", m.display);
    lua_rawseti(L, -2, ++i);
  }
  return 1;
}

// ---------------------------------------------------------------------------
// msg userdata: a box holding Message*, cleared when its hook call ends.

Message* check_msg(lua_State* L) {
  auto** box = static_cast<Message**>(luaL_checkudata(L, 1, "mailgate.msg"));
  if (*box == nullptr) luaL_error(L, "msg used after its hook returned");
  return *box;
}

void push_string_array(lua_State* L, const std::vector<std::string>& v) {
  lua_createtable(L, static_cast<int>(v.size()), 0);
  for (std::size_t i = 0; i < v.size(); ++i) {
    lua_pushlstring(L, v[i].data(), v[i].size());
    lua_rawseti(L, -2, static_cast<lua_Integer>(i + 1));
  }
}

int l_msg_header(lua_State* L) {
  Message* m = check_msg(L);
  std::size_t n = 0;
  const char* name = luaL_checklstring(L, 2, &n);
  if (m->headers == nullptr) return luaL_error(L, "msg:header: headers are not available here");
  bool found = false;
  {
    auto v = m->headers->first(std::string_view(name, n));
    if (v) {
      lua_pushlstring(L, v->data(), v->size());
      found = true;
    }
  }
  if (!found) lua_pushnil(L);
  return 1;
}

int l_msg_headers(lua_State* L) {
  Message* m = check_msg(L);
  std::size_t n = 0;
  const char* name = luaL_checklstring(L, 2, &n);
  if (m->headers == nullptr) return luaL_error(L, "msg:headers: headers are not available here");
  {
    auto v = m->headers->all(std::string_view(name, n));
    push_string_array(L, v);
  }
  return 1;
}

// msg:add_header / msg:replace_header: `op` names the method for errors.
int edit_header(lua_State* L, const char* op, bool replace) {
  Message* m = check_msg(L);
  std::size_t n = 0, vn = 0;
  const char* name = luaL_checklstring(L, 2, &n);
  const char* value = luaL_checklstring(L, 3, &vn);
  if (m->headers == nullptr || !m->headers_writable)
    return luaL_error(L, "msg:%s: headers can only be changed in the message hook", op);
  bool failed = false;
  {
    const std::string_view k(name, n), v(value, vn);
    auto err = replace ? m->headers->replace(k, v) : m->headers->add(k, v);
    if (!err.empty()) {
      lua_pushfstring(L, "msg:%s: %s", op, err.c_str());
      failed = true;
    }
  }
  if (failed) return lua_error(L);
  return 0;
}

int l_msg_add_header(lua_State* L) { return edit_header(L, "add_header", false); }
int l_msg_replace_header(lua_State* L) { return edit_header(L, "replace_header", true); }

int l_msg_remove_header(lua_State* L) {
  Message* m = check_msg(L);
  std::size_t n = 0;
  const char* name = luaL_checklstring(L, 2, &n);
  if (m->headers == nullptr || !m->headers_writable)
    return luaL_error(L, "msg:remove_header: headers can only be changed in the message hook");
  lua_pushinteger(L, static_cast<lua_Integer>(m->headers->remove(std::string_view(name, n))));
  return 1;
}

// luaL_error for a message held in a C++ string: lua_error longjmps over
// the caller's frames, so no destructor runs there; the message's buffer is
// freed here first (the caller's string is left empty: nothing to leak).
int raise_owned(lua_State* L, std::string&& message) {
  luaL_where(L, 1);
  lua_pushlstring(L, message.data(), message.size());
  lua_concat(L, 2);
  std::string().swap(message);
  return lua_error(L);
}

int l_msg_set_meta(lua_State* L) {
  Message* m = check_msg(L);
  std::size_t kn = 0, vn = 0;
  const char* key = luaL_checklstring(L, 2, &kn);
  const char* value = luaL_tolstring(L, 3, &vn);
  if (m->meta == nullptr || !m->meta_writable)
    return luaL_error(L, "msg:set_meta: metadata can only be set before the message is queued");
  if (kn == 0 || kn > 64 || vn > 1024)
    return luaL_error(L, "msg:set_meta: key must be 1..64 bytes and value at most 1024");
  if (m->meta->size() >= 64 && m->meta->count(std::string(key, kn)) == 0)
    return luaL_error(L, "msg:set_meta: at most 64 keys");
  // tenant, campaign and priority steer the queue: the same checks as their setters.
  if (std::string err = tenancy::check_meta(std::string_view(key, kn), std::string_view(value, vn));
      !err.empty()) {
    err = "msg:set_meta: " + err;
    return raise_owned(L, std::move(err));
  }
  (*m->meta)[std::string(key, kn)] = std::string(value, vn);
  return 0;
}

// msg:set_tenant / set_campaign / set_priority: a checked metadata key.
int set_tenancy(lua_State* L, const char* op, std::string_view key) {
  Message* m = check_msg(L);
  std::size_t vn = 0;
  const char* value = luaL_checklstring(L, 2, &vn);
  if (m->meta == nullptr || !m->meta_writable)
    return luaL_error(L, "msg:%s: only in the message hook, before the message is queued", op);
  if (std::string err = tenancy::check_meta(key, std::string_view(value, vn)); !err.empty()) {
    err = std::string("msg:") + op + ": " + err;
    return raise_owned(L, std::move(err));
  }
  (*m->meta)[std::string(key)] = std::string(value, vn);
  return 0;
}

int l_msg_set_tenant(lua_State* L) { return set_tenancy(L, "set_tenant", tenancy::kTenantKey); }
int l_msg_set_campaign(lua_State* L) {
  return set_tenancy(L, "set_campaign", tenancy::kCampaignKey);
}
int l_msg_set_priority(lua_State* L) {
  return set_tenancy(L, "set_priority", tenancy::kPriorityKey);
}

int l_msg_meta(lua_State* L) {
  Message* m = check_msg(L);
  std::size_t kn = 0;
  const char* key = luaL_checklstring(L, 2, &kn);
  bool found = false;
  if (m->meta != nullptr) {
    auto it = m->meta->find(std::string(key, kn));
    if (it != m->meta->end()) {
      lua_pushlstring(L, it->second.data(), it->second.size());
      found = true;
    }
  }
  if (!found) lua_pushnil(L);
  return 1;
}

int l_msg_dkim_sign(lua_State* L) { return msg_dkim_sign(L, check_msg(L)); }

int l_msg_set_pool(lua_State* L) { return msg_set_pool(L, check_msg(L)); }

int l_dkim_check_key(lua_State* L) { return dkim_check_key(L, context(L)->services); }

int l_msg_index(lua_State* L) {
  Message* m = check_msg(L);
  const char* key = luaL_checkstring(L, 2);
  if (std::strcmp(key, "id") == 0) {
    lua_pushlstring(L, m->id.data(), m->id.size());
  } else if (std::strcmp(key, "size") == 0) {
    lua_pushinteger(L, static_cast<lua_Integer>(m->size));
  } else if (std::strcmp(key, "sender") == 0) {
    lua_pushlstring(L, m->sender.data(), m->sender.size());
  } else if (std::strcmp(key, "recipients") == 0) {
    push_string_array(L, m->recipients);
  } else if (std::strcmp(key, "dsn") == 0) {
    lua_pushboolean(L, m->dsn);
  } else if (std::strcmp(key, "tenant") == 0 || std::strcmp(key, "campaign") == 0 ||
             std::strcmp(key, "priority") == 0) {
    // Read back from the metadata (nil when unset; priority: "normal").
    const std::string* value = nullptr;
    if (m->meta) {
      auto it = m->meta->find(key);
      if (it != m->meta->end()) value = &it->second;
    }
    if (value)
      lua_pushlstring(L, value->data(), value->size());
    else if (std::strcmp(key, "priority") == 0)
      lua_pushliteral(L, "normal");
    else
      lua_pushnil(L);
  } else {
    // Methods live in the metatable's `methods` table.
    luaL_getmetatable(L, "mailgate.msg");
    lua_getfield(L, -1, "methods");
    lua_getfield(L, -1, key);
  }
  return 1;
}

void register_msg_metatable(lua_State* L) {
  luaL_newmetatable(L, "mailgate.msg");
  static const luaL_Reg methods[] = {{"header", l_msg_header},
                                     {"headers", l_msg_headers},
                                     {"add_header", l_msg_add_header},
                                     {"remove_header", l_msg_remove_header},
                                     {"replace_header", l_msg_replace_header},
                                     {"set_meta", l_msg_set_meta},
                                     {"set_tenant", l_msg_set_tenant},
                                     {"set_campaign", l_msg_set_campaign},
                                     {"set_priority", l_msg_set_priority},
                                     {"meta", l_msg_meta},
                                     {"dkim_sign", l_msg_dkim_sign},
                                     {"set_pool", l_msg_set_pool},
                                     {nullptr, nullptr}};
  luaL_newlib(L, methods);
  lua_setfield(L, -2, "methods");
  lua_pushcfunction(L, l_msg_index);
  lua_setfield(L, -2, "__index");
  lua_pushliteral(L, "mailgate.msg");
  lua_setfield(L, -2, "__metatable");
  lua_pop(L, 1);
}

}  // namespace

std::string default_plugin_dir() {
  namespace fs = std::filesystem;
  static const std::string dir = [] {
    std::error_code ec;
    const auto exe = fs::read_symlink("/proc/self/exe", ec);
    if (ec) return std::string();
    const auto bin = exe.parent_path();
    for (const auto& candidate : {bin / ".." / "share" / "mailgate" / "plugins", bin / "plugins"}) {
      if (fs::is_directory(candidate, ec)) return candidate.lexically_normal().string();
    }
    return std::string();
  }();
  return dir;
}

HookCall* current_call(lua_State* L) {
  // Every running call is a HookCall: the driver is the only one to set it.
  return static_cast<HookCall*>(state_control(L).running);
}

int load_source(lua_State* L, const PolicySources::File& file) {
  std::string_view text = file.text;
  if (text.starts_with("\xEF\xBB\xBF")) text.remove_prefix(3);
  if (text.starts_with('#')) {  // a "#!" line: skipped, its newline kept
    const auto nl = text.find('\n');
    text.remove_prefix(nl == std::string_view::npos ? text.size() : nl);
  }
  return luaL_loadbufferx(L, text.data(), text.size(), file.chunkname.c_str(), "t");
}

void install_mailgate_api(lua_State* L, ApiContext* ctx) {
  lua_pushlightuserdata(L, ctx);
  lua_rawsetp(L, LUA_REGISTRYINDEX, &kContextKey);
  lua_newtable(L);
  lua_rawsetp(L, LUA_REGISTRYINDEX, &kHandlersKey);
  lua_newtable(L);
  lua_pushliteral(L, "mailgate.verdict");
  lua_setfield(L, -2, "__name");
  lua_rawsetp(L, LUA_REGISTRYINDEX, &kVerdictMtKey);
  if (luaL_loadbufferx(L, kDispatcher, std::strlen(kDispatcher), "=dispatcher", "t") != LUA_OK ||
      lua_pcall(L, 0, 1, 0) != LUA_OK) {
    throw std::runtime_error("cannot build the hook dispatcher: " + lua_error_text(L, -1));
  }
  lua_rawsetp(L, LUA_REGISTRYINDEX, &kDispatcherKey);
  register_msg_metatable(L);

  lua_newtable(L);  // mailgate
  const luaL_Reg fns[] = {{"on", l_on},
                          {"use", l_use},
                          {"reject", l_reject},
                          {"tempfail", l_tempfail},
                          {"accept", l_accept},
                          {"log", l_log},
                          {"read_file", l_read_file},
                          {"file_info", l_file_info},
                          {"crypt_verify", l_crypt_verify},
                          {nullptr, nullptr}};
  luaL_setfuncs(L, fns, 0);
  const luaL_Reg dns[] = {{"mx", l_dns_mx}, {nullptr, nullptr}};
  luaL_newlib(L, dns);
  lua_setfield(L, -2, "dns");
  const luaL_Reg rl[] = {{"check", l_ratelimit_check}, {nullptr, nullptr}};
  luaL_newlib(L, rl);
  lua_setfield(L, -2, "ratelimit");
  const luaL_Reg sup[] = {{"add", l_suppression_add},
                          {"has", l_suppression_has},
                          {"remove", l_suppression_remove},
                          {nullptr, nullptr}};
  luaL_newlib(L, sup);
  lua_setfield(L, -2, "suppression");
  const luaL_Reg netfns[] = {{"contains", l_net_contains}, {nullptr, nullptr}};
  luaL_newlib(L, netfns);
  lua_setfield(L, -2, "net");
  const luaL_Reg mimefns[] = {{"addresses", l_mime_addresses}, {nullptr, nullptr}};
  luaL_newlib(L, mimefns);
  lua_setfield(L, -2, "mime");
  const luaL_Reg dkimfns[] = {{"check_key", l_dkim_check_key}, {nullptr, nullptr}};
  luaL_newlib(L, dkimfns);
  lua_setfield(L, -2, "dkim");
  lua_setglobal(L, "mailgate");
  install_egress_api(L);
}

ApiContext* api_context(lua_State* L) { return context(L); }

void set_config_functions(lua_State* L, int (*configure)(lua_State*), int (*listen)(lua_State*),
                          int (*webhook)(lua_State*)) {
  lua_getglobal(L, "mailgate");
  lua_pushcfunction(L, configure);
  lua_setfield(L, -2, "configure");
  lua_pushcfunction(L, listen);
  lua_setfield(L, -2, "listen");
  lua_pushcfunction(L, webhook);
  lua_setfield(L, -2, "webhook");
  lua_pop(L, 1);
}

void push_dispatcher(lua_State* L) { lua_rawgetp(L, LUA_REGISTRYINDEX, &kDispatcherKey); }

void push_handlers(lua_State* L, Event e) {
  lua_rawgetp(L, LUA_REGISTRYINDEX, &kHandlersKey);
  const auto name = event_name(e);
  lua_pushlstring(L, name.data(), name.size());
  if (lua_rawget(L, -2) != LUA_TTABLE) {
    lua_pop(L, 1);
    lua_newtable(L);
  }
  lua_remove(L, -2);
}

bool has_handlers(lua_State* L, Event e) {
  push_handlers(L, e);
  const bool any = lua_rawlen(L, -1) > 0;
  lua_pop(L, 1);
  return any;
}

// ---------------------------------------------------------------------------
// Arguments (run in the driver, outside Lua calls: only memory errors can raise).

namespace {
void set_string(lua_State* L, const char* field, std::string_view v) {
  lua_pushlstring(L, v.data(), v.size());
  lua_setfield(L, -2, field);
}
}  // namespace

void push_conn(lua_State* L, const ConnInfo& c) {
  lua_createtable(L, 0, 8);
  set_string(L, "remote_ip", c.remote_ip);
  lua_pushinteger(L, c.remote_port);
  lua_setfield(L, -2, "remote_port");
  set_string(L, "local_ip", c.local_ip);
  lua_pushinteger(L, c.local_port);
  lua_setfield(L, -2, "local_port");
  set_string(L, "listener", c.listener);
  lua_pushboolean(L, c.tls);
  lua_setfield(L, -2, "tls");
  set_string(L, "helo", c.helo);
  if (!c.auth.empty()) set_string(L, "auth", c.auth);  // nil: not authenticated
}

void push_address(lua_State* L, const AddressInfo& a) {
  lua_createtable(L, 0, 6);
  set_string(L, "address", a.address);
  set_string(L, "user", a.user);
  set_string(L, "domain", a.domain);
  set_string(L, "domain_unicode", a.domain_unicode);
  if (a.relay_refused) {
    lua_pushboolean(L, 1);
    lua_setfield(L, -2, "relay_refused");
  }
  lua_createtable(L, 0, static_cast<int>(a.params.size()));
  for (const auto& [k, v] : a.params) set_string(L, k.c_str(), v);
  lua_setfield(L, -2, "params");
}

namespace {
// tx.recipients is built on first use (most hooks never read it, and a
// transaction with many recipients would otherwise pay for it on every call).
int l_tx_index(lua_State* L) {
  const char* key = lua_tostring(L, 2);
  if (key == nullptr || std::strcmp(key, "recipients") != 0) return 0;
  auto** box = static_cast<void**>(lua_touserdata(L, lua_upvalueindex(1)));
  if (*box == nullptr) return luaL_error(L, "tx used after its hook returned");
  const TxInfo& tx = *static_cast<const TxInfo*>(*box);
  lua_createtable(L, static_cast<int>(tx.recipients.size()), 0);
  for (std::size_t i = 0; i < tx.recipients.size(); ++i) {
    push_address(L, tx.recipients[i]);
    lua_rawseti(L, -2, static_cast<lua_Integer>(i + 1));
  }
  lua_pushvalue(L, -1);
  lua_setfield(L, 1, "recipients");  // (rawset: the table has no __newindex)
  return 1;
}
}  // namespace

void push_tx(lua_State* L, const TxInfo& tx, HookCall& call) {
  lua_createtable(L, 0, 5);
  set_string(L, "id", tx.id);
  if (tx.conn) {
    push_conn(L, *tx.conn);
    lua_setfield(L, -2, "conn");
    if (!tx.conn->auth.empty()) set_string(L, "auth", tx.conn->auth);  // nil: not authenticated
  }
  push_address(L, tx.sender);
  lua_setfield(L, -2, "sender");
  lua_createtable(L, 0, 1);  // metatable
  // The box holds a void* like msg's (one invalidation list); it is only read.
  auto** box = static_cast<void**>(lua_newuserdatauv(L, sizeof(void*), 0));
  *box = const_cast<TxInfo*>(&tx);
  call.boxes.push_back(box);
  lua_pushcclosure(L, l_tx_index, 1);
  lua_setfield(L, -2, "__index");
  lua_setmetatable(L, -2);
}

void push_message(lua_State* L, Message& m, HookCall& call) {
  auto** box = static_cast<Message**>(lua_newuserdatauv(L, sizeof(Message*), 0));
  *box = &m;
  call.boxes.push_back(reinterpret_cast<void**>(box));
  luaL_setmetatable(L, "mailgate.msg");
}

void push_reply(lua_State* L, const ReplyInfo& r) {
  lua_createtable(L, 0, 4);
  lua_pushinteger(L, r.code);
  lua_setfield(L, -2, "code");
  set_string(L, "enhanced", r.enhanced);
  set_string(L, "text", r.text);
  set_string(L, "bounce_class", r.bounce_class);
}

void push_mx_answer(lua_State* L, const dns::MxAnswer& r) {
  lua_createtable(L, 0, 4);
  const auto status = dns::to_string(r.status);
  set_string(L, "status", status);
  lua_pushboolean(L, r.implicit);
  lua_setfield(L, -2, "implicit");
  set_string(L, "detail", r.detail);
  lua_createtable(L, static_cast<int>(r.hosts.size()), 0);
  for (std::size_t i = 0; i < r.hosts.size(); ++i) {
    lua_createtable(L, 0, 2);
    set_string(L, "host", r.hosts[i].name);
    lua_pushinteger(L, r.hosts[i].preference);
    lua_setfield(L, -2, "preference");
    lua_rawseti(L, -2, static_cast<lua_Integer>(i + 1));
  }
  lua_setfield(L, -2, "hosts");
}

// ---------------------------------------------------------------------------
// Results.

namespace {

std::string field_string(lua_State* L, int idx, const char* field) {
  lua_getfield(L, idx, field);
  std::string out;
  if (lua_type(L, -1) == LUA_TSTRING) out = lua_tostring(L, -1);
  lua_pop(L, 1);
  return out;
}

// Keys of the table at idx not in `allowed` (for clear errors on typos).
std::string unknown_key(lua_State* L, int idx, std::initializer_list<const char*> allowed) {
  idx = lua_absindex(L, idx);
  std::string bad;
  lua_pushnil(L);
  while (lua_next(L, idx) != 0) {
    lua_pop(L, 1);
    if (bad.empty()) {
      if (lua_type(L, -1) != LUA_TSTRING) {
        bad = "(non-string key)";
      } else {
        const char* k = lua_tostring(L, -1);
        if (std::none_of(allowed.begin(), allowed.end(),
                         [&](const char* a) { return std::strcmp(a, k) == 0; }))
          bad = k;
      }
    }
  }
  return bad;
}

// The `tls` field of a hook's result table (`what`: "route hook result"):
// absent leaves `out` unset; a mode that is not built yet is refused like a
// misspelt one, so a destination never gets less protection than asked for.
bool read_tls_field(lua_State* L, int idx, const char* what, std::optional<smtp::TlsMode>& out,
                    std::string& err) {
  const auto name = field_string(L, idx, "tls");
  if (name.empty()) return true;
  const auto mode = smtp::parse_tls_mode(name);
  if (!mode) {
    err = std::string(what) + ": tls must be " + smtp::tls_mode_names();
    return false;
  }
  if (!smtp::tls_mode_built(*mode)) {
    err = std::string(what) + ": tls = \"" + name + "\" is not implemented yet";
    return false;
  }
  out = mode;
  return true;
}

}  // namespace

bool read_verdict(lua_State* L, int idx, Event e, Verdict& out, std::string& err) {
  out = {};
  if (lua_isnil(L, idx)) return true;
  bool marked = false;
  if (lua_type(L, idx) == LUA_TTABLE && lua_getmetatable(L, idx)) {
    lua_rawgetp(L, LUA_REGISTRYINDEX, &kVerdictMtKey);
    marked = lua_rawequal(L, -1, -2);
    lua_pop(L, 2);
  }
  const auto name = std::string(event_name(e));
  if (!marked) {
    err = name + " hook returned a " + luaL_typename(L, idx) +
          "; expected mailgate.reject(...), mailgate.tempfail(...), mailgate.accept() or nil";
    return false;
  }
  const auto kind = field_string(L, idx, "verdict");
  if (kind == "accept") {
    out.kind = Verdict::Kind::Accept;
    return true;
  }
  out.kind = kind == "reject" ? Verdict::Kind::Reject : Verdict::Kind::Tempfail;
  lua_getfield(L, idx, "code");
  out.reply.code = static_cast<int>(lua_tointeger(L, -1));
  lua_pop(L, 1);
  out.reply.enhanced = field_string(L, idx, "enhanced");
  out.reply.text = field_string(L, idx, "text");
  return true;
}

bool read_auth(lua_State* L, int idx, AuthVerdict& out, std::string& err) {
  out = {};
  out.kind = AuthVerdict::Kind::Reject;
  out.reply = {535, "5.7.8", "authentication credentials invalid"};
  if (lua_isnil(L, idx)) return true;  // no handler decided: refused
  if (lua_type(L, idx) == LUA_TBOOLEAN) {
    if (lua_toboolean(L, idx)) {
      out.kind = AuthVerdict::Kind::Accept;
      out.reply = {235, "2.7.0", "authentication successful"};
    }
    return true;
  }
  Verdict v;
  const bool marked = read_verdict(L, idx, Event::Auth, v, err);
  if (!marked || v.kind == Verdict::Kind::Accept) {
    err = std::string("auth hook returned ") +
          (marked ? "mailgate.accept()" : std::string("a ") + luaL_typename(L, idx)) +
          "; expected true, false, mailgate.reject(...), mailgate.tempfail(...) or nil";
    return false;
  }
  out.kind =
      v.kind == Verdict::Kind::Reject ? AuthVerdict::Kind::Reject : AuthVerdict::Kind::Tempfail;
  out.reply = v.reply;
  return true;
}

namespace {

// A string field of the table at idx, with its length (embedded NULs kept);
// nullopt when absent or not a string.
std::optional<std::string> field_lstring(lua_State* L, int idx, const char* field) {
  std::optional<std::string> out;
  if (lua_getfield(L, idx, field) == LUA_TSTRING) {
    std::size_t n = 0;
    const char* v = lua_tolstring(L, -1, &n);
    out.emplace(v, n);
  }
  lua_pop(L, 1);
  return out;
}

// A smarthost user name, which becomes part of the destination's name (and
// so of log lines and metrics): printable, no blank, no control character.
bool smarthost_user_ok(std::string_view user) {
  if (!smtp::sasl_field_ok(user)) return false;
  return std::none_of(user.begin(), user.end(), [](char c) {
    const auto u = static_cast<unsigned char>(c);
    return u <= 0x20 || u == 0x7F;
  });
}

// `auth = { user = "u", password = "p", plaintext = false }` of a route result.
bool read_route_auth(lua_State* L, int idx, SmarthostAuth& out, std::string& err) {
  idx = lua_absindex(L, idx);
  if (auto bad = unknown_key(L, idx, {"user", "password", "plaintext"}); !bad.empty()) {
    err = "route hook result: auth: unknown key '" + bad + "'";
    return false;
  }
  auto user = field_lstring(L, idx, "user");
  auto password = field_lstring(L, idx, "password");
  if (!user || !smarthost_user_ok(*user)) {
    err =
        "route hook result: auth.user must be a string of 1..255 octets without blanks or "
        "control characters";
    return false;
  }
  if (!password || !smtp::sasl_field_ok(*password)) {
    // The error names the rule, never the value.
    err = "route hook result: auth.password must be a string of 1..255 octets without NUL";
    return false;
  }
  const int t = lua_getfield(L, idx, "plaintext");
  const bool plaintext = lua_toboolean(L, -1);
  lua_pop(L, 1);
  if (t != LUA_TNIL && t != LUA_TBOOLEAN) {
    err = "route hook result: auth.plaintext must be true or false";
    return false;
  }
  out.user = std::move(*user);
  out.password = std::move(*password);
  out.plaintext = plaintext;
  return true;
}

}  // namespace

bool read_route(lua_State* L, int idx, std::uint16_t default_port, RouteDecision& out,
                std::string& err) {
  if (lua_isnil(L, idx)) return true;  // MX of the domain (out preset by the caller)
  if (lua_type(L, idx) != LUA_TTABLE) {
    err = std::string("route hook returned a ") + luaL_typename(L, idx) +
          "; expected {smarthost=...}, {discard=true}, {consume=...} or nil";
    return false;
  }
  if (auto bad = unknown_key(L, idx, {"smarthost", "tls", "auth", "discard", "consume"});
      !bad.empty()) {
    err = "route hook result: unknown key '" + bad + "'";
    return false;
  }
  if (lua_getfield(L, idx, "consume") != LUA_TNIL) {
    // { consume = "bounce" | "complaint" }: inbound feedback (DESIGN §6b).
    const char* kind = lua_type(L, -1) == LUA_TSTRING ? lua_tostring(L, -1) : "";
    lua_pop(L, 1);
    if (std::string_view(kind) == "bounce") {
      out.consume = RouteDecision::Consume::Bounce;
    } else if (std::string_view(kind) == "complaint") {
      out.consume = RouteDecision::Consume::Complaint;
    } else {
      err = "route hook result: consume must be \"bounce\" or \"complaint\"";
      return false;
    }
    out.kind = RouteDecision::Kind::Consume;
    return true;
  }
  lua_pop(L, 1);
  lua_getfield(L, idx, "discard");
  const bool discard = lua_toboolean(L, -1);
  lua_pop(L, 1);
  if (discard) {
    out.kind = RouteDecision::Kind::Discard;
    return true;
  }
  const int auth_type = lua_getfield(L, idx, "auth");
  if (auth_type != LUA_TNIL) {
    bool ok = auth_type == LUA_TTABLE;
    if (ok) {
      SmarthostAuth a;
      ok = read_route_auth(L, -1, a, err);
      if (ok) out.auth = std::move(a);
    } else {
      err = "route hook result: auth must be { user = ..., password = ... }";
    }
    if (!ok) {
      lua_pop(L, 1);
      return false;
    }
  }
  lua_pop(L, 1);
  if (!read_tls_field(L, idx, "route hook result", out.tls, err)) return false;
  auto host = field_string(L, idx, "smarthost");
  if (host.empty()) {
    err = "route hook result: smarthost must be \"host:port\" or \"[host]:port\"";
    return false;
  }
  // "[host]:port", "host:port", "[host]", "host" → "[host]:port".
  std::string name = host;
  std::string port;
  if (name.front() == '[') {
    auto close = name.find(']');
    if (close == std::string::npos) {
      err = "route hook result: smarthost '" + host + "': missing ']'";
      return false;
    }
    if (close + 1 < name.size()) {
      if (name[close + 1] != ':') {
        err = "route hook result: smarthost '" + host + "': expected ':' after ']'";
        return false;
      }
      port = name.substr(close + 2);
    }
    name = name.substr(1, close - 1);
  } else if (auto colon = name.rfind(':'); colon != std::string::npos) {
    if (name.find(':') != colon) {
      err = "route hook result: smarthost '" + host + "': an IPv6 address needs brackets";
      return false;
    }
    port = name.substr(colon + 1);
    name = name.substr(0, colon);
  }
  unsigned long p = default_port;
  if (!port.empty()) {
    char* end = nullptr;
    p = std::strtoul(port.c_str(), &end, 10);
    if (*end != '\0' || p == 0 || p > 65535) {
      err = "route hook result: smarthost '" + host + "': bad port";
      return false;
    }
  }
  const bool name_ok =
      !name.empty() && name.size() <= 253 && std::all_of(name.begin(), name.end(), [](char c) {
        return std::isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '-' || c == ':';
      });
  if (!name_ok) {
    err = "route hook result: smarthost '" + host + "': bad host";
    return false;
  }
  name = text::to_lower(name);
  out.kind = RouteDecision::Kind::Smarthost;
  out.destination = "[" + name + "]:" + std::to_string(p);
  // Each account is its own destination: its own queue and connections, so
  // a connection authenticated as one user never carries another's mail.
  if (out.auth) out.destination = out.auth->user + "@" + out.destination;
  return true;
}

bool read_egress(lua_State* L, int idx, EgressPath& out, std::string& err) {
  if (lua_isnil(L, idx)) return true;
  if (lua_type(L, idx) != LUA_TTABLE) {
    err = std::string("egress_path hook returned a ") + luaL_typename(L, idx) +
          "; expected a table or nil";
    return false;
  }
  if (auto bad = unknown_key(
          L, idx,
          {"max_connections", "max_messages_per_connection", "max_message_rate",
           "max_message_burst", "max_connection_rate", "tls", "source_address", "ehlo_name"});
      !bad.empty()) {
    err = "egress_path result: unknown key '" + bad + "'";
    return false;
  }
  auto count = [&](const char* key, std::optional<std::uint32_t>& dst) {
    lua_getfield(L, idx, key);
    bool ok = true;
    if (!lua_isnil(L, -1)) {
      int isnum = 0;
      const lua_Integer v = lua_tointegerx(L, -1, &isnum);
      if (!isnum || v < 1 || v > 100000) {
        err = std::string("egress_path result: ") + key + " must be an integer 1..100000";
        ok = false;
      } else {
        dst = static_cast<std::uint32_t>(v);
      }
    }
    lua_pop(L, 1);
    return ok;
  };
  auto rate = [&](const char* key, std::optional<Rate>& dst) {
    auto text = field_string(L, idx, key);
    lua_getfield(L, idx, key);
    const bool present = !lua_isnil(L, -1);
    lua_pop(L, 1);
    if (!present) return true;
    auto r = parse_rate(text);
    if (!r) {
      err = std::string("egress_path result: ") + key + " must be a rate like \"20/s\", \"N/min\"";
      return false;
    }
    dst = *r;
    return true;
  };
  std::optional<std::uint32_t> burst;
  if (!count("max_connections", out.max_connections) ||
      !count("max_messages_per_connection", out.max_messages_per_connection) ||
      !count("max_message_burst", burst) || !rate("max_message_rate", out.max_message_rate) ||
      !rate("max_connection_rate", out.max_connection_rate))
    return false;
  if (burst) out.max_message_burst = *burst;
  if (!read_tls_field(L, idx, "egress_path result", out.tls, err)) return false;
  auto src = field_string(L, idx, "source_address");
  if (!src.empty()) {
    std::error_code ec;
    asio::ip::make_address(src, ec);
    if (ec) {
      err = "egress_path result: source_address must be an IP address";
      return false;
    }
    out.source_address = src;
  }
  auto ehlo = field_string(L, idx, "ehlo_name");
  if (!ehlo.empty()) {
    // It goes on the wire after "EHLO ": only a domain or an address literal,
    // exactly (a CR/LF or a space would inject commands into the session).
    const auto parsed = smtp::parse_helo(ehlo);
    const auto* name = std::get_if<std::string>(&parsed);
    if (name == nullptr || *name != ehlo) {
      err = "egress_path result: ehlo_name must be a domain or an address literal";
      return false;
    }
    out.ehlo_name = ehlo;
  }
  return true;
}

bool read_delay(lua_State* L, int idx, std::optional<Duration>& out, std::string& err) {
  out.reset();
  if (lua_isnil(L, idx)) return true;
  std::optional<Duration> d;
  if (lua_type(L, idx) == LUA_TNUMBER) {
    const double s = lua_tonumber(L, idx);
    if (s >= 0 && s <= 30.0 * 86400) d = Duration(static_cast<std::int64_t>(s * 1000));
  } else if (lua_type(L, idx) == LUA_TSTRING) {
    d = parse_duration(lua_tostring(L, idx));
  }
  if (!d) {
    err = "deferred hook must return a delay (seconds or \"5m\") or nil";
    return false;
  }
  out = d;
  return true;
}

}  // namespace mailgate::policy
