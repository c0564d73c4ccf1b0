"""calsync/sandbox/CONTROL.md lists every `/_control/` route of both emulators, and nothing else."""

from __future__ import annotations

import re
from pathlib import Path

from calsync.sandbox.google import GoogleEmulator
from calsync.sandbox.salesforce import SalesforceEmulator

DOC = Path(__file__).resolve().parents[2] / "calsync" / "sandbox" / "CONTROL.md"


def documented(section: str) -> set[tuple[str, str]]:
    text = DOC.read_text()
    start = text.index(section)
    end = text.find("\n## ", start + 1)
    part = text[start:end if end > 0 else None]
    return {(m, re.sub(r"\{[a-z_]+\}", "sample", p)) for m, p in
            re.findall(r"`(GET|POST|PATCH|DELETE) (/_control/[^`? ]*)`", part)}


def routes(emulator: object) -> list[tuple[str, re.Pattern[str]]]:
    return [(method, pattern) for method, pattern, _ in emulator.routes  # type: ignore[attr-defined]
            if pattern.pattern.startswith(("/_control", r"/_control"))]


def check(emulator: object, section: str) -> None:
    docs = documented(section)
    served = routes(emulator)
    assert served
    missing = [f"{m} {p.pattern}" for m, p in served if not any(dm == m and p.match(dp) for dm, dp in docs)]
    extra = [f"{m} {p}" for m, p in docs if not any(sm == m and sp.match(p) for sm, sp in served)]
    assert not missing, f"undocumented in {DOC.name}: {missing}"
    assert not extra, f"documented but not served: {extra}"


def test_google_control_routes_are_documented():
    check(GoogleEmulator(), "## Google Calendar")


def test_salesforce_control_routes_are_documented(tmp_path):
    check(SalesforceEmulator(state_dir=tmp_path), "## Salesforce")
