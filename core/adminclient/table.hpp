// adminclient/table: plain-text tables for the admin CLI's human output.
// Promises: one header line then one line per row, columns separated by two
// spaces and padded to the widest cell (width counted in UTF-8 code points),
// right-aligned where asked (numbers), no trailing spaces; cells are
// sanitized, so control characters from the server (escape sequences, line
// breaks) print as '?' and cannot garble the terminal or split a row.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

namespace mailgate::adminclient {

class Table {
 public:
  enum class Align { Left, Right };

  explicit Table(std::vector<std::string> headers, std::vector<Align> align = {});

  // Missing cells are empty, extra cells are dropped.
  void add_row(std::vector<std::string> cells);
  std::size_t rows() const { return rows_.size(); }

  // Every line ends in '\n'.
  std::string render() const;

 private:
  std::vector<std::string> headers_;
  std::vector<Align> align_;
  std::vector<std::vector<std::string>> rows_;
};

// `text` with C0/C1 control characters and DEL replaced by '?'.
std::string sanitize(std::string_view text);
// The number of UTF-8 code points in `text` (its width on most terminals).
std::size_t display_width(std::string_view text);

}  // namespace mailgate::adminclient
