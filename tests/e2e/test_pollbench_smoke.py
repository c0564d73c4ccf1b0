"""The poll benchmark (scripts/measure-poll) at a tiny N: it runs, and its figures hold together.

The figures themselves (N = 100, 1,000, 10,000, with and without push) are in the README; this
only keeps the script working in CI.
"""

from __future__ import annotations

from calsync.sandbox import pollbench


def test_measure_poll_runs_with_push_and_times_every_change():
    figures = pollbench.run(calendars=4, interval=4, push=True, changes=3, idle=6, token_minutes=60)
    assert figures["first_sync"]["exit"] == 0 and figures["daemon_exit"] == 0
    idle = figures["idle"]
    assert idle["polls"] >= 3 and idle["salesforce_calls"] == 0
    assert idle["token_requests_per_calendar_hour"] == 0  # tokens from the first round are reused
    changes = figures["changes"]
    assert changes["made"] == changes["landed"] == 3
    assert changes["latency_max_seconds"] < 4  # push: sooner than the 4 s polls
    assert figures["push_channels"]["channels_live"] == 4
    assert figures["daemon_peak_rss_mb"] > 0
