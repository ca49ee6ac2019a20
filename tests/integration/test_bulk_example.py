"""README "Bulk sending: a worked example": runs conf/examples/bulk.lua as it
is on loopback (dnsmasq answers the providers' MX names with loopback
sinks; 127.0.0.2 and 127.0.0.3 stand for the two sending addresses) and
prints what the README shows: the split at the sinks, the shaping action
Yahoo's [TS04] triggered, the queue, the paths and the metrics."""
import json
import os
import smtplib
import subprocess
import urllib.request

from conftest import BIN, SOURCE, Gateway, wait_for
from peers import Dnsmasq, Recorder, Sink, free_port

EXAMPLE = os.path.join(SOURCE, "conf/examples/bulk.lua")
TS04 = "421 4.7.0 [TS04] Messages from 127.0.0.2 temporarily deferred due to unexpected volume"


def send(gw, tenant, rcpts, campaign=None):
    head = f"X-Tenant: {tenant}\r\n" + (f"X-Campaign: {campaign}\r\n" if campaign else "")
    with smtplib.SMTP(gw.host, gw.port, timeout=30) as s:
        for r in rcpts:
            s.sendmail(f"news@{tenant}.example", [r],
                       (head + f"Subject: hello {r}\r\n\r\nhello\r\n").encode())


def test_the_readme_bulk_example_runs(tmp_path):
    started = []
    try:
        port = free_port()
        dns = Dnsmasq(["--mx-host=yahoo.example,mta5.am0.yahoodns.net,10",
                       "--host-record=mta5.am0.yahoodns.net,127.0.0.20",
                       "--mx-host=gmail.example,gmail-smtp-in.l.google.com,10",
                       "--host-record=gmail-smtp-in.l.google.com,127.0.0.21"])
        started.append(dns)
        # Yahoo takes 10 messages, then answers [TS04] to everything.
        yahoo = Sink("127.0.0.20", port, Recorder(rcpt_reply={"*": ["250 OK"] * 10 + [TS04]}))
        gmail = Sink("127.0.0.21", port)
        started += [yahoo, gmail]
        gw = Gateway(tmp_path / "spool", dns=dns.server, config=EXAMPLE,
                     sets=[f"delivery.port={port}", "delivery.retry.first=1s",
                           "delivery.retry.max=2s"])
        started.append(gw)
        api = "http://127.0.0.1:%s" % gw.wait_log(r"listening http=\S+:(\d+)").group(1)

        send(gw, "shop", [f"c{i}@gmail.example" for i in range(40)] +
             [f"c{i}@yahoo.example" for i in range(20)], campaign="spring")
        send(gw, "bank", [f"a{i}@gmail.example" for i in range(5)] +
             [f"a{i}@yahoo.example" for i in range(5)])
        wait_for(lambda: gmail.handler.count() == 45, 60, what="45 deliveries at gmail")

        def actions():
            with urllib.request.urlopen(api + "/api/v1/shaping", timeout=20) as r:
                return json.load(r)["actions"]
        wait_for(actions, 30, what="the [TS04] shaping action")

        with gmail.handler.lock:
            msgs = list(gmail.handler.messages)
        split = {}
        for m in msgs:
            tenant = "shop" if m["from"].endswith("@shop.example") else "bank"
            key = (tenant, {"127.0.0.2": "ip1", "127.0.0.3": "ip2"}[m["peer"]])
            split[key] = split.get(key, 0) + 1
        print("\ngmail sink, messages by tenant and source:", dict(sorted(split.items())))
        assert split.get(("bank", "ip1")) == 5 and ("bank", "ip2") not in split, split
        shop1, shop2 = split.get(("shop", "ip1"), 0), split.get(("shop", "ip2"), 0)
        assert shop1 + shop2 == 40 and abs(shop1 - 30) <= 2, split
        print("yahoo sink: accepted", yahoo.handler.count(), "then [TS04]")
        assert all(a["rule"] == "yahoo-ts04" and a["site"] == "yahoo" for a in actions())

        def run(*args):
            r = subprocess.run([BIN, *args, "--api", api], capture_output=True, text=True,
                               timeout=60)
            assert r.returncode == 0, r.stderr
            print(f"$ mailgate {' '.join(args)}\n{r.stdout}", end="")
        run("shaping", "list")
        run("queue", "summary")
        with urllib.request.urlopen(api + "/api/v1/sites", timeout=20) as r:
            paths = json.load(r)["paths"]
        print("$ curl -s http://127.0.0.1:8025/api/v1/sites | jq -c '.paths[]'")
        for p in paths:
            print(json.dumps(p, separators=(",", ":")))
        with urllib.request.urlopen(api + "/metrics", timeout=20) as r:
            metrics = r.read().decode()
        print("$ curl -s http://127.0.0.1:8025/metrics | grep -E 'shaping|egress_source|quota'")
        for line in metrics.splitlines():
            if not line.startswith("#") and any(
                    k in line for k in ("shaping", "egress_source", "quota_remaining")):
                print(line)
        print(gw.wait_log(r"shaping rule 'yahoo-ts04' matched.*").group(0))
    finally:
        for s in reversed(started):
            s.stop()
