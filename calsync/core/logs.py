"""calsync's log lines: one line per event on stderr, for journald, with every secret redacted.

`setup()` gives the root logger one stderr handler carrying a `Redactor` filter and either a
`KeyValueFormatter` (logfmt-style text) or a `JsonFormatter` (one JSON object per line):

    ts=2026-01-05T15:00:00.123Z level=info logger=calsync.cycle msg="created" user=alice@acme.test
    {"ts": "2026-01-05T15:00:00.123Z", "level": "info", "logger": "calsync.cycle", "msg": "created"}

Fields come from `event(logger, msg, **fields)`, from `extra={"fields": {...}}`, or from any other
`extra=` attribute. A traceback is escaped into one `exc` field, so an event stays one line.

Redaction happens before formatting, on the message, on each field value and on the traceback
text: the values passed to `register_secret()` (configured secrets, and each access token as it is
obtained) and the token shapes in `_TOKEN_PATTERNS` become `***`. Formatters redact too, in case a
record reaches them without passing the filter.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
import re
import sys
import threading
import traceback
from collections.abc import Mapping
from typing import Any, Protocol, TextIO
from urllib.parse import quote, quote_plus

MASK = "***"

LEVELS: dict[str, int] = {
    "debug": logging.DEBUG,
    "info": logging.INFO,
    "warning": logging.WARNING,
    "error": logging.ERROR,
}
FORMATS = ("text", "json")

# Shorter registered values are ignored: masking every "abc" in every line would make the logs
# unreadable while protecting a secret nobody should be using anyway.
MIN_SECRET_LENGTH = 4

# Field names whose value is always masked, whatever it looks like.
SENSITIVE_KEYS = frozenset(
    {
        "access_token",
        "refresh_token",
        "id_token",
        "client_secret",
        "password",
        "passwd",
        "security_token",
        "session_id",
        "sessionid",
        "private_key",
        "assertion",
        "api_key",
        "secret",
        "authorization",
    }
)

# In free text "Authorization: Bearer x" is left to the Bearer pattern, which keeps the scheme.
_SENSITIVE_KEY_ALTERNATION = "|".join(
    sorted(SENSITIVE_KEYS - {"authorization"}, key=len, reverse=True)
)

# Known token shapes, in order. Each replaces the whole match with its template.
_TOKEN_PATTERNS: tuple[tuple[re.Pattern[str], str], ...] = (
    # PEM private keys (service-account and JWT signing keys), raw or JSON-escaped ("\n").
    (
        re.compile(
            r"-----BEGIN [A-Z ]*PRIVATE KEY-----.*?-----END [A-Z ]*PRIVATE KEY-----", re.DOTALL
        ),
        MASK,
    ),
    # A PEM block cut short (e.g. a truncated repr): mask to the end of the text.
    (re.compile(r"-----BEGIN [A-Z ]*PRIVATE KEY-----.*", re.DOTALL), MASK),
    # HTTP Authorization: Bearer <token>
    (re.compile(r"\bBearer\s+[^\s\"']+", re.IGNORECASE), f"Bearer {MASK}"),
    # key=value, key: value, "key": "value", 'key': 'value' (JSON bodies, dict reprs, queries).
    # Not after a ".": "salesforce.access_token: required key missing" names a config key.
    (
        re.compile(
            r"""(?P<key>(?<![A-Za-z0-9.])(?:%s))(?P<sep>["']?\s*[:=]\s*)"""
            r"""(?P<val>"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'|[^\s"'&,;}\]\)]+)"""
            % _SENSITIVE_KEY_ALTERNATION,
            re.IGNORECASE,
        ),
        "",  # handled by _mask_key_value (keeps the quotes)
    ),
    # Salesforce session id / access token: <15/18-char org id>!<token> (reference B7).
    (re.compile(r"00D\w{12,15}![\w.]+"), MASK),
    # Google OAuth access tokens and refresh tokens.
    (re.compile(r"\bya29\.[\w.\-]+"), MASK),
    (re.compile(r"(?<![\w/])1//[\w\-]{10,}"), MASK),
    # JWTs (signed assertions, id tokens): three base64url parts, the first a JSON header.
    (re.compile(r"\beyJ[\w\-]+\.[\w\-]+\.[\w\-]*"), MASK),
)


def _mask_key_value(match: re.Match[str]) -> str:
    value = match.group("val")
    if value[:1] in "\"'":
        masked = value[0] + MASK + value[0]
    else:
        masked = MASK
    return match.group("key") + match.group("sep") + masked


class _Revealable(Protocol):
    def reveal(self) -> str: ...


_PERCENT = re.compile(r"%([0-9A-F])([0-9A-F])")


def _literal(value: str) -> str:
    """A pattern for `value` in which each %-escape matches in either case (%2F and %2f)."""

    def either_case(match: re.Match[str]) -> str:
        return "%" + "".join(f"[{c}{c.lower()}]" if c.isalpha() else c for c in match.groups())

    return _PERCENT.sub(either_case, re.escape(value))


class _SecretRegistry:
    """The exact secret values to mask; shared by every Redactor (thread-safe)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._values: set[str] = set()
        self._pattern: re.Pattern[str] | None = None

    def add(self, value: str) -> None:
        if len(value) < MIN_SECRET_LENGTH:
            return
        with self._lock:
            if value in self._values:
                return
            self._values.add(value)
            # Longest first, so a secret containing another is masked whole.
            ordered = sorted(self._values, key=len, reverse=True)
            alternation = "|".join(_literal(v) for v in ordered)
            self._pattern = re.compile(alternation)

    def clear(self) -> None:
        with self._lock:
            self._values.clear()
            self._pattern = None

    @property
    def pattern(self) -> re.Pattern[str] | None:
        return self._pattern


_REGISTRY = _SecretRegistry()


def register_secret(value: str | _Revealable | None) -> None:
    """Mask `value` (a str, or anything with `.reveal()` such as config.Secret) in every log line.

    Call it whenever a credential is loaded or obtained (each new access token included). Values
    shorter than MIN_SECRET_LENGTH are ignored. Also registers the JSON-escaped form (a secret
    with quotes or newlines inside a logged JSON body) and the URL- and form-encoded forms.
    """
    if value is None:
        return
    text = value if isinstance(value, str) else value.reveal()
    for form in _forms(text):
        _REGISTRY.add(form)


def _forms(text: str) -> set[str]:
    """`text` as it may appear in a line: raw, JSON-escaped, URL- and form-encoded.

    A token endpoint (or a proxy in front of it) may echo the form it was sent, where the
    secret is %-encoded (`quote_plus`, what requests and google-auth send) or in a URL (`quote`).
    """
    forms = {text, quote(text, safe=""), quote(text), quote_plus(text)}
    for ascii_only in (True, False):
        forms.add(json.dumps(text, ensure_ascii=ascii_only)[1:-1])
    return forms


def clear_secrets() -> None:
    """Forget every registered secret (for tests)."""
    _REGISTRY.clear()


def redact(text: str) -> str:
    """`text` with registered secrets and known token shapes replaced by `***`."""
    pattern = _REGISTRY.pattern
    if pattern is not None:
        text = pattern.sub(MASK, text)
    for token_pattern, replacement in _TOKEN_PATTERNS:
        if replacement:
            text = token_pattern.sub(replacement, text)
        else:
            text = token_pattern.sub(_mask_key_value, text)
    return text


def excerpt(text: str, limit: int = 300) -> str:
    """`text` redacted and cut to `limit` characters: for error texts a server sent back, which
    may echo the request (some gateways and token endpoints do)."""
    text = redact(text)
    return text if len(text) <= limit else text[:limit] + "…"


def redact_exception(exc: BaseException) -> str:
    """The traceback of `exc` (traceback.format_exception), redacted, without a final newline."""
    return redact("".join(traceback.format_exception(exc)).rstrip("\n"))


def _redact_value(key: str, value: Any) -> Any:
    if key.lower() in SENSITIVE_KEYS and value is not None:
        return MASK
    if value is None or isinstance(value, (bool, int, float)):
        return value
    return redact(value if isinstance(value, str) else str(value))


# Attributes every LogRecord has; anything else on a record came from `extra=` and is a field.
_RECORD_ATTRIBUTES = frozenset(vars(logging.makeLogRecord({}))) | {
    "message",
    "asctime",
    "taskName",
    "fields",
    "_calsync_redacted",
}


class Redactor(logging.Filter):
    """Masks secrets in a record's message, fields, traceback and stack before it is formatted.

    Put on handlers (handler filters see records from every logger; logger filters do not). The
    record is changed in place: the message is rendered and redacted (args dropped), `fields`
    replaced by a redacted copy, `exc_text` set from the redacted traceback.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        if getattr(record, "_calsync_redacted", False):
            return True
        try:
            message = record.getMessage()
        except Exception:  # a bad %-format must not lose the line
            message = f"{record.msg!s} {record.args!r}"
        record.msg = redact(message)
        record.args = None
        fields = _fields_of(record)
        record.fields = {key: _redact_value(key, value) for key, value in fields.items()}
        if record.exc_info and record.exc_info[1] is not None:
            record.exc_text = redact_exception(record.exc_info[1])
        elif record.exc_text:
            record.exc_text = redact(record.exc_text)
        if record.stack_info:
            record.stack_info = redact(record.stack_info)
        record._calsync_redacted = True
        return True


_REDACTOR = Redactor()


def _fields_of(record: logging.LogRecord) -> dict[str, Any]:
    """`extra={"fields": {...}}` first, then any other `extra=` attribute."""
    fields: dict[str, Any] = {}
    given = getattr(record, "fields", None)
    if isinstance(given, Mapping):
        fields.update({str(key): value for key, value in given.items()})
    for name, value in vars(record).items():
        if name not in _RECORD_ATTRIBUTES and name not in fields:
            fields[name] = value
    return fields


def _timestamp(record: logging.LogRecord) -> str:
    moment = dt.datetime.fromtimestamp(record.created, tz=dt.timezone.utc)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def _level_name(record: logging.LogRecord) -> str:
    return record.levelname.lower()


# journald reads a "<N>" syslog priority prefix off each stderr line (systemd.exec(5),
# SyslogLevelPrefix=, on by default), so `journalctl -p warning` works.
_SYSLOG_PRIORITY = {
    logging.CRITICAL: 2,
    logging.ERROR: 3,
    logging.WARNING: 4,
    logging.INFO: 6,
    logging.DEBUG: 7,
}


def _syslog_prefix(record: logging.LogRecord) -> str:
    for level in sorted(_SYSLOG_PRIORITY, reverse=True):
        if record.levelno >= level:
            return f"<{_SYSLOG_PRIORITY[level]}>"
    return "<7>"


_CORE_KEYS = ("ts", "level", "logger", "msg", "exc", "stack")


class _CalsyncFormatter(logging.Formatter):
    def __init__(self, *, timestamps: bool = True, syslog_prefix: bool = False) -> None:
        super().__init__()
        self.timestamps = timestamps
        self.syslog_prefix = syslog_prefix

    def _items(self, record: logging.LogRecord) -> list[tuple[str, Any]]:
        """The (key, value) pairs of one event, redacted, core keys first."""
        _REDACTOR.filter(record)  # no-op when the handler's filter already ran
        items: list[tuple[str, Any]] = []
        if self.timestamps:
            items.append(("ts", _timestamp(record)))
        items += [("level", _level_name(record)), ("logger", record.name), ("msg", record.msg)]
        taken = set(_CORE_KEYS)
        for key, value in getattr(record, "fields", {}).items():
            key = _clean_key(key)
            while key in taken:  # a field may not overwrite the core keys or another field
                key += "_"
            taken.add(key)
            items.append((key, value))
        if record.exc_text:
            items.append(("exc", record.exc_text))
        if record.stack_info:
            items.append(("stack", record.stack_info))
        return items

    def _prefix(self, record: logging.LogRecord) -> str:
        return _syslog_prefix(record) if self.syslog_prefix else ""


_KEY_CHARS = re.compile(r"[^A-Za-z0-9_.\-]")


def _clean_key(key: str) -> str:
    return _KEY_CHARS.sub("_", key) or "_"


# Characters that force a value into quotes: space, quote, '=', backslash, controls, non-ASCII
# whitespace (journald and `grep` users read these lines).
_NEEDS_QUOTES = re.compile(r'[\s"=\\\x00-\x1f\x7f-\x9f]')
_ESCAPES = {"\\": "\\\\", '"': '\\"', "\n": "\\n", "\r": "\\r", "\t": "\\t"}


def _escape_char(match: re.Match[str]) -> str:
    char = match.group()
    return _ESCAPES.get(char) or f"\\x{ord(char):02x}"


_TO_ESCAPE = re.compile(r'[\\"\x00-\x1f\x7f-\x9f]')

# The control characters a terminal acts on: C0 (BEL rings, ESC starts a sequence that can
# recolour, move the cursor, retitle the window or, with OSC 52, write the clipboard), DEL and
# C1 (U+009B is a one-character CSI on terminals that take 8-bit controls). Names, subjects,
# locations and error bodies come from people outside the company (an invitation's sender
# writes its attendees' display names) and from servers: whatever calsync prints or logs
# shows them escaped, never raw.
CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")


def printable(text: str) -> str:
    """`text` with every control character (C0, DEL, C1) written as an escape: \\n, \\r, \\t,
    or \\xNN (ESC is \\x1b). For everything calsync prints for a person (cli.echo, STATUS=);
    log values get the same escapes (format_value)."""
    return CONTROL.sub(_escape_char, text)


def _json_escape_c1(match: re.Match[str]) -> str:
    return f"\\u{ord(match.group()):04x}"


_C1 = re.compile(r"[\x7f-\x9f]")


def format_value(value: Any, *, quote: bool = False) -> str:
    """One logfmt value: bare when safe, else double-quoted with \\ \" \\n \\r \\t \\xNN escapes."""
    if value is None:
        text = "null"
    elif isinstance(value, bool):
        text = "true" if value else "false"
    else:
        text = str(value)
    if quote or not text or _NEEDS_QUOTES.search(text):
        return '"' + _TO_ESCAPE.sub(_escape_char, text) + '"'
    return text


_PAIR = re.compile(r'\s*([^\s=]+)=("(?:[^"\\]|\\.)*"|[^\s"]*)')
_UNESCAPE = re.compile(r"\\(x[0-9a-fA-F]{2}|.)")
_UNESCAPES = {"n": "\n", "r": "\r", "t": "\t"}


def _unescape(match: re.Match[str]) -> str:
    code = match.group(1)
    if code.startswith("x") and len(code) == 3:
        return chr(int(code[1:], 16))
    return _UNESCAPES.get(code, code)


def parse_line(line: str) -> dict[str, str]:
    """Read a KeyValueFormatter line back into {key: value} (values as strings).

    A leading "<N>" syslog prefix is skipped. Raises ValueError on text that is not key=value pairs.
    """
    line = line.rstrip("\n")
    line = re.sub(r"^<\d>", "", line)
    result: dict[str, str] = {}
    position = 0
    while position < len(line):
        if not line[position:].strip():
            break
        match = _PAIR.match(line, position)
        if match is None:
            raise ValueError(f"not a key=value line at column {position}: {line!r}")
        key, raw = match.groups()
        if raw.startswith('"'):
            raw = _UNESCAPE.sub(_unescape, raw[1:-1])
        result[key] = raw
        position = match.end()
    return result


class KeyValueFormatter(_CalsyncFormatter):
    """`ts=... level=info logger=calsync.cycle msg="created" user=alice@acme.test` (one line).

    `msg` is always quoted; other values only when they hold spaces, quotes, `=`, backslashes or
    control characters. `timestamps=False` drops `ts` (journald stamps each line itself).
    """

    def format(self, record: logging.LogRecord) -> str:
        pairs = [
            f"{key}={format_value(value, quote=(key == 'msg'))}"
            for key, value in self._items(record)
        ]
        return self._prefix(record) + " ".join(pairs)


class JsonFormatter(_CalsyncFormatter):
    """One JSON object per line with the same keys as KeyValueFormatter (`ts` always included)."""

    def format(self, record: logging.LogRecord) -> str:
        body = dict(self._items(record))
        text = json.dumps(body, ensure_ascii=False, default=str)
        # json.dumps escapes C0 but leaves DEL and C1 raw: escaped here (only strings hold them).
        return self._prefix(record) + _C1.sub(_json_escape_c1, text)


def is_journald(stream: TextIO, environ: Mapping[str, str] | None = None) -> bool:
    """True when `stream` is connected to journald (systemd sets JOURNAL_STREAM=<dev>:<inode>).

    The device/inode is compared with the stream's when it has a file descriptor, so a child
    whose stderr was redirected elsewhere is not fooled by an inherited variable
    (systemd.exec(5), $JOURNAL_STREAM).
    """
    environ = os.environ if environ is None else environ
    value = environ.get("JOURNAL_STREAM")
    if not value:
        return False
    try:
        status = os.fstat(stream.fileno())
    except (AttributeError, OSError, ValueError):
        return True  # no descriptor to compare (e.g. a wrapped stream): trust the variable
    try:
        device, inode = (int(part) for part in value.split(":", 1))
    except ValueError:
        return False
    return (status.st_dev, status.st_ino) == (device, inode)


class _CalsyncHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """The handler setup() installs; marked so a second setup() replaces it."""


def setup(
    fmt: str = "text",
    level: str = "info",
    stream: TextIO | None = None,
    environ: Mapping[str, str] | None = None,
) -> None:
    """Send every log record to `stream` (default: sys.stderr at call time), one line each.

    `fmt` is "text" (KeyValueFormatter) or "json" (JsonFormatter); `level` one of LEVELS, applied
    to the `calsync` loggers. Other libraries' records show from WARNING up (from `level` if that
    is higher): their INFO/DEBUG chatter (apscheduler runs, urllib3 connections) is not calsync's.
    On journald, text lines drop `ts` and every line gets a syslog priority prefix.
    Calling setup() again replaces the handler it installed before.
    """
    if fmt not in FORMATS:
        raise ValueError(f"log format must be one of {', '.join(FORMATS)}, not {fmt!r}")
    if level not in LEVELS:
        raise ValueError(f"log level must be one of {', '.join(LEVELS)}, not {level!r}")
    stream = sys.stderr if stream is None else stream
    journal = is_journald(stream, environ)
    formatter: logging.Formatter
    if fmt == "json":
        formatter = JsonFormatter(timestamps=True, syslog_prefix=journal)
    else:
        formatter = KeyValueFormatter(timestamps=not journal, syslog_prefix=journal)
    handler = _CalsyncHandler(stream)
    handler.setFormatter(formatter)
    handler.addFilter(Redactor())

    root = logging.getLogger()
    for old in [h for h in root.handlers if isinstance(h, _CalsyncHandler)]:
        root.removeHandler(old)
        old.close()
    root.addHandler(handler)
    root.setLevel(max(LEVELS[level], logging.WARNING))
    logging.getLogger("calsync").setLevel(LEVELS[level])
    logging.captureWarnings(True)


def event(
    logger: logging.Logger,
    msg: str,
    /,
    level: int | str = logging.INFO,
    *,
    exc_info: Any = None,
    **fields: Any,
) -> None:
    """Log one line `msg` with `fields` (e.g. event(log, "created", user=..., sf_id=...)).

    `msg` is not %-formatted. `level` is a logging level number or one of LEVELS' names.
    """
    number = LEVELS[level] if isinstance(level, str) else level
    logger.log(number, msg, exc_info=exc_info, extra={"fields": fields}, stacklevel=2)

