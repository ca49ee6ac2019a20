// Tests of delivery/destination_link's settings_of(): a connection's
// settings from its destination, and the TLS mode's precedence
// egress_path > route hook > delivery.tls.
#include "delivery/destination_link.hpp"

#include <gtest/gtest.h>

namespace mailgate::delivery {
namespace {

using smtp::TlsMode;

TEST(ConnectionSettings, EgressPathBeatsTheRouteHookWhichBeatsTheConfig) {
  queue::Destination d;
  EXPECT_EQ(settings_of(d, TlsMode::Required, "gw").tls, TlsMode::Required);
  d.route_tls = TlsMode::Disabled;
  EXPECT_EQ(settings_of(d, TlsMode::Required, "gw").tls, TlsMode::Disabled);
  d.shaping.tls = TlsMode::Required;
  EXPECT_EQ(settings_of(d, TlsMode::Disabled, "gw").tls, TlsMode::Required);
  d.route_tls = TlsMode::Required;
  d.shaping.tls = TlsMode::Opportunistic;
  EXPECT_EQ(settings_of(d, TlsMode::Disabled, "gw").tls, TlsMode::Opportunistic);
}

TEST(ConnectionSettings, FromTheDestinationsShapingAndTheConfig) {
  queue::Destination d;
  d.name = "dest.test";
  d.shaping.max_messages_per_connection = 7;
  auto s = settings_of(d, TlsMode::Disabled, "gw.test");
  EXPECT_EQ(s.max_messages, 7u);
  EXPECT_EQ(s.tls, TlsMode::Disabled);
  EXPECT_EQ(s.ehlo_name, "gw.test");
  EXPECT_EQ(s.source_address, "");
  d.route_tls = TlsMode::Required;
  d.shaping.ehlo_name = "out.gw.test";
  d.shaping.source_address = "192.0.2.1";
  s = settings_of(d, TlsMode::Disabled, "gw.test");
  EXPECT_EQ(s.tls, TlsMode::Required);
  EXPECT_EQ(s.ehlo_name, "out.gw.test");
  EXPECT_EQ(s.source_address, "192.0.2.1");
}

}  // namespace
}  // namespace mailgate::delivery
