"""Checking one TOML table: typed values, bounds, paths and URLs; every error names its key.

`Table` wraps a decoded TOML table and the dotted path that leads to it. It refuses unknown keys
(with the closest known one as a hint) and hands out each value checked: a string, an integer
or number within bounds, a boolean, a choice, a list of strings, a path (relative ones resolved
against the file's folder, `%d/` against the credentials directory) or a URL. Whatever is
wrong raises ONE `ConfigError` reading ``source: dotted.path: what is wrong``.
"""

from __future__ import annotations

import difflib
import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from calsync.core import credentials
from calsync.core.errors import ConfigError

_BARE_KEY = re.compile(r"^[A-Za-z0-9_\-]+(?:\[\d+\])?$")  # a key, or key[index] for list items

_MISSING: Any = object()
REQUIRED: Any = object()  # the default of a key that must be given


def describe_value(value: Any) -> str:
    """`string '30'`, `integer 30`, `boolean true`, `array`, ... for type errors."""
    if isinstance(value, bool):
        return f"boolean {'true' if value else 'false'}"
    if isinstance(value, int):
        return f"integer {value}"
    if isinstance(value, float):
        return f"float {value}"
    if isinstance(value, str):
        return f"string {value!r}"
    if isinstance(value, list):
        return "an array"
    if isinstance(value, dict):
        return "a table"
    return f"{type(value).__name__} {value}"  # TOML dates and times


def dotted(prefix: str, key: str) -> str:
    """`key` under `prefix` as TOML would write it: sync.lookback_days, sync.user_map."a@b.test"."""
    if _BARE_KEY.match(key):
        part = key
    else:  # quoted the TOML way: sync.user_map."bob@acme.test"
        part = '"' + key.replace("\\", "\\\\").replace('"', '\\"') + '"'
    return f"{prefix}.{part}" if prefix else part


class Table:
    """One TOML table being checked; every error it raises names `source: dotted.path`."""

    def __init__(
        self,
        source: str,
        path: str,
        data: Mapping[str, Any],
        known: tuple[str, ...],
        *,
        env: Mapping[str, str] | None = None,
        secrets: bool = True,
    ) -> None:
        self.source = source
        self.path = path
        self.data = data
        self.env: Mapping[str, str] = os.environ if env is None else env
        self.secrets = secrets  # False: a missing secret or credentials directory is no error
        for key in data:
            if key not in known:
                close = difflib.get_close_matches(key, known, n=1)
                if close:
                    hint = f" (did you mean {close[0]!r}?)"
                else:
                    hint = f" (known keys: {', '.join(known)})"
                raise self.error(key, f"unknown key{hint}")

    def error(self, key: str, message: str) -> ConfigError:
        return ConfigError(f"{self.source}: {dotted(self.path, key)}: {message}")

    def __contains__(self, key: str) -> bool:
        return key in self.data

    def table(self, key: str, known: tuple[str, ...]) -> Table:
        """The sub-table `key` (empty when absent), whose keys must be among `known`."""
        value = self.data.get(key, {})
        if not isinstance(value, dict):
            raise self.error(key, f"expected a table, got {describe_value(value)}")
        return Table(self.source, dotted(self.path, key), value, known, env=self.env,
                     secrets=self.secrets)

    def _value(self, key: str, default: Any) -> Any:
        if key in self.data:
            return self.data[key]
        if default is REQUIRED:
            raise self.error(key, "required key missing")
        return _MISSING

    def string(self, key: str, default: Any = None, *, hint: str = "") -> Any:
        value = self._value(key, default)
        if value is _MISSING:
            return default
        if not isinstance(value, str):
            raise self.error(key, f"expected a string{hint}, got {describe_value(value)}")
        value = value.strip()
        if not value:
            raise self.error(key, "must not be empty")
        return value

    def integer(
        self, key: str, default: int, *, minimum: int | None = None, maximum: int | None = None
    ) -> int:
        value = self._value(key, default)
        if value is _MISSING:
            return default
        if isinstance(value, bool) or not isinstance(value, int):
            raise self.error(key, f"expected an integer, got {describe_value(value)}")
        self._in_range(key, value, minimum, maximum)
        return value

    def bounded(self, key: str, bounds: tuple[int, int, int], *, fraction: bool = False) -> Any:
        """A number within `bounds` (default, minimum, maximum); `fraction`: floats allowed."""
        default, minimum, maximum = bounds
        if not fraction:
            return self.integer(key, default, minimum=minimum, maximum=maximum)
        value = self._value(key, default)
        if value is _MISSING:
            return default
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise self.error(key, f"expected a number, got {describe_value(value)}")
        self._in_range(key, value, minimum, maximum)
        return value

    def _in_range(self, key: str, value: float, minimum: float | None, maximum: float | None) -> None:
        if value != value:  # NaN compares false both ways
            raise self.error(key, "must be a number, got nan")
        if minimum is not None and value < minimum:
            raise self.error(key, f"must be at least {minimum}, got {value}")
        if maximum is not None and value > maximum:
            raise self.error(key, f"must be at most {maximum}, got {value}")

    def boolean(self, key: str, default: bool) -> bool:
        value = self._value(key, default)
        if value is _MISSING:
            return default
        if not isinstance(value, bool):
            raise self.error(key, f"expected true or false, got {describe_value(value)}")
        return value

    def choice(self, key: str, choices: tuple[str, ...], default: str) -> str:
        value = self.string(key, default)
        if value not in choices:
            listed = ", ".join(repr(c) for c in choices)
            raise self.error(key, f"expected one of {listed}, got {value!r}")
        return str(value)

    def strings(self, key: str, default: Any) -> Any:
        """A list of non-empty stripped strings (or `default` when absent)."""
        value = self._value(key, default)
        if value is _MISSING:
            return default
        if not isinstance(value, list):
            raise self.error(key, f"expected an array of strings, got {describe_value(value)}")
        result = []
        for index, item in enumerate(value):
            where = f"{key}[{index}]"
            if not isinstance(item, str):
                raise self.error(where, f"expected a string, got {describe_value(item)}")
            if not item.strip():
                raise self.error(where, "must not be empty")
            result.append(item.strip())
        return result

    def path_value(self, key: str, base: Path, default: Any = None) -> Any:
        value = self.string(key, default)
        if value is None or value is REQUIRED:
            return None
        if credentials.uses_specifier(value):
            found = credentials.resolve(value, self.env)
            if found is not None:
                return found
            if not self.secrets:
                return Path(value)  # never opened by a command that loads without secrets
            raise self.error(key, f"{value}: no credentials directory ({credentials.where(self.env)})")
        return _resolve(value, base)

    def url(self, key: str, default: Any = None, *, base_only: bool = False) -> Any:
        value = self.string(key, default)
        if value is None:
            return None
        parts = urlsplit(value)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise self.error(key, f"expected an http:// or https:// URL, got {value!r}")
        try:
            parts.port  # noqa: B018 - raises on a bad port
        except ValueError:
            raise self.error(key, f"invalid port in {value!r}") from None
        if base_only and (parts.path not in ("", "/") or parts.query or parts.fragment):
            raise self.error(
                key,
                "expected only scheme://host[:port] (e.g. https://acme.my.salesforce.com), "
                f"got {value!r}",
            )
        return value.rstrip("/") if base_only else value


def _resolve(value: str, base: Path) -> Path:
    """`value` with "~" expanded, anchored at `base` (the file's folder) when relative."""
    path = Path(value).expanduser()
    return path if path.is_absolute() else base / path
