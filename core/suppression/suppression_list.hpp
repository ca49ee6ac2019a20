// suppression/suppression_list: the process-wide suppression list (addresses
// that must not be mailed again, e.g. after a 5.1.1 "no such user"). Kept in
// memory for lookups at RCPT time (no spool read on a worker) and written
// through to the spool's `suppress` column family so it survives restarts.
// Promises: thread-safe (shared lock for lookups); addresses compare
// case-insensitively; add/remove are visible at once to every worker and
// persisted by the spool writer (unsynced: losing the last entries in a crash
// costs a retry, not mail); list() pages in address order with a cursor.
// In a cluster (issue 16) every add/remove made here is also reported to a
// listener (the cluster's SharedSuppression, which writes it to Redis), and
// apply() takes other nodes' changes without reporting them back; the newer
// change (by its wall clock time) wins.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <shared_mutex>
#include <string>
#include <string_view>
#include <vector>

#include "policy/runtime.hpp"

namespace mailgate::spool {
class Store;
class SpoolWriter;
}  // namespace mailgate::spool

namespace mailgate::suppression {

struct Entry {
  std::string address;
  std::string reason;
  std::int64_t added_ms = 0;
};

// One write to the list: an addition (with its reason) or a removal, at `ms`.
struct Change {
  bool removed = false;
  std::string address;  // normalized
  std::string reason;
  std::int64_t ms = 0;
};

class SuppressionList : public policy::SuppressionStore {
 public:
  // Loads every entry of the column family (call before workers use it).
  SuppressionList(spool::Store& store, spool::SpoolWriter& writer);

  bool has(std::string_view address) const override;
  void add(std::string_view address, std::string_view reason) override;
  bool remove(std::string_view address) override;

  // Up to `limit` entries with address > `after`, in order.
  std::vector<Entry> list(std::string_view after, std::size_t limit) const;
  std::optional<Entry> get(std::string_view address) const;
  std::size_t size() const;

  static std::string normalize(std::string_view address);
  static constexpr std::size_t kMaxAddress = 512, kMaxReason = 512;
  // "" when `c` could be an entry of a list (a change read from another
  // node, through Redis, which anyone may write): a non-empty address
  // without control bytes, already in normalize()'s form, and both within
  // the list's bounds; else why not.
  static std::string check(const Change& c);

  // Called after every local add/remove, on the caller's thread (set once,
  // before workers use the list).
  void set_listener(std::function<void(const Change&)> listener) {
    listener_ = std::move(listener);
  }
  // A change made elsewhere: applied (memory and spool) unless the entry
  // here is newer; not reported to the listener. True when it changed the list.
  bool apply(const Change& c);
  // Every entry (the cluster's catch-up), in address order.
  std::vector<Entry> all() const;

 private:
  spool::Store& store_;
  spool::SpoolWriter& writer_;
  mutable std::shared_mutex mu_;
  std::map<std::string, Entry, std::less<>> entries_;
  std::function<void(const Change&)> listener_;
};

}  // namespace mailgate::suppression
