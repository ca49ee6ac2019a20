// app/tls_cli: `mailgate tls self-signed`: makes the self-signed certificate
// pairs a config asks for (a tls{} with self_signed = true: the global one, a
// listener's, the admin listener's) ahead of the first start, so that a
// sandboxed service never needs to write them (the package's postinst runs
// it as the mailgate user).
// Promises: never overwrites an existing file (tls/self_signed); exit 0 when
// every asked-for pair exists afterwards, 1 with the reason otherwise.
#pragma once

#include <string>
#include <vector>

namespace mailgate::app {

int make_self_signed_pairs(const std::string& config_path, const std::vector<std::string>& sets);

}  // namespace mailgate::app
