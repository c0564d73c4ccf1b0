"""The service: calsync as a long-running systemd daemon, and what wires it together.

daemon.py (the scheduler, calendars run at their interval, reload and shutdown), push.py
(Google push channels and their listener), listener.py (the HTTP listeners within limits),
metrics.py and health.py (Prometheus), notify.py (sd_notify), backoff.py, handoff.py and
admin.py (operator requests carried out by the running daemon), runtime.py (builds a cycle from
the configuration: the one place that picks the adapters).

Used by the commands; uses the engine and everything below it.
"""
