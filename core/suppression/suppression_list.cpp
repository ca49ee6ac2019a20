// suppression/suppression_list: see suppression_list.hpp. Stored value:
// "<added_ms> <reason>".
#include "suppression/suppression_list.hpp"

#include "dns/idna.hpp"
#include "text/ascii.hpp"

#include <chrono>
#include <memory>
#include <mutex>

#include "spool/message_id.hpp"
#include "spool/spool_writer.hpp"
#include "spool/store.hpp"
#include "spool/write_set.hpp"

namespace mailgate::suppression {

std::string SuppressionList::normalize(std::string_view address) {
  // Local part lower-cased (mailbox names are case-insensitive in practice),
  // domain in the one form every domain takes (dns::normalize_domain), so
  // "U@ｇmail.com" and "u@GMAIL.com" are the same entry as "u@gmail.com".
  address = address.substr(0, kMaxAddress);
  const auto at = address.rfind('@');
  if (at == std::string_view::npos) return text::to_lower(address);
  return (text::to_lower(address.substr(0, at)) + "@" +
          dns::normalize_domain(address.substr(at + 1)))
      .substr(0, kMaxAddress);
}

SuppressionList::SuppressionList(spool::Store& store, spool::SpoolWriter& writer)
    : store_(store), writer_(writer) {
  for (auto& r : store_.read_suppressions())
    entries_.emplace(r.address, Entry{r.address, std::move(r.reason), r.added_ms});
}

bool SuppressionList::has(std::string_view address) const {
  const auto key = normalize(address);
  std::shared_lock lock(mu_);
  return entries_.find(key) != entries_.end();
}

void SuppressionList::add(std::string_view address, std::string_view reason) {
  Entry e{normalize(address), std::string(reason.substr(0, kMaxReason)), spool::wall_clock_ms()};
  spool::WriteSet set(store_);
  set.put_suppression({e.address, e.reason, e.added_ms});
  {
    std::unique_lock lock(mu_);
    entries_[e.address] = e;
  }
  writer_.submit(std::move(set), false, [](std::error_code) {});
  if (listener_) listener_(Change{false, e.address, e.reason, e.added_ms});
}

bool SuppressionList::remove(std::string_view address) {
  const auto key = normalize(address);
  {
    std::unique_lock lock(mu_);
    if (entries_.erase(key) == 0) return false;
  }
  spool::WriteSet set(store_);
  set.remove_suppression(key);
  writer_.submit(std::move(set), false, [](std::error_code) {});
  if (listener_) listener_(Change{true, key, {}, spool::wall_clock_ms()});
  return true;
}

std::string SuppressionList::check(const Change& c) {
  if (c.address.empty()) return "empty address";
  if (c.address.size() > kMaxAddress) return "address longer than 512 bytes";
  if (c.reason.size() > kMaxReason) return "reason longer than 512 bytes";
  for (unsigned char ch : c.address)
    if (ch < 0x20 || ch == 0x7f) return "control byte in the address";
  if (normalize(c.address) != c.address) return "address not in normal form";
  return {};
}

bool SuppressionList::apply(const Change& c) {
  const auto key = normalize(c.address);
  spool::WriteSet set(store_);
  {
    std::unique_lock lock(mu_);
    auto it = entries_.find(key);
    if (it != entries_.end() && it->second.added_ms > c.ms) return false;  // ours is newer
    if (c.removed) {
      if (it == entries_.end()) return false;
      entries_.erase(it);
      set.remove_suppression(key);
    } else {
      if (it != entries_.end() && it->second.added_ms == c.ms && it->second.reason == c.reason)
        return false;  // already so
      Entry e{key, c.reason.substr(0, kMaxReason), c.ms};
      set.put_suppression({e.address, e.reason, e.added_ms});
      entries_[key] = std::move(e);
    }
  }
  writer_.submit(std::move(set), false, [](std::error_code) {});
  return true;
}

std::vector<Entry> SuppressionList::all() const {
  std::vector<Entry> out;
  std::shared_lock lock(mu_);
  out.reserve(entries_.size());
  for (const auto& [key, e] : entries_) out.push_back(e);
  return out;
}

std::vector<Entry> SuppressionList::list(std::string_view after, std::size_t limit) const {
  std::vector<Entry> out;
  std::shared_lock lock(mu_);
  for (auto it = entries_.upper_bound(after); it != entries_.end() && out.size() < limit; ++it)
    out.push_back(it->second);
  return out;
}

std::optional<Entry> SuppressionList::get(std::string_view address) const {
  std::shared_lock lock(mu_);
  auto it = entries_.find(normalize(address));
  if (it == entries_.end()) return std::nullopt;
  return it->second;
}

std::size_t SuppressionList::size() const {
  std::shared_lock lock(mu_);
  return entries_.size();
}

}  // namespace mailgate::suppression
