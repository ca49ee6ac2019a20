"""Lua policy end to end: hooks, shipped plugins, routing and shaping, reload.
The real gateway with a config file per test, dnsmasq for DNS, aiosmtpd
sinks as remote servers, all on loopback; every process stopped by PID."""
import signal
import smtplib
import socket
import textwrap
import threading
import time

import pytest

from conftest import Gateway, spool_dump, wait_for
from peers import Dnsmasq, Recorder, Sink, SlowDns, free_port
from test_delivery import log_events, send


def write_policy(tmp_path, lua, configure=""):
    p = tmp_path / "mailgate.lua"
    p.write_text(textwrap.dedent("""
        mailgate.configure {
          policy = { hook_timeout = "3s" },
          %s
        }
        mailgate.listen { address = "127.0.0.1:2525" }
    """) % configure + textwrap.dedent(lua))
    return str(p)


@pytest.fixture
def env(tmp_path):
    """Starts peers and gateways for one test; stops them all afterwards."""
    started = []

    class Env:
        port = free_port()

        def dns(self, *records):
            d = Dnsmasq(records)
            started.append(d)
            return d

        def slow_dns(self, delay=None):
            d = SlowDns(delay)
            started.append(d)
            return d

        def sink(self, host, handler=None):
            s = Sink(host, self.port, handler)
            started.append(s)
            return s

        def gateway(self, dns, lua, sets=(), configure="", spool=None, **kw):
            config = write_policy(tmp_path, lua, configure)
            gw = Gateway(spool or tmp_path / "spool", dns=dns.server, config=config,
                         sets=[f"delivery.port={self.port}", "delivery.retry.first=1s",
                               "delivery.retry.max=2s"] + list(sets), **kw)
            started.append(gw)
            return gw

    yield Env()
    for s in reversed(started):
        s.stop()


def rcpt_code(gw, rcpt, sender="s@example.org", source=None):
    with smtplib.SMTP(gw.host, gw.port, timeout=30, source_address=source) as s:
        s.ehlo("client.test")
        code, _ = s.mail(sender)
        assert code == 250
        code, text = s.rcpt(rcpt)
        return code, text.decode()


# --------------------------------------------------------------------------
# recipient_check


def test_recipient_check_refuses_null_mx_and_nxdomain_accepts_a_only(env):
    slow = env.slow_dns(delay=None)
    dns = env.dns("--mx-host=good.test,mx.good.test,10", "--host-record=mx.good.test,127.0.0.60",
                  "--mx-host=null.test,.,0", "--host-record=aonly.test,127.0.0.61",
                  f"--server=/slow.test/127.0.0.1#{slow.port}")
    gw = env.gateway(dns, 'mailgate.use("recipient_check", { cache_ttl = "1m" })')
    assert rcpt_code(gw, "a@good.test")[0] == 250
    assert rcpt_code(gw, "a@aonly.test")[0] == 250
    code, text = rcpt_code(gw, "a@null.test")
    assert code == 556 and text.startswith("5.1.10"), text
    code, text = rcpt_code(gw, "a@nope.test")
    assert code == 550 and text.startswith("5.1.2"), text
    # DNS that does not answer is a temporary failure, never a refusal.
    code, text = rcpt_code(gw, "a@slow.test")
    assert code == 451 and text.startswith("4."), text
    ev = [e for e in log_events(gw) if e["event"] == "rejection"]
    assert {e["recipient"] for e in ev} >= {"a@null.test", "a@nope.test"}


def test_hooks_and_delivery_share_the_workers_resolver_cache(env):
    # One worker, one resolver: recipient_check's MX answer (TTL 300 s) serves
    # the delivery attempt, so the DNS server sees the MX query once.
    dns = Dnsmasq(["--mx-host=shared.test,mx.shared.test,10",
                   "--host-record=mx.shared.test,127.0.0.62", "--log-queries"], ttl=300)
    try:
        sink = env.sink("127.0.0.62")
        gw = env.gateway(dns, 'mailgate.use("recipient_check", { cache_ttl = "0s" })',
                         workers=1)
        send(gw, "s@example.org", ["a@shared.test"])
        wait_for(lambda: sink.handler.count() == 1, 30, what="delivery")
        mx_queries = [l for l in dns.lines if "query[MX] shared.test" in l]
        assert len(mx_queries) == 1, "".join(dns.lines)
    finally:
        dns.stop()


def test_recipient_check_require_mx_refuses_a_only(env):
    dns = env.dns("--host-record=aonly.test,127.0.0.61")
    gw = env.gateway(dns, 'mailgate.use("recipient_check", { require_mx = true })')
    code, text = rcpt_code(gw, "a@aonly.test")
    assert code == 550 and "no MX" in text


# --------------------------------------------------------------------------
# routing_table


def test_routing_table_smarthost_discard_and_mx(env, tmp_path):
    dns = env.dns("--mx-host=other.test,mx.other.test,10",
                  "--host-record=mx.other.test,127.0.0.62")
    mx = env.sink("127.0.0.62")
    relay = env.sink("127.0.0.63")
    gw = env.gateway(dns, f"""
        mailgate.use("routing_table", {{ routes = {{
          ["partner.test"] = "[127.0.0.63]:{env.port}",
          ["*.corp.test"] = {{ smarthost = "127.0.0.63:{env.port}", tls = "disabled" }},
          ["junk.test"] = "discard",
        }} }})
    """)
    # partner.test has no DNS at all: only the route can deliver it.
    send(gw, "s@example.org", ["a@partner.test", "b@other.test", "c@junk.test", "d@x.corp.test"])
    wait_for(lambda: relay.handler.count() >= 1 and mx.handler.count() >= 1, 20,
             what="delivery to the smarthost and the MX")
    time.sleep(0.3)
    assert mx.handler.count() == 1 and mx.handler.messages[0]["to"] == ["b@other.test"]
    assert relay.handler.count() == 1  # one destination, one transaction
    assert sorted(relay.handler.messages[0]["to"]) == ["a@partner.test", "d@x.corp.test"]
    wait_for(lambda: any(e["event"] == "discard" for e in log_events(gw)), 10, what="discard log")
    d = [e for e in log_events(gw) if e["event"] == "discard"]
    assert [e["recipient"] for e in d] == ["c@junk.test"]
    delivered = wait_for(lambda: [e for e in log_events(gw) if e["event"] == "delivery"][2:] and
                         [e for e in log_events(gw) if e["event"] == "delivery"], 10,
                         what="three delivery log lines")
    assert {e["destination"] for e in delivered} == {f"[127.0.0.63]:{env.port}", "other.test"}


def test_routing_table_file_is_reread_when_it_changes(env, tmp_path):
    dns = env.dns()
    one, two = env.sink("127.0.0.64"), env.sink("127.0.0.65")
    routes = tmp_path / "routes.txt"
    routes.write_text(f"# domain target\nfile.test [127.0.0.64]:{env.port}\n")
    gw = env.gateway(dns, f'mailgate.use("routing_table", {{ file = "{routes}", check_interval = 0 }})')
    send(gw, "s@example.org", ["a@file.test"])
    wait_for(lambda: one.handler.count() == 1, 20, what="delivery by the first table")
    routes.write_text(f"file.test [127.0.0.65]:{env.port} tls=disabled\n")
    time.sleep(1.1)  # os.time() has one-second resolution
    send(gw, "s@example.org", ["b@file.test"])
    wait_for(lambda: two.handler.count() == 1, 20, what="delivery by the changed table")
    assert one.handler.count() == 1


# --------------------------------------------------------------------------
# egress_path: rates and connection limits (messages queued before start)


def prequeue(env, tmp_path, dns_records, messages):
    """Fills a spool while every MX is unreachable, then stops the gateway:
    the next gateway on this spool finds everything queued at once."""
    dns = env.dns(*dns_records)
    gw = env.gateway(dns, "", sets=["delivery.retry.first=1h", "delivery.retry.max=2h"],
                     spool=tmp_path / "spool")
    with smtplib.SMTP(gw.host, gw.port, timeout=30) as s:
        for rcpt in messages:
            s.sendmail("s@example.org", [rcpt], b"Subject: q\r\n\r\nqueued\r\n")
    gw.stop()
    return dns


def test_egress_rate_is_held_while_other_destination_is_unthrottled(env, tmp_path):
    records = ("--mx-host=slow.test,mx.slow.test,10", "--host-record=mx.slow.test,127.0.0.66",
               "--mx-host=fast.test,mx.fast.test,10", "--host-record=mx.fast.test,127.0.0.67")
    dns = prequeue(env, tmp_path, records,
                   [f"s{i}@slow.test" for i in range(60)] + [f"f{i}@fast.test" for i in range(60)])
    slow, fast = env.sink("127.0.0.66"), env.sink("127.0.0.67")
    gw = env.gateway(dns, """
        mailgate.on("egress_path", function(d)
          if d == "slow.test" then return { max_message_rate = "20/s" } end
        end)
    """, spool=tmp_path / "spool")
    wait_for(lambda: slow.handler.count() == 60, 30, what="all slow.test messages")
    wait_for(lambda: fast.handler.count() == 60, 10, what="all fast.test messages")
    t = sorted(m["t"] for m in slow.handler.messages)
    rate = (len(t) - 1) / (t[-1] - t[0])
    assert 18.0 <= rate <= 22.0, rate
    tf = sorted(m["t"] for m in fast.handler.messages)
    assert tf[-1] - tf[0] < (t[-1] - t[0]) / 3, (tf[-1] - tf[0], t[-1] - t[0])
    gw.stop()


def test_max_connections_is_never_exceeded_and_unthrottled_is_faster(env, tmp_path):
    records = ("--mx-host=two.test,mx.two.test,10", "--host-record=mx.two.test,127.0.0.68",
               "--mx-host=many.test,mx.many.test,10", "--host-record=mx.many.test,127.0.0.69")
    dns = prequeue(env, tmp_path, records,
                   [f"t{i}@two.test" for i in range(200)] + [f"m{i}@many.test" for i in range(200)])
    two = env.sink("127.0.0.68", Recorder(data_delay=0.05))
    many = env.sink("127.0.0.69", Recorder(data_delay=0.05))
    gw = env.gateway(dns, """
        mailgate.on("egress_path", function(d)
          if d == "two.test" then return { max_connections = 2 } end
          return { max_connections = 20 }
        end)
    """, sets=["delivery.max_messages_per_connection=1000"], spool=tmp_path / "spool")
    wait_for(lambda: two.handler.count() == 200, 60, what="all two.test messages")
    wait_for(lambda: many.handler.count() == 200, 30, what="all many.test messages")
    assert two.handler.max_active == 2, two.handler.max_active
    assert many.handler.max_active > 2
    t_two = sorted(m["t"] for m in two.handler.messages)
    t_many = sorted(m["t"] for m in many.handler.messages)
    rate_two = 199 / (t_two[-1] - t_two[0])
    rate_many = 199 / (t_many[-1] - t_many[0])
    assert rate_many >= 5 * rate_two, (rate_many, rate_two)
    gw.stop()


def test_egress_ehlo_name_and_source_address(env):
    dns = env.dns("--mx-host=src.test,mx.src.test,10", "--host-record=mx.src.test,127.0.0.70")
    sink = env.sink("127.0.0.70")
    gw = env.gateway(dns, """
        mailgate.on("egress_path", function(d)
          return { source_address = "127.0.0.71", ehlo_name = "out.mailgate.test" }
        end)
    """)
    send(gw, "s@example.org", ["a@src.test"])
    wait_for(lambda: sink.handler.count() == 1, 20, what="delivery")
    m = sink.handler.messages[0]
    assert m["peer"] == "127.0.0.71" and m["helo"] == "out.mailgate.test", m


# --------------------------------------------------------------------------
# rate_limit: process-wide with two workers


def test_rate_limit_holds_across_workers_and_connections(env):
    dns = env.dns()
    gw = env.gateway(dns, """
        mailgate.use("rate_limit", { per_ip = { messages = "20/h" } })
        mailgate.on("route", function() return { discard = true } end)
    """, workers=2)
    accepted, refused = [], []
    lock = threading.Lock()

    def client():
        with smtplib.SMTP(gw.host, gw.port, timeout=30) as s:
            for _ in range(5):
                try:
                    s.sendmail("s@example.org", ["r@dest.test"], b"Subject: x\r\n\r\nx\r\n")
                    with lock:
                        accepted.append(1)
                except smtplib.SMTPSenderRefused as e:
                    with lock:
                        refused.append((e.smtp_code, e.smtp_error.decode()))
                    s.rset()

    threads = [threading.Thread(target=client) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert len(accepted) == 20, (len(accepted), refused[:3])
    assert len(refused) == 20
    assert all(c == 452 and e.startswith("4.7.1") for c, e in refused), refused[:3]


# --------------------------------------------------------------------------
# A hook waiting on DNS does not block the worker


def test_hook_waiting_on_dns_does_not_delay_other_sessions(env):
    silent = env.slow_dns(delay=None)
    dns = env.dns("--host-record=fast.test,127.0.0.72", f"--server=/slow.test/127.0.0.1#{silent.port}")
    gw = env.gateway(dns, 'mailgate.use("recipient_check")', workers=1)

    def transaction():
        t0 = time.monotonic()
        with smtplib.SMTP(gw.host, gw.port, timeout=30) as s:
            s.sendmail("s@example.org", ["a@fast.test"], b"Subject: x\r\n\r\nx\r\n")
        return time.monotonic() - t0

    transaction()  # warm up (first DNS lookup, first spool write)
    baseline = min(transaction() for _ in range(3))
    blocked = smtplib.SMTP(gw.host, gw.port, timeout=30)
    try:
        blocked.ehlo("client.test")
        blocked.mail("s@example.org")
        blocked.send(b"RCPT TO:<a@slow.test>\r\n")  # its hook now waits on DNS
        wait_for(lambda: silent.queries > 0, 10, what="the hook's DNS query")
        during = transaction()
        assert during - baseline < 0.2, (during, baseline)
        code, text = blocked.getreply()
        assert code == 451, (code, text)  # the hook timed out: tempfail, not accept
    finally:
        blocked.close()


# --------------------------------------------------------------------------
# Reload


def test_reload_changes_routing_without_dropping_sessions(env, tmp_path):
    delayed = env.slow_dns(delay=1.5)
    dns = env.dns(f"--server=/delay.test/127.0.0.1#{delayed.port}")
    one, two = env.sink("127.0.0.73"), env.sink("127.0.0.74")
    hooks = """
        mailgate.on("rcpt_to", function(tx, rcpt)
          if rcpt.domain == "delay.test" then mailgate.dns.mx("delay.test") end
          return mailgate.accept()
        end)
        mailgate.on("route", function(msg, domain)
          return { smarthost = "[%s]:%d" }
        end)
    """
    gw = env.gateway(dns, hooks % ("127.0.0.73", env.port))
    idle = smtplib.SMTP(gw.host, gw.port, timeout=30)
    suspended = smtplib.SMTP(gw.host, gw.port, timeout=30)
    try:
        idle.ehlo("idle.test")
        suspended.ehlo("suspended.test")
        suspended.mail("s@example.org")
        suspended.send(b"RCPT TO:<a@delay.test>\r\n")  # hook suspended in DNS for 1.5 s
        wait_for(lambda: delayed.queries > 0, 10, what="the suspended hook's query")
        write_policy(tmp_path, hooks % ("127.0.0.74", env.port))
        gw.proc.send_signal(signal.SIGHUP)
        gw.wait_log(r"policy version 2 active", 10)
        # The transaction that started before the reload finishes on version 1.
        code, _ = suspended.getreply()
        assert code == 250
        code, _ = suspended.data(b"Subject: old\r\n\r\nold\r\n")
        assert code == 250
        # The idle session is still there; its next transaction uses version 2.
        idle.sendmail("s@example.org", ["b@any.test"], b"Subject: new\r\n\r\nnew\r\n")
    finally:
        idle.close()
        suspended.close()
    wait_for(lambda: one.handler.count() == 1 and two.handler.count() == 1, 20,
             what="one message by each policy version")
    assert one.handler.messages[0]["to"] == ["a@delay.test"]
    assert two.handler.messages[0]["to"] == ["b@any.test"]


def test_reload_with_a_broken_config_keeps_the_old_policy(env, tmp_path):
    dns = env.dns()
    one = env.sink("127.0.0.75")
    gw = env.gateway(dns, f'mailgate.on("route", function() return {{ smarthost = "[127.0.0.75]:{env.port}" }} end)')
    (tmp_path / "mailgate.lua").write_text("mailgate.on(\"route\", function( end\n")
    gw.proc.send_signal(signal.SIGHUP)
    gw.wait_log(r"reload refused, policy version 1 keeps running", 10)
    send(gw, "s@example.org", ["a@x.test"])
    wait_for(lambda: one.handler.count() == 1, 20, what="delivery by the old policy")


# --------------------------------------------------------------------------
# suppression, sender_domains, msg bindings, outcome hooks


def test_suppression_after_hard_bounce_only(env, tmp_path):
    dns = env.dns("--mx-host=sup.test,mx.sup.test,10", "--host-record=mx.sup.test,127.0.0.76")
    env.sink("127.0.0.76", Recorder(rcpt_reply={"gone@sup.test": "550 5.1.1 no such user",
                                                 "blocked@sup.test": "550 5.7.1 blocked by policy"}))
    lua = 'mailgate.use("suppression")'
    gw = env.gateway(dns, lua)
    send(gw, "s@example.org", ["gone@sup.test", "blocked@sup.test"])
    wait_for(lambda: len([e for e in log_events(gw) if e["event"] == "bounce"]) == 2, 20,
             what="two bounces")
    wait_for(lambda: rcpt_code(gw, "Gone@sup.test")[0] == 550, 10, what="suppressed at RCPT")
    code, text = rcpt_code(gw, "gone@sup.test")
    assert text.startswith("5.1.1") and "suppressed" in text
    assert rcpt_code(gw, "blocked@sup.test")[0] == 250  # 5.7.1 says nothing about the address
    gw.stop()
    gw2 = env.gateway(dns, lua, spool=gw.spool)
    assert rcpt_code(gw2, "gone@sup.test")[0] == 550  # kept across restarts


def test_sender_domains_per_tenant(env):
    dns = env.dns("--mx-host=dest.test,mx.dest.test,10", "--host-record=mx.dest.test,127.0.0.77")
    sink = env.sink("127.0.0.77")
    gw = env.gateway(dns, """
        mailgate.use("sender_domains", { tenants = {
          acme = { networks = { "127.0.0.1/32" }, domains = { "acme.test", "*.acme.test" } },
          other = { networks = { "127.0.0.2/32" }, domains = { "other.test" } },
        } })
    """)
    with smtplib.SMTP(gw.host, gw.port, timeout=30) as s:
        s.ehlo("client.test")
        code, text = s.mail("x@other.test")
        assert code == 550 and b"5.7.1" in text
        s.rset()
        with pytest.raises(smtplib.SMTPDataError) as e:
            s.sendmail("x@mail.acme.test", ["a@dest.test"],
                       b"From: Other <x@other.test>\r\nSubject: x\r\n\r\nx\r\n")
        assert e.value.smtp_code == 550
        s.rset()
        s.sendmail("x@acme.test", ["a@dest.test"],
                   b'From: "Acme @ home" <x@acme.test>\r\nSubject: ok\r\n\r\nx\r\n')
    with smtplib.SMTP(gw.host, gw.port, timeout=30, source_address=("127.0.0.2", 0)) as s:
        s.sendmail("y@other.test", ["a@dest.test"], b"From: y@other.test\r\n\r\ny\r\n")
    with smtplib.SMTP(gw.host, gw.port, timeout=30, source_address=("127.0.0.3", 0)) as s:
        s.ehlo("client.test")
        code, _ = s.mail("z@acme.test")
        assert code == 550  # a client in no tenant's networks
    wait_for(lambda: sink.handler.count() == 2, 20, what="two deliveries")
    # The sink counts at its reply; the delivery log line is written a moment later.
    ev = wait_for(lambda: [e for e in log_events(gw) if e["event"] == "delivery"][1:] and
                  [e for e in log_events(gw) if e["event"] == "delivery"], 10,
                  what="two delivery log lines")
    assert sorted(e["meta"]["tenant"] for e in ev) == ["acme", "other"]


def test_message_hook_edits_headers_and_meta_also_for_spilled_bodies(env):
    dns = env.dns("--mx-host=hdr.test,mx.hdr.test,10", "--host-record=mx.hdr.test,127.0.0.78")
    sink = env.sink("127.0.0.78")
    gw = env.gateway(dns, """
        mailgate.on("message", function(tx, msg)
          msg:add_header("X-Checked", "yes; size=" .. msg.size)
          msg:remove_header("X-Internal")
          msg:set_meta("campaign", msg:header("X-Campaign") or "none")
          if msg:header("Subject") == "reject me" then
            return mailgate.reject(554, "5.7.1 content refused")
          end
          msg:replace_header("Subject", "[checked] " .. (msg:header("Subject") or ""))
        end)
        mailgate.on("delivered", function(msg, rcpt, reply)
          mailgate.log("info", "delivered hook: " .. rcpt.address .. " campaign=" ..
                               tostring(msg:meta("campaign")) .. " code=" .. reply.code)
        end)
    """, sets=["spool.body_buffer=4096"])
    big = b"x" * 100 + b"\r\n"
    body = (b"X-Internal: secret\r\nX-Campaign: c42\r\nSubject: big\r\n\r\n" + big * 600)
    send(gw, "s@example.org", ["a@hdr.test"], body=body)
    send(gw, "s@example.org", ["b@hdr.test"], body=b"Subject: small\r\nX-Internal: y\r\n\r\nhi\r\n")
    with pytest.raises(smtplib.SMTPDataError) as e:
        send(gw, "s@example.org", ["c@hdr.test"], body=b"Subject: reject me\r\n\r\nx\r\n")
    assert e.value.smtp_code == 554
    wait_for(lambda: sink.handler.count() == 2, 20, what="two deliveries")
    for m in sink.handler.messages:
        data = m["data"]
        assert b"X-Checked: yes; size=" in data and b"X-Internal" not in data, data[:300]
        assert data.count(b"Subject: [checked] ") == 1, data[:300]
    bigmsg = [m for m in sink.handler.messages if m["to"] == ["a@hdr.test"]][0]["data"]
    assert bigmsg.endswith(big * 600), len(bigmsg)
    gw.wait_log(r"delivered hook: a@hdr.test campaign=c42 code=250", 10)
    ev = wait_for(lambda: [e for e in log_events(gw)
                           if e["event"] == "delivery" and e["recipient"] == "a@hdr.test"], 10,
                  what="the delivery log line")
    assert ev[0]["meta"] == {"campaign": "c42"}


def test_deferred_hook_sets_the_retry_delay(env):
    dns = env.dns("--mx-host=later.test,mx.later.test,10", "--host-record=mx.later.test,127.0.0.79")
    sink = env.sink("127.0.0.79", Recorder(rcpt_reply={"*": ["451 4.2.0 try later", "250 OK"]}))
    gw = env.gateway(dns, """
        mailgate.on("deferred", function(msg, rcpt, reply)
          if reply.enhanced == "4.2.0" then return "1s" end
        end)
    """, sets=["delivery.retry.first=1h", "delivery.retry.max=2h"])
    send(gw, "s@example.org", ["a@later.test"])
    wait_for(lambda: sink.handler.count() == 1, 20, what="delivery after the hook's short retry")


def test_hook_error_is_a_tempfail_never_an_accept(env):
    dns = env.dns()
    gw = env.gateway(dns, """
        mailgate.on("rcpt_to", function(tx, rcpt) error("broken policy") end)
    """)
    code, text = rcpt_code(gw, "a@x.test")
    assert code == 451 and text.startswith("4.3.0"), text
    gw.wait_log(r"lua rcpt_to hook failed: .*mailgate.lua:\d+: broken policy", 10)


def test_connect_and_helo_hooks(env):
    dns = env.dns()
    gw = env.gateway(dns, """
        mailgate.on("connect", function(conn)
          if conn.remote_ip == "127.0.0.9" then return mailgate.reject(554, "5.7.1 go away") end
        end)
        mailgate.on("helo", function(conn, name)
          if name == "bad.test" then return mailgate.reject(550, "5.7.1 bad helo") end
        end)
    """)
    with socket.create_connection((gw.host, gw.port), source_address=("127.0.0.9", 0)) as c:
        c.settimeout(10)
        assert c.recv(1000).startswith(b"554 5.7.1 go away")
    with smtplib.SMTP(gw.host, gw.port, timeout=30) as s:
        code, _ = s.ehlo("bad.test")
        assert code == 550
        code, _ = s.ehlo("good.test")
        assert code == 250


def test_throttled_destination_expires_waiting_messages_on_time(env):
    # Issue 3: a message stuck behind a throttle still expires at max_age.
    dns = env.dns("--mx-host=thr.test,mx.thr.test,10", "--host-record=mx.thr.test,127.0.0.80")
    sink = env.sink("127.0.0.80")
    gw = env.gateway(dns, """
        mailgate.on("egress_path", function(d) return { max_message_rate = "1/min" } end)
    """, sets=["delivery.retry.max_age=10s"])
    t0 = time.time()
    send(gw, "s@example.org", ["a@thr.test"])
    send(gw, "s@example.org", ["b@thr.test"])
    send(gw, "s@example.org", ["c@thr.test"])

    def expirations():
        return [e for e in log_events(gw) if e["event"] == "expiration"]

    wait_for(lambda: len(expirations()) == 2, 20, what="two expirations")
    elapsed = time.time() - t0
    assert 10.0 <= elapsed <= 13.0, elapsed
    assert sink.handler.count() == 1  # the one the rate admitted
    assert {e["enhanced"] for e in expirations()} == {"4.4.7"}
    # ... and the sender is told: the DSNs wait in the queue (example.org has no DNS here).
    gw.stop()
    queued = spool_dump(gw.spool)
    assert len(queued) == 2 and all(m["sender"] == "" for m in queued), queued


def test_operator_bounce_rules_classify_replies(env):
    dns = env.dns("--mx-host=cls.test,mx.cls.test,10", "--host-record=mx.cls.test,127.0.0.81")
    env.sink("127.0.0.81", Recorder(rcpt_reply={
        "full@cls.test": "550 5.7.1 mailbox unavailable: storage full",
        "spam@cls.test": "550 5.7.1 rejected as spam"}))
    gw = env.gateway(dns, "", configure="""
        delivery = { bounce_rules = { { class = "quota", enhanced = "5.7.1", text = "storage full" } } },""")
    send(gw, "", ["full@cls.test", "spam@cls.test"])
    wait_for(lambda: len([e for e in log_events(gw) if e["event"] == "bounce"]) == 2, 20,
             what="two bounces")
    cls = {e["recipient"]: e["bounce_class"] for e in log_events(gw) if e["event"] == "bounce"}
    assert cls == {"full@cls.test": "quota", "spam@cls.test": "policy"}, cls


def test_sigterm_lets_an_attempt_in_flight_finish(env, tmp_path):
    dns = env.dns("--mx-host=slowmx.test,mx.slowmx.test,10",
                  "--host-record=mx.slowmx.test,127.0.0.82")
    sink = env.sink("127.0.0.82", Recorder(data_delay=2.0))
    gw = env.gateway(dns, "", spool=tmp_path / "spool")
    send(gw, "s@example.org", ["a@slowmx.test"])
    wait_for(lambda: sink.handler.active > 0 and sink.handler.rcpt_calls, 20,
             what="the attempt to reach DATA")
    assert gw.stop() == 0
    assert sink.handler.count() == 1  # finished before the gateway exited
    assert any(e["event"] == "delivery" for e in log_events(gw))
    assert spool_dump(gw.spool) == []  # recorded: nothing left to send again
