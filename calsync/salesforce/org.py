"""One Salesforce org as the engine sees it: the facade over the connection, the reads, the writes.

`SalesforceOrg` is what the engine, the commands and the tests hold. It owns one `Connection`
(connection.py: login, HTTP session and timeouts, Salesforce's clock, each call with renewal,
retries and error mapping), a `Reader` (reads.py: SOQL queries, directory lookups, Events,
changes since a moment) and a `Writer` (writes.py: sObject Collections), and passes each method
to the one that does it. Composition rather than mixins: the three share only the connection,
which counts every call (`calls`) wherever it was made. SOQL text is built in soql.py.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from calsync.core.errors import ConfigError
from calsync.core.model import Contact, Lead, Opportunity
from calsync.salesforce.connection import CONNECT_TIMEOUT, READ_TIMEOUT, Connection
from calsync.salesforce.reads import ChangedRecord, LeadsFound, Reader, SalesforceUser
from calsync.salesforce.writes import WriteResult, Writer

__all__ = ["ChangedRecord", "LeadsFound", "SalesforceOrg", "SalesforceUser", "WriteResult"]


class SalesforceOrg:
    """A session with one org. Counts the API calls it makes (`calls`)."""

    def __init__(self, instance_url: str, **options: Any) -> None:
        """`options`: the login, timeouts and limits of `Connection` (connection.py), by name."""
        self._connection = Connection(instance_url, **options)
        self._reader = Reader(self._connection)
        self._writer = Writer(self._connection)

    @classmethod
    def from_config(cls, cfg: Any) -> "SalesforceOrg":
        """Build from `config.SalesforceConfig` (secrets revealed only here)."""

        def reveal(value: Any) -> str | None:
            if value is None:
                return None
            return value.reveal() if hasattr(value, "reveal") else str(value)

        private_key = None
        if getattr(cfg, "private_key_file", None):
            try:
                private_key = Path(cfg.private_key_file).read_text()
            except OSError as exc:
                raise ConfigError(
                    f"salesforce.private_key_file: cannot read {cfg.private_key_file}: {exc.strerror}"
                ) from exc
        return cls(
            cfg.instance_url,
            auth=cfg.auth,
            access_token=reveal(getattr(cfg, "access_token", None)),
            login_url=getattr(cfg, "login_url", "https://login.salesforce.com"),
            username=getattr(cfg, "username", None),
            consumer_key=getattr(cfg, "consumer_key", None),
            private_key=private_key,
            client_id=getattr(cfg, "client_id", None),
            client_secret=reveal(getattr(cfg, "client_secret", None)),
            password=reveal(getattr(cfg, "password", None)),
            security_token=reveal(getattr(cfg, "security_token", None)),
            ca_bundle=getattr(cfg, "ca_bundle", None),
            api_version=getattr(cfg, "api_version", "59.0"),
            min_remaining=getattr(cfg, "daily_call_budget", 0),
            connect_timeout=getattr(cfg, "connect_timeout_seconds", CONNECT_TIMEOUT),
            read_timeout=getattr(cfg, "read_timeout_seconds", READ_TIMEOUT),
        )

    # -- the connection's settings and counters (connection.py) ----------------------------------

    @property
    def instance_url(self) -> str:
        return self._connection.instance_url

    @property
    def auth(self) -> str:
        return self._connection.auth

    @property
    def login_url(self) -> str:
        return self._connection.login_url

    @property
    def username(self) -> str | None:
        return self._connection.username

    @property
    def api_version(self) -> str:
        return self._connection.api_version

    @property
    def min_remaining(self) -> int:
        """salesforce.daily_call_budget: no call when fewer of the org's daily calls are left."""
        return self._connection.min_remaining

    @property
    def calls(self) -> int:
        """API calls made so far, reads and writes alike."""
        return self._connection.calls

    @property
    def api_usage(self) -> tuple[int, int] | None:
        """(used, total) of the org's daily allowance, from the last answer's Sforce-Limit-Info."""
        return self._connection.api_usage

    @property
    def server_time(self) -> dt.datetime | None:
        """Salesforce's clock at its last answer (its Date header)."""
        return self._connection.server_time

    def server_now(self) -> dt.datetime | None:
        """Salesforce's clock now, as far as its answers tell (`Connection.server_now`)."""
        return self._connection.server_now()

    # -- reads (reads.py) ------------------------------------------------------------------------

    def query(self, soql: str, *, include_deleted: bool = False) -> list[dict[str, Any]]:
        return self._reader.query(soql, include_deleted=include_deleted)

    def query_in(
        self, head: str, values: Iterable[str], tail: str = "", *, bisect: bool = True,
        include_deleted: bool = False,
    ) -> list[dict[str, Any]]:
        return self._reader.query_in(head, values, tail, bisect=bisect, include_deleted=include_deleted)

    def describe(self, sobject: str) -> dict[str, Any]:
        return self._reader.describe(sobject)

    def limits(self) -> dict[str, Any]:
        return self._reader.limits()

    def own_user_id(self) -> str | None:
        return self._reader.own_user_id()

    def find_users(self, addresses: Iterable[str], ids: Iterable[str] = ()) -> list[SalesforceUser]:
        return self._reader.find_users(addresses, ids)

    def find_contacts(self, addresses: Iterable[str]) -> dict[str, tuple[Contact, ...]]:
        return self._reader.find_contacts(addresses)

    def find_leads(self, addresses: Iterable[str]) -> LeadsFound:
        return self._reader.find_leads(addresses)

    def leads_converted_into(self, contact_ids: Iterable[str]) -> dict[str, Lead]:
        return self._reader.leads_converted_into(contact_ids)

    def find_primary_opportunities(self, contact_ids: Iterable[str]) -> dict[str, tuple[Opportunity, ...]]:
        return self._reader.find_primary_opportunities(contact_ids)

    def events_by_key(self, field: str, keys: Iterable[str]) -> dict[str, str]:
        return self._reader.events_by_key(field, keys)

    def events_starting_since(
        self, owner_ids: Iterable[str], since: dt.datetime, extra_fields: Sequence[str] = ()
    ) -> list[dict[str, Any]]:
        return self._reader.events_starting_since(owner_ids, since, extra_fields)

    def events_by_ids(self, ids: Iterable[str], fields: Sequence[str]) -> dict[str, dict[str, Any]]:
        return self._reader.events_by_ids(ids, fields)

    def who_relations(self, event_ids: Iterable[str]) -> dict[str, list[str]]:
        return self._reader.who_relations(event_ids)

    def events_created_since(
        self,
        owner_ids: Iterable[str],
        since: dt.datetime,
        created_by: str | None = None,
        extra_fields: Sequence[str] = (),
    ) -> list[dict[str, Any]]:
        return self._reader.events_created_since(owner_ids, since, created_by, extra_fields)

    def contacts_changed_since(self, since: dt.datetime) -> list[ChangedRecord]:
        return self._reader.contacts_changed_since(since)

    def leads_changed_since(self, since: dt.datetime) -> list[ChangedRecord]:
        return self._reader.leads_changed_since(since)

    def roles_changed_since(self, since: dt.datetime) -> list[ChangedRecord]:
        return self._reader.roles_changed_since(since)

    # -- writes (writes.py) ----------------------------------------------------------------------

    def create(self, records: Sequence[Mapping[str, Any]]) -> list[WriteResult]:
        return self._writer.create(records)

    def update(self, records: Sequence[Mapping[str, Any]]) -> list[WriteResult]:
        return self._writer.update(records)

    def upsert(self, field: str, records: Sequence[Mapping[str, Any]]) -> list[WriteResult]:
        return self._writer.upsert(field, records)

    def delete(self, ids: Sequence[str]) -> list[WriteResult]:
        return self._writer.delete(ids)
