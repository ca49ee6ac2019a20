// Unit tests of submit/dkim_signing's synchronous parts: which requests sign,
// which fail and why, and what a failure means (451 4.7.0, or the message
// without that signature under on_error = "send_unsigned"), in call order.
#include "submit/dkim_signing.hpp"

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

#include "dkim/key_cache.hpp"
#include "dkim/signing_key.hpp"

namespace mailgate::submit {
namespace {

class DkimSigning : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::temp_directory_path() / ("submit-dkim-" + std::to_string(::getpid()));
    std::filesystem::create_directories(dir_);
    key_ = (dir_ / "k.pem").string();
    std::ofstream(key_)
        << dkim::SigningKey::generate(dkim::Algorithm::Ed25519Sha256)->private_pem();
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  dkim::SignRequest request(const std::string& domain, const std::string& key) {
    dkim::SignRequest r;
    r.domain = domain;
    r.selector = "s";
    r.key_path = key;
    return r;
  }

  std::filesystem::path dir_;
  std::string key_;
  dkim::KeyCache keys_;
  BodyHashSource body_ = [](dkim::Canonicalization c) -> std::optional<dkim::Sha256> {
    return dkim::body_hash(c, "hello\r\n");
  };
  static constexpr std::string_view kHeaders = "From: a@one.test\r\nSubject: x\r\n";
};

TEST_F(DkimSigning, SignsInCallOrder) {
  std::vector<dkim::SignRequest> rs = {request("one.test", key_), request("two.test", key_)};
  const auto out = compute_signatures(rs, kHeaders, body_, keys_, 1000);
  const auto r = settle_signatures(rs, out, "id");
  EXPECT_FALSE(r.refusal);
  EXPECT_EQ(r.signed_count, 2u);
  EXPECT_LT(r.fields.find("d=one.test"), r.fields.find("d=two.test"));
  EXPECT_EQ(keys_.size(), 1u);  // one key file, read once
}

TEST_F(DkimSigning, AFailureRefusesTemporarilyUnlessSendUnsigned) {
  std::vector<dkim::SignRequest> rs = {request("one.test", key_),
                                       request("two.test", (dir_ / "missing.pem").string())};
  auto out = compute_signatures(rs, kHeaders, body_, keys_, 1000);
  EXPECT_TRUE(out[0].error.empty());
  EXPECT_NE(out[1].error.find("missing.pem"), std::string::npos) << out[1].error;
  auto r = settle_signatures(rs, out, "id");
  ASSERT_TRUE(r.refusal);
  EXPECT_EQ(r.refusal->code, 451);
  EXPECT_EQ(r.refusal->enhanced, "4.7.0");
  EXPECT_TRUE(r.fields.empty());  // nothing half-signed
  EXPECT_EQ(r.failed, 1u);

  rs[1].send_unsigned_on_error = true;
  r = settle_signatures(rs, out, "id");
  EXPECT_FALSE(r.refusal);
  EXPECT_EQ(r.sent_unsigned, 1u);
  EXPECT_NE(r.fields.find("d=one.test"), std::string::npos);
  EXPECT_EQ(r.fields.find("d=two.test"), std::string::npos);
}

TEST_F(DkimSigning, UnavailableHeadersOrBodyAndAnUnrunJobFail) {
  std::vector<dkim::SignRequest> rs = {request("one.test", key_)};
  auto out = compute_signatures(rs, std::nullopt, body_, keys_, 1000);
  EXPECT_NE(out[0].error.find("header section"), std::string::npos);
  out = compute_signatures(
      rs, kHeaders, [](dkim::Canonicalization) { return std::optional<dkim::Sha256>(); }, keys_,
      1000);
  EXPECT_NE(out[0].error.find("body"), std::string::npos);
  // The pool dropped the job: no outcomes at all.
  const auto r = settle_signatures(rs, {}, "id");
  ASSERT_TRUE(r.refusal);
  EXPECT_EQ(r.failed, 1u);
}

TEST_F(DkimSigning, WrongAlgorithmForTheKeyFails) {
  auto rq = request("one.test", key_);
  rq.algorithm = dkim::Algorithm::RsaSha256;
  std::vector<dkim::SignRequest> rs = {rq};
  const auto out = compute_signatures(rs, kHeaders, body_, keys_, 1000);
  EXPECT_NE(out[0].error.find("not rsa-sha256"), std::string::npos) << out[0].error;
}

}  // namespace
}  // namespace mailgate::submit
