// Tests of mime/address_list: RFC 5322 address lists, including the quoting
// tricks a regex-based reader falls for, and rejection of anything that is
// not an address list.
#include "mime/address_list.hpp"

#include <gtest/gtest.h>

namespace mailgate::mime {
namespace {

std::vector<std::string> domains(std::string_view v) {
  auto r = parse_address_list(v);
  if (!r) return {"<invalid>"};
  std::vector<std::string> out;
  for (const auto& m : *r) out.push_back(m.domain);
  return out;
}

TEST(AddressList, QuotedDisplayNamesCannotHideTheRealAddress) {
  auto r = parse_address_list(R"("a\" <ok@tenant.example> \"b" <ceo@victim.example>)");
  ASSERT_TRUE(r);
  ASSERT_EQ(r->size(), 1u);
  EXPECT_EQ((*r)[0].domain, "victim.example");
  EXPECT_EQ((*r)[0].local, "ceo");
  EXPECT_EQ((*r)[0].display, R"(a" <ok@tenant.example> "b)");
  EXPECT_EQ(domains(R"("x@ok.example" <ceo@victim.example>)"),
            std::vector<std::string>{"victim.example"});
  EXPECT_EQ(domains("(ok@tenant.example) ceo@victim.example"),
            std::vector<std::string>{"victim.example"});
  EXPECT_EQ(domains("ceo@victim.example (via ok@tenant.example)"),
            std::vector<std::string>{"victim.example"});
  EXPECT_EQ(domains(R"("ok@tenant.example"@victim.example)"),
            std::vector<std::string>{"victim.example"});
}

TEST(AddressList, CommonForms) {
  EXPECT_EQ(domains("a@x.example"), std::vector<std::string>{"x.example"});
  EXPECT_EQ(domains("A Name <a@x.example>, b@y.example"),
            (std::vector<std::string>{"x.example", "y.example"}));
  EXPECT_EQ(domains("John Q. Public <jqp@x.example>"), std::vector<std::string>{"x.example"});
  EXPECT_EQ(parse_address_list("John Q. Public <jqp@x.example>")->at(0).display,
            "John Q. Public");
  EXPECT_EQ(domains("team: a@x.example, \"B\" <b@y.example>;, c@z.example"),
            (std::vector<std::string>{"x.example", "y.example", "z.example"}));
  EXPECT_EQ(domains("undisclosed-recipients:;"), std::vector<std::string>{});
  EXPECT_EQ(domains("a@[192.0.2.1]"), std::vector<std::string>{"[192.0.2.1]"});
  EXPECT_EQ(domains("\"a b\"@x.example"), std::vector<std::string>{"x.example"});
  EXPECT_EQ(parse_address_list("\"a b\"@x.example")->at(0).local, "a b");
  EXPECT_EQ(domains("a@x.example,\r\n\tb@y.example"),
            (std::vector<std::string>{"x.example", "y.example"}));
  EXPECT_EQ(domains("Ünïcödé <ü@bücher.example>"), std::vector<std::string>{"bücher.example"});
  EXPECT_EQ(domains("a@x.example ((nested) comment)"), std::vector<std::string>{"x.example"});
}

TEST(AddressList, RejectsWhatIsNotAnAddressList) {
  for (const char* bad : {"", "   ", "no at sign", "a@", "@x.example", "<a@x.example",
                          "a@x.example>", "\"unterminated <a@x.example>", "(unclosed a@x.example",
                          "a@x.example b@y.example", "Name <a@x.example> junk",
                          "<@route.example:a@x.example>", "a@x..example", "a@[1.2.3.4",
                          "team: a@x.example", "a@x.example; b@y.example", "a.@x.example"}) {
    SCOPED_TRACE(bad);
    const auto r = parse_address_list(bad);
    EXPECT_TRUE(!r || r->empty()) << bad;
    if (std::string_view(bad).find('@') != std::string_view::npos) {
      EXPECT_FALSE(r) << bad;
    }
  }
}

TEST(AddressList, BoundedWork) {
  std::string deep(1000, '(');
  EXPECT_FALSE(parse_address_list(deep + "a@x.example"));
  std::string many;
  for (int i = 0; i < 1001; ++i) many += "a@x.example,";
  EXPECT_FALSE(parse_address_list(many));
  EXPECT_FALSE(parse_address_list(std::string(70 * 1024, 'a')));
  std::string groups;
  for (int i = 0; i < 20000; ++i) groups += "g:";
  EXPECT_FALSE(parse_address_list(groups + "a@x.example" + std::string(20000, ';')));
}

}  // namespace
}  // namespace mailgate::mime
