"""What reading the state costs as it grows (`scripts/measure-state-costs`), issue 17.

    scripts/measure-state-costs --megabytes 300 [--calendars 500] [--daemon-seconds 180]

A state database of about the size asked is built the way calsync builds one, through
`StateStore`'s own writes: N salespeople of the emulators are synced once by `calsync sync`
(real sync tokens, so the daemon's polls are idle polls), then each calendar gets a history of
past meetings, as a calendar has after a year or two: the mirror of each Google item (an
invitation with a description, a location and a few attendees with display names), the Event
written for it with its per-field hashes, the decision `explain` reads, the meeting index, and
a few records parked for a retry. Then, each as its own process:

- `calsync status`, `status --check` and `explain --event-id`: CPU (user + system) and peak RSS
  (`wait4`'s rusage), the run with the least CPU of three;
- one metrics publish (`metrics.publish`: the gauges from the state and the node_exporter
  textfile), the mean CPU of 4 in one process, the least of 5 such rounds;
- the same status read through the old private in-memory copy (`StateStore.snapshot`, with its
  quick_check), for comparison;
- with `--daemon-seconds S`: `calsync run` polling every calendar every `--interval` seconds,
  its CPU over S seconds after its first round, without and then with `[metrics]` (textfile
  and listener).

`pad()` is also what tests/metrics/test_state_costs.py uses to compare a small and a large
state in CI. The figures are noisy on a shared machine: the load average is printed with them.
"""

from __future__ import annotations

import argparse
import datetime as dt
import hashlib
import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from calsync.core.model import event_key
from calsync.state.store import IndexEntry, MirrorRow, Record, StateStore, StoredDecision

FIELDS = ("Subject", "StartDateTime", "EndDateTime", "Location", "Description", "WhoId", "WhatId",
          "OwnerId", "Type", "ShowAs", "IsPrivate", "IsAllDayEvent")
BATCH = 25  # meetings of one calendar written in one transaction (every calendar gets some)
_WORDS = ("pricing review renewal roadmap onboarding workshop quarterly business intro call "
          "demo follow-up contract security questionnaire procurement legal kickoff").split()


def _text(rng: random.Random, words: int) -> str:
    return " ".join(rng.choice(_WORDS) for _ in range(words))


def _meeting(user: str, index: int, now: dt.datetime, rng: random.Random) -> dict[str, Any]:
    """One past invitation as Google lists it (reference A5's fields)."""
    start = now - dt.timedelta(days=40 + index % 700, hours=index % 9)
    company = f"customer{rng.randrange(100_000):05d}.test"
    guests = [{"email": f"{name}.{index}@{company}", "displayName": f"{name.title()} {company[:8]}",
               "responseStatus": rng.choice(["accepted", "needsAction", "tentative"])}
              for name in ("ada", "grace", "linus")[: 1 + index % 3]]
    event_id = padded_event_id(user, index)
    iso = "%Y-%m-%dT%H:%M:%SZ"
    return {
        "kind": "calendar#event", "etag": f'"{3000000000000000 + index}"', "id": event_id,
        "status": "confirmed", "htmlLink": f"https://www.google.com/calendar/event?eid={event_id}",
        "created": (start - dt.timedelta(days=7)).strftime(iso),
        "updated": (start - dt.timedelta(days=1)).strftime(iso),
        "summary": f"{_text(rng, 4).title()} with {company}",
        "description": _text(rng, 45), "location": f"Room {index % 40}, {_text(rng, 3)}",
        "creator": {"email": user, "self": True}, "organizer": {"email": user, "self": True},
        "start": {"dateTime": start.strftime(iso), "timeZone": "Europe/Paris"},
        "end": {"dateTime": (start + dt.timedelta(hours=1)).strftime(iso), "timeZone": "Europe/Paris"},
        "iCalUID": f"{event_id}@google.com", "sequence": index % 3,
        "attendees": [{"email": user, "self": True, "responseStatus": "accepted", "organizer": True},
                      *guests],
        "reminders": {"useDefault": True}, "eventType": "default",
    }


def _decision(user: str, item: dict[str, Any], now: dt.datetime) -> StoredDecision:
    people = [{"address": g["email"], "role": "attendee", "display_name": g.get("displayName"),
               "candidate": True, "contacts": [f"003RO{abs(hash(g['email'])) % 10**13:013d}"],
               "leads": [], "why": "the Name" if n == 0 else "comes after the Name"}
              for n, g in enumerate(item["attendees"][1:])]
    name = people[0]
    detail = {"people": people, "occurrence_id": item["id"], "series": False, "private": False,
              "name": {"id": name["contacts"][0], "kind": "Contact", "address": name["address"],
                       "why": "the first attendee, in Google's order, who is a Contact"},
              "related_to": {"id": "001RO0000000001AAA", "kind": "Account",
                             "why": "the Contact's Account (the Contact has no primary role on an"
                                    " Opportunity)"}}
    start = dt.datetime.fromisoformat(item["start"]["dateTime"].replace("Z", "+00:00"))
    return StoredDecision(user, item["iCalUID"], item["id"], item["summary"], start, "unchanged",
                          None, now, detail)


def padded_event_id(user: str, index: int) -> str:
    """The Google event id of `user`'s `index`-th padded meeting."""
    return hashlib.sha1(f"{user}/{index}".encode()).hexdigest()[:26]


def pad(path: str | Path, users: list[str], megabytes: float, *, now: dt.datetime | None = None,
        seed: int = 7, parked: int = 20) -> dict[str, Any]:
    """Give each of `users` past meetings (mirror, Event written, decision, index) until the
    file at `path` holds about `megabytes` MB; `parked` of them refused, waiting for a retry."""
    now = now or dt.datetime.now(dt.timezone.utc)
    rng = random.Random(seed)
    store = StateStore(path)
    store.db.conn.execute("PRAGMA synchronous=OFF")  # building a benchmark: no fsync per batch
    target = megabytes * 1_000_000
    meetings = 0
    refused: list[tuple[str, str]] = []  # one meeting of each calendar, for the parked records
    try:
        for user in users:
            if store.calendar(user) is None:
                store.commit_listing(user, upserts=[], deletes=[], sync_token=None, result={},
                                     at=now)
        index = 0
        while _size(store) < target:
            for user in users:
                saved = store.calendar(user)
                items = [_meeting(user, index + n, now, rng) for n in range(BATCH)]
                with store.transaction():
                    store.commit_listing(
                        user, upserts=[MirrorRow(i["id"], i["iCalUID"], None, i) for i in items],
                        deletes=[], sync_token=saved.sync_token if saved else None,
                        result=saved.last_result if saved else {}, at=now)
                    store.record_written_many([
                        Record(event_key(user, i["iCalUID"]), user, i["iCalUID"],
                               f"00URO{abs(hash(i['id'])) % 10**13:013d}",
                               hashlib.sha256(i["id"].encode()).hexdigest(),
                               {f: hashlib.sha256((f + i["id"]).encode()).hexdigest()[:16] for f in FIELDS})
                        for i in items], now)
                    store.record_decisions([_decision(user, i, now) for i in items])
                    store.index_meetings([
                        IndexEntry(user, i["iCalUID"], frozenset(g["email"] for g in i["attendees"][1:]),
                                   frozenset({"003RO0000000001", "001RO0000000001"}),
                                   dt.datetime.fromisoformat(i["start"]["dateTime"].replace("Z", "+00:00")))
                        for i in items])
                meetings += len(items)
                refused.append((user, items[-1]["iCalUID"]))
                if _size(store) >= target:
                    break
            index += BATCH
        for user, ical_uid in refused[:parked]:
            store.record_retry(event_key(user, ical_uid), user, ical_uid, "update",
                               "FIELD_CUSTOM_VALIDATION_EXCEPTION", "Close date must be in the future",
                               now, dt.timedelta(minutes=30))
        store.db.conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    finally:
        store.close()
    return {"meetings_added": meetings, "megabytes": round(os.stat(path).st_size / 1e6, 1)}


def _size(store: StateStore) -> int:
    """The database's size as its pages count it (the WAL's new pages included)."""
    conn = store.db.conn
    return int(conn.execute("PRAGMA page_count").fetchone()[0]) * int(
        conn.execute("PRAGMA page_size").fetchone()[0])


# ---------------------------------------------------------------------------------------------
# Measuring


# Measured from a small Python process that forks the command: a child's peak RSS (ru_maxrss)
# keeps the high-water mark of the process it was forked from, across execve, so a command
# started straight from this (large) process would show this process's memory, not its own.
_LAUNCHER = """
import json, os, sys
pid = os.fork()
if pid == 0:
    null = os.open(os.devnull, os.O_WRONLY)
    os.dup2(null, 1)
    os.execv(sys.argv[1], sys.argv[1:])
_, status, usage = os.wait4(pid, 0)
print(json.dumps({"exit": os.waitstatus_to_exitcode(status),
                  "cpu_seconds": round(usage.ru_utime + usage.ru_stime, 3),
                  "peak_rss_mb": round(usage.ru_maxrss / 1024, 1)}))
"""


def run_measured(args: list[str], env: dict[str, str] | None = None) -> dict[str, Any]:
    """A command as its own process: its exit status, CPU seconds (user + system) and peak
    RSS (MB); its stderr when it failed."""
    done = subprocess.run([sys.executable, "-c", _LAUNCHER, *args], capture_output=True, text=True,
                          env={**os.environ, **(env or {})})
    figures: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    if figures["exit"] not in (0, 1, 65):
        figures["stderr"] = done.stderr[-400:]
    return figures


_PUBLISH = """
import sys, time
from calsync.core import config
from calsync.service import metrics
cfg = config.load(sys.argv[1], secrets=False)
metrics.publish(cfg)  # the first one imports and warms up
rounds = []
for _ in range(5):
    began = time.process_time()
    for _ in range(int(sys.argv[2])):
        metrics.publish(cfg)
    rounds.append((time.process_time() - began) / int(sys.argv[2]))
print(min(rounds))
"""

_OLD_STATUS = """
import sys
from calsync.core import config
from calsync.commands import status as reporting
from calsync.state.store import StateStore
cfg = config.load(sys.argv[1], secrets=False)
StateStore.reader = classmethod(lambda cls, path: cls.snapshot(path))  # the copy status made
reporting.status(cfg)
"""


def measure_commands(config: Path, user: str, event_id: str, publishes: int = 20) -> dict[str, Any]:
    """status, status --check, explain, one metrics publish, and status the old way."""
    calsync = [sys.executable, "-m", "calsync", "--config", str(config)]
    figures: dict[str, Any] = {}
    for name, args in (("status", ["status"]), ("status_check", ["status", "--check"]),
                       ("explain", ["explain", "--user", user, "--event-id", event_id])):
        figures[name] = _least(lambda: run_measured(calsync + args))
    publish = subprocess.run([sys.executable, "-c", _PUBLISH, str(config), str(publishes // 5 or 1)],
                             capture_output=True, text=True, check=True)
    figures["metrics_publish_cpu_ms"] = round(float(publish.stdout.strip()) * 1000, 1)
    figures["status_through_a_copy"] = _least(
        lambda: run_measured([sys.executable, "-c", _OLD_STATUS, str(config)]))
    return figures


def _least(measure: Any, times: int = 3) -> dict[str, Any]:
    """The run with the least CPU of `times` (the least disturbed by the machine's other work)."""
    return min((measure() for _ in range(times)), key=lambda f: f["cpu_seconds"])


def _cpu_seconds(pid: int) -> float:
    with open(f"/proc/{pid}/stat") as stat:
        fields = stat.read().rsplit(")", 1)[1].split()
    ticks = os.sysconf("SC_CLK_TCK")
    return (int(fields[11]) + int(fields[12])) / ticks


def measure_daemon(config: Path, users: list[str], box: Any, interval: float, seconds: float,
                   label: str) -> dict[str, Any]:
    """`calsync run` on `config`: CPU over `seconds` once every calendar was polled once."""
    log = config.parent / f"daemon-{label}.log"
    lists = box.google.backend.stats()["events_list_calls"]
    before = {u: lists.get(u, 0) for u in users}
    daemon = subprocess.Popen([sys.executable, "-m", "calsync", "--config", str(config), "run"],
                              stdout=log.open("wb"), stderr=subprocess.STDOUT,
                              env={**os.environ, "CALSYNC_INTERVAL_SECONDS": str(interval)})
    try:
        started = time.monotonic()
        while True:
            now = box.google.backend.stats()["events_list_calls"]
            if all(now.get(u, 0) > before[u] for u in users):
                break
            if daemon.poll() is not None or time.monotonic() - started > interval + 300:
                raise RuntimeError(f"the daemon did not poll every calendar: {log.read_text()[-2000:]}")
            time.sleep(0.5)
        polls0 = sum(box.google.backend.stats()["events_list_calls"].values())
        cpu0, t0 = _cpu_seconds(daemon.pid), time.monotonic()
        time.sleep(seconds)
        cpu1, t1 = _cpu_seconds(daemon.pid), time.monotonic()
        polls = sum(box.google.backend.stats()["events_list_calls"].values()) - polls0
    finally:
        daemon.send_signal(signal.SIGTERM)
        try:
            daemon.wait(60)
        except subprocess.TimeoutExpired:
            daemon.kill()
    return {"seconds": round(t1 - t0, 1), "polls": polls, "cpu_seconds": round(cpu1 - cpu0, 2),
            "cpu_ms_per_poll": round((cpu1 - cpu0) * 1000 / polls, 2) if polls else None}


def run(megabytes: float, calendars: int, interval: float, daemon_seconds: float) -> dict[str, Any]:
    from calsync.sandbox.load import sandbox, seed_meetings, seed_salespeople

    load_before = os.getloadavg()
    figures: dict[str, Any] = {"calendars": calendars}
    with sandbox("calsync-statebench-") as box:
        reps = seed_salespeople(box.google.backend, box.salesforce.backend, calendars)
        seed_meetings(box.google.backend, box.salesforce.backend, reps, calendars, box.now)
        box.set_users(reps)
        first = subprocess.run([sys.executable, "-m", "calsync", "--config", str(box.config), "sync"],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        figures["first_sync_exit"] = first.returncode
        state = Path(_state_path(box.config))
        began = time.monotonic()
        figures["state"] = pad(state, reps, megabytes)
        figures["state"]["build_seconds"] = round(time.monotonic() - began, 1)
        plain = box.config
        with_metrics = box.directory / "with-metrics.toml"
        with_metrics.write_text(plain.read_text() + "\n[metrics]\n"
                                f'textfile = "{box.directory / "calsync.prom"}"\n'
                                f'listen = "127.0.0.1:{_free_port()}"\n')
        figures["commands"] = measure_commands(with_metrics, reps[0], padded_event_id(reps[0], 0))
        if daemon_seconds:
            figures["daemon_without_metrics"] = measure_daemon(plain, reps, box, interval,
                                                               daemon_seconds, "plain")
            figures["daemon_with_metrics"] = measure_daemon(with_metrics, reps, box, interval,
                                                            daemon_seconds, "metrics")
            without = figures["daemon_without_metrics"]["cpu_seconds"]
            figures["daemon_metrics_ratio"] = (
                round(figures["daemon_with_metrics"]["cpu_seconds"] / without, 2) if without else None)
    figures["machine"] = {"cpus": os.cpu_count(), "load_before": [round(x, 2) for x in load_before],
                          "load_after": [round(x, 2) for x in os.getloadavg()],
                          "python": sys.version.split()[0]}
    return figures


def _state_path(config: Path) -> str:
    from calsync.core import config as config_module

    return str(config_module.load(config, secrets=False).state.path)


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--megabytes", type=float, default=300.0, help="size of the state to build")
    parser.add_argument("--calendars", type=int, default=500)
    parser.add_argument("--interval", type=float, default=300.0, help="the daemon's poll interval, s")
    parser.add_argument("--daemon-seconds", type=float, default=0.0,
                        help="measure `calsync run` with and without [metrics] for this long each")
    args = parser.parse_args(argv)
    print(json.dumps(run(args.megabytes, args.calendars, args.interval, args.daemon_seconds), indent=2))


if __name__ == "__main__":
    main()
