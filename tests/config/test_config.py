"""calsync.core.config: the TOML file becomes frozen dataclasses, or ONE ConfigError naming the key."""

from __future__ import annotations

import dataclasses
import os
import tomllib
from pathlib import Path

import pytest

from calsync.core import config, logs
from calsync.core.config import Config, Secret, load, parse
from calsync.core.errors import ConfigError

# The acceptance contract: this file must load exactly as written.
CONTRACT = """\
[sync]
users = ["alice@acme.test", "bob@acme.test"]
internal_domains = ["acme.test"]
exclude = ["*@resource.calendar.google.com", "noreply@*"]
lookback_days = 30
interval_minutes = 40
private_events = "skip"
activity_datetime_field = "Calsync_Activity_DateTime__c"

[state]
path = "/var/lib/calsync/state.db"

[google]
service_account_file = "/etc/calsync/google-service-account.json"  # domain-wide delegation; its token_uri is honoured
api_endpoint = "http://127.0.0.1:8701/"                             # optional: another Calendar API base URL

[salesforce]
instance_url = "https://127.0.0.1:8702"
auth = "access_token"          # also "jwt" and "password"
access_token = "00D...!AQ..."  # or the environment variable CALSYNC_SALESFORCE_ACCESS_TOKEN
ca_bundle = "/etc/calsync/ca.pem"  # optional: extra CA certificates to trust
"""

TOKEN_ENV = {"CALSYNC_SALESFORCE_ACCESS_TOKEN": "00D000000000001!env-token"}


def minimal() -> dict:
    """The smallest valid configuration, as tomllib would decode it."""
    return {
        "sync": {"users": ["alice@acme.test"]},
        "state": {"path": "/var/lib/calsync/state.db"},
        "google": {"service_account_file": "/etc/calsync/sa.json"},
        "salesforce": {"instance_url": "https://acme.my.salesforce.com", "access_token": "tok-file"},
    }


def with_(section: str, **values: object) -> dict:
    data = minimal()
    data.setdefault(section, {}).update(values)
    return data


def without(section: str, key: str) -> dict:
    data = minimal()
    del data[section][key]
    return data


def refused(data: dict, environ: dict | None = None) -> str:
    with pytest.raises(ConfigError) as caught:
        parse(data, "/etc/calsync/calsync.toml", environ or {}, base_dir=Path("/etc/calsync"))
    return str(caught.value)


def ok(data: dict, environ: dict | None = None, base_dir: Path = Path("/etc/calsync")) -> Config:
    return parse(data, "/etc/calsync/calsync.toml", environ or {}, base_dir=base_dir)


# --- the contract file --------------------------------------------------------------------------


def test_contract_file_loads_as_written(tmp_path: Path) -> None:
    path = tmp_path / "calsync.toml"
    path.write_text(CONTRACT)
    cfg = load(path, environ={})
    assert cfg.sync.users == ("alice@acme.test", "bob@acme.test")
    assert cfg.sync.internal_domains == ("acme.test",)
    assert cfg.sync.exclude == ("*@resource.calendar.google.com", "noreply@*")
    assert (cfg.sync.lookback_days, cfg.sync.interval_minutes) == (30, 40)
    assert cfg.sync.private_events == "skip"
    assert cfg.sync.activity_datetime_field == "Calsync_Activity_DateTime__c"
    assert cfg.state.path == Path("/var/lib/calsync/state.db")
    assert cfg.google.service_account_file == Path("/etc/calsync/google-service-account.json")
    assert cfg.google.mode == "service_account"
    assert cfg.google.api_endpoint == "http://127.0.0.1:8701/"
    assert cfg.salesforce.instance_url == "https://127.0.0.1:8702"
    assert cfg.salesforce.auth == "access_token"
    assert cfg.salesforce.access_token is not None
    assert cfg.salesforce.access_token.reveal() == "00D...!AQ..."
    assert cfg.salesforce.ca_bundle == Path("/etc/calsync/ca.pem")


def test_contract_file_gets_documented_defaults(tmp_path: Path) -> None:
    path = tmp_path / "calsync.toml"
    path.write_text(CONTRACT)
    cfg = load(path, environ={})
    assert cfg.sync.concurrency == 4
    assert cfg.sync.shared_activities is False
    assert dict(cfg.sync.user_map) == {}
    assert cfg.google.scopes == ("https://www.googleapis.com/auth/calendar.readonly",)
    assert cfg.salesforce.api_version == "59.0"
    assert cfg.salesforce.login_url == "https://login.salesforce.com"
    assert cfg.salesforce.daily_call_budget == 1000
    assert cfg.salesforce.external_id_field is None
    assert (cfg.log.format, cfg.log.level) == ("text", "info")


def test_config_is_frozen() -> None:
    cfg = ok(minimal())
    with pytest.raises(dataclasses.FrozenInstanceError):
        cfg.sync.lookback_days = 1  # type: ignore[misc]


def test_user_map_cannot_be_changed_after_load() -> None:
    cfg = ok(with_("sync", user_map={"alice@acme.test": "alice@acme.sf"}))
    with pytest.raises(TypeError):
        cfg.sync.user_map["alice@acme.test"] = "x"  # type: ignore[index]


# --- file errors ---------------------------------------------------------------------------------


def test_missing_file_is_a_config_error_saying_so(tmp_path: Path) -> None:
    path = tmp_path / "nope.toml"
    with pytest.raises(ConfigError, match="not found") as caught:
        load(path)
    assert str(path) in str(caught.value)


def test_directory_instead_of_file_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="directory"):
        load(tmp_path)


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads any file")
def test_unreadable_file_is_a_config_error(tmp_path: Path) -> None:
    path = tmp_path / "calsync.toml"
    path.write_text(CONTRACT)
    path.chmod(0)
    with pytest.raises(ConfigError, match="permission denied"):
        load(path)


def test_invalid_toml_reports_line_and_column(tmp_path: Path) -> None:
    path = tmp_path / "calsync.toml"
    path.write_text('[sync]\nusers = ["a@acme.test"]\nlookback_days = = 3\n')
    with pytest.raises(ConfigError) as caught:
        load(path)
    message = str(caught.value)
    assert message.startswith(f"{path}: invalid TOML:")
    assert "line 3" in message and "column" in message


def test_non_utf8_file_is_a_config_error(tmp_path: Path) -> None:
    path = tmp_path / "calsync.toml"
    path.write_bytes(b'[sync]\nusers = ["\xff@acme.test"]\n')
    with pytest.raises(ConfigError, match="invalid TOML"):
        load(path)


# --- message shapes ------------------------------------------------------------------------------


def test_wrong_type_names_the_key_and_the_value() -> None:
    message = refused(with_("sync", lookback_days="30"))
    assert message == "/etc/calsync/calsync.toml: sync.lookback_days: expected an integer, got string '30'"


def test_boolean_is_not_accepted_as_an_integer() -> None:
    assert "expected an integer, got boolean true" in refused(with_("sync", lookback_days=True))


def test_unknown_key_suggests_the_close_one() -> None:
    data = minimal()
    data["sync"]["userz"] = ["bob@acme.test"]
    assert refused(data) == "/etc/calsync/calsync.toml: sync.userz: unknown key (did you mean 'users'?)"


def test_unknown_key_without_close_match_lists_known_keys() -> None:
    message = refused(with_("log", colour="red"))
    assert "log.colour: unknown key (known keys: format, level)" in message


def test_unknown_top_level_table_is_refused() -> None:
    data = minimal()
    data["salesfroce"] = {}
    assert "salesfroce: unknown key (did you mean 'salesforce'?)" in refused(data)


def test_missing_required_key_is_named() -> None:
    message = refused(without("salesforce", "instance_url"))
    assert message == "/etc/calsync/calsync.toml: salesforce.instance_url: required key missing"


def test_missing_table_names_its_first_required_key() -> None:
    data = minimal()
    del data["sync"]
    assert refused(data).endswith("sync.users: required key missing")


def test_section_that_is_not_a_table_is_refused() -> None:
    data = minimal()
    data["log"] = "json"
    assert refused(data).endswith("log: expected a table, got string 'json'")


def test_list_item_of_wrong_type_names_its_index() -> None:
    assert "sync.exclude[1]: expected a string, got integer 3" in refused(
        with_("sync", exclude=["noreply@*", 3])
    )


# --- [sync] --------------------------------------------------------------------------------------


def test_users_are_lowercased_and_stripped() -> None:
    cfg = ok(with_("sync", users=["  Alice@ACME.test ", "bob@acme.test"]))
    assert cfg.sync.users == ("alice@acme.test", "bob@acme.test")


def test_duplicate_users_are_refused_whatever_their_case() -> None:
    message = refused(with_("sync", users=["alice@acme.test", "ALICE@acme.test"]))
    assert "sync.users[1]: duplicate address 'alice@acme.test'" in message


@pytest.mark.parametrize("bad", ["alice", "alice@", "@acme.test", "alice@acme", "a b@acme.test"])
def test_user_that_is_not_an_address_is_refused(bad: str) -> None:
    message = refused(with_("sync", users=["bob@acme.test", bad]))
    assert "sync.users[1]:" in message and "does not look like an email address" in message


def test_empty_user_list_is_refused() -> None:
    assert "sync.users: must list at least one address" in refused(with_("sync", users=[]))


def test_internal_domains_default_to_the_users_domains() -> None:
    cfg = ok(with_("sync", users=["a@acme.test", "b@acme.test", "c@acme-eu.test"]))
    assert cfg.sync.internal_domains == ("acme.test", "acme-eu.test")


def test_internal_domains_are_lowercased() -> None:
    cfg = ok(with_("sync", internal_domains=["ACME.test", "Acme-EU.test"]))
    assert cfg.sync.internal_domains == ("acme.test", "acme-eu.test")


def test_internal_domain_with_at_sign_is_refused() -> None:
    assert "sync.internal_domains[0]:" in refused(with_("sync", internal_domains=["@acme.test"]))


@pytest.mark.parametrize(
    ("key", "value", "expected"),
    [
        ("lookback_days", -1, "sync.lookback_days: must be at least 0, got -1"),
        ("interval_minutes", 0, "sync.interval_minutes: must be at least 1, got 0"),
        ("concurrency", 0, "sync.concurrency: must be at least 1, got 0"),
        ("concurrency", 17, "sync.concurrency: must be at most 16, got 17"),
        ("directory_refresh_minutes", -1, "sync.directory_refresh_minutes: must be at least 0, got -1"),
        ("directory_refresh_minutes", 10081,
         "sync.directory_refresh_minutes: must be at most 10080, got 10081"),
        ("lookback_days", 1_000_000, "sync.lookback_days: must be at most 3650, got 1000000"),
        ("interval_minutes", 1441, "sync.interval_minutes: must be at most 1440, got 1441"),
    ],
)
def test_integers_out_of_range_are_refused(key: str, value: int, expected: str) -> None:
    assert expected in refused(with_("sync", **{key: value}))


@pytest.mark.parametrize(
    ("section", "key", "value", "expected"),
    [
        ("google", "timeout_seconds", 0, "google.timeout_seconds: must be at least 1, got 0"),
        ("google", "timeout_seconds", 601, "google.timeout_seconds: must be at most 600, got 601"),
        ("google", "timeout_seconds", "60", "google.timeout_seconds: expected a number, got string '60'"),
        ("salesforce", "connect_timeout_seconds", 0.5,
         "salesforce.connect_timeout_seconds: must be at least 1, got 0.5"),
        ("salesforce", "connect_timeout_seconds", 121,
         "salesforce.connect_timeout_seconds: must be at most 120, got 121"),
        ("salesforce", "read_timeout_seconds", float("inf"),
         "salesforce.read_timeout_seconds: must be at most 600, got inf"),
        ("salesforce", "read_timeout_seconds", float("nan"),
         "salesforce.read_timeout_seconds: must be a number, got nan"),
        ("salesforce", "daily_call_budget", 10**12,
         "salesforce.daily_call_budget: must be at most 10000000, got 1000000000000"),
    ],
)
def test_other_numbers_out_of_range_are_refused(section: str, key: str, value: object, expected: str) -> None:
    assert expected in refused(with_(section, **{key: value}))


def test_timeouts_have_defaults_and_accept_fractions() -> None:
    cfg = ok(minimal())
    assert cfg.google.timeout_seconds == 60
    assert (cfg.salesforce.connect_timeout_seconds, cfg.salesforce.read_timeout_seconds) == (10, 120)
    cfg = ok(with_("salesforce", connect_timeout_seconds=2.5, read_timeout_seconds=30))
    assert (cfg.salesforce.connect_timeout_seconds, cfg.salesforce.read_timeout_seconds) == (2.5, 30)


def test_an_absurd_lookback_fails_the_load_not_the_sync(cli, tmp_path: Path) -> None:
    path = tmp_path / "calsync.toml"
    path.write_text(CONTRACT.replace("lookback_days = 30", "lookback_days = 1000000"))
    done = cli("--config", str(path), "sync")
    assert done.returncode == 78
    assert "sync.lookback_days: must be at most 3650, got 1000000" in done.stderr
    assert "Traceback" not in done.stderr


def test_lookback_of_zero_days_is_allowed() -> None:
    assert ok(with_("sync", lookback_days=0)).sync.lookback_days == 0


def test_directory_refresh_defaults_to_an_hour_and_zero_means_every_cycle() -> None:
    assert ok(minimal()).sync.directory_refresh_minutes == 60
    assert ok(with_("sync", directory_refresh_minutes=0)).sync.directory_refresh_minutes == 0


def test_directory_refresh_minutes_must_be_an_integer() -> None:
    assert refused(with_("sync", directory_refresh_minutes="60")) == (
        "/etc/calsync/calsync.toml: sync.directory_refresh_minutes: expected an integer, got string '60'"
    )


def test_private_events_accepts_only_skip_or_sync() -> None:
    assert ok(with_("sync", private_events="sync")).sync.private_events == "sync"
    assert "sync.private_events: expected one of 'skip', 'sync', got 'hide'" in refused(
        with_("sync", private_events="hide")
    )


def test_shared_activities_must_be_a_boolean() -> None:
    assert ok(with_("sync", shared_activities=True)).sync.shared_activities is True
    assert "sync.shared_activities: expected true or false" in refused(
        with_("sync", shared_activities="yes")
    )


@pytest.mark.parametrize("name", ["Calsync_Activity_DateTime__c", "acme__Meeting_Start__c", "MyField"])
def test_activity_datetime_field_accepts_api_names(name: str) -> None:
    assert ok(with_("sync", activity_datetime_field=name)).sync.activity_datetime_field == name


@pytest.mark.parametrize("name", ["Calsync Start", "Calsync__Start", "Start__c__x", "1Field__c", "Field___c"])
def test_activity_datetime_field_refuses_non_api_names(name: str) -> None:
    assert "sync.activity_datetime_field:" in refused(with_("sync", activity_datetime_field=name))


def test_user_map_maps_google_address_to_salesforce_login() -> None:
    cfg = ok(
        with_(
            "sync",
            users=["alice@acme.test", "bob@acme.test"],
            user_map={"Alice@acme.test": "alice.smith@acme.sf", "bob@acme.test": "005000000000001AAA"},
        )
    )
    assert dict(cfg.sync.user_map) == {
        "alice@acme.test": "alice.smith@acme.sf",
        "bob@acme.test": "005000000000001AAA",
    }


def test_user_map_entry_for_an_unconfigured_user_is_refused() -> None:
    message = refused(with_("sync", user_map={"carol@acme.test": "carol@acme.sf"}))
    assert 'sync.user_map."carol@acme.test": not one of sync.users' in message


@pytest.mark.parametrize("target", ["006000000000001", "carol", "005abc"])
def test_user_map_value_must_be_a_username_or_user_id(target: str) -> None:
    message = refused(with_("sync", user_map={"alice@acme.test": target}))
    assert 'sync.user_map."alice@acme.test": expected a Salesforce username' in message


# --- [state] -------------------------------------------------------------------------------------


def test_relative_state_path_resolves_against_the_config_directory(tmp_path: Path) -> None:
    path = tmp_path / "etc" / "calsync.toml"
    path.parent.mkdir()
    path.write_text(CONTRACT.replace('"/var/lib/calsync/state.db"', '"data/state.db"'))
    assert load(path, environ={}).state.path == tmp_path / "etc" / "data" / "state.db"


def test_state_path_expands_home(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("HOME", str(tmp_path))
    assert ok(with_("state", path="~/state.db")).state.path == tmp_path / "state.db"


def test_state_path_is_required() -> None:
    assert refused(without("state", "path")).endswith("state.path: required key missing")


PG_URL = "postgresql://calsync@db.acme.test:5432/calsync?sslmode=verify-full"


def pg_state(**values: object) -> dict:
    data = minimal()
    data["state"] = dict(values)
    return data


def test_state_url_names_a_postgresql_state_instead_of_a_path() -> None:
    cfg = ok(pg_state(url=PG_URL))
    assert (cfg.state.url, cfg.state.path, cfg.state.password) == (PG_URL, None, None)
    assert cfg.state.location == PG_URL and cfg.state.shown == PG_URL
    assert ok(minimal()).state.url is None  # SQLite stays the default


@pytest.mark.parametrize("state, message", [
    ({"path": "/var/lib/calsync/state.db", "url": PG_URL}, "not both"),
    ({"url": "mysql://db/calsync"}, "expected a postgresql:// URL"),
    ({"url": 5432}, "expected a string"),
])
def test_a_state_is_a_path_or_a_postgresql_url_exactly(state, message) -> None:
    text = refused(pg_state(**state))
    assert "state.url" in text and message in text, text


@pytest.mark.parametrize("url", [
    "postgresql://calsync:hunter2-secret@db.acme.test/calsync",
    "postgresql://db.acme.test/calsync?user=calsync&password=hunter2-secret",
])
def test_a_password_in_the_url_is_refused_saying_where_it_goes(url) -> None:
    text = refused(pg_state(url=url))
    assert "state.url" in text and "never goes in the configuration" in text
    assert "state_password" in text and "CALSYNC_STATE_PASSWORD" in text and "PGPASSFILE" in text
    assert "hunter2-secret" not in text


def test_the_state_password_comes_from_the_environment_or_a_credential(tmp_path: Path) -> None:
    cfg = ok(pg_state(url=PG_URL), {"CALSYNC_STATE_PASSWORD": "env-db-secret"})
    assert cfg.state.password is not None and cfg.state.password.reveal() == "env-db-secret"
    assert "env-db-secret" not in repr(cfg) and logs.redact("pw env-db-secret") != "pw env-db-secret"
    (tmp_path / "state_password").write_text("cred-db-secret\n")
    cfg = ok(pg_state(url=PG_URL), {"CREDENTIALS_DIRECTORY": str(tmp_path)})
    assert cfg.state.password.reveal() == "cred-db-secret"


# --- [google] ------------------------------------------------------------------------------------


def test_installed_app_flow_needs_client_file_and_token_dir() -> None:
    data = without("google", "service_account_file")
    data["google"].update(oauth_client_file="client.json", token_dir="tokens")
    cfg = ok(data)
    assert cfg.google.mode == "installed_app"
    assert cfg.google.oauth_client_file == Path("/etc/calsync/client.json")
    assert cfg.google.token_dir == Path("/etc/calsync/tokens")
    assert cfg.google.service_account_file is None


def test_oauth_client_file_without_token_dir_is_refused() -> None:
    data = without("google", "service_account_file")
    data["google"]["oauth_client_file"] = "client.json"
    assert refused(data).endswith("google.token_dir: required key missing (oauth_client_file is set)")


def test_token_dir_without_oauth_client_file_is_refused() -> None:
    data = without("google", "service_account_file")
    data["google"]["token_dir"] = "tokens"
    assert "google.oauth_client_file: required key missing" in refused(data)


def test_service_account_and_installed_app_together_are_refused() -> None:
    message = refused(with_("google", oauth_client_file="client.json", token_dir="tokens"))
    assert "google.oauth_client_file: not allowed with service_account_file" in message


def test_no_google_credentials_at_all_is_refused() -> None:
    message = refused(without("google", "service_account_file"))
    assert "google.service_account_file: required key missing (or set oauth_client_file" in message


def test_relative_service_account_file_resolves_against_the_config_directory() -> None:
    cfg = ok(with_("google", service_account_file="sa.json"), base_dir=Path("/srv/conf"))
    assert cfg.google.service_account_file == Path("/srv/conf/sa.json")


def test_api_endpoint_must_be_http_or_https() -> None:
    assert "google.api_endpoint: expected an http:// or https:// URL" in refused(
        with_("google", api_endpoint="ftp://127.0.0.1/")
    )


def test_scopes_can_be_replaced() -> None:
    scope = "https://www.googleapis.com/auth/calendar.events.readonly"
    assert ok(with_("google", scopes=[scope])).google.scopes == (scope,)


# --- [salesforce] --------------------------------------------------------------------------------


def test_instance_url_loses_its_trailing_slash() -> None:
    cfg = ok(with_("salesforce", instance_url="https://acme.my.salesforce.com/"))
    assert cfg.salesforce.instance_url == "https://acme.my.salesforce.com"


@pytest.mark.parametrize(
    "url", ["acme.my.salesforce.com", "ftp://acme.test", "https://acme.test/services/data", "https://"]
)
def test_instance_url_must_be_a_bare_http_url(url: str) -> None:
    assert "salesforce.instance_url:" in refused(with_("salesforce", instance_url=url))


def test_access_token_is_required_without_the_environment() -> None:
    message = refused(without("salesforce", "access_token"))
    assert "salesforce.access_token: required key missing" in message
    assert "CALSYNC_SALESFORCE_ACCESS_TOKEN" in message


def test_access_token_may_come_from_the_environment_alone() -> None:
    cfg = ok(without("salesforce", "access_token"), TOKEN_ENV)
    assert cfg.salesforce.access_token == Secret("00D000000000001!env-token")


def test_environment_access_token_wins_over_the_file() -> None:
    cfg = ok(minimal(), TOKEN_ENV)
    assert cfg.salesforce.access_token == Secret("00D000000000001!env-token")


def test_empty_environment_variable_does_not_count() -> None:
    cfg = ok(minimal(), {"CALSYNC_SALESFORCE_ACCESS_TOKEN": ""})
    assert cfg.salesforce.access_token == Secret("tok-file")


def test_systemd_credential_supplies_the_access_token(tmp_path: Path) -> None:
    (tmp_path / "salesforce_access_token").write_text("cred-token\n")
    cfg = ok(without("salesforce", "access_token"), {"CREDENTIALS_DIRECTORY": str(tmp_path)})
    assert cfg.salesforce.access_token == Secret("cred-token")


def test_environment_wins_over_the_systemd_credential(tmp_path: Path) -> None:
    (tmp_path / "salesforce_access_token").write_text("cred-token")
    cfg = ok(minimal(), {**TOKEN_ENV, "CREDENTIALS_DIRECTORY": str(tmp_path)})
    assert cfg.salesforce.access_token == Secret("00D000000000001!env-token")


def test_empty_systemd_credential_is_refused(tmp_path: Path) -> None:
    (tmp_path / "salesforce_access_token").write_text("\n")
    message = refused(minimal(), {"CREDENTIALS_DIRECTORY": str(tmp_path)})
    assert "salesforce.access_token: systemd credential" in message and "is empty" in message


def jwt_data() -> dict:
    data = without("salesforce", "access_token")
    data["salesforce"].update(
        auth="jwt", consumer_key="3MVG9key", private_key_file="jwt.key", username="calsync@acme.test"
    )
    return data


def test_jwt_mode_reads_its_keys() -> None:
    sf = ok(jwt_data(), TOKEN_ENV).salesforce
    assert (sf.auth, sf.consumer_key, sf.username) == ("jwt", "3MVG9key", "calsync@acme.test")
    assert sf.private_key_file == Path("/etc/calsync/jwt.key")
    assert sf.login_url == "https://login.salesforce.com"
    assert sf.access_token is None  # the environment's token belongs to auth = "access_token"


@pytest.mark.parametrize("key", ["consumer_key", "private_key_file", "username"])
def test_jwt_mode_requires_its_keys(key: str) -> None:
    data = jwt_data()
    del data["salesforce"][key]
    assert refused(data).endswith(f"salesforce.{key}: required key missing")


def test_key_of_another_auth_mode_is_refused() -> None:
    data = jwt_data()
    data["salesforce"]["access_token"] = "tok"
    assert "salesforce.access_token: only used with auth = 'access_token' (auth is 'jwt')" in refused(data)


def test_login_url_is_refused_with_access_token_auth() -> None:
    assert "salesforce.login_url: only used with auth = 'jwt' or 'password'" in refused(
        with_("salesforce", login_url="https://test.salesforce.com")
    )


def password_data() -> dict:
    data = without("salesforce", "access_token")
    data["salesforce"].update(auth="password", client_id="3MVG9id", username="calsync@acme.test")
    return data


def test_password_mode_takes_secrets_from_environment() -> None:
    sf = ok(
        password_data(),
        {
            "CALSYNC_SALESFORCE_PASSWORD": "pw-env",
            "CALSYNC_SALESFORCE_CLIENT_SECRET": "cs-env",
            "CALSYNC_SALESFORCE_SECURITY_TOKEN": "st-env",
        },
    ).salesforce
    assert (sf.password, sf.client_secret, sf.security_token) == (
        Secret("pw-env"),
        Secret("cs-env"),
        Secret("st-env"),
    )


def test_password_mode_takes_secrets_from_systemd_credentials(tmp_path: Path) -> None:
    for name, value in [("salesforce_password", "pw-cred"), ("salesforce_client_secret", "cs-cred")]:
        (tmp_path / name).write_text(value + "\n")
    sf = ok(password_data(), {"CREDENTIALS_DIRECTORY": str(tmp_path)}).salesforce
    assert (sf.password, sf.client_secret) == (Secret("pw-cred"), Secret("cs-cred"))


def test_password_mode_security_token_is_optional() -> None:
    data = password_data()
    data["salesforce"].update(password="pw-file", client_secret="cs-file")
    assert ok(data).salesforce.security_token is None


def test_password_mode_requires_the_password() -> None:
    data = password_data()
    data["salesforce"]["client_secret"] = "cs-file"
    message = refused(data)
    assert "salesforce.password: required key missing" in message
    assert "CALSYNC_SALESFORCE_PASSWORD" in message and "salesforce_password" in message


def test_api_version_given_as_a_number_is_refused_with_a_hint() -> None:
    assert 'salesforce.api_version: expected a string like "59.0", got float 59.0' in refused(
        with_("salesforce", api_version=59.0)
    )


def test_api_version_must_look_like_a_version() -> None:
    assert "salesforce.api_version:" in refused(with_("salesforce", api_version="v59"))


def test_external_id_field_must_be_a_custom_field() -> None:
    assert ok(with_("salesforce", external_id_field="Calsync_Key__c")).salesforce.external_id_field == "Calsync_Key__c"
    assert "salesforce.external_id_field:" in refused(with_("salesforce", external_id_field="Subject"))


def test_daily_call_budget_must_not_be_negative() -> None:
    assert ok(with_("salesforce", daily_call_budget=0)).salesforce.daily_call_budget == 0
    assert "salesforce.daily_call_budget: must be at least 0" in refused(
        with_("salesforce", daily_call_budget=-5)
    )


# --- [log] ---------------------------------------------------------------------------------------


def test_log_format_and_level_are_checked() -> None:
    cfg = ok(with_("log", format="json", level="debug"))
    assert (cfg.log.format, cfg.log.level) == ("json", "debug")
    assert "log.level: expected one of 'debug', 'info', 'warning', 'error', got 'verbose'" in refused(
        with_("log", level="verbose")
    )


# --- secrets -------------------------------------------------------------------------------------


def test_secret_is_not_a_string() -> None:
    assert not isinstance(Secret("x"), str)


def test_secret_never_prints_its_value() -> None:
    secret = Secret("hunter2-value")
    assert repr(secret) == str(secret) == f"{secret}" == "Secret('***')"
    assert secret.reveal() == "hunter2-value"


def test_printing_a_config_never_shows_secrets() -> None:
    data = password_data()
    data["salesforce"].update(password="pw-file-value", client_secret="cs-file-value")
    data["salesforce"]["security_token"] = "st-file-value"
    text = repr(ok(data))
    for value in ("pw-file-value", "cs-file-value", "st-file-value"):
        assert value not in text
    assert "Secret('***')" in text


def test_loaded_secrets_are_redacted_from_logs() -> None:
    ok(with_("salesforce", access_token="tok-registered-by-config"))
    assert logs.redact("token is tok-registered-by-config") == "token is ***"


# --- derived values ------------------------------------------------------------------------------


def test_plan_settings_carry_the_sync_section() -> None:
    cfg = ok(
        with_(
            "sync",
            users=["Alice@Acme.test", "bob@acme.test"],
            exclude=["NoReply@*"],
            lookback_days=7,
            private_events="sync",
            activity_datetime_field="Start__c",
        )
    )
    settings = cfg.plan_settings()
    assert settings.configured_users == frozenset({"alice@acme.test", "bob@acme.test"})
    assert settings.internal_domains == frozenset({"acme.test"})
    assert settings.exclude == ("noreply@*",)
    assert (settings.lookback_days, settings.private_events) == (7, "sync")
    assert settings.activity_datetime_field == "Start__c"


def test_example_configuration_loads() -> None:
    env = {"CREDENTIALS_DIRECTORY": "/run/credentials/calsync.service"}
    cfg = parse(tomllib.loads(config.example_toml()), environ=env, base_dir=Path("/etc/calsync"))
    assert cfg.sync.users == ("alice@acme.test", "bob@acme.test")
    assert cfg.google.mode == "service_account"
    assert cfg.salesforce.auth == "jwt"  # the daemon's default: a credential that does not expire
    assert cfg.salesforce.private_key_file == Path("/run/credentials/calsync.service/salesforce_jwt.key")
    assert cfg.google.service_account_file == Path(
        "/run/credentials/calsync.service/google_service_account.json")


def test_example_configuration_mentions_every_key() -> None:
    text = config.example_toml()
    for key in (
        *config._SYNC_KEYS,
        *config._GOOGLE_KEYS,
        *config._SALESFORCE_KEYS,
        *config._LOG_KEYS,
        *config._METRICS_KEYS,
    ):
        if key != "scopes":
            assert key in text, key


# --- credentials as the service finds them (credentials.py) ---------------------------------------


def credential_jwt(key_file: str) -> dict:
    data = minimal()
    data["google"]["service_account_file"] = "%d/google_service_account.json"
    data["salesforce"] = {"instance_url": "https://acme.my.salesforce.com", "auth": "jwt",
                          "consumer_key": "3MVG9", "private_key_file": key_file,
                          "username": "calsync@acme.test"}
    return data


def test_percent_d_files_are_in_the_services_credentials_directory(tmp_path: Path) -> None:
    cfg = ok(credential_jwt("%d/salesforce_jwt.key"), {"CREDENTIALS_DIRECTORY": str(tmp_path)})
    assert cfg.salesforce.private_key_file == tmp_path / "salesforce_jwt.key"
    assert cfg.google.service_account_file == tmp_path / "google_service_account.json"


def test_without_credentials_directory_the_credential_store_is_read(tmp_path: Path) -> None:
    (tmp_path / "salesforce_access_token").write_text("00D000000000001!from-the-store\n")
    env = {"CALSYNC_CREDENTIAL_STORE": str(tmp_path)}
    cfg = ok(credential_jwt("%d/salesforce_jwt.key"), env)
    assert cfg.salesforce.private_key_file == tmp_path / "salesforce_jwt.key"
    token = ok(without("salesforce", "access_token"), env).salesforce.access_token
    assert token is not None and token.reveal() == "00D000000000001!from-the-store"


def test_percent_d_without_any_credentials_directory_names_the_key_and_where_it_looked(tmp_path: Path) -> None:
    message = refused(credential_jwt("%d/salesforce_jwt.key"),
                      {"CALSYNC_CREDENTIAL_STORE": str(tmp_path / "none")})
    assert "google.service_account_file: %d/google_service_account.json: no credentials directory" in message
    assert "$CREDENTIALS_DIRECTORY is unset" in message and str(tmp_path / "none") in message


def test_loading_without_secrets_tolerates_what_only_the_service_has(tmp_path: Path) -> None:
    env = {"CALSYNC_CREDENTIAL_STORE": str(tmp_path / "none")}
    data = without("salesforce", "access_token")
    assert "salesforce.access_token: required key missing" in refused(data, env)
    cfg = parse(data, "x.toml", env, base_dir=tmp_path, secrets=False)
    assert cfg.salesforce.access_token is None
    cfg = parse(credential_jwt("%d/salesforce_jwt.key"), "x.toml", env, base_dir=tmp_path, secrets=False)
    assert str(cfg.salesforce.private_key_file) == "%d/salesforce_jwt.key"


def test_metrics_table() -> None:
    cfg = ok(with_("metrics", textfile="prom/calsync.prom", listen="127.0.0.1:9464"))
    assert cfg.metrics.textfile == Path("/etc/calsync/prom/calsync.prom")
    assert cfg.metrics.listen == ("127.0.0.1", 9464)
    assert ok(with_("metrics", listen="[::1]:9464")).metrics.listen == ("::1", 9464)
    assert ok(minimal()).metrics.listen is None
    assert "metrics.listen: expected \"host:port\"" in refused(with_("metrics", listen="9464"))
    assert "metrics.listen" in refused(with_("metrics", listen="localhost:99999"))
