"""The submission stage end to end: every finished message (SMTP, HTTP inject,
a generated DSN) passes the same trace header, message and route hooks, spool
commit and queue. Real gateway, dnsmasq, aiosmtpd sinks on loopback; every
process stopped by PID."""
import os
import smtplib
import socket
import time

from conftest import Gateway, spool_dump, wait_for
from peers import Recorder
from test_delivery import log_events, send
from test_http_api import Api
from test_policy import env  # noqa: F401  (fixture)


def dsn_setup(env, lua, workers=1, spool=None, dns=None):
    """dest.test's MX refuses gone@; sender.test has no DNS at all, so a DSN to
    app@sender.test can only leave through the route hook's smarthost."""
    dns = dns or env.dns("--mx-host=dest.test,mx.dest.test,10",
                         "--host-record=mx.dest.test,127.0.0.80")
    return dns, env.gateway(dns, lua, workers=workers, spool=spool)


ROUTE_SENDER_TO_SMARTHOST = """
    mailgate.on("route", function(msg, domain)
      if domain == "sender.test" then return { smarthost = "[127.0.0.81]:%d" } end
    end)
"""


def bounce_one(gw):
    with smtplib.SMTP(gw.host, gw.port, timeout=30) as s:
        s.ehlo("client.test")
        s.mail("app@sender.test")
        s.rcpt("gone@dest.test")
        s.data(b"Subject: will bounce\r\nMessage-ID: <orig@sender.test>\r\n\r\nbody\r\n")


def test_dsn_goes_through_route_and_message_hooks_to_a_smarthost(env):
    dest = env.sink("127.0.0.80", Recorder(rcpt_reply={"gone@dest.test": "550 5.1.1 no such user"}))
    relay = env.sink("127.0.0.81")
    _, gw = dsn_setup(env, ROUTE_SENDER_TO_SMARTHOST % env.port + """
        mailgate.on("message", function(tx, msg)
          if msg.dsn then
            msg:add_header("X-Dsn-Seen", "sender=<" .. msg.sender .. "> listener=" .. tx.conn.listener)
          end
        end)
    """)
    bounce_one(gw)
    wait_for(lambda: relay.handler.count() == 1, 30, what="the DSN at the smarthost")
    dsn = relay.handler.messages[0]
    assert dsn["from"] in ("", "<>") and dsn["to"] == ["app@sender.test"]
    assert b"X-Dsn-Seen: sender=<> listener=local\r\n" in dsn["data"]
    assert b"multipart/report" in dsn["data"]
    assert dest.handler.count() == 0  # the original was refused at RCPT
    wait_for(lambda: any(e["event"] == "delivery" and e["recipient"] == "app@sender.test"
                         for e in log_events(gw)), 10, what="the DSN's delivery record")
    d = [e for e in log_events(gw) if e["event"] == "delivery"][0]
    assert d["destination"] == f"[127.0.0.81]:{env.port}" and d["sender"] == ""
    gw.stop()
    assert spool_dump(gw.spool) == []


def test_dsn_refused_by_message_hook_is_dropped_with_a_discard_record(env):
    env.sink("127.0.0.80", Recorder(rcpt_reply={"gone@dest.test": "550 5.1.1 no such user"}))
    relay = env.sink("127.0.0.81")
    _, gw = dsn_setup(env, ROUTE_SENDER_TO_SMARTHOST % env.port + """
        mailgate.on("message", function(tx, msg)
          if msg.dsn then return mailgate.reject(550, "5.7.1 no bounces for this sender") end
        end)
    """)
    bounce_one(gw)
    wait_for(lambda: any(e["event"] == "discard" for e in log_events(gw)), 30,
             what="the DSN's discard record")
    d = [e for e in log_events(gw) if e["event"] == "discard"]
    assert len(d) == 1 and d[0]["recipient"] == "app@sender.test" and d[0]["sender"] == ""
    assert d[0]["code"] == 550 and "no bounces" in d[0]["text"]
    time.sleep(0.5)
    assert relay.handler.count() == 0
    gw.stop()
    assert spool_dump(gw.spool) == []


def test_dsn_tempfailed_by_a_hook_is_retried_never_dropped(env):
    env.sink("127.0.0.80", Recorder(rcpt_reply={"gone@dest.test": "550 5.1.1 no such user"}))
    relay = env.sink("127.0.0.81")
    # One worker, so the Lua global counts every call. Twice a tempfail, then
    # an error (a hook that fails), then it passes.
    _, gw = dsn_setup(env, ROUTE_SENDER_TO_SMARTHOST % env.port + """
        calls = 0
        mailgate.on("message", function(tx, msg)
          if not msg.dsn then return end
          calls = calls + 1
          if calls <= 2 then return mailgate.tempfail(451, "4.3.0 not now") end
          if calls == 3 then error("broken hook") end
        end)
    """)
    bounce_one(gw)
    wait_for(lambda: relay.handler.count() == 1, 40, what="the DSN after three retries")
    assert len([l for l in gw.log().splitlines() if "held back" in l]) == 3
    assert not any(e["event"] == "discard" for e in log_events(gw))


def test_dsn_waiting_for_submission_survives_a_restart(env, tmp_path):
    env.sink("127.0.0.80", Recorder(rcpt_reply={"gone@dest.test": "550 5.1.1 no such user"}))
    relay = env.sink("127.0.0.81")
    spool = tmp_path / "spool"
    dns, gw = dsn_setup(env, ROUTE_SENDER_TO_SMARTHOST % env.port + """
        mailgate.on("message", function(tx, msg)
          if msg.dsn then return mailgate.tempfail(451, "4.3.0 hold it") end
        end)
    """, spool=spool)
    bounce_one(gw)
    gw.wait_log(r"generated message \w+ held back", timeout=30)
    assert gw.stop() == 0
    pending = [m for m in spool_dump(spool) if m["sender"] == ""]
    assert len(pending) == 1 and pending[0]["dests"][0]["destination"] == "@submit"
    # Restarted with a policy that lets it through: recovery resubmits it.
    _, gw2 = dsn_setup(env, ROUTE_SENDER_TO_SMARTHOST % env.port, spool=spool, dns=dns)
    wait_for(lambda: relay.handler.count() == 1, 30, what="the DSN after the restart")
    assert relay.handler.messages[0]["to"] == ["app@sender.test"]
    ready = Api(gw2).json("GET", "/readyz")[1]
    assert ready["ready"] and ready["recovery"]["done"]
    assert ready["recovery"]["records"] == 1 and ready["recovery"]["messages"] == 1
    gw2.stop()
    assert spool_dump(spool) == []


def listening_ports(pid):
    """TCP ports the process listens on (its socket inodes in /proc/net/tcp*)."""
    inodes = set()
    for fd in os.listdir(f"/proc/{pid}/fd"):
        try:
            target = os.readlink(f"/proc/{pid}/fd/{fd}")
        except OSError:
            continue
        if target.startswith("socket:["):
            inodes.add(target[8:-1])
    ports = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with open(table) as f:
            for line in f.readlines()[1:]:
                cols = line.split()
                if cols[3] == "0A" and cols[9] in inodes:  # 0A: LISTEN
                    ports.add(int(cols[1].rsplit(":", 1)[1], 16))
    return ports


def test_no_listener_beyond_the_configured_ones(gateway):
    gw = gateway(sets=["http.token=t0ken", "listen.relay_networks.1=10.9.0.0/16"])
    http = int(gw.wait_log(r"listening http=\S+:(\d+)").group(1))
    assert listening_ports(gw.proc.pid) == {gw.port, http}
    # And the configured SMTP listener does not relay for loopback clients
    # outside relay_networks.
    with smtplib.SMTP(gw.host, gw.port, timeout=10) as s:
        s.ehlo("x.test")
        s.mail("a@b.test")
        code, text = s.rcpt("anyone@anywhere.test")
        assert code == 550 and text.startswith(b"5.7.1"), text


def test_inject_runs_envelope_hooks_with_the_http_client_and_tx_id(env):
    sink = env.sink("127.0.0.82")
    dns = env.dns("--mx-host=in.test,mx.in.test,10", "--host-record=mx.in.test,127.0.0.82")
    gw = env.gateway(dns, """
        mailgate.on("mail_from", function(tx, sender)
          if type(tx.id) ~= "string" or #tx.id ~= 32 then
            return mailgate.reject(550, "5.7.1 no transaction id at MAIL")
          end
        end)
        mailgate.on("rcpt_to", function(tx, rcpt)
          if tx.conn.listener == "http" and rcpt.user == "blocked" then
            return mailgate.reject(550, "5.7.1 blocked for " .. tx.conn.remote_ip)
          end
        end)
        mailgate.on("message", function(tx, msg)
          msg:add_header("X-Tx", tx.id)
        end)
    """)
    api = Api(gw)
    status, body = api.json("POST", "/api/v1/inject", body={
        "from": "s@example.org", "to": ["ok@in.test", "blocked@in.test"],
        "content": "Subject: hi\n\nhello\n"})
    assert status == 200, body
    assert body["rejected"] == [{"recipient": "blocked@in.test", "code": 550,
                                 "text": "5.7.1 blocked for 127.0.0.1"}]
    wait_for(lambda: sink.handler.count() == 1, 20, what="the injected message")
    data = sink.handler.messages[0]["data"]
    assert f"X-Tx: {body['id']}\r\n".encode() in data
    assert data.startswith(b"X-Tx: ") and b"\r\nReceived: from gw.mailgate.test" in data
    def rejections():
        return [(e["recipient"], e["id"]) for e in log_events(gw) if e["event"] == "rejection"]
    wait_for(lambda: rejections(), 20, what="the rejection record")
    assert rejections() == [("blocked@in.test", body["id"])]
    # Over SMTP the refused recipient's rejection record names the transaction too.
    with smtplib.SMTP(gw.host, gw.port, timeout=10) as s:
        s.ehlo("c.test")
        s.mail("s@example.org")
        assert s.rcpt("x@in.test")[0] == 250
        s.rcpt("y@unrelayed.invalid")  # relayed: loopback is in relay_networks
        code, reply = s.data(b"Subject: x\r\n\r\nx\r\n")
        assert code == 250
    msg_id = reply.decode().split("id=")[1]
    # The delivery log is written by its own thread, after the 250.
    def receptions():
        return {e["recipient"] for e in log_events(gw)
                if e.get("id") == msg_id and e["event"] == "reception"}
    wait_for(lambda: len(receptions()) >= 2, 20, what="the two reception records")
    assert receptions() == {"x@in.test", "y@unrelayed.invalid"}


def test_bdat_spilled_then_refused_ehlo_keeps_the_whole_message(gateway):
    gw = gateway(sets=["spool.body_buffer=64KiB"])
    big = (b"Subject: big\r\n\r\n" + b"x" * 78 + b"\r\n") * 3000  # 240 KB: spills
    with socket.create_connection((gw.host, gw.port), timeout=20) as c:
        f = c.makefile("rb")

        def reply():
            lines = []
            while True:
                line = f.readline()
                lines.append(line)
                if line[3:4] != b"-":
                    return b"".join(lines)
        reply()
        c.sendall(b"EHLO c.test\r\n")
        reply()
        c.sendall(b"MAIL FROM:<a@b.test>\r\nRCPT TO:<r@c.test>\r\n")
        assert reply().startswith(b"250") and reply().startswith(b"250")
        c.sendall(b"BDAT %d\r\n" % len(big) + big)
        assert reply().startswith(b"250")
        c.sendall(b"EHLO\r\n")  # no argument: refused, the transaction goes on
        assert reply().startswith(b"501")
        c.sendall(b"BDAT 6 LAST\r\nabcd\r\n")
        r = reply()
        assert r.startswith(b"250"), r
        c.sendall(b"QUIT\r\n")
        reply()
    gw.stop()
    import base64
    [m] = spool_dump(gw.spool, bodies=True)
    body = base64.b64decode(m["body_b64"])
    assert body.endswith(big + b"abcd\r\n") and m["size"] == len(body)


def test_abandoned_bdat_chunks_are_deleted_when_the_transaction_ends(gateway, tmp_path):
    # Issue 10: spilled BDAT chunks of a transaction that ended without LAST
    # stayed in the spool until recovery at the next start.
    spool = tmp_path / "spool"
    gw = gateway(spool=spool, sets=["spool.body_buffer=64KiB"])
    chunk = (b"x" * 78 + b"\r\n") * 4000  # 320 KB: spills several chunks
    for ending in (b"QUIT\r\n", b"RSET\r\n", b"EHLO again.test\r\n", None):
        with socket.create_connection((gw.host, gw.port), timeout=20) as c:
            f = c.makefile("rb")
            f.readline()
            c.sendall(b"EHLO c.test\r\nMAIL FROM:<a@b.test>\r\nRCPT TO:<r@c.test>\r\n")
            while not f.readline().startswith(b"250 2.1.5"):
                pass
            c.sendall(b"BDAT %d\r\n" % len(chunk) + chunk)
            assert f.readline().startswith(b"250")
            if ending:
                c.sendall(ending)
                f.readline()
            # else: the client just goes away
    gw.stop()
    assert spool_dump(spool) == []
    gw2 = gateway(spool=spool)
    m = gw2.wait_log(r"recovery: done: (\d+) messages, \d+ queue records, (\d+) orphaned chunks")
    assert (m.group(1), m.group(2)) == ("0", "0"), m.group(0)
