"""MTA-STS (RFC 8461) end to end (issue 11 item 5): dnsmasq publishes the
`_mta-sts` TXT records, MX records and the policy host's address; a Python
http.server + ssl on 127.0.0.60:443 serves the policies with a certificate
from a test CA (testca.py) that the gateway trusts through
delivery.tls_ca_file; aiosmtpd sinks with STARTTLS are the MX hosts.
`enforce` delivers only to listed MX hosts with verified certificates
(else 4.7.5 and tls_error), `testing` delivers and reports, a policy that
cannot be fetched is reported and mail goes out as without one, a policy
is cached until its TXT id changes (a dnspython server whose records change
during the test); TLS-RPT counters show in /metrics. Port 443 needs root: without it the tests skip,
saying so."""
import http.server
import re
import ssl
import threading

import pytest

from conftest import wait_for
from peers import ZoneServer
from test_delivery import log_events, net, send  # noqa: F401 (net is a fixture)
from test_http_api import Api
from testca import TestCA

POLICY_HOST = "127.0.0.60"


def policy(mode, *mx, max_age=3600):
    return ("version: STSv1\r\nmode: %s\r\n" % mode + "".join("mx: %s\r\n" % m for m in mx) +
            "max_age: %d\r\n" % max_age)


# domain -> (MX address, MX certificate names, what https://mta-sts.<domain>/ answers)
DOMAINS = {
    "enf.test": ("127.0.0.61", ["mx.enf.test"], (200, policy("enforce", "*.enf.test"))),
    "enfbad.test": ("127.0.0.62", ["other.test"], (200, policy("enforce", "mx.enfbad.test"))),
    "rogue.test": ("127.0.0.63", ["mx.rogue.test"], (200, policy("enforce", "mx.elsewhere.test"))),
    "testing.test": ("127.0.0.64", ["other.test"], (200, policy("testing", "mx.testing.test"))),
    "broken.test": ("127.0.0.65", ["mx.broken.test"], (404, "not here\n")),
}


class PolicyServer:
    """HTTPS on POLICY_HOST:443 answering /.well-known/mta-sts.txt by Host."""

    def __init__(self, ca, answers):
        self.requests = []
        cert, key = ca.issue("mta-sts", sans=[f"mta-sts.{d}" for d in answers])
        server = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                host = self.headers.get("Host", "").split(":")[0]
                server.requests.append((host, self.path))
                domain = host[len("mta-sts."):]
                status, body = answers.get(domain, (404, "unknown\n"))
                if self.path != "/.well-known/mta-sts.txt":
                    status, body = 404, "wrong path\n"
                data = body.encode()
                self.send_response(status)
                self.send_header("Content-Type", "text/plain")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args):
                pass

        try:
            self.httpd = http.server.ThreadingHTTPServer((POLICY_HOST, 443), Handler)
        except OSError as e:
            pytest.skip(f"cannot listen on {POLICY_HOST}:443 for the MTA-STS policy server: {e}")
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(str(cert), str(key))
        self.httpd.socket = ctx.wrap_socket(self.httpd.socket, server_side=True)
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def fetches(self, domain):
        return sum(1 for host, _ in self.requests if host == f"mta-sts.{domain}")

    def stop(self):
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join(5)


@pytest.fixture
def sts(net, tmp_path):
    ca = TestCA(tmp_path / "ca")
    server = PolicyServer(ca, {d: answer for d, (_, _, answer) in DOMAINS.items()})
    records, sinks = [], {}
    for dest, (ip, names, _) in DOMAINS.items():
        records += [f"--mx-host={dest},mx.{dest},10", f"--host-record=mx.{dest},{ip}",
                    f"--host-record=mta-sts.{dest},{POLICY_HOST}",
                    f"--txt-record=_mta-sts.{dest},v=STSv1; id=20261204T1",
                    # Another TXT record there is ignored (§3.1: only v=STSv1 ones count).
                    f"--txt-record=_mta-sts.{dest},unrelated"]
        sinks[dest] = net.sink(ip, tls_context=TestCA.server_context(*ca.issue(f"mx.{dest}",
                                                                                  sans=names)))
    dns = net.dns(*records)
    gw = net.gateway(dns, sets=["delivery.mta_sts=true", f"delivery.tls_ca_file={ca.cert}",
                                "metrics.destinations.1=testing.test",
                                "metrics.destinations.2=broken.test"])
    yield gw, sinks, server
    server.stop()


def events(gw, kind, dest):
    return [e for e in log_events(gw) if e["event"] == kind and e["destination"] == dest]


def tls_rpt(gw, destination, policy_type, result):
    text = Api(gw).call("GET", "/metrics")[1].decode()
    m = re.search(r'^mailgate_tls_rpt_sessions_total\{destination="%s",policy="%s",result="%s"\} '
                  r'(\d+)' % (re.escape(destination), policy_type, result), text, re.M)
    return int(m.group(1)) if m else 0


def test_enforce_delivers_to_a_listed_mx_with_a_verified_certificate_and_caches(sts):
    gw, sinks, server = sts
    send(gw, "s@example.org", ["a@enf.test"])
    wait_for(lambda: events(gw, "delivery", "enf.test"), 30, what="delivery to enf.test")
    assert sinks["enf.test"].handler.messages[0]["tls"]
    send(gw, "s@example.org", ["b@enf.test"])
    wait_for(lambda: len(events(gw, "delivery", "enf.test")) == 2, 30, what="second delivery")
    # The TXT id did not change: the policy was fetched once, then cached.
    assert server.fetches("enf.test") == 1, server.requests
    assert tls_rpt(gw, "other", "sts", "success") >= 1


def test_enforce_makes_opportunistic_verify_the_mx_certificate(sts):
    gw, sinks, _ = sts
    send(gw, "s@example.org", ["a@enfbad.test"])
    wait_for(lambda: events(gw, "transient_failure", "enfbad.test"), 30, what="deferral")
    ev = events(gw, "transient_failure", "enfbad.test")[0]
    assert (ev["enhanced"], ev["tls_error"]) == ("4.7.5", "certificate-host-mismatch"), ev
    assert sinks["enfbad.test"].handler.count() == 0


def test_enforce_refuses_mx_hosts_the_policy_does_not_list(sts):
    gw, sinks, _ = sts
    send(gw, "s@example.org", ["a@rogue.test"])
    wait_for(lambda: events(gw, "transient_failure", "rogue.test"), 30, what="deferral")
    ev = events(gw, "transient_failure", "rogue.test")[0]
    assert (ev["enhanced"], ev["tls_error"]) == ("4.7.5", "validation-failure"), ev
    assert "MTA-STS" in ev["text"] and "mx.elsewhere.test" in ev["text"], ev
    assert sinks["rogue.test"].handler.count() == 0  # not even a connection's worth of mail


def test_testing_delivers_and_reports_what_would_have_failed(sts):
    gw, sinks, _ = sts
    send(gw, "s@example.org", ["a@testing.test"])
    wait_for(lambda: events(gw, "delivery", "testing.test"), 30, what="delivery in testing mode")
    assert sinks["testing.test"].handler.count() == 1
    wait_for(lambda: tls_rpt(gw, "testing.test", "sts", "certificate-host-mismatch") == 1, 10,
             what="TLS-RPT count for the testing policy")
    assert "MTA-STS testing" in gw.log()


def test_a_policy_that_cannot_be_fetched_is_reported_and_mail_still_goes(sts):
    gw, sinks, server = sts
    send(gw, "s@example.org", ["a@broken.test"])
    wait_for(lambda: events(gw, "delivery", "broken.test"), 30, what="delivery without a policy")
    assert server.fetches("broken.test") >= 1
    assert tls_rpt(gw, "broken.test", "sts", "sts-policy-fetch-error") >= 1
    assert re.search(r"broken\.test: MTA-STS policy discovery failed \(sts-policy-fetch-error\).*"
                     r"HTTP status 404", gw.log()), gw.log()


def test_a_new_txt_id_fetches_the_policy_again(net, tmp_path):
    ca = TestCA(tmp_path / "ca")
    answers = {"refresh.test": (200, policy("enforce", "mx.refresh.test"))}
    server = PolicyServer(ca, answers)
    zone = ZoneServer({
        ("refresh.test", "MX"): ["10 mx.refresh.test."],
        ("mx.refresh.test", "A"): ["127.0.0.66"],
        ("mta-sts.refresh.test", "A"): [POLICY_HOST],
        ("_mta-sts.refresh.test", "TXT"): ['"v=STSv1; id=first;"'],
    })
    try:
        sink = net.sink("127.0.0.66", tls_context=TestCA.server_context(
            *ca.issue("mx.refresh.test", sans=["mx.refresh.test"])))
        # One message per connection: a policy is looked up when a connection
        # starts, and a reused connection would keep the old one.
        gw = net.gateway(zone, sets=["delivery.mta_sts=true", f"delivery.tls_ca_file={ca.cert}",
                                     "delivery.max_messages_per_connection=1"])
        send(gw, "s@example.org", ["a@refresh.test"])
        wait_for(lambda: sink.handler.count() == 1, 30, what="first delivery")
        # The policy changes (it would now refuse this MX) but its id does not:
        # the cached policy stays in force, nothing is fetched.
        answers["refresh.test"] = (200, policy("enforce", "mx.elsewhere.test"))
        send(gw, "s@example.org", ["b@refresh.test"])
        wait_for(lambda: sink.handler.count() == 2, 30, what="second delivery, cached policy")
        assert server.fetches("refresh.test") == 1, server.requests
        # A new id: once the TXT answer leaves the gateway's DNS cache, the
        # next connection fetches the policy again and obeys it.
        zone.records[("_mta-sts.refresh.test", "TXT")] = ['"v=STSv1; id=second;"']

        def refetched():
            if server.fetches("refresh.test") >= 2:
                return True
            send(gw, "s@example.org", ["c@refresh.test"])
            return False

        wait_for(refetched, 40, interval=1.0, what="the policy fetched again for the new id")
        wait_for(lambda: events(gw, "transient_failure", "refresh.test"), 30,
                 what="deferral under the new policy")
        ev = events(gw, "transient_failure", "refresh.test")[-1]
        assert (ev["enhanced"], ev["tls_error"]) == ("4.7.5", "validation-failure"), ev
    finally:
        server.stop()
        zone.stop()
