"""Every HTTP call has a connect and a read timeout: an answer that never comes stalls nothing.

The emulators hold the answer (fault `delay`) far longer than the configured timeout. A create
whose answer is lost that way is the crash-safety case: its intent stays, it is not sent again,
and the next run adopts the Event that landed.
"""

from __future__ import annotations

import time
from collections import Counter

from calsync.sandbox.server import Fault

COLLECTIONS = "/services/data/v59.0/composite/sobjects"


def posts(sf_emu):
    return sum(1 for method, path in list(sf_emu.requests_seen) if method == "POST" and path.startswith(COLLECTIONS))


def test_a_create_answered_too_late_is_a_lost_answer_reconciled_next_run(make_config, sync, sf_emu):
    path = make_config(salesforce={"external_id_field": None, "read_timeout_seconds": 1})
    # Salesforce performs the create, but answers long after calsync stopped waiting.
    sf_emu.faults.add(Fault(delay=4, method="POST", path_prefix=COLLECTIONS))
    began = time.monotonic()
    result = sync(path)
    took = time.monotonic() - began
    assert took < 3.5, took  # the late answer was not awaited in full
    assert not result.ok
    errors = {c.error for c in result.calendars.values() if not c.ok}
    assert any("did not answer within 1 s (read_timeout_seconds)" in (e or "") for e in errors), errors
    assert posts(sf_emu) == 1  # never retried blindly
    time.sleep(4.5 - took)  # the held create lands
    assert len(sf_emu.backend.list_records("Event")) == 7
    again = sync(path)
    assert again.ok, {u: c.error for u, c in again.calendars.items()}
    rows = sf_emu.backend.list_records("Event")
    assert len(rows) == 7 and max(Counter((r["Subject"], r["OwnerId"]) for r in rows).values()) == 1
    assert posts(sf_emu) == 1  # adopted, not created again


def test_a_salesforce_login_that_never_answers_fails_the_cycle_in_time(make_config, sync, sf_emu):
    sf_emu.backend.register_connected_app("calsync-app", None, consumer_secret="s3cret-client")
    sf_emu.backend.set_password("alice@acme.test", "pa55word-long")
    path = make_config(salesforce={
        "auth": "password", "access_token": None, "login_url": sf_emu.url, "client_id": "calsync-app",
        "client_secret": "s3cret-client", "username": "alice@acme.test", "password": "pa55word-long",
        "read_timeout_seconds": 1,
    })
    sf_emu.faults.add(Fault(delay=5, method="POST", path_prefix="/services/oauth2/token"))
    began = time.monotonic()
    result = sync(path)
    assert time.monotonic() - began < 3
    assert not result.ok
    assert all("did not answer within 1 s" in (c.error or "") for c in result.calendars.values())


def test_a_google_listing_that_never_answers_is_given_up_and_retried(make_config, sync, google_emu):
    path = make_config(google={"timeout_seconds": 1})
    google_emu.faults.add(Fault(delay=6, method="GET", path_prefix="/calendars/"))
    began = time.monotonic()
    result = sync(path)
    took = time.monotonic() - began
    # The first listing timed out after 1 s; google-api-python-client's own retry then answered.
    assert result.ok, {u: c.error for u, c in result.calendars.items()}
    assert 1 <= took < 5, took
