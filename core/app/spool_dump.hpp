// app/spool_dump: `mailgate spool dump --path DIR [--bodies]`: prints every
// message in a spool as one JSON object per line (envelope, per-destination
// state, optionally the body in base64). Opens the spool read-only, so it works
// on a stopped spool and alongside a running gateway. For operators and tests.
#pragma once

#include <string>

namespace mailgate::app {

int spool_dump(const std::string& path, bool bodies);

}  // namespace mailgate::app
