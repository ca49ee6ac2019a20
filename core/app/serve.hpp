// app/serve: `mailgate serve`: load the config, open the spool, start the
// writer, workers and listeners, recover the queue index in the background,
// and run until SIGTERM/SIGINT (graceful drain, exit 0).
#pragma once

#include <string>
#include <vector>

namespace mailgate::app {

int serve(const std::string& config_path, const std::vector<std::string>& overrides);

}  // namespace mailgate::app
