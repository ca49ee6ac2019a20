// Tests of delivery/tls_mode and delivery/destination_link's settings_of():
// the one TLS type and the precedence egress_path > route hook > delivery.tls.
#include "delivery/tls_mode.hpp"

#include <gtest/gtest.h>

#include "delivery/destination_link.hpp"

namespace mailgate::delivery {
namespace {

using spool::RouteTls;

TEST(TlsMode, ParsesTheConfigSpellings) {
  EXPECT_EQ(parse_tls_mode("opportunistic"), TlsMode::Opportunistic);
  EXPECT_EQ(parse_tls_mode("required"), TlsMode::Required);
  EXPECT_EQ(parse_tls_mode("disabled"), TlsMode::Disabled);
  EXPECT_EQ(parse_tls_mode(""), TlsMode::Opportunistic);
  EXPECT_EQ(parse_tls_mode("Required"), TlsMode::Opportunistic);  // loaders refuse it earlier
  for (auto m : {TlsMode::Opportunistic, TlsMode::Required, TlsMode::Disabled})
    EXPECT_EQ(parse_tls_mode(to_string(m)), m);
}

TEST(TlsMode, RouteTlsMapsOneToOneAndDefaultIsNoChoice) {
  EXPECT_EQ(tls_mode_of(RouteTls::Default), std::nullopt);
  EXPECT_EQ(tls_mode_of(RouteTls::Opportunistic), TlsMode::Opportunistic);
  EXPECT_EQ(tls_mode_of(RouteTls::Required), TlsMode::Required);
  EXPECT_EQ(tls_mode_of(RouteTls::Disabled), TlsMode::Disabled);
  // The spool's names and ours agree.
  for (auto t : {RouteTls::Opportunistic, RouteTls::Required, RouteTls::Disabled})
    EXPECT_EQ(to_string(*tls_mode_of(t)), spool::to_string(t));
}

TEST(TlsMode, EgressPathBeatsTheRouteHookWhichBeatsTheConfig) {
  EXPECT_EQ(effective_tls_mode("", RouteTls::Default, "required"), TlsMode::Required);
  EXPECT_EQ(effective_tls_mode("", RouteTls::Disabled, "required"), TlsMode::Disabled);
  EXPECT_EQ(effective_tls_mode("required", RouteTls::Disabled, "disabled"), TlsMode::Required);
  EXPECT_EQ(effective_tls_mode("opportunistic", RouteTls::Required, "disabled"),
            TlsMode::Opportunistic);
  EXPECT_EQ(effective_tls_mode("", RouteTls::Default, "opportunistic"), TlsMode::Opportunistic);
}

TEST(ConnectionSettings, FromTheDestinationsShapingAndTheConfig) {
  queue::Destination d;
  d.name = "dest.test";
  d.shaping.max_messages_per_connection = 7;
  auto s = settings_of(d, "disabled", "gw.test");
  EXPECT_EQ(s.max_messages, 7u);
  EXPECT_EQ(s.tls, TlsMode::Disabled);
  EXPECT_EQ(s.ehlo_name, "gw.test");
  EXPECT_EQ(s.source_address, "");
  d.route_tls = RouteTls::Required;
  d.shaping.ehlo_name = "out.gw.test";
  d.shaping.source_address = "192.0.2.1";
  s = settings_of(d, "disabled", "gw.test");
  EXPECT_EQ(s.tls, TlsMode::Required);
  EXPECT_EQ(s.ehlo_name, "out.gw.test");
  EXPECT_EQ(s.source_address, "192.0.2.1");
  d.shaping.tls = "opportunistic";
  EXPECT_EQ(settings_of(d, "disabled", "gw.test").tls, TlsMode::Opportunistic);
}

}  // namespace
}  // namespace mailgate::delivery
