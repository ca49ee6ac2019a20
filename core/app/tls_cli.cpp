// app/tls_cli: see tls_cli.hpp.
#include "app/tls_cli.hpp"

#include <cstdio>
#include <set>
#include <utility>

#include "app/config_load.hpp"
#include "tls/self_signed.hpp"

namespace mailgate::app {

int make_self_signed_pairs(const std::string& config_path, const std::vector<std::string>& sets) {
  const auto loaded = load_config_or_report(config_path, sets);
  if (!loaded) return 1;
  const auto& cfg = *loaded;
  // Listeners and http.tls = true hold copies of the global pair: one each.
  std::set<std::pair<std::string, std::string>> pairs;
  const auto want = [&](const tls::TlsConfig& t) {
    if (t.self_signed && !t.cert.empty()) pairs.emplace(t.cert, t.key);
  };
  want(cfg.tls);
  want(cfg.http.tls);
  for (const auto& l : cfg.listeners) want(l.tls);
  int status = 0;
  for (const auto& [cert, key] : pairs) {
    if (auto e = tls::ensure_self_signed(cert, key, cfg.hostname); !e.empty()) {
      std::fprintf(stderr, "mailgate: %s\n", e.c_str());
      status = 1;
    } else {
      std::printf("%s, %s: ready (for %s)\n", cert.c_str(), key.c_str(), cfg.hostname.c_str());
    }
  }
  if (pairs.empty()) std::printf("no tls{} in %s asks for self_signed\n", config_path.c_str());
  return status;
}

}  // namespace mailgate::app
