// app/dkim_keygen: `mailgate dkim keygen --domain D --selector S
// [--algorithm rsa-2048|ed25519] [--out DIR]`: makes a DKIM key, writes the
// private key as PEM (mode 0600, never over an existing file) and prints the
// DNS TXT record to publish and the config line that signs with it.
#pragma once

#include <string>

namespace mailgate::app {

struct KeygenOptions {
  std::string domain, selector;
  std::string algorithm = "rsa-2048";  // rsa-1024 .. rsa-4096, ed25519
  std::string out_dir = "conf/dkim";
};

// 0 on success; 1 with a message on stderr otherwise.
int dkim_keygen(const KeygenOptions& o);

}  // namespace mailgate::app
