// delivery/tls_client: see tls_client.hpp.
#include "delivery/tls_client.hpp"

#include <openssl/err.h>
#include <openssl/x509_vfy.h>
#include <openssl/x509v3.h>

#include <asio/ip/address.hpp>

#include "text/ascii.hpp"

namespace mailgate::delivery {

std::string_view to_string(TlsFailure f) {
  switch (f) {
    case TlsFailure::None:
      return "";
    case TlsFailure::StarttlsNotSupported:
      return "starttls-not-supported";
    case TlsFailure::CertificateHostMismatch:
      return "certificate-host-mismatch";
    case TlsFailure::CertificateExpired:
      return "certificate-expired";
    case TlsFailure::CertificateNotTrusted:
      return "certificate-not-trusted";
    case TlsFailure::ValidationFailure:
      return "validation-failure";
    case TlsFailure::StsPolicyFetchError:
      return "sts-policy-fetch-error";
    case TlsFailure::StsPolicyInvalid:
      return "sts-policy-invalid";
    case TlsFailure::StsWebpkiInvalid:
      return "sts-webpki-invalid";
    case TlsFailure::TlsaInvalid:
      return "tlsa-invalid";
    case TlsFailure::DnssecInvalid:
      return "dnssec-invalid";
  }
  return "validation-failure";
}

std::shared_ptr<asio::ssl::context> make_client_context(const std::string& ca_file,
                                                        std::string& error) {
  auto c = std::make_shared<asio::ssl::context>(asio::ssl::context::tls_client);
  SSL_CTX_set_min_proto_version(c->native_handle(), TLS1_2_VERSION);
  c->set_options(asio::ssl::context::default_workarounds | asio::ssl::context::no_compression);
  std::error_code ec;
  if (ca_file.empty()) {
    c->set_default_verify_paths(ec);  // a machine without a CA store verifies nothing: no error
  } else {
    c->load_verify_file(ca_file, ec);
    if (ec) {
      error = "delivery.tls_ca_file: cannot load " + ca_file + ": " + ec.message();
      return nullptr;
    }
  }
  // Per connection, prepare_client_ssl() turns enforcement on; the context
  // default only records the result.
  c->set_verify_mode(asio::ssl::verify_none);
  if (SSL_CTX_dane_enable(c->native_handle()) <= 0) {
    error = "delivery: OpenSSL cannot enable DANE";
    return nullptr;
  }
  return c;
}

void prepare_client_ssl(SSL* ssl, std::string_view host, bool authenticate) {
  // A target named by its route: "[192.0.2.1]", "[IPv6:2001:db8::1]" or
  // "[10.1.2.3]:2525" (a smarthost given as an address): the address inside.
  if (host.size() > 1 && host.front() == '[') {
    host = host.substr(
        1, host.find(']') == std::string_view::npos ? std::string_view::npos : host.find(']') - 1);
    if (text::istarts_with(host, "IPv6:")) host.remove_prefix(5);
  }
  std::string name(host);
  if (!name.empty() && name.back() == '.') name.pop_back();
  X509_VERIFY_PARAM* param = SSL_get0_param(ssl);
  // RFC 6125 §6.4.3 / RFC 7672 §3.2.2: "*" only as the complete leftmost
  // label ("m*.example" never matches). OpenSSL consults the subject CN only
  // when the certificate has no DNS-ID, as RFC 6125 §6.4.4 allows.
  X509_VERIFY_PARAM_set_hostflags(param, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
  std::error_code ec;
  const auto literal = asio::ip::make_address(name, ec);
  if (!ec) {
    X509_VERIFY_PARAM_set1_ip_asc(param, literal.to_string().c_str());
  } else if (!name.empty()) {
    SSL_set_tlsext_host_name(ssl, name.c_str());
    X509_VERIFY_PARAM_set1_host(param, name.c_str(), name.size());
  }
  SSL_set_verify(ssl, authenticate ? SSL_VERIFY_PEER : SSL_VERIFY_NONE, nullptr);
}

bool prepare_dane_ssl(SSL* ssl, std::string_view host, const std::vector<dns::TlsaRecord>& records,
                      std::string& error) {
  std::string name(host);
  if (!name.empty() && name.back() == '.') name.pop_back();
  // The TLSA base domain: SNI and the reference identifier of DANE-TA(2)
  // (RFC 7672 §3.2.2; wildcards only as the whole leftmost label).
  if (SSL_dane_enable(ssl, name.c_str()) <= 0) {
    error = "dane: cannot enable DANE for " + name;
    return false;
  }
  SSL_set_hostflags(ssl, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
  // RFC 7672 §3.1.1: DANE-EE(3) authenticates the key alone, no names (the
  // MX record already lets the domain point anywhere: no unknown-key-share
  // risk for SMTP, as OpenSSL's documentation says).
  SSL_dane_set_flags(ssl, DANE_FLAG_NO_DANE_EE_NAMECHECKS);
  int added = 0;
  for (const auto& r : records) {
    const int rc =
        SSL_dane_tlsa_add(ssl, r.usage, r.selector, r.matching_type,
                          reinterpret_cast<const unsigned char*>(r.data.data()), r.data.size());
    if (rc > 0) ++added;
  }
  if (added == 0) {
    error = "dane: OpenSSL accepted none of the TLSA records of " + name;
    return false;
  }
  SSL_set_verify(ssl, SSL_VERIFY_PEER, nullptr);
  return true;
}

TlsFailure failure_of_dane_verify_result(long verify_result) {
  switch (verify_result) {
    case X509_V_ERR_HOSTNAME_MISMATCH:
      return TlsFailure::CertificateHostMismatch;
    case X509_V_ERR_CERT_HAS_EXPIRED:
    case X509_V_ERR_CERT_NOT_YET_VALID:
      return TlsFailure::CertificateExpired;
    default:
      return TlsFailure::TlsaInvalid;
  }
}

TlsFailure failure_of_verify_result(long verify_result) {
  switch (verify_result) {
    case X509_V_OK:
      return TlsFailure::None;
    case X509_V_ERR_HOSTNAME_MISMATCH:
    case X509_V_ERR_IP_ADDRESS_MISMATCH:
      return TlsFailure::CertificateHostMismatch;
    case X509_V_ERR_CERT_HAS_EXPIRED:
    case X509_V_ERR_CERT_NOT_YET_VALID:
      return TlsFailure::CertificateExpired;
    case X509_V_ERR_DEPTH_ZERO_SELF_SIGNED_CERT:
    case X509_V_ERR_SELF_SIGNED_CERT_IN_CHAIN:
    case X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT:
    case X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY:
    case X509_V_ERR_UNABLE_TO_VERIFY_LEAF_SIGNATURE:
    case X509_V_ERR_CERT_UNTRUSTED:
    case X509_V_ERR_CERT_REJECTED:
      return TlsFailure::CertificateNotTrusted;
    default:
      return TlsFailure::ValidationFailure;
  }
}

}  // namespace mailgate::delivery
