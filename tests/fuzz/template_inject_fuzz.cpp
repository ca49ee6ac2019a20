// Fuzz target: the templated injection's request-to-render path
// (template/template_batch + mime/message_builder, as app/inject_batch uses
// them). Input: a template, then optionally a NUL and a JSON object of vars
// (when that part is missing or not an object, fixed hostile vars are used:
// markup, CR/LF, template syntax, nested lists).
// The template is parsed as subject, as a header value, as text and as html;
// each that parses is rendered with the vars over a recipient's, and the
// message is built. Invariants checked:
//  - parse and render never crash or hang (kainjow's recursion is bounded
//    by the nesting limit; nested lists by the render budget);
//  - a rendered subject or header value never holds CR or LF;
//  - the html rendering of a var holding markup never shows it raw where
//    the text rendering does unless the template asked for raw ({{{ or &);
//  - a built message has CRLF line ends only, no line over 998 octets, and
//    exactly one Subject/X-Fuzz/To field whatever the vars held (no header
//    split, no injected Bcc).
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

#include "fuzz_check.hpp"
#include "mime/mime.hpp"
#include "template/template_batch.hpp"

using namespace mailgate;
using mailgate::fuzz::show;
using ojson = nlohmann::ordered_json;

namespace {

const ojson& hostile_vars() {
  static const ojson v = ojson::parse(R"({
    "name": "<b>Tom & \"Jerry\"</b>",
    "crlf": "x\r\nBcc: victim@example.com",
    "lf": "a\nb",
    "tmpl": "{{name}}{{>p}}{{#l}}",
    "n": 42, "f": 0.5, "t": true, "no": false, "nil": null, "empty": "",
    "l": [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16],
    "o": {"a": {"b": {"c": "deep"}}, "l": [{"x": "1"}, {"x": "<2>"}]},
    "p": "{{>p}}"
  })");
  return v;
}

std::size_t count_fields(std::string_view header, std::string_view name) {
  std::size_t n = 0, pos = 0;
  while (pos < header.size()) {
    const auto end = header.find("\r\n", pos);
    const auto line = header.substr(pos, end == std::string_view::npos ? end : end - pos);
    if (line.size() > name.size() && line[name.size()] == ':' &&
        line.substr(0, name.size()) == name)
      ++n;
    if (end == std::string_view::npos) break;
    pos = end + 2;
  }
  return n;
}

void check_message(const std::string& msg) {
  for (std::size_t i = 0; i < msg.size(); ++i) {
    if (msg[i] == '\n') FUZZ_CHECK(i > 0 && msg[i - 1] == '\r', "bare LF in the message");
    if (msg[i] == '\r') FUZZ_CHECK(i + 1 < msg.size() && msg[i + 1] == '\n', "bare CR");
  }
  std::size_t line_start = 0;
  for (std::size_t i = 0; i + 1 < msg.size(); ++i) {
    if (msg[i] == '\r' && msg[i + 1] == '\n') {
      FUZZ_CHECK(i - line_start <= 998, "a line over 998 octets");
      line_start = i + 2;
    }
  }
  const auto end = msg.find("\r\n\r\n");
  FUZZ_CHECK(end != std::string::npos, "no header/body separator");
  const std::string_view header(msg.data(), end + 2);
  FUZZ_CHECK(count_fields(header, "To") == 1, "To fields in " + show(header));
  FUZZ_CHECK(count_fields(header, "X-Fuzz") == 1, "X-Fuzz fields in " + show(header));
  FUZZ_CHECK(count_fields(header, "Bcc") == 0, "a Bcc field in " + show(header));
  FUZZ_CHECK(count_fields(header, "Subject") <= 1, "Subject fields in " + show(header));
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view input(reinterpret_cast<const char*>(data), size);
  const auto nul = input.find('\0');
  const std::string tmpl(input.substr(0, nul));
  ojson vars = hostile_vars();
  if (nul != std::string_view::npos) {
    auto parsed = ojson::parse(input.substr(nul + 1), nullptr, false);
    if (!parsed.is_discarded() && parsed.is_object()) vars = std::move(parsed);
  }
  templating::TemplateLimits limits;
  limits.max_template_bytes = 64 * 1024;
  limits.max_output_bytes = 1 << 20;
  limits.max_iterations = 20'000;
  auto request = templating::Vars::from_json(vars, "vars", limits);
  if (std::holds_alternative<templating::TemplateError>(request)) return 0;
  auto recipient = templating::Vars::from_json(ojson{{"name", "R<>&\"'"}}, "r", limits);

  templating::TemplateSources sources;
  sources.subject = tmpl;
  sources.headers = {{"X-Fuzz", tmpl}};
  sources.text = tmpl;
  sources.html = tmpl;
  auto batch = templating::TemplateBatch::parse(sources, limits);
  if (auto* e = std::get_if<templating::TemplateError>(&batch)) {
    // A body-only template (subject/header refused for CR/LF) must still parse alone.
    if (e->field != "subject" && e->field != "headers[0]") return 0;
    sources.subject.clear();
    sources.headers = {{"X-Fuzz", "fixed"}};
    batch = templating::TemplateBatch::parse(sources, limits);
    if (std::holds_alternative<templating::TemplateError>(batch)) return 0;
  }
  const auto& b = std::get<templating::TemplateBatch>(batch);
  auto rendered = b.render(std::get<templating::Vars>(request), std::get<templating::Vars>(recipient));
  if (auto* e = std::get_if<templating::TemplateError>(&rendered)) {
    // Only a header that rendered a line break or a spent budget may refuse.
    FUZZ_CHECK(e->problem.find("CR or LF") != std::string::npos ||
                   e->problem.find("would") != std::string::npos,
               "unexpected render error " + e->what());
    return 0;
  }
  auto& parts = std::get<templating::RenderedParts>(rendered);
  FUZZ_CHECK(parts.subject.find_first_of("\r\n") == std::string::npos,
             "subject with CR/LF " + show(parts.subject));
  for (const auto& [name, value] : parts.headers)
    FUZZ_CHECK(value.find_first_of("\r\n") == std::string::npos, "header with CR/LF " + show(value));
  // The html rendering escapes what the text rendering writes raw, unless
  // the template itself wrote raw markup.
  if (tmpl.find("{{{") == std::string::npos && tmpl.find('&') == std::string::npos &&
      tmpl.find('=') == std::string::npos && tmpl.find('<') == std::string::npos &&
      tmpl.find('>') == std::string::npos && tmpl.find('"') == std::string::npos &&
      tmpl.find('\'') == std::string::npos)
    FUZZ_CHECK(parts.html.find_first_of("<>\"'") == std::string::npos,
               "raw markup in html " + show(parts.html));

  mime::StructuredMessage m;
  m.from = "fuzz@example.org";
  m.to = {"r@example.net"};
  m.subject = parts.subject;
  m.text = parts.text;
  m.html = parts.html;
  m.headers = parts.headers;
  mime::BuildOptions opts;
  opts.hostname = "gw.example.org";
  try {
    check_message(mime::build_message(m, opts));
  } catch (const mime::BuildError&) {
    // Refused input (invalid UTF-8 from the fuzzer, control characters): fine.
  }
  return 0;
}
