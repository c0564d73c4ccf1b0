"""One Cycle's Salesforce session: the client, made only when needed, and what it learnt of the org.

An idle cycle must not even log in, so the client (`org`) is made on first use. What calsync
learns about the org on the way is kept here for the cycle's parts (planning, reading back,
writing, reconciling) to share:

- the Event describe (cached a day in the state store, `check_event_fields`): whether the
  configured activity Date/Time field is usable (else it is left out of `settings`, the plan
  settings every part reads) and which External ID field creates upsert on (`upsert_field`);
- the Id of the Salesforce User calsync writes as (`own_user`): its changes are never a
  person's (ownership.py);
- `quota_spent`: the org's daily API allowance ran out during this cycle (reference C11); no
  further write is sent.
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
from collections.abc import Callable, Mapping
from dataclasses import replace
from typing import Any

from calsync.core.config import Config
from calsync.core.errors import PermanentError, QuotaExhausted, TransientError
from calsync.core.logs import event as log_event
from calsync.core.model import PlanSettings
from calsync.salesforce.org import SalesforceOrg
from calsync.state.store import StateStore

log = logging.getLogger("calsync.cycle")  # names predate the layers (ARCHITECTURE.md)

DESCRIBE_TTL = dt.timedelta(hours=24)
OWN_USER_TTL = dt.timedelta(hours=24)  # calsync's own Salesforce user, for auth = "access_token"


class SalesforceSession:
    """The lazily made Salesforce client and the facts about the org one Cycle shares."""

    def __init__(
        self, config: Config, store: StateStore, org_factory: Callable[[], SalesforceOrg]
    ) -> None:
        self.config = config
        self.store = store
        self._org_factory = org_factory
        self._org: SalesforceOrg | None = None
        self.settings: PlanSettings = config.plan_settings()
        self.settings_checked = False  # the Event describe was read (or needs not be)
        self.upsert_field: str | None = None  # the External ID field creates upsert on
        self.quota_spent: QuotaExhausted | None = None
        self._own_user: str | None = None

    # -- Salesforce, lazily: an idle cycle must not even log in ---------------------------------

    @property
    def org(self) -> SalesforceOrg:
        if self._org is None:
            self._org = self._org_factory()
        return self._org

    @property
    def salesforce_calls(self) -> int:
        return self._org.calls if self._org is not None else 0

    def own_user(self, now: dt.datetime) -> str | None:
        """The Id of the Salesforce User calsync writes as: its changes are never a person's
        (ownership.py), and the Events of lost creates are among those it created.

        Asked only when Events are read back or reconciled, never on an idle cycle. JWT and
        password logins name it in the token answer; an access token costs one call, cached in
        the state store for a day.
        """
        if self._own_user is not None:
            return self._own_user
        org = self.org
        if org.auth != "access_token":
            self._own_user = org.own_user_id()
            return self._own_user
        name = f"salesforce_user:{self.config.salesforce.instance_url}"
        cached = self.store.meta(name)
        if cached is not None and cached[0] and now - cached[1] < OWN_USER_TTL:
            self._own_user = str(cached[0])
            return self._own_user
        self._own_user = org.own_user_id()
        if self._own_user:
            self.store.save_meta(name, self._own_user, now)
        return self._own_user

    def check_event_fields(self, now: dt.datetime) -> None:
        """Read Event's describe (cached a day) to vet the activity and External ID fields.

        A missing or read-only activity Date/Time field is reported once and then left out of
        every write; a missing External ID field falls back to recorded intents.
        """
        if self.settings_checked:
            return
        wanted_activity = self.config.sync.activity_datetime_field
        wanted_key = self.config.salesforce.external_id_field
        if not wanted_activity and not wanted_key:
            self.settings_checked = True
            return
        cached = self.store.meta("describe:Event")
        if cached is None or now - cached[1] > DESCRIBE_TTL:
            try:
                describe = self.org.describe("Event")
            except QuotaExhausted:
                raise
            except (PermanentError, TransientError) as exc:
                # Without a describe the configured fields are taken on trust; a wrong one then
                # shows as per-record INVALID_FIELD failures, parked for retry.
                log.warning("cannot describe Event", extra={"fields": {"error": str(exc)}})
                self.upsert_field = wanted_key
                self.settings_checked = True
                return
            fields = {
                f["name"].lower(): {
                    "name": f["name"],
                    "type": f.get("type"),
                    "createable": bool(f.get("createable")),
                    "updateable": bool(f.get("updateable")),
                    "externalId": bool(f.get("externalId")),
                }
                for f in describe.get("fields", [])
            }
            self.store.save_meta("describe:Event", fields, now)
        else:
            fields = cached[0]
        if wanted_activity:
            problem = activity_field_problem(fields.get(wanted_activity.lower()))
            if problem:
                _report_once(
                    "activity field unusable", field=wanted_activity, problem=problem,
                    action="Events are written without it",
                )
                self.settings = replace(self.settings, activity_datetime_field=None)
        if wanted_key:
            info = fields.get(wanted_key.lower())
            problem = external_id_problem(info)
            if problem or info is None:
                _report_once(
                    "external id field unusable", field=wanted_key, problem=problem,
                    action="creates use recorded intents instead of upserts",
                )
            else:
                self.upsert_field = info["name"]
        self.settings_checked = True


def activity_field_problem(info: Mapping[str, Any] | None) -> str | None:
    """What makes a described field unusable as the activity Date/Time field (None: usable)."""
    if info is None:
        return "does not exist on Event"
    if info.get("type") != "datetime":
        return f"is a {info.get('type')} field, not Date/Time"
    if not (info.get("createable") and info.get("updateable")):
        return "is not writable by this user"
    return None


def external_id_problem(info: Mapping[str, Any] | None) -> str | None:
    """What makes a described field unusable as the Event External ID (None: usable)."""
    if info is None:
        return "does not exist on Event"
    if not info.get("externalId"):
        return "is not marked External ID"
    if not (info.get("createable") and info.get("updateable")):
        return "is not writable by this user"
    return None


_reported: set[tuple[str, str]] = set()
_reported_lock = threading.Lock()


def _report_once(msg: str, **fields: Any) -> None:
    """A configuration problem is logged once per process (the daemon runs many cycles)."""
    with _reported_lock:
        key = (msg, str(fields.get("field")))
        if key in _reported:
            return
        _reported.add(key)
    log_event(log, msg, level=logging.ERROR, **fields)
