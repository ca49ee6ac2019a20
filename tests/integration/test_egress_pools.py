"""Bulk sending on loopback (README "Bulk sending: sources, pools, warm-up,
sites"): sources bound to 127.0.0.2 / 127.0.0.3 (the sinks see the peer
address), pools with weights, sites that make many domains on one provider
MX share one connection limit and one rate, warm-up quotas that move mail
to the pool's other source or hold it until 00:00 UTC, kept across kill -9,
check-config refusals, an unknown pool, and a reload changing weights."""
import json
import os
import smtplib
import subprocess
import time
import urllib.request

import pytest

from conftest import BIN, wait_for
from peers import Recorder
from test_policy import env, write_policy  # noqa: F401 (env is a fixture)

SRC1, SRC2 = "127.0.0.2", "127.0.0.3"

SOURCES = f"""
mailgate.source {{ name = "ip1", address = "{SRC1}", ehlo_name = "mta1.mailgate.test" }}
mailgate.source {{ name = "ip2", address = "{SRC2}", ehlo_name = "mta2.mailgate.test" }}
"""


def send_each(gw, rcpts, sender="s@example.org"):
    with smtplib.SMTP(gw.host, gw.port, timeout=30) as s:
        for r in rcpts:
            s.sendmail(sender, [r], b"Subject: bulk\r\n\r\nhello\r\n")


def api(gw, path, method="GET"):
    port = int(gw.wait_log(r"listening http=\S+:(\d+)").group(1))
    req = urllib.request.Request(f"http://127.0.0.1:{port}{path}", method=method)
    with urllib.request.urlopen(req, timeout=20) as r:
        return json.loads(r.read())


def by_peer(sink):
    with sink.handler.lock:
        peers = [m["peer"] for m in sink.handler.messages]
    return peers.count(SRC1), peers.count(SRC2)


def path_of(gw, source, site):
    for p in api(gw, "/api/v1/sites")["paths"]:
        if p["source"] == source and p["site"] == site:
            return p
    return None


def mx_records(domains, host, ip):
    return [f"--mx-host={d},{host},10" for d in domains] + [f"--host-record={host},{ip}"]


def test_pool_weights_three_to_one_land_at_the_sink_by_source_address(env):
    domains = [f"w{i}.test" for i in range(10)]
    dns = env.dns(*mx_records(domains, "mx.bulk.test", "127.0.0.10"))
    sink = env.sink("127.0.0.10")
    gw = env.gateway(dns, SOURCES + """
        mailgate.pool { name = "bulk", sources = { { "ip1", weight = 3 }, { "ip2", weight = 1 } } }
        mailgate.on("message", function(tx, msg) msg:set_pool("bulk") end)
    """)
    send_each(gw, [f"r{i}@{domains[i % 10]}" for i in range(200)])
    wait_for(lambda: sink.handler.count() == 200, 60, what="200 deliveries")
    n1, n2 = by_peer(sink)
    assert n1 + n2 == 200
    print(f"weights 3:1 -> {n1}:{n2}")
    assert abs(n1 - 150) <= 15 and abs(n2 - 50) <= 15, (n1, n2)
    helos = {m["peer"]: m["helo"] for m in sink.handler.messages}
    assert helos == {SRC1: "mta1.mailgate.test", SRC2: "mta2.mailgate.test"}, helos


def test_thirty_domains_on_one_provider_mx_share_one_connection_limit_and_rate(env, tmp_path):
    domains = [f"d{i}.test" for i in range(30)]
    dns = env.dns(*mx_records(domains, "mx1.provider.test", "127.0.0.11"))
    lua = """
        mailgate.site { name = "provider", mx_suffixes = { ".provider.test" },
                        max_connections = 3, max_message_rate = "20/s" }
        mailgate.on("egress_path", function(d, path)
          mailgate.log("info", "egress_path " .. d .. " site=" .. tostring(path.site) ..
                               " source=" .. tostring(path.source))
        end)
    """
    rcpts = [f"r{i}@{domains[i % 30]}" for i in range(120)]
    # Queue everything while the MX is down (connection failures do not
    # count as attempts), so the next gateway has all 120 ready at once.
    gw = env.gateway(dns, lua, sets=["delivery.retry.first=1h", "delivery.retry.max=2h"])
    send_each(gw, rcpts)
    gw.stop()
    sink = env.sink("127.0.0.11", Recorder(data_delay=0.05))
    gw = env.gateway(dns, lua, sets=["delivery.max_connections=10"])
    wait_for(lambda: sink.handler.count() == 120, 60, what="120 deliveries")
    # Each of the 30 destinations alone may open 10 connections: the site holds them to 3.
    assert 1 <= sink.handler.max_active <= 3, sink.handler.max_active
    gw.wait_log(r"egress_path d7\.test site=provider source=nil")  # path = { site, source }
    t = sorted(m["t"] for m in sink.handler.messages)
    rate = (len(t) - 1) / (t[-1] - t[0])
    print(f"site: {rate:.2f} msg/s, at most {sink.handler.max_active} connections")
    assert 18.0 <= rate <= 22.0, rate
    sites = api(gw, "/api/v1/sites")
    assert [s["name"] for s in sites["sites"]] == ["provider"]
    p = path_of(gw, "", "provider")
    assert p and p["messages"] == 120, sites["paths"]
    port = int(gw.wait_log(r"listening http=\S+:(\d+)").group(1))
    metrics = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=20).read().decode()
    assert 'mailgate_egress_source_messages_total{source="default",site="provider"} 120' in metrics


def warmup_config(start="20/day", second=True):
    lua = f"""
        mailgate.source {{ name = "ip1", address = "{SRC1}",
                          warmup = {{ start = "{start}", factor = 2, days = 14 }} }}
    """
    if second:
        lua += f"""
        mailgate.source {{ name = "ip2", address = "{SRC2}" }}
        mailgate.pool {{ name = "bulk", sources = {{ {{ "ip1", weight = 3 }}, {{ "ip2", weight = 1 }} }} }}
        """
    else:
        lua += 'mailgate.pool { name = "bulk", sources = { "ip1" } }\n'
    return lua + 'mailgate.on("message", function(tx, msg) msg:set_pool("bulk") end)\n'


def test_warmup_quota_moves_the_rest_to_the_other_source_and_survives_kill9(env):
    dns = env.dns(*mx_records(["warm.test"], "mx.warm.test", "127.0.0.12"))
    sink = env.sink("127.0.0.12")
    gw = env.gateway(dns, warmup_config())
    send_each(gw, [f"r{i}@warm.test" for i in range(60)])
    wait_for(lambda: sink.handler.count() == 60, 60, what="60 deliveries")
    assert by_peer(sink) == (20, 40)
    # Counts are written once a second: wait until today's 20 are on disk,
    # then crash (the bound after a crash is the last second's counts).
    wait_for(lambda: (path_of(gw, "ip1", "other") or {}).get("persisted_today") == 20, 20,
             what="the warm-up count persisted")
    p = path_of(gw, "ip1", "other")
    assert p["quota_today"] == 20 and p["quota_remaining"] == 0, p
    gw.kill9()
    gw = env.gateway(dns, warmup_config())
    assert path_of(gw, "ip1", "other")["sent_today"] == 20
    send_each(gw, [f"s{i}@warm.test" for i in range(10)])
    wait_for(lambda: sink.handler.count() == 70, 60, what="70 deliveries")
    assert by_peer(sink) == (20, 50)


def test_spent_quota_with_no_other_source_holds_until_midnight_without_bounce(env, tmp_path):
    dns = env.dns(*mx_records(["hold.test"], "mx.hold.test", "127.0.0.13"))
    sink = env.sink("127.0.0.13")
    gw = env.gateway(dns, warmup_config(start="5/day", second=False))
    send_each(gw, [f"r{i}@hold.test" for i in range(8)])
    wait_for(lambda: sink.handler.count() == 5, 30, what="5 deliveries")
    gw.wait_log(r"warmup_hold")
    wait_for(lambda: api(gw, "/api/v1/queue")["totals"]["scheduled"] == 3, 20,
             what="3 messages held")
    assert api(gw, "/api/v1/sites")["warmup_held"] >= 3
    held = api(gw, "/api/v1/messages?destination=hold.test&limit=10")["messages"]
    assert len(held) == 3, held
    tomorrow = time.strftime("%Y-%m-%dT00:00:00", time.gmtime(time.time() + 86400))
    for m in held:  # not an attempt; waits for 00:00 UTC
        assert m["attempts"] == 0 and m["next_attempt"].startswith(tomorrow), m
    assert sink.handler.count() == 5
    log = os.path.join(os.path.dirname(gw.spool), "deliveries.jsonl")
    events = [json.loads(l)["event"] for l in open(log) if l.strip()]
    assert "bounce" not in events and "transient_failure" not in events, events


def test_unknown_pool_is_a_temporary_failure_with_a_clear_log_line(env):
    dns = env.dns()
    gw = env.gateway(dns, SOURCES + """
        mailgate.pool { name = "bulk", sources = { "ip1", "ip2" } }
        mailgate.on("message", function(tx, msg) msg:set_pool("nope") end)
    """)
    with smtplib.SMTP(gw.host, gw.port, timeout=30) as s:
        with pytest.raises(smtplib.SMTPDataError) as e:
            s.sendmail("s@example.org", ["r@x.test"], b"Subject: x\r\n\r\nx\r\n")
    assert e.value.smtp_code == 451
    gw.wait_log(r"unknown pool 'nope'")


@pytest.mark.parametrize("lua,expect", [
    (SOURCES + 'mailgate.pool { name = "p", sources = { "ip1", "ip9" } }', "unknown source 'ip9'"),
    (SOURCES + 'mailgate.pool { name = "p", sources = { { "ip1", weight = 0 } } }', "weight"),
    ('mailgate.source { name = "a", address = "10.0.0.300" }', "not an IPv4 or IPv6 address"),
    (SOURCES + 'mailgate.source { name = "ip1", address = "127.0.0.4" }', "declared twice"),
    (SOURCES + 'mailgate.pool { name = "p", sources = { "ip1" } }\n'
               'mailgate.pool { name = "p", sources = { "ip2" } }', "declared twice"),
    ('mailgate.source { name = "a", warmup = { start = "20/h", days = 3 } }', "N/day"),
    ('mailgate.site { name = "s", mx_suffixes = { ".x.test" }, max_message_rate = "fast" }',
     "max_message_rate"),
    ('mailgate.site { name = "s" }', "mx_suffixes"),
    ('mailgate.site { name = "other", mx_suffixes = { ".x.test" } }', "reserved"),
    ('mailgate.source { name = "a", adress = "127.0.0.2" }', "unknown key 'adress'"),
    # Traffic shaping rules (issue 12 item 3): the site must be declared first,
    # the pattern language is bounded (no groups), the action and duration known.
    ('mailgate.shaping_rule { match = "\\\\[TS04\\\\]", site = "yahoo", action = "suspend", '
     'duration = "2h" }', "unknown site 'yahoo'"),
    ('mailgate.site { name = "y", mx_suffixes = { ".y.test" } }\n'
     'mailgate.shaping_rule { match = "(TS04)", site = "y", action = "suspend", duration = "2h" }',
     "'(' is not supported"),
    ('mailgate.site { name = "y", mx_suffixes = { ".y.test" } }\n'
     'mailgate.shaping_rule { match = "TS04", site = "y", action = "pause", duration = "2h" }',
     "action must be"),
    ('mailgate.site { name = "y", mx_suffixes = { ".y.test" } }\n'
     'mailgate.shaping_rule { match = "TS04", site = "y", action = { set = { max_message_rate = '
     '"often" } }, duration = "2h" }', "max_message_rate"),
])
def test_check_config_refuses_bad_declarations(tmp_path, lua, expect):
    cfg = write_policy(tmp_path, lua)
    r = subprocess.run([BIN, "check-config", "--config", cfg], capture_output=True, timeout=60)
    out = (r.stdout + r.stderr).decode()
    assert r.returncode != 0 and expect in out, out
    assert "mailgate.lua:" in out, out  # names the file (and line)


def test_check_config_accepts_the_shipped_provider_sites(tmp_path):
    cfg = write_policy(tmp_path, SOURCES + """
        mailgate.use("shaping/providers", { google = { max_connections = 40 }, comcast = false })
        mailgate.site { name = "yahoo", mx_suffixes = { ".yahoodns.net" }, max_connections = 2 }
        mailgate.pool { name = "default", sources = { { "ip1", weight = 2 }, "ip2" } }
    """)
    r = subprocess.run([BIN, "check-config", "--config", cfg], capture_output=True, timeout=60)
    assert r.returncode == 0, (r.stdout + r.stderr).decode()


def test_reload_changes_the_weights(env, tmp_path):
    domains = [f"rl{i}.test" for i in range(10)]
    dns = env.dns(*mx_records(domains, "mx.reload.test", "127.0.0.14"))
    sink = env.sink("127.0.0.14")

    def config(w1, w2):
        return SOURCES + f"""
        mailgate.pool {{ name = "default", sources = {{ {{ "ip1", weight = {w1} }}, {{ "ip2", weight = {w2} }} }} }}
        """

    gw = env.gateway(dns, config(1, 1))
    send_each(gw, [f"a{i}@{domains[i % 10]}" for i in range(80)])
    wait_for(lambda: sink.handler.count() == 80, 60, what="80 deliveries")
    n1, n2 = by_peer(sink)
    assert abs(n1 - 40) <= 4, (n1, n2)
    write_policy(tmp_path, config(3, 1))
    assert api(gw, "/api/v1/reload", method="POST")
    send_each(gw, [f"b{i}@{domains[i % 10]}" for i in range(80)])
    wait_for(lambda: sink.handler.count() == 160, 60, what="160 deliveries")
    m1, m2 = by_peer(sink)
    assert abs((m1 - n1) - 60) <= 6, (m1 - n1, m2 - n2)
