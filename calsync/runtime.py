"""Wiring: a configuration becomes a state store, adapters and a `Cycle` ready to run."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from calsync.config import Config
from calsync.cycle import Cycle
from calsync.google import calendar_factory
from calsync.salesforce import SalesforceOrg
from calsync.state import StateStore


@contextmanager
def open_cycle(
    config: Config, clock: Callable[[], dt.datetime] | None = None
) -> Iterator[Cycle]:
    """A Cycle on its own state connection; Salesforce is only contacted when needed.

    The state database is checked (read whole, one row written) before anything else: a damaged
    file or a full disk is a StateError here, not after API calls spent for nothing. `clock`
    replaces the wall clock (tests that let time pass).
    """
    store = StateStore(config.state.path)
    try:
        store.check_usable()
        yield Cycle(
            config,
            store,
            calendar_for=calendar_factory(config.google),
            org_factory=lambda: SalesforceOrg.from_config(config.salesforce),
            **({"clock": clock} if clock is not None else {}),
        )
    finally:
        store.close()
