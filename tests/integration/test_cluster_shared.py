"""Three gateway nodes sharing one Redis (issue 16: leased connection limits
and the shared suppression list). One redis-server and one sink counting
concurrent connections, all started by the test and stopped by PID; one
flow reusing the processes:
- a burst on all three nodes to one destination with a shared
  max_connections = 4: the sink never sees more than 4 at once (and sees 4);
- a suppression added through node A's HTTP API refuses the address at RCPT
  on B and C within 1 s;
- node A holds all 4 slots (slow DATA) and is killed with kill -9: B and C,
  refused meanwhile, get all 4 within lease_ttl (2 s) and a little;
- a suppression added while A is down is refused by A once it restarts
  (it catches up with Redis).
"""
import json
import smtplib
import textwrap
import time
import urllib.request

import pytest

from conftest import Gateway, wait_for
from peers import Recorder, Sink, free_port
from test_cluster import Redis

LEASE_TTL = 2.0


def write_config(tmp_path, sink_port):
    p = tmp_path / "mailgate.lua"
    p.write_text(textwrap.dedent(f"""
        mailgate.configure {{ spool = {{ path = "unused" }} }}
        mailgate.listen {{ address = "127.0.0.1:2525", relay_networks = {{ "127.0.0.0/8" }} }}
        mailgate.use("suppression")
        mailgate.on("route", function(msg, domain)
          return {{ smarthost = "[127.0.0.1]:{sink_port}", tls = "disabled" }}
        end)
    """))
    return str(p)


@pytest.fixture
def cluster(tmp_path):
    started = []

    class Cluster:
        def __init__(self):
            self.redis = Redis()
            started.append(self.redis)
            self.recorder = Recorder()
            sink_port = free_port()
            self.sink = Sink("127.0.0.1", sink_port, self.recorder)
            started.append(self.sink)
            self.config = write_config(tmp_path, sink_port)

        def node(self, name):
            gw = Gateway(tmp_path / name, config=self.config, sets=[
                f"cluster.redis={self.redis.url}", f"cluster.node={name}",
                f"cluster.lease_ttl={int(LEASE_TTL)}s", "delivery.max_connections=4",
                "delivery.drain_timeout=1s", "delivery.retry.first=1s"])
            started.append(gw)
            return gw

    try:
        yield Cluster()
    finally:
        for s in reversed(started):
            s.stop()


def api(gw, method, path, body=None):
    port = gw.wait_log(r"listening http=\S+:(\d+)").group(1)
    req = urllib.request.Request(f"http://127.0.0.1:{port}{path}", method=method,
                                 data=json.dumps(body).encode() if body is not None else None,
                                 headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=10) as r:
        return json.loads(r.read())


def send(gw, rcpts):
    with smtplib.SMTP(gw.host, gw.port, timeout=30) as s:
        for r in rcpts:
            s.sendmail("s@src.test", [r], b"Subject: t\r\n\r\nburst\r\n")


def rcpt_code(gw, address):
    with smtplib.SMTP(gw.host, gw.port, timeout=30) as s:
        s.ehlo("c.test")
        s.mail("s@src.test")
        code, _ = s.rcpt(address)
        return code


def leases(gw):
    return api(gw, "GET", "/api/v1/cluster")["leases"]


def test_three_nodes_share_connection_limits_and_suppressions(cluster):
    rec, sink = cluster.recorder, cluster.sink
    a, b, c = cluster.node("gw-a"), cluster.node("gw-b"), cluster.node("gw-c")
    nodes = [a, b, c]
    wait_for(lambda: all(api(n, "GET", "/api/v1/cluster")["live_nodes"] == 3 and
                         leases(n)["shared"] for n in nodes), timeout=10,
             what="three live nodes leasing in Redis")
    assert ("connection limits (max_connections, as leases), the suppression list and warm-up "
            "quotas are shared") in a.log()

    # 1. A burst on every node, one destination, a shared max_connections = 4.
    rec.data_delay = 0.3
    for i, n in enumerate(nodes):
        send(n, [f"r{i}-{k}@example.test" for k in range(8)])
    wait_for(lambda: rec.count() == 24, timeout=30, what="the burst delivered")
    assert rec.max_active == 4, rec.max_active
    refused = sum(leases(n)["refused"] for n in nodes)
    assert refused > 0  # nodes did wait for each other

    # 2. A suppression added through A's API refuses the address on B and C within 1 s.
    assert rcpt_code(b, "blocked@example.test") == 250
    api(a, "POST", "/api/v1/suppression", {"address": "blocked@example.test", "reason": "test"})
    t0 = time.monotonic()
    wait_for(lambda: rcpt_code(b, "blocked@example.test") == 550 and
             rcpt_code(c, "blocked@example.test") == 550, timeout=3, interval=0.05,
             what="the suppression refused on B and C")
    assert time.monotonic() - t0 < 1.0
    assert api(b, "GET", "/api/v1/cluster")["suppression"]["applied"] >= 1

    # 3. A holds every slot (slow DATA); B and C are refused; A dies with kill -9.
    rec.data_delay = 4.0
    # More than 4 x 2 messages: ready work stays above busy connections (the
    # engine opens one more connection only then), whenever the slots free up.
    send(a, [f"slow-a-{k}@example.test" for k in range(12)])
    # (B's and C's idle connections of the burst close within 2 s: A gets their slots.)
    seen = []

    def a_holds_all():
        seen.append((leases(a)["held"], leases(b)["held"], leases(c)["held"],
                     sink.connection_counts()[0], rec.count()))
        return seen[-1][0] == 4 and seen[-1][3] == 4
    try:
        wait_for(a_holds_all, timeout=10, interval=0.2, what="A holding all 4 connections")
    except AssertionError:
        raise AssertionError(f"A holding all 4: (held a, b, c, sink active, delivered) {seen[::5]}")
    before_b = leases(b)["refused"]
    send(b, [f"slow-b-{k}@example.test" for k in range(4)])
    send(c, [f"slow-c-{k}@example.test" for k in range(4)])
    wait_for(lambda: leases(b)["refused"] > before_b, timeout=5, what="B refused a lease")
    assert sink.connection_counts()[0] == 4
    ever = sink.connection_counts()[1]
    a.kill9()
    t0 = time.monotonic()
    wait_for(lambda: sink.connection_counts()[1] >= ever + 4 and
             sink.connection_counts()[0] == 4, timeout=10, interval=0.02,
             what="B and C using the 4 slots A held")
    assert time.monotonic() - t0 < LEASE_TTL + 1.5
    assert leases(b)["held"] + leases(c)["held"] == 4

    # 4. A suppression added while A is down: A catches up when it restarts.
    api(b, "POST", "/api/v1/suppression", {"address": "late@example.test", "reason": "test"})
    a2 = cluster.node("gw-a")  # the same spool and name
    wait_for(lambda: rcpt_code(a2, "late@example.test") == 550, timeout=5,
             what="the restarted node refusing the suppression added while it was down")
    assert rcpt_code(a2, "blocked@example.test") == 550
    assert rec.max_active == 4, rec.max_active  # never more than 4 at once, all along
    rec.data_delay = 0
