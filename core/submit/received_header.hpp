// submit/received_header: builds the trace header mailgate prepends to every
// message (DESIGN §7):
//   Received: from HELO (rDNS-or-[IP] [IP])
//   	(using TLSv1.3 with cipher TLS_AES_256_GCM_SHA384 (256/256 bits))
//   	by HOSTNAME (mailgate) with PROTO id ID
//   	for <rcpt>; DATE
// PROTO is SMTP (HELO), ESMTP (EHLO), with S for TLS and A for AUTH, and the
// UTF8 prefix of RFC 6531 when SMTPUTF8 was used. `for` only with one
// recipient. Promises: folded lines, CRLF endings, no line over 998 octets
// (over-long parts are truncated), no CR/LF from inputs.
#pragma once

#include <chrono>
#include <string>
#include <string_view>

namespace mailgate::submit {

struct ReceivedInfo {
  std::string_view helo;
  std::string_view rdns;  // empty: unknown (printed as [IP])
  std::string_view client_ip;
  std::string_view hostname;
  std::string_view id;
  std::string_view for_rcpt;  // empty: omit the `for` clause
  bool esmtp = true, tls = false, auth = false, smtputf8 = false;
  // With TLS: "(using VERSION with cipher CIPHER (BITS/BITS bits))" after `from`.
  std::string_view tls_version, tls_cipher;
  int tls_bits = 0;
  std::chrono::system_clock::time_point when;
};

void append_received_header(const ReceivedInfo& info, std::string& out);

}  // namespace mailgate::submit
