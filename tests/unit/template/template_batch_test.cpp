// TemplateBatch: escaping only in html, raw triple mustache, sections over
// lists and objects, inverted sections, comments, dotted names, recipient
// vars over request vars, header CR/LF refusal, parse errors naming the
// template and position, refused partials, nesting and render budgets.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include <thread>
#include <vector>

#include "template/tag_scan.hpp"
#include "template/template_batch.hpp"

namespace mailgate::templating {
namespace {

using json = nlohmann::ordered_json;

TemplateBatch parse_ok(const TemplateSources& s, const TemplateLimits& limits = {}) {
  auto r = TemplateBatch::parse(s, limits);
  if (auto* e = std::get_if<TemplateError>(&r)) ADD_FAILURE() << e->what();
  return std::move(std::get<TemplateBatch>(r));
}

TemplateError parse_error(const TemplateSources& s, const TemplateLimits& limits = {}) {
  auto r = TemplateBatch::parse(s, limits);
  EXPECT_TRUE(std::holds_alternative<TemplateError>(r));
  if (auto* e = std::get_if<TemplateError>(&r)) return *e;
  return {};
}

Vars vars(const json& j, const TemplateLimits& limits = {}) {
  auto r = Vars::from_json(j, "vars", limits);
  if (auto* e = std::get_if<TemplateError>(&r)) ADD_FAILURE() << e->what();
  return std::move(std::get<Vars>(r));
}

RenderedParts render_ok(const TemplateBatch& b, const json& request, const json& recipient) {
  auto r = b.render(vars(request), vars(recipient));
  if (auto* e = std::get_if<TemplateError>(&r)) ADD_FAILURE() << e->what();
  return std::move(std::get<RenderedParts>(r));
}

TEST(TemplateBatch, EscapesOnlyInHtml) {
  TemplateSources s;
  s.subject = "Hi {{name}}";
  s.text = "Dear {{name}}";
  s.html = "<p>Dear {{name}}</p>";
  s.headers = {{"X-Name", "{{name}}"}};
  const auto b = parse_ok(s);
  const auto r = render_ok(b, json::object(), {{"name", "Tom & \"Jerry\" <t@x> 'o'"}});
  EXPECT_EQ(r.subject, "Hi Tom & \"Jerry\" <t@x> 'o'");
  EXPECT_EQ(r.text, "Dear Tom & \"Jerry\" <t@x> 'o'");
  EXPECT_EQ(r.html, "<p>Dear Tom &amp; &quot;Jerry&quot; &lt;t@x&gt; &apos;o&apos;</p>");
  ASSERT_EQ(r.headers.size(), 1u);
  EXPECT_EQ(r.headers[0].first, "X-Name");
  EXPECT_EQ(r.headers[0].second, "Tom & \"Jerry\" <t@x> 'o'");
}

TEST(TemplateBatch, TripleMustacheAndAmpersandAreRawInHtml) {
  TemplateSources s;
  s.html = "{{{block}}}|{{& block}}|{{block}}";
  const auto r = render_ok(parse_ok(s), {{"block", "<b>x</b>"}}, json::object());
  EXPECT_EQ(r.html, "<b>x</b>|<b>x</b>|&lt;b&gt;x&lt;/b&gt;");
}

TEST(TemplateBatch, SectionsIterateListsAndEnterObjects) {
  TemplateSources s;
  s.text = "{{#items}}[{{name}}:{{price}}]{{/items}}{{#user}}{{first}} {{last}}{{/user}}";
  const auto r =
      render_ok(parse_ok(s),
                {{"items", {{{"name", "a"}, {"price", 1.5}}, {{"name", "b"}, {"price", 2}}}},
                 {"user", {{"first", "Ann"}, {"last", "Lee"}}}},
                json::object());
  EXPECT_EQ(r.text, "[a:1.5][b:2]Ann Lee");
}

TEST(TemplateBatch, InvertedSectionsAndFalsyValues) {
  TemplateSources s;
  s.text =
      "{{^items}}none{{/items}}{{^flag}}-off{{/flag}}{{#flag}}-on{{/flag}}"
      "{{^empty}}-blank{{/empty}}{{^nothing}}-null{{/nothing}}{{^missing}}-missing{{/missing}}";
  const auto b = parse_ok(s);
  EXPECT_EQ(
      render_ok(b, json::object(),
                {{"items", json::array()}, {"flag", false}, {"empty", ""}, {"nothing", nullptr}})
          .text,
      "none-off-blank-null-missing");
  EXPECT_EQ(
      render_ok(b, json::object(),
                {{"items", {1}}, {"flag", true}, {"empty", "x"}, {"nothing", 0}, {"missing", 1}})
          .text,
      "-on");
}

TEST(TemplateBatch, CommentsRenderNothing) {
  TemplateSources s;
  s.text = "a{{! this is {{not}} rendered }}b";
  EXPECT_EQ(render_ok(parse_ok(s), json::object(), json::object()).text, "a rendered }}b");
  s.text = "a{{! a comment }}b";
  EXPECT_EQ(render_ok(parse_ok(s), json::object(), json::object()).text, "ab");
}

TEST(TemplateBatch, DottedNamesAndNumbers) {
  TemplateSources s;
  s.text = "{{user.address.city}} {{count}} {{ratio}} {{neg}}";
  const auto r = render_ok(parse_ok(s), {{"count", 10000}, {"ratio", 0.25}, {"neg", -3}},
                           {{"user", {{"address", {{"city", "Oslo"}}}}}});
  EXPECT_EQ(r.text, "Oslo 10000 0.25 -3");
}

TEST(TemplateBatch, RecipientVarsOverRequestVars) {
  TemplateSources s;
  s.text = "{{greeting}} {{name}} from {{company}}";
  const auto b = parse_ok(s);
  const json request = {{"greeting", "Hello"}, {"name", "friend"}, {"company", "ACME"}};
  EXPECT_EQ(render_ok(b, request, {{"name", "Ann"}}).text, "Hello Ann from ACME");
  EXPECT_EQ(render_ok(b, request, json::object()).text, "Hello friend from ACME");
  EXPECT_EQ(render_ok(b, request, {{"greeting", "Hi"}, {"company", "X"}}).text, "Hi friend from X");
}

TEST(TemplateBatch, AVarIsNeverParsedAsATemplate) {
  TemplateSources s;
  s.text = "{{a}}|{{{a}}}";
  EXPECT_EQ(render_ok(parse_ok(s), {{"secret", "S"}}, {{"a", "{{secret}}{{>a}}"}}).text,
            "{{secret}}{{>a}}|{{secret}}{{>a}}");
}

TEST(TemplateBatch, RenderedHeaderWithCrLfIsRefusedNotSplit) {
  TemplateSources s;
  s.subject = "Hi {{name}}";
  s.headers = {{"X-Campaign", "{{campaign}}"}};
  s.text = "body";
  const auto b = parse_ok(s);
  for (const char* evil : {"x\r\nBcc: victim@example.com", "x\nBcc: v@x", "x\rY"}) {
    auto r = b.render(vars(json::object()), vars({{"name", evil}, {"campaign", "c"}}));
    ASSERT_TRUE(std::holds_alternative<TemplateError>(r)) << evil;
    EXPECT_EQ(std::get<TemplateError>(r).field, "subject");
    EXPECT_NE(std::get<TemplateError>(r).problem.find("CR or LF"), std::string::npos);
    r = b.render(vars(json::object()), vars({{"name", "ok"}, {"campaign", evil}}));
    ASSERT_TRUE(std::holds_alternative<TemplateError>(r));
    EXPECT_EQ(std::get<TemplateError>(r).field, "headers[0]");
  }
  // In the body a newline is just text.
  s.text = "{{x}}";
  EXPECT_EQ(
      render_ok(parse_ok(s), json::object(), {{"name", "n"}, {"campaign", "c"}, {"x", "a\nb"}})
          .text,
      "a\nb");
}

TEST(TemplateBatch, HeaderTemplateWithCrLfIsAParseError) {
  TemplateSources s;
  s.subject = "a\nb";
  auto e = parse_error(s);
  EXPECT_EQ(e.field, "subject");
  EXPECT_NE(e.problem.find("line 1, column 2"), std::string::npos) << e.problem;
  s.subject = "";
  s.headers = {{"X-A", "ok"}, {"X-B", "a\r\nBcc: x"}};
  EXPECT_EQ(parse_error(s).field, "headers[1]");
}

TEST(TemplateBatch, ParseErrorsNameTheTemplateAndPosition) {
  TemplateSources s;
  s.html = "<p>\n  {{#items}}{{name}}\n</p>";
  auto e = parse_error(s);
  EXPECT_EQ(e.field, "html");
  EXPECT_EQ(e.what(), "html: Unclosed section \"items\" at line 2, column 3");
  s.html.clear();
  s.text = "ab\ncd {{name";
  e = parse_error(s);
  EXPECT_EQ(e.what(), "text: Unclosed tag at line 2, column 4");
  s.text = "x {{/items}}";
  EXPECT_EQ(parse_error(s).what(), "text: Unopened section \"items\" at line 1, column 3");
  s.text.clear();
  s.subject = "{{#a}}{{/b}}";
  EXPECT_EQ(parse_error(s).field, "subject");
  s.subject = "{{= | =}}";
  EXPECT_NE(parse_error(s).problem.find("Invalid set delimiter tag at line 1, column 1"),
            std::string::npos);
}

TEST(TemplateBatch, PartialsAreRefused) {
  TemplateSources s;
  s.text = "line\n {{> footer}}";
  const auto e = parse_error(s);
  EXPECT_EQ(e.what(), "text: partials ({{>name}}) are not supported, at line 2, column 2");
  s.text = "{{=<% %>=}}<%> footer%>";
  EXPECT_EQ(parse_error(s).field, "text");
}

TEST(TemplateBatch, SetDelimiters) {
  TemplateSources s;
  s.html = "{{=<% %>=}}<%name%> {{name}} <%={{ }}=%>{{name}}";
  EXPECT_EQ(render_ok(parse_ok(s), json::object(), {{"name", "<x>"}}).html,
            "&lt;x&gt; {{name}} &lt;x&gt;");
}

TEST(TemplateBatch, NestingDepthIsLimited) {
  TemplateLimits limits;
  limits.max_depth = 8;
  TemplateSources s;
  std::string deep;
  for (int i = 0; i < 9; ++i) deep += "{{#a}}";
  for (int i = 0; i < 9; ++i) deep += "{{/a}}";
  s.text = deep;
  EXPECT_NE(parse_error(s, limits).problem.find("nested deeper than 8"), std::string::npos);
  // 100,000 levels: refused before kainjow's recursive walk could overflow the stack.
  s.text.clear();
  for (int i = 0; i < 100000; ++i) s.text += "{{#a}}";
  EXPECT_NE(parse_error(s).problem.find("nested deeper"), std::string::npos);
}

TEST(TemplateBatch, TemplateSizeIsLimited) {
  TemplateLimits limits;
  limits.max_template_bytes = 100;
  TemplateSources s;
  s.html = std::string(101, 'x');
  EXPECT_EQ(parse_error(s, limits).field, "html");
  s.html = std::string(100, 'x');
  parse_ok(s, limits);
}

TEST(TemplateBatch, NestedListsCannotExplode) {
  // 100^4 passes (and output) if unbounded.
  TemplateSources s;
  s.text = "{{#l}}{{#l}}{{#l}}{{#l}}xxxxxxxx{{/l}}{{/l}}{{/l}}{{/l}}";
  const auto b = parse_ok(s);
  json list = json::array();
  for (int i = 0; i < 100; ++i) list.push_back(i);
  auto r = b.render(vars({{"l", list}}), vars(json::object()));
  ASSERT_TRUE(std::holds_alternative<TemplateError>(r));
  EXPECT_EQ(std::get<TemplateError>(r).field, "text");
  // A legitimate list of 1,000 items renders.
  s.text = "{{#items}}<li>{{name}}</li>\n{{/items}}";
  json items = json::array();
  for (int i = 0; i < 1000; ++i) items.push_back({{"name", "item" + std::to_string(i)}});
  const auto out = render_ok(parse_ok(s), {{"items", items}}, json::object()).text;
  EXPECT_NE(out.find("<li>item999</li>"), std::string::npos);
}

TEST(TemplateBatch, OutputIsBoundedOnOneLine) {
  // No newline: kainjow keeps the line in one buffer; the budget is charged
  // before it grows.
  TemplateLimits limits;
  limits.max_output_bytes = 1 << 16;
  TemplateSources s;
  s.html = "{{#l}}{{big}}{{big}}{{/l}}";
  json list = json::array();
  for (int i = 0; i < 1000; ++i) list.push_back(i);
  auto b = parse_ok(s, limits);
  auto r = b.render(vars({{"l", list}, {"big", std::string(1000, '<')}}), vars(json::object()));
  ASSERT_TRUE(std::holds_alternative<TemplateError>(r));
  EXPECT_NE(std::get<TemplateError>(r).problem.find("bytes"), std::string::npos);
}

TEST(TemplateBatch, VarsMustBeAnObjectAndNotTooDeep) {
  TemplateLimits limits;
  auto r = Vars::from_json(json::array(), "recipients[3].vars", limits);
  ASSERT_TRUE(std::holds_alternative<TemplateError>(r));
  EXPECT_EQ(std::get<TemplateError>(r).what(), "recipients[3].vars: must be an object");
  json deep = "x";
  for (int i = 0; i < 40; ++i) deep = json::array({deep});
  r = Vars::from_json({{"d", deep}}, "vars", limits);
  ASSERT_TRUE(std::holds_alternative<TemplateError>(r));
  EXPECT_NE(std::get<TemplateError>(r).problem.find("nested deeper"), std::string::npos);
  EXPECT_TRUE(std::holds_alternative<Vars>(Vars::from_json(nullptr, "vars", limits)));
}

TEST(TemplateBatch, EmptyTemplatesRenderEmpty) {
  const auto r = render_ok(parse_ok(TemplateSources{}), json::object(), json::object());
  EXPECT_EQ(r.subject, "");
  EXPECT_EQ(r.text, "");
  EXPECT_EQ(r.html, "");
}

TEST(TemplateBatch, RendersConcurrentlyFromOneParse) {
  // The batch runner renders one parsed batch on every worker at once
  // (render() is const; the TSan build checks that it only reads).
  TemplateSources s;
  s.subject = "{{n}}";
  s.html = "{{#items}}<i>{{.}}</i>{{/items}} {{n}}";
  const auto b = parse_ok(s);
  const auto request = vars({{"items", {"a", "<b>"}}});
  std::vector<std::thread> threads;
  std::vector<int> bad(4, 0);
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < 200; ++i) {
        const auto n = std::to_string(t * 1000 + i);
        auto r = b.render(request, vars({{"n", n}}));
        const auto* parts = std::get_if<RenderedParts>(&r);
        if (!parts || parts->subject != n || parts->html != "<i>a</i><i>&lt;b&gt;</i> " + n)
          ++bad[t];
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(bad, std::vector<int>(4, 0));
}

TEST(TagScan, MirrorsTheParser) {
  const auto s = scan_tags("{{#a}}12345{{/a}}{{#b}}{{#c}}x{{/c}}{{/b}}{{{x}}}{{&y}}", 10);
  EXPECT_EQ(s.max_depth, 2u);
  EXPECT_EQ(s.section_bytes.at("a"), 5u);
  EXPECT_EQ(s.section_bytes.at("b"), 13u);
  EXPECT_FALSE(s.partial_at);
  EXPECT_FALSE(s.too_deep_at);
  // "{{{" means triple only with the default delimiters.
  const auto t = scan_tags("{{=[ ]=}}[#a]{x[/a]", 10);
  EXPECT_EQ(t.section_bytes.at("a"), 2u);
}

}  // namespace
}  // namespace mailgate::templating
