// feedback/arf_parser: parse_arf() (see reports.hpp), RFC 5965 §2–3.
#include "feedback/report_mime.hpp"
#include "feedback/reports.hpp"
#include "mime/address_list.hpp"
#include "text/ascii.hpp"

namespace mailgate::feedback {

bool parse_arf(std::string_view message, ComplaintReport& out, std::string& why) {
  out = {};
  const auto w = walk(message);
  const auto rt = w.top.params.find("report-type");
  if (!w.top.is("multipart", "report") || rt == w.top.params.end() ||
      !text::iequals(rt->second, "feedback-report")) {
    why = "not multipart/report; report-type=feedback-report";
    return false;
  }
  const Leaf* report = nullptr;
  const Leaf* original = nullptr;
  for (const auto& l : w.leaves) {
    if (!report && l.type.is("message", "feedback-report")) report = &l;
    if (!original && (l.type.is("message", "rfc822") || l.type.is("text", "rfc822-headers") ||
                      l.type.is("message", "global") || l.type.is("message", "global-headers")))
      original = &l;
  }
  if (!report) {
    why = "no message/feedback-report part";
    return false;
  }
  auto body = decoded_body(report->headers, report->body);
  if (!body) {
    why = "undecodable feedback-report part";
    return false;
  }
  auto groups = field_groups(*body);
  Fields f;
  for (auto& g : groups) f.insert(f.end(), g.begin(), g.end());  // one group; tolerate blank lines
  auto type = field(f, "Feedback-Type");
  if (!type || text::trim(*type).empty()) {
    why = "no Feedback-Type";
    return false;
  }
  out.feedback_type = one_line(text::to_lower(text::trim(*type)), 64);
  out.user_agent = one_line(field(f, "User-Agent").value_or(""), 256);
  out.original_mail_from = report_address(field(f, "Original-Mail-From").value_or(""));
  for (const auto& v : fields_named(f, "Original-Rcpt-To")) {
    auto a = report_address(v);
    if (!a.empty() && out.original_rcpt_to.size() < 100) out.original_rcpt_to.push_back(a);
  }
  out.reported_domain = one_line(field(f, "Reported-Domain").value_or(""), 256);
  out.source_ip = one_line(field(f, "Source-IP").value_or(""), 64);
  if (original) {
    if (auto ob = decoded_body(original->headers, original->body)) {
      auto headers = read_fields(split_entity(*ob).headers);
      if (auto id = field(headers, "Message-ID"))
        out.original_message_id = normalize_message_id(*id);
      if (auto to = field(headers, "To")) {
        if (auto list = mime::parse_address_list(*to))
          for (const auto& m : *list)
            if (out.returned_to.size() < 100) {
              auto a = report_address(m.local + "@" + m.domain);
              if (!a.empty()) out.returned_to.push_back(a);
            }
      }
    }
  }
  return true;
}

}  // namespace mailgate::feedback
