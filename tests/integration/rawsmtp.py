"""A minimal raw SMTP client for tests that need exact control over the bytes
on the wire (pipelining, malformed input, BDAT). Every read has a timeout."""
import re
import socket

REPLY_END = re.compile(rb"^(\d{3}) ", re.M)


class Raw:
    def __init__(self, host, port, timeout=20.0):
        self.sock = socket.create_connection((host, port), timeout=timeout)
        self.buf = b""

    def send(self, data):
        if isinstance(data, str):
            data = data.encode()
        self.sock.sendall(data)

    def reply(self):
        """Reads one (possibly multi-line) reply; returns (code, text_lines)."""
        lines = []
        while True:
            while b"\r\n" not in self.buf:
                chunk = self.sock.recv(65536)
                if not chunk:
                    raise ConnectionError("connection closed; got so far: %r" % (lines,))
                self.buf += chunk
            line, self.buf = self.buf.split(b"\r\n", 1)
            lines.append(line.decode("utf-8", "replace"))
            if len(line) >= 4 and line[3:4] == b" ":
                return int(line[:3]), [l[4:] for l in lines]
            if len(line) == 3:
                return int(line[:3]), [l[4:] for l in lines]

    def cmd(self, line):
        self.send(line + "\r\n")
        return self.reply()

    def closed(self, timeout=10.0):
        """True if the server closes the connection (EOF) within timeout."""
        self.sock.settimeout(timeout)
        try:
            while True:
                chunk = self.sock.recv(65536)
                if not chunk:
                    return True
                self.buf += chunk
        except (ConnectionResetError, BrokenPipeError):
            return True
        except socket.timeout:
            return False

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def greet(host, port, helo="client.test"):
    c = Raw(host, port)
    code, _ = c.reply()
    assert code == 220
    code, lines = c.cmd("EHLO " + helo)
    assert code == 250, lines
    return c
