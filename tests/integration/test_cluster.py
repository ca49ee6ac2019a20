"""Several gateway nodes sharing one Redis (issue 16, first part: heartbeats
and Redis health). One real redis-server started by the test on a free
loopback port (stopped by PID), two real gateways pointing at it:
- each node sees the other through heartbeats (GET /api/v1/cluster, the
  `mailgate cluster status` CLI, /metrics);
- Redis stalled with SIGSTOP: within a second or so /readyz says degraded
  (still 200), mail is still accepted and delivered, and after SIGCONT Redis
  is up again;
- a node killed with kill -9 is no longer live for the others after lease_ttl;
- a node stopped with SIGTERM leaves at once: its connection leases are gone
  from Redis when it exits, and the other node counts it out within a second;
- check-config refuses a bad redis URL and warns that limits stay per node.
"""
import json
import signal
import smtplib
import subprocess
import time
import urllib.error
import urllib.request

import pytest

from conftest import BIN, CONFIG, wait_for
from peers import Recorder, free_port
from test_delivery import net  # noqa: F401  (the fixture)


class Redis:
    """redis-server on 127.0.0.1:<free port>, no persistence, stopped by PID."""

    def __init__(self):
        self.port = free_port()
        self.start()

    def start(self):
        """A fresh server (empty) on self.port: at first, or after stop()."""
        self.proc = subprocess.Popen(
            ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "no", "--daemonize", "no", "--loglevel", "warning"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_for(self._ping, timeout=10, what="redis-server to answer PING")

    def _ping(self):
        import socket
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=1) as s:
                s.sendall(b"PING\r\n")
                return s.recv(16).startswith(b"+PONG")
        except OSError:
            return False

    def integer(self, *args):
        """The integer reply of one command (e.g. ZCARD key)."""
        import socket
        req = f"*{len(args)}\r\n" + "".join(f"${len(a)}\r\n{a}\r\n" for a in args)
        with socket.create_connection(("127.0.0.1", self.port), timeout=5) as s:
            s.sendall(req.encode())
            line = s.makefile("rb").readline()
        assert line.startswith(b":"), line
        return int(line[1:])

    @property
    def url(self):
        return f"redis://127.0.0.1:{self.port}"

    def cli(self, *args):
        """One command through redis-cli: its reply as text ("" for nil)."""
        out = subprocess.run(["redis-cli", "-p", str(self.port), *args], capture_output=True,
                             text=True, timeout=10)
        return out.stdout.strip()

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGCONT)
            self.proc.kill()
            self.proc.wait(timeout=10)


def http_base(gw):
    return "http://127.0.0.1:" + gw.wait_log(r"listening http=\S+:(\d+)").group(1)


def get(gw, path):
    try:
        with urllib.request.urlopen(http_base(gw) + path, timeout=10) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read())


def metric(gw, name):
    with urllib.request.urlopen(http_base(gw) + "/metrics", timeout=10) as r:
        for line in r.read().decode().splitlines():
            if line.startswith(name + " "):
                return float(line.split()[1])
    return None


@pytest.fixture
def redis():
    r = Redis()
    yield r
    r.stop()


def node_sets(redis, name):
    # lease_ttl 2s: heartbeats every 200 ms, a stalled Redis is down after ~0.6 s.
    return [f"cluster.redis={redis.url}", f"cluster.node={name}", "cluster.lease_ttl=2s"]


def test_nodes_see_each_other_and_survive_a_stalled_redis(net, redis, tmp_path):  # noqa: F811
    dns = net.dns("--mx-host=example.test,mx.example.test,10",
                  "--host-record=mx.example.test,127.0.0.1")
    recorder = Recorder()
    net.sink(handler=recorder)
    a = net.gateway(dns, sets=node_sets(redis, "gw-a"), spool=tmp_path / "a")
    b = net.gateway(dns, sets=node_sets(redis, "gw-b"), spool=tmp_path / "b")

    def both_live():
        code, body = get(a, "/api/v1/cluster")
        live = [n["node"] for n in body.get("nodes", []) if n["live"]]
        return code == 200 and body["redis"]["up"] and live == ["gw-a", "gw-b"] and body
    status = wait_for(both_live, timeout=10, what="both nodes live on gw-a")
    assert status["node"] == "gw-a" and status["live_nodes"] == 2
    assert status["redis"]["latency_ms"] > 0
    assert metric(a, "mailgate_cluster_redis_up") == 1
    assert metric(b, "mailgate_cluster_nodes") == 2
    code, ready = get(b, "/readyz")
    assert code == 200 and ready["cluster"]["redis_up"] and not ready["cluster"]["degraded"]
    out = subprocess.run([BIN, "cluster", "status", "--api", http_base(a)], capture_output=True,
                         text=True, timeout=30)
    assert out.returncode == 0, out.stderr
    assert "gw-a" in out.stdout and "gw-b" in out.stdout and " up, latency" in out.stdout
    # The start-up warning says what is shared (and what stays per node).
    assert "are shared through Redis" in a.log() and "stays per node" in a.log()

    # Redis stalls (not dead: the socket stays open and nothing answers).
    redis.proc.send_signal(signal.SIGSTOP)
    t0 = time.monotonic()
    wait_for(lambda: get(a, "/readyz")[1]["cluster"]["degraded"], timeout=5,
             what="gw-a degraded")
    assert time.monotonic() - t0 < 3.0
    code, ready = get(a, "/readyz")
    assert code == 200 and ready["ready"] and ready["cluster"]["live_nodes"] == 2
    # Its rate limits are local meanwhile (each at rate / 2: test_cluster_rates.py).
    assert ready["cluster"]["rate_limits"] == "local"
    assert "rate limits are local" in ready["cluster"]["reason"]
    a.wait_log(r"cluster: Redis at \S+ is down")
    # Mail still flows: accepted and delivered while Redis is stalled.
    with smtplib.SMTP(a.host, a.port, timeout=30) as s:
        s.sendmail("s@src.test", ["r@example.test"], b"Subject: t\r\n\r\nwhile redis stalls\r\n")
    wait_for(lambda: recorder.count() == 1, timeout=10, what="delivery while Redis is stalled")
    assert metric(a, "mailgate_cluster_redis_up") == 0
    assert metric(a, "mailgate_cluster_redis_failures_total") >= 3
    code, body = get(a, "/api/v1/cluster")
    assert code == 200 and not body["redis"]["up"] and body["redis"]["last_error"]

    redis.proc.send_signal(signal.SIGCONT)
    wait_for(lambda: get(a, "/api/v1/cluster")[1]["redis"]["up"], timeout=5,
             what="gw-a sees Redis again")
    code, ready = get(a, "/readyz")
    assert code == 200 and not ready["cluster"]["degraded"]
    wait_for(lambda: get(a, "/readyz")[1]["cluster"]["rate_limits"] == "shared", timeout=5,
             what="gw-a's rate limits shared again")

    # A node killed with kill -9 stops beating: after lease_ttl (2 s) the other
    # no longer counts it live (it stays listed, with its last heartbeat).
    b.kill9()
    t0 = time.monotonic()
    wait_for(lambda: get(a, "/api/v1/cluster")[1]["live_nodes"] == 1, timeout=6,
             what="gw-b no longer live on gw-a")
    assert time.monotonic() - t0 < 2.0 + 1.5  # lease_ttl + a heartbeat and the scrape
    nodes = {n["node"]: n for n in get(a, "/api/v1/cluster")[1]["nodes"]}
    assert nodes["gw-b"]["live"] is False and nodes["gw-a"]["live"] is True


def test_a_node_stopped_cleanly_leaves_at_once(net, redis, tmp_path):  # noqa: F811
    dns = net.dns("--mx-host=example.test,mx.example.test,10",
                  "--host-record=mx.example.test,127.0.0.1")
    recorder = Recorder()
    recorder.data_delay = 30  # connections stay open: their leases are held
    net.sink(handler=recorder)
    a = net.gateway(dns, sets=node_sets(redis, "gw-a"), spool=tmp_path / "a")
    b = net.gateway(dns, sets=node_sets(redis, "gw-b") + ["delivery.drain_timeout=1s"],
                    spool=tmp_path / "b")
    wait_for(lambda: get(a, "/api/v1/cluster")[1]["live_nodes"] == 2, timeout=10,
             what="both nodes live on gw-a")
    with smtplib.SMTP(b.host, b.port, timeout=30) as s:
        for i in range(3):
            s.sendmail("s@src.test", [f"r{i}@example.test"], b"Subject: t\r\n\r\nheld\r\n")
    key = "mailgate:conn:dest:example.test"
    wait_for(lambda: recorder.data_started == 3 and redis.integer("ZCARD", key) == 3,
             timeout=10, what="three connections of gw-b holding leases")

    # SIGTERM: the attempts still talking to the sink pass the drain timeout;
    # leaving, the node removes their leases and its heartbeat from Redis.
    assert b.stop() == 0
    exited = time.monotonic()
    assert redis.integer("ZCARD", key) == 0  # not lease_ttl (2 s) later: now
    assert redis.integer("ZCARD", "mailgate:cluster:nodes") == 1  # gw-a alone
    assert "cluster: node gw-b left" in b.log()
    wait_for(lambda: get(a, "/api/v1/cluster")[1]["live_nodes"] == 1, timeout=5,
             what="gw-b no longer live on gw-a")
    # Within a heartbeat of gw-a (200 ms) and the scrape, not lease_ttl.
    assert time.monotonic() - exited < 1.0
    assert "gw-b" not in [n["node"] for n in get(a, "/api/v1/cluster")[1]["nodes"]]


def test_without_cluster_the_api_says_so(gateway):
    gw = gateway()
    code, body = get(gw, "/api/v1/cluster")
    assert code == 404 and "no cluster configured" in body["error"]
    code, ready = get(gw, "/readyz")
    assert code == 200 and ready["cluster"] is None
    assert metric(gw, "mailgate_cluster_redis_up") is None


@pytest.mark.parametrize("url", ["redis://localhost:6379", "127.0.0.1:6379",
                                 "redis://:secret@127.0.0.1:6379", "rediss://127.0.0.1:6379"])
def test_check_config_refuses_a_bad_redis_url(url):
    out = subprocess.run([BIN, "check-config", "--config", CONFIG, "--set", f"cluster.redis={url}"],
                         capture_output=True, text=True, timeout=30)
    assert out.returncode == 1
    assert "cluster.redis: expected \"redis://IP:PORT\"" in out.stderr + out.stdout


def test_check_config_warns_that_limits_stay_per_node():
    out = subprocess.run([BIN, "check-config", "--config", CONFIG, "--set",
                          "cluster.redis=redis://127.0.0.1:6390", "--set", "cluster.node=gw1"],
                         capture_output=True, text=True, timeout=30)
    assert out.returncode == 0, out.stderr
    assert "warning: cluster:" in out.stdout and "are shared through Redis" in out.stdout
