"""The [google] settings of issue 12: the request budget and push notifications."""

from __future__ import annotations

from pathlib import Path

import pytest

from calsync.core import config
from calsync.core.errors import ConfigError
from calsync.calendar.google.clients import budget_limits
from calsync.calendar.google.quota import Limits

BASE = """
[sync]
users = ["alice@acme.test"]
[state]
path = "state.db"
[salesforce]
instance_url = "https://acme.my.salesforce.com"
access_token = "00Dxx!token"
[google]
service_account_file = "key.json"
"""


def load(tmp_path: Path, google: str = "") -> config.Config:
    path = tmp_path / "calsync.toml"
    path.write_text(BASE + google)
    return config.load(path)


def test_defaults_use_most_of_googles_quotas_and_no_push(tmp_path):
    cfg = load(tmp_path).google
    assert (cfg.requests_per_minute, cfg.requests_per_minute_per_user, cfg.request_share) == (10_000, 600, 0.8)
    assert budget_limits(cfg) == Limits(8_000, 480)
    assert not cfg.push and cfg.push_listen is None and cfg.push_channel_hours == 168


def test_push_needs_both_url_and_listen_address(tmp_path):
    cfg = load(tmp_path, 'push_url = "https://calsync.example.com/google/notify"\n'
                         'push_listen = "127.0.0.1:8790"\n').google
    assert cfg.push and cfg.push_listen == ("127.0.0.1", 8790)
    with pytest.raises(ConfigError, match="google.push_listen: required key missing"):
        load(tmp_path, 'push_url = "https://calsync.example.com/google/notify"\n')
    with pytest.raises(ConfigError, match="google.push_url: required key missing"):
        load(tmp_path, 'push_listen = "127.0.0.1:8790"\n')


@pytest.mark.parametrize("listen", ["8790", "127.0.0.1", "127.0.0.1:0", "127.0.0.1:70000", ":8790"])
def test_a_bad_listen_address_is_refused(tmp_path, listen):
    with pytest.raises(ConfigError, match="google.push_listen: expected \"host:port\""):
        load(tmp_path, f'push_url = "https://x.test/n"\npush_listen = "{listen}"\n')


def test_an_ipv6_listen_address(tmp_path):
    cfg = load(tmp_path, 'push_url = "https://x.test/n"\npush_listen = "[::1]:8790"\n').google
    assert cfg.push_listen == ("::1", 8790)


@pytest.mark.parametrize(("line", "message"), [
    ("request_share = 0", "google.request_share: must be at least 0.01"),
    ("request_share = 1.5", "google.request_share: must be at most 1.0"),
    ("requests_per_minute = 0", "google.requests_per_minute: must be at least 1"),
    ("push_channel_hours = 0", "google.push_channel_hours: must be at least 1"),
    ('push_url = "ftp://x.test/n"', "google.push_url: expected an http:// or https:// URL"),
])
def test_bounds(tmp_path, line, message):
    with pytest.raises(ConfigError, match=message):
        load(tmp_path, line + '\npush_listen = "127.0.0.1:1"\n' if line.startswith("push_url") else line + "\n")


def test_a_smaller_share_is_a_smaller_budget(tmp_path):
    cfg = load(tmp_path, "request_share = 0.25\nrequests_per_minute_per_user = 100\n").google
    assert budget_limits(cfg) == Limits(2_500, 25)
