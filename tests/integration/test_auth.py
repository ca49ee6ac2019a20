"""Inbound SMTP AUTH end to end (issue 10 item 3): PLAIN and LOGIN after
STARTTLS with the shipped auth_file plugin (crypt(3) SHA-512 hashes), with
Python's smtplib, swaks and raw sockets; relaying by authentication; the
identity in Received (ESMTPSA), the spool, the delivery log and `tx.auth`;
what a password guesser meets (535 after a growing pause, 421 after three
failures on a connection, 421 for an IP with too many recent failures);
`auth = "required"`; AUTH never offered in plaintext unless the listener
says so. Every process stopped by PID."""
import base64
import crypt
import json
import smtplib
import socket
import ssl
import subprocess
import textwrap
import threading
import time

import pytest

from conftest import BIN, Gateway, spool_dump, wait_for
from test_http_api import Api
from test_tls import Lines, client_context

PASSWORD = "correct horse battery staple"


def write_config(tmp_path, listen_extra="", lua=""):
    users = tmp_path / "users"
    users.write_text("# test users\nalice:%s\nbob:%s\n" % (
        crypt.crypt(PASSWORD, crypt.mksalt(crypt.METHOD_SHA512)),
        crypt.crypt("other", crypt.mksalt(crypt.METHOD_SHA512))))
    cfg = tmp_path / "mailgate.lua"
    cfg.write_text(textwrap.dedent(f"""
        mailgate.configure {{
          tls = {{ cert = "unused.pem", key = "unused.key", self_signed = true }},
        }}
        mailgate.listen {{
          address = "127.0.0.1:2525",
          relay_networks = {{}},           -- nobody relays without AUTH
          starttls = true,
          auth = "optional",
          {listen_extra}
        }}
        mailgate.use("auth_file", {{ path = "{users}" }})
    """) + textwrap.dedent(lua))
    return str(cfg)


@pytest.fixture
def auth_gw(tmp_path):
    gws = []

    def start(listen_extra="", lua="", sets=()):
        gw = Gateway(tmp_path / f"spool{len(gws)}", config=write_config(tmp_path, listen_extra, lua),
                     sets=list(sets))
        gws.append(gw)
        return gw

    yield start
    for gw in gws:
        gw.stop()


def metrics(gw):
    return Api(gw).call("GET", "/metrics")[1].decode()


def auth_plain(s, user, password):
    """One AUTH PLAIN attempt (smtplib's login() would try every mechanism)."""
    b64 = base64.b64encode(b"\0" + user.encode() + b"\0" + password.encode()).decode()
    return s.docmd("AUTH PLAIN " + b64)


def tls_session(gw):
    s = smtplib.SMTP(gw.host, gw.port, timeout=30)
    s.ehlo("client.test")
    s.starttls(context=client_context())
    s.ehlo("client.test")
    return s


def test_auth_relays_and_is_recorded(auth_gw, tmp_path):
    gw = auth_gw()
    with smtplib.SMTP(gw.host, gw.port, timeout=30) as s:
        s.ehlo("client.test")
        assert not s.has_extn("auth"), "AUTH offered before TLS"
        code, text = s.docmd("AUTH PLAIN " + base64.b64encode(b"\0alice\0" + PASSWORD.encode()).decode())
        assert (code, text[:6]) == (538, b"5.7.11")
        # Not authenticated: no relay for this client.
        s.mail("app@example.org")
        assert s.rcpt("x@remote.example")[0] == 550
        s.rset()
        s.starttls(context=client_context())
        s.ehlo("client.test")
        assert s.has_extn("auth") and s.esmtp_features["auth"].split() == ["PLAIN", "LOGIN"]
        assert s.login("alice", PASSWORD)[0] == 235
        code, text = s.docmd("AUTH PLAIN")
        assert (code, text[:5]) == (503, b"5.5.1")  # once per session
        s.sendmail("app@example.org", ["x@remote.example"], b"Subject: relayed\r\n\r\nhi\r\n")
    gw.stop()
    [m] = spool_dump(gw.spool, bodies=True)
    assert m["auth_user"] == "alice"
    received = base64.b64decode(m["body_b64"]).decode().split("\r\nSubject:")[0]
    assert "with ESMTPSA id" in received, received
    log = [json.loads(x) for x in open(tmp_path / "deliveries.jsonl")]
    [rec] = [r for r in log if r["event"] == "reception"]
    assert rec["auth"] == "alice" and rec["tls"] is True


def test_login_mechanism_and_exchange_errors(auth_gw):
    gw = auth_gw()
    s = tls_session(gw)
    try:
        b64 = lambda v: base64.b64encode(v.encode()).decode()  # noqa: E731
        code, text = s.docmd("AUTH CRAM-MD5")
        assert (code, text[:5]) == (504, b"5.5.4")
        code, text = s.docmd("AUTH LOGIN")
        assert (code, text) == (334, b"VXNlcm5hbWU6")
        code, text = s.docmd("*")
        assert (code, text[:5]) == (501, b"5.7.0")  # cancelled: not a failure
        code, text = s.docmd("AUTH PLAIN")
        assert code == 334
        code, text = s.docmd("not base64!")
        assert (code, text[:5]) == (501, b"5.5.2")
        code, text = s.docmd("AUTH LOGIN " + b64("alice"))
        assert (code, text) == (334, b"UGFzc3dvcmQ6")
        code, text = s.docmd(b64(PASSWORD))
        assert (code, text[:5]) == (235, b"2.7.0")
    finally:
        s.close()
    assert 'mailgate_smtp_auth_total{result="failure"} 0' in metrics(gw)
    assert 'mailgate_smtp_auth_total{result="success"} 1' in metrics(gw)


def test_swaks_tls_auth(auth_gw):
    gw = auth_gw()
    r = subprocess.run(["swaks", "--server", gw.host, "--port", str(gw.port), "--tls",
                        "--auth", "LOGIN", "--auth-user", "alice", "--auth-password", PASSWORD,
                        "--from", "app@example.org", "--to", "x@remote.example",
                        "--helo", "client.test"], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "235 2.7.0" in r.stdout and "250 2.0.0 OK id=" in r.stdout


def test_failures_are_slowed_counted_and_end_the_connection(auth_gw):
    gw = auth_gw()
    s = tls_session(gw)
    try:
        pauses = []
        for attempt in range(1, 3):
            t0 = time.monotonic()
            code, text = auth_plain(s, "alice", "wrong")
            pauses.append(time.monotonic() - t0)
            assert (code, text[:5]) == (535, b"5.7.8")
        # The pause grows: 1 s, then 2 s (a guesser gets three tries a connection).
        assert pauses[0] >= 0.9 and pauses[1] >= 1.9, pauses
        b64 = base64.b64encode(b"\0alice\0wrong").decode()
        s.sock.sendall(f"AUTH PLAIN {b64}\r\n".encode())
        lines = Lines(s.sock)
        assert lines.reply().startswith("535 5.7.8")
        assert lines.reply().startswith("421 4.7.0 too many authentication failures")
    finally:
        s.close()
    assert 'mailgate_smtp_auth_total{result="failure"} 3' in metrics(gw)
    # The right password still works on a new connection.
    s = tls_session(gw)
    try:
        assert s.login("alice", PASSWORD)[0] == 235
    finally:
        s.close()


def test_an_ip_with_many_recent_failures_is_refused(auth_gw):
    gw = auth_gw()

    def fail_once():
        s = tls_session(gw)
        try:
            assert auth_plain(s, "mallory", "guess")[0] == 535
        finally:
            s.close()

    # Ten failures from this IP (in parallel: each pays its own 1 s pause).
    threads = [threading.Thread(target=fail_once) for _ in range(10)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    wait_for(lambda: 'mailgate_smtp_auth_total{result="failure"} 10' in metrics(gw),
             what="ten failures counted")
    s = tls_session(gw)
    try:
        code, text = auth_plain(s, "alice", PASSWORD)
        # Even the right password: the IP is throttled, and the connection closed.
        assert (code, text[:5]) == (421, b"4.7.0"), text
    finally:
        s.close()
    assert 'mailgate_smtp_auth_total{result="throttled"} 1' in metrics(gw)


def test_auth_required_and_tx_auth_for_hooks(auth_gw):
    gw = auth_gw(listen_extra='auth = "required",', lua="""
        mailgate.on("rcpt_to", function(tx, rcpt)
          if rcpt.user == "who" then
            return mailgate.reject(550, "5.7.1 tx.auth=" .. tostring(tx.auth))
          end
        end)
    """)
    s = tls_session(gw)
    try:
        code, text = s.docmd("MAIL FROM:<app@example.org>")
        assert (code, text[:5]) == (530, b"5.7.0")
        s.login("alice", PASSWORD)
        s.mail("app@example.org")
        code, text = s.rcpt("who@remote.example")
        assert (code, text) == (550, b"5.7.1 tx.auth=alice")
    finally:
        s.close()


def test_plaintext_auth_only_when_the_listener_allows_it_and_starttls_forgets_it(auth_gw):
    gw = auth_gw(listen_extra="auth_plaintext = true,")
    with smtplib.SMTP(gw.host, gw.port, timeout=30) as s:
        s.ehlo("client.test")
        assert s.has_extn("auth")
        assert s.login("alice", PASSWORD)[0] == 235
        s.starttls(context=client_context())
        s.ehlo("client.test")
        # RFC 3207 §4.2: everything learnt before TLS is forgotten, AUTH too.
        s.mail("app@example.org")
        assert s.rcpt("x@remote.example")[0] == 550


def test_auth_config_errors(tmp_path):
    cfg = write_config(tmp_path)
    r = subprocess.run([BIN, "check-config", "--config", cfg, "--set", "listen.starttls=false"],
                       capture_output=True, text=True, timeout=30)
    assert r.returncode == 1 and "listen[1].auth: AUTH is offered only over TLS" in r.stderr, r.stderr
    bare = tmp_path / "nohook.lua"
    bare.write_text(open(cfg).read().replace('mailgate.use("auth_file"', '-- mailgate.use("auth_file"'))
    with pytest.raises(AssertionError, match="needs an auth hook"):
        Gateway(tmp_path / "spool", config=str(bare))
