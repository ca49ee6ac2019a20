// delivery/delivery_worker: the per-worker half of the delivery engine
// (internal to the module): the worker's queue shard and resolver, and the
// coroutines of its connections and attempts (delivery_attempt.cpp).
#pragma once

#include <asio/awaitable.hpp>
#include <asio/io_context.hpp>
#include <atomic>
#include <functional>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "delivery/delivery_engine.hpp"
#include "delivery/smtp_client.hpp"
#include "dns/resolver.hpp"
#include "queue/queue_shard.hpp"
#include "smtp/bounce_class.hpp"
#include "spool/message_id.hpp"
#include "spool/spool_reader.hpp"

namespace mailgate::delivery {

struct Target {
  std::string host;  // MX host name (or the literal)
  asio::ip::tcp::endpoint endpoint;
};

struct Route {
  smtp::Reply failure;  // code 0: targets are usable
  std::vector<Target> targets;
};

// One recipient's outcome in an attempt.
struct Outcome {
  std::uint32_t index;  // into Envelope::recipients
  smtp::Reply reply;
};

struct DeliveryEngine::Worker {
  Worker(const EngineDeps& deps, unsigned index);

  const EngineDeps& deps;
  unsigned index;
  asio::io_context& ctx;
  std::unique_ptr<dns::Resolver> resolver;
  std::unique_ptr<queue::QueueShard> shard;
  spool::IdGenerator ids;
  smtp::BounceClassifier classifier;
  // Queues a new message (a DSN) with its owner, which may be another worker.
  std::function<void(const spool::MessageId&, std::vector<std::string>, std::uint64_t)> enqueue;
  std::atomic<std::uint64_t> delivered{0}, deferred{0}, bounced{0}, expired{0}, dsns{0},
      connections{0};

  void start_connection(queue::Destination& d);
  void expire_item(queue::Destination& d, queue::Item item);

  asio::awaitable<void> connection(queue::Destination& d);
  asio::awaitable<Route> resolve(const std::string& destination);
  asio::awaitable<void> attempt(queue::Destination& d, queue::Item item, SmtpClient* client);
  // Final failure for every pending recipient of `item` without a connection
  // (DNS permanent failure, mail loop, expiry: kExpired).
  asio::awaitable<void> fail_item(queue::Destination& d, queue::Item item, smtp::Reply reply);
  // Persists the outcomes of one attempt (+ DSN) and moves the item on.
  // `client` is the connection used (null when none was).
  asio::awaitable<void> settle(queue::Destination& d, queue::Item item,
                               std::shared_ptr<spool::LoadedMessage> msg,
                               std::vector<Outcome> outcomes, const SmtpClient* client);

  static const smtp::Reply kExpired;
};

}  // namespace mailgate::delivery
