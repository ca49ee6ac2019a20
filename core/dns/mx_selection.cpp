// dns/mx_selection: MX ordering per RFC 5321 §5.1 (see mx_selection.hpp).
// Sorting is stable by preference; each run of equal preferences is then
// shuffled with std::shuffle over the caller's generator.
#include "dns/mx_selection.hpp"

#include <algorithm>
#include <string>
#include <unordered_map>

#include "text/ascii.hpp"

namespace mailgate::dns {

bool is_null_target(std::string_view host) { return host.empty() || host == "."; }

bool is_null_mx(const std::vector<MxHost>& records) {
  if (records.empty()) return false;
  return std::all_of(records.begin(), records.end(),
                     [](const MxHost& h) { return is_null_target(h.name); });
}

std::vector<MxHost> order_mx(std::vector<MxHost> records, std::mt19937_64& rng) {
  // Drop null targets and keep each host once, at its lowest preference.
  std::unordered_map<std::string, std::size_t> seen;
  std::vector<MxHost> hosts;
  hosts.reserve(records.size());
  for (auto& r : records) {
    if (is_null_target(r.name)) continue;
    auto key = text::to_lower(r.name);
    if (key.back() == '.') key.pop_back();
    auto [it, fresh] = seen.emplace(std::move(key), hosts.size());
    if (fresh) {
      hosts.push_back(std::move(r));
    } else if (r.preference < hosts[it->second].preference) {
      hosts[it->second].preference = r.preference;
    }
  }
  std::stable_sort(hosts.begin(), hosts.end(),
                   [](const MxHost& a, const MxHost& b) { return a.preference < b.preference; });
  for (auto first = hosts.begin(); first != hosts.end();) {
    auto last = std::find_if(first, hosts.end(),
                             [&](const MxHost& h) { return h.preference != first->preference; });
    if (last - first > 1) std::shuffle(first, last, rng);
    first = last;
  }
  return hosts;
}

}  // namespace mailgate::dns
