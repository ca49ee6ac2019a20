"""Parser for the output of `strace -f -ttt -T -yy -xx -s N -o FILE CMD`.

With -f every line starts with the pid (thread id) of the caller; -ttt gives
the wall-clock time at which strace saw the syscall ENTRY; -T appends the time
spent in the syscall, so a call's completion time is entry + duration (the
only way to get it for a call printed on one line). A call that is
interrupted by another thread's output is printed in two parts:

    123 1795878074.615000 fdatasync(7<...> <unfinished ...>
    456 1795878074.615100 sendto(26<TCP:[...]>, "\\x32...", 37, ...) = 37 <0.000020>
    123 1795878074.615700 <... fdatasync resumed>) = 0 <0.000717>

The two parts are joined per thread id: the start time is the one of the
unfinished line, the duration (hence the end) comes from the resumed line.

-xx prints every byte of every string and path as \\xHH, so strings can be
decoded exactly (no quoting ambiguity) and fd decorations of files (-y) are
hex paths, while -yy socket decorations look like TCP:[1.2.3.4:25->5.6.7.8:999].
"""
import re
from dataclasses import dataclass

_LINE = re.compile(r"^(?:(\d+)\s+)?(\d+\.\d+)\s+(.*)$")
_RESUMED = re.compile(r"^<\.\.\. (\w+) resumed>(.*)$")
_UNFINISHED = re.compile(r"^(\w+)\((.*) <unfinished \.\.\.>$")
_CALL = re.compile(r"^(\w+)\((.*)$")
# "ARGS) = RET <DUR>"; greedy ARGS finds the last ") = " (strings are \xHH
# only, so they cannot contain one).
_TAIL = re.compile(r"^(.*)\) += (.*?)(?: <(\d+\.\d+)>)?$")
_STRING = re.compile(r'"((?:\\x[0-9a-f]{2})*)"(\.\.\.)?')
# First argument with its -y/-yy decoration: 7<\x2f\x74...> or 26<TCP:[a->b]>.
_FD = re.compile(r"^(\d+)<([^\[<>]*(?:\[[^\]]*\])?)>")
_HEX = re.compile(r"\\x([0-9a-f]{2})")


def _unhex(s):
    return bytes(int(h, 16) for h in _HEX.findall(s))


@dataclass
class Call:
    tid: int
    name: str
    start: float        # entry time (-ttt)
    end: float | None   # start + duration (-T); None if unknown (e.g. "= ? <unavailable>")
    args: str
    ret: str
    fd: int | None
    target: str | None  # decoded decoration: a file path or "TCP:[...]"
    data: bytes         # all string arguments, decoded and concatenated
    truncated: bool     # some string was cut by -s
    line: int           # line number (of the first part) in the file

    @property
    def result(self):
        """The integer return value, or None (e.g. "? <unavailable>")."""
        m = re.match(r"^-?\d+", self.ret)
        return int(m.group(0)) if m else None

    @property
    def ok(self):
        r = self.result
        return r is not None and r >= 0

    def is_socket(self):
        return self.target is not None and self.target.startswith(("TCP", "TCPv6"))


def _make(tid, name, start, body, lineno):
    m = _TAIL.match(body)
    if not m:
        return None
    args, ret, dur = m.group(1), m.group(2), m.group(3)
    fd = target = None
    fm = _FD.match(args)
    if fm:
        fd = int(fm.group(1))
        dec = fm.group(2)
        target = _unhex(dec).decode("utf-8", "surrogateescape") if dec.startswith("\\x") else dec
    else:
        d = re.match(r"^(\d+)[,)]?", args)
        if d:
            fd = int(d.group(1))
    data, truncated = [], False
    for sm in _STRING.finditer(args[fm.end() if fm else 0:]):
        data.append(_unhex(sm.group(1)))
        truncated = truncated or bool(sm.group(2))
    end = start + float(dur) if dur is not None else None
    return Call(tid, name, start, end, args, ret, fd, target, b"".join(data), truncated, lineno)


def parse(path):
    """Returns (calls, problems): every completed syscall in file order (the
    order in which they finished or were printed whole) and a list of lines
    that could not be understood (for diagnostics; signals, exits and strace
    messages are not problems)."""
    calls, problems = [], []
    pending = {}  # tid -> (name, start, head, lineno)
    with open(path, "r", encoding="ascii", errors="replace") as f:
        for lineno, raw in enumerate(f, 1):
            line = raw.rstrip("\n")
            m = _LINE.match(line)
            if not m:
                if line.strip() and not line.startswith("strace:"):
                    problems.append(line[:200])
                continue
            tid = int(m.group(1)) if m.group(1) else 0
            ts = float(m.group(2))
            rest = m.group(3)
            if rest.startswith(("---", "+++")):
                continue  # signal delivery, exit
            r = _RESUMED.match(rest)
            if r:
                p = pending.pop(tid, None)
                if p is None or p[0] != r.group(1):
                    problems.append(line[:200])
                    continue
                body = r.group(2)
                if body.endswith("<unfinished ...>"):
                    # Interrupted a second time: keep waiting for the rest.
                    pending[tid] = (p[0], p[1], p[2] + body[: -len(" <unfinished ...>")], p[3])
                    continue
                c = _make(tid, p[0], p[1], p[2] + body, p[3])
            else:
                u = _UNFINISHED.match(rest)
                if u:
                    pending[tid] = (u.group(1), ts, u.group(2), lineno)
                    continue
                cm = _CALL.match(rest)
                c = _make(tid, cm.group(1), ts, cm.group(2), lineno) if cm else None
            if c is None:
                problems.append(line[:200])
            else:
                calls.append(c)
    return calls, problems


BLOCK = 32768  # RocksDB log format (db/log_format.h)


def wal_records(stream):
    """Splits the bytes of a RocksDB WAL file (legacy or recyclable format)
    into logical records (WriteBatch reps). Returns [(record, end_offset)],
    end_offset being the file offset just after the record's last fragment,
    and the offset where parsing stopped (== len(stream) for a clean file)."""
    out, pos, cur = [], 0, None
    while pos < len(stream):
        left = BLOCK - pos % BLOCK
        if left < 7:  # block trailer, zero filled
            pos += left
            continue
        if pos + 7 > len(stream):
            break
        length = stream[pos + 4] | (stream[pos + 5] << 8)
        kind = stream[pos + 6]
        header = 11 if kind in (5, 6, 7, 8, 11) else 7
        end = pos + header + length
        if kind == 0 or end > len(stream):
            break
        payload = stream[pos + header:end]
        if kind in (1, 5):
            out.append((payload, end))
        elif kind in (2, 6):
            cur = payload
        elif kind in (3, 7) and cur is not None:
            cur += payload
        elif kind in (4, 8) and cur is not None:
            out.append((cur + payload, end))
            cur = None
        # other kinds (compression / timestamp-size metadata) carry no batch
        pos = end
    return out, pos
