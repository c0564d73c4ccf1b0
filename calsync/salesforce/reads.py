"""Reading an org: SOQL queries (paged, batched, bisected), Users, Contacts, Leads, Events, changes.

Every read is a SOQL query through the connection (connection.py), so each costs one call per
page of 2,000 rows (reference B1). Lookups of many addresses go in `IN (...)` batches cut to the
URI budget (soql.py); a value Salesforce refuses is left out rather than failing its batch.
Events are read with queryAll and `IsDeleted = false` (archived Events included, reference B10);
"changed since" reads follow SystemModstamp, deleted rows included (directory.py).
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import requests

from calsync.core.errors import PermanentError
from calsync.core.model import Contact, Conversion, Lead, Opportunity
from calsync.salesforce.connection import Connection
from calsync.salesforce.soql import in_batches, in_statement, soql_datetime, soql_quote

log = logging.getLogger("calsync.salesforce")  # names predate the layers (ARCHITECTURE.md)


@dataclass(frozen=True)
class ChangedRecord:
    """One row of a "changed since" query (directory refresh, `directory.py`).

    `stamp` is the SystemModstamp that made the row match (for a contact role, the later of its
    own and its Opportunity's). `email` is a Contact's or Lead's address as stored now;
    `linked` the ids the change touches besides the record itself: a converted Lead's Contact,
    a contact role's Contact and Opportunity.
    """

    id: str
    stamp: dt.datetime
    email: str | None = None
    linked: tuple[str, ...] = ()
    deleted: bool = False


@dataclass(frozen=True)
class LeadsFound:
    """The Leads of some addresses (`find_leads`), by lowercased address: those not converted,
    and the converted ones with the Contact each became."""

    leads: dict[str, tuple[Lead, ...]] = field(default_factory=dict)
    converted: dict[str, tuple[Conversion, ...]] = field(default_factory=dict)


@dataclass(frozen=True)
class SalesforceUser:
    id: str
    email: str | None
    username: str | None
    active: bool


class Reader:
    """The queries of one org, through its connection (which counts and maps their calls)."""

    def __init__(self, connection: Connection) -> None:
        self._connection = connection

    def query(self, soql: str, *, include_deleted: bool = False) -> list[dict[str, Any]]:
        """All rows of a query; each further page (nextRecordsUrl) is one more call.

        `include_deleted` asks queryAll, which adds rows in the recycle bin (reference B1).
        """
        call = self._connection.call
        first = call("query", lambda sf: sf.query(soql, include_deleted=include_deleted))
        records = list(first.get("records", []))
        page = first
        while not page.get("done", True) and page.get("nextRecordsUrl"):
            url = page["nextRecordsUrl"]
            page = call("query", lambda sf, url=url: sf.query_more(url, identifier_is_url=True))
            records.extend(page.get("records", []))
        return records

    def query_in(
        self, head: str, values: Iterable[str], tail: str = "", *, bisect: bool = True,
        include_deleted: bool = False,
    ) -> list[dict[str, Any]]:
        """Rows of `head IN (values) tail`, batched; a value Salesforce refuses is left out.

        One odd address must not stop the lookup of every other one: a batch refused as a
        whole is halved until the culprit stands alone, which is then skipped with a warning.
        Without `bisect` a refusal raises (the statement itself is the problem).
        `include_deleted` asks queryAll (see `query`).
        """
        rows: list[dict[str, Any]] = []
        pending = list(in_batches(head, values, tail))
        while pending:
            batch = pending.pop()
            try:
                rows.extend(self.query(in_statement(head, batch, tail), include_deleted=include_deleted))
            except PermanentError as exc:
                if not bisect:
                    raise
                if len(batch) == 1:
                    log.warning("lookup refused one value", extra={"fields": {
                        "status_code": exc.status_code, "value": batch[0][:100]}})
                    continue
                half = len(batch) // 2
                pending += [batch[:half], batch[half:]]
        return rows

    def describe(self, sobject: str) -> dict[str, Any]:
        return self._connection.call(  # type: ignore[no-any-return]
            f"describe {sobject}", lambda sf: getattr(sf, sobject).describe()
        )

    def limits(self) -> dict[str, Any]:
        return self._connection.call("limits", lambda sf: sf.restful("limits"))  # type: ignore[no-any-return]

    def own_user_id(self) -> str | None:
        """The Id of the User calsync's session writes as (its integration user), or None.

        JWT and password logins name it in the token answer (no call). An access token does not:
        the OpenID Connect UserInfo endpoint on the instance answers `user_id` (Help, "Query for
        User Information"; one call), else, with `username` configured, a User query. None when
        neither answers; the caller then judges edits without it (ownership.py).
        """
        connection = self._connection
        client = connection.client()
        if connection.user_id is not None:
            return connection.user_id
        url = f"https://{client.sf_instance}/services/oauth2/userinfo"
        connection.count_call()
        try:
            answer = connection.http.get(
                url, headers={"Authorization": f"Bearer {client.session_id}"}
            )
        except requests.RequestException as exc:
            raise connection.unreachable(exc, "userinfo", url, "salesforce.instance_url") from exc
        try:
            found = answer.json().get("user_id") if answer.status_code == 200 else None
        except (ValueError, AttributeError):
            found = None
        if isinstance(found, str) and found.startswith("005"):
            connection.user_id = found
        elif connection.username:
            rows = self.query(f"SELECT Id FROM User WHERE Username = {soql_quote(connection.username.lower())}")
            connection.user_id = str(rows[0]["Id"]) if rows else None
        if connection.user_id is None:
            log.warning("cannot tell which Salesforce user calsync writes as",
                        extra={"fields": {"userinfo_status": answer.status_code}})
        return connection.user_id

    # -- directory lookups ---------------------------------------------------------------------

    def find_users(self, addresses: Iterable[str], ids: Iterable[str] = ()) -> list[SalesforceUser]:
        """Users whose Email or Username is one of `addresses`, or whose Id is in `ids`.

        One query per 100 users: configured users are few, and one call beats three.
        """
        wanted = sorted({a.lower() for a in addresses})
        id_list = sorted(set(ids))
        rows: list[dict[str, Any]] = []
        for start in range(0, max(len(wanted), len(id_list)), 100):
            emails = ",".join(soql_quote(a) for a in wanted[start : start + 100])
            some_ids = ",".join(soql_quote(i) for i in id_list[start : start + 100])
            terms = []
            if emails:
                terms += [f"Email IN ({emails})", f"Username IN ({emails})"]
            if some_ids:
                terms.append(f"Id IN ({some_ids})")
            rows.extend(self.query("SELECT Id, Email, Username, IsActive FROM User WHERE " + " OR ".join(terms)))
        seen: dict[str, SalesforceUser] = {}
        for row in rows:
            seen[row["Id"]] = SalesforceUser(
                id=row["Id"],
                email=(row.get("Email") or "").lower() or None,
                username=(row.get("Username") or "").lower() or None,
                active=bool(row.get("IsActive")),
            )
        return sorted(seen.values(), key=lambda u: u.id)

    def find_contacts(self, addresses: Iterable[str]) -> dict[str, tuple[Contact, ...]]:
        found: dict[str, list[Contact]] = {}
        for row in self.query_in("SELECT Id, Email, AccountId, CreatedDate FROM Contact WHERE Email", addresses):
            email = (row.get("Email") or "").lower()
            found.setdefault(email, []).append(
                Contact(row["Id"], email, row.get("CreatedDate") or "", row.get("AccountId"))
            )
        return {k: tuple(v) for k, v in found.items()}

    def find_leads(self, addresses: Iterable[str]) -> LeadsFound:
        """Leads by Email, converted ones with the Contact each became, in the same query.

        Converting moves a Lead's activities to its Contact (reference B10), which may be an
        existing one with another address: it is read through the ConvertedContact relationship
        (the parent's fields "directly in the SELECT", SOQL relationship queries), so a converted
        Lead costs no call of its own. A converted Lead whose Contact is gone (deleted, or a
        conversion without one) resolves to nothing.
        """
        leads: dict[str, list[Lead]] = {}
        converted: dict[str, list[Conversion]] = {}
        head = (
            "SELECT Id, Email, CreatedDate, IsConverted, ConvertedContactId, ConvertedAccountId,"
            " ConvertedOpportunityId, ConvertedContact.Email, ConvertedContact.AccountId,"
            " ConvertedContact.CreatedDate FROM Lead WHERE Email"
        )
        for row in self.query_in(head, addresses):
            email = (row.get("Email") or "").lower()
            lead = Lead(
                row["Id"], email, row.get("CreatedDate") or "",
                converted_contact_id=row.get("ConvertedContactId"),
                converted_account_id=row.get("ConvertedAccountId"),
                converted_opportunity_id=row.get("ConvertedOpportunityId"),
                is_converted=bool(row.get("IsConverted")),
            )
            if not lead.is_converted:
                leads.setdefault(email, []).append(lead)
                continue
            contact = row.get("ConvertedContact")
            if lead.converted_contact_id and isinstance(contact, Mapping):
                converted.setdefault(email, []).append(Conversion(lead, Contact(
                    lead.converted_contact_id, (contact.get("Email") or "").lower(),
                    contact.get("CreatedDate") or "", contact.get("AccountId"),
                )))
        return LeadsFound({k: tuple(v) for k, v in leads.items()}, {k: tuple(v) for k, v in converted.items()})

    def leads_converted_into(self, contact_ids: Iterable[str]) -> dict[str, Lead]:
        """The converted Leads whose Contact is one of these, by 15-character Lead Id: whether
        an Event's Name moved from a Lead to a Contact by a conversion (ownership.py)."""
        head = (
            "SELECT Id, Email, CreatedDate, ConvertedContactId, ConvertedAccountId,"
            " ConvertedOpportunityId FROM Lead WHERE IsConverted = true AND ConvertedContactId"
        )
        found: dict[str, Lead] = {}
        for row in self.query_in(head, sorted(set(contact_ids)), bisect=False):
            found[str(row["Id"])[:15]] = Lead(
                row["Id"], (row.get("Email") or "").lower(), row.get("CreatedDate") or "",
                converted_contact_id=row.get("ConvertedContactId"),
                converted_account_id=row.get("ConvertedAccountId"),
                converted_opportunity_id=row.get("ConvertedOpportunityId"),
                is_converted=True,
            )
        return found

    def find_primary_opportunities(self, contact_ids: Iterable[str]) -> dict[str, tuple[Opportunity, ...]]:
        found: dict[str, list[Opportunity]] = {}
        head = (
            "SELECT ContactId, OpportunityId, Opportunity.IsClosed, Opportunity.CloseDate"
            " FROM OpportunityContactRole WHERE IsPrimary = true AND ContactId"
        )
        for row in self.query_in(head, contact_ids):
            opp = row.get("Opportunity") or {}
            found.setdefault(row["ContactId"], []).append(
                Opportunity(
                    id=row["OpportunityId"],
                    contact_id=row["ContactId"],
                    is_closed=bool(opp.get("IsClosed")),
                    close_date=opp.get("CloseDate"),
                )
            )
        return {k: tuple(v) for k, v in found.items()}

    # -- Events ----------------------------------------------------------------------------------
    #
    # Every read of Events asks queryAll with `IsDeleted = false`: query() leaves out archived
    # Events (dated 365 days ago or more, reference B10), which stay there, can be updated and
    # deleted, and are as much calsync's as any other (a year-old series keeps its Event on its
    # first slot). Leaving the recycle bin out keeps a deleted Event deleted. queryAll costs the
    # same one call as query.

    def _events_in(self, head: str, values: Iterable[str]) -> list[dict[str, Any]]:
        return self.query_in(head, values, bisect=False, include_deleted=True)

    def events_by_key(self, field: str, keys: Iterable[str]) -> dict[str, str]:
        """Event ids by External ID value (reconciling creates in upsert mode)."""
        found: dict[str, str] = {}
        for row in self._events_in(f"SELECT Id, {field} FROM Event WHERE IsDeleted = false AND {field}", keys):
            found[str(row[field])] = row["Id"]
        return found

    def events_starting_since(
        self, owner_ids: Iterable[str], since: dt.datetime, extra_fields: Sequence[str] = ()
    ) -> list[dict[str, Any]]:
        """Events of these owners starting after `since` (adopting Events and finding duplicates
        on a full listing or a resync), with CreatedDate and `extra_fields` (an External ID)."""
        extra = "".join(f", {name}" for name in extra_fields)
        head = (
            "SELECT Id, OwnerId, Subject, StartDateTime, EndDateTime, IsAllDayEvent, ActivityDate,"
            f" WhoId, WhatId, CreatedDate{extra} FROM Event"
            f" WHERE IsDeleted = false AND StartDateTime > {soql_datetime(since)} AND OwnerId"
        )
        return self._events_in(head, owner_ids)

    def events_by_ids(self, ids: Iterable[str], fields: Sequence[str]) -> dict[str, dict[str, Any]]:
        """The Events with these ids as Salesforce holds them now, by 15-character Id.

        An Event deleted in Salesforce is not among them (IsDeleted = false); an archived one is
        (queryAll). Batched by URL length: several hundred ids a call, so at most one call per
        200 Events.
        """
        head = f"SELECT Id, {', '.join(f for f in fields if f != 'Id')} FROM Event WHERE IsDeleted = false AND Id"
        rows = self._events_in(head, sorted(set(ids)))
        return {str(row["Id"])[:15]: row for row in rows}

    def who_relations(self, event_ids: Iterable[str]) -> dict[str, list[str]]:
        """Shared Activities: the Contacts and Lead each Event is related to as its Name(s)
        (EventRelation with IsParent and not IsWhat, reference B3), by 15-character Event Id.
        EventWhoIds itself cannot be queried."""
        head = (
            "SELECT EventId, RelationId FROM EventRelation WHERE IsDeleted = false AND IsParent = true"
            " AND IsWhat = false AND EventId"
        )
        found: dict[str, list[str]] = {}
        for row in self._events_in(head, sorted(set(event_ids))):
            found.setdefault(str(row["EventId"])[:15], []).append(str(row["RelationId"]))
        return found

    def events_created_since(
        self,
        owner_ids: Iterable[str],
        since: dt.datetime,
        created_by: str | None = None,
        extra_fields: Sequence[str] = (),
    ) -> list[dict[str, Any]]:
        """Events of these owners created at or after `since` (Salesforce's clock), by
        `created_by` when given: where a create whose answer was lost may have landed
        (reconciling creates without External ID). With their times, who created and last
        modified them, and `extra_fields` (what calsync writes, for the baseline of ownership)."""
        wanted = ["Id", "OwnerId", "Subject", "StartDateTime", "EndDateTime", "IsAllDayEvent", "ActivityDate",
                  "DurationInMinutes", "WhoId", "WhatId", "CreatedDate", "CreatedById", "LastModifiedById"]
        wanted += [f for f in extra_fields if f not in wanted and f != "EventWhoIds"]
        by = f" AND CreatedById = {soql_quote(created_by)}" if created_by else ""
        head = (
            f"SELECT {', '.join(wanted)} FROM Event WHERE IsDeleted = false AND"
            f" CreatedDate >= {soql_datetime(since)}{by} AND OwnerId"
        )
        return self._events_in(head, owner_ids)

    # -- what changed since a moment (directory.py) ---------------------------------------------
    #
    # Every create, edit and delete moves a record's SystemModstamp (server time); queryAll also
    # returns the rows deleted since, which matter as much (a primary role removed). Each is one
    # call unless more than 2,000 rows changed (paging, reference B1).

    def contacts_changed_since(self, since: dt.datetime) -> list[ChangedRecord]:
        """Contacts created, edited (Email, AccountId, anything) or deleted after `since`."""
        rows = self.query(
            "SELECT Id, Email, AccountId, SystemModstamp, IsDeleted FROM Contact"
            f" WHERE SystemModstamp > {soql_datetime(since)}",
            include_deleted=True,
        )
        return [_changed(row, email=row.get("Email")) for row in rows]

    def leads_changed_since(self, since: dt.datetime) -> list[ChangedRecord]:
        """Leads created, edited, converted (IsConverted, ConvertedContactId) or deleted."""
        rows = self.query(
            "SELECT Id, Email, IsConverted, ConvertedContactId, SystemModstamp, IsDeleted FROM Lead"
            f" WHERE SystemModstamp > {soql_datetime(since)}",
            include_deleted=True,
        )
        return [_changed(row, email=row.get("Email"), linked=(row.get("ConvertedContactId"),)) for row in rows]

    def roles_changed_since(self, since: dt.datetime) -> list[ChangedRecord]:
        """OpportunityContactRoles added, edited or removed after `since`, and every role of an
        Opportunity edited since (stage, close date: what makes it open or the latest).

        One statement: a parent's field may be filtered on with the dot notation and combined
        with OR (SOQL "Using Relationship Queries": child-to-parent relationships go "directly
        in the SELECT, FROM, or WHERE clauses"); only semi-joins are refused under OR.
        """
        at = soql_datetime(since)
        rows = self.query(
            "SELECT Id, ContactId, OpportunityId, SystemModstamp, IsDeleted, Opportunity.SystemModstamp"
            f" FROM OpportunityContactRole WHERE SystemModstamp > {at} OR Opportunity.SystemModstamp > {at}",
            include_deleted=True,
        )
        return [
            _changed(
                row,
                linked=(row.get("ContactId"), row.get("OpportunityId")),
                also=(row.get("Opportunity") or {}).get("SystemModstamp"),
            )
            for row in rows
        ]


def _changed(
    row: Mapping[str, Any], *, email: Any = None, linked: Iterable[Any] = (), also: Any = None
) -> ChangedRecord:
    stamps = [s for s in (_sf_instant(row.get("SystemModstamp")), _sf_instant(also)) if s is not None]
    return ChangedRecord(
        id=str(row["Id"]),
        # A row without a readable stamp still counts; the epoch keeps it from moving a watermark.
        stamp=max(stamps, default=dt.datetime.fromtimestamp(0, dt.timezone.utc)),
        email=email.strip().lower() if isinstance(email, str) and email.strip() else None,
        linked=tuple(str(i) for i in linked if i),
        deleted=bool(row.get("IsDeleted")),
    )


def _sf_instant(value: Any) -> dt.datetime | None:
    """A Salesforce dateTime (2026-01-05T15:00:00.000+0000) as an aware UTC datetime."""
    if not isinstance(value, str):
        return None
    try:
        return dt.datetime.fromisoformat(value).astimezone(dt.timezone.utc)
    except ValueError:
        return None
