"""Traffic shaping automation (README "Traffic shaping automation", issue 12
item 3) against real sinks: a yahoo-like sink answering `421 4.7.0 [TS04]`
fires a suspend rule (no further connection to that site until the action
is cleared, another site's mail keeps flowing, the action survives kill -9
and is listed by GET /api/v1/shaping and `mailgate shaping list`, cleared
by `mailgate shaping clear ID`), an override rule lowers the message
rate the sink sees, and a suspend_campaign rule holds that campaign (not
another) at the replying destination until DELETE /api/v1/shaping/ID, an
action ends by itself, and rules come with a reload."""
import smtplib
import subprocess
import time
import urllib.request

from conftest import BIN, wait_for
from peers import Recorder
from test_egress_pools import api, mx_records, send_each
from test_policy import env, write_policy  # noqa: F401 (env is a fixture)

TS04 = "421 4.7.0 [TS04] Messages from 127.0.0.1 temporarily deferred due to user complaints"

YAHOO = """
mailgate.site { name = "yahoo", mx_suffixes = { ".yahoo-like.test" } }
mailgate.shaping_rule { name = "ts04", match = "\\\\[TS04\\\\]", site = "yahoo",
                        action = "suspend", duration = "2h" }
"""


def http_port(gw):
    return int(gw.wait_log(r"listening http=\S+:(\d+)").group(1))


def metrics(gw):
    url = f"http://127.0.0.1:{http_port(gw)}/metrics"
    return urllib.request.urlopen(url, timeout=20).read().decode()


def cli(gw, *args):
    r = subprocess.run([BIN, "shaping", *args, "--api", f"http://127.0.0.1:{http_port(gw)}"],
                       capture_output=True, timeout=60)
    return r.returncode, (r.stdout + r.stderr).decode()


def quiet_window(sink, seconds):
    """The sink's connection count after `seconds` in which the gateway's
    retry (delivery.retry.first=1s, max=2s) would have connected at least
    once had nothing held it."""
    start = sink.handler.connections
    deadline = time.monotonic() + seconds
    wait_for(lambda: time.monotonic() >= deadline or sink.handler.connections != start,
             seconds + 5, what="quiet window")
    return sink.handler.connections - start


def test_ts04_suspends_the_site_path_until_cleared_and_survives_kill9(env, tmp_path):
    dns = env.dns(*mx_records(["y.test"], "mx.yahoo-like.test", "127.0.0.20"),
                  *mx_records(["o.test"], "mx.other.test", "127.0.0.21"))
    yahoo = env.sink("127.0.0.20", Recorder(rcpt_reply={"*": TS04}))
    other = env.sink("127.0.0.21")
    gw = env.gateway(dns, YAHOO)
    send_each(gw, ["a@y.test"])
    wait_for(lambda: api(gw, "/api/v1/shaping")["actions"], 30, what="a shaping action")
    [action] = api(gw, "/api/v1/shaping")["actions"]
    assert action["rule"] == "ts04" and action["action"] == "suspend", action
    assert action["site"] == "yahoo" and action["source"] == "" and action["tenant"] is None
    assert 7_100_000 <= action["until"] - int(time.time() * 1000) <= 7_200_000, action
    gw.wait_log(r"y\.test: shaping rule 'ts04' matched '421 4\.7\.0 \[TS04\] Messages")
    assert 'mailgate_shaping_actions_total{rule="ts04",action="suspend"} 1' in metrics(gw)
    assert 'mailgate_shaping_actions_active{action="suspend"} 1' in metrics(gw)
    # Other sites are not held: their mail flows while yahoo's path waits.
    send_each(gw, ["b@o.test", "c@o.test"])
    wait_for(lambda: other.handler.count() == 2, 30, what="mail to the other site")
    assert quiet_window(yahoo, 3.0) == 0
    # kill -9: the action is in the spool, the next gateway keeps the path closed.
    gw.kill9()
    gw = env.gateway(dns, YAHOO, spool=tmp_path / "spool")
    gw.wait_log(r"1 shaping action\(s\) in force \(kept in the spool\)")
    assert [a["id"] for a in api(gw, "/api/v1/shaping")["actions"]] == [action["id"]]
    rc, out = cli(gw, "list")
    assert rc == 0 and action["id"] in out and "ts04" in out and "yahoo" in out, out
    assert quiet_window(yahoo, 3.0) == 0
    # Cleared by the operator: the next retry goes out (and the sink now accepts).
    yahoo.handler.rcpt_reply = {}
    rc, out = cli(gw, "clear", action["id"])
    assert rc == 0 and "cleared 1 shaping action" in out, out
    gw.wait_log(rf"shaping action {action['id']} of rule 'ts04' cleared")
    wait_for(lambda: yahoo.handler.count() == 1, 30, what="yahoo mail after clear")
    assert api(gw, "/api/v1/shaping")["actions"] == []
    rc, out = cli(gw, "clear", action["id"])
    assert rc == 1 and "404" in out, out
    rc, out = cli(gw, "clear")
    assert rc == 2 and "--all" in out, out


def test_override_rule_lowers_the_rate_the_sink_sees(env):
    dns = env.dns(*mx_records(["s.test"], "mx.slow-like.test", "127.0.0.22"))
    # The first RCPT gets a rate-limit deferral, every later one is accepted.
    sink = env.sink("127.0.0.22", Recorder(rcpt_reply={"*": ["421 4.7.28 rate limited", "250 OK"]}))
    gw = env.gateway(dns, """
        mailgate.site { name = "slow", mx_suffixes = { ".slow-like.test" }, max_message_rate = "100/s" }
        mailgate.shaping_rule { name = "rate", match = "^421 4\\\\.7\\\\.28 ", site = "slow",
                                action = { set = { max_message_rate = "4/s" } }, duration = "1h" }
    """)
    send_each(gw, ["first@s.test"])
    wait_for(lambda: api(gw, "/api/v1/shaping")["actions"], 30, what="the override action")
    [action] = api(gw, "/api/v1/shaping")["actions"]
    assert action["action"] == "set" and action["set"] == {"max_message_rate": 4.0}, action
    send_each(gw, [f"r{i}@s.test" for i in range(9)])
    wait_for(lambda: sink.handler.count() == 10, 60, what="10 deliveries")
    t = sorted(m["t"] for m in sink.handler.messages if m["to"] != ["first@s.test"])
    rate = (len(t) - 1) / (t[-1] - t[0])
    print(f"override 4/s over site 100/s: {rate:.2f} msg/s at the sink")
    assert rate <= 4.6, rate


def test_suspend_campaign_holds_that_campaign_at_the_destination_until_cleared(env):
    dns = env.dns(*mx_records(["c.test"], "mx.camp-like.test", "127.0.0.23"))
    sink = env.sink("127.0.0.23", Recorder(rcpt_reply={"trap@c.test": TS04}))
    gw = env.gateway(dns, """
        mailgate.site { name = "camp", mx_suffixes = { ".camp-like.test" } }
        mailgate.shaping_rule { name = "hold", match = "TS04", site = "camp",
                                action = "suspend_campaign", duration = "1h" }
        mailgate.on("message", function(tx, msg)
          msg:set_tenant("shop")
          msg:set_campaign(msg:header("X-Campaign"))
        end)
    """)

    def send(rcpt, campaign):
        with smtplib.SMTP(gw.host, gw.port, timeout=30) as s:
            s.sendmail("s@shop.test", [rcpt],
                       f"X-Campaign: {campaign}\r\nSubject: x\r\n\r\nhi\r\n".encode())

    send("trap@c.test", "spring")
    wait_for(lambda: api(gw, "/api/v1/shaping")["actions"], 30, what="the campaign action")
    [action] = api(gw, "/api/v1/shaping")["actions"]
    assert (action["action"], action["tenant"], action["campaign"], action["destination"]) == \
        ("suspend_campaign", "shop", "spring", "c.test"), action
    send("held@c.test", "spring")
    send("flows@c.test", "autumn")
    wait_for(lambda: sink.handler.count() == 1, 30, what="the other campaign's message")
    assert sink.handler.messages[0]["to"] == ["flows@c.test"]
    queue = api(gw, "/api/v1/queue")
    assert any(h.get("campaign") == "spring" for h in queue["tenant_suspensions"]), queue
    # held@ is ready and held (not sent), while autumn's went out after it.
    wait_for(lambda: sum(d["held"] for d in api(gw, "/api/v1/queue")["destinations"]) >= 1, 10,
             what="spring's message held")
    assert sink.handler.count() == 1
    sink.handler.rcpt_reply = {}
    assert api(gw, f"/api/v1/shaping/{action['id']}", method="DELETE") == {"cleared": 1}
    wait_for(lambda: sink.handler.count() == 3, 30, what="spring's mail after the clear")


def test_an_action_ends_by_itself_and_the_path_reopens(env):
    dns = env.dns(*mx_records(["e.test"], "mx.yahoo-like.test", "127.0.0.24"))
    sink = env.sink("127.0.0.24", Recorder(rcpt_reply={"*": [TS04, "250 OK"]}))
    gw = env.gateway(dns, YAHOO.replace('duration = "2h"', 'duration = "2s"'))
    send_each(gw, ["a@e.test"])
    wait_for(lambda: api(gw, "/api/v1/shaping")["actions"], 30, what="the action")
    [action] = api(gw, "/api/v1/shaping")["actions"]
    assert action["until"] - action["since"] == 2000, action
    gw.wait_log(rf"shaping action {action['id']} of rule 'ts04' ended", timeout=30)
    wait_for(lambda: sink.handler.count() == 1, 30, what="the retry after the action ended")
    assert api(gw, "/api/v1/shaping")["actions"] == []


def test_rules_reload_with_the_policy(env, tmp_path):
    dns = env.dns(*mx_records(["r.test"], "mx.yahoo-like.test", "127.0.0.25"))
    sink = env.sink("127.0.0.25", Recorder(rcpt_reply={"*": TS04}))
    site_only = 'mailgate.site { name = "yahoo", mx_suffixes = { ".yahoo-like.test" } }\n'
    gw = env.gateway(dns, site_only)
    send_each(gw, ["a@r.test"])
    wait_for(lambda: sink.handler.rcpt_calls, 30, what="a first [TS04]")
    assert api(gw, "/api/v1/shaping")["actions"] == []  # no rule yet: only deferred
    write_policy(tmp_path, YAHOO)
    assert api(gw, "/api/v1/reload", method="POST")
    wait_for(lambda: api(gw, "/api/v1/shaping")["actions"], 30, what="the action after reload")
    assert 'mailgate_shaping_actions_total{rule="ts04",action="suspend"} 1' in metrics(gw)
