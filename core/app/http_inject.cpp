// app/http_inject: POST /api/v1/inject. The message enters exactly as SMTP
// mail does: the handler speaks SMTP to the gateway's internal loopback
// listener (a session on a worker), introducing itself with the per-process
// XMAILGATE secret and the HTTP client's address. So the same hooks
// (connect is skipped; mail_from, rcpt_to, message, route), limits, Received
// header, spool sync and delivery-log events apply, with no second copy of
// the transaction logic, and the reply comes only after the spool sync.
// Promises: every socket operation has a deadline; bad JSON, missing fields
// and unbuildable structured messages are 400s; no accepted recipient is 422
// with the per-recipient replies; a temporary refusal is 503.
#include <algorithm>
#include <asio/connect.hpp>
#include <asio/ip/tcp.hpp>
#include <asio/read_until.hpp>
#include <asio/streambuf.hpp>
#include <asio/write.hpp>
#include <chrono>
#include <nlohmann/json.hpp>

#include "app/admin_api.hpp"
#include "http/http_server.hpp"
#include "mime/mime.hpp"
#include "policy/config.hpp"
#include "server/smtp_server.hpp"
#include "smtp/address.hpp"
#include "smtp/dot_stuffer.hpp"
#include "smtp/reply.hpp"

namespace mailgate::app {

namespace {

using asio::ip::tcp;
using nlohmann::json;

struct InjectFailure : std::runtime_error {
  using std::runtime_error::runtime_error;
};

// A blocking SMTP client for the loopback listener, with a socket timeout.
class LoopbackSmtp {
 public:
  explicit LoopbackSmtp(const tcp::endpoint& ep) : socket_(io_) {
    std::error_code ec;
    socket_.connect(ep, ec);
    if (ec) throw InjectFailure("cannot reach the internal SMTP listener: " + ec.message());
    timeval tv{60, 0};  // the spool sync and hooks (hook_timeout) come first
    ::setsockopt(socket_.native_handle(), SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    ::setsockopt(socket_.native_handle(), SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
  }

  smtp::Reply read_reply() {
    smtp::Reply r;
    for (;;) {
      std::error_code ec;
      const auto n = asio::read_until(socket_, in_, "\r\n", ec);
      if (ec) throw InjectFailure("internal SMTP session: " + ec.message());
      std::string line(asio::buffers_begin(in_.data()), asio::buffers_begin(in_.data()) + n - 2);
      in_.consume(n);
      if (line.size() < 4) throw InjectFailure("internal SMTP session: bad reply");
      r.code = std::stoi(line.substr(0, 3));
      std::string text = line.substr(4);
      // "250 2.0.0 text": the enhanced code is the first word when it looks like one.
      if (r.enhanced.empty() && text.size() > 5 && text[1] == '.' && text[0] >= '2' &&
          text[0] <= '5') {
        const auto sp = text.find(' ');
        r.enhanced = text.substr(0, sp);
        text = sp == std::string::npos ? "" : text.substr(sp + 1);
      }
      if (!r.text.empty()) r.text += "\n";
      r.text += text;
      if (line[3] == ' ') return r;
    }
  }

  smtp::Reply command(const std::string& line) {
    send(line + "\r\n");
    return read_reply();
  }

  void send(const std::string& data) {
    std::error_code ec;
    asio::write(socket_, asio::buffer(data), ec);
    if (ec) throw InjectFailure("internal SMTP session: " + ec.message());
  }

 private:
  asio::io_context io_;
  tcp::socket socket_;
  asio::streambuf in_{1 << 20};
};

std::string reply_text(const smtp::Reply& r) {
  return r.enhanced.empty() ? r.text : r.enhanced + " " + r.text;
}

// "a\nb" and "a\r\nb" → "a\r\nb\r\n": RFC 5322 line ends, a final one added.
std::string canonical_lines(const std::string& s) {
  std::string out;
  out.reserve(s.size() + s.size() / 32 + 2);
  for (std::size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '\r' && i + 1 < s.size() && s[i + 1] == '\n') continue;
    if (s[i] == '\n') {
      out += "\r\n";
    } else {
      out.push_back(s[i]);
    }
  }
  if (!out.empty() && !out.ends_with("\r\n")) out += "\r\n";
  return out;
}

http::Response inject(const AdminContext& ctx, const http::Request& req) {
  // ordered_json: extra headers keep the order the client gave them in.
  const auto body = nlohmann::ordered_json::parse(req.body, nullptr, false);
  if (body.is_discarded() || !body.is_object())
    return http::error_response(400, "the body must be a JSON object");
  if (!body.contains("from") || !body["from"].is_string())
    return http::error_response(400, "\"from\" (the envelope sender, a string) is required");
  if (!body.contains("to") || !body["to"].is_array() || body["to"].empty())
    return http::error_response(400, "\"to\" must be a non-empty array of addresses");
  const auto from = body["from"].get<std::string>();
  std::vector<std::string> to;
  for (const auto& t : body["to"]) {
    if (!t.is_string()) return http::error_response(400, "\"to\" must hold strings");
    to.push_back(t.get<std::string>());
  }
  if (to.size() > 10000) return http::error_response(400, "too many recipients");
  if (from.find_first_of("\r\n<>") != std::string::npos)
    return http::error_response(400, "bad address: " + from);
  for (const auto& a : to) {
    if (a.find_first_of("\r\n<>") != std::string::npos || a.empty())
      return http::error_response(400, "bad address: " + a);
  }

  std::string content;
  if (body.contains("content")) {
    if (!body["content"].is_string())
      return http::error_response(400, "\"content\" must be a string (the RFC 5322 message)");
    content = canonical_lines(body["content"].get<std::string>());
  } else {
    mime::StructuredMessage m;
    m.from = body.value("from_header", from);
    m.to = to;
    try {
      m.subject = body.value("subject", std::string());
      m.text = body.value("text", std::string());
      m.html = body.value("html", std::string());
      if (body.contains("headers")) {
        if (!body["headers"].is_object())
          return http::error_response(400, "\"headers\" must be an object of strings");
        for (const auto& [k, v] : body["headers"].items()) {
          if (!v.is_string()) return http::error_response(400, "header values must be strings");
          m.headers.emplace_back(k, v.get<std::string>());
        }
      }
    } catch (const nlohmann::ordered_json::exception&) {
      return http::error_response(400, "subject, text and html must be strings");
    }
    if (m.text.empty() && m.html.empty())
      return http::error_response(400, "give \"content\", or \"text\" and/or \"html\"");
    mime::BuildOptions opts;
    opts.hostname = ctx.config->hostname;
    try {
      content = mime::build_message(m, opts);
    } catch (const mime::BuildError& e) {
      return http::error_response(400, e.what());
    }
  }

  try {
    LoopbackSmtp smtp(ctx.smtp->inject_endpoint());
    auto r = smtp.read_reply();
    if (r.code != 220) return http::error_response(503, "gateway not accepting: " + reply_text(r));
    // Identity first, so the helo hook already sees the HTTP client's address.
    r = smtp.command("XMAILGATE " + ctx.smtp->inject_secret() + " ADDR=" + req.remote_ip);
    if (r.code != 250) throw InjectFailure("internal SMTP session refused XMAILGATE");
    r = smtp.command("EHLO " + ctx.config->hostname);
    if (r.code != 250)
      return http::error_response(r.transient() ? 503 : 422, "EHLO refused: " + reply_text(r));
    std::string params;
    if (smtp::has_non_ascii(content)) params += " BODY=8BITMIME";
    if (smtp::has_non_ascii(from) || std::any_of(to.begin(), to.end(), [](const std::string& a) {
          return smtp::has_non_ascii(a);
        }))
      params += " SMTPUTF8";
    r = smtp.command("MAIL FROM:<" + from + ">" + params);
    if (r.code != 250) {
      json rejected = json::array();
      for (const auto& a : to)
        rejected.push_back({{"recipient", a}, {"code", r.code}, {"text", reply_text(r)}});
      const int status = r.code >= 500 ? 422 : 503;
      return http::json_response(
          status, {{"error", "sender refused: " + std::to_string(r.code) + " " + reply_text(r)},
                   {"id", nullptr},
                   {"accepted", 0},
                   {"rejected", std::move(rejected)}});
    }
    json rejected = json::array();
    std::size_t accepted = 0;
    bool temporary = false;
    for (const auto& a : to) {
      r = smtp.command("RCPT TO:<" + a + ">");
      if (r.code == 250) {
        ++accepted;
      } else {
        temporary = temporary || r.transient();
        rejected.push_back({{"recipient", a}, {"code", r.code}, {"text", reply_text(r)}});
      }
    }
    if (accepted == 0) {
      smtp.command("QUIT");
      return http::json_response(
          temporary ? 503 : 422,
          {{"id", nullptr}, {"accepted", 0}, {"rejected", std::move(rejected)}});
    }
    r = smtp.command("DATA");
    if (r.code != 354) throw InjectFailure("DATA refused: " + reply_text(r));
    std::string wire;
    smtp::DotStuffer stuffer;
    stuffer.feed(content, wire);
    stuffer.finish(wire);
    smtp.send(wire);
    r = smtp.read_reply();
    smtp.command("QUIT");
    if (r.code != 250) {
      return http::json_response(r.transient() ? 503 : 422,
                                 {{"error", std::to_string(r.code) + " " + reply_text(r)},
                                  {"id", nullptr},
                                  {"accepted", 0},
                                  {"rejected", std::move(rejected)}});
    }
    const auto pos = r.text.find("id=");
    const auto id = pos == std::string::npos ? std::string() : r.text.substr(pos + 3, 32);
    return http::json_response(
        200, {{"id", id}, {"accepted", accepted}, {"rejected", std::move(rejected)}});
  } catch (const InjectFailure& e) {
    return http::error_response(503, e.what());
  }
}

}  // namespace

void register_inject_route(http::HttpServer& server, AdminContext& ctx) {
  const AdminContext* c = &ctx;
  server.handle("POST", "/api/v1/inject", [c](const http::Request& r) { return inject(*c, r); });
}

}  // namespace mailgate::app
