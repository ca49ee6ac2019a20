"""Outbound TLS policy end to end (issue 11 item 4, DESIGN §6b): the real
gateway delivers to aiosmtpd sinks with STARTTLS whose certificates come
from a test CA made here with openssl (testca.py), MX records from dnsmasq.
`verify` delivers only when the chain reaches the CA given by
delivery.tls_ca_file and the certificate names the MX host (RFC 6125 rules:
subjectAltName, wildcard only as the whole leftmost label, no CN fallback
when there are SANs); anything else is deferred with 4.7.5 (4.7.10 when
STARTTLS is missing) and the delivery log says why in `tls_error`.
`required` delivers over TLS whatever the certificate."""
import subprocess

import pytest

from conftest import BIN, CONFIG, spool_dump, wait_for
from test_delivery import log_events, net, send  # noqa: F401 (net is a fixture)
from testca import TestCA

# destination -> (MX address, how its certificate is made); MX = "mx.<destination>".
CASES = {
    "good.test": ("127.0.0.41", dict(sans=["mx.good.test"])),
    "wild.test": ("127.0.0.42", dict(sans=["*.wild.test"])),
    # The CN names the MX, the SAN does not: a DNS-ID exists, so no CN fallback.
    "wrong.test": ("127.0.0.43", dict(sans=["other.test"])),
    "expired.test": ("127.0.0.44", dict(sans=["mx.expired.test"], expired=True)),
    "self.test": ("127.0.0.45", dict(sans=["mx.self.test"], self_signed=True)),
    # "m*" is a partial wildcard: never a match (RFC 7672 §3.2.2).
    "partial.test": ("127.0.0.46", dict(sans=["m*.partial.test"])),
    "notls.test": ("127.0.0.47", None),  # no STARTTLS at all
}
VERIFY_REFUSES = {
    "wrong.test": ("4.7.5", "certificate-host-mismatch"),
    "expired.test": ("4.7.5", "certificate-expired"),
    "self.test": ("4.7.5", "certificate-not-trusted"),
    "partial.test": ("4.7.5", "certificate-host-mismatch"),
    "notls.test": ("4.7.10", "starttls-not-supported"),
}


@pytest.fixture
def mxs(net, tmp_path):
    """dnsmasq with an MX per case and a sink per case; returns (dns, sinks, ca)."""
    ca = TestCA(tmp_path / "ca")
    records = []
    sinks = {}
    for dest, (ip, cert) in CASES.items():
        records += [f"--mx-host={dest},mx.{dest},10", f"--host-record=mx.{dest},{ip}"]
        ctx = None
        if cert is not None:
            ctx = TestCA.server_context(*ca.issue(f"mx.{dest}", **cert))
        sinks[dest] = net.sink(ip, tls_context=ctx)
    return net.dns(*records), sinks, ca


def deferrals(gw, dest):
    return [e for e in log_events(gw)
            if e["event"] == "transient_failure" and e["destination"] == dest]


def delivered(gw, dest):
    return [e for e in log_events(gw) if e["event"] == "delivery" and e["destination"] == dest]


def send_all(gw):
    for dest in CASES:
        send(gw, "s@example.org", [f"rcpt@{dest}"])


def test_verify_delivers_only_to_certificates_that_chain_and_name_the_mx(net, mxs):
    dns, sinks, ca = mxs
    gw = net.gateway(dns, sets=["delivery.tls=verify", f"delivery.tls_ca_file={ca.cert}"])
    send_all(gw)
    for dest in ("good.test", "wild.test"):
        wait_for(lambda: delivered(gw, dest), 30, what=f"verified delivery to {dest}")
        assert sinks[dest].handler.count() == 1
        assert sinks[dest].handler.messages[0]["tls"], dest
        assert delivered(gw, dest)[0]["tls"] is True
    for dest, (enhanced, why) in VERIFY_REFUSES.items():
        wait_for(lambda: deferrals(gw, dest), 30, what=f"deferral of {dest}")
        ev = deferrals(gw, dest)[0]
        assert ev["code"] == 421 and ev["enhanced"] == enhanced, ev
        assert ev["tls_error"] == why, ev
        assert ev["bounce_class"] == "routing", ev
        assert sinks[dest].handler.count() == 0, dest  # not a byte of mail went there
    assert not any(e["event"] == "bounce" for e in log_events(gw))
    gw.stop()
    # The refused messages wait in the spool for their retries.
    assert len(spool_dump(gw.spool)) == len(VERIFY_REFUSES)


def test_required_delivers_over_tls_whatever_the_certificate(net, mxs):
    dns, sinks, _ = mxs
    gw = net.gateway(dns, sets=["delivery.tls=required"])
    send_all(gw)
    for dest in CASES:
        if dest == "notls.test":
            continue
        wait_for(lambda: delivered(gw, dest), 30, what=f"delivery to {dest}")
        assert sinks[dest].handler.messages[0]["tls"], dest
        assert not deferrals(gw, dest), deferrals(gw, dest)
    wait_for(lambda: deferrals(gw, "notls.test"), 30, what="deferral without STARTTLS")
    ev = deferrals(gw, "notls.test")[0]
    assert (ev["enhanced"], ev["tls_error"]) == ("4.7.10", "starttls-not-supported"), ev
    assert sinks["notls.test"].handler.count() == 0


def test_verify_without_a_ca_file_trusts_only_the_system_store(net, mxs):
    # The test CA is in no system store: even the right name is not trusted.
    dns, sinks, _ = mxs
    gw = net.gateway(dns, sets=["delivery.tls=verify"])
    send(gw, "s@example.org", ["rcpt@good.test"])
    wait_for(lambda: deferrals(gw, "good.test"), 30, what="deferral of good.test")
    ev = deferrals(gw, "good.test")[0]
    assert (ev["enhanced"], ev["tls_error"]) == ("4.7.5", "certificate-not-trusted"), ev
    assert sinks["good.test"].handler.count() == 0


def test_egress_path_asks_for_verify_per_destination(net, mxs, tmp_path):
    # delivery.tls stays opportunistic; the hook makes one destination verify.
    dns, sinks, ca = mxs
    config = tmp_path / "verify.lua"
    config.write_text(open(CONFIG).read() + '''
mailgate.on("egress_path", function(destination)
  if destination == "wrong.test" then return { tls = "verify" } end
end)
''')
    gw = net.gateway(dns, sets=[f"delivery.tls_ca_file={ca.cert}"], config=str(config))
    send(gw, "s@example.org", ["rcpt@wrong.test"])
    send(gw, "s@example.org", ["rcpt@self.test"])
    wait_for(lambda: delivered(gw, "self.test"), 30, what="opportunistic delivery to self.test")
    wait_for(lambda: deferrals(gw, "wrong.test"), 30, what="deferral of wrong.test")
    assert deferrals(gw, "wrong.test")[0]["tls_error"] == "certificate-host-mismatch"
    assert sinks["wrong.test"].handler.count() == 0


@pytest.mark.parametrize("setting,error", [
    ("delivery.tls_ca_file=/nonexistent/ca.pem",
     "delivery.tls_ca_file: cannot read /nonexistent/ca.pem"),
    ("delivery.tls=strict", "delivery.tls: expected opportunistic | required | verify | dane"),
])
def test_check_config_refuses_bad_tls_settings(setting, error):
    r = subprocess.run([BIN, "check-config", "--config", CONFIG, "--set", setting],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 1, r
    assert error in r.stderr, r.stderr
