"""Lua hook limits end to end, against the real binary: a hook that catches
its own timeout never relays, a busy loop in a coroutine of a hook does not
stall the worker, a runaway pattern stops at policy.hook_timeout, and a hook
that allocates without end fails (451 4.3.0) while the gateway goes on
serving. Loopback is kept out of relay_networks, so only a hook could relay.
Every wait has a deadline; every process is stopped by PID."""
import threading
import time

from conftest import wait_for
from rawsmtp import Raw
from test_policy import write_policy

OUTSIDE = "listen.relay_networks.1=10.9.0.0/16"  # 127.0.0.1 may not relay


def start(gateway, tmp_path, lua, sets=(), workers=2):
    config = write_policy(tmp_path, lua)
    return gateway(config=config, workers=workers, sets=[OUTSIDE] + list(sets))


def session(gw, helo="client.test"):
    c = Raw(gw.host, gw.port, timeout=30)
    code, _ = c.reply()
    assert code == 220
    code, _ = c.cmd(f"EHLO {helo}")
    assert code == 250
    return c


def rcpt_reply(gw, rcpt):
    """MAIL + one RCPT in a new session: (code, first line, seconds the RCPT took)."""
    c = session(gw)
    try:
        code, _ = c.cmd("MAIL FROM:<s@example.org>")
        assert code == 250
        t0 = time.monotonic()
        code, lines = c.cmd(f"RCPT TO:<{rcpt}>")
        took = time.monotonic() - t0
        c.cmd("QUIT")
        return code, lines[0], took
    finally:
        c.close()


def test_rcpt_hook_that_catches_its_timeout_never_relays(gateway, tmp_path):
    gw = start(gateway, tmp_path, """
        mailgate.on("rcpt_to", function(tx, rcpt)
          if rcpt.user == "spin" then
            local ok = pcall(function() while true do end end)
            return mailgate.accept()
          end
        end)
    """, sets=["policy.hook_timeout=1s"])
    # Without the hook's grant, relay control refuses: loopback may not relay.
    code, text, _ = rcpt_reply(gw, "other@elsewhere.test")
    assert code == 550 and text.startswith("5.7.1"), (code, text)
    for _ in range(2):
        code, text, took = rcpt_reply(gw, "spin@elsewhere.test")
        assert code == 451 and text.startswith("4.3.0"), (code, text)
        assert 0.9 <= took < 20, took
    gw.wait_log(r"lua rcpt_to hook failed: hook timed out \(policy.hook_timeout 1s\)")


def test_busy_loop_in_a_coroutine_of_a_helo_hook_does_not_stall_the_worker(gateway, tmp_path):
    gw = start(gateway, tmp_path, """
        mailgate.on("helo", function(conn, name)
          if name == "spin.test" then coroutine.wrap(function() while true do end end)() end
        end)
    """, sets=["policy.hook_timeout=1s"], workers=1)
    spinner = Raw(gw.host, gw.port, timeout=30)
    other = None
    try:
        assert spinner.reply()[0] == 220
        spinner.send("EHLO spin.test\r\n")
        time.sleep(0.2)  # the hook is running now (or about to) on the only worker
        t0 = time.monotonic()
        other = Raw(gw.host, gw.port, timeout=30)
        assert other.reply()[0] == 220
        code, _ = other.cmd("EHLO other.test")
        took = time.monotonic() - t0
        assert code == 250
        assert took < 15, took  # served once the spinning call is stopped at 1s
        code, lines = spinner.reply()
        assert code == 451 and lines[0].startswith("4.3.0"), (code, lines)
        # Both sessions go on.
        assert spinner.cmd("NOOP")[0] == 250
        assert other.cmd("NOOP")[0] == 250
    finally:
        spinner.close()
        if other:
            other.close()
    gw.wait_log(r"lua helo hook failed: hook timed out")


def test_runaway_pattern_in_a_rcpt_hook_stops_at_the_timeout(gateway, tmp_path):
    gw = start(gateway, tmp_path, """
        mailgate.on("rcpt_to", function(tx, rcpt)
          if rcpt.user == "pattern" then
            string.find(string.rep("a", 200), ".-.-.-.-b")   -- half a minute in stock Lua
          end
          if rcpt.domain == "ok.test" and rcpt.user:match("^%a+$") then
            return mailgate.accept()
          end
        end)
    """, sets=["policy.hook_timeout=1s"])
    code, text, took = rcpt_reply(gw, "pattern@elsewhere.test")
    assert code == 451 and text.startswith("4.3.0"), (code, text)
    assert took < 10, took
    # Patterns that finish still work.
    code, text, _ = rcpt_reply(gw, "fine@ok.test")
    assert code == 250, (code, text)


def test_hook_that_allocates_without_end_fails_and_the_gateway_goes_on(gateway, tmp_path):
    gw = start(gateway, tmp_path, """
        calls = 0
        mailgate.on("rcpt_to", function(tx, rcpt)
          calls = calls + 1
          if rcpt.user == "blowup" then
            local t = {} for i = 1, 1e9 do t[i] = string.rep("x", 1000) end
          end
          return mailgate.reject(550, "5.7.1 served, call " .. calls .. " of this state")
        end)
    """, sets=["policy.hook_timeout=10s"], workers=1)
    code, text, _ = rcpt_reply(gw, "a@ok.test")
    assert (code, text) == (550, "5.7.1 served, call 1 of this state")
    code, text, took = rcpt_reply(gw, "blowup@ok.test")
    assert code == 451 and text.startswith("4.3.0"), (code, text)
    gw.wait_log(r"lua rcpt_to hook failed: hook ran out of memory \(policy.memory_limit 64MB\)")
    gw.wait_log(r"reached policy.memory_limit \(64MB\); new calls get a fresh state")
    # The next session is served, by a fresh state of the same policy.
    code, text, _ = rcpt_reply(gw, "a@ok.test")
    assert (code, text) == (550, "5.7.1 served, call 1 of this state")
    # And several at once too.
    results = []

    def one():
        results.append(rcpt_reply(gw, "b@ok.test")[0])
    threads = [threading.Thread(target=one) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    wait_for(lambda: len(results) == 4, timeout=5, what="4 sessions")
    assert results == [550] * 4
