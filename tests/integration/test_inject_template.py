"""Templated batch injection (POST /api/v1/inject with "recipients") against
the real gateway: 1,000 recipients rendered, delivered to an aiosmtpd sink
and decoded back with Python's email (substitutions, HTML escaping only in
the html part, multipart/alternative); 10,000 recipients in one request;
a template that does not parse is a 400 that queues nothing; per-recipient
refusals (bad address, policy, header injection) beside accepted ones;
Idempotency-Key replays; the token is required as for any inject."""
import email
import email.policy
import re

from conftest import Gateway, spool_dump, wait_for
from peers import Dnsmasq, Sink, free_port
from test_delivery import log_events
# `started`: the fixture that stops what a test started, by PID.
from test_http_api import Api, parse_metrics, started  # noqa: F401


def received_http(api):
    m = parse_metrics(api.call("GET", "/metrics")[1].decode())
    return m.get('mailgate_messages_received_total{protocol="http"}', 0)


POLICY = ('mailgate.listen { address = "127.0.0.1:2525" }\n'
          'mailgate.on("rcpt_to", function(tx, r)\n'
          '  if r.user == "refused" then return mailgate.reject(550, "5.1.1 nobody here") end\n'
          'end)\n')


def delivering_gateway(tmp_path, started, sets=()):
    port = free_port()
    dns = Dnsmasq(["--mx-host=in.test,mx.in.test,10", "--host-record=mx.in.test,127.0.0.93"])
    started.append(dns)
    sink = Sink("127.0.0.93", port)
    started.append(sink)
    config = tmp_path / "mailgate.lua"
    config.write_text(POLICY)
    gw = Gateway(tmp_path / "spool", dns=dns.server, config=str(config),
                 sets=[f"delivery.port={port}", *sets])
    started.append(gw)
    return gw, sink


TEMPLATE = {
    "from": "news@example.org",
    "from_header": "News <news@example.org>",
    "subject": "Hello {{name}}, {{#vip}}VIP {{/vip}}offer {{n}}",
    "headers": {"X-Campaign": "{{campaign}}-{{n}}", "X-Plain": "fixed"},
    "text": "Dear {{name}},\n{{#items}}- {{title}}: {{price}}\n{{/items}}{{^items}}no items\n{{/items}}"
            "{{! not shown }}Bye {{{name}}}\n",
    "html": "<p>Dear {{name}}</p><ul>{{#items}}<li>{{title}}</li>{{/items}}</ul>{{{footer}}}",
    "vars": {"campaign": "spring", "footer": "<hr><small>unsubscribe</small>",
             "name": "customer"},
}


def parts_of(data):
    msg = email.message_from_bytes(data, policy=email.policy.default)
    parts = {p.get_content_type(): p.get_content() for p in msg.walk() if not p.is_multipart()}
    return msg, parts


def test_thousand_recipients_rendered_and_delivered(tmp_path, started):
    gw, sink = delivering_gateway(tmp_path, started)
    api = Api(gw)
    recipients = []
    for n in range(1000):
        v = {"n": n, "name": f"Ann <{n}> & \"co\" ü"}
        if n % 3 == 0:
            v["items"] = [{"title": f"t{n}&<b>", "price": n + 0.5}, {"title": "second", "price": 2}]
        if n % 2 == 0:
            v["vip"] = True
        recipients.append({"email": f"user{n}@in.test", "vars": v})
    recipients[7]["vars"]["name"] = "Evil\r\nBcc: victim@in.test"  # header injection: refused
    status, body = api.json("POST", "/api/v1/inject", body={**TEMPLATE, "recipients": recipients})
    assert status == 200, body
    assert body["accepted"] == 999
    results = body["results"]
    assert [r["email"] for r in results] == [r["email"] for r in recipients]
    bad = results[7]
    assert "id" not in bad and bad["code"] == 550 and bad["text"].startswith("5.6.0 subject")
    assert "CR or LF" in bad["text"]
    ids = [r["id"] for i, r in enumerate(results) if i != 7]
    assert len(set(ids)) == 999 and all(re.fullmatch(r"[0-9a-f]{32}", i) for i in ids)

    wait_for(lambda: sink.handler.count() == 999, 120, what="999 deliveries")
    by_rcpt = {m["to"][0]: m for m in sink.handler.messages}
    assert "user7@in.test" not in by_rcpt and "victim@in.test" not in by_rcpt
    for n in range(1000):
        if n == 7:
            continue
        m = by_rcpt[f"user{n}@in.test"]
        assert m["from"] == "news@example.org"
        msg, parts = parts_of(m["data"])
        name = f"Ann <{n}> & \"co\" ü"
        vip = "VIP " if n % 2 == 0 else ""
        assert str(msg["Subject"]) == f"Hello {name}, {vip}offer {n}"
        assert msg["To"] == f"user{n}@in.test"
        assert msg["From"] == "News <news@example.org>"
        assert msg["X-Campaign"] == f"spring-{n}" and msg["X-Plain"] == "fixed"
        assert msg.get_content_type() == "multipart/alternative"
        text = parts["text/plain"].replace("\r\n", "\n")
        html = parts["text/html"]
        esc = name.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace(
            '"', "&quot;")
        if n % 3 == 0:
            assert text == (f"Dear {name},\n- t{n}&<b>: {n + 0.5}\n- second: 2\nBye {name}\n")
            assert html.rstrip("\r\n") == (
                f"<p>Dear {esc}</p><ul><li>t{n}&amp;&lt;b&gt;</li><li>second</li></ul>"
                "<hr><small>unsubscribe</small>")
        else:
            assert text == f"Dear {name},\nno items\nBye {name}\n"
            assert html.rstrip("\r\n") == (f"<p>Dear {esc}</p><ul></ul>"
                                           "<hr><small>unsubscribe</small>")
    # Each recipient was its own message: one reception per id in the log.
    assert received_http(api) == 999


def test_ten_thousand_recipients_in_one_request(tmp_path, started):
    gw = Gateway(tmp_path / "spool")  # no DNS: the messages stay queued
    started.append(gw)
    api = Api(gw)
    recipients = [{"email": f"r{n}@far.test", "vars": {"n": n}} for n in range(10000)]
    status, body = api.json("POST", "/api/v1/inject", body={
        "from": "bulk@example.org", "subject": "#{{n}}", "text": "number {{n}}",
        "recipients": recipients}, timeout=300)
    assert status == 200, str(body)[:500]
    assert body["accepted"] == 10000
    ids = [r["id"] for r in body["results"]]
    assert len(set(ids)) == 10000
    assert [r["email"] for r in body["results"]] == [r["email"] for r in recipients]
    assert received_http(api) == 10000
    # Over the configured cap: refused as a whole.
    status, body = api.json("POST", "/api/v1/inject", body={
        "from": "bulk@example.org", "text": "x",
        "recipients": recipients + [{"email": "one.more@far.test"}]}, timeout=120)
    assert status == 400 and "http.inject_max_recipients" in body["error"]
    gw.stop()
    started.remove(gw)
    # Every accepted id is in the spool (committed before the reply).
    dumped = {m["id"] for m in spool_dump(tmp_path / "spool")}
    assert set(ids) <= dumped


def test_bad_template_is_400_and_queues_nothing(tmp_path, started):
    gw = Gateway(tmp_path / "spool")
    started.append(gw)
    api = Api(gw)
    base = {"from": "a@example.org", "recipients": [{"email": "x@far.test"}, {"email": "y@far.test"}]}
    cases = [
        ({"html": "<p>\n {{#items}}{{name}}</p>"}, 'html: Unclosed section "items" at line 2, column 2'),
        ({"text": "hi {{name"}, "text: Unclosed tag at line 1, column 4"),
        ({"text": "ok", "subject": "{{/x}}"}, 'subject: Unopened section "x"'),
        ({"text": "{{> footer}}"}, "partials"),
        ({"text": "ok", "headers": {"X-A": "a\r\nBcc: b@c"}}, "headers[0]"),
        ({"text": "ok", "vars": [1]}, "vars: must be an object"),
        ({"text": "ok", "recipients": [{"email": "x@far.test", "vars": "s"}]},
         "recipients[0].vars: must be an object"),
        ({"text": "ok", "recipients": [{"vars": {}}]}, "recipients[0].email"),
        ({"text": "ok", "recipients": []}, "non-empty"),
        ({"text": "ok", "to": ["x@far.test"]}, "cannot be combined"),
        ({"subject": "only a subject"}, "text"),
    ]
    for extra, expect in cases:
        status, body = api.json("POST", "/api/v1/inject", body={**base, **extra})
        assert status == 400, (extra, body)
        assert expect in body["error"], (extra, body)
    assert received_http(api) == 0
    status, body = api.json("GET", "/api/v1/queue")
    assert status == 200 and body["destinations"] == []


def test_mixed_good_and_bad_recipients(tmp_path, started):
    gw, sink = delivering_gateway(tmp_path, started)
    api = Api(gw)
    status, body = api.json("POST", "/api/v1/inject", body={
        "from": "a@example.org", "subject": "{{s}}", "text": "t",
        "recipients": [{"email": "good1@in.test", "vars": {"s": "one"}},
                       {"email": "refused@in.test"},
                       {"email": "not an address"},
                       {"email": "bad<x>@in.test"},
                       {"email": "inj@in.test", "vars": {"s": "a\nb"}},
                       {"email": "good2@in.test", "vars": {"s": "two"}}]})
    assert status == 200, body
    assert body["accepted"] == 2
    r = body["results"]
    assert set(r[0]) == {"email", "id"} and set(r[5]) == {"email", "id"}
    assert r[1] == {"email": "refused@in.test", "code": 550, "text": "5.1.1 nobody here"}
    assert r[2]["code"] == 553 and r[3]["code"] == 553
    assert r[2]["text"].startswith("5.1.3") and r[3]["text"].startswith("5.1.3")
    assert r[4]["code"] == 550 and r[4]["text"].startswith("5.6.0")
    # Every refusal is a `rejection` record, once (written by the logger thread).
    refused = ["refused@in.test", "not an address", "bad<x>@in.test", "inj@in.test"]

    def rejections():
        return sorted(e["recipient"] for e in log_events(gw) if e["event"] == "rejection")
    wait_for(lambda: len(rejections()) >= 4, 20, what="four rejection records")
    assert rejections() == sorted(refused)
    wait_for(lambda: sink.handler.count() == 2, 30, what="two deliveries")
    subjects = sorted(str(parts_of(m["data"])[0]["Subject"]) for m in sink.handler.messages)
    assert subjects == ["one", "two"]
    # None accepted: 422 with the per-recipient replies.
    status, body = api.json("POST", "/api/v1/inject", body={
        "from": "a@example.org", "text": "t",
        "recipients": [{"email": "refused@in.test"}, {"email": "bad<>"}]})
    assert status == 422 and body["accepted"] == 0 and len(body["results"]) == 2


def test_idempotency_key_replays_the_first_result(tmp_path, started):
    gw = Gateway(tmp_path / "spool")
    started.append(gw)
    api = Api(gw)
    req = {"from": "a@example.org", "text": "hi {{n}}",
           "recipients": [{"email": f"k{n}@far.test", "vars": {"n": n}} for n in range(20)]}
    key = {"Idempotency-Key": "order-42"}
    status, first = api.json("POST", "/api/v1/inject", body=req, headers=key)
    assert status == 200 and first["accepted"] == 20
    status, again = api.json("POST", "/api/v1/inject", body=req, headers=key)
    assert status == 200 and again == first
    assert received_http(api) == 20
    # The same key with another body is refused, not replayed.
    status, body = api.json("POST", "/api/v1/inject", body={**req, "text": "other"}, headers=key)
    assert status == 422 and "Idempotency-Key" in body["error"]
    # A bad key is a 400; a 400 request is not remembered under its key.
    assert api.json("POST", "/api/v1/inject", body=req,
                    headers={"Idempotency-Key": "x" * 300})[0] == 400
    k2 = {"Idempotency-Key": "retry-after-fix"}
    assert api.json("POST", "/api/v1/inject", body={**req, "text": "{{#a}}"}, headers=k2)[0] == 400
    status, fixed = api.json("POST", "/api/v1/inject", body=req, headers=k2)
    assert status == 200 and fixed["accepted"] == 20
    assert received_http(api) == 40
    # Kept across a crash (synced to the spool before the answer): the replay
    # after kill -9 and a restart queues nothing new.
    gw.kill9()
    started.remove(gw)
    gw = Gateway(tmp_path / "spool")
    started.append(gw)
    api = Api(gw)
    status, replay = api.json("POST", "/api/v1/inject", body=req, headers=key)
    assert status == 200 and replay == first
    assert received_http(api) == 0


def test_token_required(tmp_path, started):
    gw = Gateway(tmp_path / "spool", sets=["http.token=t0k"])
    started.append(gw)
    req = {"from": "a@example.org", "text": "x", "recipients": [{"email": "a@far.test"}]}
    status, body = Api(gw).json("POST", "/api/v1/inject", body=req)
    assert status == 401
    status, body = Api(gw, token="wrong").json("POST", "/api/v1/inject", body=req)
    assert status == 401
    status, body = Api(gw, token="t0k").json("POST", "/api/v1/inject", body=req)
    assert status == 200 and body["accepted"] == 1


def test_hostile_templates_and_vars(tmp_path, started):
    gw = Gateway(tmp_path / "spool")
    started.append(gw)
    api = Api(gw)
    # Nested lists that would explode: refused for that recipient, the others sent.
    big = list(range(200))
    status, body = api.json("POST", "/api/v1/inject", body={
        "from": "a@example.org",
        "text": "{{#l}}{{#l}}{{#l}}{{#l}}xxxxxxxxxx{{/l}}{{/l}}{{/l}}{{/l}}",
        "recipients": [{"email": "boom@far.test", "vars": {"l": big}},
                       {"email": "fine@far.test", "vars": {"l": [1]}}]})
    assert status == 200 and body["accepted"] == 1, body
    assert body["results"][0]["code"] == 550 and body["results"][0]["text"].startswith("5.6.0 text")
    # Sections nested 80,000 deep (a stack overflow in a recursive renderer): 400.
    status, body = api.json("POST", "/api/v1/inject", body={
        "from": "a@example.org", "text": "{{#a}}" * 80000 + "{{/a}}" * 80000,
        "recipients": [{"email": "x@far.test"}]})
    assert status == 400 and "nested deeper" in body["error"]
    # Vars nested 10,000 deep: 400, not a crash.
    raw = ('{"from":"a@example.org","text":"x","recipients":[{"email":"x@far.test","vars":{"d":'
           + "[" * 10000 + "]" * 10000 + "}}]}").encode()
    status, body = api.json("POST", "/api/v1/inject", raw=raw)
    assert status == 400 and "nested deeper" in body["error"]
    # A var holding template syntax is text, never parsed (no partial recursion).
    status, body = api.json("POST", "/api/v1/inject", body={
        "from": "a@example.org", "subject": "{{s}}", "text": "{{s}}{{{s}}}",
        "recipients": [{"email": "y@far.test", "vars": {"s": "{{>s}}{{#s}}"}}]})
    assert status == 200 and body["accepted"] == 1
    assert gw.proc.poll() is None
    assert received_http(api) == 2


def test_low_disk_refuses_every_recipient_temporarily(tmp_path, started):
    # min_free_space above any real disk: MAIL-stage 452 4.3.1 for each message.
    gw = Gateway(tmp_path / "spool", sets=["spool.min_free_space=1000000GB"])
    started.append(gw)
    api = Api(gw)
    wait_for(lambda: api.json("GET", "/readyz")[1].get("ready") is False, 20,
             what="the gateway to see the low disk")
    status, body = api.json("POST", "/api/v1/inject", body={
        "from": "a@example.org", "text": "x",
        "recipients": [{"email": "a@far.test"}, {"email": "b@far.test"}]})
    assert status == 503 and body["accepted"] == 0
    assert all(r["code"] == 452 and r["text"].startswith("4.3.1") for r in body["results"])
    assert received_http(api) == 0
