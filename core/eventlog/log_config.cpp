// eventlog/log_config: the keys of the `log` section.
#include "eventlog/log_config.hpp"

#include "config/schema.hpp"

namespace mailgate::eventlog {

const config::Section<LogConfig>& log_section() {
  using C = LogConfig;
  static const config::Section<C> s{{
      config::one_of("level", &C::level, "log level of stderr",
                     {"trace", "debug", "info", "warn", "error", "off"}),
      config::string("deliveries", &C::deliveries, "delivery log (JSON lines), reopened on SIGHUP")
          .check(config::nonempty),
      config::size("max_pending", &C::max_pending,
                   "delivery-log records kept in memory while the file cannot be written (disk "
                   "full); beyond it the oldest are dropped and counted",
                   64 * 1024),
  }};
  return s;
}

}  // namespace mailgate::eventlog
