"""Durability of acknowledged mail: "250 2.0.0 OK id=X" after end of data is a
promise that X survives a crash.

1. test_kill9_keeps_every_acknowledged_message: many concurrent SMTP sessions,
   `kill -9` in the middle of the stream, restart on the same spool: every
   acknowledged id is recovered (with its envelope and body), the restarted
   gateway accepts new mail and its ids do not collide with the old ones.
2. test_every_250_follows_a_wal_sync_under_strace: kill -9 keeps the page
   cache, so test 1 cannot tell a synced write from an unsynced one. Under
   strace we check the order of the syscalls themselves: for every 250 written
   to a socket, the message's WAL write, then an fdatasync/fsync of the WAL
   file, both came after the session read the end of data and before the 250
   was written; and one sync covered several messages (group commit).
"""
import base64
import os
import re
import signal
import subprocess
import threading
import time
from bisect import bisect_left

from conftest import spool_dump, wait_for
import strace_log
from rawsmtp import Raw

OK_ID = re.compile(r"^2\.0\.0 OK id=([0-9a-f]{32})$")


class Senders:
    """`conns` threads, each with one SMTP connection sending `per_conn`
    messages (MAIL, RCPT and DATA pipelined, then the body). Records every
    acknowledged id; a connection that dies (kill -9) ends its thread quietly,
    but any unexpected *reply* (which the live server really sent) is kept in
    `bad_replies`."""

    def __init__(self, host, port, conns, per_conn, tag, timeout=30.0):
        self.host, self.port = host, port
        self.conns, self.per_conn, self.tag, self.timeout = conns, per_conn, tag, timeout
        self.cond = threading.Condition()
        self.acked = {}        # id -> (sender, rcpt, body)
        self.bad_replies = []  # (conn, msg, code, lines)
        self.conn_errors = []  # (conn, repr(exception))
        self.finished = 0      # threads that sent all their messages
        self.ended = 0         # threads that ended (finished or not)
        self.threads = [threading.Thread(target=self._run, args=(c,), daemon=True)
                        for c in range(conns)]

    @staticmethod
    def message(tag, c, i):
        sender = f"{tag}-s{c}-{i}@example.org"
        rcpt = f"{tag}-r{c}-{i}@dest{c % 7}.example"
        body = f"Subject: {tag} {c} {i}\r\n\r\nbody of {tag} message {c}/{i}\r\n".encode()
        return sender, rcpt, body

    def start(self):
        for t in self.threads:
            t.start()
        return self

    def _bad(self, c, i, code, lines):
        with self.cond:
            self.bad_replies.append((c, i, code, lines))

    def _run(self, c):
        raw = None
        try:
            raw = Raw(self.host, self.port, timeout=self.timeout)
            code, lines = raw.reply()
            if code != 220:
                return self._bad(c, -1, code, lines)
            code, lines = raw.cmd("EHLO client.test")
            if code != 250:
                return self._bad(c, -1, code, lines)
            for i in range(self.per_conn):
                sender, rcpt, body = self.message(self.tag, c, i)
                raw.send(f"MAIL FROM:<{sender}>\r\nRCPT TO:<{rcpt}>\r\nDATA\r\n")
                for want in (250, 250, 354):
                    code, lines = raw.reply()
                    if code != want:
                        return self._bad(c, i, code, lines)
                raw.send(body + b".\r\n")
                code, lines = raw.reply()
                m = OK_ID.match(lines[0]) if code == 250 else None
                if not m:
                    return self._bad(c, i, code, lines)
                with self.cond:
                    if m.group(1) in self.acked:
                        self.bad_replies.append((c, i, code, ["duplicate id"] + lines))
                    self.acked[m.group(1)] = (sender, rcpt, body)
                    self.cond.notify_all()
            with self.cond:
                self.finished += 1
            raw.cmd("QUIT")
        except (OSError, ConnectionError) as e:  # includes socket.timeout
            with self.cond:
                self.conn_errors.append((c, repr(e)))
        finally:
            if raw:
                raw.close()
            with self.cond:
                self.ended += 1
                self.cond.notify_all()

    def wait(self, pred, timeout, what):
        """Waits (on the condition, with a deadline) until pred() holds."""
        with self.cond:
            if not self.cond.wait_for(pred, timeout=timeout):
                raise AssertionError(f"timed out after {timeout}s waiting for {what}: "
                                     f"{len(self.acked)} acked, {self.ended} threads ended")

    def join(self, timeout):
        self.wait(lambda: self.ended == self.conns, timeout, "all sender threads to end")
        for t in self.threads:
            t.join(timeout=5)
            assert not t.is_alive()

    def snapshot(self):
        with self.cond:
            return dict(self.acked)


def counter_of(msg_id):
    """The 64-bit counter field of a message id (bytes 8..16)."""
    return int(msg_id[16:], 16)


def test_kill9_keeps_every_acknowledged_message(gateway):
    conns, per_conn, kill_after = 20, 100, 500
    total = conns * per_conn
    t0 = time.monotonic()
    gw = gateway(workers=2)
    spool = gw.spool
    senders = Senders(gw.host, gw.port, conns, per_conn, "crash").start()
    try:
        senders.wait(lambda: len(senders.acked) >= kill_after or senders.ended == conns,
                     timeout=90, what=f"{kill_after} acks")
        with senders.cond:
            acked_at_kill = len(senders.acked)
            finished_at_kill = senders.finished
        # kill -9 by PID, while the senders are still sending.
        assert gw.kill9() == -signal.SIGKILL
    finally:
        gw.stop()  # no-op when already dead; makes sure nothing is left running
    senders.join(timeout=60)
    acked = senders.snapshot()
    assert senders.bad_replies == [], senders.bad_replies[:5]
    assert finished_at_kill < conns and acked_at_kill < total, \
        "every sender had finished before the kill: the crash was not mid-stream"
    assert senders.conn_errors, "no sender saw its connection die"
    assert len(acked) >= kill_after

    # Restart on the same spool; recovery must find at least every acked message.
    gw2 = gateway(workers=2, spool=spool)
    m = gw2.wait_log(r"recovery: done: (\d+) messages", timeout=60)
    recovered = int(m.group(1))
    # The restarted gateway accepts new mail, with fresh ids.
    fresh = Senders(gw2.host, gw2.port, 2, 10, "after").start()
    fresh.join(timeout=60)
    assert fresh.bad_replies == [] and fresh.conn_errors == []
    new_ids = set(fresh.snapshot())
    assert len(new_ids) == 20
    assert gw2.stop() == 0

    recs = spool_dump(spool, bodies=True)
    by_id = {r["id"]: r for r in recs}
    assert len(by_id) == len(recs), "duplicate ids in the spool"
    old_ids = set(by_id) - new_ids
    assert new_ids <= set(by_id), "mail accepted after the restart is missing"
    missing = sorted(set(acked) - old_ids)
    assert not missing, f"{len(missing)} acknowledged ids lost by kill -9, e.g. {missing[:5]}"
    unacked = old_ids - set(acked)
    assert recovered >= len(acked)
    assert recovered == len(old_ids), (recovered, len(old_ids))
    for msg_id, (sender, rcpt, body) in acked.items():
        rec = by_id[msg_id]
        assert rec["sender"] == sender, rec
        assert [r["address"] for r in rec["recipients"]] == [rcpt], rec
        assert base64.b64decode(rec["body_b64"]).endswith(body), rec
    # Messages of this test only (nothing else wrote to the spool).
    assert all(r["sender"].startswith("crash-") for i, r in by_id.items() if i in old_ids)
    # New ids never collide with old ones; the counter starts above them all.
    assert not (new_ids & old_ids)
    assert min(map(counter_of, new_ids)) > max(map(counter_of, old_ids))
    print(f"\n[kill -9] {len(acked)} acked of {total} ({acked_at_kill} when killed), "
          f"{recovered} recovered, {len(unacked)} in the spool but never acknowledged, "
          f"{len(senders.conn_errors)} connections cut; {time.monotonic() - t0:.1f}s")


# --- strace ---------------------------------------------------------------

READS = {"read", "readv", "recvfrom", "recvmsg"}
WRITES = {"write", "writev", "sendto", "sendmsg"}
SYNCS = {"fdatasync", "fsync"}


def _children(pid):
    try:
        with open(f"/proc/{pid}/task/{pid}/children") as f:
            return [int(x) for x in f.read().split()]
    except OSError:
        return []


def check_trace(trace, spool, acked):
    """The syscall-order proof (see test_every_250_follows_a_wal_sync_under_strace).
    Returns (calls, wal_syncs, per-message (read start, reply start) windows)."""
    calls, problems = strace_log.parse(trace)
    assert not problems, problems[:5]
    spool_real = os.path.realpath(spool)
    wal_rx = re.compile(re.escape(spool_real) + r"/\d+\.log$")

    # WAL syncs (fdatasync/fsync of spool/NNNNNN.log). RocksDB also syncs the
    # MANIFEST, OPTIONS, SST files and the directory; those do not make a
    # message durable, so they are left out on purpose.
    wal_syncs = sorted((c for c in calls if c.name in SYNCS and c.target
                        and wal_rx.search(c.target)), key=lambda c: c.start)
    for s in wal_syncs:
        assert s.result == 0 and s.end is not None, s
    sync_starts = [s.start for s in wal_syncs]

    # WAL contents: rebuild each WAL file from its write() calls (fresh spool:
    # strace saw every write since the file was created), split it into log
    # records (one WriteBatch each) and remember which write() call completed
    # each record.
    wal_writes = {}
    for c in calls:
        if c.name in WRITES and c.target and wal_rx.search(c.target):
            assert c.name == "write" and c.ok and not c.truncated, c.line
            wal_writes.setdefault(c.target, []).append(c)
    assert wal_writes, "no WAL write seen"
    batch_write = {}  # message id (hex) -> the write() call that completed its final batch
    for path, writes in wal_writes.items():
        writes.sort(key=lambda c: c.start)
        stream = b"".join(w.data for w in writes)
        ends, pos = [], 0
        for w in writes:
            assert w.result == len(w.data)
            pos += len(w.data)
            ends.append(pos)
        records, parsed = strace_log.wal_records(stream)
        assert parsed == len(stream), f"{path}: WAL parse stopped at {parsed} of {len(stream)}"
        for rec, end in records:
            w = writes[bisect_left(ends, end)]
            for msg_id in acked:
                if bytes.fromhex(msg_id) in rec:
                    # Small messages: body, envelope and queue record are all
                    # in the one synced batch, so exactly one record has the id.
                    assert msg_id not in batch_write, f"{msg_id} in two WAL records"
                    batch_write[msg_id] = w
    assert set(batch_write) == set(acked)

    # Socket traffic, per connection (fd + its TCP endpoints, so a reused fd
    # number is a different key).
    reads, replies = {}, {}
    for c in calls:
        if not c.is_socket():
            continue
        key = (c.fd, c.target)
        if c.name in READS and c.ok and c.result > 0:
            assert c.end is not None
            reads.setdefault(key, []).append(c)
        elif c.name in WRITES:
            for m in re.finditer(rb"250 2\.0\.0 OK id=([0-9a-f]{32})\r\n", c.data):
                replies[m.group(1).decode()] = (key, c)
    assert set(replies) == set(acked), "the 250 replies on the wire differ from the client's"
    for rs in reads.values():
        rs.sort(key=lambda c: c.start)

    msg_windows = []
    for msg_id, (key, reply) in replies.items():
        assert reply.ok, reply.line
        rs = reads[key]
        i = bisect_left([r.start for r in rs], reply.start) - 1
        assert i >= 0, f"no read before the 250 for {msg_id}"
        read = rs[i]  # the last read on this connection before the 250
        assert read.data.endswith(b"\r\n.\r\n"), (msg_id, read.data[-40:])
        assert read.end <= reply.start
        wal_write = batch_write[msg_id]
        assert wal_write.start >= read.end, f"{msg_id}: WAL write before end of data was read"
        # A WAL sync that began after both the end of data was read and the
        # message's batch was written, and finished before the 250 was written.
        after = max(read.end, wal_write.end)
        j = bisect_left(sync_starts, after)
        ok = any(s.end <= reply.start for s in wal_syncs[j:] if s.start < reply.start)
        assert ok, (f"{msg_id}: no WAL sync between the read of its end of data "
                    f"(line {read.line}, {read.end:.6f}) / its WAL write (line {wal_write.line}) "
                    f"and its 250 (line {reply.line}, {reply.start:.6f})")
        msg_windows.append((read.start, reply.start))

    return calls, wal_syncs, msg_windows


def test_every_250_follows_a_wal_sync_under_strace(gateway, tmp_path):
    conns, per_conn = 50, 10
    total = conns * per_conn
    t0 = time.monotonic()
    trace = tmp_path / "strace.out"
    spool = tmp_path / "spool"
    # -T gives each call's duration (its end = start + duration), -yy names
    # each fd (file path / TCP endpoints), -xx prints every byte as \xHH (exact
    # decoding), -s is large enough for whole WAL writes and replies. Asio here
    # reads sockets with recvfrom and writes with sendto (read/write and the
    # msg variants are traced too, in case); RocksDB writes the WAL with write.
    # No --seccomp-bpf: its filter outlives strace, so a tracee that strace
    # leaves behind gets ENOSYS from the traced syscalls (even the write in
    # Asio's signal handler: SIGTERM no longer works). It saves little here.
    strace = ["strace", "-f", "-ttt", "-T", "-yy", "-xx", "-s", "1048576",
              "-e", "trace=fdatasync,fsync,write,writev,sendto,sendmsg,read,readv,recvfrom,recvmsg",
              "-o", str(trace)]
    gw = gateway(workers=2, spool=spool, wrapper=strace)
    # gw.proc is strace and the gateway is its child: stop the gateway itself
    # by PID (SIGTERM: clean drain and exit, still traced); strace then exits
    # with its status. Stopping strace instead would detach and orphan it.
    child = None
    try:
        child = wait_for(lambda: _children(gw.proc.pid), timeout=10, what="strace's child")[0]
        senders = Senders(gw.host, gw.port, conns, per_conn, "strace", timeout=120).start()
        senders.join(timeout=240)
        acked = senders.snapshot()
        assert senders.bad_replies == [] and senders.conn_errors == [], \
            (senders.bad_replies[:3], senders.conn_errors[:3])
        assert len(acked) == total
        os.kill(child, signal.SIGTERM)
        assert gw.proc.wait(timeout=60) == 0  # strace exits with its tracee's status
    finally:
        if gw.proc.poll() is None:  # failed: kill the tracee by PID, then strace ends
            for pid in _children(gw.proc.pid):
                if child is None or pid == child:
                    os.kill(pid, signal.SIGKILL)
            try:
                gw.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                gw.stop()
    gw._reader.join(timeout=5)
    stats = re.search(r"stopped: .* (\d+) messages received, (\d+) spool rounds, (\d+) syncs",
                      gw.log())
    assert stats, gw.log()
    assert int(stats.group(1)) == total

    calls, wal_syncs, msg_windows = check_trace(trace, spool, acked)
    first = min(w[0] for w in msg_windows)
    last = max(w[1] for w in msg_windows)
    syncs = [s for s in wal_syncs if first <= s.start <= last]
    assert 0 < len(syncs) < total, (len(syncs), total)
    print(f"\n[strace] {total} messages over {conns} connections: {len(syncs)} WAL syncs "
          f"while receiving ({total / len(syncs):.1f} messages per sync; gateway counted "
          f"{stats.group(2)} rounds, {stats.group(3)} syncs; {len(wal_syncs)} WAL syncs in "
          f"all), {len(calls)} syscalls traced; {time.monotonic() - t0:.1f}s")
