// Tests of tls/reloading_context: in-memory handshakes (BIO pairs) against
// the one server context a server keeps, before and after reloads: the new
// certificate is served from the next handshake on, a failed reload keeps the
// old one, the context keeps its owner alive, and the TLS 1.2 floor holds
// after a switch.
#include "tls/reloading_context.hpp"

#include <gtest/gtest.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <unistd.h>

#include <asio/ssl/context.hpp>
#include <filesystem>
#include <fstream>
#include <string>

#include "tls/self_signed.hpp"

namespace mailgate::tls {
namespace {

namespace fs = std::filesystem;

// Runs a client handshake against `server`; the CN of the certificate the
// client got, or "" when the handshake failed.
std::string served_name(SSL_CTX* server, int max_version = 0) {
  SSL_CTX* cctx = SSL_CTX_new(TLS_client_method());
  if (max_version != 0) {
    SSL_CTX_set_security_level(cctx, 0);
    SSL_CTX_set_min_proto_version(cctx, TLS1_VERSION);
    SSL_CTX_set_max_proto_version(cctx, max_version);
  }
  SSL* client = SSL_new(cctx);
  SSL* srv = SSL_new(server);
  BIO* cbio = nullptr;
  BIO* sbio = nullptr;
  BIO_new_bio_pair(&cbio, 0, &sbio, 0);
  SSL_set_bio(client, cbio, cbio);
  SSL_set_bio(srv, sbio, sbio);
  SSL_set_connect_state(client);
  SSL_set_accept_state(srv);
  bool done = false;
  for (int i = 0; i < 20 && !done; ++i) {
    const int c = SSL_do_handshake(client);
    const int s = SSL_do_handshake(srv);
    done = c == 1 && s == 1;
    if ((c <= 0 && SSL_get_error(client, c) == SSL_ERROR_SSL) ||
        (s <= 0 && SSL_get_error(srv, s) == SSL_ERROR_SSL))
      break;
  }
  std::string cn;
  if (done) {
    X509* peer = SSL_get1_peer_certificate(client);
    char buf[256] = "";
    X509_NAME_get_text_by_NID(X509_get_subject_name(peer), NID_commonName, buf, sizeof buf);
    cn = buf;
    X509_free(peer);
  }
  SSL_free(client);
  SSL_free(srv);
  SSL_CTX_free(cctx);
  return cn;
}

class ReloadingContextTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("reloading_context_test." + std::to_string(::getpid()));
    fs::remove_all(dir_);
    fs::create_directories(dir_);
    files_ = {(dir_ / "cert.pem").string(), (dir_ / "key.pem").string(), ""};
  }
  void TearDown() override { fs::remove_all(dir_); }

  // A fresh self-signed pair for `name` at the paths.
  void make_pair(const std::string& name) {
    fs::remove(files_.cert);
    fs::remove(files_.key);
    ASSERT_EQ(ensure_self_signed(files_.cert, files_.key, name), "");
  }

  fs::path dir_;
  CertificateFiles files_;
};

TEST_F(ReloadingContextTest, HandshakesFollowReloads) {
  make_pair("one.test");
  std::string error;
  auto reloading = ReloadingContext::make(files_, error);
  ASSERT_TRUE(reloading) << error;
  auto server = reloading->server_context();
  EXPECT_EQ(served_name(server->native_handle()), "one.test");

  make_pair("two.test");
  EXPECT_EQ(served_name(server->native_handle()), "one.test");  // not reloaded yet
  EXPECT_EQ(reloading->reload(), "");
  EXPECT_EQ(served_name(server->native_handle()), "two.test");
  EXPECT_EQ(served_name(server->native_handle()), "two.test");

  // A broken file: the reload says why, the certificate in use stays.
  std::ofstream(files_.cert) << "not a certificate\n";
  const auto why = reloading->reload();
  EXPECT_NE(why.find("cannot load certificate " + files_.cert), std::string::npos) << why;
  EXPECT_EQ(served_name(server->native_handle()), "two.test");
}

TEST_F(ReloadingContextTest, SwitchedHandshakesKeepTheTls12Floor) {
  make_pair("one.test");
  std::string error;
  auto reloading = ReloadingContext::make(files_, error);
  ASSERT_TRUE(reloading) << error;
  make_pair("two.test");
  ASSERT_EQ(reloading->reload(), "");
  auto server = reloading->server_context();
  EXPECT_EQ(served_name(server->native_handle(), TLS1_1_VERSION), "");
  EXPECT_EQ(served_name(server->native_handle(), TLS1_2_VERSION), "two.test");
}

TEST_F(ReloadingContextTest, TheServerContextKeepsItsOwnerAlive) {
  make_pair("one.test");
  std::string error;
  std::shared_ptr<asio::ssl::context> server;
  {
    auto reloading = ReloadingContext::make(files_, error);
    ASSERT_TRUE(reloading) << error;
    make_pair("two.test");
    ASSERT_EQ(reloading->reload(), "");
    server = reloading->server_context();
  }
  EXPECT_EQ(served_name(server->native_handle()), "two.test");
}

TEST_F(ReloadingContextTest, UnloadableFilesAreAnError) {
  std::string error;
  EXPECT_FALSE(ReloadingContext::make(files_, error));
  EXPECT_NE(error.find("cannot load certificate"), std::string::npos) << error;
}

}  // namespace
}  // namespace mailgate::tls
