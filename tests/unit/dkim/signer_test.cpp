// Unit tests of dkim/signer and dkim/signing_key: the h= list (over-signing,
// From always, counts), the tags, and that the signature verifies with
// OpenSSL over the data RFC 6376 §3.7 defines, rebuilt here by hand, for
// both algorithms; keys: PEM round trip, refusals, the TXT record.
#include "dkim/signer.hpp"

#include <gtest/gtest.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include <unistd.h>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <regex>
#include <thread>

#include "dkim/key_cache.hpp"
#include "dkim/names.hpp"
#include "text/base64.hpp"

namespace mailgate::dkim {
namespace {

constexpr std::string_view kHeaders =
    "Received: from x by y; Thu, 1 Jan 2026 00:00:00 +0000\r\n"
    "From: Alice <alice@example.com>\r\n"
    "To: bob@example.net\r\n"
    "Subject: Hello\r\n"
    "  world \r\n";

std::string tag(const std::string& field, const std::string& name) {
  std::smatch m;
  const std::regex re("[;\\s]" + name + "=([^;]*)");
  if (!std::regex_search(field, m, re)) return "";
  std::string v = m[1];
  std::string out;
  for (char c : v)
    if (c != '\r' && c != '\n' && c != ' ' && c != '\t') out += c;
  return out;
}

// Verifies `field` as a verifier would, with relaxed header canonicalisation.
bool verifies(const std::string& field, const SigningKey& key, std::string_view signed_part) {
  const auto sig = text::base64_decode(tag(field, "b"));
  if (!sig) return false;
  // The field with b='s value removed, relaxed, no final CRLF.
  std::string without_b = std::regex_replace(field, std::regex("b=[^;]*$"), "b=");
  std::string canon;
  canonicalize_header(Canonicalization::Relaxed, without_b, canon);
  canon.resize(canon.size() - 2);
  std::string data = std::string(signed_part) + canon;

  const auto pub_der = text::base64_decode(key.public_key_base64());
  EVP_PKEY* pub = nullptr;
  if (key.algorithm() == Algorithm::Ed25519Sha256) {
    pub = EVP_PKEY_new_raw_public_key(EVP_PKEY_ED25519, nullptr,
                                      reinterpret_cast<const unsigned char*>(pub_der->data()),
                                      pub_der->size());
  } else {
    const auto* p = reinterpret_cast<const unsigned char*>(pub_der->data());
    pub = d2i_PUBKEY(nullptr, &p, static_cast<long>(pub_der->size()));
  }
  EVP_MD_CTX* ctx = EVP_MD_CTX_new();
  bool ok = false;
  const auto* s = reinterpret_cast<const unsigned char*>(sig->data());
  if (key.algorithm() == Algorithm::Ed25519Sha256) {
    unsigned char md[32];
    unsigned int n = 0;
    EVP_Digest(data.data(), data.size(), md, &n, EVP_sha256(), nullptr);
    ok = EVP_DigestVerifyInit(ctx, nullptr, nullptr, nullptr, pub) == 1 &&
         EVP_DigestVerify(ctx, s, sig->size(), md, n) == 1;
  } else {
    ok = EVP_DigestVerifyInit(ctx, nullptr, EVP_sha256(), nullptr, pub) == 1 &&
         EVP_DigestVerify(ctx, s, sig->size(), reinterpret_cast<const unsigned char*>(data.data()),
                          data.size()) == 1;
  }
  EVP_MD_CTX_free(ctx);
  EVP_PKEY_free(pub);
  return ok;
}

SignRequest request() {
  SignRequest r;
  r.domain = "example.com";
  r.selector = "s1";
  r.key_path = "test";
  return r;
}

TEST(DkimSigner, OverSignsAndAlwaysSignsFrom) {
  auto key = SigningKey::generate(Algorithm::Ed25519Sha256);
  auto r = request();
  const auto field =
      signature_field(r, *key, kHeaders, body_hash(Canonicalization::Relaxed, ""), 1000);
  EXPECT_EQ(tag(field, "h"), "from:from:to:to:subject:subject:date:message-id");
  r.headers = {"Subject", "X-Absent", "subject"};
  const auto f2 =
      signature_field(r, *key, kHeaders, body_hash(Canonicalization::Relaxed, ""), 1000);
  EXPECT_EQ(tag(f2, "h"), "from:from:subject:subject");
}

TEST(DkimSigner, TagsAndNoLengthTag) {
  auto key = SigningKey::generate(Algorithm::Ed25519Sha256);
  auto r = request();
  r.expire = std::chrono::seconds(3600);
  r.canonicalization = {Canonicalization::Simple, Canonicalization::Relaxed};
  const auto field =
      signature_field(r, *key, kHeaders, body_hash(Canonicalization::Relaxed, ""), 1000);
  EXPECT_TRUE(
      field.starts_with("DKIM-Signature: v=1; a=ed25519-sha256; c=simple/relaxed; "
                        "d=example.com; s=s1;"));
  EXPECT_EQ(tag(field, "t"), "1000");
  EXPECT_EQ(tag(field, "x"), "4600");
  EXPECT_EQ(tag(field, "bh"), "47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=");
  EXPECT_EQ(tag(field, "l"), "");
  EXPECT_TRUE(field.ends_with("\r\n"));
  for (std::size_t pos = 0, eol; (eol = field.find("\r\n", pos)) != std::string::npos;
       pos = eol + 2)
    EXPECT_LT(eol - pos, 80u);
}

class DkimSignerBoth : public ::testing::TestWithParam<Algorithm> {};

TEST_P(DkimSignerBoth, SignatureVerifiesAndCoversTheHeaders) {
  auto key = SigningKey::generate(GetParam());
  auto r = request();
  r.headers = {"From", "Subject"};
  const auto bh = body_hash(Canonicalization::Relaxed, "hi\r\n");
  const auto field = signature_field(r, *key, kHeaders, bh, 1000);
  const std::string signed_part = "from:Alice <alice@example.com>\r\nsubject:Hello world\r\n";
  EXPECT_TRUE(verifies(field, *key, signed_part)) << field;
  EXPECT_FALSE(verifies(field, *key, "from:Mallory <m@example.com>\r\nsubject:Hello world\r\n"));
}

TEST_P(DkimSignerBoth, AlgorithmMustMatchTheKey) {
  auto key = SigningKey::generate(GetParam());
  auto r = request();
  r.algorithm =
      GetParam() == Algorithm::RsaSha256 ? Algorithm::Ed25519Sha256 : Algorithm::RsaSha256;
  EXPECT_THROW(signature_field(r, *key, kHeaders, {}, 1), KeyError);
}

INSTANTIATE_TEST_SUITE_P(Algorithms, DkimSignerBoth,
                         ::testing::Values(Algorithm::RsaSha256, Algorithm::Ed25519Sha256));

TEST(DkimKey, PemRoundTripAndTxt) {
  auto key = SigningKey::generate(Algorithm::RsaSha256, 1024);
  auto again = SigningKey::from_pem(key->private_pem(), "mem");
  EXPECT_EQ(again->algorithm(), Algorithm::RsaSha256);
  EXPECT_EQ(again->bits(), 1024);
  EXPECT_EQ(again->public_key_base64(), key->public_key_base64());
  EXPECT_TRUE(key->dns_txt().starts_with("v=DKIM1; k=rsa; p=MIGf"));
  auto ed = SigningKey::generate(Algorithm::Ed25519Sha256);
  EXPECT_TRUE(ed->dns_txt().starts_with("v=DKIM1; k=ed25519; p="));
  EXPECT_EQ(text::base64_decode(ed->public_key_base64())->size(), 32u);
}

TEST(DkimKey, RefusesWhatIsNotAUsableKey) {
  EXPECT_THROW(SigningKey::from_pem("not a key", "x"), KeyError);
  EXPECT_THROW(SigningKey::generate(Algorithm::RsaSha256, 512), KeyError);
  EXPECT_THROW(SigningKey::load_file("/nonexistent/dkim.pem"), KeyError);
  // A 512-bit RSA key made by OpenSSL itself is refused by size.
  EVP_PKEY* small = EVP_PKEY_Q_keygen(nullptr, nullptr, "RSA", static_cast<size_t>(512));
  ASSERT_NE(small, nullptr);
  BIO* bio = BIO_new(BIO_s_mem());
  PEM_write_bio_PrivateKey(bio, small, nullptr, nullptr, 0, nullptr, nullptr);
  char* data = nullptr;
  const long n = BIO_get_mem_data(bio, &data);
  const std::string pem(data, static_cast<std::size_t>(n));
  BIO_free(bio);
  EVP_PKEY_free(small);
  try {
    SigningKey::from_pem(pem, "small.pem");
    FAIL() << "a 512-bit key was accepted";
  } catch (const KeyError& e) {
    EXPECT_NE(std::string(e.what()).find("512 bits"), std::string::npos) << e.what();
  }
}

TEST(DkimKey, CacheLoadsOnceAndAReloadReplacesItOnlyWhenItSucceeds) {
  const auto dir =
      std::filesystem::temp_directory_path() / ("dkim-cache-" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir);
  const auto path = (dir / "k.pem").string();
  auto write = [&](const SigningKey& k) { std::ofstream(path) << k.private_pem(); };
  auto k1 = SigningKey::generate(Algorithm::Ed25519Sha256);
  auto k2 = SigningKey::generate(Algorithm::Ed25519Sha256);
  write(*k1);
  KeyCache cache;
  auto a = cache.get(path);
  write(*k2);
  EXPECT_EQ(cache.get(path), a);  // cached: the file is not read again

  // A reload reads the file fresh on its own thread; others keep the cache.
  cache.begin_reload();
  EXPECT_EQ(cache.get(path)->public_key_base64(), k2->public_key_base64());
  std::shared_ptr<const SigningKey> other;
  std::thread([&] { other = cache.get(path); }).join();
  EXPECT_EQ(other, a);
  cache.end_reload(false);  // failed reload: nothing changes
  EXPECT_EQ(cache.get(path), a);

  cache.begin_reload();
  cache.get(path);
  cache.end_reload(true);
  EXPECT_EQ(cache.get(path)->public_key_base64(), k2->public_key_base64());

  EXPECT_THROW(cache.get((dir / "missing.pem").string()), KeyError);
  EXPECT_EQ(cache.size(), 1u);
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace mailgate::dkim

namespace mailgate::dkim {
namespace {

TEST(DkimNames, DomainsAndSelectors) {
  for (const char* ok : {"example.com", "s1", "2026-01._x", "a.b-c.d"})
    EXPECT_TRUE(valid_dns_name(ok)) << ok;
  for (const char* bad :
       {"", ".example", "example.", "a..b", "a;b", "a b", "a=b", "ex\xc3\xa4mple"})
    EXPECT_FALSE(valid_dns_name(bad)) << bad;
}

}  // namespace
}  // namespace mailgate::dkim
