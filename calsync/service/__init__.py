"""The service: calsync as a long-running systemd daemon, and what wires it together.

daemon.py (the facade: start, reload, stop, the main loop) over scheduling.py (APScheduler jobs,
intervals, backoff), runs.py (a calendar's run on a pool thread), board.py (each calendar's
status, shared under one lock), health.py (STATUS=, the watchdog, when metrics publish),
push_runs.py and push.py (Google push channels and their listener), admin_jobs.py, handoff.py
and admin.py (operator requests carried out by the running daemon); listener.py (the HTTP
listeners within limits), metrics.py and gauges.py (Prometheus), notify.py (sd_notify);
runtime.py builds a cycle from the configuration: the one place that picks the adapters.

Used by the commands; uses the engine and everything below it.
"""
