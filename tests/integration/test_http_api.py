"""The admin HTTP API and /metrics against the real gateway: every endpoint,
bad input (bad JSON, huge bodies, unknown ids and paths, wrong methods,
missing token), while SMTP traffic flows; promtool lints a live /metrics;
the delivery counters match the delivery log line for line."""
import json
import os
import re
import shutil
import smtplib
import subprocess
import threading
import time
import urllib.error
import urllib.parse
import urllib.request

import pytest

from conftest import Gateway, wait_for
from peers import Dnsmasq, Recorder, Sink, free_port
from test_delivery import log_events, send


def http_port(gw):
    return int(gw.wait_log(r"listening http=\S+:(\d+)").group(1))


class Api:
    def __init__(self, gw, token=None):
        self.base = f"http://127.0.0.1:{http_port(gw)}"
        self.token = token

    def call(self, method, path, body=None, raw=None, headers=None, timeout=20):
        data = raw if raw is not None else (json.dumps(body).encode() if body is not None else None)
        req = urllib.request.Request(self.base + path, data=data, method=method)
        if self.token:
            req.add_header("Authorization", f"Bearer {self.token}")
        for k, v in (headers or {}).items():
            req.add_header(k, v)
        try:
            with urllib.request.urlopen(req, timeout=timeout) as r:
                return r.status, r.read()
        except urllib.error.HTTPError as e:
            return e.code, e.read()

    def json(self, method, path, body=None, **kw):
        status, data = self.call(method, path, body, **kw)
        return status, json.loads(data)


@pytest.fixture
def started(tmp_path):
    procs = []
    yield procs
    for p in reversed(procs):
        p.stop()


def test_health_readiness_and_metrics_are_open_api_needs_token(tmp_path, started):
    gw = Gateway(tmp_path / "spool", sets=["http.token=s3cret"])
    started.append(gw)
    open_api, api = Api(gw), Api(gw, token="s3cret")
    assert open_api.call("GET", "/healthz") == (200, b"ok\n")
    status, ready = open_api.json("GET", "/readyz")
    assert status == 200 and ready["ready"] is True
    # Recovery's progress is part of readiness (an empty spool: done at once).
    wait_for(lambda: open_api.json("GET", "/readyz")[1]["recovery"]["done"], 10,
             what="recovery done in /readyz")
    rec = open_api.json("GET", "/readyz")[1]["recovery"]
    assert rec["records"] == 0 and rec["messages"] == 0 and rec["seconds"] >= 0
    status, text = open_api.call("GET", "/metrics")
    assert status == 200 and b"mailgate_build_info" in text
    status, body = open_api.json("GET", "/api/v1/queue")
    assert status == 401 and "token" in body["error"]
    assert Api(gw, token="wrong").json("GET", "/api/v1/queue")[0] == 401
    status, body = api.json("GET", "/api/v1/queue")
    assert status == 200 and body["destinations"] == []


def test_bad_input_never_crashes(tmp_path, started):
    gw = Gateway(tmp_path / "spool")
    started.append(gw)
    api = Api(gw)
    assert api.json("POST", "/api/v1/bounce", raw=b"{not json")[0] == 400
    assert api.json("POST", "/api/v1/bounce", body=[1, 2])[0] == 400
    assert api.json("POST", "/api/v1/bounce", body={"id": "xyz"})[0] == 400
    assert api.json("POST", "/api/v1/bounce", body={"id": "0" * 32})[0] == 404
    assert api.json("POST", "/api/v1/bounce", body={"id": "0" * 32, "destination": "a"})[0] == 400
    assert api.json("GET", "/api/v1/messages/nothex")[0] == 400
    assert api.json("GET", "/api/v1/messages/" + "0" * 32)[0] == 404
    assert api.json("GET", "/api/v1/nope")[0] == 404
    assert api.json("DELETE", "/api/v1/queue")[0] == 405
    try:
        urllib.request.urlopen(urllib.request.Request(api.base + "/api/v1/suppression",
                                                      method="PUT"), timeout=10)
        raise AssertionError("PUT accepted")
    except urllib.error.HTTPError as e:
        assert e.code == 405 and e.headers["Allow"] == "GET, POST", dict(e.headers)
    assert api.json("POST", "/api/v1/queue/none.test/explode")[0] == 404
    assert api.json("POST", "/api/v1/queue/none.test/resume")[0] == 404
    assert api.json("POST", "/api/v1/queue/none.test/flush")[0] == 404
    assert api.json("POST", "/api/v1/suppression", body={"address": "not an address"})[0] == 400
    assert api.json("POST", "/api/v1/suppression", body={"reason": "x"})[0] == 400
    assert api.json("DELETE", "/api/v1/suppression/nobody@x.test")[0] == 404
    status, body = api.json("POST", "/api/v1/bounce", raw=b"x" * (33 << 20))
    assert status == 413
    assert api.json("GET", "/api/v1/messages?limit=-5&cursor=%ff")[0] == 200
    assert gw.proc.poll() is None
    assert api.call("GET", "/healthz")[0] == 200


def test_queue_endpoints_while_smtp_load_flows(tmp_path, started):
    gw = Gateway(tmp_path / "spool", sets=["delivery.retry.first=1h", "delivery.retry.max=2h"])
    started.append(gw)
    api = Api(gw)
    stop = threading.Event()
    sent = []

    def load():
        while not stop.is_set():
            with smtplib.SMTP(gw.host, gw.port, timeout=30) as s:
                for _ in range(10):
                    s.sendmail("s@example.org", ["r@load.test"], b"Subject: l\r\n\r\nl\r\n")
                    sent.append(1)

    threads = [threading.Thread(target=load) for _ in range(2)]
    for t in threads:
        t.start()
    try:
        send(gw, "s@example.org", ["a@held.test", "b@held.test"])
        send(gw, "s@example.org", ["c@held.test"])

        def held():
            status, body = api.json("GET", "/api/v1/queue")
            assert status == 200
            d = {x["name"]: x for x in body["destinations"]}
            return d.get("held.test") if d.get("held.test", {}).get("scheduled") == 2 else None

        d = wait_for(held, 20, what="held.test queued")
        assert d["oldest_age_seconds"] >= 0 and not d["suspended"]
        assert api.json("POST", "/api/v1/queue/held.test/suspend") == (
            200, {"destination": "held.test", "action": "suspend"})
        dests = {x["name"]: x for x in api.json("GET", "/api/v1/queue")[1]["destinations"]}
        assert dests["held.test"]["suspended"]
        assert api.json("POST", "/api/v1/queue/held.test/resume")[0] == 200
        assert api.json("POST", "/api/v1/queue/held.test/flush")[0] == 200

        status, page = api.json("GET", "/api/v1/messages?destination=held.test&limit=1")
        assert status == 200 and len(page["messages"]) == 1 and page["next_cursor"]
        first = page["messages"][0]
        status, page2 = api.json("GET", "/api/v1/messages?destination=held.test&limit=1&cursor="
                                 + urllib.parse.quote(page["next_cursor"]))
        assert len(page2["messages"]) == 1 and page2["messages"][0]["id"] != first["id"]
        assert page2["next_cursor"] is None
        status, msg = api.json("GET", "/api/v1/messages/" + first["id"])
        assert status == 200 and msg["sender"] == "s@example.org"
        assert msg["destinations"][0]["name"] == "held.test"
        rcpts = {r["address"] for r in msg["destinations"][0]["recipients"]}
        assert rcpts in ({"a@held.test", "b@held.test"}, {"c@held.test"})

        assert api.json("POST", "/api/v1/bounce", body={"id": first["id"], "reason": "spam"}) == (
            200, {"bounced": 1})
        wait_for(lambda: any(e["event"] == "admin_bounce" for e in log_events(gw)), 10,
                 what="admin_bounce in the log")
        ev = [e for e in log_events(gw) if e["event"] == "admin_bounce"]
        assert ev[0]["enhanced"] == "5.0.0" and "spam" in ev[0]["text"]
        assert api.json("POST", "/api/v1/bounce",
                        body={"destination": "held.test", "reason": "all"}) == (200, {"bounced": 1})
    finally:
        stop.set()
        for t in threads:
            t.join(30)
    assert len(sent) > 0
    assert gw.proc.poll() is None


def test_suppression_and_reload_endpoints(tmp_path, started):
    gw = Gateway(tmp_path / "spool")
    started.append(gw)
    api = Api(gw)
    for a in ["b@x.test", "A@x.test", "c@x.test"]:
        assert api.json("POST", "/api/v1/suppression", body={"address": a, "reason": "test"})[0] == 201
    status, page = api.json("GET", "/api/v1/suppression?limit=2")
    assert [e["address"] for e in page["entries"]] == ["a@x.test", "b@x.test"]
    status, page2 = api.json("GET", "/api/v1/suppression?limit=2&cursor=" + page["next_cursor"])
    assert [e["address"] for e in page2["entries"]] == ["c@x.test"] and page2["next_cursor"] is None
    assert api.json("DELETE", "/api/v1/suppression/" + urllib.parse.quote("B@x.test"))[0] == 200
    assert len(api.json("GET", "/api/v1/suppression")[1]["entries"]) == 2
    status, body = api.json("POST", "/api/v1/reload")
    assert status == 200 and body["version"] == 2
    gw.stop()
    gw2 = Gateway(gw.spool)
    started.append(gw2)
    assert len(Api(gw2).json("GET", "/api/v1/suppression")[1]["entries"]) == 2  # persisted


def test_reload_with_broken_config_is_422(tmp_path, started):
    config = tmp_path / "mailgate.lua"
    config.write_text('mailgate.listen { address = "127.0.0.1:2525" }\n')
    gw = Gateway(tmp_path / "spool", config=str(config))
    started.append(gw)
    config.write_text("mailgate.on('rcpt_to', function( end\n")
    status, body = Api(gw).json("POST", "/api/v1/reload")
    assert status == 422 and "mailgate.lua" in body["error"]


def parse_metrics(text):
    out = {}
    for line in text.splitlines():
        if line.startswith("#") or not line.strip():
            continue
        name, value = line.rsplit(" ", 1)
        out[name] = float(value)
    return out


def test_metrics_lint_and_match_the_delivery_log(tmp_path, started):
    promtool = shutil.which("promtool")
    assert promtool, "promtool missing (scripts/setup installs the prometheus package)"
    port = free_port()
    dns = Dnsmasq(["--mx-host=ok.test,mx.ok.test,10", "--host-record=mx.ok.test,127.0.0.90",
                   "--mx-host=mix.test,mx.mix.test,10", "--host-record=mx.mix.test,127.0.0.91",
                   "--mx-host=null.test,.,0"])
    started.append(dns)
    started.append(Sink("127.0.0.90", port))
    started.append(Sink("127.0.0.91", port, Recorder(rcpt_reply={
        "gone@mix.test": "550 5.1.1 no such user", "later@mix.test": "451 4.2.0 later"})))
    config = tmp_path / "mailgate.lua"
    config.write_text('mailgate.listen { address = "127.0.0.1:2525" }\n'
                      'mailgate.on("route", function(msg, d)\n'
                      '  if d == "drop.test" then return { discard = true } end end)\n')
    gw = Gateway(tmp_path / "spool", dns=dns.server, config=str(config),
                 sets=[f"delivery.port={port}", "delivery.retry.first=1s", "delivery.retry.max=1s",
                       "delivery.retry.max_age=4s", "metrics.destinations.1=ok.test"])
    started.append(gw)
    api = Api(gw)
    # The sender's domain accepts mail, so the DSNs are delivered too and the
    # gateway falls quiet (no endless retries while counters and log are compared).
    send(gw, "s@ok.test", ["a@ok.test", "b@ok.test"])
    send(gw, "s@ok.test", ["ok@mix.test", "gone@mix.test", "later@mix.test"])
    send(gw, "", ["x@null.test"])  # null MX: a bounce (and no DSN for <>)
    send(gw, "s@ok.test", ["d@drop.test"])
    wait_for(lambda: any(e["event"] == "expiration" for e in log_events(gw)), 30,
             what="the 451 recipient to expire")

    def tally():
        counted = {}
        for e in log_events(gw):
            if e["event"] in ("reception", "rejection"):
                continue
            label = "ok.test" if e.get("destination") == "ok.test" else "other"
            counted[(e["event"], label)] = counted.get((e["event"], label), 0) + 1
        return counted

    results = ["delivery", "transient_failure", "bounce", "expiration", "admin_bounce", "discard"]

    def consistent():
        # The log is written by its own thread: compare once both stand still.
        before = tally()
        status, text = api.call("GET", "/metrics")
        time.sleep(0.3)
        if tally() != before:
            return None
        m = parse_metrics(text.decode())
        for result in results:
            for label in ["ok.test", "other"]:
                key = f'mailgate_deliveries_total{{result="{result}",destination="{label}"}}'
                if m.get(key, 0) != before.get((result, label), 0):
                    return None
        return text, m, before

    text, m, counted = wait_for(consistent, 20, interval=0.2,
                                what="delivery counters equal to the delivery log")
    lint = subprocess.run([promtool, "check", "metrics"], input=text, capture_output=True,
                          timeout=60)
    assert lint.returncode == 0, lint.stdout + lint.stderr
    # 2 recipients + 2 DSNs (the bounce and the expiration) went to ok.test.
    assert counted[("delivery", "ok.test")] == 4 and counted[("discard", "other")] == 1
    assert m["mailgate_messages_received_total{protocol=\"smtp\"}"] == 4
    assert m["mailgate_spool_write_seconds_count"] > 0
    assert m['mailgate_dns_queries_total{result="nullmx"}'] >= 1
    assert m["mailgate_outbound_connections_total{tls=\"false\"}"] >= 2


def iso_ms(text):
    """Epoch milliseconds of the API's "2026-11-28T17:04:00.000Z"."""
    import datetime
    t = datetime.datetime.strptime(text, "%Y-%m-%dT%H:%M:%S.%fZ")
    return int(t.replace(tzinfo=datetime.timezone.utc).timestamp() * 1000)


def test_message_view_shows_the_next_attempt_after_a_destination_deferral(tmp_path, started):
    # Nothing listens on the MX: the connection is refused and the whole
    # destination waits delivery.retry.first; the spool's record of the
    # message still says "now" (no attempt of the message was counted).
    port = free_port()
    dns = Dnsmasq(["--mx-host=refused.test,mx.refused.test,10",
                   "--host-record=mx.refused.test,127.0.0.93"])
    started.append(dns)
    gw = Gateway(tmp_path / "spool", dns=dns.server,
                 sets=[f"delivery.port={port}", "delivery.retry.first=1h", "delivery.retry.max=2h"])
    started.append(gw)
    api = Api(gw)
    send(gw, "s@example.org", ["a@refused.test"])
    status, page = api.json("GET", "/api/v1/messages?destination=refused.test")
    assert status == 200 and len(page["messages"]) == 1, page
    msg_id = page["messages"][0]["id"]

    def view():
        status, msg = api.json("GET", "/api/v1/messages/" + msg_id)
        assert status == 200, msg
        return msg["destinations"][0]

    wait_for(lambda: any(e["event"] == "transient_failure" and e.get("destination") == "refused.test"
                         for e in log_events(gw)), 20, what="the destination-level deferral")
    deferred_at = time.time() * 1000  # the queue changes just after the log line
    dest = wait_for(lambda: (lambda d: d if d["state"] == "scheduled" else None)(view()), 10,
                    what="the message scheduled")
    listed = api.json("GET", "/api/v1/messages?destination=refused.test")[1]["messages"][0]
    assert dest["name"] == "refused.test" and dest["attempts"] == 0
    assert dest["suspended"] is False
    # An hour from the deferral (not the reception time), as the listing says.
    next_ms = iso_ms(dest["next_attempt"])
    assert deferred_at - 5000 + 3_600_000 < next_ms <= deferred_at + 3_600_000 + 1000, dest
    assert dest["next_attempt"] == listed["next_attempt"]
    # Suspended: still scheduled, and it says so.
    assert api.json("POST", "/api/v1/queue/refused.test/suspend")[0] == 200
    assert view()["suspended"] is True
    assert view()["next_attempt"] == dest["next_attempt"]
    # Flushed (still suspended, so no connection is tried): due now.
    assert api.json("POST", "/api/v1/queue/refused.test/flush")[0] == 200
    now = view()
    assert now["state"] == "ready", now
    assert iso_ms(now["next_attempt"]) <= time.time() * 1000 + 1000


def test_inject_structured_and_raw_through_the_same_hooks(tmp_path, started):
    import email
    import email.policy
    port = free_port()
    dns = Dnsmasq(["--mx-host=in.test,mx.in.test,10", "--host-record=mx.in.test,127.0.0.92"])
    started.append(dns)
    sink = Sink("127.0.0.92", port)
    started.append(sink)
    config = tmp_path / "mailgate.lua"
    config.write_text('mailgate.listen { address = "127.0.0.1:2525" }\n'
                      'mailgate.on("rcpt_to", function(tx, r)\n'
                      '  if r.user == "refused" then return mailgate.reject(550, "5.1.1 nobody") end\n'
                      'end)\n'
                      'mailgate.on("message", function(tx, msg)\n'
                      '  msg:add_header("X-Via", tx.conn.listener .. " " .. tx.conn.remote_ip)\n'
                      'end)\n')
    gw = Gateway(tmp_path / "spool", dns=dns.server, config=str(config),
                 sets=[f"delivery.port={port}"])
    started.append(gw)
    api = Api(gw)
    html = "<p>" + "Grüße, 世界! " * 400 + "</p>"
    html = html[:5000]
    subject = "Prüfung: déjà vu ✓"
    status, body = api.json("POST", "/api/v1/inject", body={
        "from": "sender@example.org", "to": ["a@in.test", "refused@in.test"],
        "subject": subject, "html": html, "text": "plain ✓",
        "headers": {"X-Campaign": "c1"}})
    assert status == 200, body
    assert body["accepted"] == 1 and len(body["id"]) == 32
    assert body["rejected"] == [{"recipient": "refused@in.test", "code": 550,
                                 "text": "5.1.1 nobody"}]
    wait_for(lambda: sink.handler.count() == 1, 20, what="delivery of the injected message")
    data = sink.handler.messages[0]["data"]
    assert all(len(line) <= 998 for line in data.split(b"\r\n")), "a line over 998 octets"
    msg = email.message_from_bytes(data, policy=email.policy.default)
    assert str(msg["Subject"]) == subject
    assert msg["X-Campaign"] == "c1" and msg["X-Via"] == "http 127.0.0.1"
    parts = {p.get_content_type(): p.get_content() for p in msg.walk() if not p.is_multipart()}
    assert parts["text/html"].rstrip("\r\n") == html
    assert parts["text/plain"].rstrip("\r\n") == "plain ✓"

    status, body = api.json("POST", "/api/v1/inject", body={
        "from": "sender@example.org", "to": ["b@in.test"],
        "content": "Subject: raw\nFrom: sender@example.org\n\nline one\n.leading dot\n"})
    assert status == 200 and body["accepted"] == 1
    wait_for(lambda: sink.handler.count() == 2, 20, what="delivery of the raw message")
    raw = sink.handler.messages[1]["data"]
    assert b"\r\nline one\r\n.leading dot\r\n" in raw

    status, body = api.json("POST", "/api/v1/inject", body={
        "from": "sender@example.org", "to": ["refused@in.test"], "content": "Subject: x\n\nx\n"})
    assert status == 422 and body["accepted"] == 0 and body["rejected"][0]["code"] == 550
    assert api.json("POST", "/api/v1/inject", raw=b"[")[0] == 400
    assert api.json("POST", "/api/v1/inject", body={"from": "a@b.test"})[0] == 400
    assert api.json("POST", "/api/v1/inject", body={"from": "a@b.test", "to": ["x@in.test"]})[0] == 400
    assert api.json("POST", "/api/v1/inject", body={
        "from": "a@b.test", "to": ["x@in.test"], "text": "t",
        "headers": {"Bad\r\nName": "v"}})[0] == 400
    status, body = api.json("POST", "/api/v1/inject", body={
        "from": "a@b.test", "to": ["x@in.test"], "content": "Subject: long\n\n" + "x" * 1200 + "\n"})
    assert status == 422 and "998" in body["error"]
    m = parse_metrics(api.call("GET", "/metrics")[1].decode())
    assert m['mailgate_messages_received_total{protocol="http"}'] == 2
