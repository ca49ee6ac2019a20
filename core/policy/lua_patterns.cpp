// policy/lua_patterns: see lua_patterns.hpp. A backtracking matcher over the
// pattern text: single items and their repetitions are loops, what must be
// able to undo itself (a repetition giving back characters, an optional item,
// a capture) recurses. It unwinds with C++ exceptions inside its own frames
// only; each lua_CFunction catches them and raises the Lua error after the
// try block, so no Lua error (a longjmp) ever crosses a live C++ object with a
// destructor, and no C++ exception ever crosses a Lua frame.
#include "policy/lua_patterns.hpp"

#include <string.h>  // memmem

#include <cctype>
#include <cstddef>
#include <cstring>
#include <type_traits>

#include <lua.hpp>

#include "policy/sandbox.hpp"

namespace mailgate::policy {
namespace {

constexpr int kMaxCaptures = 32;          // as stock Lua (LUA_MAXCAPTURES)
constexpr int kMaxDepth = 200;            // nested items before "pattern too complex"
constexpr unsigned kCheckEvery = 1024;    // steps between two looks at the deadline
constexpr std::ptrdiff_t kOpen = -1;      // a capture begun and not closed yet
constexpr std::ptrdiff_t kPosition = -2;  // a position capture "()"
constexpr char kEscape = '%';

// A malformed pattern or replacement: a printf format with at most one int.
struct PatternError {
  const char* format;
  int arg = 0;
};
// The running hook call is out of time (or has failed otherwise).
struct OutOfTime {};

int byte(char c) { return static_cast<unsigned char>(c); }

// %a, %d, ... (upper case: the complement); any other letter is itself.
bool class_matches(int c, int cls) {
  bool in = false;
  switch (std::tolower(cls)) {
    case 'a':
      in = std::isalpha(c);
      break;
    case 'c':
      in = std::iscntrl(c);
      break;
    case 'd':
      in = std::isdigit(c);
      break;
    case 'g':
      in = std::isgraph(c);
      break;
    case 'l':
      in = std::islower(c);
      break;
    case 'p':
      in = std::ispunct(c);
      break;
    case 's':
      in = std::isspace(c);
      break;
    case 'u':
      in = std::isupper(c);
      break;
    case 'w':
      in = std::isalnum(c);
      break;
    case 'x':
      in = std::isxdigit(c);
      break;
    case 'z':
      in = c == 0;
      break;  // deprecated in Lua, still understood
    default:
      return cls == c;
  }
  return std::islower(cls) ? in : !in;
}

// A set "[...]" from `open` (the '[') to `close` (its ']').
bool set_matches(int c, const char* open, const char* close) {
  const char* q = open + 1;
  bool positive = true;
  if (*q == '^') {
    positive = false;
    ++q;
  }
  for (; q < close; ++q) {
    if (*q == kEscape) {
      ++q;
      if (class_matches(c, byte(*q))) return positive;
    } else if (q[1] == '-' && q + 2 < close) {
      if (byte(q[0]) <= c && c <= byte(q[2])) return positive;
      q += 2;
    } else if (byte(*q) == c) {
      return positive;
    }
  }
  return !positive;
}

// The state of one match over one subject with one pattern. Trivially
// destructible: it lives on C stacks Lua may longjmp over, and in gmatch's
// userdata.
struct Matcher {
  lua_State* L;
  const char* subject;      // the subject's first byte
  const char* subject_end;  // one past its last
  const char* pattern_end;  // one past the pattern's last byte
  int depth;                // nested match() calls now
  int level;                // captures begun (closed or not)
  unsigned countdown;       // steps left before the next deadline check
  struct Capture {
    const char* begin;
    std::ptrdiff_t len;  // or kOpen / kPosition
  } captures[kMaxCaptures];

  void init(lua_State* state, const char* s, std::size_t slen, const char* p, std::size_t plen) {
    L = state;
    subject = s;
    subject_end = s + slen;
    pattern_end = p + plen;
    depth = 0;
    level = 0;
    countdown = kCheckEvery;
  }

  // One attempt at `s` with the pattern from `p`: the end of the match or null.
  const char* attempt(const char* s, const char* p) {
    level = 0;
    depth = 0;
    return match(s, p);
  }

  void step() {
    if (--countdown == 0) {
      countdown = kCheckEvery;
      if (call_over_budget(L)) throw OutOfTime{};
    }
  }

  // The end of the single item at p ("x", "%x", "[...]").
  const char* item_end(const char* p) const {
    const char c = *p++;
    if (c == kEscape) {
      if (p == pattern_end) throw PatternError{"malformed pattern (ends with '%%')"};
      return p + 1;
    }
    if (c == '[') {
      if (*p == '^') ++p;
      // The first character is a member even when it is ']'.
      do {
        if (p == pattern_end) throw PatternError{"malformed pattern (missing ']')"};
        const char m = *p++;
        if (m == kEscape && p < pattern_end) ++p;
      } while (p == pattern_end || *p != ']');
      return p + 1;
    }
    return p;
  }

  // Does the single item p..ep match the subject byte at s?
  bool item_matches(const char* s, const char* p, const char* ep) const {
    if (s >= subject_end) return false;
    const int c = byte(*s);
    switch (*p) {
      case '.':
        return true;
      case kEscape:
        return class_matches(c, byte(p[1]));
      case '[':
        return set_matches(c, p, ep - 1);
      default:
        return byte(*p) == c;
    }
  }

  const char* match(const char* s, const char* p) {
    if (++depth > kMaxDepth) throw PatternError{"pattern too complex"};
    s = match_here(s, p);
    --depth;
    return s;
  }

  const char* match_here(const char* s, const char* p) {
    for (;;) {
      step();
      if (p == pattern_end) return s;
      switch (*p) {
        case '(':
          if (p + 1 < pattern_end && p[1] == ')') return open_capture(s, p + 2, kPosition);
          return open_capture(s, p + 1, kOpen);
        case ')':
          return close_capture(s, p + 1);
        case '$':
          if (p + 1 == pattern_end) return s == subject_end ? s : nullptr;
          break;  // a '$' elsewhere is an ordinary character
        case kEscape:
          if (p + 1 < pattern_end) {
            const char c = p[1];
            if (c == 'b') {
              s = balanced(s, p + 2);
              if (s == nullptr) return nullptr;
              p += 4;
              continue;
            }
            if (c == 'f') {
              p += 2;
              if (p == pattern_end || *p != '[')
                throw PatternError{"missing '[' after '%%f' in pattern"};
              const char* ep = item_end(p);
              const int before = s == subject ? 0 : byte(s[-1]);
              const int here = s < subject_end ? byte(*s) : 0;
              if (set_matches(before, p, ep - 1) || !set_matches(here, p, ep - 1)) return nullptr;
              p = ep;
              continue;
            }
            if (c >= '0' && c <= '9') {
              s = same_as_capture(s, c);
              if (s == nullptr) return nullptr;
              p += 2;
              continue;
            }
          }
          break;
        default:
          break;
      }
      // A single item with an optional repetition suffix.
      const char* ep = item_end(p);
      const char suffix = ep < pattern_end ? *ep : '\0';
      if (!item_matches(s, p, ep)) {
        if (suffix == '*' || suffix == '?' || suffix == '-') {
          p = ep + 1;  // zero times is enough
          continue;
        }
        return nullptr;
      }
      switch (suffix) {
        case '?': {
          if (const char* r = match(s + 1, ep + 1)) return r;
          p = ep + 1;
          continue;
        }
        case '+':
          return longest(s + 1, p, ep);
        case '*':
          return longest(s, p, ep);
        case '-':
          return shortest(s, p, ep);
        default:
          ++s;
          p = ep;
          continue;
      }
    }
  }

  // As many repetitions of p..ep from s as the rest allows, most first.
  const char* longest(const char* s, const char* p, const char* ep) {
    std::ptrdiff_t n = 0;
    while (item_matches(s + n, p, ep)) {
      step();
      ++n;
    }
    for (; n >= 0; --n) {
      if (const char* r = match(s + n, ep + 1)) return r;
    }
    return nullptr;
  }

  // As few repetitions as the rest allows.
  const char* shortest(const char* s, const char* p, const char* ep) {
    for (;;) {
      if (const char* r = match(s, ep + 1)) return r;
      if (!item_matches(s, p, ep)) return nullptr;
      ++s;
    }
  }

  const char* open_capture(const char* s, const char* p, std::ptrdiff_t kind) {
    if (level >= kMaxCaptures) throw PatternError{"too many captures"};
    captures[level] = {s, kind};
    ++level;
    const char* r = match(s, p);
    if (r == nullptr) --level;
    return r;
  }

  const char* close_capture(const char* s, const char* p) {
    int open = level - 1;
    while (open >= 0 && captures[open].len != kOpen) --open;
    if (open < 0) throw PatternError{"invalid pattern capture"};
    captures[open].len = s - captures[open].begin;
    const char* r = match(s, p);
    if (r == nullptr) captures[open].len = kOpen;
    return r;
  }

  // %b xy: from an x at s to its balancing y.
  const char* balanced(const char* s, const char* p) {
    if (p + 1 >= pattern_end) throw PatternError{"malformed pattern (missing arguments to '%%b')"};
    if (s >= subject_end || *s != p[0]) return nullptr;
    const char open = p[0], close = p[1];
    int depth_now = 1;
    while (++s < subject_end) {
      step();
      if (*s == close) {
        if (--depth_now == 0) return s + 1;
      } else if (*s == open) {
        ++depth_now;
      }
    }
    return nullptr;
  }

  // %1 .. %9: the same text as that (closed) capture.
  const char* same_as_capture(const char* s, char digit) {
    const int i = digit - '1';
    if (i < 0 || i >= level || captures[i].len == kOpen)
      throw PatternError{"invalid capture index %%%d", i + 1};
    const std::ptrdiff_t len = captures[i].len;
    if (len < 0) return nullptr;  // a position capture has no text
    if (subject_end - s >= len && std::memcmp(captures[i].begin, s, len) == 0) return s + len;
    return nullptr;
  }

  // Pushes capture i (or the whole match s..e when there are none and i is 0).
  void push_capture(int i, const char* s, const char* e) const {
    if (i >= level) {
      if (i != 0) throw PatternError{"invalid capture index %%%d", i + 1};
      lua_pushlstring(L, s, e - s);
      return;
    }
    const auto& c = captures[i];
    if (c.len == kOpen) throw PatternError{"unfinished capture"};
    if (c.len == kPosition) {
      lua_pushinteger(L, (c.begin - subject) + 1);
    } else {
      lua_pushlstring(L, c.begin, c.len);
    }
  }

  // Pushes every capture (the whole match when there are none and s is set).
  int push_captures(const char* s, const char* e) const {
    const int n = (level == 0 && s != nullptr) ? 1 : level;
    luaL_checkstack(L, n, "too many captures");
    for (int i = 0; i < n; ++i) push_capture(i, s, e);
    return n;
  }
};
static_assert(std::is_trivially_destructible_v<Matcher>);

// string.find's and gmatch's init: 1-based, negative from the end.
std::size_t start_index(lua_Integer pos, std::size_t len) {
  if (pos > 0) return static_cast<std::size_t>(pos);
  if (pos == 0) return 1;
  if (pos < -static_cast<lua_Integer>(len)) return 1;
  return len + static_cast<std::size_t>(pos) + 1;
}

bool has_specials(const char* p, std::size_t len) {
  for (std::size_t i = 0; i < len; ++i)
    if (std::strchr("^$*+?.([%-", p[i]) != nullptr && p[i] != '\0') return true;
  return false;
}

// What a matcher's exception left for the Lua error raised after the try.
struct Outcome {
  const char* format = nullptr;
  int arg = 0;
  bool out_of_time = false;
};

int raise(lua_State* L, const Outcome& o) {
  if (o.out_of_time) return stop_failed_call(L);
  return luaL_error(L, o.format, o.arg);
}

// find (find = true) and match.
int find_or_match(lua_State* L, bool find) {
  std::size_t slen = 0, plen = 0;
  const char* s = luaL_checklstring(L, 1, &slen);
  const char* p = luaL_checklstring(L, 2, &plen);
  const std::size_t init = start_index(luaL_optinteger(L, 3, 1), slen) - 1;
  if (init > slen) {
    lua_pushnil(L);
    return 1;
  }
  if (find && (lua_toboolean(L, 4) || !has_specials(p, plen))) {
    const void* at = plen == 0 ? s + init : memmem(s + init, slen - init, p, plen);
    if (at == nullptr) {
      lua_pushnil(L);
      return 1;
    }
    const auto pos = static_cast<const char*>(at) - s;
    lua_pushinteger(L, pos + 1);
    lua_pushinteger(L, static_cast<lua_Integer>(pos + plen));
    return 2;
  }
  const bool anchored = plen > 0 && *p == '^';
  if (anchored) {
    ++p;
    --plen;
  }
  Outcome failed;
  int results = -1;
  try {
    Matcher m;
    m.init(L, s, slen, p, plen);
    const char* from = s + init;
    do {
      if (const char* e = m.attempt(from, p)) {
        if (find) {
          lua_pushinteger(L, (from - s) + 1);
          lua_pushinteger(L, e - s);
          results = m.push_captures(nullptr, nullptr) + 2;
        } else {
          results = m.push_captures(from, e);
        }
        break;
      }
    } while (from++ < m.subject_end && !anchored);
  } catch (const PatternError& e) {
    failed.format = e.format;
    failed.arg = e.arg;
  } catch (const OutOfTime&) {
    failed.out_of_time = true;
  }
  if (failed.format != nullptr || failed.out_of_time) return raise(L, failed);
  if (results >= 0) return results;
  lua_pushnil(L);
  return 1;
}

int l_find(lua_State* L) { return find_or_match(L, true); }
int l_match(lua_State* L) { return find_or_match(L, false); }

// gmatch's iterator state (upvalue 3; the subject and pattern are upvalues 1
// and 2, which keeps them alive for the pointers in here).
struct GmatchState {
  Matcher m;
  const char* pattern;
  std::size_t next;      // offset of the next position to try
  const char* last_end;  // end of the last match (an empty match may not end there again)
};
static_assert(std::is_trivially_destructible_v<GmatchState>);

int gmatch_next(lua_State* L) {
  auto* g = static_cast<GmatchState*>(lua_touserdata(L, lua_upvalueindex(3)));
  g->m.L = L;  // the iterator may run on another thread than the one that made it
  const std::size_t len = static_cast<std::size_t>(g->m.subject_end - g->m.subject);
  Outcome failed;
  int results = 0;
  try {
    for (std::size_t at = g->next; at <= len; ++at) {
      const char* from = g->m.subject + at;
      const char* e = g->m.attempt(from, g->pattern);
      if (e != nullptr && e != g->last_end) {
        g->next = static_cast<std::size_t>(e - g->m.subject);
        g->last_end = e;
        results = g->m.push_captures(from, e);
        break;
      }
    }
  } catch (const PatternError& e) {
    failed.format = e.format;
    failed.arg = e.arg;
  } catch (const OutOfTime&) {
    failed.out_of_time = true;
  }
  if (failed.format != nullptr || failed.out_of_time) return raise(L, failed);
  return results;
}

int l_gmatch(lua_State* L) {
  std::size_t slen = 0, plen = 0;
  const char* s = luaL_checklstring(L, 1, &slen);
  const char* p = luaL_checklstring(L, 2, &plen);
  std::size_t init = start_index(luaL_optinteger(L, 3, 1), slen) - 1;
  if (init > slen) init = slen + 1;  // past the end: the iterator finds nothing
  lua_settop(L, 2);
  auto* g = static_cast<GmatchState*>(lua_newuserdatauv(L, sizeof(GmatchState), 0));
  g->m.init(L, s, slen, p, plen);
  g->pattern = p;
  g->next = init;
  g->last_end = nullptr;
  lua_pushcclosure(L, gmatch_next, 3);
  return 1;
}

// gsub's replacement string (argument 3): "%0".."%9" and "%%".
void add_replacement_text(const Matcher& m, luaL_Buffer* b, const char* s, const char* e) {
  lua_State* L = m.L;
  std::size_t len = 0;
  const char* r = lua_tolstring(L, 3, &len);
  const char* end = r + len;
  while (const char* pc = static_cast<const char*>(std::memchr(r, kEscape, end - r))) {
    luaL_addlstring(b, r, pc - r);
    const char c = pc + 1 < end ? pc[1] : '\0';
    if (c == kEscape) {
      luaL_addchar(b, kEscape);
    } else if (c == '0') {
      luaL_addlstring(b, s, e - s);
    } else if (c >= '1' && c <= '9') {
      m.push_capture(c - '1', s, e);  // a position capture is a number: added as its text
      luaL_addvalue(b);
    } else {
      throw PatternError{"invalid use of '%%' in replacement string"};
    }
    r = pc + 2;
    if (r > end) r = end;
  }
  luaL_addlstring(b, r, end - r);
}

// Adds the replacement of the match s..e; false when the text stays as it was.
bool add_replacement(const Matcher& m, luaL_Buffer* b, const char* s, const char* e, int kind) {
  lua_State* L = m.L;
  if (kind == LUA_TFUNCTION) {
    lua_pushvalue(L, 3);
    const int n = m.push_captures(s, e);
    lua_call(L, n, 1);
  } else if (kind == LUA_TTABLE) {
    m.push_capture(0, s, e);
    lua_gettable(L, 3);
  } else {
    add_replacement_text(m, b, s, e);
    return true;
  }
  if (!lua_toboolean(L, -1)) {  // nil or false: keep the match
    lua_pop(L, 1);
    luaL_addlstring(b, s, e - s);
    return false;
  }
  if (!lua_isstring(L, -1)) {
    // Raised here (no C++ object alive in this frame or the callers' try).
    luaL_error(L, "invalid replacement value (a %s)", luaL_typename(L, -1));
    return false;
  }
  luaL_addvalue(b);
  return true;
}

int l_gsub(lua_State* L) {
  std::size_t slen = 0, plen = 0;
  const char* src = luaL_checklstring(L, 1, &slen);
  const char* p = luaL_checklstring(L, 2, &plen);
  const int kind = lua_type(L, 3);
  const lua_Integer max_n = luaL_optinteger(L, 4, static_cast<lua_Integer>(slen) + 1);
  luaL_argexpected(
      L, kind == LUA_TNUMBER || kind == LUA_TSTRING || kind == LUA_TFUNCTION || kind == LUA_TTABLE,
      3, "string/function/table");
  const bool anchored = plen > 0 && *p == '^';
  if (anchored) {
    ++p;
    --plen;
  }
  luaL_Buffer b;
  luaL_buffinit(L, &b);
  Outcome failed;
  lua_Integer n = 0;
  bool changed = false;
  try {
    Matcher m;
    m.init(L, src, slen, p, plen);
    const char* last_end = nullptr;
    while (n < max_n) {
      const char* e = m.attempt(src, p);
      if (e != nullptr && e != last_end) {
        ++n;
        changed = add_replacement(m, &b, src, e, kind) || changed;
        src = last_end = e;
      } else if (src < m.subject_end) {
        luaL_addchar(&b, *src++);
      } else {
        break;
      }
      if (anchored) break;
    }
    if (changed) luaL_addlstring(&b, src, m.subject_end - src);
  } catch (const PatternError& e) {
    failed.format = e.format;
    failed.arg = e.arg;
  } catch (const OutOfTime&) {
    failed.out_of_time = true;
  }
  if (failed.format != nullptr || failed.out_of_time) return raise(L, failed);
  if (changed) {
    luaL_pushresult(&b);
  } else {
    lua_pushvalue(L, 1);  // nothing replaced: the subject itself
  }
  lua_pushinteger(L, n);
  return 2;
}

}  // namespace

void install_bounded_patterns(lua_State* L) {
  lua_getglobal(L, "string");
  const luaL_Reg fns[] = {{"find", l_find},
                          {"match", l_match},
                          {"gmatch", l_gmatch},
                          {"gsub", l_gsub},
                          {nullptr, nullptr}};
  luaL_setfuncs(L, fns, 0);
  lua_pop(L, 1);
}

}  // namespace mailgate::policy
