"""Outbound DANE (RFC 7672, issue 11 item 6) end to end: a dnspython server
(peers.ZoneServer) plays the gateway's validating resolver, setting AD on
the answers of its "secure" zones only when a query asks for DNSSEC
information (AD or DO), and serves MX, A and TLSA records; aiosmtpd sinks
with STARTTLS have certificates from a test CA (testca.py) that the gateway
does NOT trust (no delivery.tls_ca_file): only the TLSA records can
authenticate them. Checked: DANE-EE matches the key whatever the
certificate says (self-signed, expired, wrong name), a mismatch defers with
4.7.5 and never falls back to plaintext, DANE-TA needs the chain and the MX
name, no STARTTLS is 4.7.10, an authentic denial or an insecure zone gives
opportunistic TLS, a failed TLSA lookup defers with 4.7.5, unusable
records still encrypt; the delivery log (`tls_error`, text) and
mailgate_dane_sessions_total / mailgate_tls_rpt_sessions_total say what
happened."""
import re
import subprocess

import pytest

from conftest import BIN, CONFIG, wait_for
from test_delivery import log_events, net, send  # noqa: F401 (net is a fixture)
from test_http_api import Api
from testca import TestCA

# destination -> MX address; every MX host is "mx.<destination>".
HOSTS = {
    "ee.test": "127.0.0.81",        # DANE-EE of its key; expired, wrong name, untrusted CA
    "eeself.test": "127.0.0.82",    # DANE-EE SHA-512 of its whole self-signed certificate
    "eebad.test": "127.0.0.83",     # DANE-EE of another key
    "ta.test": "127.0.0.84",        # DANE-TA of the test CA, names the MX
    "tawrong.test": "127.0.0.85",   # DANE-TA of the test CA, names another host
    "notls.test": "127.0.0.86",     # TLSA published, no STARTTLS offered
    "none.test": "127.0.0.87",      # secure zone, no TLSA (authentic NXDOMAIN)
    "insecure.test": "127.0.0.88",  # zone without AD; a non-matching TLSA record
    "servfail.test": "127.0.0.89",  # the TLSA lookup fails (SERVFAIL, as for bogus data)
    "unusable.test": "127.0.0.90",  # only a PKIX-EE(1) record: unusable in SMTP
}
SECURE = [d for d in HOSTS if d != "insecure.test"]


@pytest.fixture
def world(net, tmp_path):
    """(zone, sinks, ca): DNS, a sink per destination, certificates, TLSA."""
    ca = TestCA(tmp_path / "ca")
    other = ca.issue("other.example", sans=["other.example"])[0]  # a key no sink uses
    certs = {
        "ee.test": ca.issue("mx.ee.test", sans=["wrong.example"], expired=True),
        "eeself.test": ca.issue("mx.eeself.test", sans=["mx.eeself.test"], self_signed=True),
        "eebad.test": ca.issue("mx.eebad.test", sans=["mx.eebad.test"]),
        "ta.test": ca.issue("mx.ta.test", sans=["mx.ta.test"]),
        "tawrong.test": ca.issue("mx.tawrong.test", sans=["mx.other.test"]),
        "none.test": ca.issue("mx.none.test", sans=["mx.none.test"], self_signed=True),
        "insecure.test": ca.issue("mx.insecure.test", sans=["mx.insecure.test"]),
        "servfail.test": ca.issue("mx.servfail.test", sans=["mx.servfail.test"]),
        "unusable.test": ca.issue("mx.unusable.test", sans=["mx.unusable.test"]),
    }
    tlsa = {
        "ee.test": [TestCA.tlsa(certs["ee.test"][0], 3, 1, 1)],
        "eeself.test": [TestCA.tlsa(certs["eeself.test"][0], 3, 0, 2)],
        "eebad.test": [TestCA.tlsa(other, 3, 1, 1)],
        "ta.test": [TestCA.tlsa(ca.cert, 2, 0, 1)],
        "tawrong.test": [TestCA.tlsa(ca.cert, 2, 0, 1)],
        "notls.test": [TestCA.tlsa(other, 3, 1, 1)],
        "insecure.test": [TestCA.tlsa(other, 3, 1, 1)],
        "servfail.test": [TestCA.tlsa(other, 3, 1, 1)],
        "unusable.test": [TestCA.tlsa(certs["unusable.test"][0], 1, 1, 1)],
    }
    records, servfail, sinks = {}, [], {}
    for dest, ip in HOSTS.items():
        mx = f"mx.{dest}"
        records[(dest, "MX")] = [f"10 {mx}."]
        records[(mx, "A")] = [ip]
        name = f"_{net.port}._tcp.{mx}"  # the TLSA name of the port the sinks listen on
        if dest in tlsa:
            records[(name, "TLSA")] = tlsa[dest]
        if dest == "servfail.test":
            servfail.append(name)
        ctx = None
        if dest in certs:
            cert, key = certs[dest]
            # DANE-TA(2) 0 1: the server sends the trust anchor with its chain.
            chain = ca.chain(cert) if dest.startswith("ta") else cert
            ctx = TestCA.server_context(chain, key)
        sinks[dest] = net.sink(ip, tls_context=ctx)
    zone = net.zone(records, secure=SECURE, servfail=servfail)
    return zone, sinks, ca


def dane_gateway(net, zone, sets=()):
    return net.gateway(zone, sets=["delivery.tls=dane", "metrics.destinations.1=ee.test"] +
                       list(sets))


def events(gw, kind, dest):
    return [e for e in log_events(gw) if e["event"] == kind and e["destination"] == dest]


def metric(gw, pattern):
    text = Api(gw).call("GET", "/metrics")[1].decode()
    m = re.search(r"^" + pattern + r" (\d+)", text, re.M)
    return int(m.group(1)) if m else 0


def dane_count(gw, result):
    return metric(gw, r'mailgate_dane_sessions_total\{result="%s"\}' % result)


def tls_rpt(gw, destination, policy_type, result):
    return metric(gw, r'mailgate_tls_rpt_sessions_total\{destination="%s",policy="%s",'
                      r'result="%s"\}' % (re.escape(destination), policy_type, result))


def deferred(gw, dest):
    wait_for(lambda: events(gw, "transient_failure", dest), 30, what=f"deferral of {dest}")
    return events(gw, "transient_failure", dest)[0]


def test_dane_ee_authenticates_the_key_whatever_the_certificate_says(net, world):
    zone, sinks, _ = world
    gw = dane_gateway(net, zone)
    send(gw, "s@example.org", ["a@ee.test"])
    send(gw, "s@example.org", ["a@eeself.test"])
    for dest in ("ee.test", "eeself.test"):
        wait_for(lambda: events(gw, "delivery", dest), 30, what=f"DANE-EE delivery to {dest}")
        assert sinks[dest].handler.messages[0]["tls"], dest
        assert events(gw, "delivery", dest)[0]["tls"] is True
    assert dane_count(gw, "verified") == 2
    assert dane_count(gw, "failed") == 0
    # TLS-RPT: these sessions ran under the tlsa policy type.
    assert tls_rpt(gw, "ee.test", "tlsa", "success") == 1
    # The gateway asked for DNSSEC information on every query it sent.
    assert zone.queries and all(asked for _, _, asked in zone.queries), zone.queries
    assert (f"_{net.port}._tcp.mx.ee.test", "TLSA", True) in zone.queries


def test_dane_ee_mismatch_defers_and_never_falls_back_to_plaintext(net, world):
    zone, sinks, _ = world
    gw = dane_gateway(net, zone)
    send(gw, "s@example.org", ["a@eebad.test"])
    ev = deferred(gw, "eebad.test")
    assert (ev["code"], ev["enhanced"], ev["tls_error"]) == (421, "4.7.5", "tlsa-invalid"), ev
    assert "dane: no TLSA record matched" in ev["text"], ev
    # Let a retry happen too (retry.first = 1 s): still nothing in plaintext.
    wait_for(lambda: len(events(gw, "transient_failure", "eebad.test")) >= 2, 30,
             what="a second deferral")
    assert sinks["eebad.test"].handler.count() == 0
    assert sinks["eebad.test"].handler.rcpt_calls == []
    assert "retrying without TLS" not in gw.log()
    assert dane_count(gw, "failed") >= 2
    assert dane_count(gw, "verified") == 0


def test_dane_ta_needs_the_chain_and_the_mx_name(net, world):
    zone, sinks, _ = world
    gw = dane_gateway(net, zone)
    send(gw, "s@example.org", ["a@ta.test"])
    send(gw, "s@example.org", ["a@tawrong.test"])
    wait_for(lambda: events(gw, "delivery", "ta.test"), 30, what="DANE-TA delivery")
    assert sinks["ta.test"].handler.messages[0]["tls"]
    ev = deferred(gw, "tawrong.test")
    assert (ev["enhanced"], ev["tls_error"]) == ("4.7.5", "certificate-host-mismatch"), ev
    assert ev["text"].startswith("dane: certificate of mx.tawrong.test"), ev
    assert sinks["tawrong.test"].handler.count() == 0


def test_tlsa_records_make_starttls_mandatory(net, world):
    zone, sinks, _ = world
    gw = dane_gateway(net, zone)
    send(gw, "s@example.org", ["a@notls.test"])
    ev = deferred(gw, "notls.test")
    assert (ev["enhanced"], ev["tls_error"]) == ("4.7.10", "starttls-not-supported"), ev
    assert "dane: TLSA records published" in ev["text"], ev
    assert sinks["notls.test"].handler.count() == 0
    assert sinks["notls.test"].handler.rcpt_calls == []


def test_no_tlsa_or_an_insecure_zone_gives_opportunistic_tls(net, world):
    zone, sinks, _ = world
    gw = dane_gateway(net, zone)
    send(gw, "s@example.org", ["a@none.test"])
    send(gw, "s@example.org", ["a@insecure.test"])
    for dest in ("none.test", "insecure.test"):
        wait_for(lambda: events(gw, "delivery", dest), 30, what=f"delivery to {dest}")
        # Opportunistic: encrypted, the certificate (self-signed / untrusted) not checked.
        assert sinks[dest].handler.messages[0]["tls"], dest
    assert not events(gw, "transient_failure", "insecure.test")
    assert dane_count(gw, "no_tlsa") == 1
    assert dane_count(gw, "insecure") == 1
    # The insecure zone's TLSA records were never even asked for (§2.2: the
    # MX and address answers were not authentic).
    assert not any(k == "TLSA" and n.endswith("mx.insecure.test") for n, k, _ in zone.queries)


def test_only_a_query_asking_for_dnssec_gets_ad(world):
    # What makes the tests above mean anything: the server sets AD only for
    # queries with AD or DO, so DANE engaged because the gateway asked.
    import dns.flags
    import dns.message
    import dns.query
    zone, _, _ = world
    plain = dns.message.make_query("ee.test", "MX")
    plain.flags &= ~dns.flags.AD
    flagged = dns.message.make_query("ee.test", "MX", want_dnssec=True)
    insecure = dns.message.make_query("insecure.test", "MX", want_dnssec=True)
    ad = {}
    for what, q in (("plain", plain), ("flagged", flagged), ("insecure", insecure)):
        r = dns.query.udp(q, "127.0.0.1", port=zone.port, timeout=5)
        ad[what] = bool(r.flags & dns.flags.AD)
    assert ad == {"plain": False, "flagged": True, "insecure": False}


def test_a_failed_tlsa_lookup_defers_that_host(net, world):
    zone, sinks, _ = world
    gw = dane_gateway(net, zone)
    # (aiosmtpd's controller connects once itself when it starts)
    before = sinks["servfail.test"].handler.connections
    send(gw, "s@example.org", ["a@servfail.test"])
    ev = deferred(gw, "servfail.test")
    assert (ev["code"], ev["enhanced"], ev["tls_error"]) == (451, "4.7.5", "dnssec-invalid"), ev
    # (c-ares 1.18 gives up on a server that answered SERVFAIL as on an
    # unreachable one: the detail says "could not contact the DNS server".)
    assert ev["text"].startswith("dane: TLSA lookup failed: "), ev
    assert "mx.servfail.test [127.0.0.89]" in ev["text"], ev
    assert sinks["servfail.test"].handler.connections == before  # not even a connection
    assert dane_count(gw, "lookup_failed") >= 1


def test_unusable_tlsa_records_still_require_encryption(net, world):
    zone, sinks, _ = world
    gw = dane_gateway(net, zone)
    send(gw, "s@example.org", ["a@unusable.test"])
    wait_for(lambda: events(gw, "delivery", "unusable.test"), 30, what="delivery")
    assert sinks["unusable.test"].handler.messages[0]["tls"]
    assert dane_count(gw, "unusable") == 1


def test_the_egress_path_hook_asks_for_dane_per_destination(net, world, tmp_path):
    # delivery.tls stays opportunistic: only the destination the hook names gets DANE.
    zone, sinks, _ = world
    config = tmp_path / "dane.lua"
    config.write_text(open(CONFIG).read() + '''
mailgate.on("egress_path", function(destination)
  if destination == "eebad.test" then return { tls = "dane" } end
end)
''')
    gw = net.gateway(zone, config=str(config))
    send(gw, "s@example.org", ["a@eebad.test"])
    send(gw, "s@example.org", ["a@insecure.test"])
    wait_for(lambda: events(gw, "delivery", "insecure.test"), 30, what="opportunistic delivery")
    ev = deferred(gw, "eebad.test")
    assert ev["tls_error"] == "tlsa-invalid", ev
    assert sinks["eebad.test"].handler.count() == 0


def test_check_config_accepts_dane():
    r = subprocess.run([BIN, "check-config", "--config", CONFIG, "--set", "delivery.tls=dane"],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r
