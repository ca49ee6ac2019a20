"""Webhooks end to end: the real gateway POSTs delivery-log events to a
Python receiver on loopback (webhook_receiver.py) that verifies every
signature and can fail (500, 429, 400, too slow) and recover. Covers
batching and filters, a target that is down (backlog grows, SMTP unaffected,
everything arrives in order once it is back), dead letters and replay (API
and CLI), a restart and a kill -9 with events queued, a full backlog, the
metrics, and that the secret never shows. Every process is stopped by PID."""
import json
import re
import smtplib
import subprocess
import textwrap
import time

import pytest

from conftest import BIN, Gateway, wait_for
from peers import Recorder, Sink, free_port
from test_http_api import Api, http_port
from testca import TestCA
from webhook_receiver import Receiver

SECRET = "wh-s3cr3t-never-shown-7f3a"


def write_config(tmp_path, targets, configure="", lua=""):
    """A config with the given mailgate.webhook{} bodies (Lua table contents)."""
    hooks = "".join("mailgate.webhook { %s }\n" % t for t in targets)
    p = tmp_path / "mailgate.lua"
    p.write_text(textwrap.dedent("""
        mailgate.configure {
          spool = { path = "unused" },
          %s
        }
        mailgate.listen { address = "127.0.0.1:2525" }
        mailgate.on("rcpt_to", function(tx, rcpt)
          if rcpt.user == "nobody" then return mailgate.reject(550, "5.1.1 no such user") end
        end)
    """) % configure + hooks + textwrap.dedent(lua))
    return str(p)


def target(url, name="app", events=("reception",), batch_size=10, batch_time="100ms",
           max_age="1d", timeout="2s", extra=""):
    ev = ", ".join(f'"{e}"' for e in events)
    return (f'name = "{name}", url = "{url}", secret = "{SECRET}", events = {{ {ev} }}, '
            f'batch_size = {batch_size}, batch_time = "{batch_time}", max_age = "{max_age}", '
            f'timeout = "{timeout}", retry_first = "100ms", retry_max = "400ms" {extra}')


@pytest.fixture
def env(tmp_path):
    started = []

    class Env:
        def receiver(self, **kw):
            r = Receiver(SECRET, **kw)
            started.append(r)
            return r

        def gateway(self, targets, sets=(), configure="", lua="", spool=None, **kw):
            config = write_config(tmp_path, targets, configure, lua)
            gw = Gateway(spool or tmp_path / "spool", config=config, sets=list(sets), **kw)
            started.append(gw)
            return gw

        def sink(self, port):
            s = Sink("127.0.0.1", port, Recorder())
            started.append(s)
            return s

    yield Env()
    for s in reversed(started):
        s.stop()


def send_many(gw, n, rcpt="user@example.net", start=0):
    """Sends n one-recipient messages in one session; returns their ids in order."""
    ids = []
    with smtplib.SMTP(gw.host, gw.port, timeout=30) as s:
        s.ehlo("client.test")
        for i in range(start, start + n):
            s.mail("sender@example.com")
            code, _ = s.rcpt(rcpt)
            assert code == 250
            code, msg = s.data(f"Subject: m{i}\r\n\r\nbody {i}\r\n".encode())
            assert code == 250, msg
            ids.append(re.search(rb"id=([0-9a-f]{32})", msg).group(1).decode())
    return ids


def webhooks_api(gw):
    status, body = Api(gw).json("GET", "/api/v1/webhooks")
    assert status == 200
    return {t["name"]: t for t in body["targets"]}


def metric(gw, name, **labels):
    text = Api(gw).call("GET", "/metrics")[1].decode()
    want = ",".join(f'{k}="{v}"' for k, v in labels.items())
    for line in text.splitlines():
        if line.startswith(name + ("{" + want + "}" if want else " ")):
            return float(line.rsplit(" ", 1)[1])
    return None


def cli(gw, *args):
    p = subprocess.run([BIN, "webhooks", *args, "--api", f"http://127.0.0.1:{http_port(gw)}"],
                       capture_output=True, timeout=60)
    return p.returncode, p.stdout.decode(), p.stderr.decode()


def ids_of(events, event="reception"):
    return [e["id"] for e in events if e["event"] == event]


def assert_secret_hidden(gw):
    assert SECRET not in gw.log()
    assert SECRET not in json.dumps(webhooks_api(gw))
    assert SECRET not in Api(gw).call("GET", "/metrics")[1].decode()


def test_events_arrive_signed_batched_and_filtered(env):
    recv = env.receiver()
    rej = env.receiver()
    gw = env.gateway([target(recv.url, "recv", ("reception",), batch_size=5, batch_time="1s"),
                      target(rej.url, "rej", ("rejection",))])
    ids = send_many(gw, 12)
    with smtplib.SMTP(gw.host, gw.port, timeout=30) as s:
        s.ehlo("client.test")
        s.mail("sender@example.com")
        assert s.rcpt("nobody@example.net")[0] == 550
    wait_for(lambda: len(recv.events()) >= 12, what="12 reception events")
    wait_for(lambda: len(rej.events()) >= 1, what="the rejection event")
    time.sleep(0.5)  # nothing more may come (a late duplicate or a filtered event)
    assert ids_of(recv.events()) == ids  # all, once, in order
    assert {e["event"] for e in recv.events()} == {"reception"}
    assert [e["event"] for e in rej.events()] == ["rejection"]
    assert rej.events()[0]["recipient"] == "nobody@example.net"
    assert recv.bad_signatures == 0 and rej.bad_signatures == 0
    assert max(recv.batch_sizes()) <= 5 and max(recv.batch_sizes()) > 1  # batched, capped
    for ts, sig in recv.headers:
        assert abs(int(ts) - time.time()) < 120 and re.fullmatch(r"sha256=[0-9a-f]{64}", sig)
    event = recv.events()[0]
    assert event["sender"] == "sender@example.com" and event["recipient"] == "user@example.net"
    wait_for(lambda: metric(gw, "mailgate_webhook_events_total", target="recv", result="sent") == 12,
             what="sent counter")
    assert metric(gw, "mailgate_webhook_events_total", target="recv", result="queued") == 12
    assert metric(gw, "mailgate_webhook_post_seconds_count", target="recv") >= 3
    api = webhooks_api(gw)
    assert api["recv"]["sent"] == 12 and api["recv"]["backlog_events"] == 0
    assert api["recv"]["events"] == ["reception"] and "secret" not in api["recv"]
    code, out, _ = cli(gw, "status")
    assert code == 0 and "recv" in out and "rej" in out and "BACKLOG" in out
    assert_secret_hidden(gw)


def test_delivery_follows_reception_per_message(env):
    port = free_port()
    sink = env.sink(port)
    recv = env.receiver()
    lua = 'mailgate.on("route", function(msg, domain) return { smarthost = "[127.0.0.1]:%d" } end)' % port
    gw = env.gateway([target(recv.url, events=("reception", "delivery"))], lua=lua)
    ids = send_many(gw, 5)
    wait_for(lambda: len(ids_of(recv.events(), "delivery")) >= 5, timeout=60, what="deliveries")
    for i in ids:
        mine = [e["event"] for e in recv.events() if e["id"] == i]
        assert mine == ["reception", "delivery"], mine
    assert sink.handler.count() == 5


@pytest.mark.parametrize("failure", ["500", "429", "timeout"])
def test_target_down_backlog_grows_smtp_unaffected_recovery_in_order(env, failure):
    recv = env.receiver()
    if failure == "timeout":
        # Longer than the target's 1 s timeout; the late answer would not count anyway.
        recv.set(status=503, delay=3.0)
    else:
        recv.set(status=int(failure))
    gw = env.gateway([target(recv.url, batch_size=5, timeout="1s")])
    t0 = time.monotonic()
    ids = send_many(gw, 20)
    # One POST at a time, each failing after >= 1 s (timeout) or retried with
    # backoff: had acceptance waited for the target, 20 messages would take far longer.
    assert time.monotonic() - t0 < 15
    wait_for(lambda: recv.started >= 2, what="failing POSTs")
    api = webhooks_api(gw)["app"]
    assert api["backlog_events"] == 20 and api["sent"] == 0
    wait_for(lambda: webhooks_api(gw)["app"]["failed"] >= 5, what="failed counter")
    err = webhooks_api(gw)["app"]["last_error"]
    assert err and (failure in err if failure != "timeout" else "timed out" in err), err
    assert metric(gw, "mailgate_webhook_backlog_events", target="app") == 20
    assert metric(gw, "mailgate_webhook_backlog_bytes", target="app") > 0
    recv.set(status=200, delay=0)
    wait_for(lambda: len(recv.events()) >= 20, timeout=60, what="recovery")
    assert ids_of(recv.events()) == ids
    wait_for(lambda: webhooks_api(gw)["app"]["backlog_events"] == 0, what="empty backlog")
    assert recv.bad_signatures == 0
    assert_secret_hidden(gw)


def test_400_makes_dead_letters_and_replay_delivers_them(env):
    recv = env.receiver(status=400)
    gw = env.gateway([target(recv.url, batch_size=3)])
    ids = send_many(gw, 7)
    wait_for(lambda: webhooks_api(gw)["app"]["dead_letters"] == 7, what="7 dead letters")
    api = webhooks_api(gw)["app"]
    assert api["backlog_events"] == 0 and api["dead"] == 7 and "400" in api["last_error"]
    assert recv.posted == 7  # each event POSTed once: a 400 is never retried
    assert metric(gw, "mailgate_webhook_events_total", target="app", result="dead") == 7
    assert metric(gw, "mailgate_webhook_dead_letters", target="app") == 7
    code, out, _ = cli(gw, "dead-letters", "app")
    assert code == 0 and out.count("reception") == 7 and "HTTP 400" in out
    status, body = Api(gw).json("GET", "/api/v1/webhooks/app/dead_letters?limit=2")
    assert status == 200 and len(body["dead_letters"]) == 2
    assert body["dead_letters"][0]["event"]["id"] == ids[0]
    assert Api(gw).json("POST", "/api/v1/webhooks/nope/replay")[0] == 404
    recv.set(status=200)
    code, out, err = cli(gw, "replay", "app")
    assert code == 0 and "requeued 7 dead letters" in out, out + err
    wait_for(lambda: len(recv.events()) >= 7, what="replayed events")
    assert ids_of(recv.events()) == ids
    wait_for(lambda: webhooks_api(gw)["app"]["dead_letters"] == 0, what="no dead letters")
    assert cli(gw, "replay", "nope")[0] == 1
    assert_secret_hidden(gw)


def test_sigterm_with_events_queued_loses_none(env, tmp_path):
    recv = env.receiver(status=503)
    gw = env.gateway([target(recv.url, batch_size=4)])
    ids = send_many(gw, 15)
    wait_for(lambda: recv.started >= 1, what="a failing POST")
    assert gw.stop() == 0
    recv.set(status=200)
    gw2 = env.gateway([target(recv.url, batch_size=4)])
    wait_for(lambda: len(recv.events()) >= 15, timeout=60, what="queued events after restart")
    more = send_many(gw2, 3, start=15)
    wait_for(lambda: len(recv.events()) >= 18, what="new events")
    time.sleep(0.5)
    assert ids_of(recv.events()) == ids + more  # none lost, none duplicated, in order
    assert recv.bad_signatures == 0


def test_kill9_with_a_post_in_flight_delivers_at_least_once(env):
    recv = env.receiver(delay=2.0)  # acknowledges, but slowly
    gw = env.gateway([target(recv.url, batch_size=5, timeout="10s")])
    ids = send_many(gw, 12)
    wait_for(lambda: recv.started >= 1, what="a POST in flight")
    gw.kill9()
    recv.set(delay=0)
    env.gateway([target(recv.url, batch_size=5)])
    wait_for(lambda: set(ids) <= set(ids_of(recv.events())), timeout=60, what="every event")
    got = ids_of(recv.events())
    dups = len(got) - len(set(got))
    assert dups <= 5  # at most the batch that was in flight
    # In order per message, and overall order once duplicates are dropped.
    seen = []
    for i in got:
        if i not in seen:
            seen.append(i)
    assert seen == ids


def test_full_backlog_sends_new_events_to_dead_letters(env):
    recv = env.receiver(status=500)
    gw = env.gateway([target(recv.url)], sets=["webhooks.max_backlog=4096"])
    send_many(gw, 40)
    wait_for(lambda: webhooks_api(gw)["app"]["dead_letters"] > 0, what="dead letters")
    api = webhooks_api(gw)["app"]
    assert api["backlog_events"] + api["dead_letters"] == 40
    assert api["backlog_bytes"] <= 4096 and api["max_backlog_bytes"] == 4096
    assert metric(gw, "mailgate_webhook_events_total", target="app", result="dead") == api["dead"]
    assert metric(gw, "mailgate_webhook_backlog_limit_bytes") == 4096
    # The backlog drains once the target is back; the dead letters wait for a replay.
    recv.set(status=200)
    wait_for(lambda: len(recv.events()) == api["backlog_events"], what="backlog delivered")
    assert webhooks_api(gw)["app"]["dead_letters"] == api["dead_letters"]


def test_https_targets_verify_the_certificate_against_ca_file(env, tmp_path):
    ca = TestCA(tmp_path / "ca")
    trusted = env.receiver(tls_context=TestCA.server_context(*ca.issue("127.0.0.1", ["127.0.0.1"])))
    other = env.receiver(tls_context=TestCA.server_context(
        *ca.issue("127.0.0.1", ["127.0.0.1"], self_signed=True)))
    gw = env.gateway([target(trusted.url, "trusted"), target(other.url, "untrusted")],
                     sets=[f"webhooks.ca_file={ca.cert}"])
    ids = send_many(gw, 4)
    wait_for(lambda: len(trusted.events()) >= 4, what="events over HTTPS")
    assert ids_of(trusted.events()) == ids and trusted.bad_signatures == 0
    # A certificate that does not chain to ca_file: nothing is sent, all is kept.
    wait_for(lambda: webhooks_api(gw)["untrusted"]["failed"] >= 4, what="TLS failures")
    api = webhooks_api(gw)["untrusted"]
    assert "certificate" in api["last_error"].lower(), api["last_error"]
    assert api["backlog_events"] == 4 and other.requests == 0


@pytest.mark.parametrize("body, error", [
    ('name = "a", url = "ftp://x/", secret = "s"', "an http:// or https:// URL"),
    ('name = "a", url = "http://x/", secret = ""', "must not be empty"),
    ('name = "a", url = "http://x/", secret = "s", events = { "delivered" }', 'unknown event "delivered"'),
    ('name = "a", url = "http://x/", secret = "s", tenant = "ac me"',
     "a tenant is 1..64 bytes"),
    ('name = "a b", url = "http://x/", secret = "s"', "a name of"),
    ('name = "a", url = "http://x/", secret = "s", batch_size = 0', "batch_size"),
    ('url = "http://x/", secret = "s"', "name: required"),
])
def test_check_config_refuses_bad_targets(tmp_path, body, error):
    config = write_config(tmp_path, [body])
    p = subprocess.run([BIN, "check-config", "--config", config], capture_output=True, timeout=60)
    assert p.returncode != 0
    assert error in p.stderr.decode() + p.stdout.decode()
    assert "webhook[1]" in p.stderr.decode() + p.stdout.decode()


def test_check_config_refuses_duplicate_names_and_accepts_a_good_target(tmp_path):
    good = 'name = "a", url = "https://hooks.example.com/x", secret = "s"'
    config = write_config(tmp_path, [good, good])
    p = subprocess.run([BIN, "check-config", "--config", config], capture_output=True, timeout=60)
    assert p.returncode != 0 and b"already a webhook target" in p.stderr + p.stdout
    config = write_config(tmp_path, [good])
    p = subprocess.run([BIN, "check-config", "--config", config], capture_output=True, timeout=60)
    assert p.returncode == 0, p.stderr


def test_tenant_filter_sends_only_that_tenants_events(env):
    """mailgate.webhook{ tenant = "acme" } gets only records whose tenant is
    acme (set by msg:set_tenant); a target without one gets every record,
    and the records carry "tenant" and "campaign" (DESIGN §9)."""
    rx_acme = env.receiver()
    rx_all = env.receiver()
    lua = """
        mailgate.on("message", function(tx, msg)
          local t = msg:header("X-Tenant")
          if t then msg:set_tenant(t); msg:set_campaign("c1") end
        end)
    """
    gw = env.gateway([target(rx_acme.url, "acme", extra=', tenant = "acme"'),
                      target(rx_all.url, "all")], lua=lua)
    with smtplib.SMTP(gw.host, gw.port, timeout=30) as s:
        for tenant in ("acme", "other", None, "acme"):
            hdr = f"X-Tenant: {tenant}\r\n" if tenant else ""
            s.sendmail("sender@example.com", ["user@example.net"],
                       f"{hdr}Subject: t\r\n\r\nbody\r\n".encode())
    wait_for(lambda: len(ids_of(rx_all.events())) >= 4, what="all four receptions")
    wait_for(lambda: len(ids_of(rx_acme.events())) >= 2, what="acme's two receptions")
    acme = [e for e in rx_acme.events() if e["event"] == "reception"]
    assert len(acme) == 2 and all(e["tenant"] == "acme" and e["campaign"] == "c1" for e in acme)
    everything = [e for e in rx_all.events() if e["event"] == "reception"]
    assert sorted(e.get("tenant", "") for e in everything) == ["", "acme", "acme", "other"]
