// spool/spool_config: the keys of the `spool` section.
#include "spool/spool_config.hpp"

#include "config/schema.hpp"

namespace mailgate::spool {

const config::Section<SpoolConfig>& spool_section() {
  using C = SpoolConfig;
  static const config::Section<C> s{{
      config::string("path", &C::path, "RocksDB spool directory (created if missing)")
          .check(config::nonempty),
      config::size("min_free_space", &C::min_free_space, "below it, `MAIL` gets `452 4.3.1`"),
      config::size("body_buffer", &C::body_buffer,
                   "in-memory part of a message; beyond it the body is written to the spool in "
                   "chunks as it arrives",
                   4096),
      config::size("max_queue_bytes", &C::max_queue_bytes,
                   "bound of the group-commit queue; when full, sessions stop reading "
                   "(backpressure)",
                   1),
  }};
  return s;
}

}  // namespace mailgate::spool
