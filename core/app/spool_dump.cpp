// app/spool_dump: see spool_dump.hpp.
#include "app/spool_dump.hpp"

#include <cstdio>
#include <memory>
#include <nlohmann/json.hpp>

#include "mime/mime.hpp"
#include "smtp/params.hpp"
#include "spool/records.hpp"
#include "spool/store.hpp"

namespace mailgate::app {
namespace {

nlohmann::json notify_names(std::uint8_t n) {
  auto a = nlohmann::json::array();
  if (n & smtp::kNotifyNever) a.push_back("NEVER");
  if (n & smtp::kNotifySuccess) a.push_back("SUCCESS");
  if (n & smtp::kNotifyFailure) a.push_back("FAILURE");
  if (n & smtp::kNotifyDelay) a.push_back("DELAY");
  return a;
}

}  // namespace

int spool_dump(const std::string& path, bool bodies) {
  std::string err;
  auto store = spool::Store::open_read_only(path, err);
  if (!store) {
    std::fprintf(stderr, "mailgate: cannot open spool %s: %s\n", path.c_str(), err.c_str());
    return 1;
  }
  store->for_each_message(
      [&](const spool::MessageId& id, const spool::Envelope& env,
          const spool::Store::DestList& records) {
        nlohmann::json j;
        j["id"] = id.hex();
        j["sender"] = env.sender;
        auto rcpts = nlohmann::json::array();
        for (const auto& r : env.recipients)
          rcpts.push_back(
              {{"address", r.address}, {"notify", notify_names(r.notify)}, {"orcpt", r.orcpt}});
        j["recipients"] = rcpts;
        j["ret"] = env.ret == 1 ? "FULL" : env.ret == 2 ? "HDRS" : "";
        j["envid"] = env.envid;
        j["body_type"] = env.body_type == 2 ? "8BITMIME" : env.body_type == 1 ? "7BIT" : "";
        j["smtputf8"] = env.smtputf8;
        j["size"] = env.size;
        j["received_ms"] = env.received_ms;
        j["client_ip"] = env.client_ip;
        j["helo"] = env.helo;
        j["tls"] = env.tls;
        if (!env.auth_user.empty()) j["auth_user"] = env.auth_user;
        j["body_chunks"] = env.body_chunks;
        auto dests = nlohmann::json::array();
        for (const auto& [name, rec] : records) {
          auto idx = nlohmann::json::array(), states = nlohmann::json::array();
          for (const auto& r : rec.recipients) {
            idx.push_back(r.index);
            states.push_back(std::string(spool::to_string(r.state)));
          }
          dests.push_back({{"destination", name},
                           {"recipients", idx},
                           {"states", states},
                           {"attempts", rec.attempts}});
        }
        j["dests"] = dests;
        if (bodies) {
          std::string body;
          store->read_body(id, env.body_chunks, body);  // what is there, even if incomplete
          j["body_b64"] = mime::base64_encode(body);
        }
        std::puts(j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace).c_str());
      },
      [](std::string_view what) {
        std::fprintf(stderr, "mailgate: %.*s skipped\n", static_cast<int>(what.size()),
                     what.data());
      });
  return 0;
}

}  // namespace mailgate::app
