// spool/spool_config: the `spool` section of configure{} (declared in
// spool_config.cpp, read by core/settings). Defaults are the initializers.
#pragma once

#include <cstdint>
#include <string>

#include "config/section.hpp"

namespace mailgate::spool {

struct SpoolConfig {
  std::string path = "var/spool";
  std::uint64_t min_free_space = 1'000'000'000;
  std::uint64_t body_buffer = 256 * 1024;       // in-memory part of a message
  std::uint64_t max_queue_bytes = 64ull << 20;  // group-commit queue bound
};

const config::Section<SpoolConfig>& spool_section();

}  // namespace mailgate::spool
