"""DKIM signing end to end (issue 11, DESIGN §6b): the real gateway signs in
the `message` hook, delivers to an aiosmtpd sink, and the messages the sink
received are verified by independent implementations with the public keys
served as TXT records by a loopback dnsmasq: Python `dkim` (python3-dkim),
and `opendkim-testmsg` (opendkim-tools) under `unshare -m` with a resolv.conf
naming that dnsmasq bind-mounted over /etc/resolv.conf. Also: keygen, the
plugin, over-signing, on_error, check-config, reload."""
import os
import re
import random
import shutil
import smtplib
import subprocess
import textwrap

import dns.resolver
import dkim
import pytest

from conftest import BIN, Gateway, wait_for
from peers import Dnsmasq, Sink, free_port

DOMAIN = "signer.test"


def keygen(tmp_path, selector, algorithm, domain=DOMAIN):
    """`mailgate dkim keygen`: the key file and the TXT record it printed."""
    out = subprocess.run([BIN, "dkim", "keygen", "--domain", domain, "--selector", selector,
                          "--algorithm", algorithm, "--out", str(tmp_path / "keys")],
                         check=True, capture_output=True, text=True, timeout=60).stdout
    path = tmp_path / "keys" / f"{domain}.{selector}.pem"
    assert oct(os.stat(path).st_mode & 0o777) == "0o600"
    record = out[out.index(f"{selector}._domainkey.{domain}. IN TXT"):]
    strings = record[record.index("(") + 1:record.index(")")].split('"')[1::2]
    return str(path), "".join(strings)


def txt_option(name, value):
    """A dnsmasq --txt-record with the value cut into strings of < 256 octets
    (on its command line dnsmasq splits at commas and keeps quotes)."""
    assert "," not in value
    parts = [value[i:i + 200] for i in range(0, len(value), 200)]
    return f"--txt-record={name}," + ",".join(parts)


class Verifiers:
    """dnsmasq with the test's TXT records, and the two verifiers using it."""

    def __init__(self, tmp_path, records):
        # python3-dkim asks through dnspython: any loopback port will do.
        self.dns = Dnsmasq(records)
        self.tmp = tmp_path
        self.records = records
        self.resolv_dns = None

    def python_ok(self, message):
        res = dns.resolver.Resolver(configure=False)
        res.nameservers = ["127.0.0.1"]
        res.port = self.dns.port

        def txt(name, timeout=5):
            try:
                a = res.resolve(name.decode().rstrip("."), "TXT", lifetime=timeout)
            except Exception:
                return None
            return b"".join(b"".join(r.strings) for r in a)

        d = dkim.DKIM(message)
        results = []
        for i in range(len([h for h in d.headers if h[0].lower() == b"dkim-signature"])):
            results.append(d.verify(idx=i, dnsfunc=txt))
        return results

    def opendkim_ok(self, message):
        """True/False from opendkim-testmsg; skips the test when it cannot run."""
        if shutil.which("opendkim-testmsg") is None or shutil.which("unshare") is None:
            pytest.skip("opendkim-testmsg or unshare missing (scripts/setup installs them)")
        if self.resolv_dns is None:
            # The system resolver asks port 53: a random 127.53.x.y of its own.
            addr = f"127.53.{random.randint(1, 250)}.{random.randint(1, 250)}"
            self.resolv_dns = Dnsmasq(self.records, port=53, address=addr)
            (self.tmp / "resolv.conf").write_text(f"nameserver {addr}\noptions timeout:2\n")
        path = self.tmp / "verify.eml"
        path.write_bytes(message.replace(b"\r\n", b"\n"))
        script = (f"mount --bind {self.tmp}/resolv.conf /etc/resolv.conf && "
                  f"exec opendkim-testmsg < {path}")
        r = subprocess.run(["unshare", "-m", "sh", "-c", script], capture_output=True, text=True,
                           timeout=60)
        if "Operation not permitted" in r.stderr or "unshare failed" in r.stderr:
            pytest.skip(f"unshare -m is not possible here: {r.stderr.strip()}")
        # opendkim-testmsg checks headers strictly ("dkim_chunk(): Syntax
        # error" unless there is exactly one From: and one Date:, and at most
        # one To:, Subject:, ...): every good message here passes that check.
        self.last_error = r.stderr
        return r.returncode == 0

    def stop(self):
        for d in (self.resolv_dns, self.dns):
            if d is not None:
                d.stop()


@pytest.fixture
def env(tmp_path):
    started = []

    class Env:
        port = free_port()
        tmp = tmp_path

        def keys(self, *specs):
            """specs: (selector, algorithm[, domain]) → {selector: key path}; TXT records."""
            self.paths, records = {}, []
            for spec in specs:
                selector, algorithm = spec[0], spec[1]
                domain = spec[2] if len(spec) > 2 else DOMAIN
                path, txt = keygen(tmp_path, selector, algorithm, domain)
                self.paths[selector] = path
                records.append(txt_option(f"{selector}._domainkey.{domain}", txt))
            records += ["--mx-host=dest.test,mx.dest.test,10",
                        "--host-record=mx.dest.test,127.0.0.1"]
            self.verifiers = Verifiers(tmp_path, records)
            started.append(self.verifiers)
            return self.paths

        def gateway(self, lua, sets=()):
            cfg = tmp_path / "mailgate.lua"
            cfg.write_text(textwrap.dedent("""
                mailgate.configure { spool = { path = "unused" } }
                mailgate.listen { address = "127.0.0.1:2525", relay_networks = { "127.0.0.0/8" } }
            """) + textwrap.dedent(lua))
            gw = Gateway(tmp_path / "spool", config=str(cfg), dns=self.verifiers.dns.server,
                         sets=[f"delivery.port={self.port}"] + list(sets))
            started.append(gw)
            return gw

        def sink(self):
            s = Sink("127.0.0.1", self.port)
            started.append(s)
            return s

    yield Env()
    for s in reversed(started):
        s.stop()


def send(gw, message, sender="app@signer.test", rcpts=("u@dest.test",)):
    with smtplib.SMTP(gw.host, gw.port, timeout=30) as s:
        s.sendmail(sender, list(rcpts), message)


def received(sink, n=1):
    wait_for(lambda: sink.handler.count() >= n, 30, what=f"{n} message(s) at the sink")
    return [m["data"] for m in sink.handler.messages]


MESSAGE = (b"From: App <app@signer.test>\r\nTo: u@dest.test\r\nSubject: hello\r\n"
           b"Date: Fri, 04 Dec 2026 12:00:00 +0000\r\nMessage-ID: <1@signer.test>\r\n\r\n"
           b"Hello,\r\nthis is the body.\r\n")


def sign_lua(**fields):
    args = ", ".join(f'{k} = {v!r}'.replace("'", '"') if isinstance(v, str) else f"{k} = {v}"
                     for k, v in fields.items())
    return f"""
        mailgate.on("message", function(tx, msg)
          msg:dkim_sign {{ {args} }}
        end)
    """


@pytest.mark.parametrize("algorithm,keyalg", [("rsa-sha256", "rsa-2048"),
                                              ("ed25519-sha256", "ed25519")])
@pytest.mark.parametrize("canon", ["relaxed/relaxed", "simple/simple"])
def test_signed_through_the_gateway_verifies_with_both_verifiers(env, algorithm, keyalg, canon):
    paths = env.keys(("s1", keyalg))
    sink = env.sink()
    gw = env.gateway(sign_lua(domain=DOMAIN, selector="s1", key=paths["s1"], algorithm=algorithm,
                              canonicalization=canon))
    # Folded header, trailing whitespace, UTF-8 in a header, trailing empty lines.
    body = (b"From: App <app@signer.test>\r\nTo: u@dest.test\r\n"
            b"Subject: a folded\r\n\tsubject line  \r\nX-Note: caf\xc3\xa9 \xe2\x82\xac  \r\n"
            b"Date: Fri, 04 Dec 2026 12:00:00 +0000\r\n\r\n"
            b"line with trailing space   \r\n\r\n  indented\ttab\r\n\r\n\r\n")
    send(gw, body)
    data = received(sink)[0]
    assert data.startswith(b"DKIM-Signature: v=1; a=" + algorithm.encode())
    assert f"c={canon};".encode() in data
    assert env.verifiers.python_ok(data) == [True]
    assert env.verifiers.opendkim_ok(data)


def test_empty_body_and_two_signatures(env):
    paths = env.keys(("cust", "rsa-1024"), ("esp", "ed25519", "esp.test"))
    sink = env.sink()
    gw = env.gateway(f"""
        mailgate.on("message", function(tx, msg)
          msg:dkim_sign {{ domain = "{DOMAIN}", selector = "cust", key = "{paths['cust']}" }}
          msg:dkim_sign {{ domain = "esp.test", selector = "esp", key = "{paths['esp']}",
                          canonicalization = "simple/relaxed", expire = "7d" }}
        end)
    """)
    send(gw, b"From: app@signer.test\r\nTo: u@dest.test\r\nSubject: empty\r\n"
             b"Date: Fri, 04 Dec 2026 12:00:00 +0000\r\n\r\n")
    data = received(sink)[0]
    assert data.count(b"DKIM-Signature:") == 2
    # In call order, at the top.
    assert data.index(b"d=signer.test") < data.index(b"d=esp.test")
    assert b" x=" in data
    assert env.verifiers.python_ok(data) == [True, True]
    assert env.verifiers.opendkim_ok(data)  # (it checks the first signature)


def test_header_added_after_the_plugin_is_signed_and_oversigning_holds(env):
    paths = env.keys(("s1", "rsa-2048"))
    (env.tmp / "dkim-keys").write_text(f"# domain selector key\n{DOMAIN} s1 {paths['s1']}\n")
    sink = env.sink()
    gw = env.gateway(f"""
        mailgate.use("dkim", {{ file = "{env.tmp}/dkim-keys" }})
        mailgate.on("message", function(tx, msg)
          msg:add_header("List-Unsubscribe", "<mailto:unsub@signer.test>")
        end)
    """)
    send(gw, MESSAGE)
    send(gw, MESSAGE.replace(b"app@signer.test>", b"app@nokey.test>"), sender="a@nokey.test")
    data = received(sink, 2)
    signed = [d for d in data if b"DKIM-Signature" in d]
    unsigned = [d for d in data if b"DKIM-Signature" not in d]
    assert len(signed) == 1 and len(unsigned) == 1  # no key for nokey.test: not signed
    msg = signed[0]
    assert b"list-unsubscribe" in msg.split(b"\r\n\r\n")[0].lower().split(b"h=")[1]
    assert env.verifiers.python_ok(msg) == [True]
    assert env.verifiers.opendkim_ok(msg)
    # A second Subject (or a changed List-Unsubscribe) added on the way breaks it.
    head, rest = msg.split(b"\r\n\r\n", 1)
    tampered = head + b"\r\nSubject: added later" + b"\r\n\r\n" + rest
    assert env.verifiers.python_ok(tampered) == [False]
    assert not env.verifiers.opendkim_ok(tampered)
    tampered = msg.replace(b"unsub@signer.test", b"evil@signer.test")
    assert env.verifiers.python_ok(tampered) == [False]
    assert not env.verifiers.opendkim_ok(tampered)
    assert "Bad signature" in env.verifiers.last_error


def test_missing_key_fails_temporarily_unless_send_unsigned(env):
    env.keys(("s1", "ed25519"))
    sink = env.sink()
    gw = env.gateway(f"""
        mailgate.on("message", function(tx, msg)
          local unsigned = msg:header("X-Unsigned-OK") ~= nil
          msg:dkim_sign {{ domain = "{DOMAIN}", selector = "s1", key = "{env.tmp}/missing.pem",
                          on_error = unsigned and "send_unsigned" or "tempfail" }}
        end)
    """)
    with pytest.raises(smtplib.SMTPDataError) as e:
        send(gw, MESSAGE)
    assert e.value.smtp_code == 451 and b"4.7.0" in e.value.smtp_error
    gw.wait_log(r"DKIM signing d=signer.test s=s1 failed.*missing.pem")
    send(gw, MESSAGE.replace(b"Subject:", b"X-Unsigned-OK: 1\r\nSubject:"))
    data = received(sink)[0]
    assert b"DKIM-Signature" not in data
    assert sink.handler.count() == 1


def test_check_config_refuses_a_missing_key_in_the_plugin(tmp_path):
    cfg = tmp_path / "mailgate.lua"
    cfg.write_text(textwrap.dedent(f"""
        mailgate.configure {{ spool = {{ path = "unused" }} }}
        mailgate.listen {{ address = "127.0.0.1:2525" }}
        mailgate.use("dkim", {{ keys = {{ ["example.test"] = {{ selector = "s1",
                                          key = "{tmp_path}/nope.pem" }} }} }})
    """))
    r = subprocess.run([BIN, "check-config", "--config", str(cfg)], capture_output=True, text=True,
                       timeout=60)
    assert r.returncode == 1
    assert "nope.pem" in r.stderr and "check_key" in r.stderr
    # And a key that is not a private key at all.
    (tmp_path / "nope.pem").write_text("hello\n")
    r = subprocess.run([BIN, "check-config", "--config", str(cfg)], capture_output=True, text=True,
                       timeout=60)
    assert r.returncode == 1 and "not a PEM private key" in r.stderr


def test_keygen_refuses_to_overwrite_and_bad_algorithms(tmp_path):
    keygen(tmp_path, "k1", "ed25519", "example.test")
    r = subprocess.run([BIN, "dkim", "keygen", "--domain", "example.test", "--selector", "k1",
                        "--algorithm", "ed25519", "--out", str(tmp_path / "keys")],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 1 and "never overwritten" in r.stderr
    r = subprocess.run([BIN, "dkim", "keygen", "--domain", "example.test", "--selector", "k2",
                        "--algorithm", "rsa-512", "--out", str(tmp_path / "keys")],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 1


@pytest.mark.parametrize("canon", ["relaxed/relaxed", "simple/simple"])
def test_body_spilled_to_the_spool_is_hashed_as_it_streams(env, canon):
    # 64 KiB in memory: this ~300 KB body is written to the spool in chunks
    # while it arrives, and hashed then; the signature covers all of it.
    paths = env.keys(("s1", "ed25519"))
    sink = env.sink()
    gw = env.gateway(sign_lua(domain=DOMAIN, selector="s1", key=paths["s1"],
                              canonicalization=canon), sets=["spool.body_buffer=64KiB"])
    line = b"0123456789 abcdefghij \t trailing   \r\n"
    body = MESSAGE + line * 8000 + b"\r\n\r\n"
    send(gw, body)
    data = received(sink)[0]
    assert len(data) > 290_000
    assert env.verifiers.python_ok(data) == [True]
    assert env.verifiers.opendkim_ok(data)


def api_post(gw, path, body):
    import json
    import urllib.request
    port = int(gw.wait_log(r"listening http=\S+:(\d+)").group(1))
    req = urllib.request.Request(f"http://127.0.0.1:{port}{path}", method="POST",
                                 data=json.dumps(body).encode() if body is not None else b"",
                                 headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=30) as r:
            return r.status, json.loads(r.read() or b"{}")
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read() or b"{}")


def test_http_inject_and_dsns_are_signed_too(env):
    paths = env.keys(("s1", "ed25519"))
    sink = env.sink()
    sink.handler.rcpt_reply["gone@dest.test"] = "550 5.1.1 no such user"
    gw = env.gateway(sign_lua(domain=DOMAIN, selector="s1", key=paths["s1"]))
    status, body = api_post(gw, "/api/v1/inject", {
        "from": "app@dest.test", "to": ["u@dest.test", "gone@dest.test"],
        "subject": "Injected", "text": "Hello from HTTP\n"})
    assert status == 200, body
    data = received(sink, 2)  # the message, then the DSN for gone@dest.test
    injected = [d for d in data if b"multipart/report" not in d]
    dsn = [d for d in data if b"multipart/report" in d]
    assert len(injected) == 1 and len(dsn) == 1
    for m in injected + dsn:
        assert m.startswith(b"DKIM-Signature:")
        assert env.verifiers.python_ok(m) == [True]
    assert env.verifiers.opendkim_ok(injected[0])


def test_keys_are_cached_until_reload(env):
    # The key file changes on disk: signatures keep using the key read first
    # (verifiable with the published record) until a reload reads it again.
    paths = env.keys(("s1", "rsa-1024"), ("s2", "rsa-1024"))
    live = env.tmp / "live.pem"
    live.write_bytes(open(paths["s1"], "rb").read())
    sink = env.sink()
    gw = env.gateway(sign_lua(domain=DOMAIN, selector="s1", key=str(live)))
    # Each message waits for the one before at the sink: the sink's order is
    # then the sending order (two deliveries in flight may finish either way).
    send(gw, MESSAGE)
    received(sink, 1)
    live.write_bytes(open(paths["s2"], "rb").read())  # not s1's key any more
    send(gw, MESSAGE)
    received(sink, 2)
    status, body = api_post(gw, "/api/v1/reload", None)
    assert status == 200, body
    send(gw, MESSAGE)
    data = received(sink, 3)
    assert [env.verifiers.python_ok(d) for d in data] == [[True], [True], [False]]


def test_reload_refuses_a_plugin_key_that_went_missing(env):
    paths = env.keys(("s1", "ed25519"))
    live = env.tmp / "plugin.pem"
    live.write_bytes(open(paths["s1"], "rb").read())
    sink = env.sink()
    gw = env.gateway(f"""
        mailgate.use("dkim", {{ keys = {{ ["{DOMAIN}"] = {{ selector = "s1", key = "{live}" }} }} }})
    """)
    send(gw, MESSAGE)  # the key is read at start and cached
    live.unlink()
    status, body = api_post(gw, "/api/v1/reload", None)
    assert status >= 400 and "plugin.pem" in body.get("error", ""), (status, body)
    # A refused reload changes nothing: the cached key still signs.
    send(gw, MESSAGE)
    data = received(sink, 2)
    assert [env.verifiers.python_ok(d) for d in data] == [[True], [True]]


def test_list_unsubscribe_plugin_headers_are_signed(env):
    # RFC 8058: plugins/list_unsubscribe.lua adds both headers in the message
    # hook; the signature (computed after every hook) covers them.
    paths = env.keys(("s1", "rsa-2048"))
    sink = env.sink()
    gw = env.gateway(f"""
        mailgate.use("list_unsubscribe", {{ url = "https://unsub.signer.test/u?m={{id}}&r={{rcpt}}",
                                           mailto = "unsub@signer.test", domains = {{ "signer.test" }} }})
        mailgate.on("message", function(tx, msg)
          msg:dkim_sign {{ domain = "{DOMAIN}", selector = "s1", key = "{paths['s1']}" }}
        end)
    """)
    send(gw, MESSAGE)
    send(gw, MESSAGE, sender="other@elsewhere.test")  # not selected: no headers
    data = received(sink, 2)
    with_header = [d for d in data if b"List-Unsubscribe:" in d]
    assert len(with_header) == 1
    msg = with_header[0]
    head = msg.split(b"\r\n\r\n")[0]
    assert re.search(rb"List-Unsubscribe: <https://unsub\.signer\.test/u\?m=[0-9a-f]{32}&r=u%40dest\.test>, "
                     rb"<mailto:unsub@signer\.test>", head)
    assert b"List-Unsubscribe-Post: List-Unsubscribe=One-Click" in head
    signed = re.sub(rb"\s", b"", head.lower().split(b"h=")[1].split(b";")[0]).split(b":")
    assert b"list-unsubscribe" in signed and b"list-unsubscribe-post" in signed
    assert env.verifiers.python_ok(msg) == [True]
