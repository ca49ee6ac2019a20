// template/template_batch: see template_batch.hpp. The rendering goes
// through a context of our own (BoundedContext) instead of kainjow's: it
// answers no partial, and it charges every section pass and every
// interpolated value against the render's budget before kainjow writes it.
#include "template/template_batch.hpp"

#include <kainjow/mustache.hpp>
#include <nlohmann/json.hpp>

#include <charconv>

#include "template/tag_scan.hpp"

namespace mailgate::templating {

namespace mustache = kainjow::mustache;

struct Vars::Data {
  mustache::data value{mustache::data::type::object};
};

Vars::Vars() : data_(std::make_unique<Data>()) {}
Vars::~Vars() = default;
Vars::Vars(Vars&&) noexcept = default;
Vars& Vars::operator=(Vars&&) noexcept = default;

namespace {

// JSON → mustache data; `depth` counts the lists and objects around `j`.
std::optional<std::string> convert(const nlohmann::ordered_json& j, mustache::data& out,
                                   std::size_t depth, const TemplateLimits& limits) {
  using T = nlohmann::ordered_json::value_t;
  switch (j.type()) {
    case T::string: {
      const auto& s = j.get_ref<const std::string&>();
      // "" is falsy, as in mustache.js: {{#coupon}}..{{/coupon}} skips it.
      out = s.empty() ? mustache::data(false) : mustache::data(s);
      return std::nullopt;
    }
    case T::boolean:
      out = mustache::data(j.get<bool>());
      return std::nullopt;
    case T::number_integer:
    case T::number_unsigned:
    case T::number_float:
      out = mustache::data(j.dump());
      return std::nullopt;
    case T::null:
    case T::discarded:
    case T::binary:
      out = mustache::data(false);
      return std::nullopt;
    case T::array:
    case T::object:
      break;
  }
  if (depth >= limits.max_vars_depth)
    return "nested deeper than " + std::to_string(limits.max_vars_depth) + " lists/objects";
  if (j.is_array()) {
    if (j.empty()) {
      out = mustache::data(mustache::data::type::list);  // an empty list: falsy
      return std::nullopt;
    }
    mustache::list items;
    items.reserve(j.size());
    for (const auto& item : j) {
      mustache::data d;
      if (auto e = convert(item, d, depth + 1, limits)) return e;
      items.push_back(std::move(d));
    }
    out = mustache::data(std::move(items));
    return std::nullopt;
  }
  mustache::object obj;
  for (const auto& [k, v] : j.items()) {
    mustache::data d;
    if (auto e = convert(v, d, depth + 1, limits)) return e;
    obj.emplace(k, std::move(d));
  }
  out = mustache::data(std::move(obj));
  return std::nullopt;
}

// Thrown through kainjow's renderer when a render's budget is spent (its
// scopes are RAII: nothing is left pushed).
struct BudgetSpent {
  std::string why;
};

// One render's lookups: the recipient's vars over the request's, no
// partials, and the budget.
class BoundedContext : public mustache::basic_context<std::string> {
 public:
  BoundedContext(const mustache::data* request, const mustache::data* recipient,
                 const TagScan& scan, std::size_t escape_factor, const TemplateLimits& limits)
      : scan_(scan), escape_factor_(escape_factor), limits_(limits) {
    items_ = {recipient, request};
  }

  void push(const mustache::data* data) override {
    if (++iterations_ > limits_.max_iterations)
      throw BudgetSpent{"sections would run more than " + std::to_string(limits_.max_iterations) +
                        " times"};
    charge(section_charge_);
    items_.insert(items_.begin(), data);
  }
  void pop() override { items_.erase(items_.begin()); }

  const mustache::data* get(const std::string& name) const override {
    const mustache::data* found = lookup(name);
    // A section tag looks its name up right before the passes over it:
    // each pass can write at most that section's source text.
    const auto s = scan_.section_bytes.find(name);
    section_charge_ = s == scan_.section_bytes.end() ? 0 : s->second;
    if (found != nullptr && found->is_string())
      charge(found->string_value().size() * escape_factor_);
    return found;
  }
  const mustache::data* get_partial(const std::string&) const override { return nullptr; }

  void charge(std::size_t bytes) const {
    charged_ += bytes;
    if (charged_ > limits_.max_output_bytes)
      throw BudgetSpent{"the rendered text would pass " + std::to_string(limits_.max_output_bytes) +
                        " bytes"};
  }

 private:
  // kainjow's context::get: "." is the innermost item; "a.b" is resolved
  // within each scope in turn.
  const mustache::data* lookup(const std::string& name) const {
    if (name == ".") return items_.front();
    for (const auto* item : items_) {
      const mustache::data* var = item;
      std::size_t from = 0;
      while (var != nullptr) {
        const auto dot = name.find('.', from);
        var =
            var->get(name.substr(from, dot == std::string::npos ? std::string::npos : dot - from));
        if (dot == std::string::npos) break;
        from = dot + 1;
      }
      if (var != nullptr) return var;
    }
    return nullptr;
  }

  std::vector<const mustache::data*> items_;
  const TagScan& scan_;
  const std::size_t escape_factor_;
  const TemplateLimits& limits_;
  std::size_t iterations_ = 0;
  mutable std::size_t charged_ = 0;
  mutable std::size_t section_charge_ = 0;
};

// kainjow's error messages end in "at <byte offset>": make that a line and column.
std::string locate(const std::string& message, const std::string& text) {
  const auto at = message.rfind(" at ");
  if (at == std::string::npos) return message;
  std::size_t offset = 0;
  const char* first = message.data() + at + 4;
  const char* last = message.data() + message.size();
  auto [ptr, ec] = std::from_chars(first, last, offset);
  if (ec != std::errc() || ptr != last) return message;
  return message.substr(0, at) + " at " + describe_position(text, offset);
}

std::string identity(const std::string& s) { return s; }

}  // namespace

std::string describe_position(const std::string& text, std::size_t offset) {
  offset = std::min(offset, text.size());
  std::size_t line = 1, line_start = 0;
  for (std::size_t i = 0; i < offset; ++i) {
    if (text[i] == '\n') {
      ++line;
      line_start = i + 1;
    }
  }
  return "line " + std::to_string(line) + ", column " + std::to_string(offset - line_start + 1);
}

std::variant<Vars, TemplateError> Vars::from_json(const nlohmann::ordered_json& json,
                                                  const std::string& field,
                                                  const TemplateLimits& limits) {
  Vars v;
  if (json.is_null()) return v;
  if (!json.is_object()) return TemplateError{field, "must be an object"};
  if (auto e = convert(json, v.data_->value, 0, limits)) return TemplateError{field, *e};
  return v;
}

// One parsed template.
struct Compiled {
  std::string field;
  std::string source;
  std::optional<mustache::mustache> tmpl;  // none: empty template
  TagScan scan;
  bool html = false;
  bool header = false;
};

struct TemplateBatch::Impl {
  TemplateLimits limits;
  Compiled subject, text, html;
  std::vector<std::pair<std::string, Compiled>> headers;

  std::variant<std::string, TemplateError> render(const Compiled& c, const Vars& request,
                                                  const Vars& recipient) const {
    if (!c.tmpl) return std::string();
    BoundedContext ctx(&request.data().value, &recipient.data().value, c.scan, c.html ? 6 : 1,
                       limits);
    std::string out;
    try {
      ctx.charge(c.source.size());  // the text outside sections, written once
      // render(basic_context&) is not const in kainjow, but with our context
      // (no partials, no lambdas) it only reads the parsed tree.
      auto& tmpl = const_cast<mustache::mustache&>(*c.tmpl);
      out = tmpl.render(ctx);
    } catch (const BudgetSpent& e) {
      return TemplateError{c.field, e.why};
    }
    if (c.header && out.find_first_of("\r\n") != std::string::npos)
      return TemplateError{c.field,
                           "the rendered value contains CR or LF (refused: it would split the "
                           "header)"};
    return out;
  }
};

namespace {

std::optional<TemplateError> compile(Compiled& c, std::string field, const std::string& source,
                                     bool html, bool header, const TemplateLimits& limits) {
  c.field = std::move(field);
  c.source = source;
  c.html = html;
  c.header = header;
  if (source.size() > limits.max_template_bytes)
    return TemplateError{c.field, "the template is larger than " +
                                      std::to_string(limits.max_template_bytes) + " bytes"};
  if (header) {
    if (const auto crlf = source.find_first_of("\r\n"); crlf != std::string::npos)
      return TemplateError{c.field, "contains CR or LF at " + describe_position(source, crlf) +
                                        " (a header value is one line)"};
  }
  if (source.empty()) return std::nullopt;
  c.scan = scan_tags(source, limits.max_depth);
  if (c.scan.partial_at)
    return TemplateError{c.field, "partials ({{>name}}) are not supported, at " +
                                      describe_position(source, *c.scan.partial_at)};
  if (c.scan.too_deep_at)
    return TemplateError{c.field, "sections nested deeper than " +
                                      std::to_string(limits.max_depth) + ", at " +
                                      describe_position(source, *c.scan.too_deep_at)};
  c.tmpl.emplace(source);
  if (!c.tmpl->is_valid()) return TemplateError{c.field, locate(c.tmpl->error_message(), source)};
  if (!html) c.tmpl->set_custom_escape(identity);
  return std::nullopt;
}

}  // namespace

TemplateBatch::TemplateBatch(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
TemplateBatch::TemplateBatch(TemplateBatch&&) noexcept = default;
TemplateBatch& TemplateBatch::operator=(TemplateBatch&&) noexcept = default;
TemplateBatch::~TemplateBatch() = default;

std::variant<TemplateBatch, TemplateError> TemplateBatch::parse(const TemplateSources& sources,
                                                                const TemplateLimits& limits) {
  auto impl = std::make_unique<Impl>();
  impl->limits = limits;
  if (sources.headers.size() > limits.max_headers)
    return TemplateError{"headers",
                         "more than " + std::to_string(limits.max_headers) + " header templates"};
  if (auto e = compile(impl->subject, "subject", sources.subject, false, true, limits)) return *e;
  for (std::size_t i = 0; i < sources.headers.size(); ++i) {
    auto& [name, c] = impl->headers.emplace_back(sources.headers[i].first, Compiled{});
    if (auto e = compile(c, "headers[" + std::to_string(i) + "]", sources.headers[i].second, false,
                         true, limits))
      return *e;
  }
  if (auto e = compile(impl->text, "text", sources.text, false, false, limits)) return *e;
  if (auto e = compile(impl->html, "html", sources.html, true, false, limits)) return *e;
  return TemplateBatch(std::move(impl));
}

std::variant<RenderedParts, TemplateError> TemplateBatch::render(const Vars& request,
                                                                 const Vars& recipient) const {
  RenderedParts out;
  auto one = [&](const Compiled& c, std::string& into) -> std::optional<TemplateError> {
    auto r = impl_->render(c, request, recipient);
    if (auto* e = std::get_if<TemplateError>(&r)) return std::move(*e);
    into = std::move(std::get<std::string>(r));
    return std::nullopt;
  };
  if (auto e = one(impl_->subject, out.subject)) return *e;
  for (const auto& [name, c] : impl_->headers) {
    auto& [n, value] = out.headers.emplace_back(name, std::string());
    if (auto e = one(c, value)) return *e;
  }
  if (auto e = one(impl_->text, out.text)) return *e;
  if (auto e = one(impl_->html, out.html)) return *e;
  return out;
}

}  // namespace mailgate::templating
