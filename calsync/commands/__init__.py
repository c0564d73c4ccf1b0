"""The operator commands: each module holds one command's logic and/or its click command, added
to the `calsync` group (group.py; cli.py imports them all and holds run, sync, sandbox, status,
doctor, resync and auth's click commands):

- status.py: `status` (the state read-only); monitoring.py: `status --check`;
- doctor.py: `doctor` (every check, one after another), and the warnings `check-config` shares;
- configuration.py: `check-config` (what `systemctl reload` runs before signalling the daemon);
- explain.py: `explain` (why a meeting was or was not logged; logic in engine/explain.py);
- retry.py: `retry` and `retry --drop` (records Salesforce refused; logic in engine/parked.py);
- state.py: `state copy` (a whole state between SQLite and PostgreSQL).
"""
