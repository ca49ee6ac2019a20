// spool/idempotency_rows: the rows that keep the first answer to an HTTP
// request sent with an Idempotency-Key (core/idempotency encodes them):
// key "idem/" + the client's key in the default family (beside the counter
// floor and the suspensions; no family of their own).
// Promises: the key layout stays here; reads block (never on a worker).
#pragma once

#include <functional>
#include <optional>
#include <string>
#include <string_view>

namespace mailgate::spool {

class Store;
class WriteSet;

inline constexpr std::string_view kIdempotencyPrefix = "idem/";

void put_idempotency_row(WriteSet& set, std::string_view key, std::string_view value);
void remove_idempotency_row(WriteSet& set, std::string_view key);
// The row of `key`, or nullopt (absent or unreadable).
std::optional<std::string> read_idempotency_row(const Store& store, std::string_view key);
// Every row (key without the prefix, value), in key order.
void for_each_idempotency_row(
    const Store& store,
    const std::function<void(std::string_view key, std::string_view value)>& visit);

}  // namespace mailgate::spool
