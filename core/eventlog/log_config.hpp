// eventlog/log_config: the `log` section of configure{}: the stderr log level
// (applied by app at start), the delivery log's file, and how much of it may
// wait in memory while the file cannot be written.
#pragma once

#include <cstdint>
#include <string>

#include "config/section.hpp"

namespace mailgate::eventlog {

struct LogConfig {
  std::string level = "info";
  std::string deliveries = "var/log/deliveries.jsonl";
  std::uint64_t max_pending = 64ull << 20;  // bytes of unwritten delivery-log records
};

const config::Section<LogConfig>& log_section();

}  // namespace mailgate::eventlog
