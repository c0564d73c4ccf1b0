"""Which Events are duplicates of a meeting's Event (calsync/duplicates.py), on plain data."""

from __future__ import annotations

from calsync.rules.duplicates import Anchor, find, signature

ALICE = "005000000000001"
BOB = "005000000000002"
WHO = "003000000000001"


def event(n: int, *, owner: str = ALICE, subject: str = "Renewal", start: str = "2026-12-01T10:00:00.000+0000",
          created: str | None = None, **more: object) -> dict:
    return {"Id": f"00U00000000{n:04d}AAA", "OwnerId": owner, "Subject": subject, "StartDateTime": start,
            "IsAllDayEvent": False, "ActivityDate": None, "WhoId": WHO,
            "CreatedDate": created or f"2026-11-0{n % 9 + 1}T00:00:00.000+0000", **more}


def ids(found):
    return sorted(d.sf_id for d in found.duplicates)


def test_copies_of_the_recorded_event_are_duplicates_and_the_recorded_one_is_kept():
    recorded, older_copy, newer_copy = event(5), event(1), event(7)
    found = find([recorded, older_copy, newer_copy], [Anchor("k1", "alice", recorded["Id"])], {recorded["Id"][:15]: "k1"})
    assert ids(found) == sorted([older_copy["Id"], newer_copy["Id"]])
    assert {d.keep for d in found.duplicates} == {recorded["Id"]} and not found.adopt


def test_without_a_recorded_event_the_oldest_is_taken_over_and_the_rest_are_duplicates():
    a, b, c = event(3), event(1), event(2)
    body = {k: v for k, v in a.items() if k not in ("Id", "CreatedDate")}
    found = find([a, b, c], [Anchor("k1", "alice", None, body)], {})
    assert found.adopt == {"k1": b["Id"]}
    assert ids(found) == sorted([a["Id"], c["Id"]])


def test_an_event_another_meeting_records_is_never_a_duplicate():
    mine, theirs = event(1), event(2)  # two meetings that look alike: same owner, start, subject, Name
    claims = {mine["Id"][:15]: "k1", theirs["Id"][:15]: "k2"}
    found = find([mine, theirs], [Anchor("k1", "alice", mine["Id"]), Anchor("k2", "alice", theirs["Id"])], claims)
    assert found.duplicates == ()


def test_two_meetings_alike_about_to_be_created_take_one_event_each():
    a, b = event(1), event(2)
    body = {k: v for k, v in a.items() if k not in ("Id", "CreatedDate")}
    found = find([a, b], [Anchor("k1", "alice", None, body), Anchor("k2", "alice", None, body)], {})
    assert sorted(found.adopt.values()) == sorted([a["Id"], b["Id"]]) and found.duplicates == ()


def test_other_owner_subject_start_or_name_are_other_meetings():
    recorded = event(1)
    others = [event(2, owner=BOB), event(3, subject="Renewal (2)"), event(4, start="2026-12-01T10:30:00.000+0000"),
              event(5, WhoId="003000000000009")]
    found = find([recorded, *others], [Anchor("k1", "alice", recorded["Id"])], {recorded["Id"][:15]: "k1"})
    assert found.duplicates == ()


def test_a_recorded_event_outside_the_listing_decides_nothing():
    listed = event(2)
    found = find([listed], [Anchor("k1", "alice", event(1)["Id"])], {event(1)["Id"][:15]: "k1"})
    assert found.duplicates == () and not found.adopt


def test_with_an_external_id_events_with_one_key_are_duplicates_whatever_their_fields():
    recorded = event(4, Key__c="k1")
    moved = event(1, Key__c="k1", start="2026-12-02T10:00:00.000+0000")
    unplanned = [event(2, Key__c="k9"), event(3, Key__c="k9")]
    found = find([recorded, moved, *unplanned], [Anchor("k1", "alice", recorded["Id"])],
                 {recorded["Id"][:15]: "k1"}, key_field="Key__c", users={ALICE: "alice"})
    by_key = {d.key: d for d in found.duplicates}
    assert by_key["k1"].sf_id == moved["Id"] and by_key["k1"].keep == recorded["Id"]
    assert by_key["k9"].keep == unplanned[0]["Id"] and by_key["k9"].sf_id == unplanned[1]["Id"]  # the oldest kept


def test_signature_reads_salesforce_and_calsync_forms_alike():
    listed = {"OwnerId": ALICE + "AAA", "Subject": "S", "WhoId": WHO, "IsAllDayEvent": False,
              "StartDateTime": "2026-12-01T10:00:00.000+0000"}
    written = {"OwnerId": ALICE, "Subject": "S", "WhoId": WHO + "AAA", "IsAllDayEvent": False,
               "StartDateTime": "2026-12-01T10:00:00Z"}
    assert signature(listed) == signature(written)


# -- Events recorded under an older key of the same (Salesforce owner, meeting) ------------------

from calsync.rules import ownership  # noqa: E402
from calsync.rules.duplicates import superseded  # noqa: E402
from calsync.core.model import Written  # noqa: E402


def row(key: str, sf_id: str, **changes: object) -> Written:
    body = {"Subject": "Renewal", "Description": "Agenda"}
    return Written(key, "alice", "uid-1", sf_id, "fp", hashes=ownership.hashes(body), **changes)


def live(n: int, **fields: object) -> dict:
    return {**event(n), "Description": "Agenda", **fields}


def test_an_event_under_an_older_key_is_a_duplicate_of_the_meetings_own_event():
    keep, extra = live(1), live(2)
    current = {keep["Id"][:15]: keep, extra["Id"][:15]: extra}
    found = superseded([("k-now", "alice", keep["Id"], ["k-old"])], {"k-old": row("k-old", extra["Id"])}, current)
    (d,) = found.duplicates
    assert (d.sf_id, d.keep, d.forget) == (extra["Id"], keep["Id"], "k-old")
    assert not found.kept and not found.gone


def test_one_a_person_changed_is_kept_and_reported_not_deleted():
    keep, extra = live(1), live(2, Description="call notes")
    current = {keep["Id"][:15]: keep, extra["Id"][:15]: extra}
    found = superseded([("k-now", "alice", keep["Id"], ["k-old"])], {"k-old": row("k-old", extra["Id"])}, current)
    assert not found.duplicates
    (k,) = found.kept
    assert k.sf_id == extra["Id"] and k.fields == {"Description"}


def test_nothing_goes_while_the_meetings_own_event_is_missing():
    extra = live(2)
    rows = {"k-old": row("k-old", extra["Id"])}
    for keep in (None, live(1)["Id"]):  # no Event recorded, or one deleted in Salesforce
        found = superseded([("k-now", "alice", keep, ["k-old"])], rows, {extra["Id"][:15]: extra})
        assert found == superseded([], {}, {})


def test_a_row_whose_event_is_gone_or_is_the_kept_one_is_only_forgotten():
    keep = live(1)
    rows = {"k-gone": row("k-gone", live(3)["Id"]), "k-same": row("k-same", keep["Id"]),
            "k-flight": row("k-flight", None)}
    found = superseded([("k-now", "alice", keep["Id"], list(rows))], rows, {keep["Id"][:15]: keep})
    assert not found.duplicates and not found.kept
    assert sorted(found.gone) == ["k-gone", "k-same"]  # a create in flight is reconciled first
