"""The poll benchmark (`scripts/measure-poll`): `calsync run` against the emulators, measured.

    scripts/measure-poll --calendars N [--interval S] [--push] [--changes K] [--idle SECONDS]

N salespeople (users of both emulators), each with one meeting with a customer Contact, are
synced once by `calsync sync` (the daemon then starts from a synced state, as after its first
day). Then `calsync run` starts as its own process (every calendar every S seconds, and with
--push a notification channel per calendar, the listener on loopback), and:

1. once the daemon has polled every calendar (and opened every channel), an idle window of
   --idle seconds (default: the interval) measures the daemon's CPU (user + system, from
   /proc/PID/stat) per poll, the Google requests and token requests per calendar-hour, and the
   Salesforce calls (0 expected);
2. then K changes (a meeting's summary, on K random calendars) spread over the next window,
   each timed from the change in the emulator to the Event's new Subject in Salesforce:
   latency p50, p95 and max (polling alone: up to the interval; push: seconds);
3. peak RSS of the daemon (VmHWM).

The emulators run in this process; the machine's load is reported with the figures (load
average before and after): on a shared machine every figure is noisy, run it more than once.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import random
import signal
import socket
import subprocess
import sys
import threading
import time
from typing import Any

from calsync.sandbox.load import Sandbox, sandbox, seed_meetings, seed_salespeople

TICKS = os.sysconf("SC_CLK_TCK")


def _cpu_seconds(pid: int) -> float:
    """User + system CPU of a process so far (/proc/PID/stat fields 14 and 15)."""
    with open(f"/proc/{pid}/stat") as stat:
        fields = stat.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS


def _peak_rss_mb(pid: int) -> float:
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return 0.0


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    index = min(len(ordered) - 1, max(0, int(round(fraction * (len(ordered) - 1)))))
    return ordered[index]


def _salesforce(box: Sandbox, before: tuple[int, dict[str, int]]) -> dict[str, Any]:
    calls = box.calls_since(before)
    return {"salesforce_calls": calls["salesforce_calls"], "salesforce_by_kind": calls["by_kind"]}


class Counts:
    """What the Google emulator answered: Calendar requests per user and token requests."""

    def __init__(self, box: Sandbox) -> None:
        self.google = box.google

    def calendar_requests(self) -> int:
        return sum(1 for _, _, path, _ in list(self.google.answers) if not path.startswith("/token"))

    def lists(self) -> dict[str, int]:
        return dict(self.google.backend.stats()["events_list_calls"])

    def tokens(self) -> int:
        return int(self.google.backend.stats()["token_requests"])


def run(calendars: int, interval: float, push: bool, changes: int, idle: float | None,
        token_minutes: float, seed: int = 1) -> dict[str, Any]:
    rng = random.Random(seed)
    load_before = os.getloadavg()
    with sandbox("calsync-pollbench-") as box:
        google, salesforce = box.google, box.salesforce
        google.backend.access_token_lifetime = dt.timedelta(minutes=token_minutes)
        reps = seed_salespeople(google.backend, salesforce.backend, calendars)
        seed_meetings(google.backend, salesforce.backend, reps, calendars, box.now)
        box.set_users(reps)
        meetings = {m.body.get("summary"): m.id for m in google.backend.meetings.values()}
        if push:
            port = _free_port()
            google.backend.push.require_https = False  # loopback: no TLS proxy in front
            text = box.config.read_text().replace(
                "[google]\n", f'[google]\npush_url = "http://127.0.0.1:{port}/google/notify"\n'
                f'push_listen = "127.0.0.1:{port}"\n', 1)
            box.config.write_text(text)
        began = time.monotonic()
        first = subprocess.run([sys.executable, "-m", "calsync", "--config", str(box.config), "sync"],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        figures: dict[str, Any] = {
            "calendars": calendars, "interval_seconds": interval, "push": push,
            "first_sync": {"exit": first.returncode, "seconds": round(time.monotonic() - began, 1)},
        }
        events = {row["Subject"]: row["Id"] for row in salesforce.backend.list_records("Event")}
        log_path = box.directory / "daemon.log"
        counts = Counts(box)
        lists_before, tokens_before = counts.lists(), counts.tokens()
        daemon = subprocess.Popen(
            [sys.executable, "-m", "calsync", "--config", str(box.config), "run"],
            stdout=log_path.open("wb"), stderr=subprocess.STDOUT,
            env={**os.environ, "CALSYNC_INTERVAL_SECONDS": str(interval)},
        )
        try:
            started = time.monotonic()
            # The first round: every calendar polled once (tokens fetched), every channel open.
            while True:
                lists = counts.lists()
                polled = sum(1 for u in reps if lists.get(u, 0) > lists_before.get(u, 0))
                live = len(google.backend.push.live()) if push else calendars
                if polled >= calendars and live >= calendars:
                    break
                if daemon.poll() is not None or time.monotonic() - started > interval + 600:
                    raise RuntimeError(f"the daemon did not poll every calendar: {polled} of "
                                       f"{calendars}; log {log_path.read_text()[-2000:]}")
                time.sleep(0.5)
            figures["first_round_seconds"] = round(time.monotonic() - started, 1)
            figures["first_round_token_requests"] = counts.tokens() - tokens_before

            # 1. Idle.
            window = idle if idle is not None else interval
            cpu0, t0 = _cpu_seconds(daemon.pid), time.monotonic()
            req0, tok0, lists0 = counts.calendar_requests(), counts.tokens(), sum(counts.lists().values())
            sf0 = box.salesforce_calls()
            time.sleep(window)
            cpu1, t1 = _cpu_seconds(daemon.pid), time.monotonic()
            polls = sum(counts.lists().values()) - lists0
            hours = (t1 - t0) / 3600
            figures["idle"] = {
                "seconds": round(t1 - t0, 1),
                "polls": polls,
                "cpu_seconds": round(cpu1 - cpu0, 2),
                "cpu_ms_per_poll": round((cpu1 - cpu0) * 1000 / polls, 2) if polls else None,
                "cpu_share_of_one_core": round((cpu1 - cpu0) / (t1 - t0), 3),
                "google_requests_per_calendar_hour": round((counts.calendar_requests() - req0) / calendars / hours, 2),
                "token_requests_per_calendar_hour": round((counts.tokens() - tok0) / calendars / hours, 3),
                **_salesforce(box, sf0),
            }

            # 2. Changes, timed to Salesforce.
            chosen = rng.sample(range(calendars), min(changes, calendars))
            spread = max(1.0, min(interval, 60.0))  # changes over a minute (or the interval)
            offsets = sorted(rng.uniform(0, spread) for _ in chosen)
            landed: dict[int, float] = {}
            made: dict[int, float] = {}
            stop = threading.Event()
            targets = {i: (events[f"Call with customer {i:05d}"], f"Changed {i:05d}") for i in chosen}

            def watch() -> None:
                while not stop.is_set():
                    for i, (event_id, subject) in targets.items():
                        if i in made and i not in landed:
                            row = salesforce.backend.record("Event", event_id)
                            if row is not None and row.get("Subject") == subject:
                                landed[i] = time.monotonic()
                    time.sleep(0.02)

            watcher = threading.Thread(target=watch, daemon=True)
            watcher.start()
            sf1 = box.salesforce_calls()
            origin = time.monotonic()
            for i, offset in zip(chosen, offsets):
                time.sleep(max(0.0, origin + offset - time.monotonic()))
                google.backend.update_event(meetings[f"Call with customer {i:05d}"],
                                            {"summary": f"Changed {i:05d}"})
                made[i] = time.monotonic()
            deadline = time.monotonic() + interval * 1.5 + 60
            while len(landed) < len(made) and time.monotonic() < deadline:
                time.sleep(0.1)
            stop.set()
            watcher.join(2)
            latencies = [landed[i] - made[i] for i in made if i in landed]
            figures["changes"] = {
                "made": len(made), "landed": len(landed),
                "latency_p50_seconds": round(_percentile(latencies, 0.5), 2),
                "latency_p95_seconds": round(_percentile(latencies, 0.95), 2),
                "latency_max_seconds": round(max(latencies), 2) if latencies else None,
                **_salesforce(box, sf1),
            }
            if push:
                hub = google.backend.push
                figures["push_channels"] = {
                    "channels_live": len(hub.live()), "channels_opened": hub.opened,
                    "notifications_delivered": len(hub.sent(outcome="delivered")),
                    "notifications_failed": len(hub.sent(outcome="failed")),
                }
            figures["daemon_peak_rss_mb"] = round(_peak_rss_mb(daemon.pid), 1)
        finally:
            if daemon.poll() is None:
                daemon.send_signal(signal.SIGTERM)
                try:
                    figures["daemon_exit"] = daemon.wait(60)
                except subprocess.TimeoutExpired:
                    daemon.kill()
                    figures["daemon_exit"] = "killed"
    figures["machine"] = {"cpus": os.cpu_count(), "load_before": [round(x, 2) for x in load_before],
                          "load_after": [round(x, 2) for x in os.getloadavg()],
                          "python": sys.version.split()[0]}
    return figures


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--calendars", type=int, required=True)
    parser.add_argument("--interval", type=float, default=300.0, help="seconds between polls")
    parser.add_argument("--push", action="store_true", help="push notifications on")
    parser.add_argument("--changes", type=int, default=20, help="changes to time")
    parser.add_argument("--idle", type=float, default=None,
                        help="seconds of the idle window (default: the interval)")
    parser.add_argument("--token-minutes", type=float, default=60.0,
                        help="lifetime of the emulator's access tokens (Google: 60)")
    args = parser.parse_args(argv)
    figures = run(args.calendars, args.interval, args.push, args.changes, args.idle, args.token_minutes)
    print(json.dumps(figures, indent=2))


if __name__ == "__main__":
    main()
