// Fuzz target: smtp/reply_parser (client side: the replies a remote server
// sends). Input: 3 header octets, then the server's byte stream.
//   [0] bits 0-1: max_line (4096, 8, 16, 64); bits 2-3: max_lines (200, 1, 2, 5)
//   [1..2] split point (big-endian, modulo the stream length + 1)
// The stream is parsed as a client does: feed, take() each complete reply,
// stop at the first malformed one (the connection would be dropped).
// Invariants checked:
//  - any fragmentation (one piece, split at the fuzzer's point, one octet at
//    a time) gives the same replies, at the same stream offsets, and the same
//    error / unfinished state at the end;
//  - feed() never consumes more than it is given, makes progress unless a
//    reply is ready, and an error is terminal until take();
//  - a complete reply has a code in 200..599, no control character in its
//    text but HT and the '\n' line separators, and an enhanced code that is
//    well formed and of the reply's class;
//  - format_reply() of a parsed reply parses back to the same code, enhanced
//    code and text (but for one trailing empty line, which format_reply()
//    reads as the end of the text).
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "fuzz_check.hpp"
#include "smtp/reply.hpp"
#include "smtp/reply_parser.hpp"

using mailgate::fuzz::show;
using namespace mailgate;

namespace {

struct Event {
  enum Kind { Reply, Error, Unfinished } kind;
  std::size_t offset;  // stream offset after the reply (Reply only)
  smtp::Reply reply;
  bool operator==(const Event& o) const {
    return kind == o.kind && (kind != Reply || offset == o.offset) && reply.code == o.reply.code &&
           reply.enhanced == o.reply.enhanced && reply.text == o.reply.text;
  }
  std::string describe() const {
    static constexpr const char* kNames[] = {"reply", "error", "unfinished"};
    return std::string(kNames[kind]) + "@" + std::to_string(offset) + " " +
           std::to_string(reply.code) + " " + show(reply.enhanced) + " " + show(reply.text);
  }
};

std::string describe(const std::vector<Event>& v) {
  std::string s;
  for (const auto& e : v) s += "\n      " + e.describe();
  return s;
}

void check_reply(const smtp::Reply& r, std::size_t max_line, std::size_t max_lines) {
  FUZZ_CHECK(r.code >= 200 && r.code <= 599, "code " + std::to_string(r.code));
  for (char ch : r.text) {
    const auto c = static_cast<unsigned char>(ch);
    FUZZ_CHECK(!((c < 0x20 && c != '\t' && c != '\n') || c == 0x7f),
               "control character in reply text " + show(r.text));
  }
  if (!r.enhanced.empty()) {
    FUZZ_CHECK(smtp::enhanced_code_length(r.enhanced) == r.enhanced.size(),
               "malformed enhanced code " + show(r.enhanced));
    const char cls = r.code / 100 == 3 ? '2' : static_cast<char>('0' + r.code / 100);
    FUZZ_CHECK(r.enhanced[0] == cls,
               "enhanced code class " + show(r.enhanced) + " for " + std::to_string(r.code));
  }
  // format -> parse -> format is stable. Formatting puts the enhanced code on
  // every line, so the re-parse allows for the longer lines.
  const std::string wire = smtp::format_reply(r);
  smtp::ReplyParser p(max_line + 16, max_lines);
  const auto n = p.feed(wire);
  FUZZ_CHECK(p.done() && n == wire.size(), "formatted reply does not parse: " + show(wire));
  const auto back = p.take();
  // format_reply() takes one trailing '\n' of the text as the end of the
  // text, not as an empty last line; everything else comes back as it was.
  std::string_view want = r.text;
  if (!want.empty() && want.back() == '\n') want.remove_suffix(1);
  FUZZ_CHECK(back.code == r.code && back.enhanced == r.enhanced && back.text == want,
             "format/parse round trip differs: " + show(r.text) + " -> " + show(wire) + " -> " +
                 show(back.text));
}

std::vector<Event> parse(std::string_view stream, std::vector<std::size_t> cuts,
                         std::size_t max_line, std::size_t max_lines) {
  cuts.push_back(stream.size());
  std::vector<Event> events;
  smtp::ReplyParser p(max_line, max_lines);
  std::size_t pos = 0;
  for (std::size_t cut : cuts) {
    while (pos < cut) {
      const std::size_t n = p.feed(stream.substr(pos, cut - pos));
      FUZZ_CHECK(n <= cut - pos, "feed consumed more than given");
      pos += n;
      if (p.error()) {
        FUZZ_CHECK(p.feed("250 x\r\n") == 0 && p.error() && !p.done(), "error is not terminal");
        events.push_back({Event::Error, 0, p.take()});
        return events;
      }
      if (p.done()) {
        FUZZ_CHECK(p.feed("250 x\r\n") == 0, "feed consumed after a complete reply");
        auto r = p.take();
        check_reply(r, max_line, max_lines);
        events.push_back({Event::Reply, pos, std::move(r)});
        continue;
      }
      FUZZ_CHECK(pos == cut, "feed stopped early without a reply or an error");
    }
  }
  events.push_back({Event::Unfinished, 0, p.take()});
  return events;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size < 3) return 0;
  static constexpr std::size_t kMaxLine[4] = {4096, 8, 16, 64};
  static constexpr std::size_t kMaxLines[4] = {200, 1, 2, 5};
  const std::size_t max_line = kMaxLine[data[0] & 3];
  const std::size_t max_lines = kMaxLines[(data[0] >> 2) & 3];
  const std::string stream(reinterpret_cast<const char*>(data) + 3, size - 3);
  const std::size_t split = ((std::size_t{data[1]} << 8) | data[2]) % (stream.size() + 1);

  const auto whole = parse(stream, {}, max_line, max_lines);
  const auto halves = parse(stream, {split}, max_line, max_lines);
  FUZZ_CHECK(halves == whole, "split at " + std::to_string(split) + " of " + show(stream) +
                                  " differs:\n    one piece:" + describe(whole) +
                                  "\n    split:" + describe(halves));
  if (stream.size() <= 2048) {
    std::vector<std::size_t> every;
    for (std::size_t i = 1; i < stream.size(); ++i) every.push_back(i);
    const auto octets = parse(stream, every, max_line, max_lines);
    FUZZ_CHECK(octets == whole, "octet-at-a-time parse of " + show(stream) +
                                    " differs:\n    one piece:" + describe(whole) +
                                    "\n    octets:" + describe(octets));
  }
  return 0;
}
