"""Hostile text never reaches an admin's terminal raw.

The sender of an invitation writes its attendees' display names and its subject and location;
Salesforce (or a gateway in front of it) writes the error bodies calsync shows. Every command
that prints for a person (status, status --check, status --json, explain, resync, retry,
doctor) and every log line it writes show their control characters escaped (`\\x1b`, `\\x07`,
`\\x9b`), never as the bytes a terminal would act on: an OSC 52 sequence in a display name
would otherwise write the admin's clipboard, a CSI clear the screen.
"""

from __future__ import annotations

import datetime as dt
import json
import re

from calsync.sandbox.server import Fault

OSC52 = "\x1b]52;c;aGFja2Vk\x07"  # "write 'hacked' to the clipboard"
CLEAR = "\x9b2J\x1b[2J"  # C1 CSI and ESC [ : clear the screen
BELL = "\x07"
RULE = "FIELD_CUSTOM_VALIDATION_EXCEPTION"
# What a terminal acts on; a line break only between lines.
RAW = re.compile(r"[\x00-\x09\x0b-\x1f\x7f-\x9f]")


def _hostile_meeting(google_emu) -> str:
    day = dt.date.today() + dt.timedelta(days=3)
    made = google_emu.backend.create_event("alice@acme.test", {
        "summary": f"Pricing {CLEAR}review{BELL}",
        "location": f"Room {OSC52}",
        "start": {"dateTime": f"{day}T10:00:00Z"}, "end": {"dateTime": f"{day}T11:00:00Z"},
        "attendees": [
            {"email": "alice@acme.test"},
            {"email": "hank@globex.test", "displayName": f"Hank{OSC52} Scorpio"},
            {"email": "nobody@elsewhere.test", "displayName": f"Eve{CLEAR}\r\nfake line"},
        ],
    })
    return made["id"]


def _clean(done) -> None:
    for stream in (done.stdout, done.stderr):
        found = RAW.search(stream)
        assert found is None, f"raw {found.group()!r} in: {stream[max(0, found.start() - 80):found.end() + 80]!r}"


def test_every_command_escapes_what_came_from_outside(cli, make_config, google_emu, sf_emu, sync):
    event_id = _hostile_meeting(google_emu)
    sf_emu.backend.fail_records(lambda record: "Pricing" in str(record.get("Subject")),
                                status_code=RULE, message=f"no {OSC52} pricing{CLEAR}", times=-1)
    path = make_config()
    first = cli("--config", str(path), "sync")
    assert first.returncode == 65, first.stderr
    _clean(first)

    explain = cli("--config", str(path), "explain", "--user", "alice@acme.test", "--event-id", event_id)
    assert explain.returncode == 0, explain.stderr
    _clean(explain)
    assert "Hank\\x1b]52;c;aGFja2Vk\\x07 Scorpio" in explain.stdout  # shown, escaped
    assert "Eve\\x9b2J\\x1b[2J\\r\\nfake line" in explain.stdout

    for args in (["status"], ["status", "--check"]):
        done = cli("--config", str(path), *args)
        _clean(done)
        assert "Pricing \\x9b2J\\x1b[2Jreview" in done.stdout, (args, done.stdout)  # named, escaped
        if args == ["status"]:
            assert "no \\x1b]52;c;aGFja2Vk\\x07 pricing" in done.stdout  # Salesforce's message too
    as_json = cli("--config", str(path), "status", "--json")
    _clean(as_json)  # JSON's own \u001b escapes: still valid JSON, with the text whole
    [parked] = [r for c in json.loads(as_json.stdout)["calendars"] for r in c["retries"]]
    assert parked["subject"] == f"Pricing {CLEAR}review{BELL}"

    retry = cli("--config", str(path), "retry", "--user", "alice@acme.test")
    _clean(retry)
    assert "still refused" in retry.stdout

    resync = cli("--config", str(path), "resync", "--user", "alice@acme.test", "--dry-run")
    _clean(resync)

    # doctor: an error body from Salesforce (a gateway echoing anything) on its first call
    sf_emu.faults.add(Fault(status=500, body=[{"errorCode": "UNKNOWN_EXCEPTION",
                                               "message": f"gateway says {OSC52}"}],
                            path_prefix="/services/data", times=-1))
    doctor = cli("--config", str(path), "doctor")
    _clean(doctor)
    assert "FAIL Salesforce login" in doctor.stdout or "FAIL" in doctor.stdout


def test_log_lines_escape_c1_controls_in_both_formats():
    import io
    import logging

    from calsync.core import logs

    for fmt in ("text", "json"):
        stream = io.StringIO()
        logs.setup(fmt, "info", stream=stream, environ={})
        logs.event(logging.getLogger("calsync.test"), f"refused {CLEAR}", reason=f"x{OSC52}\x85")
        line = stream.getvalue().rstrip("\n")
        assert RAW.search(line) is None, line
        parsed = json.loads(line) if fmt == "json" else logs.parse_line(line)
        assert parsed["msg"] == f"refused {CLEAR}" and parsed["reason"] == f"x{OSC52}\x85"
    logs.setup("text", "info")
