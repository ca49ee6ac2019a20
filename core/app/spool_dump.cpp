// app/spool_dump: see spool_dump.hpp.
#include "app/spool_dump.hpp"

#include <rocksdb/db.h>
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
  rocksdb::ReadOptions ro;
  ro.fill_cache = false;
  std::unique_ptr<rocksdb::Iterator> meta(store->db()->NewIterator(ro, store->meta()));
  std::unique_ptr<rocksdb::Iterator> dest(store->db()->NewIterator(ro, store->dest()));
  dest->SeekToFirst();
  for (meta->SeekToFirst(); meta->Valid(); meta->Next()) {
    auto id = spool::MessageId::from_key(meta->key().ToStringView());
    spool::Envelope env;
    if (!id || !spool::decode(meta->value().ToStringView(), env)) {
      std::fprintf(stderr, "mailgate: undecodable envelope record skipped\n");
      continue;
    }
    nlohmann::json j;
    j["id"] = id->hex();
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
    j["body_chunks"] = env.body_chunks;
    auto dests = nlohmann::json::array();
    // dest keys sort by id first, like meta keys: walk both in step.
    while (dest->Valid() && dest->key().ToStringView().substr(0, 16) < meta->key().ToStringView())
      dest->Next();
    for (; dest->Valid() && dest->key().ToStringView().substr(0, 16) == meta->key().ToStringView();
         dest->Next()) {
      spool::MessageId did;
      std::string name;
      spool::DestRecord rec;
      if (!spool::split_dest_key(dest->key().ToStringView(), did, name) ||
          !spool::decode(dest->value().ToStringView(), rec))
        continue;
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
      for (std::uint32_t c = 0; c < env.body_chunks; ++c) {
        std::string chunk;
        if (store->db()->Get(ro, store->body(), spool::body_key(*id, c), &chunk).ok())
          body += chunk;
      }
      j["body_b64"] = mime::base64_encode(body);
    }
    std::puts(j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace).c_str());
  }
  return 0;
}

}  // namespace mailgate::app
