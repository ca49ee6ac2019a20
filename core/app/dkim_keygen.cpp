// app/dkim_keygen: see dkim_keygen.hpp.
#include "app/dkim_keygen.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>

#include "dkim/names.hpp"
#include "dkim/signing_key.hpp"

namespace mailgate::app {

namespace {

// A DNS TXT string holds at most 255 octets: longer records are several
// strings, which verifiers concatenate (RFC 6376 §3.6.2.2).
std::string quoted_strings(const std::string& txt) {
  std::string out;
  for (std::size_t i = 0; i < txt.size(); i += 250) {
    if (i > 0) out += "\n        ";
    out += '"' + txt.substr(i, 250) + '"';
  }
  return out;
}

}  // namespace

int dkim_keygen(const KeygenOptions& o) {
  if (!dkim::valid_dns_name(o.domain) || !dkim::valid_dns_name(o.selector)) {
    std::fprintf(stderr, "mailgate: --domain and --selector must be DNS names (A-labels)\n");
    return 1;
  }
  dkim::Algorithm algorithm = dkim::Algorithm::RsaSha256;
  int bits = 0;
  if (o.algorithm == "ed25519") {
    algorithm = dkim::Algorithm::Ed25519Sha256;
  } else if (o.algorithm.starts_with("rsa-")) {
    bits = std::atoi(o.algorithm.c_str() + 4);
  }
  if (algorithm == dkim::Algorithm::RsaSha256 &&
      (bits < dkim::SigningKey::kMinRsaBits || bits > dkim::SigningKey::kMaxRsaBits)) {
    std::fprintf(stderr, "mailgate: --algorithm must be rsa-1024 .. rsa-4096 or ed25519\n");
    return 1;
  }
  try {
    const auto key = dkim::SigningKey::generate(algorithm, bits);
    const std::string pem = key->private_pem();
    std::error_code ec;
    std::filesystem::create_directories(o.out_dir, ec);
    const std::string path =
        (std::filesystem::path(o.out_dir) / (o.domain + "." + o.selector + ".pem")).string();
    const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd < 0) {
      std::fprintf(stderr, "mailgate: cannot create %s: %s%s\n", path.c_str(), std::strerror(errno),
                   errno == EEXIST ? " (keys are never overwritten: remove it first)" : "");
      return 1;
    }
    const bool written = ::write(fd, pem.data(), pem.size()) == static_cast<ssize_t>(pem.size());
    const bool closed = ::close(fd) == 0;
    if (!written || !closed) {
      std::fprintf(stderr, "mailgate: cannot write %s\n", path.c_str());
      ::unlink(path.c_str());
      return 1;
    }
    std::printf("wrote %s (%s, mode 0600)\n\n", path.c_str(), o.algorithm.c_str());
    std::printf("Publish this TXT record in the DNS of %s:\n\n", o.domain.c_str());
    std::printf("%s._domainkey.%s. IN TXT ( %s )\n\n", o.selector.c_str(), o.domain.c_str(),
                quoted_strings(key->dns_txt()).c_str());
    std::printf(
        "Sign with it (conf/mailgate.lua):\n\n"
        "mailgate.use(\"dkim\", { keys = {\n"
        "  [\"%s\"] = { selector = \"%s\", key = \"%s\" },\n"
        "} })\n",
        o.domain.c_str(), o.selector.c_str(), path.c_str());
    return 0;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "mailgate: %s\n", e.what());
    return 1;
  }
}

}  // namespace mailgate::app
