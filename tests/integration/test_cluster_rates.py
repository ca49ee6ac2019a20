"""Shared rate limits across nodes (issue 16 items 2 and 5). One real
redis-server started by the test (stopped by PID), three real gateways
pointing at it and one shared sink:
- a 60 msgs/s egress_path rate to one destination is held within ±5% at the
  sink over more than 10 s, whichever node the messages were queued on;
- Redis killed and restarted mid-run: every message is delivered (none lost
  or refused), the nodes say the limits are local (/readyz, metrics, log)
  meanwhile, at their share, and go back to shared leases afterwards.
"""
import smtplib
import threading
import time
import urllib.request

from conftest import wait_for
from test_cluster import Redis, get, http_base
from test_policy import env  # noqa: F401  (the fixture)

RATE = 60
POLICY = """
    mailgate.on("egress_path", function(d)
      if d == "example.test" then return { max_message_rate = "60/s", max_message_burst = 6 } end
    end)
"""


def labeled(gw, name, **labels):
    """The value of `name` with these labels on gw's /metrics (None: absent)."""
    want = [f'{k}="{v}"' for k, v in labels.items()]
    with urllib.request.urlopen(http_base(gw) + "/metrics", timeout=10) as r:
        for line in r.read().decode().splitlines():
            head, _, value = line.rpartition(" ")
            if (head == name and not want) or (head.startswith(name + "{") and
                                               all(w in head for w in want)):
                return float(value)
    return None


def inject(gw, prefix, n):
    with smtplib.SMTP(gw.host, gw.port, timeout=30) as s:
        for i in range(n):
            s.sendmail("s@src.test", [f"{prefix}{i}@example.test"],
                       f"Subject: {prefix}{i}\r\n\r\nshared rate\r\n".encode())


def inject_all(nodes, tag, n, errors):
    """n messages on each node at once (one SMTP client thread per node);
    any refusal or error lands in `errors`."""
    def one(gw, prefix):
        try:
            inject(gw, prefix, n)
        except Exception as e:  # noqa: BLE001  (reported by the test)
            errors.append(repr(e))
    threads = [threading.Thread(target=one, args=(gw, f"{tag}{k}-"))
               for k, gw in enumerate(nodes)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()


def subjects(sink):
    out = []
    with sink.handler.lock:
        for m in sink.handler.messages:
            for line in m["data"].splitlines():
                if line.startswith(b"Subject: "):
                    out.append(line[9:].decode())
    return out


def test_three_nodes_share_one_rate_and_survive_redis_restart(env, tmp_path):  # noqa: F811
    redis = Redis()
    try:
        run(env, tmp_path, redis)
    finally:
        redis.stop()


def run(env, tmp_path, redis):  # noqa: F811
    dns = env.dns("--mx-host=example.test,mx.example.test,10",
                  "--host-record=mx.example.test,127.0.0.1")
    sink = env.sink("127.0.0.1")
    nodes = [env.gateway(dns, POLICY, spool=tmp_path / name,
                         sets=[f"cluster.redis={redis.url}", f"cluster.node={name}",
                               "cluster.lease_ttl=2s"])
             for name in ("gw-a", "gw-b", "gw-c")]

    def shared_by_three():
        for gw in nodes:
            code, ready = get(gw, "/readyz")
            c = ready["cluster"]
            if code != 200 or c["live_nodes"] != 3 or c["rate_limits"] != "shared":
                return False
        return True
    wait_for(shared_by_three, timeout=15, what="three nodes sharing their limits")

    # 1. 720 messages (240 per node) to one destination: 60/s at the sink.
    per_node = 240
    errors = []
    inject_all(nodes, "p", per_node, errors)
    assert not errors, errors
    wait_for(lambda: sink.handler.count() == 3 * per_node, timeout=30,
             what="the first 720 messages")
    t = sorted(m["t"] for m in sink.handler.messages)
    span = t[-1] - t[0]
    rate = (len(t) - 1) / span
    print(f"shared rate at the sink: {rate:.2f}/s over {span:.1f} s ({len(t)} messages)")
    assert span >= 10.0, span
    # The accuracy: within +-5% of the rate over >= 10 s. (It used to
    # settle at 51-53/s in some runs: leased tokens a node could not spend
    # were dropped, and a node whose one connection was slower than its
    # tokens opened no other; README "Running several nodes".)
    assert RATE * 0.95 <= rate <= RATE * 1.05, rate
    # Any 1 s window at the sink: at most the promise of
    # cluster/leased_rates.hpp, the burst of 6 + (1 s + the 100 ms a leased
    # token lives) x 60 = 72, plus 100 ms of the rate for the sink's own
    # timestamps, which jitter on this loaded machine (with rate + burst = 66
    # as the bound, 3 runs in 12 failed with 67-69, before any change to the
    # limiter; 75 was seen once in 8 runs after): 78.
    for i, start in enumerate(t):
        j = i
        while j < len(t) and t[j] - start < 1.0:
            j += 1
        assert j - i <= RATE * 1.2 + 6, (start, j - i)
    # Every node took part (the limit is shared, not first come first served).
    for gw in nodes:
        assert labeled(gw, "mailgate_cluster_rate_granted_total", kind="message_rate",
                       backend="redis") > 0
    assert labeled(nodes[0], "mailgate_cluster_rate_fallback") == 0

    # 2. Redis killed mid-run and started again (empty) on the same port.
    per_node2 = 120
    sender = threading.Thread(target=inject_all, args=(nodes, "q", per_node2, errors))
    sender.start()
    wait_for(lambda: sink.handler.count() >= 3 * per_node + 60, timeout=20,
             what="the second batch under way")
    redis.stop()
    killed_at = time.monotonic()
    for gw in nodes:
        wait_for(lambda gw=gw: get(gw, "/readyz")[1]["cluster"]["rate_limits"] == "local",
                 timeout=5, what="limits local after Redis died")
    wait_for(lambda: get(nodes[1], "/readyz")[1]["cluster"]["degraded"], timeout=5,
             what="/readyz degraded")
    code, ready = get(nodes[1], "/readyz")
    assert code == 200 and ready["ready"]
    assert "rate limits are local" in ready["cluster"]["reason"], ready
    assert labeled(nodes[1], "mailgate_cluster_rate_fallback") == 1
    nodes[1].wait_log(r"cluster: rate limits are local now")
    delivered_at_kill = sink.handler.count()
    # Delivery goes on without Redis (each node at 60/3 per second).
    wait_for(lambda: sink.handler.count() >= delivered_at_kill + 40, timeout=5,
             what="delivery while Redis is down")
    while time.monotonic() - killed_at < 2.0:
        time.sleep(0.05)
    redis.start()
    for gw in nodes:
        wait_for(lambda gw=gw: get(gw, "/readyz")[1]["cluster"]["rate_limits"] == "shared",
                 timeout=10, what="limits shared again")
        # Logged when the limits were first shared, and again now.
        wait_for(lambda gw=gw: gw.log().count("rate limits are shared through Redis") >= 2,
                 timeout=5, what="the log line of limits shared again")
    leased_after = [labeled(gw, "mailgate_cluster_rate_granted_total", kind="message_rate",
                            backend="redis") for gw in nodes]
    sender.join()
    assert not errors, errors  # nothing refused while Redis was gone
    total = 3 * (per_node + per_node2)
    wait_for(lambda: sink.handler.count() >= total, timeout=30, what="every message")
    got = subjects(sink)
    expected = {f"{tag}{k}-{i}" for tag, n in (("p", per_node), ("q", per_node2))
                for k in range(3) for i in range(n)}
    assert set(got) == expected  # none lost
    assert len(got) == total     # none twice
    # After the restart the limits are leased from Redis again.
    after = [labeled(gw, "mailgate_cluster_rate_granted_total", kind="message_rate",
                     backend="redis") for gw in nodes]
    assert sum(after) > sum(leased_after), (after, leased_after)
    for gw in nodes:
        assert labeled(gw, "mailgate_cluster_rate_fallback") == 0
        assert labeled(gw, "mailgate_cluster_rate_fallback_seconds_total") >= 1.5
    # Never above the rate, Redis or not: the second batch's rate at the sink.
    t2 = sorted(m["t"] for m in sink.handler.messages)[3 * per_node:]
    rate2 = (len(t2) - 1) / (t2[-1] - t2[0])
    print(f"second batch (Redis killed and restarted): {rate2:.2f}/s")
    assert rate2 <= RATE * 1.1, rate2
