"""Inbound SMTP against the real binary: the dialogue, extensions, pipelining,
relay control, limits, bare-LF smuggling defence, BDAT, and what lands in the
spool (read back offline with `mailgate spool dump`)."""
import base64
import smtplib
import subprocess
import textwrap
from email.message import EmailMessage

import pytest

from conftest import spool_dump, wait_for
from rawsmtp import Raw, greet


def body_of(rec):
    return base64.b64decode(rec["body_b64"])


def write_config(tmp_path, listen_extra="", configure_extra=""):
    p = tmp_path / "mailgate.lua"
    p.write_text(textwrap.dedent(f"""
        mailgate.configure {{
          spool = {{ path = "unused" }},
          {configure_extra}
        }}
        mailgate.listen {{
          address = "127.0.0.1:2525",
          {listen_extra}
        }}
    """))
    return str(p)


def test_greeting_and_ehlo_advertise_exactly_what_is_built(gateway):
    gw = gateway()
    with Raw(gw.host, gw.port) as c:
        code, lines = c.reply()
        assert code == 220 and "gw.mailgate.test" in lines[0]
        code, lines = c.cmd("EHLO client.test")
        assert code == 250
        ext = [l.split()[0].upper() for l in lines[1:]]
        # The shipped config offers STARTTLS (self-signed); AUTH is not built.
        assert ext == ["PIPELINING", "SIZE", "8BITMIME", "SMTPUTF8", "ENHANCEDSTATUSCODES",
                       "CHUNKING", "DSN", "STARTTLS"]
        assert "AUTH" not in ext
        assert lines[2].split()[1] == "25000000"
        assert c.cmd("AUTH PLAIN")[0] == 502
        assert c.cmd("HELP")[0] == 214
        assert c.cmd("VRFY someone")[0] == 252
        assert c.cmd("NOOP")[0] == 250
        assert c.cmd("QUIT")[0] == 221
        assert c.closed()


def test_swaks_plain_and_pipelined(gateway):
    gw = gateway()
    for extra in ([], ["--pipeline"]):
        r = subprocess.run(["swaks", "--server", gw.host, "--port", str(gw.port),
                            "--from", "sender@example.org", "--to", "rcpt@example.com",
                            "--helo", "client.test", "--body", "hello from swaks"] + extra,
                           capture_output=True, text=True, timeout=60)
        assert r.returncode == 0, r.stdout + r.stderr
        assert "250 2.0.0 OK id=" in r.stdout
    gw.stop()
    recs = spool_dump(gw.spool, bodies=True)
    assert len(recs) == 2
    for rec in recs:
        assert rec["sender"] == "sender@example.org"
        assert [r["address"] for r in rec["recipients"]] == ["rcpt@example.com"]
        assert b"hello from swaks" in body_of(rec)


def test_smtplib_send_message_8bitmime_and_smtputf8(gateway):
    gw = gateway()
    msg = EmailMessage()
    msg["From"] = "a@example.org"
    msg["To"] = "b@example.com"
    msg["Subject"] = "grüße"
    msg.set_content("Grüße aus Köln\n" * 10, cte="8bit")
    with smtplib.SMTP(gw.host, gw.port, timeout=30) as s:
        s.ehlo("client.test")
        assert s.has_extn("8bitmime") and s.has_extn("smtputf8")
        refused = s.send_message(msg, mail_options=["BODY=8BITMIME"])
        assert refused == {}
        # An internationalized address needs SMTPUTF8.
        s.command_encoding = "utf-8"
        code, _ = s.docmd("MAIL FROM:<jörg@bücher.example>")
        assert code == 553
        s.rset()
        s.sendmail("jörg@bücher.example", ["用户@例子.example"], b"Subject: x\r\n\r\nhi\r\n",
                   mail_options=["SMTPUTF8", "BODY=8BITMIME"])
    gw.stop()
    recs = {r["sender"]: r for r in spool_dump(gw.spool, bodies=True)}
    assert "Grüße aus Köln".encode() in body_of(recs["a@example.org"])
    assert recs["jörg@bücher.example"]["smtputf8"] is True
    assert recs["jörg@bücher.example"]["recipients"][0]["address"] == "用户@例子.example"


def test_received_header_and_dsn_parameters_are_stored(gateway):
    gw = gateway()
    with greet(gw.host, gw.port, "client.test") as c:
        assert c.cmd("MAIL FROM:<s@example.org> RET=HDRS ENVID=abc+2B1 SIZE=100")[0] == 250
        assert c.cmd("RCPT TO:<r@example.com> NOTIFY=SUCCESS,FAILURE ORCPT=rfc822;r+40x@example.com")[0] == 250
        assert c.cmd("DATA")[0] == 354
        code, lines = c.cmd("Subject: t\r\n\r\nbody\r\n.")
        assert code == 250 and lines[0].startswith("2.0.0 OK id=")
        msg_id = lines[0].split("id=")[1]
        assert len(msg_id) == 32 and int(msg_id, 16) >= 0
    gw.stop()
    [rec] = spool_dump(gw.spool, bodies=True)
    assert rec["id"] == msg_id
    assert rec["ret"] == "HDRS" and rec["envid"] == "abc+1"
    assert rec["recipients"][0]["notify"] == ["SUCCESS", "FAILURE"]
    assert rec["recipients"][0]["orcpt"] == "rfc822;r@x@example.com"
    body = body_of(rec).decode()
    first = body.split("\r\n")[0]
    assert first == "Received: from client.test ([127.0.0.1] [127.0.0.1])"
    assert f"by gw.mailgate.test (mailgate) with ESMTP id {msg_id}" in body
    assert "for <r@example.com>;" in body
    assert body.endswith("Subject: t\r\n\r\nbody\r\n")
    assert rec["dests"] == [{"destination": "example.com", "recipients": [0], "states": ["pending"],
                             "attempts": 0}]


def test_pipelined_commands_in_one_packet(gateway):
    gw = gateway()
    with greet(gw.host, gw.port) as c:
        c.send("MAIL FROM:<a@example.org>\r\nRCPT TO:<x@one.example>\r\nRCPT TO:<y@two.example>\r\n"
               "RCPT TO:<bad address>\r\nDATA\r\n")
        assert c.reply()[0] == 250
        assert c.reply()[0] == 250
        assert c.reply()[0] == 250
        assert c.reply()[0] in (501, 553)
        assert c.reply()[0] == 354
        # Data and the next transaction in one packet as well.
        c.send("Subject: p\r\n\r\n.leading dot\r\n..\r\n.\r\nRSET\r\nNOOP\r\n")
        code, lines = c.reply()
        assert code == 250 and "id=" in lines[0]
        assert c.reply()[0] == 250
        assert c.reply()[0] == 250
    gw.stop()
    [rec] = spool_dump(gw.spool, bodies=True)
    assert body_of(rec).endswith(b"Subject: p\r\n\r\nleading dot\r\n.\r\n")
    assert sorted(d["destination"] for d in rec["dests"]) == ["one.example", "two.example"]


@pytest.mark.parametrize("payload", [
    b"Subject: s\r\n\r\nline\n.\nMAIL FROM:<evil@example.org>\r\n",   # bare LF smuggling
    b"Subject: s\r\n\r\nline\r\n.\nRCPT TO:<x@example.com>\r\n",       # <CRLF>.<LF>
    b"Subject: s\r\n\r\nline\r.\r\nx\r\n",                              # bare CR
])
def test_bare_lf_and_cr_are_rejected_and_nothing_is_queued(gateway, payload):
    gw = gateway()
    with greet(gw.host, gw.port) as c:
        assert c.cmd("MAIL FROM:<a@example.org>")[0] == 250
        assert c.cmd("RCPT TO:<b@example.com>")[0] == 250
        assert c.cmd("DATA")[0] == 354
        c.send(payload)
        c.send(b"\r\n.\r\n")  # the only real end of data
        code, lines = c.reply()
        assert (code, lines[0][:5]) == (550, "5.5.2")
        # The smuggled command was data, not a command: the session is in sync.
        assert c.cmd("NOOP")[0] == 250
    gw.stop()
    assert spool_dump(gw.spool) == []


def test_line_longer_than_998_is_rejected(gateway):
    gw = gateway()
    with greet(gw.host, gw.port) as c:
        for length, expect in ((998, 250), (999, 550)):
            assert c.cmd("MAIL FROM:<a@example.org>")[0] == 250
            assert c.cmd("RCPT TO:<b@example.com>")[0] == 250
            assert c.cmd("DATA")[0] == 354
            code, lines = c.cmd("Subject: l\r\n\r\n" + "x" * length + "\r\n.")
            assert code == expect, lines
    gw.stop()
    assert len(spool_dump(gw.spool)) == 1


def test_size_limits(gateway):
    gw = gateway(sets=["listen.max_message_size=1000"])
    with greet(gw.host, gw.port) as c:
        code, lines = c.cmd("MAIL FROM:<a@example.org> SIZE=1001")
        assert (code, lines[0][:5]) == (552, "5.3.4")
        assert c.cmd("MAIL FROM:<a@example.org>")[0] == 250
        assert c.cmd("RCPT TO:<b@example.com>")[0] == 250
        assert c.cmd("DATA")[0] == 354
        code, lines = c.cmd("Subject: big\r\n\r\n" + ("y" * 80 + "\r\n") * 20 + ".")
        assert (code, lines[0][:5]) == (552, "5.3.4")
        assert c.cmd("NOOP")[0] == 250
    gw.stop()
    assert spool_dump(gw.spool) == []


def test_max_recipients_gives_452(gateway):
    gw = gateway(sets=["listen.max_recipients=3"])
    with greet(gw.host, gw.port) as c:
        assert c.cmd("MAIL FROM:<a@example.org>")[0] == 250
        for i in range(3):
            assert c.cmd(f"RCPT TO:<r{i}@example.com>")[0] == 250
        code, lines = c.cmd("RCPT TO:<r9@example.com>")
        assert (code, lines[0][:5]) == (452, "4.5.3")


def test_relay_control(gateway, tmp_path):
    cfg = write_config(tmp_path, listen_extra='relay_networks = {}, relay_domains = { "Example.COM" },')
    gw = gateway(config=cfg)
    with greet(gw.host, gw.port) as c:
        assert c.cmd("MAIL FROM:<a@elsewhere.org>")[0] == 250
        assert c.cmd("RCPT TO:<b@example.com>")[0] == 250
        assert c.cmd("RCPT TO:<b@EXAMPLE.com>")[0] == 250
        for rcpt in ("<b@other.org>", "<b%other.org@example.com>", "<b!x@example.com>",
                     '<"b@other.org"@example.com>', "<@relay.example:b@example.com>"):
            code, lines = c.cmd(f"RCPT TO:{rcpt}")
            assert (code, lines[0][:5]) == (550, "5.7.1"), rcpt
    # A relay client may send anywhere.
    gw2 = gateway(spool=tmp_path / "s2")
    with greet(gw2.host, gw2.port) as c:
        assert c.cmd("MAIL FROM:<a@elsewhere.org>")[0] == 250
        assert c.cmd("RCPT TO:<b@other.org>")[0] == 250


def test_hop_count(gateway):
    gw = gateway()
    with greet(gw.host, gw.port) as c:
        for hops, expect in ((49, 250), (50, 554)):
            assert c.cmd("MAIL FROM:<a@example.org>")[0] == 250
            assert c.cmd("RCPT TO:<b@example.com>")[0] == 250
            assert c.cmd("DATA")[0] == 354
            hdrs = "".join(f"Received: from h{i}.example by x; Sat, 28 Nov 2026 00:00:00 +0000\r\n"
                           for i in range(hops))
            code, lines = c.cmd(hdrs + "Subject: hops\r\n\r\nx\r\n.")
            assert code == expect, lines
            if code == 554:
                assert lines[0].startswith("5.4.0")


def test_sequence_errors_and_error_limit(gateway):
    gw = gateway(sets=["listen.max_errors=5"])
    with Raw(gw.host, gw.port) as c:
        c.reply()
        assert c.cmd("MAIL FROM:<a@example.org>")[0] == 503  # before EHLO
        assert c.cmd("EHLO client.test")[0] == 250
        assert c.cmd("RCPT TO:<b@example.com>")[0] == 503
        assert c.cmd("DATA")[0] == 503
        assert c.cmd("BOGUS")[0] == 500
        assert c.cmd("BOGUS")[0] == 500  # the 5th error is answered, then the session ends
        assert c.reply()[0] == 421
        assert c.closed()


@pytest.mark.parametrize("command", ["DATA", "BDAT 3 LAST\r\na"])  # + CRLF: the 3 octets
def test_data_and_bdat_errors_count_toward_max_errors(gateway, command):
    # Issue 10: 30 DATA without MAIL got 30 503s and the session stayed open.
    gw = gateway(sets=["listen.max_errors=4"])
    with Raw(gw.host, gw.port) as c:
        c.reply()
        assert c.cmd("EHLO client.test")[0] == 250
        for _ in range(3):
            assert c.cmd(command)[0] == 503
        assert c.cmd(command)[0] == 503  # the 4th error is answered, then the session ends
        assert c.reply()[0] == 421
        assert c.closed()


def test_http_request_on_smtp_port_is_dropped(gateway):
    gw = gateway()
    with Raw(gw.host, gw.port) as c:
        c.reply()
        c.send("GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        assert c.reply()[0] == 421
        assert c.closed()


def test_bdat(gateway):
    gw = gateway()
    with greet(gw.host, gw.port) as c:
        c.send("BDAT 3\r\nabc")  # no transaction: the 3 bytes are read and skipped
        assert c.reply()[0] == 503
        c.send("MAIL FROM:<a@example.org>\r\nRCPT TO:<b@example.com>\r\n")
        assert c.reply()[0] == 250 and c.reply()[0] == 250
        part1 = b"Subject: chunks\r\n\r\nfirst "
        part2 = b"second\r\n.dot stays\r\n"
        c.send(b"BDAT %d\r\n" % len(part1) + part1)
        assert c.reply()[0] == 250
        c.send(b"BDAT %d LAST\r\n" % len(part2) + part2)
        code, lines = c.reply()
        assert code == 250 and "id=" in lines[0]
        # BDAT 0 LAST ends a message whose content came in earlier chunks.
        c.send("MAIL FROM:<a@example.org>\r\nRCPT TO:<c@example.com>\r\n")
        assert c.reply()[0] == 250 and c.reply()[0] == 250
        c.send(b"BDAT 12\r\nSubject: z\r\n")
        assert c.reply()[0] == 250
        code, lines = c.cmd("BDAT 0 LAST")
        assert code == 250 and "id=" in lines[0]
        # DATA after BDAT in one transaction is refused.
        c.send("MAIL FROM:<a@example.org>\r\nRCPT TO:<d@example.com>\r\nBDAT 2\r\nhi")
        assert [c.reply()[0] for _ in range(3)] == [250, 250, 250]
        assert c.cmd("DATA")[0] == 503
        assert c.cmd("RSET")[0] == 250
        # A bad BDAT size cannot be resynchronized: the server says so and closes.
        code, _ = c.cmd("BDAT x")
        assert code == 501
        assert c.reply()[0] == 421
    gw.stop()
    recs = {r["recipients"][0]["address"]: r for r in spool_dump(gw.spool, bodies=True)}
    assert set(recs) == {"b@example.com", "c@example.com"}
    assert body_of(recs["b@example.com"]).endswith(part1 + part2)
    assert body_of(recs["c@example.com"]).endswith(b"Subject: z\r\n")


def test_bdat_bare_lf_rejected(gateway):
    gw = gateway()
    with greet(gw.host, gw.port) as c:
        c.send("MAIL FROM:<a@example.org>\r\nRCPT TO:<b@example.com>\r\n")
        assert c.reply()[0] == 250 and c.reply()[0] == 250
        data = b"Subject: x\n\nbare\n"
        c.send(b"BDAT %d LAST\r\n" % len(data) + data)
        code, lines = c.reply()
        assert (code, lines[0][:5]) == (550, "5.5.2")
    gw.stop()
    assert spool_dump(gw.spool) == []


def test_large_message_spills_to_spool_in_chunks(gateway):
    gw = gateway(sets=["spool.body_buffer=64KiB"])
    line = ("0123456789" * 9 + "\r\n").encode()
    payload = b"Subject: large\r\n\r\n" + line * 30000  # ~2.8 MB
    with smtplib.SMTP(gw.host, gw.port, timeout=60) as s:
        s.sendmail("a@example.org", ["b@example.com"], payload)
    gw.stop()
    [rec] = spool_dump(gw.spool, bodies=True)
    assert rec["body_chunks"] > 10
    assert body_of(rec).endswith(payload)
    assert rec["size"] == len(body_of(rec))


def test_command_timeout_gives_421(gateway, tmp_path):
    cfg = write_config(tmp_path, listen_extra='timeouts = { command = "1s", data = "1s" },')
    gw = gateway(config=cfg)
    with Raw(gw.host, gw.port) as c:
        c.reply()
        code, lines = c.reply()  # sent by the server after 1s of silence
        assert (code, lines[0][:5]) == (421, "4.4.2")
        assert c.closed()


def test_low_disk_space_gives_452(gateway):
    gw = gateway(sets=["spool.min_free_space=1000000TB"])
    with greet(gw.host, gw.port) as c:
        code, lines = c.cmd("MAIL FROM:<a@example.org>")
        assert (code, lines[0][:5]) == (452, "4.3.1")


def test_sigterm_drains_in_flight_transaction(gateway):
    gw = gateway()
    idle = greet(gw.host, gw.port)
    busy = greet(gw.host, gw.port)
    assert busy.cmd("MAIL FROM:<a@example.org>")[0] == 250
    assert busy.cmd("RCPT TO:<b@example.com>")[0] == 250
    assert busy.cmd("DATA")[0] == 354
    busy.send("Subject: drain\r\n\r\nfirst half\r\n")
    gw.proc.terminate()
    gw.wait_log("draining")
    # The idle session is told at once; the one in DATA may finish.
    assert idle.reply()[0] == 421
    code, lines = busy.cmd("second half\r\n.")
    assert code == 250 and "id=" in lines[0]
    assert busy.cmd("NOOP")[0] == 421
    assert gw.proc.wait(timeout=30) == 0
    [rec] = spool_dump(gw.spool)
    assert rec["id"] == lines[0].split("id=")[1]


def test_check_config_errors_name_the_key(tmp_path):
    from conftest import BIN, CONFIG
    ok = subprocess.run([BIN, "check-config", "--config", CONFIG], capture_output=True, text=True)
    assert ok.returncode == 0, ok.stderr
    bad = subprocess.run([BIN, "check-config", "--config", CONFIG, "--set", "spool.pth=x"],
                         capture_output=True, text=True)
    assert bad.returncode != 0 and "spool.pth" in bad.stderr
    cfg = write_config(tmp_path, listen_extra='auth = "optional",')
    r = subprocess.run([BIN, "check-config", "--config", cfg], capture_output=True, text=True)
    assert r.returncode != 0 and "listen[1].auth: AUTH is offered only over TLS" in r.stderr
    r = subprocess.run([BIN, "serve", "--config", cfg], capture_output=True, text=True, timeout=30)
    assert r.returncode != 0 and "listen[1].auth: AUTH is offered only over TLS" in r.stderr
