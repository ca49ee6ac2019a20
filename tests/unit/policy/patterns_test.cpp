// Unit tests of policy/lua_patterns: string.find/match/gmatch/gsub in a
// policy state give what stock Lua 5.4 gives (results and error messages),
// for a table of cases and for many generated ones, by running the same code
// in a plain luaL_openlibs state and in a policy state (LuaState).
#include <gtest/gtest.h>

#include <random>
#include <string>
#include <vector>

#include <lua.hpp>

#include "policy/lua_state.hpp"

namespace mailgate::policy {
namespace {

// Defines run(f): f's results (or its error) as one line of text.
constexpr const char* kPrelude = R"lua(
function show(...)
  local t = table.pack(...)
  local out = {}
  for i = 1, t.n do
    local v = t[i]
    out[#out + 1] = type(v) == "string" and string.format("%q", v) or tostring(v)
  end
  return table.concat(out, ",")
end
function run(f)
  return show(pcall(f))
end
function all(s, p, init)
  local out = {}
  for a, b, c in string.gmatch(s, p, init) do out[#out + 1] = show(a, b, c) end
  return table.concat(out, ";")
end
)lua";

class Both {
 public:
  Both() : stock_(luaL_newstate()) {
    luaL_openlibs(stock_);
    for (lua_State* L : {stock_, ours_.get()}) {
      if (luaL_dostring(L, kPrelude) != LUA_OK) ADD_FAILURE() << lua_tostring(L, -1);
    }
  }
  ~Both() { lua_close(stock_); }

  // The result line of `expr` (a Lua expression list) in one state.
  static std::string eval(lua_State* L, const std::string& expr) {
    const std::string code = "return run(function() return " + expr + " end)";
    if (luaL_loadstring(L, code.c_str()) != LUA_OK)
      return "load: " + std::string(lua_tostring(L, -1));
    if (lua_pcall(L, 0, 1, 0) != LUA_OK) return "run: " + std::string(lua_tostring(L, -1));
    std::string out = lua_tostring(L, -1);
    lua_pop(L, 1);
    return out;
  }
  std::string stock(const std::string& expr) { return eval(stock_, expr); }
  std::string ours(const std::string& expr) { return eval(ours_.get(), expr); }

 private:
  lua_State* stock_;
  LuaState ours_;
};

TEST(LuaPatterns, SameResultsAsStockLua) {
  const std::vector<std::string> cases = {
      // find / match basics, init, plain
      R"~(string.find("hello world", "o w"))~",
      R"~(string.find("hello world", "o", 6))~",
      R"~(string.find("hello world", "o", -3))~",
      R"~(string.find("hello world", "o", -100))~",
      R"~(string.find("hello", "", 10))~",
      R"~(string.find("hello", "", 6))~",
      R"~(string.find("hello", "l+"))~",
      R"~(string.find("a.b", ".", 1, true))~",
      R"~(string.find("a+b", "+", 1, true))~",
      R"~(string.find("a+b", "a+b"))~",
      R"~(string.find("abc", "b", 0))~",
      R"~(string.find("", ""))~",
      R"~(string.find("", "a*"))~",
      R"~(string.find("a\0b\0c", "\0c"))~",
      R"~(string.find("a\0b\0c", "%z"))~",
      R"~(string.find("abc", "[%z]"))~",
      R"~(string.match("key = value", "(%w+)%s*=%s*(%w+)"))~",
      R"~(string.match("hello", "()ll()"))~",
      R"~(string.match("hello", "^(h)"))~",
      R"~(string.match("hello", "^(e)"))~",
      R"~(string.match("hello", "o$"))~",
      R"~(string.match("hel$lo", "l$l"))~",
      R"~(string.match("hello", ".-(l+)(.*)"))~",
      R"~(string.match("  trim me  ", "^%s*(.-)%s*$"))~",
      R"~(string.match("2024-01-02", "(%d+)-(%d+)-(%d+)"))~",
      R"~(string.match("THE (quick) fox", "%((%a+)%)"))~",
      R"~(string.match("f(a(b)c)d", "%b()"))~",
      R"~(string.match("f(a(b)c", "%b()"))~",
      R"~(string.match("THE (quick) fox", "%f[%a]%a+"))~",
      R"~(string.match("hello world", "%f[%w]%w+$"))~",
      R"~(string.match("abcabc", "(abc)%1"))~",
      R"~(string.match("abab", "(a)(b)%2"))~",
      R"~(string.match("xyz", "[^%a]"))~",
      R"~(string.match("a-b", "[a%-]+"))~",
      R"~(string.match("a]b", "[]]"))~",
      R"~(string.match("a^b", "[b^]+"))~",
      R"~(string.match("0x1F", "0[xX](%x+)"))~",
      R"~(string.match("Ab1 _!", "%u%l%d%s%p?%p"))~",
      R"~(string.match("\t\n x", "%c+"))~",
      R"~(string.match("abc", "a?b?c?d?"))~",
      R"~(string.match("aaa", "a-b"))~",
      R"~(string.match("aaab", "a-b"))~",
      R"~(string.match("user@example.com", "^([^@]+)@(.+)$"))~",
      R"~(string.match("x", "()"))~",
      R"~(string.match("abc", "((a)(b))"))~",
      R"~(string.match("hello", "l", -2))~",
      // errors
      R"~(string.find("a", "%"))~",
      R"~(string.find("a", "[a"))~",
      R"~(string.find("a", "[a%"))~",
      R"~(string.find("a", "(a"))~",
      R"~(string.find("a", "a)"))~",
      R"~(string.find("a", "%b"))~",
      R"~(string.find("a", "%ba"))~",
      R"~(string.find("a", "%f"))~",
      R"~(string.find("a", "%fa"))~",
      R"~(string.find("a", "%1"))~",
      R"~(string.find("a", "(a)%2"))~",
      R"~(string.find("a", "(a%1)"))~",
      R"~(string.find("a", "%0"))~",
      R"~(string.match("a", "(()"))~",
      R"~(string.find("a", string.rep("()", 33)))~",
      R"~(string.find(string.rep("a", 300), string.rep("a?", 300)))~",
      R"~(string.find(string.rep("a", 100), string.rep("(a)", 30)))~",
      R"~(string.find("a", {}))~",
      R"~(string.find(nil, "a"))~",
      R"~(string.find("a", "a", "x"))~",
      R"~(("abc"):find("b"))~",
      R"~(string.find(12345, 34))~",
      // gmatch
      R"~(all("one two  three", "%a+"))~",
      R"~(all("k1=v1, k2=v2", "(%w+)=(%w+)"))~",
      R"~(all("abc", ""))~",
      R"~(all("abc", "a*"))~",
      R"~(all("hello", "()l"))~",
      R"~(all("^a^a", "^a"))~",
      R"~(all("one two three", "%a+", 5))~",
      R"~(all("one two three", "%a+", -5))~",
      R"~(all("abc", "%a", 10))~",
      R"~(all("a,b,,c", "([^,]*)"))~",
      R"~(all("x", "%"))~",
      // gsub
      R"~(string.gsub("hello world", "o", "0"))~",
      R"~(string.gsub("hello world", "o", "0", 1))~",
      R"~(string.gsub("hello world", "o", "0", 0))~",
      R"~(string.gsub("hello world", "o", "0", -1))~",
      R"~(string.gsub("hello", "", "-"))~",
      R"~(string.gsub("abc", "%w", "%0%0"))~",
      R"~(string.gsub("abc", "(%w)", "<%1>"))~",
      R"~(string.gsub("hello world", "(%w+) (%w+)", "%2 %1"))~",
      R"~(string.gsub("abc", "()b", "%1"))~",
      R"~(string.gsub("abc", "b", "%%"))~",
      R"~(string.gsub("abc", "b", "%"))~",
      R"~(string.gsub("abc", "b", "%x"))~",
      R"~(string.gsub("abc", "b", "%2"))~",
      R"~(string.gsub("abc", "b", 5))~",
      R"~(string.gsub("$name is $age", "%$(%w+)", { name = "bob", age = 42 }))~",
      R"~(string.gsub("$name $missing", "%$(%w+)", { name = "bob" }))~",
      R"~(string.gsub("$name", "%$(%w+)", { name = {} }))~",
      R"~(string.gsub("$name", "%$(%w+)", { name = false }))~",
      R"~(string.gsub("abc", "%w", function(c) return c:upper() .. "." end))~",
      R"~(string.gsub("abc", "%w", function(c) if c == "b" then return nil end return "x" end))~",
      R"~(string.gsub("abc", "(%w)(%w)", function(a, b) return b .. a end))~",
      R"~(string.gsub("abc", "()", function(p) return p end))~",
      R"~(string.gsub("abc", "%w", true))~",
      R"~(string.gsub("abc", "%w"))~",
      R"~(string.gsub("abc", "^a", "x"))~",
      R"~(string.gsub("aaa", "^a", "x"))~",
      R"~(string.gsub("  x  ", "^%s+", ""))~",
      R"~(string.gsub("abc", "x*", "-"))~",
      R"~(string.gsub("abc", ".-", "-"))~",
      R"~(string.gsub(123, "2", "x"))~",
      R"~(string.gsub(123, "9", "x"))~",
      R"~(string.gsub("hello", "l+", function() error("in repl") end))~",
      R"~(string.gsub("a,b", ",", "%0%0", 1.0))~",
      R"~(string.gsub("a,b", ",", "x", 1.5))~",
      R"~(string.gsub("line1\nline2\n", "[^\n]+", "[%0]"))~",
      R"~(string.gsub("#comment\nx", "#.*", ""))~",
  };
  Both lua;
  for (const auto& expr : cases) {
    const auto want = lua.stock(expr);
    EXPECT_EQ(lua.ours(expr), want) << expr;
  }
}

// Many small random patterns over small subjects: every result and every
// error message the same as stock Lua's.
TEST(LuaPatterns, GeneratedCasesMatchStockLua) {
  std::mt19937 rng(20240611);
  const std::vector<std::string> atoms = {
      "a",    "b",     ".", "%a", "%d", "%s", "%W", "[ab]", "[^a]", "[a-c]", "(", ")",  "()", "%1",
      "%b()", "%f[a]", "^", "$",  "*",  "+",  "-",  "?",    "%",    "[",     "]", "%%", " "};
  const std::string subject_chars = "aab(b)c 1";
  Both lua;
  int checked = 0;
  for (int i = 0; i < 4000; ++i) {
    std::string p;
    const int items = 1 + static_cast<int>(rng() % 5);
    for (int k = 0; k < items; ++k) p += atoms[rng() % atoms.size()];
    std::string s;
    const int len = static_cast<int>(rng() % 10);
    for (int k = 0; k < len; ++k) s += subject_chars[rng() % subject_chars.size()];
    auto quoted = [](const std::string& t) {
      std::string q = "\"";
      for (char c : t) {
        if (c == '"' || c == '\\') q += '\\';
        q += c;
      }
      return q + "\"";
    };
    const std::string args = quoted(s) + ", " + quoted(p);
    for (const std::string& expr :
         {"string.find(" + args + ")", "string.match(" + args + ", 2)", "all(" + args + ")",
          "string.gsub(" + args + ", \"<%0>\")",
          "string.gsub(" + args + ", function(...) return select('#', ...) end)"}) {
      const auto want = lua.stock(expr);
      ASSERT_EQ(lua.ours(expr), want) << expr;
      ++checked;
    }
  }
  EXPECT_EQ(checked, 20000);
}

}  // namespace
}  // namespace mailgate::policy
