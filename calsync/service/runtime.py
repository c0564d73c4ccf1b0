"""Wiring: a configuration becomes a state store, adapters and a `Cycle` ready to run.

The engine never names a provider: `calendars(config)` is the one place the calendar provider
is chosen (Google Calendar, calendar/google/; the engine reads it through the port in
calendar/source.py) and `salesforce(config)` makes the Salesforce client. The engine's one-off
runs that build their own state (`resync`, `explain_live`) get both from here, like the cycles.

`open_cycle` is for one-off runs (`calsync sync`, resync, tests): a fresh state connection,
checked, closed at the end. The daemon polls each calendar every few minutes (10,000 calendars
on a 5-minute interval is 33 polls a second), so `reused_cycle` keeps one state connection per
worker thread instead (`thread_store`): opened, migrated and checked once, checked again every
`RECHECK_SECONDS`, closed by `close_thread_stores()` when the daemon stops. Opening, checking
and closing the database on every poll cost about 2.5 ms of the ~4 ms an idle poll took.
Google's clients are per process in any case (calendar/google/clients.py).
"""

from __future__ import annotations

import datetime as dt
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from calsync.calendar.google import clients as google_clients
from calsync.calendar.google.api import calendar_factory
from calsync.calendar.source import CalendarFactory
from calsync.core.config import Config
from calsync.engine import explain, resync as resyncing
from calsync.engine.cycle import Cycle
from calsync.salesforce.org import SalesforceOrg
from calsync.state.store import StateStore



# A long-lived connection re-reads the whole file (PRAGMA quick_check) and proves the disk has
# room this often, so a damaged file or a full disk still stops the daemon's cycles early.
RECHECK_SECONDS = 600.0


@contextmanager
def open_cycle(
    config: Config, clock: Callable[[], dt.datetime] | None = None
) -> Iterator[Cycle]:
    """A Cycle on its own state connection; Salesforce is only contacted when needed.

    The state database is checked (read whole, one row written) before anything else: a damaged
    file or a full disk is a StateError here, not after API calls spent for nothing. `clock`
    replaces the wall clock (tests that let time pass).
    """
    store = StateStore(config.state)
    try:
        store.check_usable()
        yield _cycle(config, store, clock)
    finally:
        store.close()


@contextmanager
def reused_cycle(config: Config) -> Iterator[Cycle]:
    """A Cycle on this thread's long-lived state connection (the daemon's workers)."""
    yield _cycle(config, thread_store(config), None)


def calendars(config: Config) -> CalendarFactory:
    """The configured calendar provider: `user → CalendarSource` (calendar/source.py).

    Google's, sharing the process's clients for this `[google]` configuration."""
    return calendar_factory(config.google)


def salesforce(config: Config) -> Callable[[], SalesforceOrg]:
    """Makes the Salesforce client when first needed (an idle cycle never logs in)."""
    return lambda: SalesforceOrg.from_config(config.salesforce)


def _cycle(config: Config, store: StateStore, clock: Callable[[], dt.datetime] | None) -> Cycle:
    return Cycle(
        config,
        store,
        calendar_for=calendars(config),
        org_factory=salesforce(config),
        **({"clock": clock} if clock is not None else {}),
    )


def resync(config: Config, users: Sequence[str] | None = None, **options: Any) -> resyncing.ResyncResult:
    """`calsync resync` on the configured adapters (engine/resync.py `resync`, same options)."""
    return resyncing.resync(config, users, calendar_for=calendars(config),
                            org_factory=salesforce(config), **options)


def explain_live(config: Config, user: str, **options: Any) -> list[tuple[explain.Found, list[str]]]:
    """`calsync explain --live` on the configured adapters (engine/explain.py `live`)."""
    return explain.live(config, user, calendar_for=calendars(config),
                        org_factory=salesforce(config), **options)


_local = threading.local()
_stores: list[StateStore] = []
_stores_lock = threading.Lock()


def thread_store(config: Config) -> StateStore:
    """This thread's connection to the configuration's state database, checked when opened and
    every RECHECK_SECONDS (StateError when the file is damaged or the disk full)."""
    path = config.state.shown
    opened: dict[str, tuple[StateStore, float]] = getattr(_local, "stores", None) or {}
    _local.stores = opened
    now = time.monotonic()
    known = opened.get(path)
    if known is not None:
        with _stores_lock:
            live = any(known[0] is store for store in _stores)
        if not live:  # closed by close_thread_stores (a daemon stopped; this thread lives on)
            known = None
    if known is not None and now - known[1] < RECHECK_SECONDS:
        return known[0]
    if known is None:
        store = StateStore(config.state, check_same_thread=False)
        with _stores_lock:
            _stores.append(store)
    else:
        store = known[0]
    store.check_usable()
    opened[path] = (store, now)
    return store


def close_thread_stores() -> None:
    """Close every worker's connection (the daemon, once no job runs any more)."""
    with _stores_lock:
        stores = list(_stores)
        _stores.clear()
    for store in stores:
        try:
            store.close()
        except Exception:  # noqa: BLE001 - closing at exit must not fail the stop
            pass
    _local.__dict__.clear()  # this thread's entries; other threads' are gone with their stores

