// eventlog/log_config: the `log` section of configure{}: the stderr log level
// (applied by app at start) and the delivery log's file.
#pragma once

#include <string>

#include "config/section.hpp"

namespace mailgate::eventlog {

struct LogConfig {
  std::string level = "info";
  std::string deliveries = "var/log/deliveries.jsonl";
};

const config::Section<LogConfig>& log_section();

}  // namespace mailgate::eventlog
