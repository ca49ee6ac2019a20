"""Real peers for delivery tests, each started on loopback and stopped by PID:
dnsmasq serving MX/A records for *.test, a dnspython server whose records
can change and that sets AD like a validating resolver (ZoneServer), and
aiosmtpd servers that record what they receive and answer per recipient as
a test tells them to."""
import asyncio
import os
import re
import socket
import subprocess
import threading
import time

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP as AioSMTP

from conftest import wait_for


def free_port(host="127.0.0.1"):
    """A port free for both UDP and TCP on host (dnsmasq needs both)."""
    for _ in range(50):
        t = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        t.bind((host, 0))
        port = t.getsockname()[1]
        u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        try:
            u.bind((host, port))
            return port
        except OSError:
            continue
        finally:
            u.close()
            t.close()
    raise RuntimeError("no free port")


class Dnsmasq:
    """dnsmasq on 127.0.0.1:<port>, authoritative-ish for .test: unknown names
    get NXDOMAIN. `records` are extra dnsmasq options (--mx-host=..., ...)."""

    def __init__(self, records, ttl=1, port=None, address="127.0.0.1"):
        # port/address: e.g. 53 on a 127.x.y.z of its own, for programs that
        # use the system resolver (a resolv.conf bind-mounted under unshare -m).
        self.port = port or free_port(address)
        self.address = address
        self.cmd = ["/usr/sbin/dnsmasq", "--no-resolv", "--no-hosts", "--keep-in-foreground",
                    "--no-daemon", f"--port={self.port}", f"--listen-address={address}",
                    "--bind-interfaces", "--local=/test/", f"--local-ttl={ttl}", "--pid-file=",
                    "--log-facility=-", "--conf-file=/dev/null", "--user=root"] + list(records)
        self.proc = subprocess.Popen(self.cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        self.lines = []
        threading.Thread(target=self._read, daemon=True).start()
        try:
            wait_for(lambda: self.proc.poll() is not None or any("started" in l for l in self.lines),
                     10, what="dnsmasq start")
            if self.proc.poll() is not None:
                raise AssertionError("dnsmasq failed: " + "\n".join(self.lines))
        except Exception:
            self.stop()
            raise

    def _read(self):
        for raw in self.proc.stderr:
            self.lines.append(raw.decode(errors="replace"))

    @property
    def server(self):
        return f"{self.address}:{self.port}"

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)


class Recorder:
    """aiosmtpd handler: records messages and connections; `rcpt_reply` maps a
    recipient (or "*") to a reply string or a list of replies used in turn."""

    def __init__(self, rcpt_reply=None, data_reply="250 2.0.0 OK", data_delay=0.0):
        self.rcpt_reply = dict(rcpt_reply or {})
        self.data_reply = data_reply
        self.data_delay = data_delay  # seconds each DATA takes (a slow remote server)
        self.messages = []
        self.data_started = 0  # DATA commands whose content arrived (before data_delay)
        self.sessions = set()
        self.rcpt_calls = []
        self.lock = threading.Lock()
        # TCP connections as the server saw them (CountingSMTP below).
        self.active = 0
        self.max_active = 0
        self.connections = 0

    def _pick(self, key):
        v = self.rcpt_reply.get(key, self.rcpt_reply.get("*"))
        if isinstance(v, list):
            return v.pop(0) if len(v) > 1 else v[0]
        return v

    async def handle_EHLO(self, server, session, envelope, hostname, responses):
        with self.lock:
            self.sessions.add(id(session))
        session.host_name = hostname
        return responses

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        with self.lock:
            self.rcpt_calls.append(address)
            reply = self._pick(address)
        if reply and not reply.startswith("250"):
            return reply
        envelope.rcpt_tos.append(address)
        return "250 2.1.5 OK"

    async def handle_DATA(self, server, session, envelope):
        with self.lock:
            self.data_started += 1
        if self.data_delay:
            await asyncio.sleep(self.data_delay)
        with self.lock:
            self.messages.append({"from": envelope.mail_from, "to": list(envelope.rcpt_tos),
                                  "data": envelope.original_content or envelope.content,
                                  "session": id(session), "mail_options": envelope.mail_options,
                                  "tls": session.ssl is not None, "t": time.monotonic(),
                                  "peer": session.peer[0] if session.peer else None,
                                  "helo": session.host_name})
        return self.data_reply

    def count(self):
        with self.lock:
            return len(self.messages)


class CountingSMTP(AioSMTP):
    """aiosmtpd's SMTP, counting concurrent connections into its Recorder."""

    def connection_made(self, transport):
        h = self.event_handler
        with h.lock:
            h.active += 1
            h.connections += 1
            h.max_active = max(h.max_active, h.active)
        super().connection_made(transport)

    def connection_lost(self, exc):
        h = self.event_handler
        with h.lock:
            h.active -= 1
        super().connection_lost(exc)


class CountingController(Controller):
    def factory(self):
        return CountingSMTP(self.handler, **self.SMTP_kwargs)


class Sink:
    """An aiosmtpd server on host:port with a Recorder; with `tls_context` (an
    ssl.SSLContext) it offers STARTTLS."""

    def __init__(self, host, port, handler=None, smtputf8=True, tls_context=None):
        self.handler = handler or Recorder()
        kwargs = {"decode_data": False}
        if tls_context is not None:
            kwargs["tls_context"] = tls_context
        self.controller = CountingController(self.handler, hostname=host, port=port,
                                     enable_SMTPUTF8=smtputf8, ready_timeout=10,
                                     server_kwargs=kwargs)
        self.controller.start()

    def connection_counts(self):
        """(connections open now, connections ever)."""
        with self.handler.lock:
            return self.handler.active, self.handler.connections

    def stop(self):
        self.controller.stop()


class SlowDns:
    """A UDP DNS server on 127.0.0.1 that answers every query with NXDOMAIN
    after `delay` seconds (None: never answers). dnsmasq forwards a zone to it
    with --server=/zone/127.0.0.1#port."""

    def __init__(self, delay=None):
        self.delay = delay
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.queries = 0
        self._stop = False
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self):
        self.sock.settimeout(0.1)
        while not self._stop:
            try:
                data, peer = self.sock.recvfrom(4096)
            except (socket.timeout, OSError):
                continue
            self.queries += 1
            if self.delay is None or len(data) < 12:
                continue
            # Header: same id, QR + RD + RA, rcode 3 (NXDOMAIN), the question
            # echoed (without the query's additional records, e.g. EDNS).
            end = 12
            while end < len(data) and data[end] != 0:
                end += 1 + data[end]
            question = data[12:end + 5]
            reply = data[:2] + b"\x81\x83\x00\x01\x00\x00\x00\x00\x00\x00" + question
            threading.Timer(self.delay, self._send, (reply, peer)).start()

    def _send(self, reply, peer):
        try:
            self.sock.sendto(reply, peer)
        except OSError:
            pass

    def stop(self):
        self._stop = True
        self._thread.join(5)
        self.sock.close()


class ZoneServer:
    """A small DNS server (dnspython) on 127.0.0.1, UDP and TCP on one port,
    whose records a test can change while the gateway runs (dnsmasq's cannot
    be): `records` maps (name, type) to a list of rdata texts, or to one of the
    faults "SERVFAIL", "REFUSED" (that rcode) or "DROP" (no answer at all);
    TTL 1 (the gateway's cache keeps answers its minimum of 5 s). A name with a
    CNAME is followed inside the zone, as a recursive resolver would. Names in
    `truncate` get an empty answer with the TC bit over UDP (RFC 1035 §4.2.1)
    and the full one over TCP. Unknown names get NXDOMAIN.
    It plays a validating resolver too: answers for names in `secure` zones
    (the name or a suffix of it) carry AD — only when the query asks for
    DNSSEC information (AD or EDNS0 DO set), as RFC 6840 §5.7 / RFC 3225 say
    a resolver does — and names in `servfail` get SERVFAIL (what a
    validating resolver answers for bogus data). `queries` lists
    (name, type, asked_dnssec) and `via` (name, type, "udp"|"tcp") as asked."""

    def __init__(self, records, truncate=(), secure=(), servfail=()):
        import dns.message  # python3-dnspython (scripts/setup)
        import dns.rdatatype
        self._dns_message, self._rdatatype = dns.message, dns.rdatatype
        self.records = dict(records)
        self.truncate = set(truncate)
        self.secure = tuple(secure)
        self.servfail = set(servfail)
        self.queries = []
        self.via = []
        self.udp, self.tcp = self._bind_pair()
        self.udp.settimeout(0.1)
        self.port = self.udp.getsockname()[1]
        self.tcp.listen(16)
        self.tcp.settimeout(0.1)
        self._stop = False
        self.threads = [threading.Thread(target=self._serve_udp, daemon=True),
                        threading.Thread(target=self._serve_tcp, daemon=True)]
        for t in self.threads:
            t.start()

    @staticmethod
    def _bind_pair():
        """A UDP and a TCP socket bound to one port on 127.0.0.1. The kernel
        picks the UDP port; the same TCP port may belong to someone else (a
        sink, another test), so try again with a new one when it does."""
        for _ in range(50):
            udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            udp.bind(("127.0.0.1", 0))
            tcp = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            tcp.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                tcp.bind(("127.0.0.1", udp.getsockname()[1]))
                return udp, tcp
            except OSError:
                udp.close()
                tcp.close()
        raise RuntimeError("no port free for both UDP and TCP on 127.0.0.1")

    def answer(self, data, transport):
        """The wire reply to query `data`, or None to stay silent."""
        import dns.flags
        import dns.name
        import dns.rcode
        import dns.rdataclass
        import dns.rrset
        try:
            q = self._dns_message.from_wire(data)
        except Exception:
            return None
        r = self._dns_message.make_response(q)
        question = q.question[0]
        name = question.name.to_text().rstrip(".").lower()
        kind = self._rdatatype.to_text(question.rdtype)
        asked = bool(q.flags & dns.flags.AD) or bool(q.ednsflags & dns.flags.DO)
        self.queries.append((name, kind, asked))
        self.via.append((name, kind, transport))
        if name in self.servfail:
            r.set_rcode(dns.rcode.SERVFAIL)
            return r.to_wire()
        if asked and any(name == z or name.endswith("." + z) for z in self.secure):
            r.flags |= dns.flags.AD
        if transport == "udp" and name in self.truncate:
            r.flags |= dns.flags.TC
            return r.to_wire()
        owner = question.name
        for _ in range(8):  # a CNAME chain inside the zone
            texts = self.records.get((name, kind))
            if texts in ("SERVFAIL", "REFUSED"):
                r.set_rcode(dns.rcode.from_text(texts))
                return r.to_wire()
            if texts == "DROP":
                return None
            if texts:
                r.answer.append(dns.rrset.from_text_list(owner, 1, dns.rdataclass.IN,
                                                         question.rdtype, texts))
                break
            cname = self.records.get((name, "CNAME"))
            if kind != "CNAME" and cname:
                r.answer.append(dns.rrset.from_text_list(owner, 1, dns.rdataclass.IN,
                                                         "CNAME", cname))
                owner = dns.name.from_text(cname[0])
                name = cname[0].rstrip(".").lower()
                continue
            if not any(n == name for n, _ in self.records):
                r.set_rcode(dns.rcode.NXDOMAIN)
            break
        return r.to_wire()

    def _serve_udp(self):
        while not self._stop:
            try:
                data, peer = self.udp.recvfrom(4096)
            except (socket.timeout, OSError):
                continue
            reply = self.answer(data, "udp")
            if reply is not None:
                self.udp.sendto(reply, peer)

    def _serve_tcp(self):
        while not self._stop:
            try:
                conn, _ = self.tcp.accept()
            except (socket.timeout, OSError):
                continue
            threading.Thread(target=self._serve_tcp_conn, args=(conn,), daemon=True).start()

    def _serve_tcp_conn(self, conn):
        conn.settimeout(10)
        try:
            while not self._stop:
                head = conn.recv(2, socket.MSG_WAITALL)
                if len(head) < 2:
                    return
                data = conn.recv(int.from_bytes(head, "big"), socket.MSG_WAITALL)
                reply = self.answer(data, "tcp")
                if reply is None:
                    return
                conn.sendall(len(reply).to_bytes(2, "big") + reply)
        except OSError:
            pass
        finally:
            conn.close()

    @property
    def server(self):
        return f"127.0.0.1:{self.port}"

    def stop(self):
        self._stop = True
        for t in self.threads:
            t.join(5)
        self.udp.close()
        self.tcp.close()
