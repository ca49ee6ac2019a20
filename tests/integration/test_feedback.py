"""Inbound bounces and complaints end to end (README "Inbound bounces and
complaints"): the real gateway sends with a VERP return path to an aiosmtpd
sink, then consumes reports fed back to it over SMTP: a Postfix-shaped DSN to
the VERP address, mailgate's own DSN, ARF complaints matched by Message-ID,
forged reports (bad VERP hash, an address never mailed), a restart between
sending and the bounce, and a consumed domain outside relay_domains. Checks
the delivery log, the suppression list (HTTP API), the webhook receiver and
/metrics. Every process is stopped by PID."""
import json
import os
import re
import smtplib
import textwrap
import urllib.request

import pytest

from conftest import Gateway, wait_for
from feedback_samples import arf, postfix_dsn
from peers import Recorder, Sink, free_port
from test_http_api import Api, http_port
from webhook_receiver import Receiver

SECRET = "wh-feedback-secret-1"
VERP_SECRET = "verp-s3cr3t-0123456789"
VERP_RX = re.compile(r"^b\+([0-9a-f]{32})\.([a-z2-7]{10})@bounces\.example\.com$")


def write_config(tmp_path, sink_port, webhook_url=None, relay_networks='"127.0.0.0/8"',
                 relay_domains='"bounces.example.com", "fbl.example.com"', extra=""):
    hook = ""
    if webhook_url:
        hook = (f'mailgate.webhook {{ name = "app", url = "{webhook_url}", secret = "{SECRET}", '
                f'events = {{ "async_bounce", "complaint" }}, batch_time = "100ms", '
                f'retry_first = "100ms", retry_max = "400ms" }}\n')
    p = tmp_path / "mailgate.lua"
    p.write_text(textwrap.dedent(f"""
        mailgate.configure {{
          spool = {{ path = "unused" }},
          delivery = {{ verp = "b+{{id}}.{{rcpt_hash}}@bounces.example.com",
                       verp_secret = "{VERP_SECRET}" }},
          {extra}
        }}
        mailgate.listen {{ address = "127.0.0.1:2525", relay_networks = {{ {relay_networks} }},
                          relay_domains = {{ {relay_domains} }} }}
        mailgate.use("suppression")
        mailgate.on("message", function(tx, msg)
          if msg:header("X-Tenant") then msg:set_meta("tenant", msg:header("X-Tenant")) end
        end)
        mailgate.on("route", function(msg, domain)
          if domain == "bounces.example.com" then return {{ consume = "bounce" }} end
          if domain == "fbl.example.com" then return {{ consume = "complaint" }} end
          return {{ smarthost = "[127.0.0.1]:{sink_port}", tls = "disabled" }}
        end)
    """) + hook)
    return str(p)


@pytest.fixture
def env(tmp_path):
    started = []

    class Env:
        def __init__(self):
            self.sink_port = free_port()
            self.recorder = Recorder()
            self.sink = Sink("127.0.0.1", self.sink_port, self.recorder)
            started.append(self.sink)
            self.receiver = Receiver(SECRET)
            started.append(self.receiver)

        def gateway(self, webhook=True, spool=None, **kw):
            config = write_config(tmp_path, self.sink_port,
                                  self.receiver.url if webhook else None, **kw)
            gw = Gateway(spool or tmp_path / "spool", config=config)
            started.append(gw)
            return gw

    yield Env()
    for s in reversed(started):
        s.stop()


def log_records(gw, event=None):
    path = os.path.join(os.path.dirname(gw.spool), "deliveries.jsonl")
    if not os.path.exists(path):
        return []
    with open(path) as f:
        recs = [json.loads(line) for line in f if line.strip()]
    return [r for r in recs if event is None or r["event"] == event]


def send(gw, sender, rcpts, body, mail_options=()):
    with smtplib.SMTP(gw.host, gw.port, timeout=30) as s:
        s.sendmail(sender, rcpts, body, mail_options=list(mail_options))
        return s


def send_original(env, gw, rcpt, message_id, tenant=None):
    extra = f"X-Tenant: {tenant}\r\n" if tenant else ""
    body = (f"From: sender@example.org\r\nTo: {rcpt}\r\nSubject: hello\r\n"
            f"Message-ID: {message_id}\r\n{extra}\r\nhi\r\n")
    send(gw, "sender@example.org", [rcpt], body)
    rec = wait_for(lambda: [r for r in log_records(gw, "delivery") if r["recipient"] == rcpt],
                   what=f"delivery to {rcpt}")[0]
    msg = wait_for(lambda: [m for m in env.recorder.messages if rcpt in m["to"]],
                   what="the sink's copy")[0]
    return rec["id"], msg


def suppression(gw):
    return {e["address"]: e["reason"]
            for e in Api(gw).json("GET", "/api/v1/suppression")[1]["entries"]}


def metrics(gw):
    with urllib.request.urlopen(f"http://127.0.0.1:{http_port(gw)}/metrics", timeout=10) as r:
        return r.read().decode()


def metric(text, name, labels):
    m = re.search(r"^%s\{%s\} (\S+)$" % (re.escape(name), re.escape(labels)), text, re.M)
    return float(m.group(1)) if m else 0.0


def test_verp_bounce_matches_logs_suppresses_and_reaches_webhooks(env):
    gw = env.gateway()
    original_id, msg = send_original(env, gw, "gone@example.net", "<m1@example.org>", "acme")
    # The sink saw the VERP return path, whose id is the message's.
    m = VERP_RX.match(msg["from"])
    assert m and m.group(1) == original_id, msg["from"]
    # A Postfix-shaped DSN comes back to that address (null sender, as bounces do).
    send(gw, "", [msg["from"]], postfix_dsn(msg["from"], "gone@example.net", "<other@x>"))
    rec = wait_for(lambda: log_records(gw, "async_bounce"), what="async_bounce record")[0]
    assert rec["id"] == original_id
    assert rec["recipient"] == "gone@example.net"
    assert rec["sender"] == "sender@example.org"
    assert rec["code"] == 550 and rec["enhanced"] == "5.1.1"
    assert rec["bounce_class"] == "bad-mailbox"
    assert rec["meta"] == {"tenant": "acme"}
    assert re.fullmatch(r"[0-9a-f]{32}", rec["report_id"]) and rec["report_id"] != original_id
    # The suppression plugin's bounced hook suppressed the address ...
    assert "gone@example.net" in wait_for(lambda: suppression(gw), what="suppression")
    # ... the webhook got the record ...
    ev = wait_for(lambda: [e for e in env.receiver.events() if e["event"] == "async_bounce"],
                  what="webhook event")[0]
    assert ev["id"] == original_id and ev["recipient"] == "gone@example.net"
    # ... nothing was relayed (the sink has only the original) and it is counted.
    assert len(env.recorder.messages) == 1
    text = metrics(gw)
    assert metric(text, "mailgate_feedback_reports_total", 'kind="bounce",matched="true"') == 1
    assert metric(text, "mailgate_feedback_tenant_reports_total",
                  'kind="bounce",tenant="acme"') == 1


def test_verp_sends_one_transaction_per_recipient(env):
    gw = env.gateway(webhook=False)
    body = "From: sender@example.org\r\nSubject: two\r\nMessage-ID: <two@example.org>\r\n\r\nhi\r\n"
    send(gw, "sender@example.org", ["a@example.net", "b@example.net"], body)
    msgs = wait_for(lambda: env.recorder.messages if len(env.recorder.messages) == 2 else None,
                    what="two transactions")
    assert sorted(len(m["to"]) for m in msgs) == [1, 1]
    paths = {m["to"][0]: VERP_RX.match(m["from"]) for m in msgs}
    assert all(paths.values())
    assert paths["a@example.net"].group(1) == paths["b@example.net"].group(1)  # one message
    assert paths["a@example.net"].group(2) != paths["b@example.net"].group(2)  # two hashes


def test_bad_verp_hash_is_unmatched_and_suppresses_nothing(env):
    gw = env.gateway()
    original_id, msg = send_original(env, gw, "victim@example.net", "<m2@example.org>")
    m = VERP_RX.match(msg["from"])
    forged = f"b+{m.group(1)}.{'a' * 10 if m.group(2) != 'a' * 10 else 'b' * 10}@bounces.example.com"
    send(gw, "", [forged], postfix_dsn(forged, "victim@example.net", "<m2@example.org>"))
    rec = wait_for(lambda: log_records(gw, "async_bounce"), what="async_bounce record")[0]
    assert rec["id"] is None and rec["recipient"] == "victim@example.net"
    assert "victim@example.net" not in suppression(gw)
    assert metric(metrics(gw), "mailgate_feedback_reports_total",
                  'kind="bounce",matched="false"') == 1


def test_restart_between_send_and_bounce_still_matches(env, tmp_path):
    gw = env.gateway(webhook=False)
    original_id, msg = send_original(env, gw, "later@example.net", "<m3@example.org>")
    assert gw.stop() == 0
    gw2 = env.gateway(webhook=False, spool=tmp_path / "spool")
    send(gw2, "", [msg["from"]], postfix_dsn(msg["from"], "later@example.net", "<m3@example.org>",
                                             status="5.2.2", diag="552 5.2.2 mailbox full"))
    rec = wait_for(lambda: log_records(gw2, "async_bounce"), what="async_bounce record")[0]
    assert rec["id"] == original_id and rec["bounce_class"] == "quota"
    assert "later@example.net" not in suppression(gw2)  # quota is not an address failure


def test_dsn_by_message_id_without_verp_address(env):
    gw = env.gateway(webhook=False)
    original_id, _ = send_original(env, gw, "plain@example.net", "<m4@example.org>")
    # To the bounce domain but not a VERP address: the returned Message-ID matches.
    send(gw, "", ["bounces@bounces.example.com"],
         postfix_dsn("bounces@bounces.example.com", "plain@example.net", "<m4@example.org>"))
    rec = wait_for(lambda: log_records(gw, "async_bounce"), what="async_bounce record")[0]
    assert rec["id"] == original_id and rec["recipient"] == "plain@example.net"
    assert rec["original_message_id"] == "<m4@example.org>"


def test_mailgates_own_dsn_is_consumed_and_matched(env):
    # The sink refuses one recipient; the gateway's own DSN goes to the
    # sender (routed to the sink too); fed back to the bounce address, it
    # matches the message by its returned Message-ID.
    env.recorder.rcpt_reply["refused@example.net"] = "550 5.1.1 no such user here"
    gw = env.gateway(webhook=False)
    body = ("From: sender@example.org\r\nTo: refused@example.net\r\nSubject: x\r\n"
            "Message-ID: <m5@example.org>\r\n\r\nhi\r\n")
    send(gw, "sender@example.org", ["refused@example.net"], body)
    bounce = wait_for(lambda: log_records(gw, "bounce"), what="bounce record")[0]
    dsn = wait_for(lambda: [m for m in env.recorder.messages if m["from"] in ("", "<>")],
                   what="mailgate's DSN at the sink")[0]
    send(gw, "", ["bounces@bounces.example.com"], dsn["data"])
    rec = wait_for(lambda: log_records(gw, "async_bounce"), what="async_bounce record")[0]
    assert rec["id"] == bounce["id"] and rec["recipient"] == "refused@example.net"
    assert rec["enhanced"] == "5.1.1" and rec["bounce_class"] == "bad-mailbox"


def test_arf_complaint_matched_by_message_id_suppresses_with_reason_complaint(env):
    gw = env.gateway()
    original_id, _ = send_original(env, gw, "angry@example.net", "<m6@example.org>", "acme")
    send(gw, "", ["fbl@fbl.example.com"], arf("fbl@fbl.example.com", "angry@example.net",
                                              "<m6@example.org>"))
    rec = wait_for(lambda: log_records(gw, "complaint"), what="complaint record")[0]
    assert rec["id"] == original_id and rec["recipient"] == "angry@example.net"
    assert rec["feedback_type"] == "abuse" and rec["meta"] == {"tenant": "acme"}
    assert wait_for(lambda: suppression(gw).get("angry@example.net")) == "complaint"
    ev = wait_for(lambda: [e for e in env.receiver.events() if e["event"] == "complaint"],
                  what="webhook event")[0]
    assert ev["id"] == original_id
    text = metrics(gw)
    assert metric(text, "mailgate_feedback_reports_total", 'kind="complaint",matched="true"') == 1
    # The next message to that address is refused at RCPT by the suppression plugin.
    with pytest.raises(smtplib.SMTPRecipientsRefused):
        send(gw, "sender@example.org", ["angry@example.net"], "Subject: again\r\n\r\nhi\r\n")


def test_redacted_arf_matches_a_one_recipient_message(env):
    gw = env.gateway(webhook=False)
    original_id, _ = send_original(env, gw, "quiet@example.net", "<m7@example.org>")
    send(gw, "", ["fbl@fbl.example.com"],
         arf("fbl@fbl.example.com", "redacted@example.invalid", "<m7@example.org>",
             include_rcpt=False))
    rec = wait_for(lambda: log_records(gw, "complaint"), what="complaint record")[0]
    assert rec["id"] == original_id and rec["recipient"] == "quiet@example.net"


def test_forged_arf_for_an_address_never_mailed_suppresses_nothing(env):
    gw = env.gateway()
    send(gw, "", ["fbl@fbl.example.com"],
         arf("fbl@fbl.example.com", "never@example.net", "<never-sent@example.org>"))
    rec = wait_for(lambda: log_records(gw, "complaint"), what="complaint record")[0]
    assert rec["id"] is None and rec["recipient"] == "never@example.net"
    ev = wait_for(lambda: [e for e in env.receiver.events() if e["event"] == "complaint"],
                  what="webhook event")[0]
    assert ev["id"] is None
    assert "never@example.net" not in suppression(gw)
    assert metric(metrics(gw), "mailgate_feedback_reports_total",
                  'kind="complaint",matched="false"') == 1


def test_unreadable_report_is_accepted_and_counted(env):
    gw = env.gateway(webhook=False)
    send(gw, "", ["fbl@fbl.example.com"], "Subject: not a report\r\n\r\njust text\r\n")
    gw.wait_log(r"feedback report [0-9a-f]{32} \(complaint\) not used")
    assert metric(metrics(gw), "mailgate_feedback_unparsed_total", 'kind="complaint"') == 1
    assert log_records(gw, "complaint") == [] and env.recorder.messages == []


def test_consumed_domain_outside_relay_domains_is_refused(env):
    # The client is outside relay_networks and the bounce domain is not in
    # relay_domains (nor granted): relay control refuses it like any domain.
    gw = env.gateway(webhook=False, relay_networks='"10.0.0.0/8"',
                     relay_domains='"fbl.example.com"')
    with pytest.raises(smtplib.SMTPRecipientsRefused) as e:
        send(gw, "", ["b+00@bounces.example.com"], "Subject: x\r\n\r\nx\r\n")
    code, text = e.value.recipients["b+00@bounces.example.com"]
    assert code == 550 and b"5.7.1" in text


@pytest.mark.parametrize("delivery,error", [
    ('verp = "b+{id}@bounces.example.com", verp_secret = "0123456789abcdef"',
     "delivery.verp: must contain {id} and {rcpt_hash} exactly once each"),
    ('verp = "b+{id}.{rcpt_hash}@{id}.example.com", verp_secret = "0123456789abcdef"',
     "delivery.verp: must contain {id} and {rcpt_hash} exactly once each"),
    ('verp = "b+{id}.{rcpt_hash}.{x}@bounces.example.com", verp_secret = "0123456789abcdef"',
     "unknown placeholder {x}"),
    ('verp = "b+{id}.{rcpt_hash}@bounces.example.com"',
     "delivery.verp_secret: required with verp"),
    ('verp = "b+{id}.{rcpt_hash}@bounces.example.com", verp_secret = "short"',
     "delivery.verp_secret: required with verp, at least 16 characters"),
])
def test_check_config_refuses_bad_verp_settings_without_showing_the_secret(tmp_path, delivery,
                                                                          error):
    import subprocess
    from conftest import BIN
    p = tmp_path / "mailgate.lua"
    p.write_text('mailgate.configure { spool = { path = "%s" }, delivery = { %s } }\n'
                 'mailgate.listen { address = "127.0.0.1:2525" }\n' % (tmp_path / "s", delivery))
    r = subprocess.run([BIN, "check-config", "--config", str(p)], capture_output=True, text=True,
                       timeout=60)
    assert r.returncode != 0 and error in r.stderr, r.stderr
    assert "0123456789abcdef" not in r.stderr + r.stdout


def test_index_entries_are_swept_after_retention(env):
    gw = env.gateway(webhook=False, extra='feedback = { retention = "2s" },')
    original_id, _ = send_original(env, gw, "old@example.net", "<m8@example.org>")
    report = postfix_dsn("bounces@bounces.example.com", "old@example.net", "<m8@example.org>")
    sent = []

    def swept():
        send(gw, "", ["bounces@bounces.example.com"], report)
        sent.append(1)
        recs = wait_for(lambda: (lambda r: r if len(r) == len(sent) else None)(
            log_records(gw, "async_bounce")), what="the report's record")
        return recs[-1]["id"] is None

    wait_for(swept, timeout=30, interval=0.3, what="the index entry to be swept")
    ids = [r["id"] for r in log_records(gw, "async_bounce")]
    assert set(ids) <= {original_id, None}


def test_report_killed_after_250_still_reaches_the_webhook(env, tmp_path):
    # The events' webhook rows are synced before the 250: kill -9 right after
    # it loses none.
    env.receiver.set(status=500)  # the target is down: events stay queued
    gw = env.gateway()
    original_id, _ = send_original(env, gw, "kill@example.net", "<m9@example.org>")
    send(gw, "", ["fbl@fbl.example.com"], arf("fbl@fbl.example.com", "kill@example.net",
                                              "<m9@example.org>"))
    gw.kill9()
    env.receiver.set(status=200)
    gw2 = env.gateway(spool=tmp_path / "spool")
    ev = wait_for(lambda: [e for e in env.receiver.events() if e["event"] == "complaint"],
                  what="the complaint at the webhook after the restart")[0]
    assert ev["id"] == original_id and ev["recipient"] == "kill@example.net"


def test_hostile_reports_are_answered_and_bounded(env):
    gw = env.gateway(webhook=False, extra='feedback = { max_size = "64KB" },')
    nested = "".join('Content-Type: multipart/report; boundary="b%d"\r\n\r\n--b%d\r\n' % (i, i)
                     for i in range(2000))
    send(gw, "", ["bounces@bounces.example.com"], "Subject: nest\r\n" + nested)
    # A well-formed DSN over feedback.max_size: accepted, not parsed.
    big = (postfix_dsn("bounces@bounces.example.com", "x@example.net", "<x@x>") +
           ("x" * 900 + "\r\n") * 100)
    send(gw, "", ["bounces@bounces.example.com"], big)
    wait_for(lambda: metric(metrics(gw), "mailgate_feedback_unparsed_total", 'kind="bounce"') == 2,
             what="two unparsed bounces")
    assert log_records(gw, "async_bounce") == [] and env.recorder.messages == []
    assert gw.proc.poll() is None


@pytest.mark.skipif(not __import__("postfix_peer").available(),
                    reason="a private Postfix needs root and the postfix package")
def test_real_postfix_bounce_comes_back_and_matches(tmp_path):
    # mailgate → Postfix (accepts) → sink (550 5.1.1 at RCPT) → Postfix's
    # bounce(8) DSN to the VERP return path → mailgate consumes it.
    from postfix_peer import Postfix
    started = []
    try:
        sink_port, mg_port = free_port(), free_port()
        recorder = Recorder(rcpt_reply={"gone@dest.test": "550 5.1.1 <gone@dest.test>: no such user"})
        started.append(Sink("127.0.0.1", sink_port, recorder))
        pf = Postfix({"dest.test": f"[127.0.0.1]:{sink_port}",
                      "bounces.example.com": f"[127.0.0.1]:{mg_port}"}, ["dest.test"])
        started.append(pf)
        config = write_config(tmp_path, pf.port)
        gw = Gateway(tmp_path / "spool", config=config,
                     sets=[f"listen.address=127.0.0.1:{mg_port}"])
        started.append(gw)
        body = ("From: sender@example.org\r\nTo: gone@dest.test\r\nSubject: hi\r\n"
                "Message-ID: <pf1@example.org>\r\n\r\nhello\r\n")
        send(gw, "sender@example.org", ["gone@dest.test"], body)
        sent = wait_for(lambda: log_records(gw, "delivery"), what="delivery to Postfix")[0]
        rec = wait_for(lambda: log_records(gw, "async_bounce"), timeout=60,
                       what="Postfix's bounce consumed:\n" + pf.log())[0]
        assert rec["id"] == sent["id"] and rec["recipient"] == "gone@dest.test"
        assert rec["enhanced"] == "5.1.1" and rec["bounce_class"] == "bad-mailbox"
        assert "mx.postfix.test" in rec["reporter"]
        assert "gone@dest.test" in suppression(gw)
    finally:
        for s in reversed(started):
            s.stop()
