// mime/date: RFC 5322 §3.3 date-time, the one place mailgate writes and
// checks it (Date fields, Received trace fields, DSN Arrival-Date and friends).
// Promises: rfc5322_date() writes UTC in the form "Sat, 28 Nov 2026 14:28:09
// +0000" (two-digit day, four-digit year for years 1..9999), with the
// sub-second part dropped by rounding down, so a time before 1970 gives the
// second it lies in; pure, no libc time zone state. is_rfc5322_date_time()
// accepts the current syntax only.
#pragma once

#include <chrono>
#include <string>
#include <string_view>

namespace mailgate::mime {

std::string rfc5322_date(std::chrono::sys_seconds t);

// A finer time (system_clock::now(), milliseconds since the epoch as the spool
// keeps them) is rounded down to its second.
template <class Duration>
std::string rfc5322_date(std::chrono::sys_time<Duration> t) {
  return rfc5322_date(std::chrono::floor<std::chrono::seconds>(t));
}

// RFC 5322 §3.3 date-time, current syntax only (numeric zone, four-digit year,
// no comments): "[Sat,] 28 Nov 2026 17:04[:00] +0000"; names compare
// case-insensitively, spaces and tabs may surround the value.
bool is_rfc5322_date_time(std::string_view text);

}  // namespace mailgate::mime
