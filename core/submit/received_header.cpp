// submit/received_header: see received_header.hpp.
#include "submit/received_header.hpp"

#include <fmt/format.h>

#include "mime/date.hpp"

namespace mailgate::submit {
namespace {

// Inputs were validated by the SMTP parsers; this is the last line of defence.
std::string_view clean(std::string_view s, std::size_t max) {
  for (std::size_t i = 0; i < s.size(); ++i) {
    const auto c = static_cast<unsigned char>(s[i]);
    if (c < 0x20 || c == 0x7f) return s.substr(0, std::min(i, max));
  }
  return s.substr(0, std::min(s.size(), max));
}

}  // namespace

void append_received_header(const ReceivedInfo& in, std::string& out) {
  std::string proto = in.smtputf8 ? "UTF8SMTP" : (in.esmtp ? "ESMTP" : "SMTP");
  if (in.smtputf8 || in.esmtp) {
    if (in.tls) proto += 'S';
    if (in.auth) proto += 'A';
  }
  const auto ip = clean(in.client_ip, 64);
  const auto rdns = clean(in.rdns, 255);
  fmt::format_to(std::back_inserter(out), "Received: from {} ({}{}{} [{}])\r\n",
                 clean(in.helo, 255), rdns.empty() ? "[" : "", rdns.empty() ? ip : rdns,
                 rdns.empty() ? "]" : "", ip);
  if (in.tls && !in.tls_version.empty()) {
    fmt::format_to(std::back_inserter(out), "\t(using {} with cipher {} ({}/{} bits))\r\n",
                   clean(in.tls_version, 32), clean(in.tls_cipher, 64), in.tls_bits, in.tls_bits);
  }
  fmt::format_to(std::back_inserter(out), "\tby {} (mailgate) with {} id {}",
                 clean(in.hostname, 255), proto, clean(in.id, 64));
  if (!in.for_rcpt.empty()) {
    fmt::format_to(std::back_inserter(out), "\r\n\tfor <{}>", clean(in.for_rcpt, 256));
  }
  fmt::format_to(std::back_inserter(out), "; {}\r\n", mime::rfc5322_date(in.when));
}

}  // namespace mailgate::submit
