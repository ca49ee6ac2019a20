"""Edge hardening, end to end against the real binary: names compared as the
resolver sees them (suppression, relay_domains, destinations) and the admin
HTTP API's exposure rules. Every process stopped by PID."""
import os
import socket
import subprocess

from conftest import BIN, CONFIG, spool_dump, wait_for
from test_http_api import Api
from test_policy import env  # noqa: F401  (fixture)

FULLWIDTH_G = "\uff47"  # "ｇ": UTS #46 maps it to "g"


def raw_rcpt(gw, rcpts, smtputf8=True):
    """Sends MAIL + RCPTs; returns the RCPT replies' first lines."""
    with socket.create_connection((gw.host, gw.port), timeout=20) as c:
        f = c.makefile("rb")

        def reply():
            while True:
                line = f.readline()
                if line[3:4] != b"-":
                    return line.decode("utf-8", "replace").strip()
        reply()
        c.sendall(b"EHLO c.test\r\n")
        reply()
        c.sendall(b"MAIL FROM:<s@example.org>" + (b" SMTPUTF8" if smtputf8 else b"") + b"\r\n")
        assert reply().startswith("250")
        out = []
        for r in rcpts:
            c.sendall(f"RCPT TO:<{r}>\r\n".encode())
            out.append(reply())
        c.sendall(b"QUIT\r\n")
        return out


def test_suppression_matches_the_domain_as_the_resolver_sees_it(env):
    dns = env.dns()
    gw = env.gateway(dns, 'mailgate.use("suppression", {})')
    api = Api(gw)
    status, body = api.json("POST", "/api/v1/suppression",
                            body={"address": "u@gmail.com", "reason": "test"})
    assert status == 201 and body["address"] == "u@gmail.com"
    replies = raw_rcpt(gw, [f"u@{FULLWIDTH_G}mail.com", "u@GMAIL.com", "U@gmail.com",
                            "other@gmail.com"])
    assert [r[:3] for r in replies] == ["550", "550", "550", "250"], replies
    # The same entry added through its full-width spelling is the same address.
    status, body = api.json("POST", "/api/v1/suppression",
                            body={"address": f"v@{FULLWIDTH_G}mail.COM", "reason": "test"})
    assert body["address"] == "v@gmail.com"


def test_relay_domains_and_destinations_use_the_normalized_name(env):
    dns = env.dns()
    gw = env.gateway(dns, "", sets=["listen.relay_networks.1=10.9.0.0/16",
                                     f"listen.relay_domains.1=B\u00dcCHER.example"])
    replies = raw_rcpt(gw, ["a@xn--bcher-kva.example", "b@b\u00fccher.EXAMPLE",
                            f"c@{FULLWIDTH_G}mail.com"])
    assert [r[:3] for r in replies] == ["250", "250", "550"], replies
    with socket.create_connection((gw.host, gw.port), timeout=20) as c:
        # One pipelined group (RFC 2920: DATA last), then the message.
        for line in (b"EHLO c.test", b"MAIL FROM:<s@example.org> SMTPUTF8",
                     b"RCPT TO:<a@xn--bcher-kva.example>", "RCPT TO:<b@b\u00fccher.EXAMPLE>".encode(),
                     b"DATA"):
            c.sendall(line + b"\r\n")
        c.sendall(b"Subject: x\r\n\r\nx\r\n.\r\nQUIT\r\n")
        data = b""
        while b"221" not in data:
            chunk = c.recv(4096)
            if not chunk:
                break
            data += chunk
        assert b"250 2.0.0 OK id=" in data, data
    gw.stop()
    [m] = spool_dump(gw.spool)
    # One destination for both spellings: the name the resolver will look up.
    assert [d["destination"] for d in m["dests"]] == ["xn--bcher-kva.example"]
    assert m["dests"][0]["recipients"] == [0, 1]


def test_admin_api_off_loopback_needs_a_token():
    r = subprocess.run([BIN, "check-config", "--config", CONFIG, "--set", "http.listen=0.0.0.0:8025"],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 1
    assert "http.listen: 0.0.0.0:8025 is not a loopback address: set http.token" in r.stderr
    r = subprocess.run([BIN, "check-config", "--config", CONFIG, "--set", "http.listen=0.0.0.0:8025",
                        "--set", "http.token=s3cret"], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr


def test_admin_api_refuses_an_unauthenticated_body_without_reading_it(gateway):
    gw = gateway(sets=["http.token=s3cret"])
    port = int(gw.wait_log(r"listening http=\S+:(\d+)").group(1))
    with socket.create_connection(("127.0.0.1", port), timeout=10) as c:
        c.sendall(b"POST /api/v1/inject HTTP/1.1\r\nHost: x\r\nContent-Length: 30000000\r\n\r\n{")
        data = b""
        c.settimeout(5)
        while True:  # the answer, then the server closes: it never waits for 30 MB
            chunk = c.recv(4096)
            if not chunk:
                break
            data += chunk
    assert data.startswith(b"HTTP/1.1 401"), data
    assert b'"missing or bad bearer token"' in data


def test_open_relay_probes_cost_no_dns_query_and_hooks_see_both_spellings(env):
    slow = env.slow_dns(delay=None)  # counts queries, never answers
    dns = env.dns(f"--server=/probe.test/127.0.0.1#{slow.port}",
                  f"--server=/xn--bcher-kva.example/127.0.0.1#{slow.port}")
    gw = env.gateway(dns, """
        mailgate.use("recipient_check", {})
        mailgate.use("suppression", {})
        mailgate.use("rate_limit", { per_ip = { recipients = "1/h" } })
        mailgate.on("rcpt_to", function(tx, rcpt)
          if rcpt.user == "show" then
            return mailgate.reject(550, "5.7.1 " .. rcpt.domain .. " " .. rcpt.domain_unicode ..
                                   " " .. tostring(rcpt.relay_refused))
          end
        end)
    """, sets=["listen.relay_networks.1=10.9.0.0/16", "listen.relay_domains.1=ok.test"])
    replies = raw_rcpt(gw, ["a@probe.test", "b@probe.test", "c@probe.test",
                            "show@B\u00dcCHER.example"])
    # Refused by relay control at once: not by a DNS timeout (451), not by the
    # rate limit (which these probes must not use up), and no query was sent.
    assert [r[:9] for r in replies[:3]] == ["550 5.7.1"] * 3, replies
    assert "relaying denied" in replies[0]
    assert replies[3] == "550 5.7.1 xn--bcher-kva.example b\u00fccher.example true", replies[3]
    assert slow.queries == 0


def test_sender_domains_reads_from_with_a_real_address_parser(env):
    import smtplib
    import pytest
    dns = env.dns()
    gw = env.gateway(dns, """
        mailgate.use("sender_domains", { tenants = {
          acme = { networks = { "127.0.0.1/32" }, domains = { "acme.test" } },
        } })
        mailgate.on("route", function(msg, domain) return { discard = true } end)
    """)
    spoofs = [b'From: "a\\" <x@acme.test> \\"b" <ceo@victim.test>\r\n',  # one mailbox: victim
              b"From: (x@acme.test) ceo@victim.test\r\n",
              b'From: "x@acme.test" <ceo@victim.test>\r\n',
              b"From: <x@acme.test\r\n"]                                 # not an address list
    with smtplib.SMTP(gw.host, gw.port, timeout=30) as s:
        for header in spoofs:
            with pytest.raises(smtplib.SMTPDataError) as e:
                s.sendmail("x@acme.test", ["a@dest.test"], header + b"Subject: x\r\n\r\nx\r\n")
            assert e.value.smtp_code == 550, header
            s.rset()
        # Quoting that only hides an '@' in a display name is fine.
        s.sendmail("x@acme.test", ["a@dest.test"],
                   b'From: "Acme @ home, <ceo@victim.test>" <x@acme.test>\r\nSubject: ok\r\n\r\nx\r\n')


# --------------------------------------------------------------------------
# Connection caps, the greeting pause, time limits


def greeting(c, timeout=10):
    c.settimeout(timeout)
    data = b""
    while not data.endswith(b"\r\n") or data.rsplit(b"\r\n", 2)[-2][3:4] == b"-":
        chunk = c.recv(4096)
        if not chunk:
            break
        data += chunk
    return data


def test_early_talker_is_refused_and_a_patient_client_is_greeted(gateway):
    gw = gateway(sets=["listen.greet_pause=500ms"])
    with socket.create_connection((gw.host, gw.port), timeout=10) as c:
        c.sendall(b"EHLO early.test\r\n")  # before the greeting: the pipelining spambot
        data = b""
        c.settimeout(10)
        while True:
            chunk = c.recv(4096)
            if not chunk:
                break
            data += chunk
        assert data.startswith(b"220-gw.mailgate.test ESMTP mailgate\r\n"), data
        assert b"554 5.5.1 protocol error: input before the greeting\r\n" in data
        assert b"250" not in data
    with socket.create_connection((gw.host, gw.port), timeout=10) as c:
        data = greeting(c)
        assert data == (b"220-gw.mailgate.test ESMTP mailgate\r\n"
                        b"220 gw.mailgate.test ESMTP mailgate\r\n"), data
        c.sendall(b"EHLO ok.test\r\n")
        assert c.recv(4096).startswith(b"250")
    port = int(gw.wait_log(r"listening http=\S+:(\d+)").group(1))
    metrics = Api(gw).call("GET", "/metrics")[1].decode()
    assert 'mailgate_smtp_connections_refused_total{reason="early_talker"} 1' in metrics


def test_connections_per_ip_are_capped(gateway):
    gw = gateway(sets=["listen.max_connections_per_ip=3", "listen.max_connections=5"])
    held = [socket.create_connection((gw.host, gw.port), timeout=10) for _ in range(3)]
    try:
        for c in held:
            assert greeting(c).startswith(b"220 ")
        # The 4th from 127.0.0.1 is over the per-IP cap...
        with socket.create_connection((gw.host, gw.port), timeout=10) as c:
            assert greeting(c).startswith(b"421 4.7.0 too many connections from 127.0.0.1")
        # ...another IP is not, until the listener's cap (5) is reached.
        others = [socket.create_connection((gw.host, gw.port), timeout=10,
                                           source_address=(f"127.0.0.{i}", 0)) for i in (2, 3)]
        held += others
        for c in others:
            assert greeting(c).startswith(b"220 ")
        with socket.create_connection((gw.host, gw.port), timeout=10,
                                      source_address=("127.0.0.4", 0)) as c:
            assert greeting(c).startswith(b"421 4.3.2 too many connections")
    finally:
        for c in held:
            c.close()
    # Places are given back when sessions end. (Wait for the server to see
    # the closes first: a connection made before would be refused again and
    # counted, and the counts below are exact.)
    def no_session_open():
        metrics = Api(gw).call("GET", "/metrics")[1].decode()
        return "\nmailgate_smtp_sessions_active 0\n" in metrics
    wait_for(no_session_open, 10, what="the closed sessions to end")

    def fresh_greeting():
        with socket.create_connection((gw.host, gw.port), timeout=10) as c:
            return greeting(c).startswith(b"220 ")
    wait_for(fresh_greeting, 10, what="a session admitted again")
    metrics = Api(gw).call("GET", "/metrics")[1].decode()
    assert 'mailgate_smtp_connections_refused_total{reason="ip_cap"} 1' in metrics
    assert 'mailgate_smtp_connections_refused_total{reason="listener_cap"} 1' in metrics


def test_connection_rate_per_ip(gateway):
    gw = gateway(sets=["listen.connection_rate_per_ip=3/min"])
    codes = []
    for _ in range(5):
        with socket.create_connection((gw.host, gw.port), timeout=10) as c:
            codes.append(greeting(c)[:9])
    assert codes == [b"220 gw.ma"] * 3 + [b"421 4.7.0"] * 2, codes


def test_slow_drip_is_cut_by_the_data_rate_and_session_limits(gateway):
    gw = gateway(sets=["listen.timeouts.min_data_rate=100000", "listen.timeouts.session=15s",
                       "listen.timeouts.data=1h", "listen.timeouts.command=1h"])
    import time
    with socket.create_connection((gw.host, gw.port), timeout=30) as c:
        assert greeting(c).startswith(b"220 ")
        c.sendall(b"EHLO c.test\r\nMAIL FROM:<a@b.test>\r\nRCPT TO:<r@c.test>\r\nDATA\r\n")
        time.sleep(0.5)
        c.recv(4096)
        t0 = time.monotonic()
        data = b""
        # One byte a second: far under 100 KB/s once the 10 s grace is over.
        while b"421" not in data and time.monotonic() - t0 < 25:
            try:
                c.sendall(b"x")
            except OSError:
                break
            c.settimeout(1)
            try:
                chunk = c.recv(4096)
                if not chunk:
                    break
                data += chunk
            except socket.timeout:
                pass
        assert b"421 4.4.2 gw.mailgate.test data arriving too slowly" in data, data
        assert 9 <= time.monotonic() - t0 < 20
    with socket.create_connection((gw.host, gw.port), timeout=30) as c:
        assert greeting(c).startswith(b"220 ")
        t0 = time.monotonic()
        data = b""
        while b"421" not in data and time.monotonic() - t0 < 30:  # a NOOP every second
            c.sendall(b"NOOP\r\n")
            time.sleep(1)
            c.settimeout(0.5)
            try:
                data += c.recv(4096)
            except socket.timeout:
                pass
        assert b"421 4.4.2 gw.mailgate.test session time limit exceeded" in data, data[-200:]


# Issue 15's bound on the memory of one idle (EHLO'd) session; measured 1.14 KiB
# at 15,000 sessions (bench/rss --loadgen), 3.1 KiB before sessions were parked.
IDLE_KIB = 2.0


def rss_bytes(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    raise AssertionError("no VmRSS")


def settled_rss(pid, timeout=30.0):
    """RSS once it stopped changing for a second (polled, with a deadline)."""
    import time
    deadline = time.monotonic() + timeout
    last, stable_since = rss_bytes(pid), time.monotonic()
    while time.monotonic() < deadline:
        time.sleep(0.1)
        now = rss_bytes(pid)
        if abs(now - last) > 64 * 1024:
            last, stable_since = now, time.monotonic()
        elif time.monotonic() - stable_since >= 1.0:
            return now
    return last


def test_pipelined_replies_wait_for_the_client_instead_of_growing(gateway):
    """A client that pipelines commands and never reads the replies: the
    session writes once its pending replies pass 16 KiB, so TCP flow control
    holds the client, and memory per session stays bounded (before: a 64 KiB
    read of EHLOs queued ~700 KB of replies per session)."""
    gw = gateway()
    base = settled_rss(gw.proc.pid)
    flood = b"EHLO flood.test\r\n" * 3800  # 64 KB: one read's worth
    socks = []
    try:
        for _ in range(40):
            s = socket.socket()
            s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
            s.connect((gw.host, gw.port))
            s.setblocking(False)
            sent = 0
            try:
                while sent < 8 * len(flood):
                    sent += s.send(flood)
            except BlockingIOError:
                pass  # the gateway stopped reading: what we want to see
            socks.append(s)
        grown = settled_rss(gw.proc.pid) - base
        # 40 sessions x (one 64 KiB read + 16 KiB of replies) is ~3.2 MB.
        # Under ASan (scripts/asan sets MAILGATE_SANITIZED) the RSS is
        # mostly its quarantine of freed blocks (hundreds of MB), so only the
        # flood itself and the check below run there.
        if os.environ.get("MAILGATE_SANITIZED") != "1":
            assert grown < 16 * 1024 * 1024, f"RSS grew by {grown} bytes for 40 sessions"
    finally:
        for s in socks:
            s.close()
    # The gateway is still fine.
    assert raw_rcpt(gw, ["a@example.com"], smtputf8=False)[0].startswith("250")


def test_idle_sessions_are_small_and_a_command_split_across_reads_is_served(gateway):
    """Issue 15: a session waiting for a command is parked on a readiness
    callback (no coroutine frame, no reply buffer), so 1,500 EHLO'd idle
    sessions grow the gateway by under IDLE_KIB KiB each (3.1 KiB before
    parking); a command that arrives in pieces is still answered once its
    line is complete, and the parked sessions still answer afterwards."""
    import resource
    import time
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    n = 1500
    if soft < n + 100:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, n + 200), hard))
    gw = gateway(sets=["listen.max_connections_per_ip=0", "listen.max_connections=0"])
    base = settled_rss(gw.proc.pid)
    socks = []
    try:
        for _ in range(n):
            c = socket.create_connection((gw.host, gw.port), timeout=20)
            socks.append(c)
            assert greeting(c).startswith(b"220 ")
            c.sendall(b"EHLO idle.test\r\n")
        for c in socks:
            assert greeting(c).startswith(b"250")
        grown = settled_rss(gw.proc.pid) - base
        if os.environ.get("MAILGATE_SANITIZED") != "1":
            assert grown / n < IDLE_KIB * 1024, f"{grown / n / 1024:.2f} KiB per idle session"
        # A command in three pieces, the last after a pause: one reply, once.
        c = socks[0]
        for piece in (b"NO", b"OP"):
            c.sendall(piece)
            time.sleep(0.2)
        c.settimeout(0.3)
        try:
            early = c.recv(4096)
        except socket.timeout:
            early = b""
        assert early == b"", early
        c.sendall(b"\r\n")
        assert greeting(c).startswith(b"250 2.0.0")
        for c in socks[1:10] + socks[-10:]:
            c.sendall(b"QUIT\r\n")
            assert greeting(c).startswith(b"221")
    finally:
        for c in socks:
            c.close()
