-- conf/examples/bulk.lua: the worked example of README "Bulk sending: a
-- worked example" — two tenants, a pool of two sources (one warming up),
-- the shipped provider sites with one override, and one traffic shaping
-- rule. tests/integration/test_bulk_example.py runs this file as it is on
-- loopback (127.0.0.2 and 127.0.0.3 stand for the two public addresses).
mailgate.configure {
  hostname = "mta.example.test",
  spool = { path = "var/spool-bulk" },
  http = { listen = "127.0.0.1:8025" },
  metrics = { tenants = { "shop", "bank" } },
}
mailgate.listen { address = "127.0.0.1:2525" }

-- Two sending addresses; ip2 is new and warms up: 20 messages per site on
-- its first day, doubling each day for two weeks.
mailgate.source { name = "ip1", address = "127.0.0.2", ehlo_name = "mta1.example.test" }
mailgate.source { name = "ip2", address = "127.0.0.3", ehlo_name = "mta2.example.test",
                  warmup = { start = "20/day", factor = 2, days = 14 } }
mailgate.pool { name = "bulk", sources = { { "ip1", weight = 3 }, { "ip2", weight = 1 } } }
mailgate.pool { name = "default", sources = { "ip1" } }   -- transactional mail: the old address

-- Provider sites (google, microsoft, yahoo, ...), Yahoo held tighter.
mailgate.use("shaping/providers", { yahoo = { max_connections = 4, max_message_rate = "10/s" } })

-- Yahoo says "[TS04]" when it wants no more mail from an address for a while.
mailgate.shaping_rule { name = "yahoo-ts04", match = "\\[TS04\\]", site = "yahoo",
                        action = "suspend", duration = "2h" }

-- Tenants: the shop's newsletters are bulk mail from the pool, the bank's
-- notifications go first, from the default pool.
mailgate.on("message", function(tx, msg)
  local tenant = msg:header("X-Tenant")
  if tenant == "shop" then
    msg:set_tenant("shop")
    msg:set_pool("bulk")
    msg:set_priority("bulk")
    local c = msg:header("X-Campaign")
    if c and c:match("^[%w%._%-]+$") and #c <= 64 then msg:set_campaign(c) end
  elseif tenant == "bank" then
    msg:set_tenant("bank")
    msg:set_priority("high")
  end
end)
