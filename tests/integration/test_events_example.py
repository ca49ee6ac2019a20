"""The README's "Events and feedback" example runs as written: runs
conf/examples/events/run.sh (its mailgate.lua, receiver.py and the steps the
README shows) on ephemeral loopback ports, a temporary spool and dnsmasq, and
checks what the README says the app sees: a signed delivery event per
recipient, an async_bounce and a complaint matched to their message ids, and
the suppression list. Also checks that the README shows those very files
(and event records of the same shape as a real run's), and that receiver.py
refuses forged and stale signatures. run.sh stops what it starts by PID; the
test runs it in its own process group and ends that group if it overruns."""
import hashlib
import hmac
import json
import os
import re
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request

from conftest import BIN, SOURCE, wait_for
from peers import free_port

EXAMPLE = os.path.join(SOURCE, "conf/examples/events")
README = os.path.join(SOURCE, "README.md")
STEPS_RX = re.compile(r"# --- steps \(the README shows this part\) ---\n(.*?)# --- end of steps ---\n",
                      re.S)


def read(path):
    with open(path) as f:
        return f.read()


def readme_blocks():
    return re.findall(r"^```[a-z]*\n(.*?)^```$", read(README), re.S | re.M)


def run_example(tmp_path):
    env = dict(os.environ, MAILGATE=os.path.abspath(BIN), PYTHON=sys.executable,
               TMPDIR=str(tmp_path), SMTP_PORT=str(free_port()), HTTP_PORT=str(free_port()),
               HOOK_PORT=str(free_port()), MX_PORT=str(free_port()), DNS_PORT=str(free_port()))
    proc = subprocess.Popen([os.path.join(EXAMPLE, "run.sh")], env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, start_new_session=True)
    try:
        out, err = proc.communicate(timeout=120)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGTERM)  # run.sh's trap stops its children by PID
        try:
            out, err = proc.communicate(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            out, err = proc.communicate()
        raise AssertionError("run.sh overran:\n" + out.decode() + err.decode())
    out, err = out.decode(), err.decode()
    assert proc.returncode == 0, out + err
    assert os.listdir(tmp_path) == [], "run.sh left its temporary directory"
    return out


def parse_output(out):
    """run.sh's output: (inject results {email: id}, the events the receiver
    printed, the suppression list {address: row})."""
    inject, rest = out.split("\n", 1)
    reply = json.loads(inject)
    assert reply["accepted"] == 3
    results = {r["email"]: r["id"] for r in reply["results"]}
    got, suppression = rest.split("--- the receiver got:\n")[1].split("--- the suppression list:\n")
    events = [json.loads(line) for line in got.splitlines()]
    rows = {line.split()[0]: line for line in suppression.splitlines()[1:]}
    return results, events, rows


def check_what_the_app_sees(results, events, rows):
    assert set(results) == {"alice@example.test", "bob@example.test", "carol@example.test"}
    # Every event the receiver printed passed its signature check (it prints nothing else).
    deliveries = {e["recipient"]: e for e in events if e["event"] == "delivery"}
    assert set(deliveries) == set(results)
    for rcpt, e in deliveries.items():
        assert e["id"] == results[rcpt] and e["code"] == 250 and e["mx"] == "mx.example.test"
        assert e["meta"] == {"campaign": "december"} and e["campaign"] == "december"
    bounces = [e for e in events if e["event"] == "async_bounce"]
    assert len(bounces) == 1
    b = bounces[0]
    assert (b["id"], b["recipient"]) == (results["bob@example.test"], "bob@example.test")
    assert (b["code"], b["enhanced"], b["bounce_class"]) == (550, "5.1.1", "bad-mailbox")
    assert b["sender"] == "news@example.org" and b["meta"] == {"campaign": "december"}
    assert b["campaign"] == "december"  # DESIGN §9: top level too, with no tenant
    complaints = [e for e in events if e["event"] == "complaint"]
    assert len(complaints) == 1
    c = complaints[0]
    assert (c["id"], c["recipient"]) == (results["carol@example.test"], "carol@example.test")
    assert c["feedback_type"] == "abuse" and c["meta"] == {"campaign": "december"}
    assert c["campaign"] == "december"
    assert len(events) == 5, events  # nothing else, nothing twice
    # The suppression plugin took bob's 5.1.1, the complaint took carol.
    assert set(rows) == {"bob@example.test", "carol@example.test"}
    assert "5.1.1" in rows["bob@example.test"] and rows["carol@example.test"].endswith("complaint")


def test_the_example_runs_as_written_and_the_app_sees_what_the_readme_says(tmp_path):
    results, events, rows = parse_output(run_example(tmp_path))
    check_what_the_app_sees(results, events, rows)
    # The README pastes the output of a run: it says the same, with the same fields.
    pasted = [b for b in readme_blocks() if "--- the receiver got:" in b]
    assert len(pasted) == 1, "README has no pasted run.sh output"
    p_results, p_events, p_rows = parse_output(pasted[0])
    check_what_the_app_sees(p_results, p_events, p_rows)
    def kinds(evs):  # deliveries arrive in any order
        return sorted((e["event"], e["recipient"], sorted(e)) for e in evs)
    assert kinds(p_events) == kinds(events)


def test_the_readme_shows_the_example_files_as_they_are():
    blocks = readme_blocks()
    for name in ("receiver.py", "mailgate.lua"):
        assert read(os.path.join(EXAMPLE, name)) in blocks, f"README does not show {name} as it is"
    steps = STEPS_RX.search(read(os.path.join(EXAMPLE, "run.sh")))
    assert steps and steps.group(1) in blocks, "README does not show run.sh's steps as they are"


def post(url, body, ts, signature):
    req = urllib.request.Request(url, data=body, method="POST", headers={
        "Content-Type": "application/json", "X-Mailgate-Timestamp": ts,
        "X-Mailgate-Signature": signature})
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            return r.status
    except urllib.error.HTTPError as e:
        return e.code


def test_the_example_receiver_refuses_forged_and_stale_posts(tmp_path):
    port = free_port()
    out = open(tmp_path / "events.jsonl", "w+")
    proc = subprocess.Popen([sys.executable, os.path.join(EXAMPLE, "receiver.py"), str(port)],
                            stdout=out, stderr=subprocess.DEVNULL)
    try:
        url = f"http://127.0.0.1:{port}/"

        def sign(ts, body, secret=b"s3cr3t"):
            return "sha256=" + hmac.new(secret, ts.encode() + b"." + body, hashlib.sha256).hexdigest()

        body = b'[{"event":"delivery","id":"x","recipient":"a@example.test"}]'
        now = str(int(time.time()))
        stale = str(int(time.time()) - 600)

        def up():
            try:
                return post(url, b"[]", now, sign(now, b"[]")) == 204
            except OSError:
                return proc.poll() is not None  # exited: the assertion below says so
        wait_for(up, 10, what="receiver.py listening")
        assert proc.poll() is None
        assert post(url, body, now, sign(now, body, b"wrong")) == 401
        assert post(url, body, now, sign(now, body + b" ")) == 401  # body changed after signing
        assert post(url, body, stale, sign(stale, body)) == 401     # a replay of an old request
        assert post(url, body, "", sign("", body)) == 401
        assert post(url, body, now, sign(now, body)) == 204
        wait_for(lambda: read(tmp_path / "events.jsonl").strip(), 10, what="the printed event")
        assert [json.loads(line)["id"] for line in read(tmp_path / "events.jsonl").splitlines()] == ["x"]
    finally:
        proc.terminate()
        proc.wait(10)
        out.close()
