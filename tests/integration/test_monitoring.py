"""Static checks of the monitoring assets in monitoring/ (no gateway needed).

- promtool accepts monitoring/prometheus/prometheus.yml and alerts.yml, and
  the promtool unit tests in alerts_test.yml pass; every alert there has at
  least one case where it fires and one where it stays quiet.
- Every alert has a severity and summary/description annotations.
- monitoring/grafana/mailgate.json is a well-formed dashboard: unique panel
  ids, non-overlapping grid, a datasource variable used by every panel and
  query, no undefined template variables, rate windows from Grafana's
  $__rate_interval, and every query is valid PromQL (checked by promtool,
  after substituting the template variables, as a recording rule file).
- Every series, label and label value used by the dashboard, the alerts and
  the alert tests belongs to the metric contract below (DESIGN.md §9), and
  counters/gauges/histograms are used with fitting functions (rate() of a
  counter, deriv() of a gauge, histogram_quantile() of _bucket). A typo in a
  metric or label name would otherwise give an empty panel or an alert
  that can never fire, and nothing would fail.

promtool comes from Debian's `prometheus` package (scripts/setup). Without
it these tests fail rather than skip, so a missing tool never looks green.
"""
import json
import os
import re
import shutil
import subprocess

import pytest
import yaml

SOURCE = os.environ.get("MAILGATE_SOURCE", os.path.join(os.path.dirname(__file__), "../.."))
MONITORING = os.path.join(SOURCE, "monitoring")
PROM_CONFIG = os.path.join(MONITORING, "prometheus/prometheus.yml")
ALERTS = os.path.join(MONITORING, "prometheus/alerts.yml")
ALERTS_TEST = os.path.join(MONITORING, "prometheus/alerts_test.yml")
DASHBOARD = os.path.join(MONITORING, "grafana/mailgate.json")

# The metric contract the gateway exposes: name -> (type, {label: allowed
# values, or None when the values are open-ended}). Scrape-time target labels
# (TARGET_LABELS) are valid on every series.
STAGES = {"connect", "helo", "mail_from", "rcpt_to", "data", "message"}
QUEUE_STATES = {"scheduled", "ready", "in_flight", "suspended"}
DELIVERY_RESULTS = {"delivery", "transient_failure", "bounce", "expiration", "admin_bounce",
                    "discard"}
DNS_RESULTS = {"ok", "nxdomain", "nodata", "tempfail", "nullmx", "badname"}
SHAPING_ACTIONS = {"suspend", "suspend_tenant", "suspend_campaign", "set"}
RATE_KINDS = {"lua", "message_rate", "connection_rate", "site_rate"}  # cluster/leased_rates (ratelimit::RateKind)
METRICS = {
    "mailgate_build_info": ("gauge", {"version": None}),
    "mailgate_cluster_redis_up": ("gauge", {}),
    "mailgate_cluster_redis_latency_seconds": ("gauge", {}),
    "mailgate_cluster_nodes": ("gauge", {}),
    "mailgate_cluster_redis_failures_total": ("counter", {}),
    "mailgate_cluster_leases_shared": ("gauge", {}),
    "mailgate_cluster_leases_held": ("gauge", {}),
    "mailgate_cluster_leases_acquired_total": ("counter", {}),
    "mailgate_cluster_leases_refused_total": ("counter", {}),
    "mailgate_cluster_leases_expired_total": ("counter", {}),
    "mailgate_cluster_lease_renew_failures_total": ("counter", {}),
    "mailgate_cluster_leases_local_total": ("counter", {}),
    "mailgate_cluster_leases_yielded_total": ("counter", {}),
    "mailgate_cluster_suppression_pushed_total": ("counter", {}),
    "mailgate_cluster_suppression_applied_total": ("counter", {}),
    "mailgate_cluster_suppression_pending": ("gauge", {}),
    "mailgate_cluster_suppression_dropped_total": ("counter", {}),
    "mailgate_cluster_suppression_full_syncs_total": ("counter", {}),
    "mailgate_cluster_suppression_sync_lag_seconds": ("gauge", {}),
    "mailgate_cluster_suppression_refused_total": ("counter", {}),
    "mailgate_cluster_suppression_redis_errors_total": ("counter", {}),
    "mailgate_cluster_suspensions_pushed_total": ("counter", {}),
    "mailgate_cluster_suspensions_applied_total": ("counter", {}),
    "mailgate_cluster_suspensions_pending": ("gauge", {}),
    "mailgate_cluster_suspensions_dropped_total": ("counter", {}),
    "mailgate_cluster_suspensions_full_syncs_total": ("counter", {}),
    "mailgate_cluster_suspensions_sync_lag_seconds": ("gauge", {}),
    "mailgate_cluster_suspensions_refused_total": ("counter", {}),
    "mailgate_cluster_suspensions_redis_errors_total": ("counter", {}),
    "mailgate_cluster_shaping_pushed_total": ("counter", {}),
    "mailgate_cluster_shaping_applied_total": ("counter", {}),
    "mailgate_cluster_shaping_pending": ("gauge", {}),
    "mailgate_cluster_shaping_dropped_total": ("counter", {}),
    "mailgate_cluster_shaping_full_syncs_total": ("counter", {}),
    "mailgate_cluster_shaping_sync_lag_seconds": ("gauge", {}),
    "mailgate_cluster_shaping_refused_total": ("counter", {}),
    "mailgate_cluster_shaping_redis_errors_total": ("counter", {}),
    "mailgate_cluster_rate_granted_total": ("counter", {"kind": RATE_KINDS,
                                                        "backend": {"redis", "local"}}),
    "mailgate_cluster_rate_refused_total": ("counter", {"kind": RATE_KINDS}),
    "mailgate_cluster_rate_refills_total": ("counter", {"kind": RATE_KINDS,
                                                        "result": {"granted", "refused", "error"}}),
    "mailgate_cluster_rate_refill_seconds_total": ("counter", {"kind": RATE_KINDS}),
    "mailgate_cluster_rate_tokens_returned_total": ("counter", {"kind": RATE_KINDS}),
    "mailgate_cluster_rate_fallback": ("gauge", {}),
    "mailgate_cluster_rate_fallback_seconds_total": ("counter", {}),
    "mailgate_cluster_warmup_granted_total": ("counter", {"backend": {"redis", "local"}}),
    "mailgate_cluster_warmup_waits_total": ("counter", {}),
    "mailgate_cluster_warmup_refills_total": ("counter", {"result": {"granted", "refused",
                                                                     "error"}}),
    "mailgate_cluster_warmup_fallback": ("gauge", {}),
    "mailgate_cluster_warmup_pushed_total": ("counter", {}),
    "mailgate_cluster_warmup_returned_total": ("counter", {}),
    "mailgate_cluster_warmup_lost_total": ("counter", {}),
    "mailgate_cluster_warmup_invalid_total": ("counter", {}),
    "mailgate_smtp_connections_total": ("counter", {}),
    "mailgate_smtp_sessions_active": ("gauge", {}),
    "mailgate_messages_received_total": ("counter", {"protocol": {"smtp", "http"}}),
    "mailgate_received_bytes_total": ("counter", {}),
    "mailgate_recipients_accepted_total": ("counter", {}),
    "mailgate_recipients_rejected_total": ("counter", {"stage": STAGES}),
    "mailgate_spool_write_seconds": ("histogram", {}),
    "mailgate_spool_batch_size": ("histogram", {}),
    "mailgate_spool_write_errors_total": ("counter", {}),
    "mailgate_spool_free_bytes": ("gauge", {}),
    "mailgate_spool_min_free_bytes": ("gauge", {}),
    "mailgate_queue_messages": ("gauge", {"state": QUEUE_STATES}),
    "mailgate_queue_oldest_message_age_seconds": ("gauge", {}),
    # destination: the names in metrics.destinations, plus "other".
    "mailgate_deliveries_total": ("counter", {"result": DELIVERY_RESULTS, "destination": None}),
    # tenant: the names in metrics.tenants, plus "other".
    "mailgate_tenant_messages_total": ("counter", {"tenant": None, "outcome": DELIVERY_RESULTS}),
    "mailgate_delivery_seconds": ("histogram", {}),
    "mailgate_queue_delay_seconds": ("histogram", {}),
    "mailgate_outbound_connections_active": ("gauge", {}),
    "mailgate_outbound_connections_total": ("counter", {"tls": {"true", "false"}}),
    "mailgate_dns_queries_total": ("counter", {"result": DNS_RESULTS}),
    "mailgate_lua_hook_seconds": ("histogram", {"hook": None}),
    "mailgate_lua_errors_total": ("counter", {"hook": None}),
    "mailgate_bounces_generated_total": ("counter", {}),
    # target: the names of mailgate.webhook{} targets (operator-defined, few).
    "mailgate_webhook_events_total": ("counter", {"target": None,
                                                  "result": {"queued", "sent", "failed", "dead"}}),
    "mailgate_webhook_backlog_events": ("gauge", {"target": None}),
    "mailgate_webhook_backlog_bytes": ("gauge", {"target": None}),
    "mailgate_webhook_backlog_limit_bytes": ("gauge", {}),
    "mailgate_webhook_dead_letters": ("gauge", {"target": None}),
    "mailgate_webhook_post_seconds": ("histogram", {"target": None}),
    # Bulk sending: sources and sites are declared (few), "other" / "default" added.
    "mailgate_egress_source_messages_total": ("counter", {"source": None, "site": None}),
    "mailgate_warmup_quota_remaining": ("gauge", {"source": None, "site": None}),
    "mailgate_site_connections": ("gauge", {"site": None}),
    "mailgate_warmup_held_total": ("counter", {}),
    # Traffic shaping automation: rule names come from the config.
    "mailgate_shaping_actions_total": ("counter", {"rule": None, "action": SHAPING_ACTIONS}),
    "mailgate_shaping_actions_active": ("gauge", {"action": SHAPING_ACTIONS}),
    "mailgate_shaping_actions_refused_total": ("counter", {}),
    # Synthesised by Prometheus for the scrape job "mailgate".
    "up": ("gauge", {}),
}
TARGET_LABELS = {"job", "instance"}

# The alerts the monitoring README documents; more may be added.
EXPECTED_ALERTS = {"MailgateDown", "MailgateQueueGrowing", "MailgateOldestMessageTooOld",
                   "MailgateBounceRateHigh", "MailgateSpoolWriteErrors", "MailgateSpoolSyncSlow",
                   "MailgateSpoolDiskLow", "MailgateLuaErrors", "MailgateWebhookBacklogFull"}
SEVERITIES = {"critical", "warning"}


def series_info(name):
    """(kind, labels) of a series name as exposed: histograms are exposed as
    _bucket (with `le`), _sum and _count, which behave as counters. None for
    a name outside the contract."""
    if name in METRICS:
        kind, labels = METRICS[name]
        return None if kind == "histogram" else (kind, labels)
    for suffix in ("_bucket", "_sum", "_count"):
        base = name[: -len(suffix)] if name.endswith(suffix) else None
        if base and METRICS.get(base, ("",))[0] == "histogram":
            labels = dict(METRICS[base][1])
            if suffix == "_bucket":
                labels["le"] = None
            return ("histogram" + suffix, labels)
    return None


# --- A small PromQL scanner ----------------------------------------------
# Not a parser (promtool checks syntax); it only finds the vector selectors,
# their matchers and the function that consumes each range, and the label
# lists of by/without/on/ignoring/group_*, which is all the contract check
# needs.

TOKEN = re.compile(r"""
    (?P<ws>\s+|\#[^\n]*)
  | (?P<str>"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'|`[^`]*`)
  | (?P<dur>(?:\d+(?:ms|[smhdwy]))+(?![A-Za-z0-9_:]))
  | (?P<num>0[xX][0-9a-fA-F]+|(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?)
  | (?P<ident>[A-Za-z_:][A-Za-z0-9_:]*)
  | (?P<op>=~|!~|!=|==|<=|>=|[-+*/%^<>=(){}\[\],:@])
""", re.X)
GROUPING = {"by", "without", "on", "ignoring", "group_left", "group_right"}
KEYWORDS = {"bool", "and", "or", "unless", "offset", "atan2", "inf", "nan"}
AGGREGATORS = {"sum", "min", "max", "avg", "group", "stddev", "stdvar", "count", "count_values",
               "bottomk", "topk", "quantile"}
# Functions that only make sense on counters, and on gauges.
COUNTER_FUNCS = {"rate", "irate", "increase", "resets"}
GAUGE_FUNCS = {"deriv", "delta", "idelta", "predict_linear", "holt_winters"}


def tokenize(expr):
    pos, out = 0, []
    while pos < len(expr):
        m = TOKEN.match(expr, pos)
        if not m:
            raise ValueError(f"cannot tokenize {expr[pos:pos + 20]!r} in {expr!r}")
        pos = m.end()
        if m.lastgroup != "ws":
            out.append((m.lastgroup, m.group()))
    return out


def unquote(s):
    """The value of a PromQL string literal (backticks are raw). Python's
    escapes cover PromQL's for the ASCII label values used here."""
    body = s[1:-1]
    return body if s[0] == "`" else body.encode().decode("unicode_escape")


def scan(expr):
    """Returns (selectors, grouping_labels). Each selector is a dict with
    name, matchers [(label, op, value)], range_fn (function applied directly
    to its range, or None) and funcs (all enclosing functions)."""
    toks = tokenize(expr)
    selectors, grouping = [], set()
    stack, pending = [], None  # function name per open paren; aggregator awaiting its "("
    i, n = 0, len(toks)

    def peek(k):
        return toks[k][1] if k < n else None

    def matchers(k):  # toks[k] is "{": returns (matchers, index after "}")
        out, k = [], k + 1
        while toks[k][1] != "}":
            if toks[k][1] == ",":
                k += 1
                continue
            out.append((toks[k][1], toks[k + 1][1], unquote(toks[k + 2][1])))
            k += 3
        return out, k + 1

    while i < n:
        kind, text = toks[i]
        if kind == "ident" and text in GROUPING:
            i += 1
            if peek(i) == "(":
                i += 1
                while toks[i][1] != ")":
                    if toks[i][0] == "ident":
                        grouping.add(toks[i][1])
                    i += 1
                i += 1
            continue
        if kind == "ident" and text in KEYWORDS:
            i += 1
            continue
        if kind == "ident" and (peek(i + 1) == "(" or text in AGGREGATORS):
            pending = text
            i += 1
            continue
        if kind == "ident" or text == "{":
            sel = {"name": None if text == "{" else text, "matchers": [], "range_fn": None,
                   "funcs": [f for f in stack if f]}
            if text != "{":
                i += 1
            if peek(i) == "{":
                sel["matchers"], i = matchers(i)
            if sel["name"] is None:
                sel["name"] = next((v for l, o, v in sel["matchers"] if l == "__name__" and o == "="),
                                   "<no name>")
            if peek(i) == "[":
                sel["range_fn"] = stack[-1] if stack else None
            selectors.append(sel)
            continue
        if text == "(":
            stack.append(pending)
            pending = None
        elif text == ")":
            stack.pop()
        elif text == "[":  # range or subquery: durations only
            while toks[i][1] != "]":
                i += 1
        i += 1
    return selectors, grouping


def contract_errors(expr):
    """Everything in one PromQL expression that does not fit METRICS."""
    errors = []
    selectors, grouping = scan(expr)
    known_labels = set(TARGET_LABELS)
    for sel in selectors:
        name = sel["name"]
        info = series_info(name)
        if info is None:
            errors.append(f"unknown series {name!r}")
            continue
        kind, labels = info
        known_labels |= labels.keys()
        for label, op, value in sel["matchers"]:
            if label == "__name__":
                continue
            if label not in labels and label not in TARGET_LABELS:
                errors.append(f"{name} has no label {label!r}")
                continue
            allowed = labels.get(label)
            if allowed is None:
                continue
            if op in ("=", "!="):
                values = [value]
            elif re.fullmatch(r"[A-Za-z0-9_]+(\|[A-Za-z0-9_]+)*", value):
                values = value.split("|")  # a plain alternation: check each
            else:
                values = []  # a real regex: cannot enumerate
            errors += [f"{name}{{{label}}} has no value {v!r}" for v in values if v not in allowed]
        counterish = kind == "counter" or kind in ("histogram_bucket", "histogram_sum",
                                                   "histogram_count")
        fn = sel["range_fn"]
        if fn in COUNTER_FUNCS and not counterish:
            errors.append(f"{fn}() of {kind} {name}")
        if fn in GAUGE_FUNCS and kind != "gauge":
            errors.append(f"{fn}() of {kind} {name}")
        if counterish and fn is None:
            errors.append(f"{kind} {name} used without rate()/increase()")
        if kind == "histogram_bucket" and "histogram_quantile" not in sel["funcs"]:
            errors.append(f"{name} outside histogram_quantile()")
    errors += [f"grouping by unknown label {g!r}" for g in sorted(grouping - known_labels)]
    return errors


# --- Fixtures and loaders --------------------------------------------------

@pytest.fixture(scope="module")
def promtool():
    path = shutil.which("promtool")
    if path is None:
        pytest.fail("promtool not found: install Debian's `prometheus` package (scripts/setup)")
    return path


def run_promtool(promtool, *args):
    r = subprocess.run([promtool, *args], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, f"promtool {' '.join(args)} failed:\n{r.stdout}\n{r.stderr}"
    return r.stdout


def load_yaml(path):
    with open(path, encoding="utf-8") as f:
        return yaml.safe_load(f)


def alert_rules():
    return [r for g in load_yaml(ALERTS)["groups"] for r in g["rules"] if "alert" in r]


def load_dashboard():
    with open(DASHBOARD, encoding="utf-8") as f:
        return json.load(f)


def all_panels(dash):
    """Top-level panels and those nested in collapsed rows."""
    for p in dash["panels"]:
        yield p
        yield from p.get("panels", [])


def query_panels(dash):
    return [p for p in all_panels(dash) if p["type"] != "row"]


# Values that stand in for Grafana's built-in interval variables: any valid
# duration gives the same syntax check.
BUILTIN_VARS = {"__rate_interval": "5m", "__interval": "1m", "__range": "6h",
                "__range_s": "21600", "__interval_ms": "60000"}
VAR_REF = re.compile(r"\$\{(\w+)(?::\w+)?\}|\$(\w+)|\[\[(\w+)\]\]")


def substitute(expr, dash):
    """Replaces template variables with a value each could take: a multi
    value variable's "All" regex, else its current value."""
    values = dict(BUILTIN_VARS)
    for var in dash["templating"]["list"]:
        current = var.get("current", {}).get("value")
        if var.get("includeAll") and var.get("allValue"):
            values[var["name"]] = var["allValue"]
        elif isinstance(current, str) and current:
            values[var["name"]] = current
        elif isinstance(current, list) and current and current[0] != "$__all":
            values[var["name"]] = current[0]

    def repl(m):
        name = m.group(1) or m.group(2) or m.group(3)
        assert name in values, f"undefined template variable ${name} in {expr!r}"
        return values[name]

    return VAR_REF.sub(repl, expr)


def dashboard_queries(dash):
    """[(where, expr with variables substituted)] for every panel target and
    every label_values() variable query."""
    out = []
    for p in query_panels(dash):
        for t in p.get("targets", []):
            out.append((f"panel {p['id']} {p['title']!r} ref {t.get('refId')}",
                        substitute(t.get("expr", ""), dash)))
    for var in dash["templating"]["list"]:
        if var["type"] != "query":
            continue
        q = var["query"]["query"] if isinstance(var["query"], dict) else var["query"]
        m = re.fullmatch(r"\s*label_values\((.*),\s*(\w+)\s*\)\s*", q)
        assert m, f"variable {var['name']}: expected label_values(selector, label), got {q!r}"
        # As an aggregation, the label gets the same checks as a "by" label.
        out.append((f"variable {var['name']}",
                    f"count by ({m.group(2)}) ({substitute(m.group(1), dash)})"))
    return out


# --- Prometheus config and alerts -----------------------------------------

def test_prometheus_config_is_valid(promtool):
    out = run_promtool(promtool, "check", "config", PROM_CONFIG)
    # check config also checks the rule files it loads; make sure it found one.
    assert "1 rule files found" in out, out


def test_prometheus_config_scrapes_mailgate():
    cfg = load_yaml(PROM_CONFIG)
    assert cfg["rule_files"] == ["alerts.yml"]  # relative: resolved next to prometheus.yml
    jobs = {j["job_name"]: j for j in cfg["scrape_configs"]}
    job = jobs["mailgate"]
    assert job.get("metrics_path", "/metrics") == "/metrics"
    targets = [t for sc in job["static_configs"] for t in sc["targets"]]
    assert targets == ["127.0.0.1:8025"]


def test_alert_rules_are_valid(promtool):
    run_promtool(promtool, "check", "rules", ALERTS)


def test_alert_unit_tests_pass(promtool):
    run_promtool(promtool, "test", "rules", ALERTS_TEST)


def test_alerts_have_severity_and_annotations():
    rules = alert_rules()
    names = [r["alert"] for r in rules]
    assert len(names) == len(set(names)), f"duplicate alert names: {names}"
    assert EXPECTED_ALERTS <= set(names), f"missing alerts: {EXPECTED_ALERTS - set(names)}"
    for r in rules:
        assert r.get("labels", {}).get("severity") in SEVERITIES, r["alert"]
        for key in ("summary", "description"):
            assert r.get("annotations", {}).get(key, "").strip(), f"{r['alert']}: no {key}"


def test_every_alert_has_a_firing_and_a_quiet_case():
    """promtool only runs the cases that exist: make sure each alert has both
    kinds, so a rule that always or never fires cannot pass."""
    tests = load_yaml(ALERTS_TEST)
    assert tests["rule_files"] == ["alerts.yml"]
    firing, quiet = set(), set()
    for group in tests["tests"]:
        assert group.get("input_series"), f"test group {group.get('name')} has no input_series"
        for case in group.get("alert_rule_test", []):
            (firing if case.get("exp_alerts") else quiet).add(case["alertname"])
    names = {r["alert"] for r in alert_rules()}
    assert names - firing == set(), f"alerts never tested firing: {names - firing}"
    assert names - quiet == set(), f"alerts never tested quiet: {names - quiet}"


def test_alerts_use_the_metric_contract():
    errors = []
    for r in alert_rules():
        errors += [f"{r['alert']}: {e}" for e in contract_errors(str(r["expr"]))]
        assert 'job="mailgate"' in str(r["expr"]), f"{r['alert']}: not scoped to job=\"mailgate\""
    assert not errors, "\n".join(errors)


def test_alert_test_inputs_use_the_metric_contract():
    """Synthetic series with a misspelt name would only test a rule that
    matches the same misspelling."""
    errors = []
    for group in load_yaml(ALERTS_TEST)["tests"]:
        for s in group["input_series"]:
            selectors, _ = scan(s["series"])
            for sel in selectors:
                info = series_info(sel["name"])
                if info is None:
                    errors.append(f"{group['name']}: unknown series {sel['name']!r}")
                    continue
                for label, _, value in sel["matchers"]:
                    allowed = info[1].get(label)
                    if label not in info[1] and label not in TARGET_LABELS:
                        errors.append(f"{group['name']}: {sel['name']} has no label {label!r}")
                    elif allowed is not None and value not in allowed:
                        errors.append(f"{group['name']}: {sel['name']}{{{label}}} has no value {value!r}")
    assert not errors, "\n".join(errors)


# --- Grafana dashboard -----------------------------------------------------

def test_dashboard_structure():
    dash = load_dashboard()
    assert dash["title"] and dash["uid"]
    assert dash["schemaVersion"] >= 36
    # id must be null so importing creates a dashboard instead of overwriting one.
    assert dash.get("id") is None
    variables = {v["name"]: v for v in dash["templating"]["list"]}
    ds_vars = [v for v in variables.values() if v["type"] == "datasource"]
    assert len(ds_vars) == 1 and ds_vars[0]["query"] == "prometheus"
    ds_ref = "${%s}" % ds_vars[0]["name"]

    panels = list(all_panels(dash))
    ids = [p["id"] for p in panels]
    assert len(ids) == len(set(ids)), f"duplicate panel ids: {sorted(ids)}"

    cells = {}  # the grid is 24 columns: overlapping panels render on top of each other
    for p in panels:
        g = p["gridPos"]
        assert g["x"] >= 0 and g["w"] > 0 and g["x"] + g["w"] <= 24, p["title"]
        for x in range(g["x"], g["x"] + g["w"]):
            for y in range(g["y"], g["y"] + g["h"]):
                assert (x, y) not in cells, f"{p['title']!r} overlaps {cells[(x, y)]!r}"
                cells[(x, y)] = p["title"]

    for p in query_panels(dash):
        where = f"panel {p['id']} {p.get('title')!r}"
        assert p.get("title"), where
        assert p["type"] in ("timeseries", "stat", "gauge", "bargauge", "table", "heatmap"), where
        assert p.get("datasource") == {"type": "prometheus", "uid": ds_ref}, where
        targets = p.get("targets") or []
        assert targets, f"{where}: no targets"
        refs = [t.get("refId") for t in targets]
        assert all(refs) and len(refs) == len(set(refs)), f"{where}: refIds {refs}"
        for t in targets:
            assert t.get("expr", "").strip(), f"{where}: empty expr"
            assert t.get("datasource") == p["datasource"], f"{where}: target datasource"


def test_dashboard_rates_use_grafana_interval():
    """A fixed window like [5m] is too short for long time ranges and hides
    spikes in short ones; $__rate_interval follows the zoom and the scrape
    interval."""
    dash = load_dashboard()
    bad = []
    for p in query_panels(dash):
        for t in p["targets"]:
            for window in re.findall(r"\[([^\]]*)\]", t["expr"]):
                if window != "$__rate_interval":
                    bad.append(f"panel {p['id']} {p['title']!r}: [{window}]")
    assert not bad, "\n".join(bad)


def test_dashboard_queries_parse(promtool, tmp_path):
    """promtool has no "parse this expression" command, so each query becomes
    a recording rule and the rule file is checked."""
    dash = load_dashboard()
    rules, where = [], {}
    for k, (loc, expr) in enumerate(dashboard_queries(dash)):
        record = f"dashboard:query_{k}"
        where[record] = loc
        rules.append({"record": record, "expr": expr})
    path = tmp_path / "dashboard_rules.yml"
    # JSON is valid YAML, and quoting every expression as a JSON string avoids
    # YAML reinterpreting characters such as ':' or '{' in PromQL.
    path.write_text(json.dumps({"groups": [{"name": "dashboard", "rules": rules}]}, indent=1))
    r = subprocess.run([promtool, "check", "rules", str(path)], capture_output=True, text=True,
                       timeout=120)
    legend = "\n".join(f"  {rec} = {loc}" for rec, loc in where.items())
    assert r.returncode == 0, f"{r.stdout}\n{r.stderr}\nrecord names:\n{legend}"
    assert f"SUCCESS: {len(rules)} rules found" in r.stdout, r.stdout


def test_dashboard_uses_the_metric_contract():
    dash = load_dashboard()
    errors = []
    for loc, expr in dashboard_queries(dash):
        errors += [f"{loc}: {e}" for e in contract_errors(expr)]
    assert not errors, "\n".join(errors)


def test_dashboard_shows_every_metric():
    dash = load_dashboard()
    used = set()
    for _, expr in dashboard_queries(dash):
        for sel in scan(expr)[0]:
            name = re.sub(r"_(bucket|sum|count)$", "", sel["name"])
            used.add(name if name in METRICS else sel["name"])
    assert set(METRICS) - used == set(), f"metrics without a panel: {set(METRICS) - used}"


# --- The scanner itself ----------------------------------------------------
# The contract checks above pass vacuously if the scanner misses things, so
# check that it catches each kind of mistake.

@pytest.mark.parametrize("expr, error", [
    ('sum(rate(mailgate_delivery_total[5m]))', "unknown series 'mailgate_delivery_total'"),
    ('mailgate_delivery_seconds', "unknown series 'mailgate_delivery_seconds'"),
    ('rate(mailgate_deliveries_total{result="bounced"}[5m])', "has no value 'bounced'"),
    ('rate(mailgate_deliveries_total{result=~"delivery|bounced"}[5m])', "has no value 'bounced'"),
    ('mailgate_queue_messages{status="ready"}', "has no label 'status'"),
    ('sum by (stages) (mailgate_queue_messages)', "grouping by unknown label 'stages'"),
    ('rate(mailgate_queue_messages[5m])', "rate() of gauge"),
    ('deriv(mailgate_deliveries_total[5m])', "deriv() of counter"),
    ('sum(mailgate_deliveries_total)', "used without rate()"),
    ('sum by (le) (rate(mailgate_delivery_seconds_bucket[5m]))', "outside histogram_quantile()"),
])
def test_scanner_catches(expr, error):
    errors = contract_errors(expr)
    assert any(error in e for e in errors), errors


@pytest.mark.parametrize("expr", [
    'histogram_quantile(0.99, sum by (hook, le) (rate(mailgate_lua_hook_seconds_bucket{job="m"}[5m])))',
    'sum(rate(mailgate_spool_batch_size_sum[5m])) / sum(rate(mailgate_spool_batch_size_count[5m]))',
    'mailgate_spool_free_bytes < on (job, instance) 2 * mailgate_spool_min_free_bytes',
    'sum(mailgate_queue_messages{state!="suspended"}) > 1000 and sum(deriv(mailgate_queue_messages[30m])) > 0',
    'count by (version) (mailgate_build_info) or vector(0)',
    'max_over_time(deriv(sum(mailgate_queue_messages)[30m:1m])[1h:])',
])
def test_scanner_accepts(expr):
    assert contract_errors(expr) == []
