-- Benchmark config (bench/compare --targets mailgate-e2e-plugins): the
-- shipped plugins on, with limits high enough that nothing is refused, so
-- the run measures what the hooks cost, not what they refuse.
mailgate.configure {}

mailgate.listen {
  address = "127.0.0.1:2525",
  relay_networks = { "127.0.0.0/8", "::1/128" },
  max_recipients = 1000,
}

mailgate.use("recipient_check", { cache_ttl = "10m" })
mailgate.use("rate_limit", {
  per_ip = { messages = "1000000/s", recipients = "1000000/s" },
  per_sender = { messages = "1000000/s" },
})
mailgate.use("suppression")
mailgate.use("sender_domains", { tenants = {
  bench = { networks = { "127.0.0.0/8" }, domains = { "example.org", "*.example.org" } },
} })
mailgate.use("routing_table", { routes = { ["partner.example"] = "discard" } })
