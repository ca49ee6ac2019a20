// Tests of delivery/tls_client: the reference identity and SNI a connection
// gets for each kind of target, and what a verification result means
// (RFC 8460 result types). Handshakes themselves are tested end to end in
// tests/integration/test_outbound_tls.py with real certificates.
#include "delivery/tls_client.hpp"

#include <gtest/gtest.h>
#include <openssl/x509_vfy.h>

#include <memory>
#include <string>

namespace mailgate::delivery {
namespace {

struct Ssl {
  std::shared_ptr<asio::ssl::context> ctx;
  SSL* ssl = nullptr;
  Ssl() {
    std::string error;
    ctx = make_client_context("", error);
    ssl = SSL_new(ctx->native_handle());
  }
  ~Ssl() { SSL_free(ssl); }
  std::string host() {
    const char* h = X509_VERIFY_PARAM_get0_host(SSL_get0_param(ssl), 0);
    return h ? h : "";
  }
  std::string ip() {
    char* a = X509_VERIFY_PARAM_get1_ip_asc(SSL_get0_param(ssl));
    std::string out = a ? a : "";
    OPENSSL_free(a);
    return out;
  }
  std::string sni() {
    const char* s = SSL_get_servername(ssl, TLSEXT_NAMETYPE_host_name);
    return s ? s : "";
  }
};

TEST(TlsClient, AnMxNameIsTheReferenceIdentityAndTheSni) {
  Ssl s;
  prepare_client_ssl(s.ssl, "MX.Example.COM.", true);
  EXPECT_EQ(s.host(), "MX.Example.COM");
  EXPECT_EQ(s.sni(), "MX.Example.COM");
  EXPECT_EQ(SSL_get_verify_mode(s.ssl), SSL_VERIFY_PEER);
  Ssl o;
  prepare_client_ssl(o.ssl, "mx.example.com", false);  // recorded, not enforced
  EXPECT_EQ(SSL_get_verify_mode(o.ssl), SSL_VERIFY_NONE);
  EXPECT_EQ(o.host(), "mx.example.com");
}

TEST(TlsClient, AddressTargetsAreCheckedAsAddressesWithoutSni) {
  for (const char* target : {"[10.1.2.3]:2525", "[10.1.2.3]", "10.1.2.3"}) {
    Ssl s;
    prepare_client_ssl(s.ssl, target, true);
    EXPECT_EQ(s.ip(), "10.1.2.3") << target;
    EXPECT_EQ(s.host(), "") << target;
    EXPECT_EQ(s.sni(), "") << target;
  }
  Ssl v6;
  prepare_client_ssl(v6.ssl, "[IPv6:2001:db8::1]", true);
  EXPECT_EQ(v6.ip(), "2001:DB8:0:0:0:0:0:1");
}

TEST(TlsClient, VerifyResultsMapToTlsRptResultTypes) {
  EXPECT_EQ(failure_of_verify_result(X509_V_OK), TlsFailure::None);
  EXPECT_EQ(failure_of_verify_result(X509_V_ERR_HOSTNAME_MISMATCH),
            TlsFailure::CertificateHostMismatch);
  EXPECT_EQ(failure_of_verify_result(X509_V_ERR_CERT_HAS_EXPIRED), TlsFailure::CertificateExpired);
  EXPECT_EQ(failure_of_verify_result(X509_V_ERR_DEPTH_ZERO_SELF_SIGNED_CERT),
            TlsFailure::CertificateNotTrusted);
  EXPECT_EQ(failure_of_verify_result(X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY),
            TlsFailure::CertificateNotTrusted);
  EXPECT_EQ(failure_of_verify_result(X509_V_ERR_CERT_SIGNATURE_FAILURE),
            TlsFailure::ValidationFailure);
  EXPECT_EQ(to_string(TlsFailure::None), "");
  EXPECT_EQ(to_string(TlsFailure::StarttlsNotSupported), "starttls-not-supported");
  EXPECT_EQ(to_string(TlsFailure::StsWebpkiInvalid), "sts-webpki-invalid");
}

TEST(TlsClient, AnUnreadableCaFileIsAnError) {
  std::string error;
  EXPECT_EQ(make_client_context("/nonexistent/ca.pem", error), nullptr);
  EXPECT_NE(error.find("delivery.tls_ca_file"), std::string::npos) << error;
}

}  // namespace
}  // namespace mailgate::delivery
