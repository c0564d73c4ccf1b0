"""The emulated Workspace domain's users: adding one (with an empty calendar), renaming one.

A user's calendar holds a copy of every meeting that names them (copies.py), so both re-place
every meeting: a new user gets copies of the meetings that already invite them, a renamed one
keeps their calendar and every copy under the new address.
"""

from __future__ import annotations

from zoneinfo import ZoneInfo

from calsync.sandbox.google.bodies import readdressed
from calsync.sandbox.google.copies import Copies
from calsync.sandbox.google.domain import Calendar, Domain, User


class UserDirectory:
    """Users of one emulated Workspace domain, each owning the calendar named by their address."""

    def __init__(self, domain: Domain, copies: Copies) -> None:
        self.domain = domain
        self.copies = copies

    def add_user(
        self, email: str, display_name: str | None = None, time_zone: str = "UTC"
    ) -> User:
        """Add a domain user (with an empty calendar); meetings naming them get a copy."""
        ZoneInfo(time_zone)
        user = User(email.strip().lower(), display_name, time_zone)
        with self.domain.lock:
            self.domain.users[user.email] = user
            self.domain.calendars.setdefault(user.email, Calendar(user.email, self.domain.now()))
            for meeting in self.domain.meetings.values():
                self.copies.place(meeting)
        return user

    def rename_user(self, old: str, new: str) -> User:
        """A Workspace rename: the user's primary address becomes `new`.

        Google's "Impact on Google apps when changing a user's email address"
        (https://support.google.com/a/answer/2622985, Calendar): the user keeps their data, and
        "existing events and events that you create after you change the user's email, display
        the new email"; the old address stays as an alias. So the calendar is the same one, with
        the same items, ids and iCalUIDs, now named by the new address, and every organizer,
        creator and attendee entry carrying the old address carries the new one (the copies
        that change get new change numbers, as any edit). Not documented, and assumed here: a
        sync token issued before the rename is refused (400 Invalid Value, as the token of
        another calendar; calsync lists a renamed calendar in full anyway), and the old address
        no longer names a calendar or an account to impersonate.
        """
        old, new = old.strip().lower(), new.strip().lower()
        with self.domain.lock:
            if old not in self.domain.users:
                raise KeyError(f"no user {old!r}")
            if new in self.domain.users or new in self.domain.calendars:
                raise ValueError(f"{new!r} is taken")
            user = self.domain.users.pop(old)
            renamed = User(new, user.display_name, user.time_zone)
            self.domain.users[new] = renamed
            calendar = self.domain.calendars.pop(old)
            calendar.owner = new
            self.domain.calendars[new] = calendar
            for meeting in self.domain.meetings.values():
                meeting.body = readdressed(meeting.body, old, new)
                for occurrence in meeting.exceptions.values():
                    occurrence.changes = readdressed(occurrence.changes, old, new)
                if old in meeting.copy_fields:
                    meeting.copy_fields[new] = meeting.copy_fields.pop(old)
                if old in meeting.placed:
                    meeting.placed[new] = meeting.placed.pop(old)
                if not meeting.deleted:
                    self.copies.place(meeting)
        return renamed

    def is_user(self, email: str) -> bool:
        return email.strip().lower() in self.domain.users
