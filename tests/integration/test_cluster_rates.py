"""Shared rate limits and warm-up quotas across nodes (issue 16 items 2
and 5). One real redis-server started by the test (stopped by PID), real
gateways pointing at it and one shared sink:
- a 60 msgs/s egress_path rate to one destination is held within ±5% at the
  sink over more than 10 s, whichever node the messages were queued on;
- Redis killed and restarted mid-run: every message is delivered (none lost
  or refused), the nodes say the limits are local (/readyz, metrics, log)
  meanwhile, at their share, and go back to shared leases afterwards;
- two nodes sending from one warm-up source (12/day, bound to 127.0.0.2):
  exactly 12 reach the sink over both, the rest are held until 00:00 UTC
  (warmup_hold: no attempt, no bounce), none lost.
"""
import json
import os
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


WARMUP_SOURCE = "127.0.0.2"
WARMUP_POLICY = f"""
    mailgate.source {{ name = "ip1", address = "{WARMUP_SOURCE}",
                      warmup = {{ start = "12/day", factor = 2, days = 14 }} }}
    mailgate.pool {{ name = "bulk", sources = {{ "ip1" }} }}
    mailgate.on("message", function(tx, msg) msg:set_pool("bulk") end)
"""


def test_two_nodes_share_one_warmup_quota(env, tmp_path):  # noqa: F811
    redis = Redis()
    try:
        run_warmup(env, tmp_path, redis)
    finally:
        redis.stop()


def run_warmup(env, tmp_path, redis):  # noqa: F811
    dns = env.dns("--mx-host=warm.test,mx.warm.test,10", "--host-record=mx.warm.test,127.0.0.14")
    sink = env.sink("127.0.0.14")
    nodes = [env.gateway(dns, WARMUP_POLICY, spool=tmp_path / name,
                         sets=[f"cluster.redis={redis.url}", f"cluster.node={name}",
                               "cluster.lease_ttl=2s"])
             for name in ("gw-a", "gw-b")]

    def shared_by_two():
        for gw in nodes:
            code, ready = get(gw, "/readyz")
            c = ready["cluster"]
            if code != 200 or c["live_nodes"] != 2 or c["warmup_quotas"] != "shared":
                return False
        return True
    wait_for(shared_by_two, timeout=15, what="two nodes sharing warm-up quotas")

    # 10 messages on each node at once: 12 for the day over both.
    errors = []
    threads = []
    for k, gw in enumerate(nodes):
        def one(gw=gw, k=k):
            try:
                with smtplib.SMTP(gw.host, gw.port, timeout=30) as s:
                    for i in range(10):
                        s.sendmail("s@src.test", [f"n{k}-{i}@warm.test"],
                                   f"Subject: w{k}-{i}\r\n\r\nwarm-up\r\n".encode())
            except Exception as e:  # noqa: BLE001  (reported by the test)
                errors.append(repr(e))
        threads.append(threading.Thread(target=one))
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors

    seen = []

    def settled():
        seen.append((sink.handler.count(),
                     [get(gw, "/api/v1/queue")[1]["totals"] for gw in nodes]))
        return seen[-1][0] == 12 and sum(t["scheduled"] for t in seen[-1][1]) == 8
    try:
        wait_for(settled, timeout=30, what="12 delivered and 8 held over the two nodes")
    except AssertionError:
        raise AssertionError(f"sink, queues: {seen[-1]}; logs: {nodes[0].log()[-3000:]}")
    # Every message is at the sink or held for tomorrow, each once.
    tomorrow = time.strftime("%Y-%m-%dT00:00:00", time.gmtime(time.time() + 86400))
    waiting = []
    for gw in nodes:
        msgs = get(gw, "/api/v1/messages?destination=warm.test&limit=20")[1]["messages"]
        for m in msgs:  # not an attempt; waits for 00:00 UTC
            assert m["attempts"] == 0 and m["next_attempt"].startswith(tomorrow), m
        waiting += [m["id"] for m in msgs]
    assert len(waiting) == 8, waiting
    got = subjects(sink)
    assert len(got) == len(set(got)) == 12, got
    assert set(got) <= {f"w{k}-{i}" for k in range(2) for i in range(10)}
    assert {m["peer"] for m in sink.handler.messages} == {WARMUP_SOURCE}
    # The quota was shared through Redis: 12 granted from leases over both
    # nodes, none from a local share; the day's count in Redis is 12.
    granted = [labeled(gw, "mailgate_cluster_warmup_granted_total", backend="redis") for gw in nodes]
    print(f"warm-up 12/day over two nodes: {granted[0]:.0f} + {granted[1]:.0f} sent; {got}")
    assert sum(granted) == 12, granted
    assert all(labeled(gw, "mailgate_cluster_warmup_granted_total", backend="local") == 0
               for gw in nodes)
    # The sites API: each node's own count, and the count over both as last seen.
    paths = [p for gw in nodes for p in get(gw, "/api/v1/sites")[1]["paths"]
             if p["source"] == "ip1"]
    assert sum(p["sent_today"] for p in paths) == 12, paths
    assert any(p["cluster_today"] == 12 and p["quota_remaining"] == 0 for p in paths), paths
    day = int(time.time() // 86400)
    assert redis.cli("GET", f"mailgate:warmup:ip1/other/{day}") == "12"
    # Held by whichever node had them when the quota ran out: not attempts, not bounces.
    assert sum(labeled(gw, "mailgate_warmup_held_total") for gw in nodes) >= 8
    assert any("warmup_hold" in gw.log() for gw in nodes)
    for gw in nodes:
        log = os.path.join(os.path.dirname(gw.spool), "deliveries.jsonl")
        events = [json.loads(line)["event"] for line in open(log) if line.strip()]
        assert "bounce" not in events and "transient_failure" not in events, events
