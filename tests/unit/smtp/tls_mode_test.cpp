// Tests of smtp/tls_mode: the names of the one outbound TLS type, and the
// numbers queue records store (which must never change).
#include "smtp/tls_mode.hpp"

#include <gtest/gtest.h>

namespace mailgate::smtp {
namespace {

TEST(TlsMode, NamesRoundTripAndNothingElseParses) {
  for (auto m : kTlsModes) EXPECT_EQ(parse_tls_mode(to_string(m)), m);
  EXPECT_EQ(parse_tls_mode("opportunistic"), TlsMode::Opportunistic);
  EXPECT_EQ(parse_tls_mode("verify"), TlsMode::Verify);
  EXPECT_EQ(parse_tls_mode(""), std::nullopt);
  EXPECT_EQ(parse_tls_mode("Required"), std::nullopt);
  EXPECT_EQ(parse_tls_mode("required "), std::nullopt);
  EXPECT_EQ(tls_mode_names(), "opportunistic, required, verify, dane or disabled");
}

TEST(TlsMode, EveryNamedModeIsBuilt) {
  // dane too (RFC 7672): the config and the hooks accept every mode.
  for (auto m : kTlsModes) EXPECT_TRUE(tls_mode_built(m)) << to_string(m);
}

TEST(TlsMode, StoredNumbersAreFixed) {
  // Queue records written by earlier builds hold 1..3; 0 means "no choice".
  EXPECT_EQ(static_cast<int>(TlsMode::Opportunistic), 1);
  EXPECT_EQ(static_cast<int>(TlsMode::Required), 2);
  EXPECT_EQ(static_cast<int>(TlsMode::Disabled), 3);
  EXPECT_EQ(static_cast<int>(TlsMode::Verify), 4);
  EXPECT_EQ(static_cast<int>(TlsMode::Dane), 5);
  for (auto m : kTlsModes) EXPECT_EQ(tls_mode_from_number(static_cast<std::uint8_t>(m)), m);
  EXPECT_EQ(tls_mode_from_number(0), std::nullopt);
  EXPECT_EQ(tls_mode_from_number(6), std::nullopt);
  EXPECT_EQ(tls_mode_from_number(255), std::nullopt);
}

}  // namespace
}  // namespace mailgate::smtp
