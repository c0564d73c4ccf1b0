"""The README's alert rules, run against the metrics a real `calsync run` wrote; and the metrics a
daemon publishes before it knows anything.

The daemon syncs the demo company plus Dave, a salesperson without a Salesforce User, while
Salesforce refuses Bob's intro call: its textfile then holds a parked record, an unmapped user,
a calendar that never synced and keeps failing, and the org's allowance. The README's rules
(the ```yaml block of "Monitor") are checked with `promtool check rules` and evaluated with
`promtool test rules` (Prometheus' own parser and rule engine) over those samples, held for
three hours: the alerts that fire must be exactly the ones this state calls for.

promtool comes from Debian's `prometheus` package (.ci/run extracts it without installing the
server; `$CALSYNC_PROMTOOL` or `promtool` on PATH); without it the promtool test skips, and the
check that every metric name the rules use is one calsync really writes still runs.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from daemon_helpers import NotifyListener, wait_until
from prometheus_client.parser import text_string_to_metric_families

ROOT = Path(__file__).resolve().parents[2]
RULE = "FIELD_CUSTOM_VALIDATION_EXCEPTION"
DAVE = "dave@acme.test"
EVAL_SECONDS = 3 * 3600  # the moment the rules are evaluated at, in promtool's timeline


def readme_rules() -> str:
    text = (ROOT / "README.md").read_text()
    monitor = text[text.index("## Monitor\n"):text.index("\n## ", text.index("## Monitor\n") + 5)]
    block = re.search(r"```yaml\n(.*?)```", monitor, re.S)
    assert block, "README's Monitor section has no ```yaml block of alert rules"
    lines = block.group(1).splitlines()
    indent = min(len(l) - len(l.lstrip()) for l in lines if l.strip())
    return "\n".join(l[indent:] for l in lines) + "\n"


def promtool() -> str | None:
    found = os.environ.get("CALSYNC_PROMTOOL") or shutil.which("promtool")
    local = ROOT / ".cache" / "prometheus" / "root" / "usr" / "bin" / "promtool"
    if not found and local.exists():
        found = str(local)
    return found


def samples(text: str) -> list[tuple[str, dict[str, str], float]]:
    return [(s.name, dict(s.labels), s.value)
            for family in text_string_to_metric_families(text) for s in family.samples]


@pytest.fixture
def listener():
    sock = NotifyListener()
    yield sock
    sock.close()


@pytest.fixture
def real_run(make_config, listener, sf_emu, google_emu, company, tmp_path: Path, processes):
    """The textfile of a daemon that synced the demo company with Bob's intro call refused and
    Dave unmapped, once Dave failed 3 times in a row; and when it was read (wall clock)."""
    google_emu.backend.add_user(DAVE, "Dave Dunn", "UTC")
    sf_emu.backend.fail_records(lambda record: record.get("Subject") == "Intro call with Soylent",
                                status_code=RULE, message="no intro calls", times=-1)
    textfile = tmp_path / "prom" / "calsync.prom"
    textfile.parent.mkdir()
    config = make_config(sync={"users": [*company.users, DAVE]}, metrics={"textfile": str(textfile)})
    proc = subprocess.Popen(
        [sys.executable, "-m", "calsync", "--config", str(config), "run"],
        stdin=subprocess.DEVNULL, stdout=(tmp_path / "daemon.log").open("wb"), stderr=subprocess.STDOUT,
        env={**os.environ, "NOTIFY_SOCKET": listener.address, "CALSYNC_INTERVAL_SECONDS": "1"},
    )
    processes.append(proc)
    listener.wait_for("READY", "1", timeout=15)

    def ready() -> bool:
        if not textfile.exists():
            return False
        found = {(n, tuple(sorted(l.items()))): v for n, l, v in samples(textfile.read_text())}
        return (found.get(("calsync_consecutive_failures", (("user", DAVE),)), 0) >= 3
                and ("calsync_records_parked", (("status_code", RULE), ("user", "bob@acme.test"))) in found
                and ("calsync_salesforce_api_requests_remaining", ()) in found
                and all(found.get(("calsync_last_success_timestamp_seconds", (("user", u),)), 0) > 0
                        for u in company.users))

    wait_until(ready, timeout=40, step=0.2)
    text, read_at = textfile.read_text(), time.time()
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(15) == 0
    return samples(text), read_at


def _series(name: str, labels: dict[str, str]) -> str:
    inner = ",".join(f'{k}="{v}"' for k, v in sorted(labels.items()))
    return f"{name}{{{inner}}}" if inner else name


def test_readme_alert_rules_fire_on_a_real_runs_metrics(real_run, company, tmp_path):
    tool = promtool()
    if tool is None:
        pytest.skip("promtool not found (Debian package prometheus; .ci/run fetches it)")
    found, read_at = real_run
    rules = tmp_path / "rules.yml"
    rules.write_text(readme_rules())
    checked = subprocess.run([tool, "check", "rules", str(rules)], capture_output=True, text=True)
    assert checked.returncode == 0, checked.stdout + checked.stderr

    series = []
    values: dict[tuple[str, tuple[tuple[str, str], ...]], float] = {}
    for name, labels, value in found:
        if name.endswith("_timestamp_seconds") and value > 0:
            # A real instant becomes the same age at EVAL_SECONDS of promtool's timeline.
            value = EVAL_SECONDS - (read_at - value)
        values[(name, tuple(sorted(labels.items())))] = value
        series.append({"series": _series(name, labels), "values": f"{value!r}x200"})

    def value(name: str, **labels: str) -> float:
        return values[(name, tuple(sorted(labels.items())))]

    def number(v: float) -> str:  # Prometheus' template rendering of $value
        return str(int(v)) if v == int(v) else repr(v)

    parked = value("calsync_records_parked", user="bob@acme.test", status_code=RULE)
    expected = {
        "CalsyncCalendarNotSynced": [{
            "exp_labels": {"user": DAVE},
            "exp_annotations": {"summary": f"{DAVE}: no successful sync for 2 h (calsync status --user {DAVE})"},
        }],
        "CalsyncCalendarFailing": [{
            "exp_labels": {"user": DAVE},
            "exp_annotations": {"summary": f"{DAVE}: {number(value('calsync_consecutive_failures', user=DAVE))} failed runs in a row"},
        }],
        "CalsyncRecordsRefused": [{
            "exp_labels": {"user": "bob@acme.test"},
            "exp_annotations": {"summary": f"bob@acme.test: {number(parked)} records refused by Salesforce (calsync status --failing)"},
        }],
        "CalsyncUsersUnmapped": [{
            "exp_labels": {},
            "exp_annotations": {"summary": "1 users without a Salesforce User (calsync doctor)"},
        }],
        "CalsyncSalesforceAllowanceLow": [],  # the emulator's org has thousands left
    }
    assert value("calsync_unmapped_users") == 1
    assert value("calsync_salesforce_api_requests_remaining") >= 5000
    tests = {
        "rule_files": [rules.name],
        "evaluation_interval": "1m",
        "tests": [{
            "interval": "1m",
            "input_series": series,
            "alert_rule_test": [
                {"eval_time": f"{EVAL_SECONDS // 60}m", "alertname": name, "exp_alerts": alerts}
                for name, alerts in expected.items()
            ],
        }],
    }
    spec = tmp_path / "tests.yml"
    spec.write_text(json.dumps(tests, indent=1))  # JSON is YAML
    done = subprocess.run([tool, "test", "rules", spec.name], capture_output=True, text=True,
                          cwd=tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr


def test_every_metric_the_readme_rules_use_is_one_calsync_writes(real_run):
    found, _ = real_run
    written = {name for name, _, _ in found}
    used = set(re.findall(r"\bcalsync_[a-z_]+", readme_rules()))
    assert used and used <= written, sorted(used - written)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_metrics_from_the_start_every_user_and_no_allowance_before_salesforce_answers(
    make_config, listener, company, tmp_path, processes
):
    """A fresh daemon that cannot reach Salesforce: every configured user has its per-user
    samples at once (never synced: 0), and the allowance gauges are absent, not 0."""
    textfile = tmp_path / "prom" / "calsync.prom"
    textfile.parent.mkdir()
    config = make_config(salesforce={"instance_url": f"https://127.0.0.1:{free_port()}"},
                         metrics={"textfile": str(textfile)})
    proc = subprocess.Popen(
        [sys.executable, "-m", "calsync", "--config", str(config), "run"],
        stdin=subprocess.DEVNULL, stdout=(tmp_path / "daemon.log").open("wb"), stderr=subprocess.STDOUT,
        env={**os.environ, "NOTIFY_SOCKET": listener.address, "CALSYNC_INTERVAL_SECONDS": "3600"},
    )
    processes.append(proc)
    listener.wait_for("READY", "1", timeout=15)
    wait_until(textfile.exists, timeout=10)
    found = {(n, tuple(sorted(l.items()))): v for n, l, v in samples(textfile.read_text())}
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(15) == 0
    for user in company.users:
        assert found[("calsync_last_success_timestamp_seconds", (("user", user),))] == 0
        assert ("calsync_consecutive_failures", (("user", user),)) in found
    names = {name for name, _ in found}
    assert not names & {"calsync_salesforce_api_requests_remaining",
                        "calsync_salesforce_api_requests_used", "calsync_salesforce_api_requests_limit"}
    assert found[("calsync_unmapped_users", ())] == 0
    (version,) = [dict(labels)["version"] for name, labels in found if name == "calsync_build_info"]
    import calsync

    assert version == getattr(calsync, "__version__", version)
