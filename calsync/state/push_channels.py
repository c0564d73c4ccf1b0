"""The push notification channels calsync opened (`push_channels`, m006), kept across restarts.

Per channel: its id and secret token (the listener refuses a notification whose token differs),
the URL Google posts to, the watched resource (channels.stop needs it) and the expiration Google
granted; several rows per user while a renewal overlaps the old channel. Kept so that channels
a crashed daemon left open are known (and stopped or adopted) at the next start (push.py).

Functions of a `Connection` (a `StateStore`), as push.py and the commands call them.
One SQL for both engines (connection.py): `ON CONFLICT (channel_id) DO UPDATE`, the column
`"user"` quoted.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import Any

from calsync.state.connection import Connection, iso, parse_time
from calsync.state.records import PushChannel


def _push_channel(row: Mapping[str, Any]) -> PushChannel:
    return PushChannel(
        channel_id=row["channel_id"], user=row["user"], token=row["token"],
        address=row["address"], resource_id=row["resource_id"],
        expires_at=parse_time(row["expires_at"]),
        opened_at=parse_time(row["opened_at"]) or dt.datetime.now(dt.timezone.utc),
    )


def push_channels(store: Connection, user: str | None = None) -> list[PushChannel]:
    """The channels recorded (of one user), oldest first."""
    sql = "SELECT * FROM push_channels"
    params: list[Any] = []
    if user is not None:
        sql += " WHERE \"user\" = ?"
        params.append(user)
    return [_push_channel(r) for r in store.rows(sql + " ORDER BY opened_at, channel_id", params)]


def save_push_channel(store: Connection, channel: PushChannel) -> None:
    with store.transaction():
        store.exec(
            "INSERT INTO push_channels (channel_id, \"user\", token, address, resource_id,"
            " expires_at, opened_at) VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (channel_id)"
            " DO UPDATE SET \"user\" = excluded.\"user\", token = excluded.token,"
            " address = excluded.address, resource_id = excluded.resource_id,"
            " expires_at = excluded.expires_at, opened_at = excluded.opened_at",
            [channel.channel_id, channel.user, channel.token, channel.address,
             channel.resource_id, iso(channel.expires_at) if channel.expires_at else None,
             iso(channel.opened_at)],
        )


def forget_push_channel(store: Connection, channel_id: str) -> None:
    with store.transaction():
        store.exec("DELETE FROM push_channels WHERE channel_id = ?", [channel_id])
