// mime/date: see date.hpp.
#include "mime/date.hpp"

#include <fmt/format.h>
#include <array>
#include <span>

#include "text/ascii.hpp"

namespace mailgate::mime {
namespace {

constexpr std::array<std::string_view, 7> kDayNames = {"Sun", "Mon", "Tue", "Wed",
                                                       "Thu", "Fri", "Sat"};
constexpr std::array<std::string_view, 12> kMonthNames = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                                          "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};

// A cursor over a header value for the date-time check below.
class DateScanner {
 public:
  explicit DateScanner(std::string_view text) : text_(text) {}

  bool at_end() const { return pos_ == text_.size(); }
  bool next_is_letter() const {
    return pos_ < text_.size() && ((text_[pos_] | 0x20) >= 'a' && (text_[pos_] | 0x20) <= 'z');
  }
  // Skips spaces and tabs; true when there was at least one.
  bool skip_whitespace() {
    const std::size_t start = pos_;
    while (pos_ < text_.size() && (text_[pos_] == ' ' || text_[pos_] == '\t')) ++pos_;
    return pos_ > start;
  }
  bool take(char c) {
    if (pos_ >= text_.size() || text_[pos_] != c) return false;
    ++pos_;
    return true;
  }
  // Index in `names` of the three-letter name here (case-insensitive), -1 if none.
  int take_name(std::span<const std::string_view> names) {
    if (text_.size() - pos_ < 3) return -1;
    const std::string_view word = text_.substr(pos_, 3);
    for (std::size_t i = 0; i < names.size(); ++i) {
      if (text::iequals(names[i], word)) {
        pos_ += 3;
        return static_cast<int>(i);
      }
    }
    return -1;
  }
  // min_digits..max_digits decimal digits; -1 if fewer.
  long take_number(std::size_t min_digits, std::size_t max_digits) {
    std::size_t digits = 0;
    long value = 0;
    while (pos_ < text_.size() && digits < max_digits && text_[pos_] >= '0' && text_[pos_] <= '9') {
      value = value * 10 + (text_[pos_++] - '0');
      ++digits;
    }
    return digits >= min_digits ? value : -1;
  }

 private:
  std::string_view text_;
  std::size_t pos_ = 0;
};

}  // namespace

std::string rfc5322_date(std::chrono::sys_seconds t) {
  using namespace std::chrono;
  const auto day = floor<days>(t);
  const year_month_day date{day};
  const hh_mm_ss time{t - day};
  return fmt::format("{}, {:02} {} {:04} {:02}:{:02}:{:02} +0000",
                     kDayNames[weekday{day}.c_encoding()], static_cast<unsigned>(date.day()),
                     kMonthNames[static_cast<unsigned>(date.month()) - 1],
                     static_cast<int>(date.year()), time.hours().count(), time.minutes().count(),
                     time.seconds().count());
}

bool is_rfc5322_date_time(std::string_view text) {
  DateScanner scan(text);
  scan.skip_whitespace();
  if (scan.next_is_letter()) {
    if (scan.take_name(kDayNames) < 0) return false;
    scan.skip_whitespace();
    if (!scan.take(',')) return false;
    scan.skip_whitespace();
  }
  const long day = scan.take_number(1, 2);
  if (day < 1 || day > 31 || !scan.skip_whitespace()) return false;
  if (scan.take_name(kMonthNames) < 0 || !scan.skip_whitespace()) return false;
  if (scan.take_number(4, 9) < 1900 || !scan.skip_whitespace()) return false;
  const long hour = scan.take_number(2, 2);
  if (hour < 0 || hour > 23 || !scan.take(':')) return false;
  const long minute = scan.take_number(2, 2);
  if (minute < 0 || minute > 59) return false;
  if (scan.take(':')) {
    const long second = scan.take_number(2, 2);
    if (second < 0 || second > 60) return false;  // 60: leap second
  }
  if (!scan.skip_whitespace() || !(scan.take('+') || scan.take('-'))) return false;
  const long zone = scan.take_number(4, 4);
  if (zone < 0 || zone % 100 > 59) return false;
  scan.skip_whitespace();
  return scan.at_end();
}

}  // namespace mailgate::mime
