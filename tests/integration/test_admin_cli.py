"""The admin CLI (`mailgate queue|suppression|reload`, DESIGN §5) end to end
against the real gateway's HTTP admin API (DESIGN §8): one gateway for the
module with http.token set; mail queued to domains no DNS serves (conftest
points DNS at 127.0.0.1:1, so delivery tempfails and messages stay queued).
The gateway tests are skipped only when GET /healthz is not reachable on the
gateway's http port (a build without the HTTP server); the tests of usage
errors and of an unreachable API need no gateway and always run. A
suspension is kept in the spool: it holds mail across a restart (SIGTERM or
kill -9) until resumed, with a real MX (dnsmasq + aiosmtpd) ready to take it."""
import json
import os
import re
import smtplib
import socket
import subprocess
import http.client
import uuid

import pytest

from conftest import BIN, Gateway, spool_dump, wait_for
from test_delivery import net, send  # noqa: F401  (net: the dnsmasq + sinks fixture)

TOKEN = "s3cret-token"
HTTP_LOG = r"listening\b.*\bhttp=(\S+):(\d+)"


# ----------------------------------------------------------------- helpers

def healthz(host, port):
    """True if GET /healthz on host:port answers 200."""
    try:
        conn = http.client.HTTPConnection(host, port, timeout=3)
        try:
            conn.request("GET", "/healthz")
            return conn.getresponse().status == 200
        finally:
            conn.close()
    except (OSError, http.client.HTTPException):
        return False


def listening_ports(pid):
    """TCP ports the process `pid` listens on (from /proc), for finding an
    HTTP port the gateway did not log."""
    inodes = set()
    fd_dir = f"/proc/{pid}/fd"
    try:
        for fd in os.listdir(fd_dir):
            try:
                m = re.match(r"socket:\[(\d+)\]", os.readlink(os.path.join(fd_dir, fd)))
            except OSError:
                continue
            if m:
                inodes.add(m.group(1))
    except OSError:
        return []
    ports = []
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            with open(table) as f:
                next(f)
                for line in f:
                    cols = line.split()
                    if cols[3] == "0A" and cols[9] in inodes:  # LISTEN
                        ports.append(int(cols[1].rsplit(":", 1)[1], 16))
        except OSError:
            pass
    return ports


def http_api(gw):
    """The gateway's admin API base URL, parsed from its `listening http=HOST:PORT`
    log line (like conftest parses `listening smtp=`), or None when no port of
    the gateway answers GET /healthz."""
    try:
        m = gw.wait_log(HTTP_LOG, timeout=5)
    except AssertionError:
        m = None
    if m:
        host, port = m.group(1).strip("[]"), int(m.group(2))
        if healthz(host, port):
            return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"
        return None
    for port in listening_ports(gw.proc.pid):
        if port != gw.port and healthz("127.0.0.1", port):
            raise AssertionError(f"the gateway answers GET /healthz on port {port} but never "
                                 f"logged 'listening http=HOST:PORT':\n" + gw.log())
    return None


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def cli(*args, api=None, token=TOKEN, timeout=60):
    """Runs `mailgate ARGS [--api API]` with MAILGATE_API_TOKEN=token; returns
    (exit code, stdout, stderr)."""
    env = dict(os.environ)
    env.pop("MAILGATE_API_TOKEN", None)
    if token is not None:
        env["MAILGATE_API_TOKEN"] = token
    cmd = [BIN] + list(args) + (["--api", api] if api else [])
    p = subprocess.run(cmd, capture_output=True, timeout=timeout, env=env)
    return p.returncode, p.stdout.decode(), p.stderr.decode()


def ok(*args, **kw):
    code, out, err = cli(*args, **kw)
    assert code == 0, f"mailgate {' '.join(args)} exited {code}:\n{out}\n{err}"
    return out


def ok_json(*args, **kw):
    return json.loads(ok(*args, "--json", **kw))


def unique_domain():
    return f"q{uuid.uuid4().hex[:10]}.test"


def queue_mail(gw, domain, count=1, rcpts=("x", "y")):
    """Sends `count` messages to RCPTS@domain and waits until the queue lists
    them; returns their ids."""
    with smtplib.SMTP(gw.host, gw.port, timeout=30) as s:
        for i in range(count):
            s.sendmail("sender@origin.test", [f"{r}@{domain}" for r in rcpts],
                       f"Subject: admin cli {i}\r\n\r\nhello {i}\r\n".encode())

    def listed():
        msgs = ok_json("queue", "list", "--destination", domain, "--all", api=gw.api)["messages"]
        return msgs if len(msgs) >= count else None

    return [m["id"] for m in wait_for(listed, timeout=30, what=f"{count} message(s) to {domain}")]


def summary_row(gw, domain):
    for d in ok_json("queue", "summary", api=gw.api)["destinations"]:
        if d["name"] == domain:
            return d
    return None


# ---------------------------------------------------------------- fixtures

@pytest.fixture(scope="module")
def gw(tmp_path_factory):
    g = Gateway(tmp_path_factory.mktemp("admin") / "spool", sets=[f"http.token={TOKEN}"])
    try:
        api = http_api(g)
        if api is None:
            pytest.skip("GET /healthz is not reachable on the gateway's http port "
                        "(this build has no HTTP admin API)")
        g.api = api
        yield g
    finally:
        g.stop()


# ------------------------------------------------- no gateway needed

def test_unreachable_api_exits_3():
    api = f"http://127.0.0.1:{free_port()}"
    code, out, err = cli("queue", "summary", api=api)
    assert code == 3, (out, err)
    assert out == ""
    assert f"mailgate: cannot reach the admin API at {api}: connection refused" in err
    assert "http.listen" in err
    for args in (["suppression", "list"], ["reload"], ["queue", "suspend", "a.test"]):
        assert cli(*args, api=api)[0] == 3


def test_usage_errors_exit_2():
    for args in (["queue"], ["queue", "bounce"], ["queue", "bounce", "abc", "--destination", "d"],
                 ["queue", "list", "--limit", "0"], ["queue", "show"],
                 ["queue", "summary", "--api", "ftp://127.0.0.1:8025"],
                 ["queue", "summary", "--api", "http://[::1"], ["suppression", "add"],
                 ["suppression", "frobnicate"], ["reload", "extra"],
                 ["queue", "summary", "--token", "two words"]):
        code, out, err = cli(*args)
        assert code == 2, (args, code, out, err)
        assert err.strip(), args


# ------------------------------------------------- against the gateway

def test_queue_summary_table_and_json(gw):
    domain = unique_domain()
    queue_mail(gw, domain)
    row = wait_for(lambda: summary_row(gw, domain), what="destination in the summary")
    assert row["suspended"] is False
    assert row["scheduled"] + row["ready"] + row["in_flight"] >= 1
    full = ok_json("queue", "summary", api=gw.api)
    assert set(full["totals"]) >= {"scheduled", "ready", "in_flight", "destinations"}
    names = [d["name"] for d in full["destinations"]]
    assert names == sorted(names)

    out = ok("queue", "summary", api=gw.api)
    lines = out.splitlines()
    assert lines[0].split() == ["DESTINATION", "SCHEDULED", "READY", "IN-FLIGHT", "CONN",
                                "SUSPENDED", "OLDEST"]
    mine = [l for l in lines if l.startswith(domain + " ")]
    assert len(mine) == 1, out
    assert mine[0].split()[5] == "no"
    assert re.search(r"\d+ destinations?: \d+ scheduled, \d+ ready, \d+ in flight$", lines[-1])


def test_suspend_resume_flush(gw):
    domain = unique_domain()
    ids = queue_mail(gw, domain)
    assert ok("queue", "suspend", domain, api=gw.api) == f"suspended {domain}\n"
    wait_for(lambda: (summary_row(gw, domain) or {}).get("suspended") is True, what="suspended")
    assert ok("queue", "resume", domain, api=gw.api) == f"resumed {domain}\n"
    wait_for(lambda: (summary_row(gw, domain) or {}).get("suspended") is False, what="resumed")
    assert ok("queue", "flush", domain, api=gw.api) == f"flushed {domain}\n"
    # Flushing retries now; delivery still tempfails, so the message stays.
    listed = ok_json("queue", "list", "--destination", domain, api=gw.api)["messages"]
    assert [m["id"] for m in listed] == ids
    r = ok_json("queue", "suspend", domain, api=gw.api)
    assert r == {"destination": domain, "action": "suspend"}
    ok("queue", "resume", domain, api=gw.api)

    code, out, err = cli("queue", "resume", "no-such-queue.test", api=gw.api)
    assert code == 1, (out, err)
    assert err.startswith("mailgate: 404: "), err
    # Suspending ahead of time works: the destination exists from then on.
    assert ok("queue", "suspend", "later.test", api=gw.api) == "suspended later.test\n"
    assert (summary_row(gw, "later.test") or {}).get("suspended") is True


@pytest.mark.parametrize("how", ["sigterm", "kill9"])
def test_suspension_survives_a_restart(net, how):
    dns = net.dns("--mx-host=held.test,mx.held.test,10", "--mx-host=ctl.test,mx.held.test,10",
                  "--host-record=mx.held.test,127.0.0.23")
    sink = net.sink("127.0.0.23")
    sets = [f"http.token={TOKEN}"]

    def start(spool=None):
        g = net.gateway(dns, sets=sets, spool=spool)
        g.api = http_api(g)
        assert g.api, "no admin API"
        return g

    def delivered_to(domain):
        return [m for m in sink.handler.messages if m["to"][0].endswith("@" + domain)]

    gw1 = start()
    assert ok("queue", "suspend", "held.test", api=gw1.api) == "suspended held.test\n"
    (held_id,) = queue_mail(gw1, "held.test", rcpts=("a",))
    if how == "sigterm":
        assert gw1.stop() == 0
    else:
        gw1.kill9()

    gw2 = start(spool=gw1.spool)
    gw2.wait_log(r"suspended \(kept in the spool\): held\.test")
    gw2.wait_log(r"recovery: done")
    # The recovered message is queued again, at a destination still suspended...
    listed = ok_json("queue", "list", "--destination", "held.test", "--all", api=gw2.api)
    assert [m["id"] for m in listed["messages"]] == [held_id]
    assert (summary_row(gw2, "held.test") or {}).get("suspended") is True
    # ...while mail to another domain on the same MX goes through.
    send(gw2, "s@origin.test", ["b@ctl.test"])
    wait_for(lambda: delivered_to("ctl.test"), 30, what="delivery to ctl.test")
    assert delivered_to("held.test") == []

    assert ok("queue", "resume", "held.test", api=gw2.api) == "resumed held.test\n"
    wait_for(lambda: delivered_to("held.test"), 30, what="delivery after resume")
    assert gw2.stop() == 0
    assert spool_dump(gw1.spool) == []
    # Resumed for good: a third start holds nothing.
    gw3 = start(spool=gw1.spool)
    assert "kept in the spool" not in gw3.log()
    assert (summary_row(gw3, "held.test") or {}).get("suspended") in (None, False)


def test_destination_with_brackets_is_url_encoded(gw):
    # "[127.0.0.1]:2525" must reach the server as one path segment; no such
    # queue exists, so the contract's 404 (not a routing 404/400) comes back.
    code, out, err = cli("queue", "flush", "[127.0.0.1]:2525", api=gw.api)
    assert code == 1, (out, err)
    assert err.startswith("mailgate: 404: ") and "[127.0.0.1]:2525" in err, err


def test_list_and_show(gw):
    domain = unique_domain()
    ids = queue_mail(gw, domain, count=2)
    listed = ok_json("queue", "list", "--destination", domain, api=gw.api)
    assert sorted(m["id"] for m in listed["messages"]) == sorted(ids)
    assert listed["next_cursor"] is None
    for m in listed["messages"]:
        assert re.fullmatch(r"[0-9a-f]{32}", m["id"])
        assert m["destination"] == domain
        assert m["sender"] == "sender@origin.test"
        assert sorted(r["address"] for r in m["recipients"]) == [f"x@{domain}", f"y@{domain}"]

    out = ok("queue", "list", "--destination", domain, api=gw.api)
    lines = out.splitlines()
    assert lines[0].split() == ["ID", "DESTINATION", "SENDER", "RECIPIENTS", "ATTEMPTS", "NEXT"]
    assert len(lines) == 3, out
    for i in ids:
        assert any(l.startswith(i + "  ") and f"{domain}" in l and "+1" in l for l in lines), out

    # Paging: one per page shows a hint; --all follows the cursor.
    out = ok("queue", "list", "--destination", domain, "--limit", "1", api=gw.api)
    assert len(out.splitlines()) == 3 and "--all" in out.splitlines()[-1], out
    paged = ok_json("queue", "list", "--destination", domain, "--limit", "1", "--all",
                    api=gw.api)
    assert sorted(m["id"] for m in paged["messages"]) == sorted(ids)
    assert paged["next_cursor"] is None
    rows = ok("queue", "list", "--destination", domain, "--limit", "1", "--all",
              api=gw.api).splitlines()[1:]
    assert sorted(l.split()[0] for l in rows) == sorted(ids)

    shown = ok_json("queue", "show", ids[0], api=gw.api)
    assert shown["id"] == ids[0]
    assert shown["sender"] == "sender@origin.test"
    assert [d["name"] for d in shown["destinations"]] == [domain]
    out = ok("queue", "show", ids[0], api=gw.api)
    assert out.startswith(f"id        {ids[0]}\n"), out
    assert f"destination {domain}:" in out and f"x@{domain}" in out

    code, out, err = cli("queue", "show", "0" * 32, api=gw.api)
    assert code == 1 and err.startswith("mailgate: 404: "), (code, err)
    code, out, err = cli("queue", "show", "not-an-id", api=gw.api)
    assert code == 1 and err.startswith("mailgate: 400: "), (code, err)


def test_bounce(gw):
    domain = unique_domain()
    ids = queue_mail(gw, domain, count=3)
    assert ok("queue", "bounce", ids[0], "--reason", "admin test", api=gw.api) == \
        "bounced 1 message\n"
    # 2 once the first bounce has left the queue (3 if the server removes lazily).
    assert re.fullmatch(r"bounced [23] messages\n",
                        ok("queue", "bounce", "--destination", domain, api=gw.api))
    wait_for(lambda: not ok_json("queue", "list", "--destination", domain, api=gw.api)["messages"],
             what="bounced messages to leave the queue")
    code, out, err = cli("queue", "bounce", "--destination", "no-such-queue.test", api=gw.api)
    assert code == 1 and err.startswith("mailgate: 404: "), (code, err)


def test_suppression_add_list_remove(gw):
    address = f"gone+{uuid.uuid4().hex[:8]}@example.test"
    assert ok("suppression", "add", address, "--reason", "550 5.1.1 no such user",
              api=gw.api) == f"added {address} to the suppression list\n"
    entries = ok_json("suppression", "list", "--all", api=gw.api)["entries"]
    mine = [e for e in entries if e["address"].lower() == address.lower()]
    assert len(mine) == 1, entries
    assert mine[0]["reason"] == "550 5.1.1 no such user"
    out = ok("suppression", "list", "--all", api=gw.api)
    assert out.splitlines()[0].split() == ["ADDRESS", "ADDED", "REASON"]
    assert any(l.lower().startswith(address.lower()) and "550 5.1.1 no such user" in l
               for l in out.splitlines()), out

    # '+' and '@' travel percent-encoded in the DELETE path.
    assert ok("suppression", "remove", address, api=gw.api) == \
        f"removed {address} from the suppression list\n"
    entries = ok_json("suppression", "list", "--all", api=gw.api)["entries"]
    assert not [e for e in entries if e["address"].lower() == address.lower()]
    code, out, err = cli("suppression", "remove", address, api=gw.api)
    assert code == 1 and err.startswith("mailgate: 404: "), (code, err)
    code, out, err = cli("suppression", "add", "not an address", api=gw.api)
    assert code == 1 and err.startswith("mailgate: 400: "), (code, err)


def test_reload(gw):
    out = ok("reload", api=gw.api)
    assert out.startswith("reloaded the configuration"), out
    r = ok_json("reload", api=gw.api)
    assert isinstance(r["version"], int) and r["version"] >= 2


def test_bad_or_missing_token_exits_1(gw):
    for token in ("wrong-token", None):
        code, out, err = cli("queue", "summary", api=gw.api, token=token)
        assert code == 1, (token, out, err)
        assert out == ""
        assert err.startswith("mailgate: 401: "), err
    # --token overrides the environment.
    code, out, err = cli("queue", "summary", "--token", "wrong-token", api=gw.api)
    assert code == 1 and "401" in err
    assert cli("queue", "summary", "--token", TOKEN, api=gw.api, token="wrong")[0] == 0
