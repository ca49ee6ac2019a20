// Shared by the fuzz targets: FUZZ_CHECK(cond, detail) aborts with a message
// when an invariant does not hold (libFuzzer then saves the input as a crash
// reproducer), and show() prints bytes readably for that message.
#pragma once

#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>

namespace mailgate::fuzz {

// `s` with non-printable octets as \xHH (and \r, \n as such), quoted.
inline std::string show(std::string_view s) {
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out = "\"";
  for (char ch : s) {
    const auto c = static_cast<unsigned char>(ch);
    if (c == '\r') {
      out += "\\r";
    } else if (c == '\n') {
      out += "\\n";
    } else if (c == '\\' || c == '"') {
      out += '\\';
      out += ch;
    } else if (c < 0x20 || c >= 0x7f) {
      out += "\\x";
      out += kHex[c >> 4];
      out += kHex[c & 15];
    } else {
      out += ch;
    }
  }
  out += '"';
  return out;
}

[[noreturn]] inline void check_failed(const char* file, int line, const char* cond,
                                      const std::string& detail) {
  std::fprintf(stderr, "\n*** FUZZ_CHECK failed: %s\n    at %s:%d\n    %s\n", cond, file, line,
               detail.c_str());
  std::fflush(stderr);
  std::abort();
}

}  // namespace mailgate::fuzz

#define FUZZ_CHECK(cond, detail)                                                      \
  do {                                                                                \
    if (!(cond)) ::mailgate::fuzz::check_failed(__FILE__, __LINE__, #cond, (detail)); \
  } while (0)
