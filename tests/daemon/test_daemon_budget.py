"""The daemon tells when its calendars need more Google requests a minute than the budget
(reference A8; quota.py) allows: the budget holds anyway, so polls come later than the interval."""

from __future__ import annotations

import datetime as dt
import logging
from pathlib import Path

from daemon_helpers import write_config

from calsync.core import config as config_module
from calsync.service.scheduling import polls_per_minute, warn_if_over_budget

USERS = ["alice@acme.test", "bob@acme.test", "carol@acme.test"]


def _config(tmp_path: Path, google: str = ""):
    path = write_config(tmp_path / "calsync.toml", USERS)
    path.write_text(path.read_text().replace("[google]\n", "[google]\n" + google))
    return config_module.load(path)


def test_ten_thousand_calendars_every_five_minutes_need_two_thousand_requests_a_minute():
    assert polls_per_minute(10_000, dt.timedelta(minutes=5)) == 2_000


def test_a_budget_too_small_for_the_interval_is_logged(tmp_path, caplog):
    cfg = _config(tmp_path, "requests_per_minute = 100\nrequest_share = 1.0\n")
    with caplog.at_level(logging.WARNING, logger="calsync.daemon"):
        warn_if_over_budget(cfg, dt.timedelta(seconds=1))  # 180 a minute
    [record] = caplog.records
    assert "more Google requests a minute than the budget allows" in record.getMessage()
    assert record.fields["needed_per_minute"] == 180 and record.fields["budget_per_minute"] == 100


def test_a_budget_that_fits_says_nothing(tmp_path, caplog):
    cfg = _config(tmp_path)
    with caplog.at_level(logging.WARNING, logger="calsync.daemon"):
        warn_if_over_budget(cfg, dt.timedelta(minutes=5))
    assert caplog.records == []


def test_the_daemon_logs_its_cpu_per_run(tmp_path, caplog):
    import time

    from calsync.service.daemon import Daemon

    daemon = Daemon(lambda: _config(tmp_path), watchdog_seconds=None)
    daemon.runs = 600
    since = (time.monotonic() - 600, time.process_time() - 1.2, 0)  # 1.2 s of CPU in 10 minutes
    with caplog.at_level(logging.INFO, logger="calsync.daemon"):
        daemon._log_load(since)
    [record] = caplog.records
    assert record.getMessage() == "daemon load"
    assert record.fields["runs"] == 600
    assert 2.0 <= record.fields["cpu_ms_per_run"] < 2.5  # 1.2 s / 600 runs, plus this test's own
    assert record.fields["minutes"] == 10.0
