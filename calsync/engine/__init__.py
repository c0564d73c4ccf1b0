"""The engine: one sync cycle, from the calendars to Salesforce and the state.

cycle.py runs it: read each calendar's changes (changes.py; the mirror of Google items,
mirror.py; the sweep of Events whose meeting the mirror does not know, sweep.py), look the
attendees up in Salesforce (directory.py, identity.py), ask the rules (calsync.rules) what to
do, write to Salesforce, record it in the state. resync.py, parked.py (records Salesforce
refused), history.py (what became of them) and explain.py (why a meeting was or was not
logged) work on the same pieces.

Uses the adapters (calendar, salesforce, state) through their interfaces, and the rules;
never the service or the commands above it.
"""
