"""The calendar-source port (calsync/calendar/source.py): the engine reads calendars only through
it, and the Google adapter implements it, so a second provider is one more adapter."""

from __future__ import annotations

import ast
import inspect
from pathlib import Path

import calsync
from calsync.calendar.google.api import GoogleCalendar
from calsync.calendar.source import CalendarSource, WatchableSource

ENGINE = Path(calsync.__file__).parent / "engine"


def _imported(path: Path) -> set[str]:
    """Every module `path` imports, at its top or inside a function."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            found.add(node.module)
            found.update(f"{node.module}.{alias.name}" for alias in node.names)
    return found


def test_the_engine_never_names_a_calendar_provider():
    named = {path.name: sorted(m for m in _imported(path) if m.startswith("calsync.calendar.google"))
             for path in sorted(ENGINE.glob("*.py"))}
    assert {name: mods for name, mods in named.items() if mods} == {}
    assert len(named) > 10  # the engine's modules were read


def test_google_calendar_implements_the_port():
    for protocol in (CalendarSource, WatchableSource):
        for name, method in inspect.getmembers(protocol, inspect.isfunction):
            if name.startswith("_"):
                continue
            ours = getattr(GoogleCalendar, name)
            assert list(inspect.signature(ours).parameters) == list(inspect.signature(method).parameters), name
    assert "calls" in CalendarSource.__annotations__
    made = GoogleCalendar("ann@acme.test", credentials=None, api_endpoint="http://127.0.0.1:9/")
    assert made.calls == 0  # nothing is sent until a listing
