"""The gateway as a service: what the init system and an operator see at start.
Real processes only: the systemd notify protocol is read from a datagram socket
the test binds (as systemd does, through $NOTIFY_SOCKET); start-up failures are
provoked for real (a spool the user cannot write, a port taken by another
process, a privileged port without the capability, a low open-file limit) and
each must fail or warn with a message that says what to do."""
import os
import resource
import shutil
import signal
import socket
import subprocess
import tempfile
import threading

import pytest

from conftest import BIN, Gateway, wait_for

NOBODY = 65534


class NotifySocket:
    """The service manager's end of sd_notify: an AF_UNIX datagram socket."""

    def __init__(self, path):
        self.path = str(path)
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(self.path)
        self.sock.settimeout(0.2)
        self.messages = []
        self._lock = threading.Lock()
        self._stop = False
        self._thread = threading.Thread(target=self._read, daemon=True)
        self._thread.start()

    def _read(self):
        while not self._stop:
            try:
                data = self.sock.recv(4096)
            except socket.timeout:
                continue
            except OSError:
                return
            with self._lock:
                self.messages.append(dict(line.split("=", 1)
                                          for line in data.decode().splitlines() if "=" in line))

    def received(self, key, value=None, contains=None):
        with self._lock:
            for m in self.messages:
                if key in m and (value is None or m[key] == value) and \
                        (contains is None or contains in m[key]):
                    return m
        return None

    def close(self):
        self._stop = True
        self._thread.join(timeout=5)
        self.sock.close()


def test_ready_only_once_listening_then_status_and_stopping(tmp_path):
    notify = NotifySocket(tmp_path / "notify")
    gw = None
    try:
        env = dict(os.environ, NOTIFY_SOCKET=notify.path)
        gw = Gateway(tmp_path / "spool", env=env)
        ready = wait_for(lambda: notify.received("READY", "1"), 20, what="READY=1")
        assert "serving" in ready["STATUS"]
        # READY means the listeners accept connections.
        with socket.create_connection((gw.host, gw.port), timeout=10) as s:
            assert s.recv(512).startswith(b"220")
        wait_for(lambda: notify.received("STATUS", contains="recovered"), 20,
                 what="STATUS after recovery")
        assert gw.stop() == 0
        stopping = wait_for(lambda: notify.received("STOPPING", "1"), 10, what="STOPPING=1")
        assert stopping["STATUS"] == "draining"
    finally:
        if gw:
            gw.stop()
        notify.close()


def test_without_notify_socket_nothing_is_sent_and_it_runs(tmp_path):
    env = {k: v for k, v in os.environ.items() if k != "NOTIFY_SOCKET"}
    with Gateway(tmp_path / "spool", env=env) as gw:
        with socket.create_connection((gw.host, gw.port), timeout=10) as s:
            assert s.recv(512).startswith(b"220")


def serve_args(spool, listen="127.0.0.1:0"):
    base = os.path.dirname(str(spool))
    return ["--set", f"listen.address={listen}", "--set", "http.listen=127.0.0.1:0",
            "--set", f"spool.path={spool}", "--set", "spool.min_free_space=1MB",
            "--set", "workers=1", "--set", "listen.greet_pause=0s",
            "--set", f"tls.cert={base}/tls/cert.pem", "--set", f"tls.key={base}/tls/key.pem",
            "--set", "dns.servers.1=127.0.0.1:1",
            "--set", f"log.deliveries={base}/deliveries.jsonl"]


def run_serve(cmd, timeout=60):
    """Runs a `serve` that must fail at start; never leaves it running."""
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        _, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=10)
        raise AssertionError("serve did not fail at start")
    return proc.returncode, err.decode("utf-8", "replace")


@pytest.mark.parametrize("reuseport", [False, True], ids=["exclusive", "so_reuseport"])
def test_port_taken_by_another_process_is_named(tmp_path, reuseport):
    # With SO_REUSEPORT on the other socket (as another mailgate sets it), the
    # kernel would let the gateway join the port and split its connections
    # with that process: it must refuse to start all the same.
    other = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    if reuseport:
        other.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    other.bind(("127.0.0.1", 0))
    other.listen(1)
    try:
        port = other.getsockname()[1]
        source = os.environ.get("MAILGATE_SOURCE", os.path.join(os.path.dirname(__file__), "../.."))
        rc, err = run_serve([BIN, "serve", "--config", os.path.join(source, "conf/mailgate.lua")] +
                            serve_args(tmp_path / "spool", f"127.0.0.1:{port}"))
        assert rc == 1, err
        assert f"cannot listen on 127.0.0.1:{port}: Address already in use" in err
        assert "another process listens there" in err
    finally:
        other.close()


@pytest.fixture
def unprivileged_copy():
    """The binary, its forwarders and a config in a directory the `nobody`
    user can read (the checkout may be under a private home); the tests run
    the gateway as nobody through setpriv. Root only."""
    if os.geteuid() != 0 or not shutil.which("setpriv"):
        pytest.skip("needs root and setpriv to run the gateway as another user")
    root = tempfile.mkdtemp(prefix="mailgate-svc-")
    try:
        os.chmod(root, 0o755)
        bindir = os.path.join(root, "bin")
        os.mkdir(bindir)
        shutil.copy2(BIN, bindir)
        shutil.copytree(os.path.join(os.path.dirname(BIN), "civetweb-openssl"),
                        os.path.join(bindir, "civetweb-openssl"))
        config = os.path.join(root, "mailgate.lua")
        with open(config, "w") as f:
            f.write('mailgate.configure { tls = { cert = "x", key = "y", self_signed = true } }\n'
                    'mailgate.listen { address = "127.0.0.1:0", starttls = true }\n')
        os.chmod(config, 0o644)
        yield root, os.path.join(bindir, "mailgate"), config
    finally:
        shutil.rmtree(root, ignore_errors=True)


def as_nobody(cmd):
    return ["setpriv", f"--reuid={NOBODY}", f"--regid={NOBODY}", "--clear-groups", "--"] + cmd


def test_spool_the_user_cannot_write_is_a_clear_error(unprivileged_copy):
    root, binary, config = unprivileged_copy
    spool = os.path.join(root, "spool")
    os.mkdir(spool, 0o755)  # root's: nobody may not write
    rc, err = run_serve(as_nobody([binary, "serve", "--config", config] + serve_args(spool)))
    assert rc == 1, err
    assert f"spool: directory {spool} is not writable by this process (uid {NOBODY})" in err
    assert "give it to the user mailgate runs as" in err
    assert os.listdir(spool) == []  # RocksDB never got to create anything


def test_privileged_port_without_the_capability_says_so(unprivileged_copy):
    with open("/proc/sys/net/ipv4/ip_unprivileged_port_start") as f:
        if int(f.read()) <= 25:
            pytest.skip("port 25 is not privileged on this host (ip_unprivileged_port_start)")
    root, binary, config = unprivileged_copy
    work = os.path.join(root, "work")
    os.mkdir(work, 0o755)
    os.chown(work, NOBODY, NOBODY)
    rc, err = run_serve(as_nobody([binary, "serve", "--config", config] +
                                  serve_args(os.path.join(work, "spool"), "127.0.0.1:25")))
    assert rc == 1, err
    assert "cannot listen on 127.0.0.1:25: Permission denied" in err
    assert "CAP_NET_BIND_SERVICE" in err


def limits_of(pid):
    with open(f"/proc/{pid}/limits") as f:
        for line in f:
            if line.startswith("Max open files"):
                soft, hard = line.split()[3:5]
                return int(soft), int(hard)
    raise AssertionError("no open-file limit in /proc/PID/limits")


def test_open_file_limit_below_the_session_caps_warns_with_numbers(tmp_path):
    with Gateway(tmp_path / "spool", wrapper=["prlimit", "--nofile=256:256", "--"]) as gw:
        gw.wait_log(r"open-file limit is 256 but the listeners allow 10000 sessions")
        assert "raise it to at least 11024" in gw.log()


def test_soft_open_file_limit_is_raised_to_the_hard_one(tmp_path):
    hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
    if hard == resource.RLIM_INFINITY or hard < 11024:
        pytest.skip(f"this process's hard open-file limit ({hard}) cannot show it")
    with Gateway(tmp_path / "spool", wrapper=["prlimit", f"--nofile=256:{hard}", "--"]) as gw:
        assert limits_of(gw.proc.pid) == (hard, hard)
        assert "open-file limit is" not in gw.log()
