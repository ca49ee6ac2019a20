"""Shared plumbing for the bench/ scripts (compare, rss, startup).

Everything here runs on loopback only. Every process a script starts is
registered in PROCS and stopped by its own PID on exit, on an exception and
on SIGINT/SIGTERM/SIGHUP; every temporary directory is removed the same way.
"""

import atexit
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DEFAULT_BIN = os.path.join(ROOT, "build", "mailgate")
DEFAULT_CONF = os.path.join(ROOT, "conf", "mailgate.lua")
SMTP_SOURCE = shutil.which("smtp-source") or "/usr/sbin/smtp-source"
SMTP_SINK = shutil.which("smtp-sink") or "/usr/sbin/smtp-sink"

SENDER = "bench@example.org"
RECIPIENT = "rcpt@example.com"
# End-to-end targets deliver to this domain only: the loopback dnsmasq answers
# for .test (RFC 2606), never a real domain, and its MX is 127.0.0.1.
E2E_DOMAIN = "bench.test"
E2E_RECIPIENT = "rcpt@" + E2E_DOMAIN
DNSMASQ = shutil.which("dnsmasq") or "/usr/sbin/dnsmasq"
POSTFIX = shutil.which("postfix") or "/usr/sbin/postfix"
HELO = "bench.example.org"


# --------------------------------------------------------------------------
# cleanup: processes by PID, temp dirs


class _Registry:
    def __init__(self):
        self.procs = []  # subprocess.Popen, in start order
        self.dirs = []
        self.stoppers = []  # callables for what is not one Popen (a Postfix instance)
        self.lock = threading.Lock()
        self.done = False

    def add_proc(self, p):
        with self.lock:
            self.procs.append(p)
        return p

    def add_stopper(self, fn):
        with self.lock:
            self.stoppers.append(fn)
        return fn

    def forget_stopper(self, fn):
        with self.lock:
            if fn in self.stoppers:
                self.stoppers.remove(fn)

    def add_dir(self, d):
        with self.lock:
            self.dirs.append(d)
        return d

    def forget_dir(self, d):
        with self.lock:
            if d in self.dirs:
                self.dirs.remove(d)

    def cleanup(self):
        with self.lock:
            procs, self.procs = self.procs[::-1], []
            dirs, self.dirs = self.dirs[::-1], []
            stoppers, self.stoppers = self.stoppers[::-1], []
        for fn in stoppers:
            try:
                fn()
            except Exception as e:  # keep cleaning up
                print(f"# cleanup: {e}", file=sys.stderr)
        for p in procs:
            stop_process(p, sig=signal.SIGTERM, timeout=40)
        for d in dirs:
            shutil.rmtree(d, ignore_errors=True)


PROCS = _Registry()


def stop_process(p, sig=signal.SIGTERM, timeout=40):
    """Signal one process by its PID, wait, SIGKILL it if it does not exit."""
    if p.poll() is not None:
        return p.returncode
    try:
        os.kill(p.pid, sig)
    except ProcessLookupError:
        pass
    try:
        return p.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        try:
            os.kill(p.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        return p.wait()


def _on_signal(signum, _frame):
    raise SystemExit(128 + signum)


def install_cleanup():
    atexit.register(PROCS.cleanup)
    for s in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(s, _on_signal)


def tempdir(prefix, parent=None):
    return PROCS.add_dir(tempfile.mkdtemp(prefix=prefix, dir=parent))


# --------------------------------------------------------------------------
# machine state


def loadavg():
    with open("/proc/loadavg") as f:
        return tuple(float(x) for x in f.read().split()[:3])


def load_str():
    a, b, c = loadavg()
    return f"{a:.2f} {b:.2f} {c:.2f}"


def cpu_jiffies():
    """(busy, total) jiffies of the whole machine from /proc/stat."""
    with open("/proc/stat") as f:
        v = [int(x) for x in f.readline().split()[1:]]
    idle = v[3] + v[4]  # idle + iowait
    total = sum(v[:8])  # without guest (already in user)
    return total - idle, total


def machine_cpu_seconds():
    return cpu_jiffies()[0] / os.sysconf("SC_CLK_TCK")


def steal_seconds():
    """CPU time the hypervisor gave to someone else (a VM's noisy neighbours)."""
    with open("/proc/stat") as f:
        v = f.readline().split()
    return int(v[8]) / os.sysconf("SC_CLK_TCK") if len(v) > 8 else 0.0


def cpu_busy(window=3.0):
    """Percent of all CPUs busy over the next `window` seconds."""
    b0, t0 = cpu_jiffies()
    time.sleep(window)
    b1, t1 = cpu_jiffies()
    return 100.0 * (b1 - b0) / max(1, t1 - t0)


def wait_quiet(max_busy, max_wait, log=print):
    """Poll until the machine is quiet: under max_busy percent of all CPUs busy
    over 3 s (other engineers' builds and tests), or give up after max_wait s.
    Returns the last busy percentage. The load average is too slow for this: it
    still shows our own previous run a minute later."""
    if max_busy <= 0 or max_busy >= 100:
        return None
    t0 = time.monotonic()
    announced = False
    while True:
        busy = cpu_busy()
        if busy <= max_busy or time.monotonic() - t0 >= max_wait:
            if announced or busy > max_busy:
                log(f"# machine {busy:.0f}% busy, load {load_str()}, after {time.monotonic() - t0:.0f}s"
                    + ("" if busy <= max_busy else " (still busy; measuring anyway)"))
            return busy
        if not announced:
            log(f"# machine {busy:.0f}% busy (load {load_str()}) > {max_busy}%: "
                f"waiting up to {max_wait:.0f}s for a quiet machine")
            announced = True


def raise_nofile(n):
    """Raise RLIMIT_NOFILE (inherited by the programs started here) to at least n."""
    import resource
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft >= n:
        return soft
    try:
        if hard == resource.RLIM_INFINITY or hard >= n:
            resource.setrlimit(resource.RLIMIT_NOFILE, (n, hard))
        else:
            resource.setrlimit(resource.RLIMIT_NOFILE, (n, n))  # root may raise the hard limit
    except (ValueError, OSError):
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


def free_port():
    """A currently free loopback port (for programs that cannot listen on port 0)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def free_port_udp_tcp():
    """A loopback port free for both UDP and TCP (dnsmasq listens on both)."""
    for _ in range(50):
        t = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        try:
            t.bind(("127.0.0.1", 0))
            port = t.getsockname()[1]
            u.bind(("127.0.0.1", port))
            return port
        except OSError:
            continue
        finally:
            u.close()
            t.close()
    raise RuntimeError("no free UDP+TCP loopback port")


def wait_port(port, timeout=10.0, proc=None):
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"process {proc.pid} exited with {proc.returncode} before listening")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return
        except OSError:
            time.sleep(0.02)
    raise RuntimeError(f"nothing listening on 127.0.0.1:{port} after {timeout}s")


# --------------------------------------------------------------------------
# /proc readings


def proc_status(pid):
    """VmRSS, VmHWM (KiB) and Threads of a process."""
    out = {}
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            k, _, v = line.partition(":")
            if k in ("VmRSS", "VmHWM", "RssAnon", "RssFile"):
                out[k] = int(v.split()[0])
            elif k == "Threads":
                out[k] = int(v)
    return out


def reset_hwm(pid):
    """Reset VmHWM to the current RSS (Linux: write 5 to clear_refs). True if it worked."""
    try:
        with open(f"/proc/{pid}/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


_CLK = os.sysconf("SC_CLK_TCK")


def thread_cpu(pid):
    """{tid: (comm, cpu_seconds)} for every thread of pid."""
    out = {}
    try:
        tids = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return out
    for tid in tids:
        try:
            with open(f"/proc/{pid}/task/{tid}/stat") as f:
                s = f.read()
        except OSError:
            continue
        comm = s[s.index("(") + 1:s.rindex(")")]
        fields = s[s.rindex(")") + 2:].split()
        utime, stime = int(fields[11]), int(fields[12])
        out[int(tid)] = (comm, (utime + stime) / _CLK)
    return out


def process_cpu(pid, children=False):
    """CPU seconds of pid; with children=True plus those of its exited and
    reaped children (cutime + cstime)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            s = f.read()
    except OSError:
        return 0.0
    fields = s[s.rindex(")") + 2:].split()
    n = int(fields[11]) + int(fields[12])
    if children:
        n += int(fields[13]) + int(fields[14])
    return n / _CLK


def proc_starttime(pid):
    """Start time (clock ticks since boot) of pid, or None: with the PID it
    names one process (a PID reused by another process has another start time)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            s = f.read()
    except OSError:
        return None
    return int(s[s.rindex(")") + 2:].split()[19])


def mib(kib):
    return f"{kib / 1024:.1f}"


# --------------------------------------------------------------------------
# mailgate


_ANSI = re.compile(r"\x1b\[[0-9;]*m")
STOPPED_RE = re.compile(
    r"stopped: (\d+) connections, (\d+) messages received, (\d+) spool rounds, (\d+) syncs")



_LIFTED = {}


def abuse_limits_lifted(binary, conf):
    """--set arguments that take the edge's abuse limits out of a benchmark:
    no greeting pause (300 ms per connection by default) and no caps on
    connections per IP or per listener (smtp-source opens them all from
    127.0.0.1). Binaries from before these settings existed get none."""
    key = (binary, conf)
    if key not in _LIFTED:
        sets = ["listen.greet_pause=0s", "listen.max_connections_per_ip=0",
                "listen.max_connections=0", "listen.timeouts.min_data_rate=0"]
        args = [binary, "check-config", "--config", conf]
        for s_ in sets:
            args += ["--set", s_]
        ok = subprocess.run(args, capture_output=True).returncode == 0
        _LIFTED[key] = [a for s_ in sets for a in ("--set", s_)] if ok else []
    return _LIFTED[key]

class Mailgate:
    """One `mailgate serve` process on loopback port 0 with its own spool.

    stderr is read by a thread that copies it to <workdir>/mailgate.log and
    records when each line arrived (monotonic seconds since exec)."""

    def __init__(self, binary, conf, spool, workers, logdir, extra_sets=(), nofile=None, env=None):
        self.binary, self.conf, self.spool, self.workers = binary, conf, spool, workers
        self.env = dict(os.environ, **env) if env else None
        self.workdir = logdir  # cwd of mailgate: relative paths of the config land here
        self.logpath = os.path.join(logdir, "mailgate.log")
        self.extra_sets = list(extra_sets)
        self.nofile = nofile
        self.proc = None
        self.port = None
        self.lines = []  # (t_since_exec, text)
        self.cv = threading.Condition()
        self.t_exec = None

    def cmd(self):
        c = [self.binary, "serve", "--config", self.conf,
             "--set", "listen.address=127.0.0.1:0",
             "--set", "http.listen=127.0.0.1:0",
             "--set", f"spool.path={self.spool}",
             "--set", "spool.min_free_space=1MB",
             "--set", f"workers={self.workers}",
             # Benchmarks stay on loopback: no resolver is ever asked (a
             # binary with delivery defers for lack of DNS; the bench
             # recipients exist nowhere), so accepted mail stays in the spool.
             "--set", "dns.servers.1=127.0.0.1:9"]
        c += abuse_limits_lifted(self.binary, self.conf)
        for s in self.extra_sets:
            c += ["--set", s]
        return c

    def start(self, timeout=120):
        self.t_exec = time.monotonic()
        self.proc = PROCS.add_proc(subprocess.Popen(
            self.cmd(), stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE, cwd=self.workdir, env=self.env))
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()
        line = self.wait_for("listening smtp=", timeout)
        self.t_listening = line[0]
        self.port = int(re.search(r"listening smtp=127\.0\.0\.1:(\d+)", line[1]).group(1))
        return self

    def _read(self):
        with open(self.logpath, "a") as log:
            for raw in self.proc.stderr:
                t = time.monotonic() - self.t_exec
                text = _ANSI.sub("", raw.decode("utf-8", "replace")).rstrip("\n")
                log.write(text + "\n")
                log.flush()
                with self.cv:
                    self.lines.append((t, text))
                    self.cv.notify_all()
        with self.cv:
            self.cv.notify_all()

    def wait_for(self, needle, timeout):
        """(t_since_exec, line) of the first stderr line containing needle."""
        deadline = time.monotonic() + timeout
        with self.cv:
            while True:
                for t, text in self.lines:
                    if needle in text:
                        return t, text
                if self.proc.poll() is not None and not self.reader.is_alive():
                    raise RuntimeError(f"mailgate exited ({self.proc.returncode}) before "
                                       f"logging {needle!r}; log: {self.logpath}\n" + self.tail())
                left = deadline - time.monotonic()
                if left <= 0:
                    raise RuntimeError(f"mailgate did not log {needle!r} in {timeout}s\n" + self.tail())
                self.cv.wait(min(left, 0.5))

    def tail(self, n=15):
        with self.cv:
            return "\n".join(t for _, t in self.lines[-n:])

    def status(self):
        return proc_status(self.proc.pid)

    def stop(self, timeout=60):
        """SIGTERM (drain), wait, parse the `stopped:` line. Returns a dict."""
        rc = stop_process(self.proc, signal.SIGTERM, timeout)
        self.reader.join(timeout=5)
        res = {"rc": rc}
        with self.cv:
            for _, text in self.lines:
                m = STOPPED_RE.search(text)
                if m:
                    res.update(connections=int(m.group(1)), messages=int(m.group(2)),
                               rounds=int(m.group(3)), syncs=int(m.group(4)))
                elif " delivery: " in text:  # a binary with outbound delivery
                    res["delivery"] = text.split(" info ", 1)[-1]
        return res


# --------------------------------------------------------------------------
# smtp-sink / smtp-source


_SINK_COUNTERS = re.compile(rb"sess=(\d+) quit=(\d+) mesg=(\d+)")


class SmtpSink:
    """Postfix's smtp-sink on a loopback port (as nobody: it refuses root).

    counters=True runs it with -c: it prints "sess=S quit=Q mesg=M" + CR to
    stdout whenever a session ends, a QUIT is answered or a message's "." is
    received; a thread reads them. `mesg` counts messages accepted, `sess`
    sessions ended (a connection still open is not counted yet). wait_messages()
    gives the time the n-th message arrived; sessions() the sessions ended
    since start() (without start()'s own probe connection)."""

    def __init__(self, backlog=1024, max_conns=1024, extra=(), counters=False):
        self.backlog, self.max_conns, self.extra = backlog, max_conns, list(extra)
        self.counters = counters
        self.proc = None
        self.sess = self.quit = self.mesg = self.sess0 = 0
        self.t_mesg = time.monotonic()  # when mesg last grew
        self.targets = {}  # message count -> monotonic time it was reached
        self.cv = threading.Condition()

    def start(self):
        for _ in range(5):
            self.port = free_port()
            cmd = [SMTP_SINK, "-u", "nobody", "-m", str(self.max_conns), *self.extra,
                   *(["-c"] if self.counters else []), f"127.0.0.1:{self.port}", str(self.backlog)]
            self.proc = PROCS.add_proc(subprocess.Popen(
                cmd, stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE if self.counters else subprocess.DEVNULL, stderr=subprocess.PIPE))
            if self.counters:
                threading.Thread(target=self._read, args=(self.proc,), daemon=True).start()
            try:
                wait_port(self.port, 10, self.proc)
            except RuntimeError:
                stop_process(self.proc)  # port race: try another
                continue
            if self.counters:  # wait_port's probe connection is a session: not counted
                with self.cv:
                    self.cv.wait_for(lambda: self.sess >= 1, 5)
                    self.sess0 = self.sess
            return self
        raise RuntimeError("smtp-sink did not start: " + self.proc.stderr.read().decode(errors="replace"))

    def _read(self, proc):
        fd, buf = proc.stdout.fileno(), b""
        while True:
            chunk = os.read(fd, 65536)
            if not chunk:
                break
            now = time.monotonic()
            buf += chunk
            *done, buf = buf.split(b"\r")
            for rec in reversed(done):  # only the newest complete record matters
                m = _SINK_COUNTERS.search(rec)
                if m:
                    with self.cv:
                        s, q, n = (int(x) for x in m.groups())
                        if n != self.mesg:
                            self.t_mesg = now
                        self.sess, self.quit, self.mesg = s, q, n
                        for want in self.targets:
                            if self.targets[want] is None and n >= want:
                                self.targets[want] = now
                        self.cv.notify_all()
                    break
        with self.cv:
            self.cv.notify_all()

    def expect(self, n):
        """Record the time the sink's message count reaches n (call before the run)."""
        with self.cv:
            if n not in self.targets:
                self.targets[n] = time.monotonic() if self.mesg >= n else None

    def wait_messages(self, n, stall=60.0, log=None):
        """Monotonic time at which the sink had received n messages. Fails if the
        count does not grow for `stall` seconds (e.g. the relay defers)."""
        self.expect(n)
        with self.cv:
            while self.targets[n] is None:
                if self.proc.poll() is not None:
                    raise RuntimeError(f"smtp-sink exited ({self.proc.returncode}) at {self.mesg} of {n} messages")
                if time.monotonic() - self.t_mesg > stall:
                    raise RuntimeError(f"smtp-sink stuck at {self.mesg} of {n} messages for {stall:.0f}s")
                self.cv.wait(0.5)
            return self.targets[n]

    def settle(self, quiet=1.0, timeout=30.0):
        """Wait until the counters have not changed for `quiet` s; return (sessions
        since start, quit, mesg)."""
        t_end = time.monotonic() + timeout
        with self.cv:
            last = (self.sess, self.quit, self.mesg)
        t_last = time.monotonic()
        while time.monotonic() < t_end:
            time.sleep(0.1)
            with self.cv:
                cur = (self.sess, self.quit, self.mesg)
            if cur != last:
                last, t_last = cur, time.monotonic()
            elif time.monotonic() - t_last >= quiet:
                break
        return (last[0] - self.sess0, last[1], last[2])

    def stop(self):
        return stop_process(self.proc, signal.SIGTERM, 10)


class Dnsmasq:
    """dnsmasq on 127.0.0.1:<free port> (UDP and TCP), answering for .test only
    (--local=/test/: other names get no answer from upstream; --no-resolv: there
    is no upstream). `records` are dnsmasq options (--mx-host=..., --host-record=...).
    Runs as root (--user=root) so it needs no unprivileged user setup."""

    def __init__(self, records, ttl=300):
        self.records, self.ttl = list(records), ttl
        self.lines = []
        self.cv = threading.Condition()

    def start(self, timeout=10):
        self.port = free_port_udp_tcp()
        cmd = [DNSMASQ, "--no-resolv", "--no-hosts", "--keep-in-foreground", "--no-daemon",
               f"--port={self.port}", "--listen-address=127.0.0.1", "--bind-interfaces",
               "--local=/test/", f"--local-ttl={self.ttl}", "--pid-file=", "--log-facility=-",
               "--conf-file=/dev/null", "--user=root"] + self.records
        self.proc = PROCS.add_proc(subprocess.Popen(cmd, stdin=subprocess.DEVNULL,
                                                    stdout=subprocess.DEVNULL, stderr=subprocess.PIPE))
        threading.Thread(target=self._read, daemon=True).start()
        deadline = time.monotonic() + timeout
        with self.cv:
            while not any("started" in l for l in self.lines):
                if self.proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError("dnsmasq did not start: " + "".join(self.lines))
                self.cv.wait(0.2)
        return self

    def _read(self):
        for raw in self.proc.stderr:
            with self.cv:
                self.lines.append(raw.decode(errors="replace"))
                self.cv.notify_all()

    @property
    def server(self):
        return f"127.0.0.1:{self.port}"

    def stop(self):
        return stop_process(self.proc, signal.SIGTERM, 10)


class Postfix:
    """A private Postfix instance: config dir <dir>/etc, queue <dir>/queue, data
    <dir>/data, log <dir>/maillog (postlogd), smtpd on 127.0.0.1:<port> only,
    relaying everything to `relayhost` (no DNS: Postfix's resolver is the
    system's, /etc/resolv.conf, which points off this machine). It never reads
    or writes /etc/postfix and never binds port 25; every service runs
    unchrooted (a temp queue has no chroot files).

    Stopping: `postfix -c <dir>/etc stop`, then every process of the instance
    still alive gets SIGKILL by PID: the master (pid file in the queue) and
    every process whose environment has MAIL_CONFIG=<dir>/etc (master passes
    it to all its children: import_environment)."""

    def __init__(self, workdir, relayhost, main_extra=None):
        self.dir = workdir
        self.etc = os.path.join(workdir, "etc")
        self.queue = os.path.join(workdir, "queue")
        self.maillog = os.path.join(workdir, "maillog")
        self.relayhost = relayhost
        self.main_extra = dict(main_extra or {})
        self.port = None
        self.started = False

    def main_cf(self):
        m = {
            "compatibility_level": "3.6",
            "queue_directory": self.queue,
            "data_directory": os.path.join(self.dir, "data"),
            "mail_owner": "postfix",
            "setgid_group": "postdrop",
            "myhostname": "postfix.bench.test",
            "mydomain": "bench-postfix.test",
            "mydestination": "",
            "local_recipient_maps": "",
            "alias_maps": "",
            "alias_database": "",
            "inet_interfaces": "127.0.0.1",
            "inet_protocols": "ipv4",
            "mynetworks": "127.0.0.0/8",
            "relayhost": self.relayhost,
            # No DNS anywhere: no client hostname lookup in smtpd, no MX/A lookup
            # in smtp (the relayhost is a bracketed IP address anyway).
            "smtpd_peername_lookup": "no",
            "smtp_dns_support_level": "disabled",
            "default_process_limit": "100",
            "smtpd_client_connection_count_limit": "0",
            "smtp_connection_cache_on_demand": "yes",
            "maillog_file": self.maillog,
            "maillog_file_prefixes": self.dir,
            "biff": "no",
        }
        m.update(self.main_extra)
        return "".join(f"{k} = {v}\n" for k, v in m.items())

    def master_cf(self):
        svc = [
            f"127.0.0.1:{self.port} inet n - n - - smtpd",
            "pickup    unix  n - n 60    1 pickup",
            "cleanup   unix  n - n -     0 cleanup",
            "qmgr      unix  n - n 300   1 qmgr",
            "rewrite   unix  - - n -     - trivial-rewrite",
            "bounce    unix  - - n -     0 bounce",
            "defer     unix  - - n -     0 bounce",
            "trace     unix  - - n -     0 bounce",
            "verify    unix  - - n -     1 verify",
            "flush     unix  n - n 1000? 0 flush",
            "proxymap  unix  - - n -     - proxymap",
            "proxywrite unix - - n -     1 proxymap",
            "smtp      unix  - - n -     - smtp",
            "relay     unix  - - n -     - smtp",
            "showq     unix  n - n -     - showq",
            "error     unix  - - n -     - error",
            "retry     unix  - - n -     - error",
            "discard   unix  - - n -     - discard",
            "anvil     unix  - - n -     1 anvil",
            "scache    unix  - - n -     1 scache",
            "postlog   unix-dgram n - n - 1 postlogd",
        ]
        return "\n".join(svc) + "\n"

    def _postfix(self, *args, timeout=120):
        return subprocess.run([POSTFIX, "-c", self.etc, *args], stdin=subprocess.DEVNULL,
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=timeout, text=True)

    def log_tail(self, n=15):
        try:
            with open(self.maillog, errors="replace") as f:
                return "".join(f.readlines()[-n:])
        except OSError:
            return "(no maillog)"

    def start(self):
        os.chmod(self.dir, 0o755)  # the postfix user must reach its queue
        os.makedirs(self.etc, exist_ok=True)
        os.makedirs(self.queue, mode=0o755, exist_ok=True)
        self.port = free_port()
        with open(os.path.join(self.etc, "main.cf"), "w") as f:
            f.write(self.main_cf())
        with open(os.path.join(self.etc, "master.cf"), "w") as f:
            f.write(self.master_cf())
        PROCS.add_stopper(self.stop)
        self.started = True
        r = self._postfix("start")
        if r.returncode != 0:
            raise RuntimeError(f"postfix start failed ({r.returncode}): {r.stdout}\n{self.log_tail()}")
        wait_port(self.port, 20)
        return self

    def master_pid(self):
        try:
            with open(os.path.join(self.queue, "pid", "master.pid")) as f:
                return int(f.read().split()[0])
        except (OSError, ValueError, IndexError):
            return None

    def pids(self):
        """{pid: starttime} of every live process of this instance."""
        needle = b"MAIL_CONFIG=" + self.etc.encode() + b"\0"
        out = {}
        mp = self.master_pid()
        if mp is not None and proc_starttime(mp) is not None:
            out[mp] = proc_starttime(mp)
        for d in os.listdir("/proc"):
            if not d.isdigit():
                continue
            try:
                with open(f"/proc/{d}/environ", "rb") as f:
                    env = f.read()
            except OSError:
                continue
            if needle in env:
                st = proc_starttime(int(d))
                if st is not None:
                    out[int(d)] = st
        return out

    def cpu(self):
        """CPU seconds of the instance: master (with its reaped children, which
        are all the Postfix daemons that exited) + the live daemons."""
        mp = self.master_pid()
        total = process_cpu(mp, children=True) if mp else 0.0
        for pid in self.pids():
            if pid != mp:
                total += process_cpu(pid)
        return total

    def stop(self):
        if not self.started:
            return
        self.started = False
        PROCS.forget_stopper(self.stop)
        before = self.pids()
        try:
            self._postfix("stop", timeout=60)
        except subprocess.TimeoutExpired:
            pass
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            left = {p: st for p, st in {**before, **self.pids()}.items() if proc_starttime(p) == st}
            if not left:
                return
            time.sleep(0.1)
        for pid, st in left.items():
            if proc_starttime(pid) == st:  # still that very process
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
        print(f"# postfix: killed leftover processes {sorted(left)}", file=sys.stderr)


def smtp_source(port, sessions, messages, length, reuse=False, extra=(), timeout=None,
                rcpt=RECIPIENT):
    """Run smtp-source to completion. Returns dict(elapsed, rc, cpu, out, t0)."""
    cmd = [SMTP_SOURCE, "-s", str(sessions), "-m", str(messages), "-l", str(length),
           "-f", SENDER, "-t", rcpt, "-M", HELO]
    if reuse:
        cmd.append("-d")
    cmd += list(extra)
    cmd.append(f"127.0.0.1:{port}")
    r = run_client(cmd, timeout, merge_stderr=True)
    r["out"] = r.pop("stdout")
    return r


def run_client(cmd, timeout, merge_stderr=False):
    """Runs a load client to completion (stopped by PID on timeout). Returns
    dict(elapsed, rc, cpu (its user+system seconds), cmd, t0, stdout, stderr)."""
    import resource
    r0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.monotonic()
    p = PROCS.add_proc(subprocess.Popen(
        cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT if merge_stderr else subprocess.PIPE))
    try:
        out, err = p.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        stop_process(p)
        out, err = b"(timeout)", b""
    elapsed = time.monotonic() - t0
    r1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (r1.ru_utime - r0.ru_utime) + (r1.ru_stime - r0.ru_stime)
    return {"elapsed": elapsed, "rc": p.returncode, "cpu": cpu, "cmd": cmd, "t0": t0,
            "stdout": out.decode("utf-8", "replace").strip(),
            "stderr": (err or b"").decode("utf-8", "replace").strip()}


def loadgen(binary, port, sessions, messages, length, reuse=False, timeout=None,
            rcpt=RECIPIENT, extra=()):
    """Run bench/loadgen (build/bench/loadgen) like smtp_source(): the same
    sessions, messages and envelope; `length` is the whole message's size (with
    its headers); `extra`: more loadgen options (e.g. --rate, -r, -P). Returns
    smtp_source()'s dict plus `latency`, loadgen's JSON (connect_banner, mail,
    end_of_data percentiles in microseconds)."""
    cmd = [binary, f"127.0.0.1:{port}", "-c", str(sessions), "-m", str(messages),
           "-s", str(length), "-d", "0" if reuse else "1", "--from", SENDER,
           "--to", rcpt, "--ehlo", HELO, "--json"] + list(extra)
    r = run_client(cmd, timeout)
    try:
        r["latency"] = json.loads(r["stdout"])
    except ValueError:
        r["latency"] = None
    r["out"] = (r.pop("stdout") + "\n" + r.pop("stderr")).strip()
    return r


# --------------------------------------------------------------------------
# output


def parse_size(s):
    """'20MB' -> 20000000, '512KiB' -> 524288, '1024' -> 1024 (mailgate's units)."""
    m = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([KMGT]i?B|B)?\s*", s, re.I)
    if not m:
        raise ValueError(f"bad size {s!r}")
    n, unit = float(m.group(1)), (m.group(2) or "B")
    u = unit.upper()
    mult = {"B": 1, "KB": 10**3, "MB": 10**6, "GB": 10**9, "TB": 10**12,
            "KIB": 2**10, "MIB": 2**20, "GIB": 2**30, "TIB": 2**40}[u]
    return int(n * mult)


def table(headers, rows, out=sys.stdout):
    cols = [list(map(str, c)) for c in zip(headers, *rows)]
    widths = [max(len(x) for x in c) for c in cols]
    def fmt(r):
        return "  ".join(str(x).rjust(w) if i else str(x).ljust(w)
                         for i, (x, w) in enumerate(zip(r, widths)))
    print(fmt(headers), file=out)
    print("  ".join("-" * w for w in widths), file=out)
    for r in rows:
        print(fmt(r), file=out)
    out.flush()


def common_args(p):
    p.add_argument("--mailgate", default=DEFAULT_BIN, help="mailgate binary (default: build/mailgate)")
    p.add_argument("--config", default=DEFAULT_CONF, help="config file (default: conf/mailgate.lua)")
    p.add_argument("--workers", type=int, default=os.cpu_count(),
                   help="mailgate workers (default: nproc = %(default)s)")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="extra `mailgate serve --set` override (repeatable)")
    p.add_argument("--tmp", default=None, help="parent of the temporary directories (default: $TMPDIR or /tmp)")
    p.add_argument("--max-busy", type=float, default=10,
                   help="before each measurement wait until under this %% of all CPUs were busy "
                        "over 3 s (0: do not wait; default %(default)s)")
    p.add_argument("--max-wait", type=float, default=300,
                   help="longest wait for a quiet machine, seconds (default %(default)s)")
    p.add_argument("--keep", action="store_true", help="keep the temporary directory (logs, spool)")
    return p


def check_binary(path):
    if not os.access(path, os.X_OK):
        sys.exit(f"{path}: not found; build it: cmake --build build -j2 --target mailgate")


def freeze_binary(path, tmp):
    """Copy the binary into tmp so a concurrent rebuild cannot swap it mid-run.
    Returns (copy, description)."""
    import hashlib
    path = os.path.abspath(path)
    dst = os.path.join(tmp, "mailgate")
    shutil.copy2(path, dst)
    h = hashlib.sha256(open(dst, "rb").read()).hexdigest()[:12]
    mtime = time.strftime("%Y-%m-%d %H:%M", time.localtime(os.stat(path).st_mtime))
    try:  # the git tree the binary sits in (build/ of a checkout), if any
        head = subprocess.run(["git", "-C", os.path.dirname(path), "describe", "--always", "--dirty"],
                              stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True).stdout.strip()
    except OSError:
        head = ""
    return dst, (f"mailgate {path} sha256 {h} built {mtime}"
                 + (f", in tree {head}" if head else ", not in a git tree"))


def fsync_latencies(directory, n=100, size=4096):
    """Sorted latencies (ms) of n size-byte appends + fdatasync in directory."""
    path = os.path.join(directory, ".fsync-probe")
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    buf = b"x" * size
    lat = []
    try:
        for _ in range(n):
            t = time.perf_counter()
            os.write(fd, buf)
            os.fdatasync(fd)
            lat.append((time.perf_counter() - t) * 1000)
    finally:
        os.close(fd)
        os.unlink(path)
    return sorted(lat)


def fsync_probe(directory, n=100, size=4096):
    """Median latency (ms) of a size-byte append + fdatasync in directory: the
    disk's fsync cost right now (it varies with what else runs)."""
    lat = fsync_latencies(directory, n, size)
    return lat[len(lat) // 2]


def fsync_percentiles(directory, n=2000, size=4096):
    """{p50, p99, p999, max} in ms of n appends + fdatasync: the floor under any
    synced reply's tail latency (a reply waits for at least one fdatasync)."""
    lat = fsync_latencies(directory, n, size)
    return {"p50": lat[n // 2], "p99": lat[min(n - 1, n * 99 // 100)],
            "p999": lat[min(n - 1, n * 999 // 1000)], "max": lat[-1]}
