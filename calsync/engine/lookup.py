"""Looking a batch's people up in Salesforce: Contacts by rank, Leads, primary Opportunities.

The planner says whom it needs (`name_candidates`, `contacts_to_relate`); this asks Salesforce
in batched queries (reference C8) and returns the `Directory` it plans with. Most meetings'
first candidate is a Contact, which settles their Name, so the other attendees of only the
meetings it does not settle are asked about (decisions.py words what that leaves unknown).
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import replace

from calsync.core.model import Contact, Directory, MeetingCopy, PlanSettings
from calsync.rules.planner import contacts_to_relate, name_candidates
from calsync.salesforce.org import LeadsFound, SalesforceOrg

EMAIL_MAX = 80


def look_up(
    org: SalesforceOrg,
    settings: PlanSettings,
    copies: Sequence[MeetingCopy],
    users: Mapping[str, str],
) -> Directory:
    """Contacts by rank of candidate, Leads for the rest, Opportunities of the Names.

    Batched queries (reference C8). Most meetings' first candidate is a Contact, which
    settles their Name: only the meetings it does not settle get their other attendees
    looked up. Leads are asked for an external organizer who is not a Contact and for the
    attendees before a meeting's first Contact: a converted Lead counts as the Contact it
    became, and only a Lead lookup finds it.
    """
    ranks = name_candidates(copies, settings)
    contacts: dict[str, tuple[Contact, ...]] = {}
    asked: set[str] = set()

    def ask(addresses: Iterable[str]) -> None:
        # Salesforce Email fields hold at most 80 characters: a longer or unprintable
        # "address" cannot match and must not make a statement Salesforce refuses.
        wanted = {a for a in addresses if len(a) <= EMAIL_MAX and a.isprintable()} - asked
        asked.update(wanted)
        if wanted:
            contacts.update(org.find_contacts(sorted(wanted)))

    ask(r.first for r in ranks if r.first)
    # Shared Activities relate every Contact, so then every candidate is looked up.
    unsettled = [r for r in ranks if settings.shared_activities or r.first not in contacts]
    # An outside organizer who declined is no candidate, but whether they are a Contact or
    # Lead decides if their unanswered invitation is logged (planner.invited_as_wanted).
    hosts = {r.host for r in ranks if r.host}
    ask([*(a for r in unsettled for a in r.attendees), *hosts])
    lead_wanted = {r.organizer for r in unsettled if r.organizer and r.organizer not in contacts}
    for r in unsettled:
        # A converted Lead counts as the Contact it became (planner.name.contact_for), and
        # only a Lead lookup finds it: every attendee before the first Contact may be one
        # (with Shared Activities, which relates every Contact, every attendee may).
        if settings.shared_activities:
            lead_wanted.update(a for a in r.attendees if a not in contacts)
        else:
            lead_wanted.update(itertools.takewhile(lambda a: a not in contacts, r.attendees))
    lead_wanted = {a for a in lead_wanted | hosts if a in asked and a not in contacts}
    found = org.find_leads(sorted(lead_wanted)) if lead_wanted else LeadsFound()
    people = Directory(contacts=contacts, leads=found.leads, converted=found.converted, users=dict(users))
    names = sorted(contacts_to_relate(copies, people, settings))
    opportunities = org.find_primary_opportunities(names) if names else {}
    return replace(people, primary_opportunities=opportunities)
