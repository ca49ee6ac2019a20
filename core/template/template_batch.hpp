// template/template_batch: the Mustache templates of one templated injection
// (DESIGN §8: subject, extra header values, text and html), parsed once per
// request and rendered once per recipient with that recipient's vars over
// the request's (kainjow::mustache underneath, kept out of this header).
// Supported: {{name}} (HTML-escaped in the html part only; raw in subject,
// headers and text, DESIGN §6b), {{{name}}} and {{&name}} raw, {{#s}}..{{/s}}
// (once for a truthy value, per item for a list, inside an object's scope),
// {{^s}}..{{/s}}, {{! comments}}, {{=<% %>=}} delimiters, dotted names.
// Promises:
// - No code runs from a request: partials ({{>name}}) are refused at parse
//   (a var's text is never parsed as a template) and JSON cannot make lambdas.
// - parse() refuses, naming the template and the line/column: syntax errors,
//   a template over max_template_bytes, sections nested over max_depth, CR
//   or LF in the subject or a header value template.
// - render() never produces a header value with CR or LF (that recipient
//   gets a RenderError instead: no header split), and is bounded: the work
//   and the output of one render are capped (max_iterations section passes,
//   max_output_bytes of output, estimated before it is produced), so a
//   hostile template/vars pair (nested lists) costs at most that.
// - Vars: strings, numbers, booleans, null, lists and objects, nested at
//   most max_vars_depth; null, false, "" and [] are falsy.
// - A parsed TemplateBatch is immutable: render() is const and may run on
//   several threads at once.
#pragma once

#include <cstddef>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <variant>
#include <vector>

#include <nlohmann/json_fwd.hpp>

namespace mailgate::templating {

struct TemplateLimits {
  std::size_t max_template_bytes = 1u << 20;  // each template
  std::size_t max_headers = 100;              // extra header templates
  std::size_t max_depth = 32;                 // section nesting
  std::size_t max_output_bytes = 4u << 20;    // one rendered template
  std::size_t max_iterations = 100'000;       // section passes in one render
  std::size_t max_vars_depth = 16;            // nesting of lists/objects in vars
};

// The templates as the request gives them.
struct TemplateSources {
  std::string subject, text, html;
  std::vector<std::pair<std::string, std::string>> headers;  // name (literal), value template
};

// What a recipient's render gives.
struct RenderedParts {
  std::string subject, text, html;
  std::vector<std::pair<std::string, std::string>> headers;
};

// A refusal: `field` is "subject", "text", "html", "headers[2]", "vars" or
// "recipients[7].vars"; what() is "<field>: <problem>".
struct TemplateError {
  std::string field;
  std::string problem;
  std::string what() const { return field + ": " + problem; }
};

// Substitution data converted once (the request's vars, or one recipient's).
class Vars {
 public:
  // `json` must be an object (or null: no vars). `field` names it in errors.
  static std::variant<Vars, TemplateError> from_json(const nlohmann::ordered_json& json,
                                                     const std::string& field,
                                                     const TemplateLimits& limits);
  Vars();
  ~Vars();
  Vars(Vars&&) noexcept;
  Vars& operator=(Vars&&) noexcept;

  struct Data;
  const Data& data() const { return *data_; }

 private:
  std::unique_ptr<Data> data_;
};

class TemplateBatch {
 public:
  static std::variant<TemplateBatch, TemplateError> parse(const TemplateSources& sources,
                                                          const TemplateLimits& limits);
  TemplateBatch(TemplateBatch&&) noexcept;
  TemplateBatch& operator=(TemplateBatch&&) noexcept;
  ~TemplateBatch();

  // `recipient` over `request`: a name is looked up in the recipient's vars
  // first. An empty template renders to "".
  std::variant<RenderedParts, TemplateError> render(const Vars& request,
                                                    const Vars& recipient) const;

  struct Impl;

 private:
  explicit TemplateBatch(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

// "line L, column C" of byte `offset` in `text` (1-based; columns in bytes).
std::string describe_position(const std::string& text, std::size_t offset);

}  // namespace mailgate::templating
