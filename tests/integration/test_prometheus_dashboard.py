"""A real Prometheus server (Debian's `prometheus`) scrapes a real gateway
on loopback while mail flows; then every PromQL expression of the Grafana
dashboard is evaluated through Prometheus's HTTP API. A query error, or a
panel none of whose queries returns a series, fails the test. The alert
rules are loaded too and must evaluate without errors."""
import json
import os
import shutil
import subprocess
import time
import urllib.parse
import urllib.request

from conftest import Gateway, wait_for
from peers import Dnsmasq, Recorder, Sink, free_port
from test_delivery import send
from test_monitoring import ALERTS, load_dashboard, query_panels, substitute
from webhook_receiver import Receiver


def prom_query(base, expr):
    url = base + "/api/v1/query?" + urllib.parse.urlencode({"query": expr})
    try:
        with urllib.request.urlopen(url, timeout=10) as r:
            return json.load(r)
    except urllib.error.HTTPError as e:
        return json.loads(e.read() or b'{"status": "error", "error": "http %d"}' % e.code)


class Prometheus:
    def __init__(self, tmp_path, target):
        binary = shutil.which("prometheus")
        assert binary, "prometheus missing (scripts/setup installs the prometheus package)"
        self.port = free_port()
        config = tmp_path / "prometheus.yml"
        config.write_text(
            "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n"
            f"rule_files:\n  - {ALERTS}\n"
            "scrape_configs:\n  - job_name: mailgate\n"
            f"    static_configs:\n      - targets: ['{target}']\n")
        self.base = f"http://127.0.0.1:{self.port}"
        self.proc = subprocess.Popen(
            [binary, f"--config.file={config}", f"--storage.tsdb.path={tmp_path / 'tsdb'}",
             f"--web.listen-address=127.0.0.1:{self.port}", "--log.level=warn"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

        def ready():
            if self.proc.poll() is not None:
                raise AssertionError("prometheus exited")
            try:
                with urllib.request.urlopen(self.base + "/-/ready", timeout=2) as r:
                    return r.status == 200
            except OSError:
                return False

        try:
            wait_for(ready, 30, interval=0.2, what="prometheus ready")
        except Exception:
            self.stop()
            raise

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)


def test_dashboard_queries_evaluate_against_a_live_gateway(tmp_path):
    started = []
    try:
        port = free_port()
        dns = Dnsmasq(["--mx-host=ok.test,mx.ok.test,10", "--host-record=mx.ok.test,127.0.0.95",
                       "--mx-host=mix.test,mx.mix.test,10", "--host-record=mx.mix.test,127.0.0.96"])
        started.append(dns)
        started.append(Sink("127.0.0.95", port))
        started.append(Sink("127.0.0.96", port, Recorder(rcpt_reply={
            "gone@mix.test": "550 5.1.1 no such user", "later@mix.test": "451 4.2.0 later"})))
        # A webhook target, so the webhook panels have series too.
        hooks = Receiver("s3cr3t")
        started.append(hooks)
        config = tmp_path / "mailgate.lua"
        config.write_text('mailgate.listen { address = "127.0.0.1:2525" }\n'
                          'mailgate.on("rcpt_to", function(tx, r)\n'
                          '  if r.user == "refused" then return mailgate.reject(550, "5.7.1 no") end\n'
                          'end)\n'
                          f'mailgate.webhook {{ name = "app", url = "{hooks.url}", secret = "s3cr3t",'
                          ' batch_time = "100ms" }\n'
                          # A site, a warm-up source and a shaping rule: the bulk-sending row.
                          'mailgate.source { name = "ip1", address = "127.0.0.1",'
                          ' warmup = { start = "1000/day", factor = 2, days = 14 } }\n'
                          'mailgate.pool { name = "default", sources = { "ip1" } }\n'
                          'mailgate.site { name = "ok", mx_suffixes = { ".ok.test" } }\n'
                          'mailgate.shaping_rule { name = "ts04", match = "\\\\[TS04\\\\]",'
                          ' site = "ok", action = "suspend", duration = "2h" }\n')
        gw = Gateway(tmp_path / "spool", dns=dns.server, config=str(config),
                     sets=[f"delivery.port={port}", "delivery.retry.first=1s",
                           "delivery.retry.max=1s", "metrics.destinations.1=ok.test",
                           # A cluster section (its Redis absent: nothing listens
                           # there), so the cluster panels have series too.
                           f"cluster.redis=redis://127.0.0.1:{free_port()}"])
        started.append(gw)
        http_port = int(gw.wait_log(r"listening http=\S+:(\d+)").group(1))
        prom = Prometheus(tmp_path, f"127.0.0.1:{http_port}")
        started.append(prom)
        wait_for(lambda: prom_query(prom.base, 'up{job="mailgate"} == 1')["data"]["result"], 30,
                 interval=0.5, what="first successful scrape")
        # Traffic of every kind, spread over several scrapes so rates are non-zero.
        for i in range(6):
            send(gw, "s@example.org", [f"a{i}@ok.test", "ok@mix.test", "gone@mix.test",
                                       "later@mix.test"])
            try:
                send(gw, "s@example.org", ["refused@ok.test"])
            except Exception:
                pass
            time.sleep(1)
        wait_for(lambda: prom_query(
            prom.base, 'count_over_time(mailgate_deliveries_total{result="delivery"}[1m])')
                 ["data"]["result"], 20, interval=0.5, what="delivery samples")
        time.sleep(3)

        dash = load_dashboard()
        errors, empty = [], []
        for panel in query_panels(dash):
            exprs = [substitute(t["expr"], dash) for t in panel.get("targets", []) if t.get("expr")]
            series = 0
            for expr in exprs:
                r = prom_query(prom.base, expr)
                if r.get("status") != "success":
                    errors.append((panel["title"], expr, r.get("error")))
                    continue
                series += len(r["data"]["result"])
            if exprs and series == 0:
                empty.append((panel["title"], exprs))
        assert not errors, errors
        assert not empty, empty

        with urllib.request.urlopen(prom.base + "/api/v1/rules", timeout=10) as r:
            groups = json.load(r)["data"]["groups"]
        rules = [rule for g in groups for rule in g["rules"]]
        assert rules, "alert rules were not loaded"
        bad = [(rule["name"], rule.get("lastError")) for rule in rules if rule["health"] == "err"]
        assert not bad, bad
    finally:
        for s in reversed(started):
            s.stop()
