// delivery/tls_client: the OpenSSL side of outbound TLS policy (DESIGN §6b):
// the client context every outbound connection shares, how one connection's
// SSL is set up for its mode and reference identity, and what a failed
// handshake or certificate was, in the result types of TLS-RPT (RFC 8460
// §4.3), which the delivery log (`tls_error`) and the metrics use.
// Promises: with authenticate = true the handshake fails unless the chain
// ends at a trusted CA (the system store or delivery.tls_ca_file) and the
// certificate names the host as RFC 6125 / RFC 7672 §3.2.2 say: a DNS-ID in
// subjectAltName, a wildcard only as the whole leftmost label, the subject
// CN only when the certificate has no DNS-ID at all (an IP literal target
// must be an iPAddress SAN). Without it, nothing is enforced and the result
// is only recorded (RFC 7435).
// DANE (RFC 7672, prepare_dane_ssl): the handshake fails unless the chain
// matches one of the given TLSA records through OpenSSL's DANE support:
// DANE-EE(3) matches the leaf alone (no name, expiry or chain check,
// §3.1.1); DANE-TA(2) needs a chain to the matched trust anchor and the
// MX host name in the certificate (§3.1.2, §3.2.2: the TLSA base domain,
// which is the MX host name here — CNAMEs are not expanded). No CA store is
// consulted for DANE.
#pragma once

#include <openssl/ssl.h>

#include <asio/ssl/context.hpp>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "dns/answers.hpp"

namespace mailgate::delivery {

// Why a connection did not get the TLS its policy asks for (RFC 8460
// §4.3.2.1 result types; None: it did).
enum class TlsFailure : std::uint8_t {
  None,
  StarttlsNotSupported,     // the server did not offer STARTTLS or refused it
  CertificateHostMismatch,  // the certificate does not name the MX host
  CertificateExpired,       // expired or not yet valid
  CertificateNotTrusted,    // self-signed, or no chain to a trusted CA
  ValidationFailure,        // any other handshake or certificate failure, or no MX
                            // host of the domain matches its MTA-STS policy
  StsPolicyFetchError,      // the MTA-STS policy could not be fetched (HTTPS, DNS)
  StsPolicyInvalid,         // the MTA-STS policy (or its TXT record) does not parse
  StsWebpkiInvalid,         // the policy host's certificate did not verify
  TlsaInvalid,              // DANE: no TLSA record matched the server's chain
  DnssecInvalid,            // DANE: the TLSA lookup failed (SERVFAIL / bogus / timeout)
};
inline constexpr std::size_t kTlsFailureCount = 11;
// "starttls-not-supported", ...; "" for None.
std::string_view to_string(TlsFailure f);

// TLS 1.2 at least, no compression, trusting `ca_file` (PEM, one or more
// CA certificates) or, when it is empty, the system's default CA store;
// DANE-enabled (SSL_CTX_dane_enable), which changes nothing for a
// connection that does not call prepare_dane_ssl().
// Null with `error` set when the file cannot be loaded.
std::shared_ptr<asio::ssl::context> make_client_context(const std::string& ca_file,
                                                        std::string& error);

// Sets SNI (names only, never IP literals) and the reference identity
// (`host`, a trailing dot dropped) on `ssl` before the handshake; with
// `authenticate` the peer must verify (see the top of this file).
void prepare_client_ssl(SSL* ssl, std::string_view host, bool authenticate);

// Sets up `ssl` to authenticate the peer by `records` (usable DANE-TA /
// DANE-EE records, dane.hpp) for the MX host `host` (the TLSA base domain,
// also SNI and the name DANE-TA checks). False with `error` set when OpenSSL
// took none of the records (the handshake must then not be attempted).
bool prepare_dane_ssl(SSL* ssl, std::string_view host, const std::vector<dns::TlsaRecord>& records,
                      std::string& error);
// Why a DANE handshake failed, for the reply text ("dane: no TLSA record
// matched ...") and the result type.
TlsFailure failure_of_dane_verify_result(long verify_result);

// What an X509 verification result (SSL_get_verify_result) means for policy.
TlsFailure failure_of_verify_result(long verify_result);

}  // namespace mailgate::delivery
