"""SMTP AUTH to a smarthost end to end: the real gateway routes mail with a
`route` hook returning `auth = { user, password }` to aiosmtpd servers that
check credentials (aiosmtpd's authenticator), on loopback. Proves that mail
arrives authenticated (PLAIN after STARTTLS; LOGIN in plaintext when the route
allows it), and that a wrong password or a missing TLS defers the message with
a clear reason instead of bouncing it, while the password appears nowhere: not
in the delivery log, the gateway's log, the admin API or `spool dump`."""
import json
import os
import textwrap
import urllib.request

import pytest
from aiosmtpd.smtp import AuthResult

from conftest import Gateway, spool_dump, wait_for
from peers import CountingController, Recorder, free_port
from test_delivery import log_events, send, server_tls_context

PASSWORD = "s3cret-Pa55"
WRONG = "wr0ng-Pa55-guess"


class AuthRecorder(Recorder):
    """A Recorder that also notes who the session logged in as."""

    def __init__(self):
        super().__init__()
        self.logins = []  # (mechanism, user, password, tls) of every AUTH attempt

    async def handle_DATA(self, server, session, envelope):
        reply = await super().handle_DATA(server, session, envelope)
        with self.lock:
            # auth_data: what the authenticator's AuthResult carried (the user).
            self.messages[-1]["auth"] = session.auth_data if session.authenticated else None
        return reply


class AuthSink:
    """aiosmtpd on host:port accepting AUTH for `user`/`password` only;
    `tls_context`: offers STARTTLS (and then AUTH, aiosmtpd's default);
    without it AUTH is offered in plaintext."""

    def __init__(self, host, port, user="app", password=PASSWORD, tls_context=None,
                 exclude=()):
        self.handler = AuthRecorder()

        def authenticator(server, session, envelope, mechanism, auth_data):
            login, pw = auth_data.login.decode(), auth_data.password.decode()
            with self.handler.lock:
                self.handler.logins.append((mechanism, login, pw, session.ssl is not None))
            ok = login == user and pw == password
            # handled=False: aiosmtpd answers 535 5.7.8 itself (its default
            # leaves a failure unanswered, for authenticators that reply).
            return AuthResult(success=ok, handled=False, auth_data=login if ok else None)

        kwargs = {"decode_data": False, "authenticator": authenticator,
                  "auth_exclude_mechanism": list(exclude)}
        if tls_context is not None:
            kwargs["tls_context"] = tls_context
        else:
            kwargs["auth_require_tls"] = False
        self.controller = CountingController(self.handler, hostname=host, port=port,
                                             ready_timeout=10, **kwargs)
        self.controller.start()

    def stop(self):
        self.controller.stop()


def policy(tmp_path, host, port, auth_lua, tls=None):
    p = tmp_path / "mailgate.lua"
    tls_field = f', tls = "{tls}"' if tls else ""
    p.write_text(textwrap.dedent(f"""
        mailgate.configure {{ policy = {{ hook_timeout = "3s" }} }}
        mailgate.listen {{ address = "127.0.0.1:2525" }}
        mailgate.on("route", function(msg, domain)
          if domain == "partner.test" then
            return {{ smarthost = "[{host}]:{port}"{tls_field}, auth = {auth_lua} }}
          end
        end)
    """))
    return str(p)


@pytest.fixture
def env(tmp_path):
    started = []

    class Env:
        port = free_port()

        def sink(self, host, **kw):
            s = AuthSink(host, self.port, **kw)
            started.append(s)
            return s

        def gateway(self, config, sets=()):
            gw = Gateway(tmp_path / "spool", config=config,
                         sets=["delivery.retry.first=1s", "delivery.retry.max=2s"] + list(sets))
            started.append(gw)
            return gw

    yield Env()
    for s in reversed(started):
        s.stop()


def deferrals(gw):
    return [e for e in log_events(gw) if e["event"] == "transient_failure"]


def http_get(gw, path):
    port = int(gw.wait_log(r"listening http=\S+:(\d+)").group(1))
    with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=10) as r:
        return r.read().decode()


def deliveries_text(gw):
    path = os.path.join(os.path.dirname(gw.spool), "deliveries.jsonl")
    with open(path) as f:
        return f.read()


def test_mail_through_a_route_with_auth_arrives_authenticated(env, tmp_path):
    sink = env.sink("127.0.0.91", tls_context=server_tls_context(tmp_path, "relay.test"))
    gw = env.gateway(policy(tmp_path, "127.0.0.91", env.port,
                            f'{{ user = "app", password = "{PASSWORD}" }}'))
    send(gw, "s@origin.test", ["a@partner.test", "b@partner.test"])
    wait_for(lambda: sink.handler.count() == 1, 30, what="the message at the smarthost")
    m = sink.handler.messages[0]
    assert m["auth"] == "app" and m["tls"], m
    assert sorted(m["to"]) == ["a@partner.test", "b@partner.test"]
    # PLAIN, over TLS, once.
    assert sink.handler.logins == [("PLAIN", "app", PASSWORD, True)]
    wait_for(lambda: any(e["event"] == "delivery" for e in log_events(gw)), 10,
             what="delivery log")
    ev = [e for e in log_events(gw) if e["event"] == "delivery"][0]
    assert ev["destination"] == f"app@[127.0.0.91]:{env.port}" and ev["tls"] is True
    gw.stop()
    for where in (deliveries_text(gw), gw.log()):
        assert PASSWORD not in where


def test_login_in_plaintext_when_the_route_allows_it(env, tmp_path):
    sink = env.sink("127.0.0.92", exclude=["PLAIN"])  # no TLS; LOGIN only
    gw = env.gateway(policy(tmp_path, "127.0.0.92", env.port,
                            f'{{ user = "app", password = "{PASSWORD}", plaintext = true }}'))
    send(gw, "s@origin.test", ["a@partner.test"])
    wait_for(lambda: sink.handler.count() == 1, 30, what="the message at the smarthost")
    assert sink.handler.messages[0]["auth"] == "app"
    assert sink.handler.messages[0]["tls"] is False
    assert sink.handler.logins == [("LOGIN", "app", PASSWORD, False)]


def test_wrong_password_defers_never_bounces_and_never_shows_the_password(env, tmp_path):
    sink = env.sink("127.0.0.93", tls_context=server_tls_context(tmp_path, "relay.test"))
    gw = env.gateway(policy(tmp_path, "127.0.0.93", env.port,
                            f'{{ user = "app", password = "{WRONG}" }}'))
    send(gw, "s@origin.test", ["a@partner.test"])
    wait_for(lambda: deferrals(gw), 30, what="a transient failure for the refused login")
    ev = deferrals(gw)[0]
    assert ev["code"] == 454 and ev["enhanced"] == "4.7.8", ev
    assert "smarthost authentication failed" in ev["text"] and "535" in ev["text"], ev
    assert ev["destination"] == f"app@[127.0.0.93]:{env.port}"
    # Retried (retry.first = 1s), never bounced, never delivered.
    wait_for(lambda: len(sink.handler.logins) >= 2, 30, what="a second login attempt")
    assert sink.handler.count() == 0
    assert not any(e["event"] in ("bounce", "delivery") for e in log_events(gw))
    # Neither the admin API nor the logs show the password.
    listing = http_get(gw, "/api/v1/queue") + http_get(gw, "/api/v1/messages?limit=10")
    assert f"app@[127.0.0.93]:{env.port}" in listing
    ids = [m["id"] for m in json.loads(http_get(gw, "/api/v1/messages?limit=10"))["messages"]]
    assert len(ids) == 1
    listing += http_get(gw, f"/api/v1/messages/{ids[0]}")
    assert WRONG not in listing
    gw.stop()
    assert WRONG not in deliveries_text(gw)
    assert WRONG not in gw.log()
    # The message waits in the spool (with its credentials, which `spool dump`
    # does not print).
    dump = spool_dump(gw.spool)
    assert len(dump) == 1 and dump[0]["dests"][0]["states"] == ["pending"]
    assert WRONG not in json.dumps(dump)


def test_no_tls_and_no_plaintext_defers_with_a_clear_reason(env, tmp_path):
    sink = env.sink("127.0.0.94")  # AUTH offered without TLS, no STARTTLS at all
    gw = env.gateway(policy(tmp_path, "127.0.0.94", env.port,
                            f'{{ user = "app", password = "{PASSWORD}" }}'))
    send(gw, "s@origin.test", ["a@partner.test"])
    wait_for(lambda: deferrals(gw), 30, what="a transient failure for the missing TLS")
    ev = deferrals(gw)[0]
    assert ev["code"] == 454 and ev["enhanced"] == "4.7.11", ev
    assert "no TLS" in ev["text"] and "plaintext" in ev["text"], ev
    assert sink.handler.logins == []  # nothing was sent in the clear
    assert sink.handler.count() == 0
    assert not any(e["event"] == "bounce" for e in log_events(gw))


def test_a_bad_auth_table_is_a_hook_error(env, tmp_path):
    sink = env.sink("127.0.0.95")
    gw = env.gateway(policy(tmp_path, "127.0.0.95", env.port, '{ user = "app" }'))
    import smtplib
    with smtplib.SMTP(gw.host, gw.port, timeout=30) as s:
        s.ehlo()
        s.mail("s@origin.test")
        s.rcpt("a@partner.test")
        code, text = s.data(b"Subject: x\r\n\r\nx\r\n")
    assert code == 451 and b"4.3.0" in text
    gw.wait_log(r"lua route hook failed: route hook result: auth.password must be")
    assert sink.handler.count() == 0
