"""The Related To (WhatId) rule for the Event of a synced meeting.

When the Name is a Contact: an Opportunity on which that Contact has a primary
OpportunityContactRole — open ones before closed ones, then the latest CloseDate, then the
lowest Id — else the Contact's Account, else nothing. When the Name is a Lead, WhatId stays
empty: Salesforce refuses a WhatId with a Lead WhoId (reference B3, C9).
"""

from __future__ import annotations

from collections.abc import Iterable

from calsync.core.model import Contact, Directory, Opportunity
from calsync.rules.planner.name import Name


def best_opportunity(opportunities: Iterable[Opportunity]) -> Opportunity | None:
    """Open before closed, then the latest close date (none last), then the lowest Id."""
    ranked = sorted(opportunities, key=lambda opp: opp.id)
    # Python's sort is stable, also with reverse=True: each pass keeps the previous order
    # among ties, so the last pass (open first) is the strongest key.
    ranked = sorted(ranked, key=lambda opp: opp.close_date or "", reverse=True)
    ranked = sorted(ranked, key=lambda opp: opp.is_closed)
    return ranked[0] if ranked else None


def related_to(name: Name, directory: Directory) -> str | None:
    """The WhatId for an Event naming `name`."""
    contact = name.record
    if not isinstance(contact, Contact):
        return None  # a Lead Who takes no What (reference B3)
    opportunity = best_opportunity(directory.primary_opportunities.get(contact.id, ()))
    if opportunity is not None:
        return opportunity.id
    return contact.account_id or None
