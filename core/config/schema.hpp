// config/schema: a config section declared once, next to the struct it fills.
// A Section<T> is a list of keys; each key names a member of T, its kind
// (boolean, integer with a range, size, duration, rate, string, choice,
// host:port, array, nested section, array of sections), one doc line and
// optional extra checks. Its default is the member's initializer in T.
// From that one declaration come: reading a value tree into a T (unknown
// keys refused, errors naming the dotted key, see read.hpp for the texts) and
// the rows of the Markdown reference (reference.hpp).
//
//   const Section<SpoolConfig>& spool_section() {
//     static const Section<SpoolConfig> s{{
//         string("path", &SpoolConfig::path, "spool directory").check(nonempty),
//         size("body_buffer", &SpoolConfig::body_buffer, "in-memory part", 4096),
//     }};
//     return s;
//   }
//
// Promises: keys are read in declaration order after the unknown-key check;
// a key that is absent keeps its default (or runs its `otherwise`/`required`
// rule); a section's own check runs after its keys, also when the section's
// table is absent (then on the defaults). Sections are immutable: declare
// them as function-local statics and share them between threads.
#pragma once

#include <cstdint>
#include <functional>
#include <limits>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "config/context.hpp"
#include "config/read.hpp"
#include "config/reference.hpp"
#include "config/units.hpp"
#include "config/value.hpp"

namespace mailgate::config {

// One key of a section over T, type-erased (made by the factories below).
template <class T>
struct Field {
  std::string name;
  std::function<void(const Value&, T&, const std::string& key, const Context&)> read;
  std::function<void(T&, const std::string& key, const Context&)> absent;  // empty: keep default
  std::function<void(const T& defaults, const std::string& key, std::vector<DocRow>&)> document;
};

template <class T>
class Section {
 public:
  // Cross-key rules ("first must not be longer than max"): report with ctx.fail.
  using Check = std::function<void(T&, const std::string& path, const Context&)>;

  Section(std::vector<Field<T>> fields, Check check = {})
      : fields_(std::move(fields)), check_(std::move(check)) {
    for (const auto& f : fields_) names_.push_back(f.name);
  }

  // `v` must be a table ("KEY: expected a table, got ...").
  void read(const Value& v, T& out, const std::string& path, const Context& ctx) const {
    read_table(config::read_table(v, path, ctx), out, path, ctx);
  }

  void read_table(const Table& t, T& out, const std::string& path, const Context& ctx) const {
    check_keys(t, path, names_, ctx);
    for (const auto& f : fields_) {
      const auto key = field_path(path, f.name);
      if (const Value* v = find(t, f.name)) {
        f.read(*v, out, key, ctx);
      } else if (f.absent) {
        f.absent(out, key, ctx);
      }
    }
    if (check_) check_(out, path, ctx);
  }

  // The section's table is not there: what its keys do when absent, then its check.
  void read_absent(T& out, const std::string& path, const Context& ctx) const {
    for (const auto& f : fields_) {
      if (f.absent) f.absent(out, field_path(path, f.name), ctx);
    }
    if (check_) check_(out, path, ctx);
  }

  void document(const T& defaults, const std::string& prefix, std::vector<DocRow>& rows) const {
    for (const auto& f : fields_) f.document(defaults, field_path(prefix, f.name), rows);
  }

 private:
  std::vector<Field<T>> fields_;
  std::vector<std::string> names_;
  Check check_;
};

// A key of T whose value is a V: what the factories return; the modifiers
// refine it inside the declaration; it becomes a Field<T> in the Section.
template <class T, class V>
class Key {
 public:
  using Reader = std::function<V(const Value&, const std::string& key, const Context&)>;
  using Shower = std::function<std::string(const V&)>;  // the default as the reference shows it
  using Check = std::function<void(const V&, const std::string& key, const Context&)>;
  using Rows = std::function<void(const V& defaults, const std::string& key, std::vector<DocRow>&)>;

  Key(std::string name, V T::*member, std::string type, Reader read, Shower show, std::string doc)
      : name_(std::move(name)),
        member_(member),
        type_(std::move(type)),
        read_(std::move(read)),
        show_(std::move(show)),
        doc_(std::move(doc)) {}

  // A rule on the value read: report with ctx.fail / ctx.expected.
  Key check(Check c) && {
    checks_.push_back(std::move(c));
    return std::move(*this);
  }
  // The key must be given: "KEY: required HINT".
  Key required(std::string hint) && {
    required_ = std::move(hint);
    shown_ = "(required)";
    return std::move(*this);
  }
  // When absent, `fill` sets the value (a default that depends on the
  // machine); `shown` says what it is in the reference.
  Key otherwise(std::function<void(V&)> fill, std::string shown) && {
    fill_ = std::move(fill);
    shown_ = std::move(shown);
    return std::move(*this);
  }
  // The default in words, where the initializer does not say it ("`0` (one per core)").
  Key shown_default(std::string text) && {
    shown_ = std::move(text);
    return std::move(*this);
  }
  // Rows below this key in the reference (the keys of an array of sections).
  Key rows(Rows r) && {
    rows_ = std::move(r);
    return std::move(*this);
  }

  operator Field<T>() const {
    Field<T> f;
    f.name = name_;
    f.read = [m = member_, read = read_, checks = checks_](
                 const Value& v, T& out, const std::string& key, const Context& ctx) {
      V value = read(v, key, ctx);
      for (const auto& c : checks) c(value, key, ctx);
      out.*m = std::move(value);
    };
    if (!required_.empty()) {
      f.absent = [hint = required_](T&, const std::string& key, const Context& ctx) {
        ctx.fail(key, key + ": required " + hint);
      };
    } else if (fill_) {
      f.absent = [m = member_, fill = fill_](T& out, const std::string&, const Context&) {
        fill(out.*m);
      };
    }
    f.document = [m = member_, type = type_, show = show_, shown = shown_, doc = doc_,
                  rows = rows_](const T& defaults, const std::string& key,
                                std::vector<DocRow>& out) {
      std::string value = shown;
      if (value.empty()) {
        const auto text = show(defaults.*m);
        value = text.empty() ? "none" : "`" + text + "`";
      }
      out.push_back(DocRow{key, type, value, doc});
      if (rows) rows(defaults.*m, key, out);
    };
    return f;
  }

 private:
  std::string name_;
  V T::*member_;
  std::string type_;
  Reader read_;
  Shower show_;
  std::string doc_;
  std::vector<Check> checks_;
  std::string required_;
  std::function<void(V&)> fill_;
  std::string shown_;
  Rows rows_;
};

// --- Key kinds -------------------------------------------------------------

template <class T>
Key<T, bool> boolean(std::string name, bool T::*m, std::string doc) {
  return {std::move(name),
          m,
          "boolean",
          [](const Value& v, const std::string& key, const Context& ctx) {
            return read_bool(v, key, ctx);
          },
          [](bool b) { return std::string(b ? "true" : "false"); },
          std::move(doc)};
}

std::string integer_type(std::uint64_t min, std::uint64_t max, bool open_ended);

// An integer in [min, max] (max: the member type's largest value by default).
template <class T, class I>
Key<T, I> integer(std::string name, I T::*m, std::string doc, std::uint64_t min,
                  std::uint64_t max = static_cast<std::uint64_t>(std::numeric_limits<I>::max())) {
  // "integer ≥ 1" when only the type bounds it (and its bound says nothing: 4294967295).
  const bool open = max == static_cast<std::uint64_t>(std::numeric_limits<I>::max()) && max > 65535;
  return {std::move(name),
          m,
          integer_type(min, max, open),
          [min, max](const Value& v, const std::string& key, const Context& ctx) {
            return static_cast<I>(read_integer(v, key, ctx, min, max));
          },
          [](I n) { return std::to_string(n); },
          std::move(doc)};
}

std::string size_type(std::uint64_t min);

// Bytes or "25MB" / "256KiB"; at least `min`.
template <class T>
Key<T, std::uint64_t> size(std::string name, std::uint64_t T::*m, std::string doc,
                           std::uint64_t min = 0) {
  return {std::move(name),
          m,
          size_type(min),
          [min](const Value& v, const std::string& key, const Context& ctx) {
            return read_size(v, key, ctx, min);
          },
          [](std::uint64_t n) { return format_size(n); },
          std::move(doc)};
}

// Seconds or "500ms" / "5m"; longer than 0, or 0 allowed with `allow_zero`.
template <class T>
Key<T, Duration> duration(std::string name, Duration T::*m, std::string doc,
                          bool allow_zero = false) {
  return {std::move(name),
          m,
          allow_zero ? "duration" : "duration > 0",
          [allow_zero](const Value& v, const std::string& key, const Context& ctx) {
            return read_duration(v, key, ctx, allow_zero);
          },
          [](Duration d) { return format_duration(d); },
          std::move(doc)};
}

// "60/min"; the number 0 means none.
template <class T>
Key<T, std::optional<Rate>> rate_or_zero(std::string name, std::optional<Rate> T::*m,
                                         std::string doc) {
  return {std::move(name),
          m,
          "rate or `0`",
          [](const Value& v, const std::string& key, const Context& ctx) -> std::optional<Rate> {
            if (v.type == Value::Type::Integer && v.integer == 0) return std::nullopt;
            return read_rate(v, key, ctx, " or 0");
          },
          [](const std::optional<Rate>& r) { return r ? format_rate(*r) : std::string(); },
          std::move(doc)};
}

template <class T>
Key<T, std::string> string(std::string name, std::string T::*m, std::string doc) {
  return {std::move(name),
          m,
          "string",
          [](const Value& v, const std::string& key, const Context& ctx) {
            return read_string(v, key, ctx);
          },
          [](const std::string& s) { return s; },
          std::move(doc)};
}

// A check for string keys: "KEY: must not be empty".
void nonempty(const std::string& s, const std::string& key, const Context& ctx);

// "ip:port" or "[ipv6]:port" (an IP literal: no names).
std::string read_host_port(const Value& v, const std::string& key, const Context& ctx);

template <class T>
Key<T, std::string> host_port(std::string name, std::string T::*m, std::string doc) {
  return {std::move(name), m, "`ip:port`", read_host_port, [](const std::string& s) { return s; },
          std::move(doc)};
}

std::string choice_type(const std::vector<std::string>& names);

// One of a fixed set of names, each standing for a value of E; `what`
// replaces "a | b | c" in the error.
template <class T, class E>
Key<T, E> choice(std::string name, E T::*m, std::string doc,
                 std::vector<std::pair<std::string, E>> options, std::string what = "") {
  std::vector<std::string> names;
  for (const auto& [n, e] : options) names.push_back(n);
  return {std::move(name),
          m,
          choice_type(names),
          [options, names, what](const Value& v, const std::string& key, const Context& ctx) {
            const auto got = read_choice(v, key, ctx, names, what);
            for (const auto& [n, e] : options)
              if (n == got) return e;
            return options.front().second;  // not reached: read_choice refused it
          },
          [options](const E& e) {
            for (const auto& [n, value] : options)
              if (value == e) return n;
            return std::string();
          },
          std::move(doc)};
}

// A string member that takes one of `names`.
template <class T>
Key<T, std::string> one_of(std::string name, std::string T::*m, std::string doc,
                           std::vector<std::string> names) {
  std::vector<std::pair<std::string, std::string>> options;
  for (auto& n : names) options.emplace_back(n, n);
  return choice(std::move(name), m, std::move(doc), std::move(options));
}

// An array whose items `item` reads (at "KEY[i]"); `what` names the items
// ("CIDR networks"), `show` writes one back for the reference.
template <class T, class E>
Key<T, std::vector<E>> list(
    std::string name, std::vector<E> T::*m, std::string doc, std::string what,
    std::function<E(const Value&, const std::string& key, const Context&)> item,
    std::function<std::string(const E&)> show) {
  return {std::move(name),
          m,
          "array of " + what,
          [what, item](const Value& v, const std::string& key, const Context& ctx) {
            std::vector<E> out;
            long long i = 1;
            for (const Value* x : read_array(v, key, ctx, what))
              out.push_back(item(*x, item_path(key, i++), ctx));
            return out;
          },
          [show](const std::vector<E>& items) {
            std::string out = "{";
            for (const auto& e : items) {
              out += out.size() == 1 ? " " : ", ";
              out += quote_text(show(e));
            }
            out += out.size() == 1 ? "}" : " }";
            return out;
          },
          std::move(doc)};
}

template <class T>
Key<T, std::vector<std::string>> strings(std::string name, std::vector<std::string> T::*m,
                                         std::string doc) {
  return list<T, std::string>(std::move(name), m, std::move(doc), "strings", read_string,
                              [](const std::string& s) { return s; });
}

// A nested table filling the member `m` with section `s`.
template <class T, class S>
Field<T> section(std::string name, S T::*m, const Section<S>& s, std::string doc) {
  Field<T> f;
  f.name = std::move(name);
  f.read = [m, &s](const Value& v, T& out, const std::string& key, const Context& ctx) {
    s.read(v, out.*m, key, ctx);
  };
  f.absent = [m, &s](T& out, const std::string& key, const Context& ctx) {
    s.read_absent(out.*m, key, ctx);
  };
  f.document = [m, &s, doc = std::move(doc)](const T& defaults, const std::string& key,
                                             std::vector<DocRow>& rows) {
    rows.push_back(DocRow{key, "table", "", doc});
    s.document(defaults.*m, key, rows);
  };
  return f;
}

// A nested table whose keys are members of T itself (listen{ timeouts = {...} }).
template <class T>
Field<T> group(std::string name, const Section<T>& s, std::string doc) {
  Field<T> f;
  f.name = std::move(name);
  f.read = [&s](const Value& v, T& out, const std::string& key, const Context& ctx) {
    s.read(v, out, key, ctx);
  };
  f.document = [&s, doc = std::move(doc)](const T& defaults, const std::string& key,
                                          std::vector<DocRow>& rows) {
    rows.push_back(DocRow{key, "table", "", doc});
    s.document(defaults, key, rows);
  };
  return f;
}

// An array of tables, each read with section `s` ("KEY[i].sub"); `what`
// names the items ("rule tables"). The reference lists the keys as "KEY[].sub".
template <class T, class S>
Key<T, std::vector<S>> sections(std::string name, std::vector<S> T::*m, const Section<S>& s,
                                std::string doc, std::string what) {
  return Key<T, std::vector<S>>(
             std::move(name), m, "array of tables",
             [&s, what](const Value& v, const std::string& key, const Context& ctx) {
               std::vector<S> out;
               long long i = 1;
               for (const Value* x : read_array(v, key, ctx, what)) {
                 const auto k = item_path(key, i++);
                 S item{};
                 s.read(*x, item, k, ctx);
                 out.push_back(std::move(item));
               }
               return out;
             },
             [](const std::vector<S>& items) { return items.empty() ? "{}" : std::string(); },
             std::move(doc))
      .rows([&s](const std::vector<S>&, const std::string& key, std::vector<DocRow>& rows) {
        s.document(S{}, key + "[]", rows);
      });
}

}  // namespace mailgate::config
