// Tests of delivery/dane: which TLSA records are usable in SMTP (RFC 7672
// §3.1), the decision table secure / insecure / denied / failed → action
// (§2.2), the mode each action gives the SMTP client with and without an
// enforced MTA-STS policy (RFC 8461 §2), and how the OpenSSL side takes the
// records (SNI, DANE-EE without name checks). Handshakes against real
// certificates are in tests/integration/test_dane.py.
#include "delivery/dane.hpp"

#include <gtest/gtest.h>
#include <openssl/evp.h>
#include <openssl/x509.h>

#include <memory>
#include <string>

#include "delivery/tls_client.hpp"

namespace mailgate::delivery {
namespace {

using dns::Status;
using dns::TlsaAnswer;
using dns::TlsaRecord;

const std::string k32(32, '\x11');
const std::string k64(64, '\x22');

// The DER SubjectPublicKeyInfo of a fresh P-256 key.
std::string spki_der() {
  EVP_PKEY* key = EVP_EC_gen("P-256");
  unsigned char* der = nullptr;
  const int n = i2d_PUBKEY(key, &der);
  std::string out(reinterpret_cast<char*>(der), static_cast<std::size_t>(n));
  OPENSSL_free(der);
  EVP_PKEY_free(key);
  return out;
}

TEST(Dane, OnlyDaneUsagesKnownSelectorsAndWellFormedDataAreUsable) {
  EXPECT_TRUE(usable_tlsa({3, 1, 1, k32}));
  EXPECT_TRUE(usable_tlsa({2, 0, 1, k32}));
  EXPECT_TRUE(usable_tlsa({3, 0, 2, k64}));
  EXPECT_TRUE(usable_tlsa({3, 1, 0, spki_der()}));
  // PKIX-TA(0) / PKIX-EE(1): unusable in SMTP (RFC 7672 §3.1.3).
  EXPECT_FALSE(usable_tlsa({0, 1, 1, k32}));
  EXPECT_FALSE(usable_tlsa({1, 1, 1, k32}));
  EXPECT_FALSE(usable_tlsa({4, 1, 1, k32}));         // unknown usage
  EXPECT_FALSE(usable_tlsa({3, 2, 1, k32}));         // unknown selector
  EXPECT_FALSE(usable_tlsa({3, 1, 3, k32}));         // unknown matching type
  EXPECT_FALSE(usable_tlsa({3, 1, 1, k64}));         // SHA-256 of the wrong size
  EXPECT_FALSE(usable_tlsa({3, 1, 2, k32}));         // SHA-512 of the wrong size
  EXPECT_FALSE(usable_tlsa({3, 1, 0, "junk"}));      // Full(0) that is no public key
  EXPECT_FALSE(usable_tlsa({3, 0, 0, spki_der()}));  // a key where a certificate must be
  EXPECT_FALSE(usable_tlsa({3, 1, 0, ""}));
}

TlsaAnswer answer(Status s, bool authentic, std::vector<TlsaRecord> records = {}) {
  TlsaAnswer a;
  a.status = s;
  a.authentic = authentic;
  a.records = std::move(records);
  a.detail = s == Status::TempFail ? "server failure (SERVFAIL)" : "";
  return a;
}

TEST(Dane, AuthenticUsableRecordsAuthenticateWithOnlyTheUsableOnes) {
  auto p = plan_dane(answer(Status::Ok, true, {{1, 1, 1, k32}, {3, 1, 1, k32}, {2, 0, 2, k64}}));
  EXPECT_EQ(p.action, DanePlan::Action::Authenticate);
  EXPECT_EQ(p.result, DaneResult::Verified);
  ASSERT_EQ(p.records.size(), 2u);
  EXPECT_EQ(p.records[0].usage, 3);
  EXPECT_EQ(p.records[1].usage, 2);
}

TEST(Dane, AuthenticRecordsNoneUsableStillEncrypt) {
  // RFC 7672 §2.2: "If none of the records are usable, the TLS connection
  // MUST still be attempted": encryption mandatory, no authentication.
  auto p = plan_dane(answer(Status::Ok, true, {{0, 0, 1, k32}, {1, 1, 1, k32}}));
  EXPECT_EQ(p.action, DanePlan::Action::EncryptOnly);
  EXPECT_EQ(p.result, DaneResult::Unusable);
  EXPECT_TRUE(p.records.empty());
}

TEST(Dane, DenialsAndInsecureAnswersAreOpportunistic) {
  for (auto s : {Status::NoData, Status::NxDomain}) {
    auto secure = plan_dane(answer(s, true));
    EXPECT_EQ(secure.action, DanePlan::Action::Opportunistic);
    EXPECT_EQ(secure.result, DaneResult::NoTlsa);
    auto insecure = plan_dane(answer(s, false));
    EXPECT_EQ(insecure.action, DanePlan::Action::Opportunistic);
    EXPECT_EQ(insecure.result, DaneResult::Insecure);
  }
  // Records without AD are ignored, even usable ones (§2.2).
  auto p = plan_dane(answer(Status::Ok, false, {{3, 1, 1, k32}}));
  EXPECT_EQ(p.action, DanePlan::Action::Opportunistic);
  EXPECT_EQ(p.result, DaneResult::Insecure);
  EXPECT_TRUE(p.records.empty());
  EXPECT_EQ(insecure_plan().action, DanePlan::Action::Opportunistic);
  EXPECT_EQ(insecure_plan().result, DaneResult::Insecure);
}

TEST(Dane, AFailedLookupDefersSayingWhy) {
  // SERVFAIL is also how a validating resolver answers bogus data.
  auto p = plan_dane(answer(Status::TempFail, false));
  EXPECT_EQ(p.action, DanePlan::Action::Defer);
  EXPECT_EQ(p.result, DaneResult::LookupFailed);
  EXPECT_EQ(p.detail, "dane: TLSA lookup failed: server failure (SERVFAIL)");
  EXPECT_EQ(plan_dane(answer(Status::BadName, false)).action, DanePlan::Action::Defer);
}

TEST(Dane, SessionModesAndMtaStsPrecedence) {
  DanePlan auth;
  auth.action = DanePlan::Action::Authenticate;
  DanePlan encrypt;
  encrypt.action = DanePlan::Action::EncryptOnly;
  const DanePlan opportunistic;
  EXPECT_EQ(session_mode(auth, false), smtp::TlsMode::Dane);
  EXPECT_EQ(session_mode(auth, true), smtp::TlsMode::Dane);  // DANE wins where it applies
  EXPECT_EQ(session_mode(encrypt, false), smtp::TlsMode::Required);
  EXPECT_EQ(session_mode(encrypt, true), smtp::TlsMode::Verify);
  EXPECT_EQ(session_mode(opportunistic, false), smtp::TlsMode::Opportunistic);
  EXPECT_EQ(session_mode(opportunistic, true), smtp::TlsMode::Verify);
}

TEST(Dane, ResultNames) {
  std::vector<std::string> names;
  for (std::size_t r = 0; r < kDaneResultCount; ++r)
    names.emplace_back(to_string(static_cast<DaneResult>(r)));
  EXPECT_EQ(names, (std::vector<std::string>{"verified", "no_tlsa", "insecure", "unusable",
                                             "failed", "lookup_failed"}));
}

TEST(Dane, OpenSslTakesTheRecordsForTheMxHost) {
  std::string error;
  auto ctx = make_client_context("", error);
  ASSERT_TRUE(ctx) << error;
  SSL* ssl = SSL_new(ctx->native_handle());
  ASSERT_TRUE(prepare_dane_ssl(ssl, "mx.example.test.", {{3, 1, 1, k32}, {2, 0, 1, k32}}, error))
      << error;
  EXPECT_EQ(std::string(SSL_get_servername(ssl, TLSEXT_NAMETYPE_host_name)), "mx.example.test");
  EXPECT_EQ(std::string(X509_VERIFY_PARAM_get0_host(SSL_get0_param(ssl), 0)), "mx.example.test");
  EXPECT_EQ(SSL_get_verify_mode(ssl), SSL_VERIFY_PEER);
  // DANE-EE(3) authenticates the key alone (RFC 7672 §3.1.1).
  EXPECT_NE(SSL_dane_set_flags(ssl, 0) & DANE_FLAG_NO_DANE_EE_NAMECHECKS, 0u);
  SSL_free(ssl);
  // Nothing OpenSSL can use: refused, never a handshake without authentication.
  ssl = SSL_new(ctx->native_handle());
  EXPECT_FALSE(prepare_dane_ssl(ssl, "mx.example.test", {}, error));
  EXPECT_NE(error.find("none of the TLSA records"), std::string::npos) << error;
  SSL_free(ssl);
  EXPECT_EQ(failure_of_dane_verify_result(X509_V_ERR_DANE_NO_MATCH), TlsFailure::TlsaInvalid);
  EXPECT_EQ(failure_of_dane_verify_result(X509_V_ERR_HOSTNAME_MISMATCH),
            TlsFailure::CertificateHostMismatch);
  EXPECT_EQ(to_string(TlsFailure::TlsaInvalid), "tlsa-invalid");
  EXPECT_EQ(to_string(TlsFailure::DnssecInvalid), "dnssec-invalid");
}

}  // namespace
}  // namespace mailgate::delivery
