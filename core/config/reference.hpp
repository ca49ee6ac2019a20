// config/reference: the Markdown reference of declared config keys. Each
// Section documents itself as rows (key, type, default, doc line); this
// renders them. Promises: one row per key in declaration order, nested keys
// dotted ("delivery.retry.first"), keys of an array of tables as "KEY[].sub";
// cells are escaped for Markdown tables (a "|" never splits a cell).
#pragma once

#include <string>
#include <vector>

namespace mailgate::config {

struct DocRow {
  std::string key;    // "delivery.retry.first"
  std::string type;   // "duration > 0", "integer 1–65535", "`off` | `optional`"
  std::string value;  // the default, Markdown ("`5m`", "the machine's host name")
  std::string doc;    // one line
};

// "| key | type | default | meaning |" and one line per row.
std::string markdown_table(const std::vector<DocRow>& rows);

}  // namespace mailgate::config
