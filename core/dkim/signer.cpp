// dkim/signer: see signer.hpp.
#include "dkim/signer.hpp"

#include <map>

#include "mime/header_section.hpp"
#include "text/ascii.hpp"
#include "text/base64.hpp"

namespace mailgate::dkim {

namespace {

constexpr std::size_t kFoldAt = 72;  // octets of a folded base64 piece

// `value` in pieces of kFoldAt octets separated by FWS (base64 values may be
// folded anywhere, RFC 6376 §3.5 b= and bh=).
void append_folded(std::string& out, std::string_view value) {
  for (std::size_t i = 0; i < value.size(); i += kFoldAt) {
    if (i > 0) out.append("\r\n\t ");
    out.append(value.substr(i, kFoldAt));
  }
}

// The h= list: each configured name (first spelling wins, duplicates
// dropped) as many times as the message has it, plus once for over-signed
// names; From always.
std::vector<std::string> signed_names(const std::vector<std::string>& configured,
                                      const std::vector<mime::HeaderFieldView>& fields) {
  std::vector<std::string> names;
  std::vector<std::string> seen;
  auto add = [&](std::string_view name) {
    const auto lower = text::to_lower(name);
    for (const auto& s : seen)
      if (s == lower) return;
    seen.push_back(lower);
    std::size_t present = 0;
    for (const auto& f : fields)
      if (text::iequals(f.name, name)) ++present;
    const std::size_t times = present + (is_oversigned(name) ? 1 : 0);
    for (std::size_t i = 0; i < times; ++i) names.push_back(lower);
  };
  add("from");
  for (const auto& n : configured.empty() ? default_signed_headers() : configured) add(n);
  return names;
}

}  // namespace

const std::vector<std::string>& default_signed_headers() {
  static const std::vector<std::string> names = {"From",
                                                 "To",
                                                 "Cc",
                                                 "Subject",
                                                 "Date",
                                                 "Message-ID",
                                                 "Reply-To",
                                                 "MIME-Version",
                                                 "Content-Type",
                                                 "List-Unsubscribe",
                                                 "List-Unsubscribe-Post"};
  return names;
}

bool is_oversigned(std::string_view name) {
  for (std::string_view n : {"from", "to", "subject", "date", "message-id"})
    if (text::iequals(name, n)) return true;
  return false;
}

std::string signature_field(const SignRequest& request, const SigningKey& key,
                            std::string_view header_section, const Sha256& body_hash,
                            std::int64_t now_unix) {
  const Algorithm algorithm = request.algorithm.value_or(key.algorithm());
  if (algorithm != key.algorithm())
    throw KeyError("the key " + request.key_path + " is " +
                   std::string(algorithm_name(key.algorithm())) + ", not " +
                   std::string(algorithm_name(algorithm)));
  const auto fields = mime::split_header_fields(header_section);
  const auto names = signed_names(request.headers, fields);

  // Hash input: the selected fields, each instance from the bottom up
  // (RFC 6376 §5.4.2), then the signature field without b='s value.
  std::string data;
  std::map<std::string, std::size_t> used;  // instances of a name taken so far
  for (const auto& name : names) {
    std::size_t skip = used[name]++;
    for (auto it = fields.rbegin(); it != fields.rend(); ++it) {
      if (!text::iequals(it->name, name)) continue;
      if (skip-- > 0) continue;
      canonicalize_header(request.canonicalization.header, it->raw, data);
      break;
    }  // none left: an over-signed name contributes nothing
  }

  std::string field = "DKIM-Signature: v=1; a=";
  field += algorithm_name(algorithm);
  field += "; c=";
  field += canonicalization_name(request.canonicalization.header);
  field += '/';
  field += canonicalization_name(request.canonicalization.body);
  field += "; d=" + request.domain + "; s=" + request.selector +
           ";\r\n\tt=" + std::to_string(now_unix) + ";";
  if (request.expire) field += " x=" + std::to_string(now_unix + request.expire->count()) + ";";
  field += "\r\n\th=";
  std::size_t line = 3;
  for (std::size_t i = 0; i < names.size(); ++i) {
    if (i > 0) {
      field += ':';
      ++line;
    }
    if (line + names[i].size() > kFoldAt) {
      field += "\r\n\t ";
      line = 2;
    }
    field += names[i];
    line += names[i].size();
  }
  field += ";\r\n\tbh=";
  append_folded(field, text::base64_encode(std::string_view(
                           reinterpret_cast<const char*>(body_hash.data()), body_hash.size())));
  field += ";\r\n\tb=";

  std::string canonical_self;
  canonicalize_header(request.canonicalization.header, field, canonical_self);
  canonical_self.resize(canonical_self.size() - 2);  // hashed without its CRLF
  data += canonical_self;

  append_folded(field, text::base64_encode(key.sign(data)));
  field += "\r\n";
  return field;
}

}  // namespace mailgate::dkim
