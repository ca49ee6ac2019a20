"""Inbound TLS end to end against the real binary (issue 10 item 2): STARTTLS
with Python's smtplib and `openssl s_client -starttls smtp`, implicit TLS
(port 465 style), the STARTTLS command-injection case (CVE-2011-0411), TLS in
the Received header / delivery log / metrics, certificate errors and reload.
Certificates are made per test with the openssl CLI. Every process is
stopped by PID (fixtures)."""
import json
import os
import signal
import smtplib
import socket
import ssl
import subprocess

import pytest

from conftest import BIN, CONFIG, Gateway, spool_dump, wait_for
from test_http_api import Api


def make_cert(directory, name="gw.mailgate.test", stem="cert"):
    cert, key = directory / f"{stem}.pem", directory / f"{stem}.key"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
                    "-subj", f"/CN={name}", "-keyout", str(key), "-out", str(cert)],
                   check=True, capture_output=True, timeout=60)
    return cert, key


def client_context():
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE  # self-signed test certificate
    return ctx


@pytest.fixture
def tls_gw(tmp_path):
    gws = []

    def start(*sets, cert=None, **kw):
        cert, key = cert or make_cert(tmp_path)
        gw = Gateway(tmp_path / f"spool{len(gws)}",
                     sets=[f"tls.cert={cert}", f"tls.key={key}", *sets], **kw)
        gws.append(gw)
        return gw

    yield start
    for gw in gws:
        gw.stop()


def metrics(gw):
    return Api(gw).call("GET", "/metrics")[1].decode()


class Lines:
    """Reads SMTP replies (multi-line aware) from a socket or SSL socket."""

    def __init__(self, sock):
        self.sock = sock
        self.buf = b""

    def reply(self):
        lines = []
        while True:
            while b"\n" not in self.buf:
                chunk = self.sock.recv(4096)
                if not chunk:
                    raise EOFError(b"".join(lines) + self.buf)
                self.buf += chunk
            line, self.buf = self.buf.split(b"\n", 1)
            lines.append(line + b"\n")
            if line[3:4] != b"-":
                return b"".join(lines).decode()


def test_starttls_with_smtplib_then_a_message_with_tls_in_its_trace(tls_gw, tmp_path):
    gw = tls_gw("listen.starttls=true")
    with smtplib.SMTP(gw.host, gw.port, timeout=20) as s:
        code, ehlo = s.ehlo("client.test")
        assert code == 250 and s.has_extn("starttls")
        code, _ = s.starttls(context=client_context())
        assert code == 220
        code, ehlo = s.ehlo("client.test")
        # RFC 3207 §4.2: not offered again once TLS is on.
        assert code == 250 and not s.has_extn("starttls"), ehlo
        assert s.sock.version() in ("TLSv1.2", "TLSv1.3")
        s.sendmail("a@example.org", ["b@example.net"], b"Subject: tls\r\n\r\nhello\r\n")
        code, text = s.docmd("STARTTLS")
        assert (code, text[:5]) == (503, b"5.5.1")
    gw.stop()
    [m] = spool_dump(gw.spool, bodies=True)
    import base64
    body = base64.b64decode(m["body_b64"]).decode()
    received = body.split("\r\nSubject:")[0]
    assert "with ESMTPS id" in received, received
    assert "(using TLSv1." in received and "with cipher" in received, received
    log = [json.loads(x) for x in open(tmp_path / "deliveries.jsonl")]
    [rec] = [r for r in log if r["event"] == "reception"]
    assert rec["tls"] is True and rec["tls_version"].startswith("TLSv1."), rec
    assert rec["tls_cipher"]


def test_openssl_s_client_starttls(tls_gw):
    gw = tls_gw("listen.starttls=true")
    out = subprocess.run(
        ["openssl", "s_client", "-starttls", "smtp", "-connect", f"{gw.host}:{gw.port}",
         "-quiet", "-verify_quiet"],
        input=b"EHLO c.test\r\nNOOP\r\nQUIT\r\n", capture_output=True, timeout=60)
    text = out.stdout.decode()
    assert "250-gw.mailgate.test greets c.test" in text, (text, out.stderr)
    assert "STARTTLS" not in text  # s_client's EHLO before TLS is not printed
    assert "221 2.0.0" in text
    assert 'mailgate_smtp_tls_handshakes_total{result="ok"} 1' in metrics(gw)


def test_commands_pipelined_after_starttls_are_discarded(tls_gw):
    """CVE-2011-0411: `STARTTLS\\r\\nEHLO x\\r\\n` in one write. The injected
    EHLO must not be answered: not in plaintext (the handshake would then
    fail on the stray bytes) and not inside TLS (the first reply there must
    be the one to our own EHLO)."""
    gw = tls_gw("listen.starttls=true")
    with socket.create_connection((gw.host, gw.port), timeout=20) as raw:
        r = Lines(raw)
        assert r.reply().startswith("220 ")
        raw.sendall(b"EHLO c.test\r\n")
        assert "STARTTLS" in r.reply()
        raw.sendall(b"STARTTLS\r\nEHLO injected.test\r\nMAIL FROM:<evil@example.org>\r\n")
        assert r.reply() == "220 2.0.0 Ready to start TLS\r\n"
        assert r.buf == b""
        with client_context().wrap_socket(raw, server_hostname="gw.mailgate.test") as tls:
            t = Lines(tls)
            # The session forgot the plaintext EHLO: MAIL needs a new one.
            tls.sendall(b"MAIL FROM:<a@example.org>\r\n")
            assert t.reply().startswith("503 5.5.1"), "state was not reset"
            tls.sendall(b"EHLO real.test\r\n")
            ehlo = t.reply()
            assert "greets real.test" in ehlo and "injected" not in ehlo, ehlo
            assert "STARTTLS" not in ehlo
            tls.sendall(b"QUIT\r\n")
            assert t.reply().startswith("221")


def test_starttls_refusals(tls_gw, tmp_path):
    gw = tls_gw("listen.starttls=true")
    with socket.create_connection((gw.host, gw.port), timeout=20) as raw:
        r = Lines(raw)
        r.reply()
        for cmd, want in ((b"STARTTLS now", "501 5.5.4"), (b"EHLO c.test", "250"),
                          (b"MAIL FROM:<a@example.org>", "250"),
                          (b"STARTTLS", "503 5.5.1"), (b"RSET", "250")):
            raw.sendall(cmd + b"\r\n")
            assert r.reply().startswith(want), cmd
    # A listener without starttls neither offers nor accepts it.
    plain = Gateway(tmp_path / "plain", sets=["listen.starttls=false"])
    try:
        with smtplib.SMTP(plain.host, plain.port, timeout=20) as s:
            s.ehlo("c.test")
            assert not s.has_extn("starttls")
            code, text = s.docmd("STARTTLS")
            assert (code, text[:5]) == (502, b"5.5.1")
    finally:
        plain.stop()


def test_implicit_tls_listener(tls_gw):
    gw = tls_gw("listen.implicit_tls=true")
    with smtplib.SMTP_SSL(gw.host, gw.port, timeout=20, context=client_context()) as s:
        code, _ = s.ehlo("c.test")
        assert code == 250 and not s.has_extn("starttls")
        s.sendmail("a@example.org", ["b@example.net"], b"Subject: 465\r\n\r\nx\r\n")
    # A plaintext client on the TLS port: the handshake fails, nothing is served.
    with socket.create_connection((gw.host, gw.port), timeout=20) as raw:
        raw.sendall(b"EHLO plain.test\r\n" * 8)
        data = b""
        while True:
            chunk = raw.recv(4096)
            if not chunk:
                break
            data += chunk
        assert b"250" not in data and b"220" not in data
    wait_for(lambda: 'mailgate_smtp_tls_handshakes_total{result="failed"} 1' in metrics(gw),
             what="failed handshake counted")
    assert 'mailgate_smtp_tls_handshakes_total{result="ok"} 1' in metrics(gw)
    gw.stop()
    [m] = spool_dump(gw.spool)
    assert m["tls"] is True


def test_tls_1_2_gets_a_forward_secret_aead_cipher(tls_gw):
    gw = tls_gw("listen.implicit_tls=true")
    ctx = client_context()
    ctx.maximum_version = ssl.TLSVersion.TLSv1_2
    with socket.create_connection((gw.host, gw.port), timeout=20) as raw:
        with ctx.wrap_socket(raw) as tls:
            name, version, bits = tls.cipher()
            assert version == "TLSv1.2" and name.startswith("ECDHE-") and "GCM" in name \
                or "CHACHA20" in name, tls.cipher()
            assert Lines(tls).reply().startswith("220 ")


def test_certificate_errors(tmp_path):
    bare = tmp_path / "bare.lua"
    bare.write_text('mailgate.configure { spool = { path = "s" } }\n'
                    'mailgate.listen { address = "127.0.0.1:0" }\n')

    def check(*sets):
        return subprocess.run([BIN, "check-config", "--config", str(bare), *sum(
            (["--set", s] for s in sets), [])], capture_output=True, timeout=30)

    assert check().returncode == 0
    for flag in ("starttls", "implicit_tls"):
        r = check(f"listen.{flag}=true")
        assert r.returncode == 1 and f"listen[1].{flag}: needs a certificate".encode() in r.stderr, \
            r.stderr
    r = check("tls.cert=/nonexistent.pem")
    assert r.returncode == 1 and b"tls.key: required with tls.cert" in r.stderr, r.stderr
    r = check("listen.tls.key=k.pem")
    assert r.returncode == 1 and b"listen[1].tls.cert: required with listen[1].tls.key" in r.stderr
    assert check("listen.starttls=true", "listen.tls.cert=c", "listen.tls.key=k").returncode == 0
    # An unreadable certificate stops the start with the file and OpenSSL's reason.
    cert, key = make_cert(tmp_path)
    with pytest.raises(AssertionError, match="cannot load certificate"):
        Gateway(tmp_path / "spool", sets=["listen.starttls=true", "tls.self_signed=false",
                                          f"tls.cert={tmp_path}/missing.pem", f"tls.key={key}"])
    other_cert, other_key = make_cert(tmp_path, stem="other")
    with pytest.raises(AssertionError, match="does not match"):
        Gateway(tmp_path / "spool2", sets=["listen.starttls=true", f"tls.cert={cert}",
                                           f"tls.key={other_key}"])


def peer_cert(gw):
    with socket.create_connection((gw.host, gw.port), timeout=20) as raw:
        with client_context().wrap_socket(raw) as tls:
            return tls.getpeercert(binary_form=True)


def test_sighup_reloads_the_certificate_and_keeps_it_on_error(tls_gw, tmp_path):
    cert, key = make_cert(tmp_path, name="first.test")
    gw = tls_gw("listen.implicit_tls=true", cert=(cert, key))
    first = peer_cert(gw)
    new_cert, new_key = make_cert(tmp_path, name="second.test", stem="new")
    os.replace(new_cert, cert)
    os.replace(new_key, key)
    gw.proc.send_signal(signal.SIGHUP)
    wait_for(lambda: peer_cert(gw) != first, what="the new certificate served")
    second = peer_cert(gw)
    # A broken file on reload: the error is logged, the loaded certificate stays.
    cert.write_text("not a certificate\n")
    gw.proc.send_signal(signal.SIGHUP)
    gw.wait_log(r"TLS certificates not reloaded")
    assert peer_cert(gw) == second


def test_default_config_offers_starttls_with_a_self_signed_certificate(tmp_path):
    """scripts/run's promise: the shipped config works out of the box. The
    pair is made once, for the configured hostname, key mode 0600, and kept
    across restarts."""
    gw = Gateway(tmp_path / "spool")
    try:
        with smtplib.SMTP(gw.host, gw.port, timeout=20) as s:
            s.ehlo("c.test")
            assert s.has_extn("starttls")
            assert s.starttls(context=client_context())[0] == 220
        first = peer_cert_starttls(gw)
    finally:
        gw.stop()
    key = tmp_path / "tls" / "key.pem"
    assert oct(key.stat().st_mode & 0o777) == "0o600"
    text = subprocess.run(["openssl", "x509", "-noout", "-text", "-in", str(tmp_path / "tls/cert.pem")],
                          check=True, capture_output=True, timeout=30).stdout.decode()
    assert "CN = gw.mailgate.test" in text and "DNS:gw.mailgate.test" in text, text
    gw = Gateway(tmp_path / "spool")
    try:
        assert peer_cert_starttls(gw) == first
    finally:
        gw.stop()


def peer_cert_starttls(gw):
    with smtplib.SMTP(gw.host, gw.port, timeout=20) as s:
        s.ehlo("c.test")
        s.starttls(context=client_context())
        return s.sock.getpeercert(binary_form=True)
