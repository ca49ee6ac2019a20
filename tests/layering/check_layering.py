#!/usr/bin/env python3
"""Checks the module layering DESIGN §2 and the README's module map promise,
by reading #include lines (run by ctest as `layering`):
- RocksDB is seen only by core/spool (no `rocksdb` include or name elsewhere);
- core/smtp includes nothing but the standard library, core/text and itself;
- core/server and core/delivery never include each other;
- core/submit includes neither server, delivery nor app (it sits below them);
- no module includes app/;
- core/config (the schema library) includes nothing of mailgate but itself
  and core/text;
- a module's config section (<module>/*_config.hpp/.cpp) includes only
  core/config, the low modules text, smtp, net, dns and tenancy, and other sections:
  sections are leaves, so the aggregate can include them all;
- core/settings (the aggregate) includes only core/config and sections,
  never module code; only the modules above it (policy, submit, server,
  delivery, suppression, app) include it.
Exits 1 with one line per violation."""
import os
import re
import sys

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "core")
INCLUDE = re.compile(r'^\s*#\s*include\s*[<"]([^>"]+)[>"]')

SECTION_MAY_INCLUDE = ("config", "text", "smtp", "net", "dns", "tenancy")
ABOVE_SETTINGS = ("settings", "policy", "submit", "server", "delivery", "suppression", "app")


def is_section(path):
    """A module's config section: <module>/*_config.hpp/.cpp (settings/ is the aggregate)."""
    return path.endswith(("_config.hpp", "_config.cpp")) and not path.startswith("settings/")


violations = []
for module in sorted(os.listdir(ROOT)):
    mdir = os.path.join(ROOT, module)
    if not os.path.isdir(mdir):
        continue
    for name in sorted(os.listdir(mdir)):
        if not name.endswith((".cpp", ".hpp")):
            continue
        path = os.path.join(mdir, name)
        rel = f"core/{module}/{name}"
        with open(path, encoding="utf-8") as f:
            text = f.read()
        if module != "spool" and re.search(r"rocksdb", text, re.IGNORECASE):
            violations.append(f"{rel}: mentions RocksDB (only core/spool may)")
        for line in text.splitlines():
            m = INCLUDE.match(line)
            if not m:
                continue
            inc = m.group(1)
            target = inc.split("/")[0] if "/" in inc else None
            if module == "smtp" and '"' in line and target not in ("smtp", "text"):
                violations.append(f"{rel}: smtp/ includes {inc}")
            if (module, target) in (("server", "delivery"), ("delivery", "server")):
                violations.append(f"{rel}: {module}/ includes {inc}")
            if module == "submit" and target in ("server", "delivery", "app"):
                violations.append(f"{rel}: submit/ includes {inc}")
            if module != "app" and target == "app":
                violations.append(f"{rel}: includes {inc} (app is the top)")
            if '"' not in line or target is None:
                continue
            if module == "config" and target not in ("config", "text"):
                violations.append(f"{rel}: config/ includes {inc} (the schema library stands alone)")
            if is_section(f"{module}/{name}") and target not in SECTION_MAY_INCLUDE and not is_section(inc):
                violations.append(f"{rel}: a config section includes {inc} (sections are leaves)")
            if module == "settings" and target not in ("config", "settings") and not is_section(inc):
                violations.append(f"{rel}: settings/ includes {inc} (only config/ and sections)")
            if target == "settings" and module not in ABOVE_SETTINGS:
                violations.append(f"{rel}: includes {inc} ({module}/ is below the aggregate)")

for v in violations:
    print(v)
sys.exit(1 if violations else 0)
