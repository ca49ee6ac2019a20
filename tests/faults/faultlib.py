"""Shared parts of the fault suite (tests/faults, issue 14): puts the
integration suite's helpers on sys.path (they are imported, never copied),
and adds what only the fault tests need: a load generator of uniquely
numbered messages that files every number under exactly one outcome as the
client saw it (acknowledged, refused, unanswered), and a count of what the
sinks received per number and recipient. The promise checked with them is
RFC 5321 §6.1: a message answered 250 at the end of data is never lost."""
import collections
import contextlib
import json
import os
import random
import re
import socket
import sys
import threading

INTEGRATION = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "integration")
if INTEGRATION not in sys.path:
    sys.path.insert(0, INTEGRATION)

from conftest import wait_for  # noqa: E402
from rawsmtp import Raw  # noqa: E402

# MAILGATE_SOAK_MINUTES=N: the crash loop and its mixed faults run for N
# minutes instead of their bounded size, and print their totals (scripts/soak).
SOAK_MINUTES = float(os.environ.get("MAILGATE_SOAK_MINUTES", "0") or 0)

SEQ_RX = re.compile(rb"X-Fault-Seq: (\d+)")
OK_ID = re.compile(r"2\.0\.0 OK id=([0-9a-f]{32})")


class Outcome:
    ACKED = "acked"            # 250 at the end of data: the gateway is responsible
    REFUSED = "refused"        # a 4xx/5xx reply: the client still is
    UNANSWERED = "unanswered"  # the connection broke before the final reply: unknown


class LoadGen:
    """`threads` SMTP clients sending numbered messages to `addr` until stop():
    MAIL, every RCPT and DATA pipelined, then the body; each connection sends up
    to `per_conn` messages, then QUITs and reconnects (also after a broken
    connection, retrying while the gateway is down). Message N carries
    `X-Fault-Seq: N` and `Subject: fault N`; rcpts_of(N) says its recipients.
    Every N ends in `outcomes[N]` = (Outcome, detail, recipients accepted)."""

    def __init__(self, addr, rcpts_of, sender="load@sender.test", threads=6, per_conn=20,
                 body_size=0, timeout=30.0):
        self.addr = addr
        self.rcpts_of, self.sender = rcpts_of, sender
        self.per_conn, self.body_size, self.timeout = per_conn, body_size, timeout
        self.lock = threading.Condition()
        self.outcomes = {}
        self.in_progress = set()
        self.next_seq = 0
        self.connect_failures = 0
        self.malformed = 0  # replies that were not SMTP replies (a bug, wherever it is)
        self._stop = threading.Event()
        self.threads = [threading.Thread(target=self._run, daemon=True) for _ in range(threads)]

    def start(self):
        for t in self.threads:
            t.start()
        return self

    def stop(self, timeout=60.0):
        """Lets every client finish the message it is sending, then joins them."""
        self._stop.set()
        for t in self.threads:
            t.join(timeout)
            assert not t.is_alive(), "a load client did not finish (a reply never came?)"

    def body(self, seq):
        head = (f"From: <{self.sender}>\r\nSubject: fault {seq}\r\n"
                f"Message-ID: <fault-{seq}@load.test>\r\nX-Fault-Seq: {seq}\r\n\r\n"
                f"message {seq}\r\n").encode()
        line = b"0123456789abcdefghijklmnopqrstuvwxyz0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ\r\n"
        return head + line * (self.body_size // len(line))

    def _file(self, seq, outcome, detail, rcpts=()):
        with self.lock:
            self.in_progress.discard(seq)
            self.outcomes[seq] = (outcome, detail, tuple(rcpts))
            self.lock.notify_all()

    def _run(self):
        while not self._stop.is_set():
            try:
                raw = Raw(*self.addr, timeout=self.timeout)
            except OSError:
                with self.lock:
                    self.connect_failures += 1
                self._stop.wait(0.05)
                continue
            try:
                code, _ = raw.reply()
                if code == 220 and raw.cmd("EHLO load.test")[0] == 250:
                    for _ in range(self.per_conn):
                        if self._stop.is_set() or not self._send_one(raw):
                            break
                    else:
                        raw.cmd("QUIT")
                else:
                    self._stop.wait(0.05)  # e.g. 421 while shutting down
            except (OSError, ConnectionError, ValueError):
                pass  # between messages: nothing to file
            finally:
                raw.close()

    def _send_one(self, raw):
        """Sends one message; False when the connection cannot go on."""
        with self.lock:
            seq = self.next_seq
            self.next_seq += 1
            self.in_progress.add(seq)
        rcpts = self.rcpts_of(seq)
        stage = "MAIL"
        try:
            raw.send(f"MAIL FROM:<{self.sender}>\r\n" +
                     "".join(f"RCPT TO:<{r}>\r\n" for r in rcpts) + "DATA\r\n")
            replies = []
            for stage in ["MAIL"] + ["RCPT"] * len(rcpts) + ["DATA"]:
                code, lines = raw.reply()
                replies.append((stage, code, lines))
                if code == 421:  # closing the connection (e.g. shutting down)
                    self._file(seq, Outcome.REFUSED, (stage, code, " ".join(lines)))
                    return False
            if replies[-1][1] != 354:
                stage, code, lines = next(r for r in replies if r[1] >= 400)
                self._file(seq, Outcome.REFUSED, (stage, code, " ".join(lines)))
                if code == 452:
                    self._stop.wait(0.05)  # a full disk: do not spin
                return True
            rcpt_replies = [r[1] for r in replies[1:-1]]
            accepted = [r for r, code in zip(rcpts, rcpt_replies) if code == 250]
            stage = "end of data"
            raw.send(self.body(seq) + b".\r\n")
            code, lines = raw.reply()
            m = OK_ID.search(lines[0]) if code == 250 else None
            if m:
                self._file(seq, Outcome.ACKED, m.group(1), accepted)
                return True
            self._file(seq, Outcome.REFUSED, (stage, code, " ".join(lines)))
            return code != 421
        except (OSError, ConnectionError) as e:  # includes socket.timeout
            self._file(seq, Outcome.UNANSWERED, (stage, repr(e)))
            return False
        except ValueError as e:  # not an SMTP reply: kept for the test to see
            self._file(seq, Outcome.UNANSWERED, (stage, "malformed reply: " + repr(e)))
            with self.lock:
                self.malformed += 1
            return False

    def count(self, outcome):
        with self.lock:
            return sum(1 for o in self.outcomes.values() if o[0] == outcome)

    def wait_acked(self, n, timeout, what):
        """Waits until at least n more messages than now are acknowledged."""
        with self.lock:
            target = sum(1 for o in self.outcomes.values() if o[0] == Outcome.ACKED) + n
        wait_for(lambda: self.count(Outcome.ACKED) >= target, timeout, interval=0.01, what=what)

    def snapshot(self):
        with self.lock:
            return dict(self.outcomes)


def fixed_port(host="127.0.0.1"):
    """A free TCP port below the kernel's ephemeral range, for a gateway that
    restarts on the same port: while it is down, a client retrying on
    loopback could otherwise be given that very port as its own and connect
    to itself (TCP simultaneous open), and the restart could not bind it."""
    with open("/proc/sys/net/ipv4/ip_local_port_range") as f:
        ephemeral_low = int(f.read().split()[0])
    rng = random.Random()
    for _ in range(200):
        port = rng.randrange(10000, ephemeral_low)
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            try:
                s.bind((host, port))
                return port
            except OSError:
                continue
    raise RuntimeError("no free port below the ephemeral range")


def is_dsn(msg):
    return msg["from"] in ("", "<>")


def dsn_message_ids(*message_lists):
    """{seq: set of the DSNs' own Message-IDs}: copies of one DSN share its
    Message-ID; a DSN made twice would not."""
    out = collections.defaultdict(set)
    for messages in message_lists:
        for m in list(messages):
            found = SEQ_RX.search(m["data"])
            if found and is_dsn(m):
                own = re.search(rb"^Message-ID: (\S+)\r$", m["data"].split(b"\r\n\r\n")[0] + b"\r",
                                re.M | re.I)
                out[int(found.group(1))].add(own.group(1) if own else None)
    return out


def arrivals(*message_lists):
    """(per (seq, recipient) arrivals, per seq DSN arrivals) over the messages
    the sinks recorded (dicts with "from", "to", "data")."""
    delivered, dsns = collections.Counter(), collections.Counter()
    for messages in message_lists:
        for m in list(messages):
            found = SEQ_RX.search(m["data"])
            if not found:
                continue
            seq = int(found.group(1))
            if is_dsn(m):
                dsns[seq] += 1
            else:
                for r in m["to"]:
                    delivered[(seq, r)] += 1
    return delivered, dsns


def connection_counts(peers):
    """(connections open now, connections ever) over sinks (peers.Sink) and
    hostile remotes: an upper bound of the transactions in flight."""
    active = total = 0
    for p in peers:
        a, t = p.connection_counts()
        active, total = active + a, total + t
    return active, total


def queue_empty(api):
    """True when the gateway (through its admin API, test_http_api.Api) has
    nothing scheduled, ready or in flight."""
    status, q = api.json("GET", "/api/v1/queue")
    t = q["totals"]
    return status == 200 and t["scheduled"] + t["ready"] + t["in_flight"] == 0


@contextlib.contextmanager
def gateway_log_on_failure(gw_of):
    """Adds the tail of the gateway's log (gw_of(): the Gateway running now)
    to an assertion that fails inside the block."""
    try:
        yield
    except AssertionError as e:
        gw = gw_of()
        tail = gw.log()[-4000:] if gw is not None else "(no gateway)"
        raise AssertionError(f"{e}\n--- gateway log (exit {gw and gw.proc.poll()}) ---\n{tail}") \
            from e


def read_delivery_log(path):
    """(events, torn, merged) of a delivery log written by gateways that were
    killed: a kill -9 may cut the last record short (a torn line: tolerated);
    a line holding a cut record and a whole one glued after it (merged: the
    restart appended without a newline) loses that record, a bug."""
    events, torn, merged = [], 0, 0
    with open(path, "rb") as f:
        for raw in f:
            line = raw.decode("utf-8", "replace").rstrip("\n")
            try:
                events.append(json.loads(line))
                continue
            except ValueError:
                torn += 1
            for i in range(1, len(line)):
                if line.startswith('{"', i):
                    try:
                        json.loads(line[i:])
                        merged += 1
                        break
                    except ValueError:
                        pass
    return events, torn, merged
