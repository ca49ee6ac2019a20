// mime/message_builder: see message_builder.hpp.
#include "mime/message_builder.hpp"

#include <fmt/format.h>
#include <algorithm>
#include <array>
#include <random>

#include "mime/date.hpp"
#include "mime/encoding.hpp"
#include "text/ascii.hpp"
#include "text/utf8.hpp"

namespace mailgate::mime {
namespace {

// Keeps "Name: " plus the start of the value within a 78-octet first line.
constexpr std::size_t kMaxFieldNameOctets = 76;
// Only a broken random source (returning the same values) can exhaust this:
// a fresh 128-bit boundary is otherwise vanishingly unlikely to occur in a part.
constexpr int kBoundaryAttempts = 100;

constexpr std::string_view kTextPlain = "text/plain; charset=utf-8";
constexpr std::string_view kTextHtml = "text/html; charset=utf-8";

// A header field name or value fit to quote in an error message: printable
// ASCII kept, anything else as \xNN, at most 64 octets.
std::string quoted_for_error(std::string_view text) {
  std::string out = "\"";
  for (const char c : text.substr(0, 64)) {
    if (c >= 0x20 && c < 0x7F && c != '"' && c != '\\') {
      out.push_back(c);
    } else {
      out += fmt::format("\\x{:02X}", static_cast<unsigned char>(c));
    }
  }
  if (text.size() > 64) out += "...";
  return out + "\"";
}

std::uint64_t default_random() {
  // Seeded from several random_device words: a single 32-bit seed would give
  // only 2^32 streams, too few for Message-IDs that must not repeat.
  thread_local std::mt19937_64 engine = [] {
    std::random_device device;
    std::seed_seq seed{device(), device(), device(), device(),
                       device(), device(), device(), device()};
    return std::mt19937_64(seed);
  }();
  return engine();
}

std::string random_hex128(const std::function<std::uint64_t()>& random) {
  const std::uint64_t high = random();
  const std::uint64_t low = random();
  return fmt::format("{:016x}{:016x}", high, low);
}

// RFC 5322 §3.2.3 atext.
bool is_atext(char c) {
  if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')) return true;
  return std::string_view("!#$%&'*+-/=?^_`{|}~").find(c) != std::string_view::npos;
}

bool is_dot_atom_text(std::string_view text) {
  if (text.empty() || text.front() == '.' || text.back() == '.') return false;
  if (text.find("..") != std::string_view::npos) return false;
  return std::all_of(text.begin(), text.end(), [](char c) { return c == '.' || is_atext(c); });
}

// RFC 5322 §3.6.4 id-right: dot-atom-text or no-fold-literal "[" *dtext "]".
bool is_id_right(std::string_view text) {
  if (text.size() >= 2 && text.front() == '[' && text.back() == ']') {
    return std::all_of(text.begin() + 1, text.end() - 1,
                       [](char c) { return (c >= 33 && c <= 90) || (c >= 94 && c <= 126); });
  }
  return is_dot_atom_text(text);
}

// RFC 5322 §3.6.4 msg-id without surrounding whitespace: "<" id-left "@" id-right ">".
bool is_msg_id(std::string_view text) {
  if (text.size() < 5 || text.front() != '<' || text.back() != '>') return false;
  const std::string_view inside = text.substr(1, text.size() - 2);
  const std::size_t at = inside.find('@');
  if (at == std::string_view::npos) return false;
  return is_dot_atom_text(inside.substr(0, at)) && is_id_right(inside.substr(at + 1));
}

// What the builder does with an extra header field, by name.
enum class FieldKind {
  Unstructured,  // RFC 2047 when needed
  Verbatim,      // addresses and message ids: folded only
  Date,          // replaces the generated Date
  MessageId,     // replaces the generated Message-ID
};

// Why a name is refused, or nullopt when it is accepted.
std::optional<std::string> refusal_for_name(const std::string& lower_name) {
  if (lower_name == "from" || lower_name == "to" || lower_name == "subject")
    return fmt::format("the {} header is set from the \"{}\" field", lower_name, lower_name);
  if (lower_name == "mime-version" || lower_name.rfind("content-", 0) == 0)
    return "MIME-Version and Content-* are written by the builder";
  if (lower_name == "bcc") return "a Bcc header would show the blind recipients to everyone";
  return std::nullopt;
}

// RFC 5322 §3.6: fields a message may have at most once.
bool is_single_occurrence(const std::string& lower_name) {
  static const std::array<std::string_view, 7> kNames = {
      "date", "message-id", "sender", "reply-to", "cc", "in-reply-to", "references"};
  return std::find(kNames.begin(), kNames.end(), lower_name) != kNames.end();
}

FieldKind kind_of(const std::string& lower_name) {
  if (lower_name == "date") return FieldKind::Date;
  if (lower_name == "message-id") return FieldKind::MessageId;
  static const std::array<std::string_view, 6> kVerbatim = {
      "sender", "reply-to", "cc", "in-reply-to", "references", "return-path"};
  if (std::find(kVerbatim.begin(), kVerbatim.end(), lower_name) != kVerbatim.end() ||
      lower_name.rfind("resent-", 0) == 0)
    return FieldKind::Verbatim;
  return FieldKind::Unstructured;
}

// Header text the builder accepts at all: UTF-8, no line break (a CR or LF
// would let the input start a header field of its own), no other control.
void check_header_text(const std::string& field, std::string_view value) {
  if (value.find_first_of("\r\n") != std::string_view::npos)
    throw BuildError(field, "contains CR or LF (header injection)");
  for (const char c : value) {
    const auto octet = static_cast<unsigned char>(c);
    if ((octet < 0x20 && c != '\t') || octet == 0x7F)
      throw BuildError(field, fmt::format("contains control character 0x{:02X}", octet));
  }
  if (!text::valid_utf8(value)) throw BuildError(field, "is not valid UTF-8");
}

void check_field_name(const std::string& field, std::string_view name) {
  if (name.empty()) throw BuildError(field, "header name is empty");
  if (name.size() > kMaxFieldNameOctets)
    throw BuildError(field, fmt::format("header name {} is longer than {} octets",
                                        quoted_for_error(name), kMaxFieldNameOctets));
  for (const char c : name) {
    // RFC 5322 §3.6.8 ftext: printable ASCII except ':'.
    if (c < 33 || c > 126 || c == ':')
      throw BuildError(field, fmt::format("header name {} has a character a field name cannot have",
                                          quoted_for_error(name)));
  }
}

std::string folded_or_throw(const std::string& field, std::string_view value,
                            std::size_t name_len) {
  auto folded = fold_header_value(value, name_len);
  if (!folded) throw BuildError(field, "has a run of over 998 octets without whitespace");
  return std::move(*folded);
}

void append_field(std::string& out, std::string_view name, std::string_view value) {
  out.append(name).push_back(':');
  if (!value.empty()) out.append(" ").append(value);
  out.append("\r\n");
}

struct ExtraField {
  std::string name;
  std::string value;  // folded / encoded, ready to write
};

struct ExtraFields {
  std::vector<ExtraField> in_order;  // without Date and Message-ID
  std::optional<std::string> date;
  std::optional<std::string> message_id;
};

ExtraFields check_extra_fields(const std::vector<std::pair<std::string, std::string>>& headers) {
  ExtraFields extra;
  std::vector<std::string> seen_single;
  for (std::size_t i = 0; i < headers.size(); ++i) {
    const auto& [name, value] = headers[i];
    const std::string field = fmt::format("headers[{}]", i);
    check_field_name(field, name);
    const std::string lower_name = text::to_lower(name);
    if (auto refusal = refusal_for_name(lower_name)) throw BuildError(field, *refusal);
    if (is_single_occurrence(lower_name)) {
      if (std::find(seen_single.begin(), seen_single.end(), lower_name) != seen_single.end())
        throw BuildError(
            field, fmt::format("a message has at most one {} header", quoted_for_error(name)));
      seen_single.push_back(lower_name);
    }
    check_header_text(field, value);
    switch (kind_of(lower_name)) {
      case FieldKind::Date:
        if (!is_rfc5322_date_time(value))
          throw BuildError(
              field, fmt::format("Date {} is not an RFC 5322 date-time", quoted_for_error(value)));
        extra.date = folded_or_throw(field, value, name.size());
        break;
      case FieldKind::MessageId:
        if (!is_msg_id(value))
          throw BuildError(field, fmt::format("Message-ID {} is not of the form <left@right>",
                                              quoted_for_error(value)));
        extra.message_id = folded_or_throw(field, value, name.size());
        break;
      case FieldKind::Verbatim:
        extra.in_order.push_back({name, folded_or_throw(field, value, name.size())});
        break;
      case FieldKind::Unstructured:
        // check_header_text() has validated the UTF-8, so this cannot fail.
        extra.in_order.push_back({name, encode_header_value(value, name.size()).value()});
        break;
    }
  }
  return extra;
}

struct BodyPart {
  std::string_view content_type;
  TransferEncoding encoding;
  std::string encoded;
};

BodyPart make_part(std::string_view content_type, std::string_view text) {
  const std::string canonical = to_canonical_text(text);
  const TransferEncoding encoding = choose_transfer_encoding(canonical);
  return {content_type, encoding, encode_body(canonical, encoding)};
}

void append_content_fields(std::string& out, const BodyPart& part) {
  append_field(out, "Content-Type", part.content_type);
  append_field(out, "Content-Transfer-Encoding", transfer_encoding_name(part.encoding));
}

std::string choose_boundary(const std::vector<const BodyPart*>& parts,
                            const std::function<std::uint64_t()>& random) {
  for (int attempt = 0; attempt < kBoundaryAttempts; ++attempt) {
    // "=_" cannot occur in quoted-printable or base64 output; only a 7bit part
    // could hold the boundary, hence the check.
    std::string boundary = "=_mailgate_" + random_hex128(random);
    const bool clashes = std::any_of(parts.begin(), parts.end(), [&](const BodyPart* part) {
      return part->encoded.find(boundary) != std::string::npos;
    });
    if (!clashes) return boundary;
  }
  throw BuildError("options.random", "no multipart boundary absent from the parts was found");
}

}  // namespace

BuildError::BuildError(std::string field, std::string_view problem)
    : std::runtime_error(fmt::format("{}: {}", field, problem)), field_(std::move(field)) {}

std::string build_message(const StructuredMessage& message, const BuildOptions& options) {
  const std::function<std::uint64_t()> random =
      options.random ? options.random : std::function<std::uint64_t()>(default_random);

  if (!is_id_right(options.hostname))
    throw BuildError("options.hostname", fmt::format("{} is not a domain name fit for a Message-ID",
                                                     quoted_for_error(options.hostname)));

  if (message.from.empty()) throw BuildError("from", "is empty");
  check_header_text("from", message.from);
  const std::string from = folded_or_throw("from", message.from, 4);

  if (message.to.empty()) throw BuildError("to", "has no recipients");
  std::string to_list;
  for (std::size_t i = 0; i < message.to.size(); ++i) {
    const std::string field = fmt::format("to[{}]", i);
    if (message.to[i].empty()) throw BuildError(field, "is empty");
    check_header_text(field, message.to[i]);
    if (i > 0) to_list.append(", ");
    to_list.append(message.to[i]);
  }
  const std::string to = folded_or_throw("to", to_list, 2);

  check_header_text("subject", message.subject);
  const std::string subject = encode_header_value(message.subject, 7).value();

  ExtraFields extra = check_extra_fields(message.headers);

  if (!text::valid_utf8(message.text)) throw BuildError("text", "is not valid UTF-8");
  if (!text::valid_utf8(message.html)) throw BuildError("html", "is not valid UTF-8");

  std::string out;
  out.reserve(1024 + (message.text.size() + message.html.size()) * 14 / 10);
  append_field(out, "From", from);
  append_field(out, "To", to);
  if (!subject.empty()) append_field(out, "Subject", subject);
  append_field(out, "Date",
               extra.date ? *extra.date
                          : rfc5322_date(options.date.value_or(std::chrono::system_clock::now())));
  append_field(out, "Message-ID",
               extra.message_id ? *extra.message_id
                                : fmt::format("<{}@{}>", random_hex128(random), options.hostname));
  append_field(out, "MIME-Version", "1.0");
  for (const auto& field : extra.in_order) append_field(out, field.name, field.value);

  const bool has_text = !message.text.empty(), has_html = !message.html.empty();
  if (!(has_text && has_html)) {
    const BodyPart part =
        has_html ? make_part(kTextHtml, message.html) : make_part(kTextPlain, message.text);
    append_content_fields(out, part);
    out.append("\r\n").append(part.encoded);
    return out;
  }

  const BodyPart text_part = make_part(kTextPlain, message.text);
  const BodyPart html_part = make_part(kTextHtml, message.html);
  const std::string boundary = choose_boundary({&text_part, &html_part}, random);
  // Quoted: '=' is a tspecial (RFC 2045 §5.1). Folded: the line would pass 78.
  append_field(out, "Content-Type",
               fmt::format("multipart/alternative;\r\n boundary=\"{}\"", boundary));
  out.append("\r\n");
  for (const BodyPart* part : {&text_part, &html_part}) {
    out.append("--").append(boundary).append("\r\n");
    append_content_fields(out, *part);
    // Each encoded part ends with CRLF; the CRLF before the next delimiter
    // belongs to the delimiter (RFC 2046 §5.1.1), so the part decodes to the
    // canonical text with its final line break.
    out.append("\r\n").append(part->encoded).append("\r\n");
  }
  out.append("--").append(boundary).append("--\r\n");
  return out;
}

}  // namespace mailgate::mime
