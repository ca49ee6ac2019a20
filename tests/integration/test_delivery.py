"""Outbound delivery end to end: the real gateway, dnsmasq for MX records,
aiosmtpd servers as the remote MX hosts, all on loopback."""
import email
import email.policy
import json
import os
import re
import signal
import smtplib
import ssl
import subprocess
import time

import pytest

from conftest import Gateway, spool_dump, wait_for
from test_smtp_inbound import write_config
from peers import Dnsmasq, Recorder, Sink, ZoneServer, free_port


@pytest.fixture
def net(tmp_path):
    """dnsmasq or ZoneServer DNS + a port for the remote MX servers; everything
    stopped after."""
    started = []

    class Net:
        port = free_port()

        def dns(self, *records):
            d = Dnsmasq(records)
            started.append(d)
            return d

        def zone(self, records, **kw):
            z = ZoneServer(records, **kw)
            started.append(z)
            return z

        def sink(self, host="127.0.0.1", handler=None, smtputf8=True, tls_context=None):
            s = Sink(host, self.port, handler, smtputf8, tls_context)
            started.append(s)
            return s

        def track(self, peer):
            """Stops `peer` (anything with stop()) with the rest."""
            started.append(peer)
            return peer

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


def server_tls_context(tmp_path, cn):
    """A TLS server context with a fresh self-signed certificate for `cn`."""
    key, cert = tmp_path / "tls.key", tmp_path / "tls.crt"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
                    "-subj", f"/CN={cn}", "-keyout", str(key), "-out", str(cert)],
                   check=True, capture_output=True)
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(str(cert), str(key))
    return ctx


@pytest.mark.parametrize("mode", ["opportunistic", "required"])
def test_starttls_encrypts_and_logs_tls(net, tmp_path, mode):
    # The certificate is self-signed: neither mode verifies (RFC 7435).
    dns = net.dns("--mx-host=tls.test,mx.tls.test,10", "--host-record=mx.tls.test,127.0.0.30")
    sink = net.sink("127.0.0.30", tls_context=server_tls_context(tmp_path, "mx.tls.test"))
    gw = net.gateway(dns, sets=[f"delivery.tls={mode}"])
    send(gw, "s@example.org", ["a@tls.test"])
    wait_for(lambda: sink.handler.count() == 1, 20, what="delivery over TLS")
    m = sink.handler.messages[0]
    assert m["tls"] and m["to"] == ["a@tls.test"]
    assert b"\r\nhello\r\n" in m["data"]
    wait_for(lambda: any(e["event"] == "delivery" for e in log_events(gw)), 10,
             what="delivery log")
    ev = [e for e in log_events(gw) if e["event"] == "delivery"][0]
    assert ev["mx"] == "mx.tls.test" and ev["tls"] is True


def test_failed_handshake_falls_back_to_plaintext_when_opportunistic(net, tmp_path):
    dns = net.dns("--mx-host=badtls.test,mx.badtls.test,10",
                  "--host-record=mx.badtls.test,127.0.0.33")
    ctx = server_tls_context(tmp_path, "mx.badtls.test")
    ctx.minimum_version = ctx.maximum_version = ssl.TLSVersion.TLSv1_1  # below our TLS 1.2
    sink = net.sink("127.0.0.33", tls_context=ctx)
    gw = net.gateway(dns)
    send(gw, "s@example.org", ["a@badtls.test"])
    wait_for(lambda: sink.handler.count() == 1, 20, what="plaintext delivery after TLS failed")
    assert not sink.handler.messages[0]["tls"]
    assert re.search(r"4\.7\.5 TLS handshake failed .*; retrying without TLS", gw.log()), gw.log()
    wait_for(lambda: any(e["event"] == "delivery" for e in log_events(gw)), 10,
             what="delivery log")
    assert [e for e in log_events(gw) if e["event"] == "delivery"][0]["tls"] is False


def test_plaintext_delivery_logs_no_tls(net):
    dns = net.dns("--mx-host=plain.test,mx.plain.test,10",
                  "--host-record=mx.plain.test,127.0.0.31")
    sink = net.sink("127.0.0.31")
    gw = net.gateway(dns)
    send(gw, "s@example.org", ["a@plain.test"])
    wait_for(lambda: sink.handler.count() == 1, 20, what="plaintext delivery")
    assert not sink.handler.messages[0]["tls"]
    wait_for(lambda: any(e["event"] == "delivery" for e in log_events(gw)), 10,
             what="delivery log")
    assert [e for e in log_events(gw) if e["event"] == "delivery"][0]["tls"] is False


def test_required_tls_defers_when_starttls_is_not_offered(net):
    dns = net.dns("--mx-host=notls.test,mx.notls.test,10",
                  "--host-record=mx.notls.test,127.0.0.32")
    sink = net.sink("127.0.0.32")
    gw = net.gateway(dns, sets=["delivery.tls=required"])
    send(gw, "s@example.org", ["a@notls.test"])

    def deferrals():
        return [e for e in log_events(gw) if e["event"] == "transient_failure"]

    wait_for(lambda: deferrals(), 20, what="a transient failure for missing TLS")
    ev = deferrals()[0]
    assert ev["code"] // 100 == 4 and ev["enhanced"].startswith("4.7."), ev
    assert sink.handler.count() == 0
    assert not any(e["event"] in ("delivery", "bounce") for e in log_events(gw))
    gw.stop()
    assert len(spool_dump(gw.spool)) == 1


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
    wait_for(lambda: {"delivery", "bounce"} <= {e["event"] for e in log_events(gw)}, 10,
             what="delivery and bounce events in the log")
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

    def events():
        return [e["event"] for e in log_events(gw) if e.get("recipient") == "a@retry.test"]

    wait_for(lambda: "delivery" in events(), 10, what="delivery event in the log")
    assert events() == ["reception", "transient_failure", "delivery"]
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


def test_expiry_bounces_with_4_4_7(net):
    dns = net.dns("--mx-host=slow.test,mx.slow.test,10", "--host-record=mx.slow.test,127.0.0.15",
                  "--mx-host=sender.test,mx.sender.test,10", "--host-record=mx.sender.test,127.0.0.16")
    net.sink("127.0.0.15", Recorder(rcpt_reply={"*": "451 4.2.0 greylisted"}))
    sender_mx = net.sink("127.0.0.16")
    gw = net.gateway(dns, sets=["delivery.retry.max_age=3s"])
    send(gw, "app@sender.test", ["a@slow.test"])
    wait_for(lambda: sender_mx.handler.count() == 1, 30, what="expiry DSN")
    wait_for(lambda: any(e["event"] == "expiration" for e in log_events(gw)), 10,
             what="expiration event in the log")
    parsed = email.message_from_bytes(sender_mx.handler.messages[0]["data"],
                                      policy=email.policy.default)
    r = list(parsed.iter_parts())[1].get_payload()[1]
    assert str(r["Action"]).strip() == "failed" and str(r["Status"]).strip() == "4.4.7"
    events = [e["event"] for e in log_events(gw) if e.get("recipient") == "a@slow.test"]
    assert "transient_failure" in events and events[-1] == "expiration"


def test_restart_delivers_what_was_scheduled(net, tmp_path):
    dns = net.dns("--mx-host=later.test,mx.later.test,10", "--host-record=mx.later.test,127.0.0.17")
    gw = net.gateway(dns, sets=["delivery.retry.first=1h", "delivery.retry.max=1h"])
    for i in range(5):
        send(gw, "s@example.org", [f"u{i}@later.test"])
    # Nothing listens yet: the destination is deferred for an hour.
    wait_for(lambda: any(e["event"] == "transient_failure" for e in log_events(gw)), 20,
             what="first failed attempt")
    assert gw.stop() == 0
    assert len(spool_dump(gw.spool)) == 5
    sink = net.sink("127.0.0.17")
    gw2 = net.gateway(dns, spool=gw.spool)
    wait_for(lambda: sink.handler.count() == 5, 30, what="delivery after restart")
    gw2.stop()
    assert spool_dump(gw.spool) == []


def test_kill9_never_redelivers_a_delivered_recipient(net):
    dns = net.dns("--mx-host=ok.test,mx.ok.test,10", "--host-record=mx.ok.test,127.0.0.18",
                  "--mx-host=later.test,mx.later.test,10", "--host-record=mx.later.test,127.0.0.19")
    ok = net.sink("127.0.0.18")
    later = net.sink("127.0.0.19", Recorder(rcpt_reply={"*": "451 4.3.0 not now"}))
    gw = net.gateway(dns, sets=["delivery.retry.first=4s", "delivery.retry.max=4s"])
    send(gw, "s@example.org", ["a@ok.test", "b@later.test"])
    wait_for(lambda: ok.handler.count() == 1, 20, what="delivery to ok.test")
    # The sink has it; the gateway must also have recorded it before the kill
    # (between the two a kill -9 redelivers: at least once, by design).
    wait_for(lambda: any(e["event"] == "delivery" and e["recipient"] == "a@ok.test"
                         for e in log_events(gw)), 20, what="a@ok.test recorded as delivered")
    wait_for(lambda: any(e["event"] == "transient_failure" for e in log_events(gw)), 20,
             what="451 from later.test")
    gw.kill9()
    later.handler.rcpt_reply = {"*": "250"}
    gw2 = net.gateway(dns, spool=gw.spool, sets=["delivery.retry.first=4s", "delivery.retry.max=4s"])
    wait_for(lambda: later.handler.count() == 1, 30, what="retry to later.test after restart")
    assert later.handler.messages[0]["to"] == ["b@later.test"]
    gw2.stop()
    assert ok.handler.count() == 1  # never twice
    assert spool_dump(gw.spool) == []


def test_sigterm_waits_for_a_slow_end_of_data_reply(net):
    # The remote takes 30 s to answer the end of data (RFC 5321 allows 10 min).
    # A SIGTERM meanwhile waits for it (delivery.drain_timeout, 60 s), records
    # the delivery and exits 0 with nothing left to send again after a restart.
    dns = net.dns("--mx-host=slow.test,mx.slow.test,10", "--host-record=mx.slow.test,127.0.0.21")
    sink = net.sink("127.0.0.21", Recorder(data_delay=30))
    gw = net.gateway(dns)
    send(gw, "s@example.org", ["a@slow.test"])
    wait_for(lambda: sink.handler.data_started == 1, 30, what="DATA at the slow sink")
    t0 = time.monotonic()
    assert gw.stop(timeout=120) == 0
    assert time.monotonic() - t0 > 20  # it waited for the reply
    assert sink.handler.count() == 1
    assert [e["recipient"] for e in log_events(gw) if e["event"] == "delivery"] == ["a@slow.test"]
    assert "still in flight at shutdown" not in gw.log()
    assert spool_dump(gw.spool) == []  # nothing to deliver twice


def test_one_destination_uses_connections_on_every_worker(net):
    dns = net.dns("--mx-host=big.test,mx.big.test,10", "--host-record=mx.big.test,127.0.0.20")
    sink = net.sink("127.0.0.20")
    gw = net.gateway(dns, sets=["delivery.max_connections=20", "log.level=debug"], workers=2)
    with smtplib.SMTP(gw.host, gw.port, timeout=30) as s:
        for i in range(60):
            s.sendmail("s@example.org", [f"u{i}@big.test"], b"Subject: b\r\n\r\nx\r\n")
    wait_for(lambda: sink.handler.count() == 60, 60, what="60 deliveries")
    workers = set(re.findall(r"big\.test: new connection on worker (\d+)", gw.log()))
    assert workers == {"0", "1"}, gw.log()[-2000:]
    gw.stop()
    assert spool_dump(gw.spool) == []


def test_reception_and_rejection_events_are_logged(net, tmp_path):
    dns = net.dns()
    gw = net.gateway(dns, config=write_config(
        tmp_path, listen_extra='relay_networks = {}, relay_domains = { "inbound.test" },'))
    with smtplib.SMTP(gw.host, gw.port, timeout=30) as s:
        s.ehlo("client.test")
        s.mail("app@sender.test")
        assert s.rcpt("in@inbound.test")[0] == 250
        assert s.rcpt("out@elsewhere.test")[0] == 550
        s.data(b"Subject: hi\r\n\r\nx\r\n")
        s.mail("app@sender.test")
        s.rcpt("in@inbound.test")
        assert s.data(b"Subject: bare\nLF\r\n")[0] == 550

    def events():
        return [(e["event"], e.get("recipient"), e.get("code")) for e in log_events(gw)]

    wait_for(lambda: len([e for e in events() if e[0] in ("reception", "rejection")]) == 3, 10,
             what="three inbound events")
    inbound = [e for e in events() if e[0] in ("reception", "rejection")]
    assert ("reception", "in@inbound.test", 250) in inbound
    assert ("rejection", "out@elsewhere.test", 550) in inbound
    assert inbound.count(("rejection", "in@inbound.test", 550)) == 1


def test_one_delay_dsn_after_delay_warning(net):
    dns = net.dns("--mx-host=slow.test,mx.slow.test,10", "--host-record=mx.slow.test,127.0.0.21",
                  "--mx-host=sender.test,mx.sender.test,10", "--host-record=mx.sender.test,127.0.0.22")
    net.sink("127.0.0.21", Recorder(rcpt_reply={"*": "451 4.2.0 greylisted"}))
    sender_mx = net.sink("127.0.0.22")
    gw = net.gateway(dns, sets=["delivery.retry.delay_warning=1s", "delivery.retry.first=1s",
                                "delivery.retry.max=1s"])
    send(gw, "app@sender.test", ["a@slow.test"])
    wait_for(lambda: sender_mx.handler.count() == 1, 30, what="delay DSN")
    parsed = email.message_from_bytes(sender_mx.handler.messages[0]["data"],
                                      policy=email.policy.default)
    blocks = list(parsed.iter_parts())[1].get_payload()
    assert str(blocks[1]["Action"]).strip() == "delayed"
    assert str(blocks[1]["Status"]).strip() == "4.2.0"
    assert "Will-Retry-Until" in blocks[1]
    # Retries go on (several more 451s), but the sender hears about the delay once.
    wait_for(lambda: len([e for e in log_events(gw) if e["event"] == "transient_failure"]) >= 4,
             30, what="more retries")
    assert sender_mx.handler.count() == 1


def test_a_large_body_is_streamed_from_the_spool_byte_exact(net):
    # Issue 15: a body over 4 MiB is sent chunk by chunk from the spool (the
    # spool's chunks are 256 KiB): dot-stuffing and line ends must survive the
    # chunk boundaries. The sink's copy, after our Received line, hashes the same.
    import hashlib
    dns = net.dns("--mx-host=big.test,mx.big.test,10", "--host-record=mx.big.test,127.0.0.36")
    sink = net.sink("127.0.0.36")
    gw = net.gateway(dns)
    lines = [b"Subject: big\r\n", b"\r\n"]
    for i in range(90000):  # ~6 MB; every 7th line starts with a dot
        lines.append((b"." if i % 7 == 0 else b"") + b"line %06d " % i + b"x" * 50 + b"\r\n")
    body = b"".join(lines)
    assert len(body) > 5_000_000
    send(gw, "s@example.org", ["a@big.test"], body)
    wait_for(lambda: sink.handler.count() == 1, 60, what="delivery of the large message")
    data = sink.handler.messages[0]["data"]
    assert hashlib.sha256(data[-len(body):]).hexdigest() == hashlib.sha256(body).hexdigest()
    assert data[:-len(body)].startswith(b"Received: ")
