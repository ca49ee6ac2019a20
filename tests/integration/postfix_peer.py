"""A private Postfix 3.7 instance on loopback for the feedback tests: its own
config_directory, queue_directory and data_directory under a temp dir,
`postfix -c DIR start-fg` (needs root, as Postfix's master does), its log on
stdout, routes given as a transport map. Stopped by the master's PID
(SIGTERM), then the start-fg script's, even on failure."""
import os
import shutil
import signal
import subprocess
import tempfile
import threading
import time

from conftest import wait_for
from peers import free_port


def available():
    return os.geteuid() == 0 and shutil.which("postfix") and os.path.exists("/etc/postfix/master.cf")


class Postfix:
    def __init__(self, transports, relay_domains):
        """transports: {domain: "[127.0.0.1]:port"}; relay_domains: accepted from loopback."""
        self.dir = tempfile.mkdtemp(prefix="mailgate-postfix-")
        os.chmod(self.dir, 0o755)
        etc, queue, data = (os.path.join(self.dir, d) for d in ("etc", "queue", "data"))
        for d in (etc, queue, data):
            os.makedirs(d)
        shutil.chown(data, "postfix")
        self.port = free_port()
        with open("/etc/postfix/master.cf") as f:
            lines = []
            for line in f:
                fields = line.split()
                if line[:1] not in ("#", " ", "\t", "\n") and len(fields) >= 8:
                    fields[4] = "n"  # no chroot: the private queue holds no /etc copies
                    if fields[0] == "smtp" and fields[1] == "inet":
                        fields[0] = f"127.0.0.1:{self.port}"
                    line = " ".join(fields) + "\n"
                lines.append(line)
        with open(os.path.join(etc, "master.cf"), "w") as f:
            f.writelines(lines)
        transport = ", ".join(f"{d}=smtp:{t}" for d, t in transports.items())
        with open(os.path.join(etc, "main.cf"), "w") as f:
            f.write(f"""compatibility_level = 3.6
queue_directory = {queue}
data_directory = {data}
maillog_file = /dev/stdout
myhostname = mx.postfix.test
mydestination =
inet_interfaces = 127.0.0.1
inet_protocols = ipv4
mynetworks = 127.0.0.0/8
relay_domains = {", ".join(relay_domains)}
transport_maps = inline:{{ {transport} }}
smtp_dns_support_level = disabled
smtp_tls_security_level = none
alias_maps =
alias_database =
smtpd_relay_restrictions = permit_mynetworks, reject
""")
        self.lines = []
        self._lock = threading.Lock()
        self.proc = subprocess.Popen(["postfix", "-c", etc, "start-fg"], stdout=subprocess.PIPE,
                                     stderr=subprocess.STDOUT)
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()
        try:
            wait_for(lambda: self._listening(), timeout=30, what="postfix listening")
        except AssertionError:
            self.stop()
            raise AssertionError("postfix did not start:\n" + self.log())

    def _read(self):
        for raw in self.proc.stdout:
            with self._lock:
                self.lines.append(raw.decode("utf-8", "replace").rstrip("\n"))

    def log(self):
        with self._lock:
            return "\n".join(self.lines)

    def _listening(self):
        if self.proc.poll() is not None:
            raise AssertionError("postfix exited:\n" + self.log())
        return "daemon started" in self.log()

    def _master_pid(self):
        try:
            out = subprocess.run(["pgrep", "-P", str(self.proc.pid), "-x", "master"],
                                 capture_output=True, text=True, timeout=10).stdout.split()
            return int(out[0]) if out else None
        except (OSError, ValueError, subprocess.TimeoutExpired):
            return None

    def stop(self):
        if self.proc.poll() is None:
            master = self._master_pid()
            if master:
                os.kill(master, signal.SIGTERM)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
        self._reader.join(timeout=5)
        shutil.rmtree(self.dir, ignore_errors=True)
