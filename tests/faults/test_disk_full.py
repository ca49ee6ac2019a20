"""Disk full (issue 14 item 2): the spool on a 32 MiB tmpfs (smaller than
the WAL RocksDB would preallocate, so it preallocates none) (mounted for the
test, unmounted in teardown whatever happens) is filled by a file while
clients send mail. Below spool.min_free_space `MAIL` gets `452 4.3.1` and
/readyz turns 503; with the disk completely full a message whose data is
already coming (1 MiB ones, written in chunks as they arrive, and small
ones) gets `451 4.3.0` at its end of data — never 250 for what could
not be stored. Once the file is removed, /readyz is 200 again, mail is
accepted again, and every message ever answered 250 is delivered; nothing
refused is. Needs root (mount); skipped, saying why, without it."""
import os
import subprocess

import pytest

from faultlib import LoadGen, Outcome, arrivals, gateway_log_on_failure, queue_empty, wait_for
from peers import Recorder
from rawsmtp import greet
from test_delivery import net  # noqa: F401 (a fixture)
from test_http_api import Api

MIN_FREE = 8 << 20
LATE = 8


@pytest.fixture
def tmpfs(tmp_path):
    mnt = tmp_path / "fs"
    mnt.mkdir()
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=32m", "none", str(mnt)],
                       capture_output=True, text=True)
    if r.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs (needs root): {r.stderr.strip()}")
    try:
        yield mnt
    finally:
        # The gateway is stopped by then (net's teardown runs first: this
        # fixture was set up before it); lazy unmount if anything still holds it.
        if subprocess.run(["umount", str(mnt)], capture_output=True).returncode != 0:
            subprocess.run(["umount", "-l", str(mnt)], check=True)


def free_bytes(path):
    st = os.statvfs(path)
    return st.f_bavail * st.f_frsize


def fill(path, leave):
    """Appends to `path` until at most `leave` bytes are free (0: until ENOSPC)."""
    chunk = b"\0" * (256 << 10)
    with open(path, "ab", buffering=0) as f:  # unbuffered: nothing left to fail at close
        while True:
            room = free_bytes(os.path.dirname(path)) - leave
            if leave and room <= 0:
                return
            try:
                f.write(chunk[:max(4096, min(len(chunk), room))] if leave else chunk)
            except OSError:  # ENOSPC: the disk is full
                return


def open_transaction(gw, n):
    """A client with MAIL, RCPT and DATA done for message n (its data not sent yet)."""
    c = greet(gw.host, gw.port)
    assert c.cmd("MAIL FROM:<load@sender.test>")[0] == 250
    assert c.cmd(f"RCPT TO:<late{n}@full.test>")[0] == 250
    assert c.cmd("DATA")[0] == 354
    return c


def readyz(api, gw):
    if gw.proc.poll() is not None:
        raise AssertionError(f"the gateway died ({gw.proc.returncode}):\n" + gw.log()[-3000:])
    return api.call("GET", "/readyz")


def test_full_disk_refuses_with_4xx_never_250_and_recovers(tmpfs, net, tmp_path):  # noqa: F811
    dns = net.dns("--mx-host=full.test,mx.full.test,10", "--host-record=mx.full.test,127.0.1.121")
    sink = net.sink("127.0.1.121", Recorder())
    spool = tmpfs / "spool"
    log = tmp_path / "deliveries.jsonl"  # off the tmpfs: the log is not under test here
    gw = net.gateway(dns, spool=spool, sets=[f"spool.min_free_space={MIN_FREE}",
                                             f"log.deliveries={log}"])
    with gateway_log_on_failure(lambda: gw):
        api = Api(gw)
        assert readyz(api, gw)[0] == 200
        load = LoadGen((gw.host, gw.port), lambda s: [f"u{s}@full.test"], threads=4,
                       body_size=16 << 10, per_conn=10).start()
        filler = tmpfs / "filler"
        try:
            load.wait_acked(30, 60, "mail accepted before the disk fills")
            # Transactions whose data is about to come, opened while there is room.
            late = [open_transaction(gw, n) for n in range(LATE)]

            fill(str(filler), MIN_FREE * 3 // 4)  # below min_free_space, above half of it
            wait_for(lambda: readyz(api, gw)[0] == 503, 20, what="/readyz 503 on a low disk")
            status, body = readyz(api, gw)
            assert b"spool.min_free_space" in body, body
            wait_for(lambda: any(o[0] == Outcome.REFUSED and o[1][1] == 452
                                 for o in load.snapshot().values()), 20, what="452 at MAIL")

            # Completely full. Filled while the gateway writes nothing (MAIL is
            # refused, everything accepted is delivered), so that it is the gateway
            # that finds the disk full, not the filler.
            wait_for(lambda: queue_empty(api), 60, interval=0.2, what="the queue delivered")
            fill(str(filler), 0)
            assert free_bytes(str(tmpfs)) < (1 << 20)
            line = b"x" * 998 + b"\r\n"
            for n, c in enumerate(late):  # 1 MiB each (written in chunks as it comes), or small
                c.send(f"Subject: late {n}\r\nX-Late: {n}\r\n\r\n".encode() +
                       (line * 1024 if n % 2 else b"small\r\n") + b".\r\n")
            late_replies = [c.reply() for c in late]
            for c in late:
                c.close()
            # Nothing can be stored (the spool writes nothing below half of
            # min_free_space), so nothing may be acknowledged.
            assert [(code, lines[0][:5]) for code, lines in late_replies] == \
                [(451, "4.3.0")] * LATE, late_replies
            acked_while_full = load.count(Outcome.ACKED)

            os.unlink(filler)
            wait_for(lambda: readyz(api, gw)[0] == 200, 30, what="/readyz 200 after space is freed")
            load.wait_acked(30, 60, "mail accepted again after space is freed")
        finally:
            load.stop()
        outcomes = load.snapshot()
        acked = {s for s, o in outcomes.items() if o[0] == Outcome.ACKED}
        refused = {s for s, o in outcomes.items() if o[0] == Outcome.REFUSED}
        assert load.count(Outcome.UNANSWERED) == 0, [o for o in outcomes.values()
                                                     if o[0] == Outcome.UNANSWERED][:3]
        for s in refused:  # refused only for want of space, and saying so
            stage, code, text = outcomes[s][1]
            assert (stage, code) in (("MAIL", 452), ("end of data", 451)), (stage, code, text)
            assert text.startswith("4.3.1" if code == 452 else "4.3.0"), text
        assert len(acked) > acked_while_full

        def delivered_seqs():
            return {s for s, _ in arrivals(sink.handler.messages)[0]}

        wait_for(lambda: acked <= delivered_seqs(), 90, interval=0.5,
                 what="every acknowledged message delivered")
        assert not (refused & delivered_seqs())

        assert not any(b"X-Late: " in m["data"] for m in sink.handler.messages)
    print(f"\n[disk full] acknowledged {len(acked)}, refused {len(refused)} "
          f"({sum(1 for s in refused if outcomes[s][1][1] == 452)} at MAIL 452 4.3.1, "
          f"{sum(1 for s in refused if outcomes[s][1][1] == 451)} at end of data 451 4.3.0); "
          f"with the disk full: {LATE} of {LATE} messages 451 4.3.0 at the end of data; "
          f"all acknowledged delivered")
