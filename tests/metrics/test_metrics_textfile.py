"""Metrics of a one-shot `calsync sync`: the node_exporter textfile, read with prometheus_client's
parser; a textfile that cannot be written never fails the sync."""

from __future__ import annotations

from prometheus_client.parser import text_string_to_metric_families

from calsync.service import metrics


def values(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


def test_sync_writes_the_textfile_whole(cli, make_config, company, tmp_path):
    textfile = tmp_path / "calsync.prom"
    path = make_config(metrics={"textfile": str(textfile)})
    done = cli("--config", str(path), "sync")
    assert done.returncode == 0, done.stderr
    found = values(textfile.read_text())
    assert found[("calsync_events_written_total", (("operation", "created"),))] == 7
    assert found[("calsync_api_calls_total", (("service", "salesforce"),))] == 7  # as `sync` says
    assert "Salesforce API calls: 7" in done.stdout
    assert {labels for name, labels in found if name == "calsync_last_success_timestamp_seconds"} == {
        (("user", user),) for user in company.users}
    assert not [name for name, _ in found if name == "calsync_records_parked"]
    assert found[("calsync_cycle_duration_seconds_count", ())] == 1
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.endswith((".tmp", ".prom"))) == ["calsync.prom"]


def test_a_textfile_that_cannot_be_written_is_logged_and_the_sync_goes_on(cli, make_config, tmp_path):
    path = make_config(metrics={"textfile": str(tmp_path / "missing" / "calsync.prom")})
    done = cli("--config", str(path), "sync")
    assert done.returncode == 0
    assert 'msg="cannot publish metrics"' in done.stderr and "FileNotFoundError" in done.stderr


def test_sforce_limit_info_sets_the_allowance_gauges():
    metrics.note_limit_info("api-usage=25/15000")
    get = metrics.REGISTRY.get_sample_value
    assert (get("calsync_salesforce_api_requests_used"), get("calsync_salesforce_api_requests_remaining"),
            get("calsync_salesforce_api_requests_limit")) == (25, 14975, 15000)
    metrics.note_limit_info("per-app-api-usage=1/10(appName=x)")  # the app's, not the org's
    assert get("calsync_salesforce_api_requests_used") == 25
    metrics.note_limit_info("per-app-api-usage=1/10(appName=x); api-usage=30/15000")
    assert get("calsync_salesforce_api_requests_used") == 30


def test_other_modules_get_the_same_metric_by_name():
    first = metrics.counter("calsync_test_notifications", "A counter another module adds.", ("kind",))
    assert metrics.counter("calsync_test_notifications", "A counter another module adds.", ("kind",)) is first
    first.labels("push").inc()
    assert b'calsync_test_notifications_total{kind="push"} 1.0' in metrics.render()
