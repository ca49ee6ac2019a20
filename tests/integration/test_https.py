"""HTTPS on the admin listener (issue 10 item 6) against the real binary, with
real clients (Python's urllib/ssl, `openssl s_client`, curl, the admin CLI):
/healthz and an authenticated API call over TLS, no API answer to plain HTTP
on the HTTPS port, TLS below 1.2 refused, config errors, the certificate
reloaded on SIGHUP and POST /api/v1/reload, a clear start-up error when
CivetWeb cannot load OpenSSL, and the proof that HTTPS needs no libssl-dev:
the gateway serves HTTPS in a mount namespace where libssl.so and
libcrypto.so (the development symlinks) do not exist. Every process is
stopped by PID (fixtures)."""
import json
import os
import shutil
import signal
import socket
import ssl
import subprocess
import urllib.error
import urllib.request

import pytest

from conftest import BIN, CONFIG, Gateway, wait_for

TOKEN = "s3cret-https"


def make_cert(directory, stem, name="gw.mailgate.test"):
    """A fresh self-signed pair for `name` and 127.0.0.1, written to temporary
    names and renamed over STEM.pem / STEM.key (a reload never reads half)."""
    cert, key = directory / f"{stem}.pem", directory / f"{stem}.key"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                    "ec_paramgen_curve:P-256", "-nodes", "-days", "2", "-subj", f"/CN={name}",
                    "-addext", f"subjectAltName=DNS:{name},IP:127.0.0.1",
                    "-keyout", f"{key}.tmp", "-out", f"{cert}.tmp"],
                   check=True, capture_output=True, timeout=60)
    os.replace(f"{key}.tmp", key)
    os.replace(f"{cert}.tmp", cert)
    return cert, key


def der(cert_path):
    with open(cert_path) as f:
        return ssl.PEM_cert_to_DER_cert(f.read())


def http_port(gw):
    m = gw.wait_log(r"listening http=\S+:(\d+)( \(HTTPS\))?")
    assert m.group(2), "the listener does not say it is HTTPS:\n" + gw.log()
    return int(m.group(1))


def global_cert(gw):
    """The global tls{} pair conftest points at (self-signed on first start)."""
    return os.path.join(gw.spool, "..", "tls", "cert.pem")


def verifying_context(cafile):
    """Trusts `cafile` only, and checks that it names 127.0.0.1; None: no checks."""
    if cafile is None:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        return ctx
    ctx = ssl.create_default_context(cafile=str(cafile))
    ctx.check_hostname = True
    return ctx


def served_certificate(port):
    """The DER certificate the listener sends now (no verification)."""
    ctx = verifying_context(None)
    with socket.create_connection(("127.0.0.1", port), timeout=10) as raw:
        with ctx.wrap_socket(raw) as s:
            return s.getpeercert(binary_form=True)


def get(port, path, cafile, token=None, method="GET", body=None):
    req = urllib.request.Request(f"https://127.0.0.1:{port}{path}", method=method,
                                 data=None if body is None else json.dumps(body).encode())
    if token:
        req.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(req, timeout=20, context=verifying_context(cafile)) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()


@pytest.fixture
def https_gw(tmp_path):
    gws = []

    def start(*sets, **kw):
        # http.tls = true (the global certificate) unless the test sets its own.
        own = any(x.startswith("http.tls") for x in sets)
        gw = Gateway(tmp_path / f"spool{len(gws)}", sets=[*([] if own else ["http.tls=true"]),
                                                          *sets], **kw)
        gws.append(gw)
        return gw

    yield start
    for gw in gws:
        gw.stop()


def serve_args(tmp_path, *sets):
    """`mailgate serve` arguments like conftest's, for starts that must fail."""
    args = ["serve", "--config", CONFIG, "--set", "listen.address=127.0.0.1:0",
            "--set", "http.listen=127.0.0.1:0", "--set", f"spool.path={tmp_path}/spool",
            "--set", "spool.min_free_space=1MB", "--set", "workers=1",
            "--set", "hostname=gw.mailgate.test", "--set", "dns.servers.1=127.0.0.1:1",
            "--set", f"tls.cert={tmp_path}/tls/cert.pem", "--set", f"tls.key={tmp_path}/tls/key.pem",
            "--set", f"log.deliveries={tmp_path}/deliveries.jsonl"]
    for s in sets:
        args += ["--set", s]
    return args


# ------------------------------------------------------------ serving

def test_healthz_and_an_authenticated_call_over_https(https_gw):
    gw = https_gw(f"http.token={TOKEN}")
    port = http_port(gw)
    cafile = global_cert(gw)
    status, body = get(port, "/healthz", cafile)
    assert status == 200, body
    status, body = get(port, "/api/v1/queue", cafile, token=TOKEN)
    assert status == 200, body
    assert "destinations" in json.loads(body)
    status, _ = get(port, "/api/v1/queue", cafile, token="wrong")
    assert status == 401
    # The version a default client gets: TLS 1.3.
    with socket.create_connection(("127.0.0.1", port), timeout=10) as raw:
        with verifying_context(cafile).wrap_socket(raw, server_hostname="127.0.0.1") as s:
            assert s.version() == "TLSv1.3"


@pytest.mark.skipif(shutil.which("curl") is None, reason="curl is not installed")
def test_curl_with_cacert(https_gw):
    gw = https_gw(f"http.token={TOKEN}")
    port = http_port(gw)
    r = subprocess.run(["curl", "-sS", "--fail", "--cacert", global_cert(gw),
                        "-H", f"Authorization: Bearer {TOKEN}",
                        f"https://127.0.0.1:{port}/api/v1/suppression"],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    assert "entries" in json.loads(r.stdout)
    # Without the certificate curl refuses the self-signed one.
    r = subprocess.run(["curl", "-sS", f"https://127.0.0.1:{port}/healthz"],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 60, (r.returncode, r.stderr)  # peer certificate not trusted


def test_plain_http_to_the_https_port_gets_no_api_answer(https_gw):
    gw = https_gw(f"http.token={TOKEN}")
    port = http_port(gw)
    with socket.create_connection(("127.0.0.1", port), timeout=10) as c:
        c.sendall(f"GET /api/v1/queue HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {TOKEN}\r\n"
                  "\r\n".encode())
        c.settimeout(15)
        data = b""
        try:
            while chunk := c.recv(4096):
                data += chunk
        except (ConnectionResetError, socket.timeout):
            pass
    assert b"HTTP/" not in data and b"destinations" not in data, data
    # The listener still serves TLS afterwards.
    assert get(port, "/healthz", global_cert(gw))[0] == 200


def test_tls_below_1_2_is_refused(https_gw):
    gw = https_gw()
    port = http_port(gw)
    for version in ("TLSv1", "TLSv1_1"):
        version = getattr(ssl.TLSVersion, version)
        ctx = verifying_context(None)
        ctx.minimum_version = ctx.maximum_version = version
        ctx.set_ciphers("DEFAULT:@SECLEVEL=0")  # let the client offer it at all
        with socket.create_connection(("127.0.0.1", port), timeout=10) as raw:
            with pytest.raises(ssl.SSLError) as e:
                ctx.wrap_socket(raw).close()
        # The server's protocol_version alert, not a client-side refusal.
        assert "PROTOCOL_VERSION" in str(e.value).upper() or "UNSUPPORTED_PROTOCOL" in str(
            e.value).upper(), e.value
    for flag, ok in (("-tls1_1", False), ("-tls1_2", True), ("-tls1_3", True)):
        r = subprocess.run(["openssl", "s_client", "-connect", f"127.0.0.1:{port}", flag,
                            "-cipher", "DEFAULT@SECLEVEL=0", "-brief"],
                           input="", capture_output=True, text=True, timeout=60)
        assert (r.returncode == 0) == ok, (flag, r.stdout, r.stderr)
        if ok:
            assert "Protocol version: TLSv1." + flag[-1] in r.stderr, r.stderr


def test_own_certificate_and_reload_on_sighup_and_api(https_gw, tmp_path):
    own = tmp_path / "own"
    own.mkdir()
    cert, key = make_cert(own, "http")
    gw = https_gw(f"http.token={TOKEN}", f"http.tls.cert={cert}", f"http.tls.key={key}")
    port = http_port(gw)
    assert served_certificate(port) == der(cert)
    # The SMTP listener keeps the global certificate.
    assert der(cert) != der(global_cert(gw))
    assert get(port, "/healthz", cert)[0] == 200

    make_cert(own, "http")  # a new pair at the same paths
    second = der(cert)
    gw.proc.send_signal(signal.SIGHUP)
    wait_for(lambda: served_certificate(port) == second, timeout=20,
             what="the new certificate after SIGHUP")

    make_cert(own, "http")
    third = der(cert)
    status, body = get(port, "/api/v1/reload", None, token=TOKEN, method="POST", body={})
    assert status == 200, body
    assert served_certificate(port) == third

    # A broken file: 422 naming http.tls, and the certificate in use stays.
    cert.write_text("not a certificate\n")
    status, body = get(port, "/api/v1/reload", None, token=TOKEN, method="POST", body={})
    assert status == 422, body
    assert "http.tls" in json.loads(body)["error"]
    assert served_certificate(port) == third


def test_admin_cli_over_https(https_gw):
    gw = https_gw(f"http.token={TOKEN}")
    port = http_port(gw)
    api = f"https://127.0.0.1:{port}"
    env = dict(os.environ, MAILGATE_API_TOKEN=TOKEN)
    r = subprocess.run([BIN, "queue", "summary", "--json", "--api", api, "--cacert",
                        global_cert(gw)], capture_output=True, text=True, timeout=60, env=env)
    assert r.returncode == 0, r.stderr
    assert "destinations" in json.loads(r.stdout)
    r = subprocess.run([BIN, "suppression", "list", "--api", api, "--cacert", global_cert(gw)],
                       capture_output=True, text=True, timeout=60, env=env)
    assert r.returncode == 0, r.stderr
    # The system's CAs do not know the self-signed certificate.
    r = subprocess.run([BIN, "queue", "summary", "--api", api], capture_output=True, text=True,
                       timeout=60, env=env)
    assert r.returncode == 3, (r.stdout, r.stderr)
    assert "certificate is not trusted" in r.stderr and "--cacert" in r.stderr, r.stderr
    # http:// against the HTTPS port: not HTTP, with a hint.
    r = subprocess.run([BIN, "queue", "summary", "--api", f"http://127.0.0.1:{port}"],
                       capture_output=True, text=True, timeout=60, env=env)
    assert r.returncode == 3, (r.stdout, r.stderr)
    assert "https://" in r.stderr, r.stderr


# ------------------------------------------------------------ config and start-up errors

def check_config(tmp_path, *sets, config=CONFIG):
    args = [BIN, "check-config", "--config", str(config)]
    for s in sets:
        args += ["--set", s]
    return subprocess.run(args, capture_output=True, text=True, timeout=60)


def test_config_errors(tmp_path):
    # http.tls = true needs the global certificate.
    cfg = tmp_path / "bare.lua"
    cfg.write_text('mailgate.configure { http = { tls = true } }\n'
                   'mailgate.listen { address = "127.0.0.1:0" }\n')
    r = check_config(tmp_path, config=cfg)
    assert r.returncode == 1
    assert "http.tls: true needs a certificate" in r.stderr, r.stderr
    own = tmp_path / "own.lua"
    own.write_text('mailgate.configure { http = { tls = { cert = "/x.pem", key = "/x.key" } } }\n'
                   'mailgate.listen { address = "127.0.0.1:0" }\n')
    r = check_config(tmp_path, config=own)
    assert r.returncode == 0, r.stderr
    r = check_config(tmp_path, "http.tls=false", config=cfg)
    assert r.returncode == 0, r.stderr
    r = check_config(tmp_path, "http.tls=yes")
    assert r.returncode == 1 and "http.tls: expected true, false or" in r.stderr, r.stderr
    r = check_config(tmp_path, "http.tls.cert=/x.pem")
    assert r.returncode == 1 and "http.tls.key: required with http.tls.cert" in r.stderr, r.stderr
    r = check_config(tmp_path, "http.tls.certificate=/x.pem")
    assert r.returncode == 1 and "http.tls" in r.stderr, r.stderr
    # With the shipped config (a global tls{}), http.tls = true is fine.
    r = check_config(tmp_path, "http.tls=true")
    assert r.returncode == 0, r.stderr
    # Off loopback the token is still required, HTTPS or not.
    r = check_config(tmp_path, "http.tls=true", "http.listen=0.0.0.0:8025")
    assert r.returncode == 1 and "set http.token" in r.stderr, r.stderr


def test_unloadable_certificate_stops_the_start(tmp_path):
    r = subprocess.run([BIN] + serve_args(tmp_path, f"http.tls.cert={tmp_path}/none.pem",
                                          f"http.tls.key={tmp_path}/none.key"),
                       capture_output=True, text=True, timeout=60)
    assert r.returncode != 0
    assert "http.tls: cannot load certificate" in r.stderr, r.stderr


def test_no_plain_http_when_civetweb_cannot_load_openssl(tmp_path):
    """The binary without its civetweb-openssl/ directory: CivetWeb finds no
    usable libssl.so (Debian's own is for OpenSSL 1.1's API, or absent
    without libssl-dev). The start fails and says why; it never falls back to
    plain HTTP."""
    alone = tmp_path / "bin"
    alone.mkdir()
    shutil.copy2(BIN, alone / "mailgate")
    r = subprocess.run([str(alone / "mailgate")] + serve_args(tmp_path, "http.tls=true"),
                       capture_output=True, text=True, timeout=60)
    assert r.returncode != 0, r.stderr
    assert "cannot listen for HTTPS on 127.0.0.1:0" in r.stderr, r.stderr
    assert "civetweb-openssl/ beside the mailgate binary" in r.stderr, r.stderr
    assert "listening http=" not in r.stderr
    # And without http.tls the same binary serves plain HTTP as before.
    r = subprocess.run([str(alone / "mailgate"), "check-config", "--config", CONFIG],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr


# ------------------------------------------------------------ no libssl-dev

# Runs "$@" in the caller's new mount namespace with /usr/lib/x86_64-linux-gnu
# replaced by a tmpfs of symlinks to every entry of the real directory except
# libssl.so and libcrypto.so: as on a machine with libssl3 but without
# libssl-dev. Exits non-zero if the loader can still open either.
HIDE_DEV_LIBS = r'''
set -e
t=$1; shift
d=/usr/lib/x86_64-linux-gnu
mkdir -p "$t/orig" "$t/farm"
mount --bind "$d" "$t/orig"
mount -t tmpfs tmpfs "$t/farm"
ln -s "$t"/orig/* "$t/farm/"
rm -f "$t/farm/libssl.so" "$t/farm/libcrypto.so"
mount --bind "$t/farm" "$d"
python3 -c '
import ctypes, sys
for lib in ("libssl.so", "libcrypto.so"):
    try:
        ctypes.CDLL(lib)
    except OSError:
        continue
    sys.exit(lib + " is still loadable")
'
exec "$@"
'''


def hidden_dev_libs_wrapper(tmp_path):
    """The command prefix, or a reason why this machine cannot hide them."""
    if os.geteuid() != 0:
        return None, "needs root for a mount namespace"
    if shutil.which("unshare") is None:
        return None, "unshare (util-linux) is not installed"
    if not os.path.isdir("/usr/lib/x86_64-linux-gnu"):
        return None, "not a Debian amd64 library layout"
    probe = subprocess.run(["unshare", "-m", "--propagation", "private", "/bin/sh", "-c",
                            HIDE_DEV_LIBS, "hide", str(tmp_path / "probe"), "true"],
                           capture_output=True, text=True, timeout=60)
    if probe.returncode != 0:
        return None, f"cannot hide libssl.so in a mount namespace here: {probe.stderr.strip()}"
    return ["unshare", "-m", "--propagation", "private", "/bin/sh", "-c", HIDE_DEV_LIBS, "hide",
            str(tmp_path / "ns")], None


def test_https_works_without_libssl_dev(tmp_path):
    wrapper, why = hidden_dev_libs_wrapper(tmp_path)
    if wrapper is None:
        pytest.skip(why)
    # The namespace really lacks them: a program that needs libssl.so fails.
    r = subprocess.run(wrapper + ["python3", "-c", "import ctypes; ctypes.CDLL('libssl.so')"],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 1 and "libssl.so: cannot open shared object file" in r.stderr, r.stderr
    gw = Gateway(tmp_path / "spool", sets=["http.tls=true", f"http.token={TOKEN}"],
                 wrapper=wrapper)
    try:
        port = http_port(gw)
        cafile = global_cert(gw)
        assert get(port, "/healthz", cafile)[0] == 200
        status, body = get(port, "/api/v1/queue", cafile, token=TOKEN)
        assert status == 200 and "destinations" in json.loads(body)
        # What the process loaded: our forwarding libraries and OpenSSL 3's
        # runtime ones (unshare and sh exec'd into mailgate: same PID).
        with open(f"/proc/{gw.proc.pid}/maps") as f:
            maps = {line.split()[-1] for line in f if "/" in line}
        names = {os.path.basename(p) for p in maps}
        assert any(p.endswith("/civetweb-openssl/libssl.so") for p in maps), sorted(maps)
        assert any(p.endswith("/civetweb-openssl/libcrypto.so") for p in maps), sorted(maps)
        assert {"libssl.so.3", "libcrypto.so.3"} <= names, sorted(names)
    finally:
        gw.stop()
