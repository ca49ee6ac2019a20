// Tests of adminclient/table and adminclient/render: column alignment (left
// text, right numbers, UTF-8 widths, no trailing spaces), sanitizing of
// server text, and the human views of each API answer.
#include "adminclient/table.hpp"

#include <gtest/gtest.h>

#include "adminclient/render.hpp"

namespace mailgate::adminclient {
namespace {

TEST(Table, AlignsColumns) {
  Table t({"NAME", "COUNT", "NOTE"}, {Table::Align::Left, Table::Align::Right});
  t.add_row({"gmail.com", "3", "x"});
  t.add_row({"a.io", "1234", ""});
  EXPECT_EQ(t.render(),
            "NAME       COUNT  NOTE\n"
            "gmail.com      3  x\n"
            "a.io        1234\n");
  EXPECT_EQ(t.rows(), 2u);
}

TEST(Table, HeaderOnlyAndShortRows) {
  Table t({"A", "B"});
  EXPECT_EQ(t.render(), "A  B\n");
  t.add_row({"x"});
  t.add_row({"y", "z", "dropped"});
  EXPECT_EQ(t.render(), "A  B\nx\ny  z\n");
}

TEST(Table, WidthCountsCodePoints) {
  Table t({"ADDRESS", "N"});
  t.add_row(
      {"j\xc3\xb6rg@b\xc3\xbc"
       "cher.de",
       "1"});
  t.add_row({"ab", "2"});
  EXPECT_EQ(t.render(),
            "ADDRESS         N\n"
            "j\xc3\xb6rg@b\xc3\xbc"
            "cher.de  1\n"
            "ab              2\n");
  EXPECT_EQ(display_width("j\xc3\xb6rg"), 4u);
  EXPECT_EQ(display_width("\xe2\x82\xac"), 1u);
}

TEST(Table, SanitizesControlCharacters) {
  EXPECT_EQ(sanitize("a\x1b[31mred\r\nx\ty\x7f"), "a?[31mred??x?y?");
  EXPECT_EQ(sanitize("csi\xc2\x9b"
                     "2J"),
            "csi?2J");
  EXPECT_EQ(sanitize("\xc3\xa9t\xc3\xa9"), "\xc3\xa9t\xc3\xa9");  // é is kept
  Table t({"A", "B"});
  t.add_row({"line\nbreak", "b"});
  EXPECT_EQ(t.render(), "A           B\nline?break  b\n");
}

TEST(Render, FormatAge) {
  EXPECT_EQ(format_age(0), "0s");
  EXPECT_EQ(format_age(12.5), "12s");
  EXPECT_EQ(format_age(59.9), "59s");
  EXPECT_EQ(format_age(60), "1m00s");
  EXPECT_EQ(format_age(303), "5m03s");
  EXPECT_EQ(format_age(7500), "2h05m");
  EXPECT_EQ(format_age(3 * 86400 + 4 * 3600 + 59), "3d04h");
  EXPECT_EQ(format_age(-1), "-");
  EXPECT_EQ(format_age(std::nan("")), "-");
}

TEST(Render, Cell) {
  EXPECT_EQ(cell(Json("x")), "x");
  EXPECT_EQ(cell(Json(42)), "42");
  EXPECT_EQ(cell(Json(-3)), "-3");
  EXPECT_EQ(cell(Json(3.0)), "3");
  EXPECT_EQ(cell(Json(2.25)), "2.2");
  EXPECT_EQ(cell(Json(true)), "yes");
  EXPECT_EQ(cell(Json(false)), "no");
  EXPECT_EQ(cell(Json()), "-");
  EXPECT_EQ(cell(Json::array({1, 2})), "[1,2]");
}

TEST(Render, QueueSummary) {
  auto q = Json::parse(R"({"destinations":[
      {"name":"gmail.com","scheduled":3,"ready":10,"in_flight":2,"connections":2,
       "suspended":false,"oldest_age_seconds":12.5},
      {"name":"[127.0.0.1]:2525","scheduled":0,"ready":1234,"in_flight":0,"connections":0,
       "suspended":true,"oldest_age_seconds":4000}],
    "totals":{"scheduled":3,"ready":1244,"in_flight":2,"destinations":2}})");
  EXPECT_EQ(render_queue_summary(q),
            "DESTINATION       SCHEDULED  READY  IN-FLIGHT  CONN  SUSPENDED  OLDEST\n"
            "gmail.com                 3     10          2     2  no            12s\n"
            "[127.0.0.1]:2525          0   1234          0     0  yes         1h06m\n"
            "2 destinations: 3 scheduled, 1244 ready, 2 in flight\n");
}

TEST(Render, EmptyQueueSummary) {
  auto q = Json::parse(
      R"({"destinations":[],"totals":{"scheduled":0,"ready":0,"in_flight":0,"destinations":0}})");
  EXPECT_EQ(render_queue_summary(q),
            "DESTINATION  SCHEDULED  READY  IN-FLIGHT  CONN  SUSPENDED  OLDEST\n"
            "0 destinations: 0 scheduled, 0 ready, 0 in flight\n");
}

TEST(Render, MissingFieldsShowAsDash) {
  auto q = Json::parse(R"({"destinations":[{"name":"a.io","ready":"odd","oldest_age_seconds":null}],
                           "totals":{"destinations":1}})");
  EXPECT_EQ(render_queue_summary(q),
            "DESTINATION  SCHEDULED  READY  IN-FLIGHT  CONN  SUSPENDED  OLDEST\n"
            "a.io                 -    odd          -     -  -               -\n"
            "1 destination: - scheduled, - ready, - in flight\n");
  EXPECT_EQ(render_queue_summary(Json::array()),
            "DESTINATION  SCHEDULED  READY  IN-FLIGHT  CONN  SUSPENDED  OLDEST\n");
}

TEST(Render, MessageList) {
  auto m = Json::parse(R"([
    {"id":"0123456789abcdef0123456789abcdef","destination":"gmail.com","sender":"a@b.example",
     "size":1234,"received":"2026-11-28T17:00:00.000Z","attempts":2,
     "next_attempt":"2026-11-28T17:05:00.000Z",
     "recipients":[{"address":"x@gmail.com","state":"pending","last_reply":"451 4.2.0 later"},
                   {"address":"y@gmail.com","state":"pending","last_reply":null},
                   {"address":"z@gmail.com","state":"pending","last_reply":null}]},
    {"id":"fedcba9876543210fedcba9876543210","destination":"a.io","sender":"",
     "attempts":0,"next_attempt":null,"recipients":[{"address":"q@a.io","state":"pending"}]}])");
  EXPECT_EQ(render_message_list(m),
            "ID                                DESTINATION  SENDER       RECIPIENTS      "
            "ATTEMPTS  NEXT\n"
            "0123456789abcdef0123456789abcdef  gmail.com    a@b.example  x@gmail.com +2         "
            "2  2026-11-28T17:05:00.000Z\n"
            "fedcba9876543210fedcba9876543210  a.io         <>           q@a.io                 "
            "0  -\n");
}

TEST(Render, Message) {
  auto m = Json::parse(R"({"id":"0123456789abcdef0123456789abcdef","sender":"a@b.example",
    "size":1234,"received":"2026-11-28T17:00:00.000Z","meta":{"tenant":"acme","n":2},
    "destinations":[{"name":"gmail.com","attempts":2,"next_attempt":"2026-11-28T17:05:00.000Z",
      "recipients":[{"address":"x@gmail.com","state":"pending","last_reply":"451 4.2.0 later"},
                    {"address":"longer.name@gmail.com","state":"delivered",
                     "last_reply":"250 2.0.0 ok"}]}]})");
  EXPECT_EQ(render_message(m),
            "id        0123456789abcdef0123456789abcdef\n"
            "sender    a@b.example\n"
            "size      1234\n"
            "received  2026-11-28T17:00:00.000Z\n"
            "meta      tenant=acme, n=2\n"
            "\n"
            "destination gmail.com: 2 attempt(s), next 2026-11-28T17:05:00.000Z\n"
            "  RECIPIENT              STATE      LAST REPLY\n"
            "  x@gmail.com            pending    451 4.2.0 later\n"
            "  longer.name@gmail.com  delivered  250 2.0.0 ok\n");
}

TEST(Render, SuppressionList) {
  auto e = Json::parse(R"([
    {"address":"x@y.example","reason":"550 5.1.1 no such user","added":"2026-11-28T17:00:00.000Z"},
    {"address":"longer@y.example","reason":null,"added":"2026-11-28T18:00:00.000Z"}])");
  EXPECT_EQ(render_suppression_list(e),
            "ADDRESS           ADDED                     REASON\n"
            "x@y.example       2026-11-28T17:00:00.000Z  550 5.1.1 no such user\n"
            "longer@y.example  2026-11-28T18:00:00.000Z  -\n");
}

}  // namespace
}  // namespace mailgate::adminclient
