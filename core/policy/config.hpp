// policy/config: loads the Lua config file. The file runs in a fresh Lua
// state with the run-time API (so handlers are registered and plugins loaded
// exactly as `serve` does, and their errors show here); its configure{} and
// listen{} tables become a neutral value tree that core/settings checks
// against the sections the modules declare (--set applied first). Policy owns
// only the Lua side: the configuration belongs to its modules.
// Promises: Lua load/run errors are ConfigErrors with Lua's message (with
// file:line; the path in front when Lua does not name it); bytecode is
// refused; validation errors are settings::validate's (file and dotted key).
// Relative paths in the result (spool.path, log.deliveries) are relative to
// the working directory; config_dir is the file's absolute directory.
//
// The aliases keep code written against the former policy::Config compiling;
// new code names the owners (settings::GatewayConfig, server::ListenerConfig).
#pragma once

#include <string>
#include <vector>

#include "config/context.hpp"
#include "config/host_port.hpp"
#include "policy/units.hpp"
#include "settings/gateway_config.hpp"

namespace mailgate::policy {

using ConfigError = config::Error;
using Config = settings::GatewayConfig;
using AuthMode = server::AuthMode;
using ListenerConfig = server::ListenerConfig;
using SpoolConfig = spool::SpoolConfig;
using HttpConfig = http::HttpConfig;
using DnsConfig = dns::DnsConfig;
using TlsConfig = tls::TlsConfig;
using LogConfig = eventlog::LogConfig;
using RetryConfig = delivery::RetryConfig;
using DeliveryConfig = delivery::DeliveryConfig;
using MetricsConfig = metrics::MetricsConfig;
using config::parse_host_port;

// `overrides` are "dotted.key=value" strings from --set (settings/gateway_config.hpp).
Config load_config(const std::string& path, const std::vector<std::string>& overrides = {});

}  // namespace mailgate::policy
