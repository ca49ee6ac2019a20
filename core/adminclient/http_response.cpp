// adminclient/http_response: see http_response.hpp.
#include "adminclient/http_response.hpp"

#include <algorithm>
#include <cctype>

#include "text/ascii.hpp"

namespace mailgate::adminclient {
namespace {

using text::hex_value;
using text::iequals;
using text::trim;

bool is_digit(char c) { return c >= '0' && c <= '9'; }

bool is_token_char(char c) {
  if (std::isalnum(static_cast<unsigned char>(c))) return true;
  return std::string_view("!#$%&'*+-.^_`|~").find(c) != std::string_view::npos;
}

}  // namespace

std::optional<std::string> HttpResponse::header(std::string_view name) const {
  for (const auto& [n, v] : headers)
    if (iequals(n, name)) return v;
  return std::nullopt;
}

ResponseParser::ResponseParser(std::size_t max_size, bool head_request)
    : max_size_(max_size), head_request_(head_request) {}

ResponseParser::Status ResponseParser::fail(std::string why) {
  status_ = Status::Error;
  error_ = std::move(why);
  buf_.clear();
  pos_ = 0;
  return status_;
}

ResponseParser::Status ResponseParser::feed(std::string_view bytes) {
  if (status_ != Status::NeedMore) return status_;
  received_ += bytes.size();
  if (received_ > max_size_)
    return fail("the response is larger than " + std::to_string(max_size_) + " bytes");
  buf_.append(bytes);
  run();
  if (status_ == Status::NeedMore) {
    // Drop what was consumed so buf_ holds one partial line or chunk at most.
    buf_.erase(0, pos_);
    pos_ = 0;
  }
  return status_;
}

ResponseParser::Status ResponseParser::finish() {
  if (status_ != Status::NeedMore) return status_;
  if (phase_ == Phase::UntilClose) {
    phase_ = Phase::Done;
    status_ = Status::Done;
    return status_;
  }
  if (phase_ == Phase::Head && !saw_status_line_ && buf_.size() == pos_)
    return fail("the server closed the connection without a response");
  return fail("the server closed the connection before the response was complete");
}

std::optional<std::string_view> ResponseParser::next_line() {
  const auto nl = buf_.find('\n', pos_);
  if (nl == std::string::npos) return std::nullopt;
  std::string_view line(buf_.data() + pos_, nl - pos_);
  if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
  pos_ = nl + 1;
  return line;
}

void ResponseParser::take_body(std::size_t n) {
  response_.body.append(buf_, pos_, n);
  pos_ += n;
}

bool ResponseParser::take_remaining() {
  const auto n = std::min(remaining_, buf_.size() - pos_);
  take_body(n);
  remaining_ -= n;
  return remaining_ == 0;
}

ResponseParser::Status ResponseParser::run() {
  while (status_ == Status::NeedMore) {
    switch (phase_) {
      case Phase::Head:
      case Phase::Trailers: {
        const auto before = pos_;
        auto line = next_line();
        if (!line) {
          if (head_size_ + (buf_.size() - pos_) > kMaxResponseHead)
            return fail("the response head is larger than " + std::to_string(kMaxResponseHead) +
                        " bytes");
          return status_;
        }
        head_size_ += pos_ - before;
        if (head_size_ > kMaxResponseHead)
          return fail("the response head is larger than " + std::to_string(kMaxResponseHead) +
                      " bytes");
        if (phase_ == Phase::Trailers) {
          if (line->empty()) {
            phase_ = Phase::Done;
            status_ = Status::Done;
          }
          break;  // trailer fields are ignored
        }
        if (line->empty() && saw_status_line_) {
          if (!end_of_head()) return status_;
        } else if (!head_line(*line)) {
          return status_;
        }
        break;
      }
      case Phase::Fixed:
        if (!take_remaining()) return status_;
        phase_ = Phase::Done;
        status_ = Status::Done;
        break;
      case Phase::ChunkSize: {
        auto line = next_line();
        if (!line) {
          if (buf_.size() - pos_ > 4096) return fail("chunk size line too long");
          return status_;
        }
        std::size_t size = 0, digits = 0;
        for (char c : *line) {
          const int v = hex_value(c);
          if (v < 0) break;
          if (++digits > 15) return fail("chunk size too large");
          size = size * 16 + static_cast<std::size_t>(v);
        }
        if (digits == 0) return fail("bad chunk size line");
        const auto rest = trim(line->substr(digits));
        if (!rest.empty() && rest.front() != ';') return fail("bad chunk size line");
        if (size == 0) {
          phase_ = Phase::Trailers;
          head_size_ = 0;
        } else {
          if (response_.body.size() + size > max_size_)
            return fail("the response is larger than " + std::to_string(max_size_) + " bytes");
          remaining_ = size;
          phase_ = Phase::ChunkData;
        }
        break;
      }
      case Phase::ChunkData:
        if (!take_remaining()) return status_;
        phase_ = Phase::ChunkEnd;
        break;
      case Phase::ChunkEnd: {
        auto line = next_line();
        if (!line) {
          if (buf_.size() - pos_ > 2) return fail("chunk data not followed by CRLF");
          return status_;
        }
        if (!line->empty()) return fail("chunk data not followed by CRLF");
        phase_ = Phase::ChunkSize;
        break;
      }
      case Phase::UntilClose:
        take_body(buf_.size() - pos_);
        return status_;
      case Phase::Done:
        status_ = Status::Done;
        break;
    }
  }
  return status_;
}

bool ResponseParser::head_line(std::string_view line) {
  if (!saw_status_line_) {
    // HTTP/1.x SP 3DIGIT [SP reason]
    if (line.size() < 12 || line.substr(0, 7) != "HTTP/1." || !is_digit(line[7]) ||
        line[8] != ' ' || !is_digit(line[9]) || !is_digit(line[10]) || !is_digit(line[11]) ||
        (line.size() > 12 && line[12] != ' ')) {
      std::string shown(line.substr(0, 40));
      for (auto& c : shown)
        if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) c = '?';
      fail("not an HTTP response (got \"" + shown + "\")");
      return false;
    }
    response_.status = (line[9] - '0') * 100 + (line[10] - '0') * 10 + (line[11] - '0');
    response_.reason = line.size() > 13 ? std::string(line.substr(13)) : std::string();
    saw_status_line_ = true;
    return true;
  }
  if (line.front() == ' ' || line.front() == '\t') {
    fail("obsolete header line folding in the response");
    return false;
  }
  const auto colon = line.find(':');
  if (colon == std::string_view::npos || colon == 0 ||
      !std::all_of(line.begin(), line.begin() + colon, is_token_char)) {
    fail("malformed header line in the response");
    return false;
  }
  response_.headers.emplace_back(std::string(line.substr(0, colon)),
                                 std::string(trim(line.substr(colon + 1))));
  return true;
}

bool ResponseParser::end_of_head() {
  const int code = response_.status;
  if (code >= 100 && code < 200) {
    if (code == 101) {
      fail("the server switched protocols (101)");
      return false;
    }
    response_ = HttpResponse{};  // interim response: the real one follows
    saw_status_line_ = false;
    head_size_ = 0;
    return true;
  }
  if (head_request_ || code == 204 || code == 304) {
    phase_ = Phase::Done;
    return true;
  }
  // RFC 9112 §6.3: Transfer-Encoding wins over Content-Length.
  std::string codings;
  bool has_te = false;
  std::optional<std::size_t> length;
  for (const auto& [name, value] : response_.headers) {
    if (iequals(name, "Transfer-Encoding")) {
      has_te = true;
      if (!codings.empty()) codings += ',';
      codings += value;
    } else if (iequals(name, "Content-Length")) {
      std::string_view rest = value;
      while (true) {  // "Content-Length: 5, 5" is tolerated; different values are not
        const auto comma = rest.find(',');
        const auto item = trim(rest.substr(0, comma));
        if (item.empty() || item.size() > 18 || !std::all_of(item.begin(), item.end(), is_digit)) {
          fail("bad Content-Length in the response");
          return false;
        }
        const auto n = std::stoull(std::string(item));
        if (length && *length != n) {
          fail("conflicting Content-Length values in the response");
          return false;
        }
        length = n;
        if (comma == std::string_view::npos) break;
        rest.remove_prefix(comma + 1);
      }
    }
  }
  if (has_te) {
    auto last = trim(std::string_view(codings).substr(codings.rfind(',') + 1));
    phase_ = iequals(last, "chunked") ? Phase::ChunkSize : Phase::UntilClose;
    return true;
  }
  if (length) {
    if (*length > max_size_) {
      fail("the response is larger than " + std::to_string(max_size_) + " bytes");
      return false;
    }
    remaining_ = *length;
    phase_ = remaining_ == 0 ? Phase::Done : Phase::Fixed;
    return true;
  }
  phase_ = Phase::UntilClose;
  return true;
}

}  // namespace mailgate::adminclient
