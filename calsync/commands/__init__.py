"""Operator commands in modules of their own, each added to the `calsync` group (cli.py):

- configuration.py: `check-config` (what `systemctl reload` runs before signalling the daemon);
- explain.py: `explain` (why a meeting was or was not logged; logic in calsync/explain.py);
- retry.py: `retry` and `retry --drop` (records Salesforce refused; logic in calsync/parked.py).
"""
