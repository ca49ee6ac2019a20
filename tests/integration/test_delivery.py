"""Outbound delivery end to end: the real gateway, dnsmasq for MX records,
aiosmtpd servers as the remote MX hosts, all on loopback."""
import email
import email.policy
import json
import os
import signal
import smtplib

import pytest

from conftest import Gateway, spool_dump, wait_for
from peers import Dnsmasq, Recorder, Sink, free_port


@pytest.fixture
def net(tmp_path):
    """dnsmasq + a port for the remote MX servers; everything stopped after."""
    started = []

    class Net:
        port = free_port()

        def dns(self, *records):
            d = Dnsmasq(records)
            started.append(d)
            return d

        def sink(self, host="127.0.0.1", handler=None, smtputf8=True):
            s = Sink(host, self.port, handler, smtputf8)
            started.append(s)
            return s

        def gateway(self, dns, sets=(), spool=None, **kw):
            gw = Gateway(spool or tmp_path / "spool", dns=dns.server,
                         sets=[f"delivery.port={self.port}", "delivery.retry.first=1s",
                               "delivery.retry.max=2s"] + list(sets), **kw)
            started.append(gw)
            return gw

    yield Net()
    for s in reversed(started):
        s.stop()


def send(gw, sender, rcpts, body=b"Subject: test\r\n\r\nhello\r\n", **kw):
    with smtplib.SMTP(gw.host, gw.port, timeout=30) as s:
        s.sendmail(sender, rcpts, body, **kw)


def log_events(gw):
    path = os.path.join(os.path.dirname(gw.spool), "deliveries.jsonl")
    if not os.path.exists(path):
        return []
    with open(path) as f:
        return [json.loads(l) for l in f if l.strip()]


def test_delivers_to_lowest_preference_mx_and_logs(net):
    dns = net.dns("--mx-host=multi.test,mx1.multi.test,10", "--mx-host=multi.test,mx2.multi.test,20",
                  "--host-record=mx1.multi.test,127.0.0.2", "--host-record=mx2.multi.test,127.0.0.3")
    mx1, mx2 = net.sink("127.0.0.2"), net.sink("127.0.0.3")
    gw = net.gateway(dns)
    send(gw, "s@example.org", ["a@multi.test", "b@multi.test"])
    wait_for(lambda: mx1.handler.count() == 1, 20, what="delivery to mx1")
    assert mx2.handler.count() == 0
    m = mx1.handler.messages[0]
    assert m["from"] == "s@example.org" and sorted(m["to"]) == ["a@multi.test", "b@multi.test"]
    assert b"\r\nhello\r\n" in m["data"] and m["data"].startswith(b"Received: from ")
    wait_for(lambda: len([e for e in log_events(gw) if e["event"] == "delivery"]) == 2, 10,
             what="delivery log")
    ev = [e for e in log_events(gw) if e["event"] == "delivery"][0]
    assert ev["destination"] == "multi.test" and ev["mx"] == "mx1.multi.test" and ev["code"] == 250
    # Fully delivered messages leave the spool.
    gw.stop()
    assert spool_dump(gw.spool) == []


def test_falls_back_to_next_mx_when_first_is_down(net):
    dns = net.dns("--mx-host=fb.test,mx1.fb.test,10", "--mx-host=fb.test,mx2.fb.test,20",
                  "--host-record=mx1.fb.test,127.0.0.4", "--host-record=mx2.fb.test,127.0.0.5")
    mx2 = net.sink("127.0.0.5")
    gw = net.gateway(dns)
    send(gw, "s@example.org", ["a@fb.test"])
    wait_for(lambda: mx2.handler.count() == 1, 20, what="delivery to mx2")


def test_implicit_mx_from_a_record(net):
    dns = net.dns("--host-record=aonly.test,127.0.0.6")
    sink = net.sink("127.0.0.6")
    gw = net.gateway(dns)
    send(gw, "s@example.org", ["a@aonly.test"])
    wait_for(lambda: sink.handler.count() == 1, 20, what="delivery to the implicit MX")


def test_5xx_bounces_with_an_rfc3464_dsn(net):
    dns = net.dns("--mx-host=dest.test,mx.dest.test,10", "--mx-host=sender.test,mx.dest.test,10",
                  "--host-record=mx.dest.test,127.0.0.7")
    rec = Recorder(rcpt_reply={"gone@dest.test": "550 5.1.1 no such user here"})
    sink = net.sink("127.0.0.7", rec)
    gw = net.gateway(dns)
    with smtplib.SMTP(gw.host, gw.port, timeout=30) as s:
        s.ehlo("client.test")
        s.mail("app@sender.test", ["ENVID=env123"])
        s.rcpt("gone@dest.test", ["NOTIFY=FAILURE", "ORCPT=rfc822;gone@dest.test"])
        s.rcpt("ok@dest.test")
        s.data(b"Subject: will bounce\r\nMessage-ID: <orig@sender.test>\r\n\r\nbody\r\n")
    # The good recipient gets the message; the sender gets a DSN for the other.
    wait_for(lambda: rec.count() == 2, 30, what="message + DSN at the sink")
    msgs = {m["from"].strip("<>"): m for m in rec.messages}
    assert msgs["app@sender.test"]["to"] == ["ok@dest.test"]
    dsn = msgs[""]
    assert dsn["to"] == ["app@sender.test"]
    parsed = email.message_from_bytes(dsn["data"], policy=email.policy.default)
    assert parsed.get_content_type() == "multipart/report"
    assert parsed.get_param("report-type") == "delivery-status"
    parts = list(parsed.iter_parts())
    assert parts[1].get_content_type() == "message/delivery-status"
    blocks = parts[1].get_payload()
    assert str(blocks[0]["Reporting-MTA"]).strip() == "dns; gw.mailgate.test"
    assert str(blocks[0]["Original-Envelope-Id"]).strip() == "env123"
    r = blocks[1]
    assert str(r["Final-Recipient"]).strip().lower() == "rfc822; gone@dest.test"
    assert str(r["Original-Recipient"]).replace(" ", "").lower() == "rfc822;gone@dest.test"
    assert str(r["Action"]).strip() == "failed"
    assert str(r["Status"]).strip() == "5.1.1"
    assert "550" in str(r["Diagnostic-Code"]) and "no such user" in str(r["Diagnostic-Code"])
    assert str(r["Remote-MTA"]).strip() == "dns; mx.dest.test"
    ev = {e["event"] for e in log_events(gw)}
    assert {"delivery", "bounce"} <= ev
    b = [e for e in log_events(gw) if e["event"] == "bounce"][0]
    assert b["bounce_class"] == "bad-mailbox" and b["enhanced"] == "5.1.1"


@pytest.mark.parametrize("records,domain,status", [
    (["--mx-host=nullmx.test,.,0"], "nullmx.test", "5.1.10"),
    ([], "nxdomain.test", "5.1.2"),
])
def test_unroutable_domains_bounce(net, records, domain, status):
    dns = net.dns("--mx-host=sender.test,mx.sender.test,10",
                  "--host-record=mx.sender.test,127.0.0.8", *records)
    sink = net.sink("127.0.0.8")
    gw = net.gateway(dns)
    send(gw, "app@sender.test", [f"x@{domain}"])
    wait_for(lambda: sink.handler.count() == 1, 30, what="DSN at the sender's MX")
    parsed = email.message_from_bytes(sink.handler.messages[0]["data"], policy=email.policy.default)
    blocks = list(parsed.iter_parts())[1].get_payload()
    assert str(blocks[1]["Status"]).strip() == status


def test_4xx_is_retried_with_backoff(net):
    dns = net.dns("--mx-host=retry.test,mx.retry.test,10", "--host-record=mx.retry.test,127.0.0.9")
    rec = Recorder(rcpt_reply={"*": ["451 4.3.0 try later", "250"]})
    sink = net.sink("127.0.0.9", rec)
    gw = net.gateway(dns)
    send(gw, "s@example.org", ["a@retry.test"])
    wait_for(lambda: rec.count() == 1, 30, what="delivery after retry")
    events = [e["event"] for e in log_events(gw) if e.get("recipient") == "a@retry.test"]
    assert events[:1] == ["transient_failure"] and "delivery" in events
    gw.stop()
    assert spool_dump(gw.spool) == []


def test_null_sender_is_never_bounced(net):
    dns = net.dns("--mx-host=dest.test,mx.dest.test,10", "--host-record=mx.dest.test,127.0.0.10")
    rec = Recorder(rcpt_reply={"*": "550 5.1.1 unknown"})
    net.sink("127.0.0.10", rec)
    gw = net.gateway(dns)
    send(gw, "", ["a@dest.test"])
    wait_for(lambda: any(e["event"] == "bounce" for e in log_events(gw)), 20, what="bounce")
    gw.stop()
    assert spool_dump(gw.spool) == []  # no DSN was queued
    assert "1 bounced, 0 expired, 0 DSNs" in gw.log()


def test_connection_reuse(net):
    dns = net.dns("--mx-host=reuse.test,mx.reuse.test,10", "--host-record=mx.reuse.test,127.0.0.11")
    sink = net.sink("127.0.0.11")
    gw = net.gateway(dns, sets=["delivery.max_connections=2"])
    with smtplib.SMTP(gw.host, gw.port, timeout=30) as s:
        for i in range(40):
            s.sendmail("s@example.org", [f"u{i}@reuse.test"], b"Subject: r\r\n\r\nx\r\n")
    wait_for(lambda: sink.handler.count() == 40, 60, what="40 deliveries")
    assert len(sink.handler.sessions) <= 6, len(sink.handler.sessions)


def test_three_domains_three_destinations(net):
    dns = net.dns("--mx-host=d1.test,mx.d1.test,10", "--host-record=mx.d1.test,127.0.0.12",
                  "--mx-host=d2.test,mx.d2.test,10", "--host-record=mx.d2.test,127.0.0.13",
                  "--mx-host=d3.test,mx.d3.test,10", "--host-record=mx.d3.test,127.0.0.14")
    sinks = [net.sink(f"127.0.0.{i}") for i in (12, 13, 14)]
    gw = net.gateway(dns)
    send(gw, "s@example.org", ["a@d1.test", "b@d2.test", "c@d3.test"])
    for s, r in zip(sinks, ["a@d1.test", "b@d2.test", "c@d3.test"]):
        wait_for(lambda: s.handler.count() == 1, 20, what="delivery to " + r)
        assert s.handler.messages[0]["to"] == [r]
    gw.stop()
    assert spool_dump(gw.spool) == []
