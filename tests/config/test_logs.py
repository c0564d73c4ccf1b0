"""calsync.core.logs: one line per event, key=value or JSON, and no secret ever reaches the output."""

from __future__ import annotations

import io
import json
import logging
import os
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote, quote_plus, urlencode

import pytest

from calsync.core import logs
from calsync.core.config import Secret

LOG = logging.getLogger("calsync.cycle")


@pytest.fixture(autouse=True)
def _restore_logging() -> Iterator[None]:
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    calsync_level = logging.getLogger("calsync").level
    yield
    for handler in list(root.handlers):
        if handler not in handlers:
            root.removeHandler(handler)
    root.setLevel(level)
    logging.getLogger("calsync").setLevel(calsync_level)
    logging.captureWarnings(False)
    logs.clear_secrets()


def configure(fmt: str = "text", level: str = "info", environ: dict | None = None) -> io.StringIO:
    stream = io.StringIO()
    logs.setup(fmt, level, stream, environ=environ or {})
    return stream


def lines(stream: io.StringIO) -> list[str]:
    return stream.getvalue().splitlines()


# --- text lines ----------------------------------------------------------------------------------


def test_text_line_carries_core_keys_then_fields() -> None:
    stream = configure()
    logs.event(LOG, "created", user="alice@acme.test", event_id="abc", sf_id="00U000000000001AAA")
    [line] = lines(stream)
    assert line.startswith("ts=")
    assert line.split(" ", 1)[1] == (
        'level=info logger=calsync.cycle msg="created" user=alice@acme.test event_id=abc '
        "sf_id=00U000000000001AAA"
    )


def test_timestamp_is_utc_iso_with_milliseconds() -> None:
    stream = configure()
    LOG.info("tick")
    ts = logs.parse_line(lines(stream)[0])["ts"]
    assert len(ts) == len("2026-01-05T15:00:00.000Z") and ts.endswith("Z") and ts[10] == "T"


def test_extra_fields_mapping_is_logged_as_fields() -> None:
    stream = configure()
    LOG.warning("skipped", extra={"fields": {"user": "bob@acme.test", "reason": "private"}})
    parsed = logs.parse_line(lines(stream)[0])
    assert (parsed["level"], parsed["user"], parsed["reason"]) == ("warning", "bob@acme.test", "private")


def test_plain_extra_attributes_are_logged_as_fields() -> None:
    stream = configure()
    LOG.info("polled", extra={"calendar": "alice@acme.test"})
    assert logs.parse_line(lines(stream)[0])["calendar"] == "alice@acme.test"


def test_field_cannot_overwrite_a_core_key() -> None:
    stream = configure()
    logs.event(LOG, "real message", msg="fake", logger="other")
    parsed = logs.parse_line(lines(stream)[0])
    assert (parsed["msg"], parsed["logger"]) == ("real message", "calsync.cycle")
    assert (parsed["msg_"], parsed["logger_"]) == ("fake", "other")


@pytest.mark.parametrize(
    "value",
    [
        "two words",
        'say "hi"',
        "a=b",
        "back\\slash",
        "line\nbreak\r\tand tab",
        "",
        "bell\x07",
        "naïve café",
        '\\"',
    ],
)
def test_awkward_values_are_quoted_and_round_trip(value: str) -> None:
    stream = configure()
    logs.event(LOG, value, note=value)
    [line] = lines(stream)
    parsed = logs.parse_line(line)
    assert (parsed["msg"], parsed["note"]) == (value, value)


def test_plain_values_stay_bare() -> None:
    assert logs.format_value("alice@acme.test") == "alice@acme.test"
    assert logs.format_value("two words") == '"two words"'
    assert logs.format_value(None) == "null"
    assert logs.format_value(True) == "true"
    assert logs.format_value(3) == "3"


def test_event_uses_the_given_level() -> None:
    stream = configure()
    logs.event(LOG, "failed", logging.ERROR, user="alice@acme.test")
    logs.event(LOG, "slow", "warning")
    assert [logs.parse_line(line)["level"] for line in lines(stream)] == ["error", "warning"]


def test_traceback_stays_on_one_line() -> None:
    stream = configure()
    try:
        raise RuntimeError("boom")
    except RuntimeError:
        LOG.exception("write failed")
    [line] = lines(stream)
    exc = logs.parse_line(line)["exc"]
    assert exc.startswith("Traceback (most recent call last):") and exc.endswith("RuntimeError: boom")


def test_level_filters_calsync_records() -> None:
    stream = configure(level="warning")
    LOG.info("hidden")
    LOG.warning("shown")
    assert [logs.parse_line(line)["msg"] for line in lines(stream)] == ["shown"]


def test_other_libraries_show_only_warnings_at_info_level() -> None:
    stream = configure(level="debug")
    logging.getLogger("apscheduler.scheduler").info("Running job")
    logging.getLogger("urllib3.connectionpool").warning("Retrying")
    LOG.debug("detail")
    assert [logs.parse_line(line)["msg"] for line in lines(stream)] == ["Retrying", "detail"]


def test_second_setup_replaces_the_first_handler() -> None:
    first = configure()
    second = configure()
    LOG.info("once")
    assert lines(first) == [] and len(lines(second)) == 1


def test_bad_format_is_refused() -> None:
    with pytest.raises(ValueError, match="log format"):
        logs.setup("xml", "info", io.StringIO())


# --- journald ------------------------------------------------------------------------------------


def test_journald_text_lines_have_no_timestamp_and_a_priority_prefix() -> None:
    stream = configure(environ={"JOURNAL_STREAM": "8:12345"})
    LOG.error("failed")
    LOG.info("created")
    assert lines(stream) == [
        '<3>level=error logger=calsync.cycle msg="failed"',
        '<6>level=info logger=calsync.cycle msg="created"',
    ]


def test_journald_json_lines_keep_the_timestamp() -> None:
    stream = configure("json", environ={"JOURNAL_STREAM": "8:12345"})
    LOG.warning("slow")
    [line] = lines(stream)
    assert line.startswith("<4>{")
    assert "ts" in json.loads(line[3:])


def test_journal_stream_of_another_file_is_not_journald(tmp_path: Path) -> None:
    with open(tmp_path / "log.txt", "w") as stream:
        assert not logs.is_journald(stream, {"JOURNAL_STREAM": "1:1"})


def test_journal_stream_matching_the_stream_is_journald(tmp_path: Path) -> None:
    with open(tmp_path / "log.txt", "w") as stream:
        status = os.fstat(stream.fileno())
        assert logs.is_journald(stream, {"JOURNAL_STREAM": f"{status.st_dev}:{status.st_ino}"})


# --- JSON lines ----------------------------------------------------------------------------------


def test_json_lines_parse_and_carry_the_same_fields() -> None:
    stream = configure("json")
    logs.event(LOG, "created", user="alice@acme.test", count=3, private=False, what_id=None)
    try:
        raise KeyError("x")
    except KeyError:
        LOG.exception("boom")
    first, second = (json.loads(line) for line in lines(stream))
    assert {k: first[k] for k in ("level", "logger", "msg", "user", "count", "private", "what_id")} == {
        "level": "info",
        "logger": "calsync.cycle",
        "msg": "created",
        "user": "alice@acme.test",
        "count": 3,
        "private": False,
        "what_id": None,
    }
    assert "ts" in first
    assert second["exc"].endswith("KeyError: 'x'")


def test_json_renders_unknown_objects_as_text() -> None:
    stream = configure("json")
    logs.event(LOG, "path", where=Path("/var/lib/calsync"))
    assert json.loads(lines(stream)[0])["where"] == "/var/lib/calsync"


# --- redaction -----------------------------------------------------------------------------------

# (text that holds a secret, the part that must never appear)
PEM = "-----BEGIN RSA PRIVATE KEY-----\nMIIEowIBAAKCAQEAsecretkeymaterial\n-----END RSA PRIVATE KEY-----"
SHAPES = {
    "registered": ("the value is s3cr3t-registered-value ok", "s3cr3t-registered-value"),
    "salesforce_session": ("sid 00D5e000000AbCd!AQ8AQJr.Xy_z12 expired", "AQ8AQJr.Xy_z12"),
    "google_token": ("got ya29.a0AfH6SMBx-abc_DEF123 back", "a0AfH6SMBx-abc_DEF123"),
    "google_refresh": ('{"refresh_token": "1//0gLbSecretRefresh-xyz"}', "0gLbSecretRefresh-xyz"),
    "bearer": ("Authorization: Bearer opaque-Token.123", "opaque-Token.123"),
    "pem": (f"key:\n{PEM}\nend", "secretkeymaterial"),
    "pem_json_escaped": (json.dumps({"private_key": PEM + "\n"}), "secretkeymaterial"),
    "private_key_json": ('{"type": "service_account", "private_key": "abc-not-pem-shaped"}', "abc-not-pem-shaped"),
    "access_token_query": ("GET /x?access_token=qwerty12345&y=1", "qwerty12345"),
    "refresh_token_kv": ("refresh_token=plain-refresh-987", "plain-refresh-987"),
    "client_secret": ("client_secret: 'cs-value-6543'", "cs-value-6543"),
    "password_form": ("grant_type=password&password=pw-value-777&username=x", "pw-value-777"),
    "password_quoted": ('password="with spaces inside"', "with spaces inside"),
    "jwt": ("assertion eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJ4In0.c2lnbmF0dXJl", "eyJzdWIiOiJ4In0"),
}


@pytest.fixture
def registered() -> None:
    logs.register_secret("s3cr3t-registered-value")


def _emit_all_ways(text: str) -> None:
    LOG.info(text)
    LOG.info("formatted: %s", text)
    logs.event(LOG, "field", detail=text)
    try:
        try:
            raise ValueError(text)
        except ValueError as inner:
            raise RuntimeError(f"wrapped: {text}") from inner
    except RuntimeError:
        LOG.exception("failed")


@pytest.mark.usefixtures("registered")
@pytest.mark.parametrize("fmt", ["text", "json"])
@pytest.mark.parametrize("shape", sorted(SHAPES))
def test_every_secret_shape_is_redacted(fmt: str, shape: str) -> None:
    text, secret = SHAPES[shape]
    stream = configure(fmt)
    _emit_all_ways(text)
    output = stream.getvalue()
    assert len(lines(stream)) == 4  # one line per event, tracebacks included
    assert secret not in output
    assert output.count("***") >= 5  # message, args, field, exception message, cause message
    if fmt == "json":
        for line in lines(stream):
            json.loads(line)
    else:
        for line in lines(stream):
            logs.parse_line(line)


def test_redaction_keeps_the_surrounding_text() -> None:
    assert logs.redact("GET /x?access_token=abc123&limit=5") == "GET /x?access_token=***&limit=5"
    assert logs.redact("Authorization: Bearer abc") == "Authorization: Bearer ***"
    assert logs.redact('{"password": "p w", "user": "u"}') == '{"password": "***", "user": "u"}'


def test_text_without_secrets_is_unchanged() -> None:
    text = "created sf_id=00U000000000001AAA for alice@acme.test (token refresh ok, password reset)"
    assert logs.redact(text) == text


def test_sensitive_field_names_are_masked_whatever_the_value() -> None:
    stream = configure()
    logs.event(LOG, "login", password="short", client_secret="x", user="alice@acme.test")
    parsed = logs.parse_line(lines(stream)[0])
    assert (parsed["password"], parsed["client_secret"], parsed["user"]) == ("***", "***", "alice@acme.test")


def test_access_token_registered_later_is_redacted() -> None:
    stream = configure()
    token = "fresh-token-obtained-mid-run"
    LOG.info("before %s", token)
    logs.register_secret(token)
    LOG.info("after %s", token)
    first, second = (logs.parse_line(line)["msg"] for line in lines(stream))
    assert (first, second) == (f"before {token}", "after ***")


def test_config_secret_objects_can_be_registered() -> None:
    logs.register_secret(Secret("secret-object-value"))
    assert logs.redact("x secret-object-value y") == "x *** y"


def test_secret_with_quotes_is_redacted_inside_logged_json() -> None:
    logs.register_secret('pa"ss\\word')
    body = json.dumps({"note": 'pa"ss\\word'})
    assert logs.redact(body) == '{"note": "***"}'


@pytest.mark.parametrize("encode", [
    lambda s: quote(s, safe=""), quote, quote_plus,
    lambda s: quote_plus(s).replace("%2F", "%2f").replace("%40", "%40").replace("%2B", "%2b"),
    lambda s: urlencode({"note": s}).split("=", 1)[1],
])
def test_url_and_form_encoded_forms_of_a_secret_are_redacted(encode) -> None:
    secret = "p@ss w/rd+&=%9?é"
    logs.register_secret(secret)
    encoded = encode(secret)
    assert encoded != secret
    assert logs.redact(f"echo: note={encoded}&x=1") == "echo: note=***&x=1"


def test_very_short_registered_values_are_ignored() -> None:
    logs.register_secret("abc")
    assert logs.redact("abcdef") == "abcdef"


def test_longer_secret_is_masked_whole_when_it_contains_another() -> None:
    logs.register_secret("token-1234")
    logs.register_secret("token-1234-extended")
    assert logs.redact("v=token-1234-extended") == "v=***"


def test_redactor_protects_a_foreign_handler() -> None:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logging.Formatter("%(message)s"))
    handler.addFilter(logs.Redactor())
    LOG.addHandler(handler)
    try:
        try:
            raise ValueError("token ya29.leaky-token")
        except ValueError:
            LOG.error("seen ya29.other-token", exc_info=True)
    finally:
        LOG.removeHandler(handler)
    output = stream.getvalue()
    assert "leaky-token" not in output and "other-token" not in output
    assert "ValueError: token ***" in output


def test_formatter_redacts_even_without_the_filter() -> None:
    record = LOG.makeRecord(LOG.name, logging.INFO, __file__, 1, "hi %s", ("ya29.abc-def",), None)
    assert "abc-def" not in logs.JsonFormatter().format(record)


def test_redact_exception_covers_the_whole_chain() -> None:
    try:
        try:
            raise OSError("password=inner-pass")
        except OSError as inner:
            raise RuntimeError("Bearer outer-token") from inner
    except RuntimeError as exc:
        text = logs.redact_exception(exc)
    assert "inner-pass" not in text and "outer-token" not in text
    assert "OSError: password=***" in text


def test_config_key_paths_in_messages_are_not_mistaken_for_secrets():
    from calsync.core.logs import redact

    text = "salesforce.access_token: required key missing (or set CALSYNC_SALESFORCE_ACCESS_TOKEN)"
    assert redact(text) == text
