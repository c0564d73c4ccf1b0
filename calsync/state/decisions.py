"""The last decision the planner made for each meeting, and why (`decisions`, m005), for `explain`.

Per (user, iCalUID), in the plain data `explain.py` builds (people, Name, Related To, the rule
that skipped it), so `calsync explain` answers offline; replaced at each planning of the
meeting. `subject_folded`: the subject casefolded, for `explain --subject` (SQLite's LIKE folds
ASCII only); `event_id`: the Google id of the single event or series master.

One SQL for both engines (connection.py): `ON CONFLICT ... DO UPDATE` where SQLite once had
`INSERT OR REPLACE`, a `LIKE` with its wildcards escaped for the subject search (no `instr`),
the column `"user"` quoted.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterable

from calsync.state.connection import Connection, iso, parse_time
from calsync.state.records import StoredDecision


class Decisions:
    """The `decisions` table."""

    def __init__(self, db: Connection) -> None:
        self.db = db

    def record_decisions(self, decisions: Iterable[StoredDecision]) -> None:
        """Replace the stored decision of each meeting, in one transaction."""
        decisions = list(decisions)
        if not decisions:
            return
        with self.db.transaction():
            for d in decisions:
                self.db.exec(
                    "INSERT INTO decisions (\"user\", ical_uid, event_id, subject,"
                    " subject_folded, start, action, reason, decided_at, detail)"
                    " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (\"user\", ical_uid)"
                    " DO UPDATE SET event_id = excluded.event_id, subject = excluded.subject,"
                    " subject_folded = excluded.subject_folded, start = excluded.start,"
                    " action = excluded.action, reason = excluded.reason,"
                    " decided_at = excluded.decided_at, detail = excluded.detail",
                    [d.user, d.ical_uid, d.event_id, d.subject,
                     d.subject.casefold() if d.subject else None,
                     iso(d.start) if d.start else None, d.action, d.reason, iso(d.decided_at),
                     json.dumps(d.detail, separators=(",", ":"))],
                )

    def decisions(
        self,
        user: str,
        *,
        ical_uids: Iterable[str] | None = None,
        event_id: str | None = None,
        subject: str | None = None,
        since: dt.datetime | None = None,
    ) -> list[StoredDecision]:
        """Stored decisions of `user`'s meetings: by iCalUID, by event id, or whose subject
        contains `subject` (case-insensitive) and starts at or after `since`; by start."""
        sql, params = "SELECT * FROM decisions WHERE \"user\" = ?", [user]
        if ical_uids is not None:
            uids = sorted(set(ical_uids))
            if not uids:
                return []
            sql += f" AND ical_uid IN ({','.join('?' * len(uids))})"
            params += uids
        if event_id is not None:
            sql += " AND event_id = ?"
            params.append(event_id)
        if since is not None:
            sql += " AND start >= ?"
            params.append(iso(since))
        if subject is not None:  # in SQL: only the matching rows are read whole and parsed
            # LIKE with the pattern's own wildcards escaped: a substring test both engines
            # share (SQLite's instr, PostgreSQL's strpos). Both sides are casefolded already.
            sql += " AND COALESCE(subject_folded, '') LIKE ? ESCAPE '\\'"
            params.append("%" + _like_escaped(subject.casefold()) + "%")
        rows = self.db.rows(sql + " ORDER BY start, ical_uid", params)
        return [
            StoredDecision(
                user=r["user"], ical_uid=r["ical_uid"], event_id=r["event_id"],
                subject=r["subject"], start=parse_time(r["start"]), action=r["action"],
                reason=r["reason"], decided_at=parse_time(r["decided_at"]) or dt.datetime.min,
                detail=json.loads(r["detail"]),
            )
            for r in rows
        ]


def _like_escaped(text: str) -> str:
    """`text` matched literally by LIKE ... ESCAPE '\\' (its `%`, `_` and `\\` escaped)."""
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
