"""Lead conversion (convertLead): a Lead becomes an Account, a Contact and optionally an
Opportunity, and the Lead's Events move to what it became (reference B10, "Lead conversion").
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from calsync.sandbox.salesforce.errors import RecordError, RecordFailed
from calsync.sandbox.salesforce.event_rules import EventRules
from calsync.sandbox.salesforce.field_rules import FieldRules
from calsync.sandbox.salesforce.identity import Identity
from calsync.sandbox.salesforce.store import OrgStore, Row
from calsync.sandbox.salesforce.writes import RecordWriter


class LeadConversion:
    """convertLead(), written through the one write path in one transaction."""

    def __init__(self, store: OrgStore, writer: RecordWriter, fields: FieldRules, events: EventRules,
                 identity: Identity) -> None:
        self.store = store
        self.writer = writer
        self.fields = fields
        self.events = events
        self.identity = identity

    def convert_lead(self, lead_id: str, *, account_id: str | None = None, contact_id: str | None = None,
                     opportunity_name: str | None = None,
                     converted_status: str = "Closed - Converted",
                     user_id: str | None = None) -> dict[str, str | None]:
        """convertLead(): the Lead becomes an Account, a Contact and optionally an Opportunity.

        As Salesforce does it (https://developer.salesforce.com/docs/atlas.en-us.api.meta/
        object_ref/sforce_api_calls_convertlead.htm; the fields: Change Events for Lead
        Conversion): a new Account named after the Company unless `account_id` is given, a new
        Contact with the Lead's name and email unless `contact_id` is given (an existing Contact
        only gets its empty fields filled), with `opportunity_name` a new Opportunity whose
        primary contact role is the Contact; then the Lead is updated: IsConverted, Status,
        ConvertedDate and the Converted*Id fields; and the Lead's Events move (`_move_activities`).
        One transaction; every record written gets a new SystemModstamp, and is last modified by
        the converting user (`user_id`, a person; default the org's admin). Returns the ids
        {"account", "contact", "opportunity"}.
        """
        with self.store.lock:
            lead_obj = self.store.object("Lead")
            lead = self.store.lookup_for_rest("Lead", lead_id)
            if lead["IsConverted"]:
                raise RecordFailed(RecordError("CANNOT_UPDATE_CONVERTED_LEAD",
                                               "cannot reference converted lead"))
            user_id = self.identity.user(user_id)["Id"] if user_id else self.store.default_user_id
            with self.store.transaction():
                ids = self._convert(lead, account_id, contact_id, opportunity_name, user_id)
                today = self.store.clock.now().astimezone(dt.timezone.utc).date()
                self.writer.update(lead_obj, lead["Id"], {
                    "IsConverted": True, "Status": converted_status, "ConvertedDate": today.isoformat(),
                    "ConvertedAccountId": ids["account"], "ConvertedContactId": ids["contact"],
                    "ConvertedOpportunityId": ids["opportunity"],
                }, user_id=user_id, system=True)
                made = ids["opportunity"] or (ids["account"] if not account_id else None)
                self._move_activities(lead["Id"], str(ids["contact"]), made, user_id)
            return ids

    def _move_activities(self, lead_id: str, contact_id: str, what_id: str | None, user_id: str) -> None:
        """The converted Lead's Events go to what it became (reference B10, "Lead conversion";
        Salesforce Help, "Considerations for Converting Leads" and knowledge article 000385227):
        the Name (WhoId, and with Shared Activities its Who EventRelation) from the Lead to the
        Contact, Related To (WhatId) to the new Opportunity, else to the Account where one was
        made. Last Modified By and Date change on each Event moved: the converting user."""
        event_obj = self.store.object("Event")
        for event in list(self.store.rows["event"].values()):
            if event["IsDeleted"]:
                continue
            whos = self.events.who_relations(event["Id"]) if self.store.shared_activities else []
            if event.get("WhoId") != lead_id and lead_id not in whos:
                continue
            changes: dict[str, Any] = {"WhoId": contact_id}
            if what_id and not event.get("WhatId"):
                changes["WhatId"] = what_id  # a Lead Name takes no Related To (reference B3)
            self.writer.update(event_obj, event["Id"], changes, user_id=user_id, system=True)

    def _convert(self, lead: Row, account_id: str | None, contact_id: str | None,
                 opportunity_name: str | None, user_id: str | None = None) -> dict[str, str | None]:
        account_obj, contact_obj = self.store.object("Account"), self.store.object("Contact")
        if account_id:
            account = self.fields.check_reference(contact_obj, contact_obj.fields["accountid"], account_id)
        else:
            account = self.writer.insert(account_obj, {"Name": lead.get("Company") or lead["LastName"]},
                                   user_id=user_id, system=True)
        person = {"FirstName": lead.get("FirstName"), "LastName": lead["LastName"], "Email": lead.get("Email"),
                  "Phone": lead.get("Phone"), "AccountId": account}
        if contact_id:
            existing = self.store.lookup_for_rest("Contact", contact_id)
            # Merging into an existing Contact fills only its empty fields (convertLead, Usage).
            filled = {k: v for k, v in person.items() if v is not None and existing.get(k) in (None, "")}
            self.writer.update(contact_obj, existing["Id"], filled, user_id=user_id, system=True)
            contact = existing["Id"]
        else:
            contact = self.writer.insert(contact_obj, person, user_id=user_id, system=True)
        opportunity = None
        if opportunity_name:
            close = self.store.clock.now().astimezone(dt.timezone.utc).date() + dt.timedelta(days=30)
            opportunity = self.writer.insert(self.store.object("Opportunity"), {
                "Name": opportunity_name, "AccountId": account, "StageName": "Prospecting",
                "CloseDate": close.isoformat()}, user_id=user_id, system=True)
            self.writer.insert(self.store.object("OpportunityContactRole"), {
                "OpportunityId": opportunity, "ContactId": contact, "IsPrimary": True},
                user_id=user_id, system=True)
        return {"account": account, "contact": contact, "opportunity": opportunity}
