// delivery/shaping_replies: traffic shaping automation where a connection
// reads its replies (DESIGN §6b): each reply of a connection whose site has
// shaping rules is tested as "CODE ENHANCED TEXT" against them, and a
// matching rule takes its action on the connection's (source, site) path,
// or on the tenant / campaign of the message the reply was about, at the
// replying destination.
// Promises: a connection to a site without rules gets no observer (no cost
// per reply); an action in force is not taken again (ShapingActions::fire);
// every action taken goes to the process log (never to the delivery log),
// is written to the spool (async: a crash in the next milliseconds may lose
// it, the next matching reply takes it again), and a tenant or campaign
// suspension it makes is in force on every worker for queued and later mail;
// in a cluster it is told to EngineDeps::shaping_changed (every node takes
// it within about a second).
#include <spdlog/spdlog.h>
#include <asio/post.hpp>

#include "delivery/delivery_worker.hpp"
#include "spool/spool_writer.hpp"
#include "spool/store.hpp"
#include "spool/write_set.hpp"

namespace mailgate::delivery {

namespace {

// The message's tenant and campaign (from its envelope's metadata).
void add_tenancy(egress::ReplyScope& scope, const spool::Envelope& env) {
  for (const auto& [k, v] : env.meta) {
    if (k == tenancy::kTenantKey && tenancy::valid_name(v)) scope.tenant = v;
    if (k == tenancy::kCampaignKey && tenancy::valid_name(v)) scope.campaign = v;
  }
  if (scope.tenant.empty()) scope.campaign.clear();
}

}  // namespace

std::string describe_shaping(const egress::ShapingAction& a) {
  std::string d = std::string(egress::to_string(a.kind));
  if (a.kind == egress::ShapingKind::Override) {
    if (a.set.max_message_rate > 0)
      d += fmt::format(" max_message_rate={:.4g}/s", a.set.max_message_rate);
    if (a.set.max_connections) d += fmt::format(" max_connections={}", a.set.max_connections);
  }
  d += fmt::format(" source '{}' site '{}'", a.source, a.site);
  if (!a.tenant.empty()) d += " tenant " + a.tenant;
  if (!a.campaign.empty()) d += " campaign " + a.campaign;
  if (!a.destination.empty()) d += " at " + a.destination;
  return d;
}

SmtpClient::ReplyObserver DeliveryEngine::Worker::shaping_observer(
    const std::string& destination, const ConnectionSettings& settings) {
  if (!paths || !deps.policy || settings.site.empty()) return {};
  auto plan = deps.policy->current(index)->egress();
  bool any = false;
  for (const auto& r : plan->shaping_rules()) any = any || r.site == settings.site;
  if (!any) return {};
  egress::ReplyScope scope{settings.source, settings.site, destination, "", ""};
  return [this, plan = std::move(plan), scope = std::move(scope)](const smtp::Reply& reply,
                                                                  const spool::Envelope* env) {
    const auto line = reply_line(reply);
    for (const auto& rule : plan->shaping_rules()) {
      if (rule.site != scope.site || !rule.pattern.search(line)) continue;
      auto s = scope;
      if (env) add_tenancy(s, *env);
      auto action = paths->shaping().fire(rule, s, queue::now_ms());
      if (!action) continue;
      spdlog::info("{}: shaping rule '{}' matched '{}': {} until {} ms (id {})", scope.destination,
                   rule.name, line, describe_shaping(*action), action->until_ms, action->id);
      apply_shaping(*action);
      if (deps.shaping_changed) deps.shaping_changed(*action, false, action->since_ms);
    }
  };
}

void DeliveryEngine::Worker::apply_shaping(const egress::ShapingAction& a) {
  const bool by_tenant = a.holds_tenant();
  const auto hold = hold_of(a);
  if (by_tenant)
    for (Worker* w : *all)
      asio::post(w->ctx, [w, hold] {
        if (w->shard && !w->shard->stopped()) w->shard->hold(hold);
      });
  if (!deps.store || !deps.writer) return;
  spool::WriteSet set(*deps.store);
  set.put_shaping_action(egress::shaping_key(a.id), egress::encode_action(a));
  if (by_tenant) set.put_tenant_suspension(hold);
  deps.writer->submit(std::move(set), true, [id = a.id](std::error_code ec) {
    if (ec)
      spdlog::warn("delivery: shaping action {} not saved in the spool: {}", id, ec.message());
  });
}

}  // namespace mailgate::delivery
