"""The installed gateway (issue 17): `cmake --install` into a temporary DESTDIR
gives the FHS layout, and the installed binary works from those files alone:
the checkout and the build tree are hidden under empty tmpfs mounts (a private
mount namespace) while it checks the shipped /etc config, makes its TLS pair,
starts on loopback, serves HTTPS through its installed OpenSSL forwarders and
delivers a message through a shipped plugin found in /usr/share. The Debian
package (`cpack -G DEB`) is built and its metadata and contents checked, and
the systemd unit passes `systemd-analyze verify`."""
import glob
import os
import re
import shutil
import smtplib
import ssl
import subprocess
import textwrap
import urllib.request

import pytest

from conftest import BIN, SOURCE, Gateway, wait_for
from peers import Sink, free_port

BUILD = os.path.dirname(os.path.abspath(BIN))


def cache_value(name):
    with open(os.path.join(BUILD, "CMakeCache.txt")) as f:
        for line in f:
            if line.startswith(name + ":"):
                return line.split("=", 1)[1].strip()
    return None


PREFIX = cache_value("CMAKE_INSTALL_PREFIX")
pytestmark = pytest.mark.skipif(PREFIX != "/usr", reason=f"build configured with prefix {PREFIX}"
                                " (the layout tests expect the default /usr)")


@pytest.fixture(scope="module")
def staged(tmp_path_factory):
    root = tmp_path_factory.mktemp("destdir")
    env = dict(os.environ, DESTDIR=str(root))
    subprocess.run(["cmake", "--install", BUILD], env=env, check=True, capture_output=True,
                   timeout=300)
    return root


def test_layout(staged):
    r = str(staged)
    expected = ["usr/sbin/mailgate",
                "usr/lib/mailgate/civetweb-openssl/libssl.so",
                "usr/lib/mailgate/civetweb-openssl/libcrypto.so",
                "etc/mailgate/mailgate.lua",
                "etc/logrotate.d/mailgate",
                "lib/systemd/system/mailgate.service",
                "usr/share/doc/mailgate/README.md",
                "usr/share/mailgate/monitoring/grafana/mailgate.json",
                "usr/share/mailgate/monitoring/prometheus/alerts.yml"]
    missing = [p for p in expected if not os.path.isfile(os.path.join(r, p))]
    assert not missing, missing
    # Every shipped plugin, subdirectories included (shaping/providers.lua).
    plugins = os.path.join(SOURCE, "plugins")
    shipped = sorted(os.path.relpath(p, plugins)
                     for p in glob.glob(os.path.join(plugins, "**/*.lua"), recursive=True))
    dest = os.path.join(r, "usr/share/mailgate/plugins")
    installed = sorted(os.path.relpath(p, dest)
                       for p in glob.glob(os.path.join(dest, "**/*"), recursive=True)
                       if os.path.isfile(p))
    assert installed == shipped
    assert "shaping/providers.lua" in installed
    dyn = subprocess.run(["readelf", "-d", os.path.join(r, "usr/sbin/mailgate")],
                         capture_output=True, text=True, check=True).stdout
    # DT_RPATH (not RUNPATH: it must apply to CivetWeb's dlopen) relative to the binary.
    assert re.search(r"\(RPATH\)\s+Library rpath: \[\$ORIGIN/../lib/mailgate/civetweb-openssl\]",
                     dyn), dyn
    assert SOURCE.rstrip("/") not in dyn and BUILD not in dyn
    unit = open(os.path.join(r, "lib/systemd/system/mailgate.service")).read()
    assert "ExecStart=/usr/sbin/mailgate serve --config /etc/mailgate/mailgate.lua" in unit
    config = open(os.path.join(r, "etc/mailgate/mailgate.lua")).read()
    assert 'path = "/var/spool/mailgate"' in config
    assert '"/var/log/mailgate/deliveries.jsonl"' in config


def hidden_checkout(cmd):
    """`cmd` in a private mount namespace where the checkout and the build tree
    are empty: nothing can reach back into them."""
    # Deepest first: the build tree is usually inside the checkout.
    hide = sorted({os.path.abspath(SOURCE), BUILD}, key=len, reverse=True)
    script = " && ".join(f'mount -t tmpfs -o size=1m mailgate-hidden "{d}"' for d in hide)
    return ["unshare", "--mount", "--propagation", "private", "sh", "-c",
            script + ' && exec "$@"', "sh"] + cmd


needs_unshare = pytest.mark.skipif(os.geteuid() != 0 or not shutil.which("unshare"),
                                   reason="hiding the checkout needs root and unshare")


@needs_unshare
def test_installed_binary_works_without_the_checkout(staged, tmp_path):
    r = str(staged)
    binary = os.path.join(r, "usr/sbin/mailgate")
    shipped_config = os.path.join(r, "etc/mailgate/mailgate.lua")
    # The shipped /etc config is valid as installed.
    out = subprocess.run(hidden_checkout([binary, "check-config", "--config", shipped_config]),
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert "config OK" in out.stdout and "spool /var/spool/mailgate" in out.stdout
    # The package's postinst makes the TLS pair with this command.
    tls = tmp_path / "tls"
    tls.mkdir()
    out = subprocess.run(hidden_checkout([binary, "tls", "self-signed", "--config", shipped_config,
                                          "--set", f"tls.cert={tls}/cert.pem",
                                          "--set", f"tls.key={tls}/key.pem"]),
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert (tls / "cert.pem").exists() and oct((tls / "key.pem").stat().st_mode & 0o777) == "0o600"

    # A real start: a route from a shipped plugin (found in /usr/share/mailgate)
    # sends example.net to a loopback sink; the admin listener speaks HTTPS.
    sink_port = free_port()
    sink = Sink("127.0.0.1", sink_port)
    config = tmp_path / "mailgate.lua"
    config.write_text(textwrap.dedent(f"""\
        mailgate.configure {{ tls = {{ cert = "{tls}/cert.pem", key = "{tls}/key.pem" }},
                              http = {{ listen = "127.0.0.1:0", tls = true }} }}
        mailgate.listen {{ address = "127.0.0.1:0", relay_networks = {{ "127.0.0.0/8" }} }}
        mailgate.use("routing_table", {{ routes = {{ ["example.net"] = "[127.0.0.1]:{sink_port}" }} }})
        """))
    gw = None
    try:
        gw = Gateway(tmp_path / "spool", config=str(config), binary=binary,
                     wrapper=hidden_checkout([]),
                     sets=[f"tls.cert={tls}/cert.pem", f"tls.key={tls}/key.pem"])
        port = int(gw.wait_log(r"listening http=127\.0\.0\.1:(\d+) \(HTTPS\)").group(1))
        ctx = ssl.create_default_context(cafile=str(tls / "cert.pem"))
        ctx.check_hostname = False
        with urllib.request.urlopen(f"https://127.0.0.1:{port}/healthz", context=ctx,
                                    timeout=20) as resp:
            assert resp.status == 200
        with smtplib.SMTP(gw.host, gw.port, timeout=30) as s:
            s.sendmail("app@example.org", ["user@example.net"], b"Subject: hi\r\n\r\nhello\r\n")
        wait_for(lambda: sink.handler.messages, 30, what="delivery to the sink")
        assert sink.handler.messages[0]["to"] == ["user@example.net"]
        assert gw.stop() == 0
    finally:
        if gw:
            gw.stop()
        sink.stop()


def test_systemd_unit_verifies(staged, tmp_path):
    if not shutil.which("systemd-analyze"):
        pytest.skip("systemd-analyze is not installed (package systemd)")
    # verify needs ExecStart's binary to exist: point a copy at the staged one.
    unit = open(os.path.join(str(staged), "lib/systemd/system/mailgate.service")).read()
    unit = unit.replace("/usr/sbin/mailgate", os.path.join(str(staged), "usr/sbin/mailgate"))
    path = tmp_path / "mailgate.service"
    path.write_text(unit)
    out = subprocess.run(["systemd-analyze", "verify", "--man=no", str(path)],
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stdout + out.stderr
    assert "mailgate.service" not in out.stderr, out.stderr  # no warnings about the unit


def test_debian_package(tmp_path):
    out = subprocess.run(["cpack", "-G", "DEB", "-B", str(tmp_path)], cwd=BUILD,
                         capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stdout + out.stderr
    debs = glob.glob(str(tmp_path / "mailgate_*.deb"))
    assert len(debs) == 1, os.listdir(tmp_path)
    info = subprocess.run(["dpkg-deb", "-I", debs[0]], capture_output=True, text=True,
                          check=True).stdout
    assert re.search(r"^ Package: mailgate$", info, re.M), info
    assert ";" not in re.search(r"^ Description:.*?(?=^ \S+:)", info, re.M | re.S).group(0)
    depends = re.search(r"^ Depends: (.*)$", info, re.M).group(1)
    for lib in ("adduser", "libssl3", "liblua5.4-0", "librocksdb", "libsystemd0", "libc-ares2",
                "libcivetweb", "libhiredis"):
        assert lib in depends, depends
    for script in ("postinst", "prerm", "postrm", "conffiles"):
        assert re.search(rf"^\s+\d+ bytes,\s+\d+ lines\s+\*?\s*{script}\b", info, re.M), info
    files = subprocess.run(["dpkg-deb", "-c", debs[0]], capture_output=True, text=True,
                           check=True).stdout
    for path in ("./usr/sbin/mailgate", "./etc/mailgate/mailgate.lua",
                 "./lib/systemd/system/mailgate.service", "./usr/share/mailgate/plugins/auth_file.lua",
                 "./usr/lib/mailgate/civetweb-openssl/libssl.so"):
        assert path in files, files
    # Nothing from the build: no tests, benchmarks, static libraries or headers.
    assert not re.search(r"\.a$|\.hpp$|unit_|bench", files, re.M), files
    ctl = tmp_path / "control"
    subprocess.run(["dpkg-deb", "-e", debs[0], str(ctl)], check=True)
    assert (ctl / "conffiles").read_text().split() == ["/etc/mailgate/mailgate.lua",
                                                       "/etc/logrotate.d/mailgate"]
    assert os.access(ctl / "postinst", os.X_OK)
    # lintian's findings are reported, not asserted (they are listed in README).
    if shutil.which("lintian"):
        lint = subprocess.run(["lintian", "--no-tag-display-limit", debs[0]], capture_output=True,
                              text=True, timeout=300)
        print(lint.stdout + lint.stderr)
