"""The Event rules of reference B3, and the EventRelation rows that follow an Event.

Start, end, duration and all-day days kept consistent the way Salesforce keeps them; 14 days
at most (one day without multiday events); Who/What (one Lead, or up to 50 Contacts with Shared
Activities; a Lead Name takes no Related To); private Events relate to nothing; AccountId from
the What or the Who. EventRelation rows follow WhoId/EventWhoIds (IsParent) and WhatId (IsWhat),
and EventRelations written through the API move the Event's WhoId in turn.
"""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass
from typing import Any

from calsync.sandbox.salesforce.errors import RecordError, RecordFailed
from calsync.sandbox.salesforce.field_rules import FieldRules
from calsync.sandbox.salesforce.schema import FieldDef, ObjectDef
from calsync.sandbox.salesforce.store import OrgStore, Row
from calsync.sandbox.salesforce.values import as_datetime, midnight, parse_date, wire_datetime

MAX_MULTIDAY_MINUTES = 14 * 1440  # "Multiday events can't exceed 14 days" (reference B3)
MAX_SHARED_CONTACTS = 50  # Shared Activities: <= 50 contacts or one lead (reference B3)


@dataclass
class EventPlan:
    """What an Event write changes besides its row: the Who relations and the What relation."""

    whos: list[str] | None = None  # None = unchanged
    what_changed: bool = False


class EventRules:
    """Checks and derives an Event's fields before it is saved, keeps its relations after."""

    def __init__(self, store: OrgStore, fields: FieldRules) -> None:
        self.store = store
        self.fields = fields

    def times(self, row: Row, parsed: dict[str, Any], existing: Row | None) -> None:
        """StartDateTime/EndDateTime/ActivityDateTime/ActivityDate/DurationInMinutes, consistent
        the way Salesforce keeps them (reference B3)."""

        def fie(message: str, *fields: str) -> RecordFailed:
            return RecordFailed(RecordError("FIELD_INTEGRITY_EXCEPTION", message, fields))

        sent = {k: v for k, v in parsed.items() if v is not None}
        start_sent = as_datetime(sent.get("StartDateTime"))
        adt_sent = as_datetime(sent.get("ActivityDateTime"))
        end_sent = as_datetime(sent.get("EndDateTime"))
        ad_sent = parse_date(sent["ActivityDate"]) if "ActivityDate" in sent else None
        duration_sent: int | None = sent.get("DurationInMinutes")
        was_all_day = bool(existing and existing["IsAllDayEvent"])
        old_start = as_datetime(existing.get("StartDateTime")) if existing else None
        old_duration = existing.get("DurationInMinutes") if existing else None
        duration_field = "DurationInMinutes" if duration_sent is not None else "EndDateTime"

        if row["IsAllDayEvent"]:
            days_seen = {d for d in (ad_sent, start_sent and start_sent.date(), adt_sent and adt_sent.date()) if d}
            if len(days_seen) > 1:
                raise fie("Activity date must match the start date of an all-day event", "ActivityDate")
            if days_seen:
                day = days_seen.pop()
            elif old_start is not None:
                day = old_start.date()
            else:
                raise RecordFailed(RecordError("REQUIRED_FIELD_MISSING", "Required fields are missing: [ActivityDate]",
                                               ("ActivityDate",)))
            if end_sent is not None:
                if end_sent.date() < day:
                    raise fie("End Date Time cannot be earlier than Start Date Time", "EndDateTime")
                days = (end_sent.date() - day).days + 1
                if duration_sent is not None and math.ceil(max(duration_sent, 1) / 1440) != days:
                    raise fie("Duration does not match the start and end of the event", "DurationInMinutes")
            elif duration_sent is not None:
                if duration_sent <= 0:
                    raise fie("Duration must be greater than 0 minutes", "DurationInMinutes")
                days = math.ceil(duration_sent / 1440)
            elif was_all_day and old_duration:
                days = max(1, math.ceil(old_duration / 1440))
            else:
                days = 1  # neither end nor duration: one day (reference B3)
            minutes = days * 1440
            self._check_duration(minutes, duration_field)
            start = midnight(day)
            row.update(StartDateTime=wire_datetime(start),
                       EndDateTime=wire_datetime(start + dt.timedelta(days=days - 1)),
                       ActivityDateTime=None, ActivityDate=day.isoformat(), DurationInMinutes=minutes)
            return

        if start_sent and adt_sent and start_sent != adt_sent:
            raise fie("Activity date time must equal the start date time", "ActivityDateTime")
        start = start_sent or adt_sent
        if start is None:
            if old_start is None:
                raise RecordFailed(RecordError("REQUIRED_FIELD_MISSING",
                                               "Required fields are missing: [StartDateTime]", ("StartDateTime",)))
            start = old_start
        if ad_sent is not None and ad_sent != start.date():
            raise fie("Activity date must equal the date of the start date time", "ActivityDate")
        if end_sent is not None:
            if end_sent < start:
                raise fie("End Date Time cannot be earlier than Start Date Time", "EndDateTime")
            minutes = int((end_sent - start).total_seconds() // 60)
            if duration_sent is not None and duration_sent != minutes:
                raise fie("Duration does not match the start and end of the event", "DurationInMinutes")
            end = end_sent
        elif duration_sent is not None:
            if duration_sent < 0:
                raise fie("Duration must be between 0 and 1440 minutes" if not self.store.multiday_events
                          else "Duration must not be negative", "DurationInMinutes")
            minutes = duration_sent
            end = start + dt.timedelta(minutes=minutes)
        elif old_duration is not None:
            minutes = old_duration  # moving the start keeps the duration
            end = start + dt.timedelta(minutes=minutes)
        else:
            raise RecordFailed(RecordError("REQUIRED_FIELD_MISSING", "Required fields are missing: "
                                           "[DurationInMinutes]", ("DurationInMinutes",)))
        self._check_duration(minutes, duration_field)
        row.update(StartDateTime=wire_datetime(start), EndDateTime=wire_datetime(end),
                   ActivityDateTime=wire_datetime(start), ActivityDate=start.date().isoformat(),
                   DurationInMinutes=minutes)

    def _check_duration(self, minutes: int, field_name: str) -> None:
        # From API 39.0 duration errors name EndDateTime unless DurationInMinutes was sent (B3).
        if not self.store.multiday_events and minutes > 1440:
            raise RecordFailed(RecordError("FIELD_INTEGRITY_EXCEPTION", "Duration must be between 0 and 1440 minutes",
                                           (field_name,)))
        if minutes > MAX_MULTIDAY_MINUTES:
            raise RecordFailed(RecordError("FIELD_INTEGRITY_EXCEPTION", "Multiday events can't exceed 14 days",
                                           (field_name,)))

    def links(self, row: Row, parsed: dict[str, Any], existing: Row | None) -> EventPlan:
        """WhoId / EventWhoIds / WhatId rules and AccountId (reference B3)."""
        plan = EventPlan()
        current_whos = self.who_relations(existing["Id"]) if existing else []
        if "EventWhoIds" in parsed:
            ids: list[str] = []
            who_field = self.store.objects["event"].fields["whoid"]
            for value in parsed["EventWhoIds"] or []:
                id18 = self._check_reference_as(who_field, value, "EventWhoIds")
                if id18 and id18 not in ids:
                    ids.append(id18)
            given_who = row.get("WhoId") if "WhoId" in parsed else None
            if given_who and given_who not in ids:
                ids.insert(0, given_who)
            row["WhoId"] = given_who or (ids[0] if ids else None)
            plan.whos = ids
        elif "WhoId" in parsed:
            new = row.get("WhoId")
            old = existing.get("WhoId") if existing else None
            if self.store.shared_activities and existing:
                whos = [w for w in current_whos if w != old]
                if new:
                    whos = [new] + [w for w in whos if w != new]
                elif whos:
                    row["WhoId"] = whos[0]  # another Who is promoted (reference B3)
                plan.whos = whos
            else:
                plan.whos = [new] if new else []
        elif existing is None:
            plan.whos = []
        whos = plan.whos if plan.whos is not None else current_whos
        leads = [w for w in whos if w.startswith("00Q")]
        contacts = [w for w in whos if w.startswith("003")]
        if len(leads) > 1 or (leads and contacts):
            raise RecordFailed(RecordError("FIELD_INTEGRITY_EXCEPTION",
                                           "You can relate an event to one lead or up to 50 contacts, not both",
                                           ("EventWhoIds",)))
        if len(contacts) > MAX_SHARED_CONTACTS:
            raise RecordFailed(RecordError("FIELD_INTEGRITY_EXCEPTION",
                                           "You can't relate more than 50 contacts to an event", ("EventWhoIds",)))
        who, what = row.get("WhoId"), row.get("WhatId")
        if who and who.startswith("00Q") and what:
            raise RecordFailed(RecordError(
                "FIELD_INTEGRITY_EXCEPTION",
                "Related To ID: You can't relate an event to a lead and to another record at the same time",
                ("WhoId", "WhatId")))
        if row.get("IsPrivate") and (who or what):
            raise RecordFailed(RecordError(
                "FIELD_INTEGRITY_EXCEPTION",
                "You can't relate a private event to other records: remove Name and Related To or clear Private",
                ("IsPrivate",)))
        plan.what_changed = existing is None or existing.get("WhatId") != what
        row["AccountId"] = self.account_of(who, what)
        row["WhoCount"] = len(whos) if self.store.shared_activities else (1 if who else 0)
        row["WhatCount"] = 1 if what else 0
        return plan

    def _check_reference_as(self, f: FieldDef, value: str, field_name: str) -> str | None:
        try:
            return self.fields.check_reference(self.store.objects["event"], f, value)
        except RecordFailed as exc:
            err = exc.errors[0]
            raise RecordFailed(RecordError(err.status_code, err.message, (field_name,))) from None

    def account_of(self, who: str | None, what: str | None) -> str | None:
        # AccountId: the What's account, else the (primary) Who contact's (reference B3).
        if what:
            found = self.store.find(what)
            if found and found[0].name == "Account":
                return found[1]["Id"]
            if found and found[0].name == "Opportunity":
                return found[1].get("AccountId")
        if who and who.startswith("003"):
            found = self.store.find(who)
            if found:
                return found[1].get("AccountId")
        return None

    def relations(self, event_id: str) -> list[Row]:
        ids = self.store.relations_by_event.get(event_id, set())
        rows = [self.store.rows["eventrelation"][i] for i in ids]
        return sorted((r for r in rows if not r["IsDeleted"]), key=lambda r: r["Id"])

    def who_relations(self, event_id: str) -> list[str]:
        event = self.store.rows["event"].get(event_id)
        whos = [r["RelationId"] for r in self.relations(event_id) if r["IsParent"] and not r["IsWhat"]]
        primary = event.get("WhoId") if event else None
        if primary in whos:
            whos.remove(primary)
            whos.insert(0, primary)
        return whos

    def after_write(self, obj: ObjectDef, row: Row, plan: EventPlan, existing: Row | None) -> None:
        if obj.name == "Event":
            self._sync_event_relations(row, plan)
        elif obj.name == "EventRelation" and existing is None:
            self._relation_added(row)

    def _sync_event_relations(self, event: Row, plan: EventPlan) -> None:
        """EventRelation rows follow WhoId/EventWhoIds (IsParent) and WhatId (IsWhat)."""
        event_id = event["Id"]
        now = self.store.now()
        relations = self.relations(event_id)
        if plan.whos is not None:
            wanted = list(plan.whos)
            for rel in relations:
                if rel["IsParent"] and not rel["IsWhat"] and rel["RelationId"] not in wanted:
                    self._drop_relation(rel, now)
            have = {r["RelationId"] for r in self.relations(event_id) if r["IsParent"] and not r["IsWhat"]}
            for who in wanted:
                if who in have:
                    continue
                invitee = next((r for r in self.relations(event_id) if r["RelationId"] == who), None)
                if invitee is not None:
                    self.store.put("eventrelation", invitee["Id"],
                                   {**invitee, "IsParent": True, "SystemModstamp": now})
                else:
                    self._add_relation(event, who, is_what=False, now=now)
        if plan.what_changed:
            for rel in self.relations(event_id):
                if rel["IsWhat"] and rel["RelationId"] != event.get("WhatId"):
                    self._drop_relation(rel, now)
            if event.get("WhatId") and not any(r["IsWhat"] for r in self.relations(event_id)):
                self._add_relation(event, event["WhatId"], is_what=True, now=now)

    def _drop_relation(self, rel: Row, now: str) -> None:
        if rel["IsInvitee"]:
            self.store.put("eventrelation", rel["Id"], {**rel, "IsParent": False, "SystemModstamp": now})
        else:
            self.store.put("eventrelation", rel["Id"], {**rel, "IsDeleted": True, "SystemModstamp": now})

    def _add_relation(self, event: Row, relation_id: str, *, is_what: bool, now: str) -> None:
        obj = self.store.objects["eventrelation"]
        rel_id = self.store.new_id(obj)
        row: Row = {f.name: None for f in obj.fields.values() if f.queryable}
        row.update(Id=rel_id, EventId=event["Id"], RelationId=relation_id, IsParent=True, IsWhat=is_what,
                   IsInvitee=False, Status=None, AccountId=event.get("AccountId"), IsDeleted=False,
                   CreatedDate=now, CreatedById=event["LastModifiedById"], LastModifiedDate=now,
                   LastModifiedById=event["LastModifiedById"], SystemModstamp=now)
        self.store.put("eventrelation", rel_id, row)

    def relation_rules(self, row: Row, parsed: dict[str, Any], existing: Row | None) -> None:
        """EventRelation written through the API: invitees, or Who relations with Shared Activities."""
        if existing is not None:
            return
        event = self.store.rows["event"].get(row["EventId"])
        if event is None:
            raise RecordFailed(RecordError("INVALID_CROSS_REFERENCE_KEY", "invalid cross reference id", ("EventId",)))
        relation_type = self.store.prefixes.get(row["RelationId"][:3])
        if "IsInvitee" not in parsed:
            row["IsInvitee"] = not row["IsParent"]
        row["IsWhat"] = False
        row["AccountId"] = event.get("AccountId")
        if any(r["RelationId"] == row["RelationId"] for r in self.relations(event["Id"])):
            raise RecordFailed(RecordError("DUPLICATE_VALUE", "duplicate value found: RelationId duplicates value "
                                           "on record with id: " + event["Id"], ("RelationId",)))
        if row["IsParent"]:
            if relation_type not in ("Contact", "Lead"):
                raise RecordFailed(RecordError("FIELD_INTEGRITY_EXCEPTION", "Only a contact or a lead can be the "
                                               "Name of an event", ("RelationId",)))
            if not self.store.shared_activities and self.who_relations(event["Id"]):
                raise RecordFailed(RecordError("FIELD_INTEGRITY_EXCEPTION", "An event can be related to only one "
                                               "contact or lead without Shared Activities", ("RelationId",)))
            whos = self.who_relations(event["Id"]) + [row["RelationId"]]
            leads = [w for w in whos if w.startswith("00Q")]
            contacts = [w for w in whos if w.startswith("003")]
            if len(leads) > 1 or (leads and contacts):
                raise RecordFailed(RecordError("FIELD_INTEGRITY_EXCEPTION", "You can relate an event to one lead or "
                                               "up to 50 contacts, not both", ("RelationId",)))
            if len(contacts) > MAX_SHARED_CONTACTS:
                raise RecordFailed(RecordError("FIELD_INTEGRITY_EXCEPTION",
                                               "You can't relate more than 50 contacts to an event", ("RelationId",)))
            if leads and event.get("WhatId"):
                raise RecordFailed(RecordError("FIELD_INTEGRITY_EXCEPTION", "Related To ID: You can't relate an event "
                                               "to a lead and to another record at the same time",
                                               ("WhoId", "WhatId")))
            if event.get("IsPrivate"):
                raise RecordFailed(RecordError("FIELD_INTEGRITY_EXCEPTION", "You can't relate a private event to "
                                               "other records", ("IsPrivate",)))
        elif not row["IsInvitee"]:
            raise RecordFailed(RecordError("FIELD_INTEGRITY_EXCEPTION", "An event relation must be a Name or an "
                                           "invitee", ("IsParent", "IsInvitee")))

    def _relation_added(self, rel: Row) -> None:
        event = self.store.rows["event"][rel["EventId"]]
        if rel["IsParent"] and not rel["IsWhat"]:
            self._refresh_event_links(event, promote=rel["RelationId"] if not event.get("WhoId") else None)

    def relation_removed(self, rel: Row) -> None:
        event = self.store.rows["event"].get(rel["EventId"])
        if event is None or event["IsDeleted"]:
            return
        if rel["IsWhat"]:
            self.store.put("event", event["Id"], {**event, "WhatId": None, "WhatCount": 0,
                                                  "AccountId": self.account_of(event.get("WhoId"), None)})
        elif rel["IsParent"]:
            self._refresh_event_links(event, promote=None)

    def _refresh_event_links(self, event: Row, promote: str | None) -> None:
        whos = [r["RelationId"] for r in self.relations(event["Id"]) if r["IsParent"] and not r["IsWhat"]]
        who = event.get("WhoId")
        if promote:
            who = promote
        if who not in whos:
            who = whos[0] if whos else None  # deleting the Who's relation promotes another (B3)
        updated = {**event, "WhoId": who, "WhoCount": len(whos), "SystemModstamp": self.store.now(),
                   "AccountId": self.account_of(who, event.get("WhatId"))}
        self.store.put("event", event["Id"], updated)

    def deleted(self, obj: ObjectDef, record_id: str, row: Row, now: str) -> None:
        """What deleting an Event or an EventRelation does to the other."""
        if obj.name == "Event":
            # Deleting an event deletes its relations (reference B3, EventRelation).
            for rel_id in list(self.store.relations_by_event.get(record_id, ())):
                rel = self.store.rows["eventrelation"][rel_id]
                if not rel["IsDeleted"]:
                    self.store.put("eventrelation", rel_id, {**rel, "IsDeleted": True, "SystemModstamp": now})
        elif obj.name == "EventRelation":
            self.relation_removed(row)
