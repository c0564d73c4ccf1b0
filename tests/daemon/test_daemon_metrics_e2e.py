"""The daemon against both emulators with a record Salesforce refuses: STATUS= counts it, and the
metrics (node_exporter textfile and the /metrics listener) say so, read back with
prometheus_client's own parser.
"""

from __future__ import annotations

import os
import signal
import socket
import stat
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest
from daemon_helpers import NotifyListener, wait_until
from prometheus_client.parser import text_string_to_metric_families

RULE = "FIELD_CUSTOM_VALIDATION_EXCEPTION"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    found = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            found[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return found


@pytest.fixture
def listener():
    sock = NotifyListener()
    yield sock
    sock.close()


def test_refused_record_shows_in_status_and_in_both_metrics_outputs(
    make_config, listener, sf_emu, company, tmp_path: Path
):
    sf_emu.backend.fail_records(lambda record: record.get("Subject") == "Intro call with Soylent",
                                status_code=RULE, message="no intro calls", times=-1)
    textfile = tmp_path / "textfile" / "calsync.prom"
    textfile.parent.mkdir()
    port = free_port()
    config = make_config(metrics={"textfile": str(textfile), "listen": f"127.0.0.1:{port}"})
    log = (tmp_path / "daemon.log").open("wb")
    proc = subprocess.Popen(
        [sys.executable, "-m", "calsync", "--config", str(config), "run"],
        stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
        env={**os.environ, "NOTIFY_SOCKET": listener.address, "CALSYNC_INTERVAL_SECONDS": "1"},
    )
    try:
        listener.wait_for("READY", "1", timeout=15)
        status = listener.wait_for("STATUS", timeout=20, where=lambda m: "3 ok" in m["STATUS"]
                                   and "waiting for retry" in m["STATUS"])
        assert status["STATUS"].startswith("3 calendars, 3 ok, 1 record waiting for retry (bob@acme.test)")
        wait_until(lambda: textfile.exists()
                   and ("calsync_records_parked", (("status_code", RULE), ("user", "bob@acme.test")))
                   in samples(textfile.read_text()), timeout=10)
        assert stat.S_IMODE(textfile.stat().st_mode) == 0o644  # node_exporter runs as another user
        assert [p.name for p in textfile.parent.iterdir()] == ["calsync.prom"]  # no temporary left
        with urllib.request.build_opener(urllib.request.ProxyHandler({})).open(
                f"http://127.0.0.1:{port}/metrics", timeout=5) as answer:
            served = samples(answer.read().decode())
        filed = samples(textfile.read_text())
    finally:
        proc.send_signal(signal.SIGTERM)
        code = proc.wait(10)
        log.close()
    assert code == 0, (tmp_path / "daemon.log").read_text()
    for found in (filed, served):
        assert found[("calsync_records_parked", (("status_code", RULE), ("user", "bob@acme.test")))] == 1
        assert found[("calsync_events_written_total", (("operation", "created"),))] == 6
        assert found[("calsync_records_refused_total", ())] >= 1
        for user in company.users:
            assert found[("calsync_consecutive_failures", (("user", user),))] == 0
            assert found[("calsync_last_success_timestamp_seconds", (("user", user),))] > 1.7e9
            assert found[("calsync_next_run_timestamp_seconds", (("user", user),))] > 1.7e9
        assert found[("calsync_api_calls_total", (("service", "google"),))] >= 3
        assert found[("calsync_api_calls_total", (("service", "salesforce"),))] >= 5
        used = found[("calsync_salesforce_api_requests_used", ())]
        left = found[("calsync_salesforce_api_requests_remaining", ())]
        assert used > 0 and used + left == found[("calsync_salesforce_api_requests_limit", ())]
        assert found[("calsync_cycle_duration_seconds_count", ())] >= 3
    assert "serving metrics" in (tmp_path / "daemon.log").read_text()
