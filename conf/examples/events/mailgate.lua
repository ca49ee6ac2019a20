-- The README's events-and-feedback example (conf/examples/events/run.sh runs it):
-- outbound mail gets VERP return paths; bounces and complaints sent back to the
-- gateway are consumed and matched; the app's receiver (receiver.py) gets every
-- delivery, bounce and complaint as signed webhook events.
mailgate.configure {
  hostname = "gw.example.org",
  delivery = {
    verp = "b+{id}.{rcpt_hash}@bounces.example.org",   -- return path of outbound mail
    verp_secret = "change me: 16 characters or more",
  },
}
mailgate.listen {
  address = "127.0.0.1:2525",
  relay_networks = { "127.0.0.0/8" },
  relay_domains = { "bounces.example.org", "fbl.example.org" },   -- the consumed domains
}
mailgate.webhook {
  name = "app", url = os.getenv("HOOK_URL") or "http://127.0.0.1:8080/", secret = "s3cr3t",
  events = { "delivery", "bounce", "async_bounce", "complaint" }, batch_time = "200ms",
}
mailgate.use("suppression")  -- suppresses 5.1.1 & co., async bounces too (complaints always are)
mailgate.on("message", function(tx, msg)
  local campaign = msg:header("X-Campaign")
  if campaign then msg:set_campaign(campaign) end
end)
mailgate.on("route", function(msg, domain)
  if domain == "bounces.example.org" then return { consume = "bounce" } end
  if domain == "fbl.example.org" then return { consume = "complaint" } end
end)
