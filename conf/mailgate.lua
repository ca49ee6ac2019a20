-- mailgate configuration (Lua 5.4). `mailgate check-config` validates it;
-- `mailgate serve --set KEY=VALUE` overrides one configure{} key for a run
-- (e.g. --set spool.path=/tmp/spool, --set listen.address=127.0.0.1:0).
--
-- Units: sizes are bytes or strings with KB/MB/GB/TB (powers of 1000) or
-- KiB/MiB/GiB/TiB (powers of 1024): 25000000, "25MB", "512KiB".
-- Durations are seconds or strings with ms/s/m/h/d: 30, "500ms", "5m", "2d".
-- Unknown keys are errors, so a typo never silently falls back to a default.
-- Relative paths are relative to the directory mailgate is started from.
--
-- Besides settings, this file may register Lua hooks (mailgate.on) and load
-- plugins (mailgate.use): see the end of this file and README.md, "Lua policy".
-- `kill -HUP <pid>` reloads hooks and plugins; changes to configure{} and
-- listen{} need a restart.

mailgate.configure {
  -- Name used in the SMTP banner, the EHLO reply, Received: headers and as
  -- the reporting MTA of bounces. Absent: this machine's host name.
  -- hostname = "gw.example.com",

  -- Worker threads, each with its own event loop. 0: one per CPU core.
  workers = 0,

  spool = {
    -- Where accepted messages are stored (RocksDB) until delivered.
    path = "var/spool",
    -- Below this much free disk space, new mail is refused with a temporary
    -- error (452 4.3.1) instead of risking a full disk.
    min_free_space = "1GB",
  },

  -- The certificate for inbound TLS (STARTTLS, implicit_tls listeners): PEM
  -- chain and key, re-read on SIGHUP. self_signed = true makes a self-signed
  -- pair for `hostname` at these paths when neither file exists, so that
  -- STARTTLS works out of the box; in production, point cert/key at a real
  -- certificate and remove self_signed.
  tls = { cert = "var/tls/cert.pem", key = "var/tls/key.pem", self_signed = true },

  -- Longest a Lua hook call may run (wall clock, DNS waits included); past it
  -- the call fails and the client gets a temporary error (451 4.3.0).
  -- policy = { hook_timeout = "5s" },

  -- Admin HTTP API: /metrics, /healthz, /readyz and /api/v1 (queue, messages,
  -- bounce, suppression, reload, inject). It can inject, bounce and inspect
  -- mail: keep it on loopback, or set a token. /metrics and the health
  -- endpoints never need the token.
  http = {
    listen = "127.0.0.1:8025",
    -- token = "change-me",                 -- shared secret for the admin API
  },

  -- DNS resolvers for MX lookups; absent: the ones in /etc/resolv.conf.
  -- dns = { servers = { "127.0.0.1:53" } },

  log = {
    level = "info",                         -- trace | debug | info | warn | error | off
    deliveries = "var/log/deliveries.jsonl", -- delivery log: one JSON line per event
  },

  -- Outbound delivery to remote mail servers (MX lookup, retries, bounces).
  delivery = {
    port = 25,                              -- remote SMTP port
    retry = {
      first = "1m",                         -- first retry after a temporary failure
      max = "1h",                           -- retry interval grows up to this
      max_age = "5d",                       -- then give up and bounce
      delay_warning = "4h",                 -- then tell the sender once (0: never)
    },
    max_connections = 10,                   -- per destination
    max_messages_per_connection = 100,      -- then open a new connection
    -- Outbound STARTTLS: opportunistic (when offered, any certificate) |
    -- required (defer when not offered) | disabled.
    tls = "opportunistic",                  -- opportunistic | required | verify | disabled
    mta_sts = false,                        -- true: honour MTA-STS policies (RFC 8461)
  },
}

-- One SMTP listener; call mailgate.listen again for more (e.g. port 25 and 587).
mailgate.listen {
  address = "127.0.0.1:2525",               -- "ip:port" or "[ipv6]:port"

  -- Clients from these networks may relay (send to any domain).
  relay_networks = { "127.0.0.0/8", "::1/128" },
  -- Anyone may send mail *to* these domains (inbound), e.g. { "example.com" }.
  relay_domains = {},

  starttls = true,                          -- offer STARTTLS (RFC 3207), tls{} above
  -- implicit_tls = true,                   -- instead: TLS from the first byte (port 465)
  -- SMTP AUTH (RFC 4954) over TLS: "off" | "optional" | "required"; needs an
  -- auth hook, e.g. mailgate.use("auth_file", { path = "conf/users" }).
  auth = "off",

  max_message_size = "25MB",                -- advertised with SIZE, enforced
  max_recipients = 1000,                    -- per message (RFC 5321 needs >= 100)
  timeouts = {
    command = "5m",                         -- idle wait for the next command
    data = "3m",                            -- idle wait for the next block of DATA
  },
  max_errors = 20,                          -- after 20 error replies: 421 and close
}

-- Lua policy (README.md, "Lua policy"). Nothing below is active: uncomment what
-- you need. Hooks run in registration order and the first non-nil result wins;
-- a hook that fails or runs past policy.hook_timeout answers 451 4.3.0, never
-- accepts. `mailgate check-config` loads plugins and registers hooks, so it
-- catches a misspelt event or a bad plugin option.
--
-- Shipped plugins (plugins/NAME.lua; a file conf/plugins/NAME.lua next to this
-- config replaces the shipped one of that name). Options and replies are
-- listed in each plugin's header comment.
--
-- Refuse at RCPT recipients whose domain cannot receive mail (NXDOMAIN, null
-- MX); a DNS failure is a 451, never a refusal.
-- mailgate.use("recipient_check", { cache_ttl = "10m", require_mx = false })
--
-- Send some domains to a smarthost (or drop them) instead of their MX.
-- mailgate.use("routing_table", { routes = {
--   ["partner.example"] = "[10.1.2.3]:2525",
--   ["*.corp.example"] = { smarthost = "relay.corp.example:587", tls = "required" },
--   ["test.example"] = "discard",
-- } })
--
-- Limits per client IP and per sender, shared by all workers.
-- mailgate.use("rate_limit", {
--   per_ip = { connections = "60/min", messages = "100/min", recipients = "1000/h" },
--   per_sender = { messages = "1000/h" },
--   exempt = { "127.0.0.1/32" },
-- })
--
-- Refuse recipients that hard-bounced before (5.1.1, 5.1.2, 5.1.3, 5.1.10,
-- 5.2.1; never 5.7.x blocks or expiry); the list is kept in the spool.
-- mailgate.use("suppression")
--
-- Each client network may only send as its tenant's domains (MAIL FROM and
-- From:). Clients in no tenant's networks are refused (unknown_clients).
-- mailgate.use("sender_domains", {
--   tenants = {
--     acme = { networks = { "10.1.0.0/16" }, domains = { "acme.example", "*.acme.example" } },
--   },
--   unknown_clients = "reject",   -- or "allow"
-- })
--
-- DKIM-sign each message by its From: domain (keys made with `mailgate dkim
-- keygen --domain example.com --selector s1 --out conf/dkim`, which prints the
-- TXT record to publish); domains without a key go out unsigned.
-- mailgate.use("dkim", { keys = {
--   ["example.com"] = { selector = "s1", key = "conf/dkim/example.com.s1.pem" },
-- } })
--
-- Users for SMTP AUTH (listener auth = "optional" | "required"): lines
-- "user:crypt-hash" (SHA-512 $6$ or yescrypt $y$, e.g. from mkpasswd).
-- mailgate.use("auth_file", { path = "conf/users" })
--
-- A hook of your own. Events: connect, helo, auth, mail_from, rcpt_to,
-- message, route, egress_path, delivered, deferred, bounced.
-- mailgate.on("rcpt_to", function(tx, rcpt)
--   if rcpt.domain == "blocked.example" then
--     return mailgate.reject(550, "5.7.1 recipient domain not accepted")
--   end
-- end)
--
-- Webhooks: POST delivery-log events (JSON arrays, signed with HMAC-SHA256 of
-- the secret; README "Events and feedback") to your application. Queued in
-- the spool until acknowledged; `mailgate webhooks status` shows the backlog.
-- mailgate.webhook { name = "app", url = "https://hooks.example.com/mail",
--                    secret = "change-me", events = { "delivery", "bounce" },
--                    batch_size = 100, batch_time = "1s", max_age = "1d" }
