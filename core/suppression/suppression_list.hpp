// suppression/suppression_list: the process-wide suppression list (addresses
// that must not be mailed again, e.g. after a 5.1.1 "no such user"). Kept in
// memory for lookups at RCPT time (no spool read on a worker) and written
// through to the spool's `suppress` column family so it survives restarts.
// Promises: thread-safe (shared lock for lookups); addresses compare
// case-insensitively; add/remove are visible at once to every worker and
// persisted by the spool writer (unsynced: losing the last entries in a crash
// costs a retry, not mail); list() pages in address order with a cursor.
#pragma once

#include <cstdint>
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

 private:
  spool::Store& store_;
  spool::SpoolWriter& writer_;
  mutable std::shared_mutex mu_;
  std::map<std::string, Entry, std::less<>> entries_;
};

}  // namespace mailgate::suppression
