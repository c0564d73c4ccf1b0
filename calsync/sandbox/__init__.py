"""Emulators of Google Calendar v3 and the Salesforce REST API, served on loopback.

`calsync sandbox` starts both with a demo company; tests start them on ephemeral ports.
"""
