"""The calendar providers: where meetings come from.

`source.py` is the seam the engine depends on (a calendar source: changes since a cursor, a
meeting by id, watching for changes); `google/` implements it for Google Calendar v3. A second
provider is one more package beside `google/`, wired in calsync/service/runtime.py.

Imports only calsync.rules and calsync.core; never calsync.salesforce or calsync.state.
"""
