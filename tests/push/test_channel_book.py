"""ChannelBook's index by user agrees with a plain scan of every channel, whatever is put,
replaced and dropped (the keeper reads each user's channels every round)."""

from __future__ import annotations

import datetime as dt

from hypothesis import given
from hypothesis import strategies as st

from calsync.service.push import ChannelBook
from calsync.state.store import PushChannel

T0 = dt.datetime(2026, 11, 29, tzinfo=dt.timezone.utc)
USERS = ["a@x.test", "b@x.test", "c@x.test"]
IDS = [f"ch-{i}" for i in range(6)]

steps = st.lists(
    st.one_of(
        st.tuples(st.just("put"), st.sampled_from(IDS), st.sampled_from(USERS), st.integers(0, 9)),
        st.tuples(st.just("drop"), st.sampled_from(IDS)),
    ),
    max_size=40,
)


@given(steps)
def test_each_users_channels_are_those_a_scan_finds(ops):
    book, model = ChannelBook(), {}
    for op in ops:
        if op[0] == "put":
            _, cid, user, minute = op
            channel = PushChannel(cid, user, "tok", "https://x", None, None,
                                  T0 + dt.timedelta(minutes=minute))
            book.put(channel)
            model[cid] = channel
        else:
            book.drop(op[1])
            model.pop(op[1], None)
        for user in USERS:
            found = book.of(user)
            assert [c.opened_at for c in found] == sorted(c.opened_at for c in found)  # oldest first
            assert sorted(c.channel_id for c in found) == sorted(
                c.channel_id for c in model.values() if c.user == user)
    assert {c.channel_id for c in book.all()} == set(model)
