"""DNS faults (issue 14 item 4), served by peers.ZoneServer (dnspython, UDP and
TCP) whose answers the test changes while the gateway runs. What the delivery
log and the DSNs must say (RFC 5321 §5.1, RFC 7505, RFC 1035 §4.2.1):
  SERVFAIL, and a server that never answers (c-ares times out)
      → temporary: the destination is deferred and retried (destination-level
        `transient_failure`, bounce_class routing), delivered once DNS answers;
  NXDOMAIN → permanent: bounced `550 5.1.2`, DSN Status 5.1.2;
  null MX (`MX 0 .`) → bounced `556 5.1.10`, DSN Status 5.1.10;
  MX hosts with no address (NXDOMAIN, or a name without A/AAAA) → "MUST be
      reported as an error" (§5.1): bounced `550 5.4.4`; one whose address
      lookup fails temporarily → deferred `451 4.4.3`;
  CNAME chains (to the MX host and for the domain itself) → followed, delivered;
  a UDP answer with the TC bit → asked again over TCP, delivered."""
import email
import email.policy
import smtplib

from faultlib import wait_for
from peers import Recorder, ZoneServer
from test_delivery import log_events, net  # noqa: F401 (net is a fixture)

SINK, SENDER_MX = "127.0.1.160", "127.0.1.161"


def dsn_status(messages):
    """{Final-Recipient: Status} over the DSNs received."""
    out = {}
    for m in messages:
        parsed = email.message_from_bytes(m["data"], policy=email.policy.default)
        for r in list(parsed.iter_parts())[1].get_payload()[1:]:
            out[str(r["Final-Recipient"]).split(";")[1].strip().lower()] = str(r["Status"]).strip()
    return out


def test_dns_faults_defer_bounce_or_deliver_as_the_rfcs_say(net):  # noqa: F811
    zone = net.track(ZoneServer({
        ("sender.test", "MX"): ["10 mx.sender.test."],
        ("mx.sender.test", "A"): [SENDER_MX],
        ("mx.ok.test", "A"): [SINK],
        ("servfail.test", "MX"): "SERVFAIL",
        ("silent.test", "MX"): "DROP",
        ("nullmx.test", "MX"): ["0 ."],
        ("noaddr.test", "MX"): ["10 ghost.noaddr.test."],                   # ghost: NXDOMAIN
        ("nodata.test", "MX"): ["10 mx.nodata.test."],
        ("mx.nodata.test", "TXT"): ['"a name without an address"'],          # NODATA for A
        ("tempaddr.test", "MX"): ["10 mx.tempaddr.test."],
        ("mx.tempaddr.test", "A"): "SERVFAIL",
        ("cname.test", "MX"): ["10 alias1.cname.test."],
        ("alias1.cname.test", "CNAME"): ["alias2.cname.test."],
        ("alias2.cname.test", "CNAME"): ["mx.ok.test."],
        ("alias.test", "CNAME"): ["real.test."],
        ("real.test", "MX"): ["10 mx.ok.test."],
        ("tc.test", "MX"): ["10 mx.ok.test."],
    }, truncate={"tc.test"}))
    sink = net.sink(SINK, Recorder())
    sender_mx = net.sink(SENDER_MX, Recorder())
    gw = net.gateway(zone, sets=["delivery.retry.first=1s", "delivery.retry.max=1s"])
    domains = ["servfail.test", "silent.test", "nxdomain.test", "nullmx.test", "noaddr.test",
               "nodata.test", "tempaddr.test", "cname.test", "alias.test", "tc.test"]
    with smtplib.SMTP(gw.host, gw.port, timeout=30) as s:
        for d in domains:
            s.sendmail("app@sender.test", [f"u@{d}"], f"Subject: {d}\r\n\r\nto {d}\r\n".encode())

    def dest_events(d, kind):
        return [e for e in log_events(gw) if e.get("destination") == d and e["event"] == kind]

    # Temporary failures are retried: at least two deferrals each (the
    # silent server's after c-ares' timeout, 15 s), and nothing bounces.
    for d in ("servfail.test", "tempaddr.test"):
        wait_for(lambda: len(dest_events(d, "transient_failure")) >= 2, 30,
                 what=f"{d} deferred twice")
    wait_for(lambda: dest_events("silent.test", "transient_failure"), 60,
             what="silent.test deferred after the DNS timeout")
    deferrals = {d: dest_events(d, "transient_failure")[0]
                 for d in ("servfail.test", "silent.test", "tempaddr.test")}
    # DNS answers again: the deferred destinations are delivered.
    zone.records[("servfail.test", "MX")] = ["10 mx.ok.test."]
    zone.records[("silent.test", "MX")] = ["10 mx.ok.test."]
    zone.records[("mx.tempaddr.test", "A")] = [SINK]
    delivered = {"u@servfail.test", "u@silent.test", "u@tempaddr.test", "u@cname.test",
                 "u@alias.test", "u@tc.test"}
    bounced = {"u@nxdomain.test": "5.1.2", "u@nullmx.test": "5.1.10",
               "u@noaddr.test": "5.4.4", "u@nodata.test": "5.4.4"}

    def sink_rcpts():
        return {r for m in list(sink.handler.messages) for r in m["to"]}

    wait_for(lambda: sink_rcpts() >= delivered, 60, interval=0.2, what="deliveries")
    wait_for(lambda: sender_mx.handler.count() >= len(bounced), 60, what="the DSNs")
    gw.stop()
    assert sink_rcpts() == delivered
    assert sender_mx.handler.count() == len(bounced)  # one DSN each, nothing else
    assert dsn_status(sender_mx.handler.messages) == bounced

    events = log_events(gw)
    bounce_events = {e["recipient"]: (e["code"], e["enhanced"]) for e in events
                     if e["event"] == "bounce"}
    assert bounce_events == {"u@nxdomain.test": (550, "5.1.2"),
                             "u@nullmx.test": (556, "5.1.10"),
                             "u@noaddr.test": (550, "5.4.4"),
                             "u@nodata.test": (550, "5.4.4")}, bounce_events
    for d, e in deferrals.items():
        assert e["code"] // 100 == 4 and e["bounce_class"] == "routing" and \
            "recipient" not in e, e
    assert deferrals["tempaddr.test"]["enhanced"] == "4.4.3"
    for d in ("cname.test", "alias.test", "tc.test"):  # delivered on the first attempt
        assert not dest_events(d, "transient_failure"), dest_events(d, "transient_failure")
    assert ("tc.test", "MX", "udp") in zone.via and ("tc.test", "MX", "tcp") in zone.via
    print(f"\n[dns faults] deferred: "
          f"{ {d: (e['code'], e['enhanced']) for d, e in deferrals.items()} }, bounced: "
          f"{bounce_events}, delivered: {sorted(delivered)}")
