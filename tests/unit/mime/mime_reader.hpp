// Test helper: a small, strict reader for the messages the mime module builds:
// wire-format checks (CRLF only, line lengths, header section then an empty
// line), header unfolding, Content-Type parameters, multipart splitting,
// RFC 2047 decoding, and body decoding by Content-Transfer-Encoding.
// Independent of the builder's own code except for the base64 and
// quoted-printable decoders, which their own tests pin to known vectors.
#pragma once

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "mime/encoding.hpp"

namespace mailgate::mime::test {

inline std::string lower(std::string_view text) {
  std::string out(text);
  for (auto& c : out) {
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  }
  return out;
}

// Lines of `text` split at CRLF (a final CRLF does not start another line).
inline std::vector<std::string> crlf_lines(std::string_view text) {
  std::vector<std::string> lines;
  std::size_t pos = 0;
  while (pos < text.size()) {
    std::size_t end = text.find("\r\n", pos);
    if (end == std::string_view::npos) end = text.size();
    lines.emplace_back(text.substr(pos, end - pos));
    pos = end + 2;
  }
  return lines;
}

// LF not preceded by CR becomes CRLF; nothing else changes.
inline std::string with_crlf_line_ends(std::string_view text) {
  std::string out;
  for (std::size_t i = 0; i < text.size(); ++i) {
    if (text[i] == '\n' && (i == 0 || text[i - 1] != '\r')) out += '\r';
    out += text[i];
  }
  return out;
}

// The canonical form a text body must decode to: CRLF line ends, and a final
// CRLF when non-empty text lacks one.
inline std::string expected_canonical(std::string_view text) {
  std::string out = with_crlf_line_ends(text);
  if (!out.empty() && (out.size() < 2 || out.compare(out.size() - 2, 2, "\r\n") != 0))
    out += "\r\n";
  return out;
}

// Everything wrong with the message as RFC 5322 text, empty when nothing is:
// a CR or LF outside a CRLF, a line over 998 octets, a header line that is
// neither "name:" (ftext name) nor a continuation, a whitespace-only line in
// the header section, no empty line ending the header section.
inline std::vector<std::string> wire_format_problems(std::string_view message) {
  std::vector<std::string> problems;
  for (std::size_t i = 0; i < message.size(); ++i) {
    if (message[i] == '\r' && (i + 1 == message.size() || message[i + 1] != '\n'))
      problems.push_back("bare CR at offset " + std::to_string(i));
    if (message[i] == '\n' && (i == 0 || message[i - 1] != '\r'))
      problems.push_back("bare LF at offset " + std::to_string(i));
  }
  if (message.size() < 2 || message.substr(message.size() - 2) != "\r\n")
    problems.push_back("does not end with CRLF");
  const auto lines = crlf_lines(message);
  bool in_header = true, saw_empty = false;
  for (std::size_t n = 0; n < lines.size(); ++n) {
    const std::string& line = lines[n];
    if (line.size() > 998)
      problems.push_back("line " + std::to_string(n) + " has " + std::to_string(line.size()) +
                         " octets");
    if (!in_header) continue;
    if (line.empty()) {
      in_header = false;
      saw_empty = true;
      continue;
    }
    if (line[0] == ' ' || line[0] == '\t') {
      if (n == 0) problems.push_back("message starts with a continuation line");
      if (line.find_first_not_of(" \t") == std::string::npos)
        problems.push_back("header line " + std::to_string(n) + " is whitespace only");
      continue;
    }
    const std::size_t colon = line.find(':');
    if (colon == std::string::npos || colon == 0) {
      problems.push_back("header line " + std::to_string(n) + " is not a field: " + line);
      continue;
    }
    for (std::size_t i = 0; i < colon; ++i) {
      if (line[i] < 33 || line[i] > 126)
        problems.push_back("header line " + std::to_string(n) + " has a bad field name");
    }
  }
  if (!saw_empty) problems.push_back("no empty line after the header section");
  return problems;
}

struct Field {
  std::string name;       // lower case
  std::string raw_value;  // after the colon, with its CRLFs (folds)
  std::string value;      // unfolded (CRLF removed), leading/trailing WSP trimmed
};

struct Entity {
  std::vector<Field> fields;
  std::string body;

  int count(std::string_view name) const {
    int n = 0;
    for (const auto& f : fields) n += f.name == name;
    return n;
  }
  const Field* find(std::string_view name) const {
    for (const auto& f : fields) {
      if (f.name == name) return &f;
    }
    return nullptr;
  }
  std::string get(std::string_view name) const {
    const Field* f = find(name);
    return f == nullptr ? std::string() : f->value;
  }
  std::vector<std::string> names() const {
    std::vector<std::string> out;
    for (const auto& f : fields) out.push_back(f.name);
    return out;
  }
};

inline std::string unfold(std::string_view raw) {
  std::string out;
  for (std::size_t i = 0; i < raw.size(); ++i) {
    if (raw[i] == '\r' && i + 1 < raw.size() && raw[i + 1] == '\n') {
      ++i;
      continue;
    }
    out += raw[i];
  }
  return out;
}

inline Entity parse_entity(std::string_view text) {
  Entity e;
  std::size_t pos = 0;
  while (pos < text.size()) {
    std::size_t eol = text.find("\r\n", pos);
    if (eol == std::string_view::npos) eol = text.size();
    const std::string_view line = text.substr(pos, eol - pos);
    pos = eol + 2;
    if (line.empty()) break;
    if ((line[0] == ' ' || line[0] == '\t') && !e.fields.empty()) {
      e.fields.back().raw_value.append("\r\n").append(line);
      continue;
    }
    const std::size_t colon = line.find(':');
    if (colon == std::string_view::npos) {
      e.fields.push_back({"!malformed", std::string(line), {}});
      continue;
    }
    e.fields.push_back({lower(line.substr(0, colon)), std::string(line.substr(colon + 1)), {}});
  }
  for (auto& f : e.fields) {
    const std::string unfolded = unfold(f.raw_value);
    const auto first = unfolded.find_first_not_of(" \t");
    const auto last = unfolded.find_last_not_of(" \t");
    f.value = first == std::string::npos ? "" : unfolded.substr(first, last - first + 1);
  }
  if (pos < text.size()) e.body = std::string(text.substr(pos));
  return e;
}

inline std::string media_type(const std::string& content_type) {
  auto type = lower(content_type.substr(0, content_type.find(';')));
  while (!type.empty() && (type.back() == ' ' || type.back() == '\t')) type.pop_back();
  return type;
}

// Parameter value (quoted or token) of a Content-Type value; "" when absent.
inline std::string param(const std::string& value, std::string_view name) {
  std::size_t pos = value.find(';');
  while (pos != std::string::npos) {
    const std::size_t start = value.find_first_not_of(" \t;", pos);
    if (start == std::string::npos) break;
    const std::size_t eq = value.find('=', start);
    if (eq == std::string::npos) break;
    const std::string key = lower(value.substr(start, eq - start));
    std::string v;
    std::size_t next;
    if (eq + 1 < value.size() && value[eq + 1] == '"') {
      const std::size_t close = value.find('"', eq + 2);
      v = value.substr(eq + 2, close - eq - 2);
      next = value.find(';', close);
    } else {
      next = value.find(';', eq);
      v = value.substr(eq + 1, next == std::string::npos ? std::string::npos : next - eq - 1);
      while (!v.empty() && (v.back() == ' ' || v.back() == '\t')) v.pop_back();
    }
    if (key == name) return v;
    pos = next;
  }
  return {};
}

struct Multipart {
  std::string preamble;
  std::vector<std::string> parts;  // each part's text: headers + body, delimiter CRLF excluded
  bool closed = false;             // the close delimiter was found
  std::string epilogue;
};

// RFC 2046 §5.1.1, strictly: a delimiter line is exactly "--" boundary (no
// transport padding: the builder writes none), the CRLF before it belongs to it.
inline Multipart split_multipart(std::string_view body, const std::string& boundary) {
  Multipart m;
  const std::string delimiter = "--" + boundary;
  std::size_t pos = 0;
  bool first = true;
  std::size_t part_start = 0;
  for (;;) {
    // The next delimiter at the start of a line.
    std::size_t at = first && body.substr(0, delimiter.size()) == delimiter
                         ? 0
                         : body.find("\r\n" + delimiter, pos);
    if (at == std::string_view::npos) return m;
    const std::size_t line_start = (first && at == 0) ? 0 : at + 2;
    const std::size_t after = line_start + delimiter.size();
    if (first) {
      m.preamble = std::string(body.substr(0, at));
    } else {
      m.parts.emplace_back(body.substr(part_start, at - part_start));
    }
    first = false;
    if (body.substr(after, 4) == "--\r\n" || body.substr(after) == "--") {
      m.closed = true;
      m.epilogue = std::string(body.substr(std::min(body.size(), after + 4)));
      return m;
    }
    if (body.substr(after, 2) != "\r\n") return m;  // "--boundaryX": not a delimiter of ours
    part_start = after + 2;
    pos = part_start;
  }
}

// The decoded body of an entity by its Content-Transfer-Encoding (absent:
// 7bit); nullopt when it does not decode.
inline std::optional<std::string> decode_body(const Entity& e) {
  const std::string cte = lower(e.get("content-transfer-encoding"));
  if (cte.empty() || cte == "7bit" || cte == "8bit") return e.body;
  if (cte == "quoted-printable") return quoted_printable_decode(e.body);
  if (cte == "base64") return base64_decode(e.body);
  return std::nullopt;
}

struct EncodedWord {
  std::string charset, encoding, payload;
};

// "=?charset?encoding?payload?=" exactly, or nullopt.
inline std::optional<EncodedWord> parse_encoded_word(std::string_view word) {
  if (word.size() < 8 || word.substr(0, 2) != "=?" || word.substr(word.size() - 2) != "?=")
    return std::nullopt;
  const std::string_view inner = word.substr(2, word.size() - 4);
  const std::size_t q1 = inner.find('?');
  if (q1 == std::string_view::npos) return std::nullopt;
  const std::size_t q2 = inner.find('?', q1 + 1);
  if (q2 == std::string_view::npos || inner.find('?', q2 + 1) != std::string_view::npos)
    return std::nullopt;
  return EncodedWord{std::string(inner.substr(0, q1)),
                     std::string(inner.substr(q1 + 1, q2 - q1 - 1)),
                     std::string(inner.substr(q2 + 1))};
}

// An unfolded header value with RFC 2047 decoding applied: whitespace-separated
// tokens that are UTF-8 B encoded-words are decoded, whitespace between two
// encoded-words is dropped (RFC 2047 §6.2), everything else is kept.
// nullopt when an encoded-word is malformed or not UTF-8/B.
inline std::optional<std::string> decode_rfc2047(std::string_view value) {
  std::string out;
  std::string pending_space;
  bool last_was_word = false;
  std::size_t pos = 0;
  while (pos < value.size()) {
    const std::size_t token_start = value.find_first_not_of(" \t", pos);
    pending_space = std::string(value.substr(
        pos, token_start == std::string_view::npos ? std::string_view::npos : token_start - pos));
    if (token_start == std::string_view::npos) {
      out += pending_space;
      break;
    }
    std::size_t token_end = value.find_first_of(" \t", token_start);
    if (token_end == std::string_view::npos) token_end = value.size();
    const std::string_view token = value.substr(token_start, token_end - token_start);
    if (token.substr(0, 2) == "=?") {
      auto word = parse_encoded_word(token);
      if (!word || lower(word->charset) != "utf-8" || lower(word->encoding) != "b")
        return std::nullopt;
      auto decoded = base64_decode(word->payload);
      if (!decoded) return std::nullopt;
      if (!last_was_word) out += pending_space;
      out += *decoded;
      last_was_word = true;
    } else {
      out += pending_space;
      out += token;
      last_was_word = false;
    }
    pos = token_end;
  }
  return out;
}

}  // namespace mailgate::mime::test
