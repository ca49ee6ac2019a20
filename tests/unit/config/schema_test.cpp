// Tests of config/schema on a toy section (no config file, no Lua): every key
// kind with its units and error wording, defaults, unknown keys, required and
// machine-dependent defaults, nested sections, groups and arrays of
// sections, section checks, --set typing and paths with the "(from --set ...)"
// suffix, and the reference rows.
#include "config/schema.hpp"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "config/overrides.hpp"

namespace mailgate::config {
namespace {

using namespace std::chrono_literals;
using ::testing::ElementsAre;
using ::testing::HasSubstr;

enum class Mode { Fast, Safe };

struct Inner {
  Duration wait{1500};
  bool on = false;
};

struct Item {
  std::string name;
  int weight = 1;
};

struct Toy {
  bool flag = false;
  unsigned count = 3;
  std::uint16_t port = 25;
  std::uint64_t bytes = 1000;
  Duration timeout{5000};
  Duration pause{0};
  std::optional<Rate> rate;
  std::string name = "x";
  std::string addr = "127.0.0.1:1";
  std::string host;
  Mode mode = Mode::Fast;
  std::vector<std::string> tags;
  Inner inner;
  std::uint32_t grouped = 7;
  std::vector<Item> items;
};

const Section<Inner>& inner_section() {
  static const Section<Inner> s{{
                                    duration("wait", &Inner::wait, "how long"),
                                    boolean("on", &Inner::on, "switch"),
                                },
                                [](Inner& in, const std::string& path, const Context& ctx) {
                                  if (in.on && in.wait > 10s)
                                    ctx.fail(path, path + ": wait too long for on");
                                }};
  return s;
}

const Section<Toy>& group_section() {
  static const Section<Toy> s{{integer("grouped", &Toy::grouped, "in a group", 1)}};
  return s;
}

const Section<Item>& item_section() {
  static const Section<Item> s{{
      string("name", &Item::name, "its name").required("(a name)"),
      integer("weight", &Item::weight, "its weight", 1, 9),
  }};
  return s;
}

const Section<Toy>& toy_section() {
  static const Section<Toy> s{{
      boolean("flag", &Toy::flag, "a flag"),
      integer("count", &Toy::count, "a count", 0, 10),
      integer("port", &Toy::port, "a port", 1),
      size("bytes", &Toy::bytes, "some bytes", 100),
      duration("timeout", &Toy::timeout, "a timeout"),
      duration("pause", &Toy::pause, "a pause", /*allow_zero=*/true),
      rate_or_zero("rate", &Toy::rate, "a rate"),
      string("name", &Toy::name, "a name").check(nonempty),
      host_port("addr", &Toy::addr, "an address"),
      string("host", &Toy::host, "a host")
          .otherwise([](std::string& h) { h = "machine"; }, "the machine"),
      choice("mode", &Toy::mode, "a mode", {{"fast", Mode::Fast}, {"safe", Mode::Safe}}),
      strings("tags", &Toy::tags, "some tags"),
      section("inner", &Toy::inner, inner_section(), "an inner table"),
      group("g", group_section(), "a group"),
      sections("items", &Toy::items, item_section(), "some items", "item tables"),
  }};
  return s;
}

// A tree from a tiny builder: T({{"key", value}, ...}), arrays with A({...}).
Value I(long long n) {
  Value v;
  v.type = Value::Type::Integer;
  v.integer = n;
  return v;
}
Value N(double d) {
  Value v;
  v.type = Value::Type::Number;
  v.number = d;
  return v;
}
Value B(bool b) {
  Value v;
  v.type = Value::Type::Boolean;
  v.boolean = b;
  return v;
}
Value S(std::string s) { return Value::of(std::move(s)); }
Value T(std::vector<std::pair<std::string, Value>> fields) {
  Value v = Value::new_table();
  for (auto& [k, x] : fields) v.table->fields[k] = std::move(x);
  return v;
}
Value A(std::vector<Value> items) {
  Value v = Value::new_table();
  long long i = 1;
  for (auto& x : items) v.table->items[i++] = std::move(x);
  return v;
}

Toy read(const Value& v, const std::vector<Override>& overrides = {}) {
  Toy t;
  toy_section().read(v, t, "", Context("toy.lua", overrides));
  return t;
}

std::string error(const Value& v, const std::vector<Override>& overrides = {}) {
  try {
    read(v, overrides);
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

TEST(Schema, AbsentKeysKeepTheInitializers) {
  const Toy t = read(T({}));
  const Toy d;
  EXPECT_EQ(t.flag, d.flag);
  EXPECT_EQ(t.count, 3u);
  EXPECT_EQ(t.bytes, 1000u);
  EXPECT_EQ(t.timeout, 5s);
  EXPECT_FALSE(t.rate.has_value());
  EXPECT_EQ(t.name, "x");
  EXPECT_EQ(t.host, "machine");  // otherwise(): a default computed when absent
  EXPECT_EQ(t.inner.wait, 1500ms);
  EXPECT_EQ(t.grouped, 7u);
  EXPECT_TRUE(t.items.empty());
}

TEST(Schema, EveryKindReadsItsValues) {
  const Toy t = read(T({
      {"flag", B(true)},
      {"count", N(10.0)},  // a whole number is an integer
      {"port", I(65535)},
      {"bytes", S("1.5KiB")},
      {"timeout", N(0.25)},
      {"pause", S("0s")},
      {"rate", S("60/min")},
      {"name", S("n")},
      {"addr", S("[::1]:0")},
      {"host", S("h")},
      {"mode", S("safe")},
      {"tags", A({S("a"), S("b")})},
      {"inner", T({{"wait", S("2m")}, {"on", B(false)}})},
      {"g", T({{"grouped", I(9)}})},
      {"items", A({T({{"name", S("one")}}), T({{"name", S("two")}, {"weight", I(9)}})})},
  }));
  EXPECT_TRUE(t.flag);
  EXPECT_EQ(t.count, 10u);
  EXPECT_EQ(t.port, 65535);
  EXPECT_EQ(t.bytes, 1536u);
  EXPECT_EQ(t.timeout, 250ms);
  EXPECT_EQ(t.pause, 0ms);
  ASSERT_TRUE(t.rate.has_value());
  EXPECT_DOUBLE_EQ(t.rate->per_second(), 1.0);
  EXPECT_EQ(t.addr, "[::1]:0");
  EXPECT_EQ(t.host, "h");
  EXPECT_EQ(t.mode, Mode::Safe);
  EXPECT_THAT(t.tags, ElementsAre("a", "b"));
  EXPECT_EQ(t.inner.wait, 2min);
  EXPECT_EQ(t.grouped, 9u);
  ASSERT_EQ(t.items.size(), 2u);
  EXPECT_EQ(t.items[0].name, "one");
  EXPECT_EQ(t.items[0].weight, 1);  // each item starts from the initializers
  EXPECT_EQ(t.items[1].weight, 9);
  EXPECT_FALSE(read(T({{"rate", I(0)}})).rate.has_value());  // 0: none
}

TEST(Schema, ErrorsNameTheFileTheKeyAndWhatWasSeen) {
  const std::vector<std::pair<Value, std::string>> cases = {
      {T({{"flag", S("yes")}}), "toy.lua: flag: expected true or false, got \"yes\""},
      {T({{"count", I(11)}}), "toy.lua: count: expected an integer from 0 to 10, got 11"},
      {T({{"count", N(2.5)}}), "count: expected an integer from 0 to 10, got 2.5"},
      {T({{"count", I(-1)}}), "count: expected an integer from 0 to 10, got -1"},
      {T({{"port", I(0)}}), "port: expected an integer from 1 to 65535, got 0"},
      {T({{"bytes", S("1 GBB")}}), "bytes: expected a size (e.g. \"1GB\"), got \"1 GBB\""},
      {T({{"bytes", B(true)}}), "bytes: expected a size (e.g. \"1GB\"), got boolean"},
      {T({{"bytes", I(99)}}), "bytes: must be at least 100 bytes, got 99"},
      {T({{"timeout", S("1 week")}}),
       "timeout: expected a duration (e.g. \"30s\", \"5m\"), got \"1 week\""},
      {T({{"timeout", I(0)}}), "timeout: must be longer than 0"},
      {T({{"timeout", N(0.0001)}}), "timeout: expected a duration"},
      {T({{"rate", S("5")}}), "rate: expected a rate (e.g. \"60/min\") or 0, got \"5\""},
      {T({{"name", I(1)}}), "name: expected a string, got 1"},
      {T({{"name", S("")}}), "name: must not be empty"},
      {T({{"addr", S("localhost:25")}}),
       "addr: expected \"ip:port\" or \"[ipv6]:port\", got \"localhost:25\""},
      {T({{"mode", S("slow")}}), "mode: expected fast | safe, got \"slow\""},
      {T({{"tags", S("a")}}), "tags: expected an array of strings, got \"a\""},
      {T({{"tags", A({I(1)})}}), "tags[1]: expected a string, got 1"},
      {T({{"inner", I(5)}}), "inner: expected a table, got 5"},
      {T({{"inner", T({{"wait", S("soon")}})}}), "inner.wait: expected a duration"},
      {T({{"g", T({{"grouped", I(0)}})}}), "g.grouped: expected an integer from 1 to 4294967295"},
      {T({{"items", A({T({{"weight", I(2)}})})}}), "items[1].name: required (a name)"},
      {T({{"items", A({T({{"name", S("a")}, {"weight", I(10)}})})}}),
       "items[1].weight: expected an integer from 1 to 9, got 10"},
      {T({{"items", A({I(3)})}}), "items[1]: expected a table, got 3"},
      {T({{"items", T({{"a", T({})}})}}), "items: expected an array of item tables"},
  };
  for (const auto& [v, want] : cases) EXPECT_THAT(error(v), HasSubstr(want)) << want;
  Value gap = A({S("a")});
  gap.table->items[3] = S("c");
  EXPECT_THAT(error(T({{"tags", gap}})),
              HasSubstr("tags: expected an array of strings (keys 1..n)"));
}

TEST(Schema, UnknownKeysAreNamedWithTheirCall) {
  EXPECT_EQ(error(T({{"flg", B(true)}})), "toy.lua: configure: unknown key 'flg'");
  EXPECT_THAT(error(T({{"inner", T({{"wiat", I(1)}})}})),
              HasSubstr("configure: unknown key 'inner.wiat'"));
  EXPECT_THAT(error(T({{"g", T({{"count", I(1)}})}})), HasSubstr("unknown key 'g.count'"));
  EXPECT_THAT(error(T({{"items", A({T({{"name", S("a")}, {"x", I(1)}})})}})),
              HasSubstr("unknown key 'items[1].x'"));
  EXPECT_THAT(error(A({S("positional")})), HasSubstr("unknown key '[1]'"));
  Value odd = T({});
  odd.table->odd_keys.push_back("<boolean>");
  EXPECT_THAT(error(odd), HasSubstr("unknown key '<boolean>'"));
  Toy t;
  try {
    toy_section().read(T({{"x", I(1)}}), t, "listen[2]", Context("f", {}, "listen"));
    FAIL();
  } catch (const Error& e) {
    EXPECT_EQ(std::string(e.what()), "f: listen: unknown key 'listen[2].x'");
  }
}

TEST(Schema, SectionChecksRunAfterTheKeysAndWhenAbsent) {
  EXPECT_THAT(error(T({{"inner", T({{"wait", S("1m")}, {"on", B(true)}})}})),
              HasSubstr("inner: wait too long for on"));
  // Absent: the check runs on the defaults, which pass.
  Inner in;
  in.on = true;
  in.wait = 1h;
  EXPECT_THROW(inner_section().read_absent(in, "inner", Context("")), Error);
}

TEST(Schema, OverridesAreTypedAndMarked) {
  auto a = parse_assignment("inner.wait=90");
  EXPECT_THAT(a.segments, ElementsAre("inner", "wait"));
  EXPECT_EQ(a.value.type, Value::Type::Integer);
  EXPECT_EQ(parse_assignment("x=true").value.type, Value::Type::Boolean);
  EXPECT_EQ(parse_assignment("x=-1.5").value.type, Value::Type::Number);
  EXPECT_EQ(parse_assignment("x=1.5h").value.type, Value::Type::String);
  EXPECT_EQ(parse_assignment("x=a=b").value.str, "a=b");
  EXPECT_THAT([] { parse_assignment("x"); },
              ::testing::ThrowsMessage<Error>(HasSubstr("--set \"x\": expected KEY=VALUE")));
  for (const char* bad : {"=1", "a..b=1", "a.b-c=1", "a.=1"}) {
    EXPECT_THROW(parse_assignment(bad), Error) << bad;
  }

  Value root = T({{"name", S("n")}});
  std::vector<Override> applied;
  for (const char* text :
       {"inner.wait=90", "tags.2=b", "tags.1=a", "name=12345", "items.1.name=z"}) {
    const auto as = parse_assignment(text);
    applied.push_back({text, assign(root, as, 0, "")});
  }
  EXPECT_EQ(applied[1].key, "tags[2]");
  EXPECT_EQ(applied[4].key, "items[1].name");
  const Toy t = read(root, applied);
  EXPECT_EQ(t.inner.wait, 90s);
  EXPECT_THAT(t.tags, ElementsAre("a", "b"));
  EXPECT_EQ(t.name, "12345");  // a number given to a string key keeps its text
  ASSERT_EQ(t.items.size(), 1u);
  EXPECT_EQ(t.items[0].name, "z");

  Value scalar = T({{"name", S("n")}});
  EXPECT_THAT([&] { assign(scalar, parse_assignment("name.x=1"), 0, ""); },
              ::testing::ThrowsMessage<Error>(HasSubstr("'name' is \"n\", not a table")));

  // An error about a key a --set gave (or one inside it, or its table) says so.
  Value bad = T({});
  const auto b = parse_assignment("inner.wait=soon");
  const Override o{b.text, assign(bad, b, 0, "")};
  EXPECT_THAT(error(bad, {o}), HasSubstr("inner.wait: expected a duration (e.g. \"30s\", "
                                         "\"5m\"), got \"soon\" (from --set inner.wait=soon)"));
  Value unknown = T({});
  const auto u = parse_assignment("inner.wiat=1");
  const Override uo{u.text, assign(unknown, u, 0, "")};
  EXPECT_THAT(error(unknown, {uo}),
              HasSubstr("unknown key 'inner.wiat' (from --set inner.wiat=1)"));
  EXPECT_EQ(error(T({{"flag", I(1)}}), {uo}), "toy.lua: flag: expected true or false, got 1");
}

TEST(Schema, ReferenceRowsComeFromTheDeclaration) {
  std::vector<DocRow> rows;
  toy_section().document(Toy{}, "", rows);
  std::vector<std::string> keys;
  for (const auto& r : rows) keys.push_back(r.key);
  EXPECT_THAT(keys,
              ElementsAre("flag", "count", "port", "bytes", "timeout", "pause", "rate", "name",
                          "addr", "host", "mode", "tags", "inner", "inner.wait", "inner.on", "g",
                          "g.grouped", "items", "items[].name", "items[].weight"));
  const auto row = [&](const std::string& key) {
    for (const auto& r : rows)
      if (r.key == key) return r;
    return DocRow{};
  };
  EXPECT_EQ(row("count").type, "integer 0–10");
  EXPECT_EQ(row("port").type, "integer 1–65535");
  EXPECT_EQ(row("g.grouped").type, "integer ≥ 1");
  EXPECT_EQ(row("port").value, "`25`");
  EXPECT_EQ(row("bytes").type, "size ≥ 100 bytes");
  EXPECT_EQ(row("bytes").value, "`1KB`");
  EXPECT_EQ(row("timeout").type, "duration > 0");
  EXPECT_EQ(row("timeout").value, "`5s`");
  EXPECT_EQ(row("pause").value, "`0s`");
  EXPECT_EQ(row("rate").value, "none");
  EXPECT_EQ(row("host").value, "the machine");
  EXPECT_EQ(row("mode").type, "`fast` | `safe`");
  EXPECT_EQ(row("mode").value, "`fast`");
  EXPECT_EQ(row("tags").value, "`{}`");
  EXPECT_EQ(row("inner.wait").value, "`1500ms`");
  EXPECT_EQ(row("items[].name").value, "(required)");
  EXPECT_EQ(row("items[].weight").doc, "its weight");

  const auto md = markdown_table({DocRow{"a", "`x` | `y`", "`x`", "pick"}});
  EXPECT_EQ(md,
            "| key | type | default | meaning |\n|---|---|---|---|\n"
            "| `a` | `x` \\| `y` | `x` | pick |\n");
}

}  // namespace
}  // namespace mailgate::config
