"""bench/loadgen (issue 15) against real aiosmtpd sinks: it counts what the
server accepted and refused, sends what it says it sent (numbered messages,
recipients, sizes), keeps a fixed rate, holds idle sessions, and reports
network errors instead of hanging. The binary is built beside mailgate
(build/bench/loadgen) with the benchmarks (MAILGATE_BENCH, on by default)."""
import email
import json
import os
import subprocess
import time

import pytest

from conftest import BIN, wait_for
from peers import Recorder, Sink, free_port

LOADGEN = os.path.join(os.path.dirname(os.path.abspath(BIN)), "bench", "loadgen")

pytestmark = pytest.mark.skipif(not os.path.exists(LOADGEN),
                                reason=f"{LOADGEN} not built (MAILGATE_BENCH=OFF)")


def run(port, *args, timeout=120):
    p = subprocess.run([LOADGEN, f"127.0.0.1:{port}", "--json", "--timeout", "20", *args],
                       capture_output=True, text=True, timeout=timeout)
    assert p.stdout.strip(), p.stderr
    return p.returncode, json.loads(p.stdout)


@pytest.fixture
def sink():
    sinks = []

    def make(handler=None):
        s = Sink("127.0.0.1", free_port(), handler or Recorder())
        sinks.append(s)
        return s
    yield make
    for s in sinks:
        s.stop()


def test_sends_numbered_messages_with_their_recipients_and_sizes(sink):
    s = sink()
    rc, r = run(s.controller.port, "-c", "3", "-m", "60", "-d", "10", "-r", "2", "-P",
                "-s", "2k:1,20k:1")
    assert rc == 0, r
    assert (r["accepted"], r["failed"], r["errors"]) == (60, 0, {})
    assert r["mail"]["count"] == 60 and r["end_of_data"]["count"] == 60
    # 10 messages per session; which session claims the next message is a race,
    # so up to two sessions (of the three) may end with fewer.
    assert 6 <= r["sessions"] <= 8
    assert 0 < r["end_of_data"]["p50_us"] <= r["end_of_data"]["p99_us"] <= r["end_of_data"]["max_us"]
    wait_for(lambda: s.handler.count() == 60, what="60 messages at the sink")
    numbers = set()
    for m in s.handler.messages:
        msg = email.message_from_bytes(m["data"])
        n = int(msg["X-Loadgen"])
        numbers.add(n)
        assert m["to"] == [f"rcpt{n}@example.com", f"1.rcpt{n}@example.com"]
        assert len(m["data"]) in range(2048 - 2, 2048 + 3) or len(m["data"]) in range(20480 - 2, 20480 + 3)
    assert numbers == set(range(60))


def test_counts_refusals_by_reply_code(sink):
    s = sink(Recorder(rcpt_reply={"*": "452 4.5.3 Too many recipients"}))
    rc, r = run(s.controller.port, "-c", "2", "-m", "20", "-d", "0")
    assert rc == 1
    assert (r["accepted"], r["failed"]) == (0, 20)
    assert r["errors"] == {"transaction 452 4.5.3": 20}
    assert s.handler.count() == 0
    assert r["sessions"] == 2  # a refused transaction is RSET, the session goes on


def test_fixed_rate_is_kept(sink):
    s = sink()
    t0 = time.monotonic()
    rc, r = run(s.controller.port, "-c", "4", "-m", "30", "--rate", "40", "-d", "0")
    assert rc == 0 and r["accepted"] == 30
    # 30 messages at 40/s: the last one is due 29/40 s after the start.
    assert r["elapsed_s"] >= 29 / 40
    assert time.monotonic() - t0 >= 29 / 40
    assert r["start_lag"]["count"] == 30


def test_idle_sessions_are_held(sink):
    s = sink()
    rc, r = run(s.controller.port, "--idle", "8", "--hold", "1", "--sources",
                "127.0.0.2,127.0.0.3")
    assert rc == 0, r
    assert r["idle_held"] == 8 and r["sessions"] == 8
    assert s.handler.max_active == 8
    assert s.handler.count() == 0


def test_network_errors_are_reported_not_hung():
    port = free_port()  # nobody listens
    rc, r = run(port, "-c", "2", "-m", "4", timeout=30)
    assert rc == 1
    assert r["accepted"] == 0 and r["failed"] == 4
    assert r["errors"] == {"connect: Connection refused": 4}


def test_bad_arguments_are_refused():
    p = subprocess.run([LOADGEN, "127.0.0.1:25", "--size", "12q"], capture_output=True, text=True)
    assert p.returncode == 2 and "bad size" in p.stderr


def test_starttls_and_auth_against_mailgate(tmp_path):
    """loadgen's TLS and AUTH PLAIN paths against the real gateway: accepted
    only after STARTTLS + AUTH (relay_networks is empty); a wrong password is
    counted under its reply, not as accepted."""
    from conftest import Gateway
    from test_auth import PASSWORD, write_config
    gw = Gateway(tmp_path / "spool", config=write_config(tmp_path))
    try:
        rc, r = run(gw.port, "-c", "2", "-m", "6", "-d", "3", "--starttls",
                    "--auth", f"alice:{PASSWORD}")
        assert rc == 0, r
        assert r["accepted"] == 6 and 2 <= r["sessions"] <= 3  # 3 per session
        rc, r = run(gw.port, "-c", "1", "-m", "1", "--starttls", "--auth", "alice:wrong")
        assert rc == 1 and r["accepted"] == 0
        assert list(r["errors"]) == ["AUTH 535 5.7.8"], r["errors"]
    finally:
        gw.stop()
