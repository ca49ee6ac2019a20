// settings/gateway_config: the whole configuration of a gateway, the
// aggregate of every module's section (each declared next to its module:
// spool/spool_config, server/listener_config, delivery/delivery_config, ...)
// plus the few top-level keys. This module sits just above the config
// sections and below every module that reads the aggregate (policy, submit,
// server, delivery, app); it includes no module code, only *_config.hpp.
//
// validate() applies --set overrides to the tables the config file declared,
// then reads them with the sections. Promises: every key is checked; an
// unknown key, a wrong type or a bad unit is a config::Error naming the file
// and the dotted key ("conf/mailgate.lua: spool.min_free_space: expected a
// size (e.g. \"1GB\"), got boolean"; see config/context.hpp for the --set
// suffix). Every declared key works: a key declared before its feature
// exists must be refused with "not implemented yet", so that nothing
// unbuilt is ever silently accepted.
//
// --set KEY=VALUE (config/overrides.hpp for the value typing): KEY is a
// dotted path into configure{} ("spool.path", "dns.servers.1"); "listen.KEY"
// sets KEY of the first mailgate.listen{} (the config must have one),
// "listen.N.KEY" of the N-th (1-based).
#pragma once

#include <string>
#include <vector>

#include "cluster/cluster_config.hpp"
#include "config/context.hpp"
#include "config/value.hpp"
#include "delivery/delivery_config.hpp"
#include "dns/dns_config.hpp"
#include "eventlog/log_config.hpp"
#include "feedback/feedback_config.hpp"
#include "http/http_config.hpp"
#include "metrics/metrics_config.hpp"
#include "policy/policy_config.hpp"
#include "server/listener_config.hpp"
#include "spool/spool_config.hpp"
#include "tls/tls_config.hpp"
#include "webhooks/webhooks_config.hpp"

namespace mailgate::settings {

struct GatewayConfig {
  std::string hostname;  // default: the machine's host name
  unsigned workers = 0;  // resolved: never 0 after validate (0 in the file = one per core)
  spool::SpoolConfig spool;
  http::HttpConfig http;
  dns::DnsConfig dns;
  tls::TlsConfig tls;
  eventlog::LogConfig log;
  delivery::DeliveryConfig delivery;
  policy::PolicyConfig policy;
  metrics::MetricsConfig metrics;
  feedback::FeedbackConfig feedback;              // inbound bounces and complaints
  webhooks::WebhooksConfig webhooks;              // `webhooks` + one target per mailgate.webhook{}
  cluster::ClusterConfig cluster;                 // several nodes sharing one Redis
  std::vector<server::ListenerConfig> listeners;  // at least one
  std::string config_dir;  // directory of the config file (set by the loader)
};

// What a config file declared, as value trees: the configure{} calls merged
// into one table, one table per listen{} call and one per webhook{} call.
struct ConfigTables {
  config::Value configure = config::Value::new_table();
  std::vector<config::Value> listen;
  std::vector<config::Value> webhook;
};

// Errors start with `file`. Relative paths are kept as written (relative to
// the working directory).
GatewayConfig validate(ConfigTables tables, const std::string& file,
                       const std::vector<std::string>& overrides);

// The Markdown reference of every key (README's "Configuration" reference;
// `mailgate config-reference`).
std::string reference_markdown();

}  // namespace mailgate::settings
