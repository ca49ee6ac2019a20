// config/reference: renders documentation rows as a Markdown table.
#include "config/reference.hpp"

namespace mailgate::config {
namespace {

std::string cell(const std::string& text) {
  std::string out;
  for (char c : text) {
    if (c == '|') out += '\\';
    out += c == '\n' ? ' ' : c;
  }
  return out;
}

}  // namespace

std::string markdown_table(const std::vector<DocRow>& rows) {
  std::string out = "| key | type | default | meaning |\n|---|---|---|---|\n";
  for (const auto& r : rows) {
    out += "| `" + cell(r.key) + "` | " + cell(r.type) + " | " + cell(r.value) + " | " +
           cell(r.doc) + " |\n";
  }
  return out;
}

}  // namespace mailgate::config
