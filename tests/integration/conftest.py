"""Shared fixtures for integration tests: start the real build/mailgate binary
on ephemeral loopback ports with a fresh temporary spool, wait for it to
listen (by parsing its log, with a deadline), and always stop it by PID."""
import json
import os
import re
import signal
import subprocess
import threading
import time

import pytest

BIN = os.environ.get("MAILGATE_BIN", os.path.join(os.path.dirname(__file__), "../../build/mailgate"))
SOURCE = os.environ.get("MAILGATE_SOURCE", os.path.join(os.path.dirname(__file__), "../.."))
CONFIG = os.path.join(SOURCE, "conf/mailgate.lua")


def wait_for(pred, timeout=20.0, interval=0.02, what="condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        v = pred()
        if v:
            return v
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


class Gateway:
    """A running mailgate process. Use as a context manager or call stop()."""

    def __init__(self, spool, sets=(), config=CONFIG, workers=2, extra_args=(), env=None,
                 wrapper=(), dns="127.0.0.1:1"):
        self.spool = str(spool)
        args = ["--set", "listen.address=127.0.0.1:0", "--set", "http.listen=127.0.0.1:0",
                "--set", f"spool.path={self.spool}", "--set", "spool.min_free_space=1MB",
                "--set", f"workers={workers}", "--set", "hostname=gw.mailgate.test",
                "--set", "log.level=info",
                # The greeting pause (300 ms by default) would slow every test's
                # connections; test_edge.py tests it with the default.
                "--set", "listen.greet_pause=0s",
                # The default config's self-signed certificate: one per test.
                "--set", f"tls.cert={self.spool}/../tls/cert.pem",
                "--set", f"tls.key={self.spool}/../tls/key.pem",
                # Never ask a real resolver: tests that deliver pass their dnsmasq.
                "--set", f"dns.servers.1={dns}",
                "--set", f"log.deliveries={self.spool}/../deliveries.jsonl"]
        for s in sets:
            args += ["--set", s]
        self.cmd = list(wrapper) + [BIN, "serve", "--config", config] + args + list(extra_args)
        self.lines = []
        self._lock = threading.Lock()
        self.proc = subprocess.Popen(self.cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                                     env=env)
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()
        try:
            m = self.wait_log(r"listening smtp=(\S+):(\d+)", timeout=30)
        except AssertionError:
            self.stop()
            raise AssertionError("gateway did not start:\n" + self.log())
        self.host, self.port = m.group(1), int(m.group(2))

    def _read(self):
        for raw in self.proc.stderr:
            with self._lock:
                self.lines.append(raw.decode("utf-8", "replace").rstrip("\n"))

    def log(self):
        with self._lock:
            return "\n".join(self.lines)

    def wait_log(self, pattern, timeout=20.0):
        rx = re.compile(pattern)

        def find():
            with self._lock:
                for line in self.lines:
                    m = rx.search(line)
                    if m:
                        return m
            if self.proc.poll() is not None:
                raise AssertionError(f"gateway exited ({self.proc.returncode}) while waiting "
                                     f"for /{pattern}/:\n" + self.log())
            return None

        return wait_for(find, timeout, what=f"log /{pattern}/")

    def stop(self, sig=signal.SIGTERM, timeout=40):
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
        self._reader.join(timeout=5)
        return self.proc.returncode

    def kill9(self):
        return self.stop(sig=signal.SIGKILL)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()


def spool_dump(spool, bodies=False):
    """Reads the spool offline (read-only RocksDB open) through the binary."""
    cmd = [BIN, "spool", "dump", "--path", str(spool)]
    if bodies:
        cmd.append("--bodies")
    out = subprocess.run(cmd, check=True, capture_output=True, timeout=120).stdout
    return [json.loads(line) for line in out.decode().splitlines() if line.strip()]


@pytest.fixture
def gateway(tmp_path):
    gws = []

    def start(**kw):
        gw = Gateway(kw.pop("spool", tmp_path / "spool"), **kw)
        gws.append(gw)
        return gw

    yield start
    for gw in gws:
        gw.stop()
