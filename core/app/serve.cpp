// app/serve: `mailgate serve`: load the config, set up logging, run the
// Gateway until SIGTERM/SIGINT, and tear it down (graceful drain, exit 0).
#include "app/serve.hpp"

#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>
#include <csignal>
#include <cstdio>

#include "app/config_load.hpp"
#include "app/fd_limit.hpp"
#include "app/gateway.hpp"

namespace mailgate::app {

namespace {

void setup_logging(const std::string& level) {
  auto logger = spdlog::stderr_color_mt("mailgate");
  logger->set_pattern("%Y-%m-%dT%H:%M:%S.%e %^%l%$ %v");
  logger->set_level(spdlog::level::from_str(level));
  logger->flush_on(spdlog::level::info);
  spdlog::set_default_logger(logger);
}

}  // namespace

int serve(const std::string& config_path, const std::vector<std::string>& overrides) {
  auto loaded = load_config_or_report(config_path, overrides);
  if (!loaded) return 1;
  auto& cfg = *loaded;
  setup_logging(cfg.log.level);
  std::signal(SIGPIPE, SIG_IGN);
  check_fd_limit(cfg);

  Gateway gateway(std::move(cfg), config_path, overrides);
  if (auto e = gateway.start(); !e.empty()) {
    spdlog::critical("{}", e);
    return 1;  // ~Gateway tears down whatever started
  }
  gateway.run_until_signal();
  gateway.stop();
  gateway.log_totals();
  return 0;
}

}  // namespace mailgate::app
