"""The rules: what calsync decides, as pure functions of plain data (no clock, no I/O).

- planner/: for each changed meeting copy, the one operation to do (Create, Update, Delete,
  Skip): which meetings count, the first occurrence of a series, the Name, Related To and the
  Event's values;
- ownership.py: which fields of an Event are calsync's and which a person changed;
- duplicates.py: which Events are the same meeting written twice;
- landed.py: which Event that landed is whose, when a create's answer was lost;
- recurrence.py: RRULE/RDATE/EXDATE, the first occurrence;
- sftext.py: text as Salesforce stores it (trimmed, "" as null, UTF-16 lengths).

Imports only calsync.core. Most rule tests call these with plain data (tests/planner/).
"""
