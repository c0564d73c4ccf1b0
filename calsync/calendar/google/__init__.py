"""Google Calendar v3 through google-api-python-client: the calendar source calsync ships.

api.py (listings with sync tokens, events by id and iCalUID, watch/stop, what Google's items
mean as calsync's model), clients.py (the per-process Google objects: credentials, one API
client, connections per thread), errors.py (what Google's refusals mean), quota.py (Google's
per-minute budget), auth.py (`calsync auth google`, the installed-app consent).
"""
