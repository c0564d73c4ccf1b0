"""The commented example configuration: what the install (systemd/README.md) starts from.

Every key calsync reads (but `scopes`), with its default or a typical value and what it does;
tests/config checks that it loads and that it mentions every key `config.py` knows.
"""

from __future__ import annotations

_EXAMPLE = '''\
# calsync configuration (TOML). Unknown keys are refused; `calsync doctor` checks the rest.
# Relative paths are resolved against this file's directory; "~" is expanded.

[sync]
# The Google Workspace users whose calendars are synced (required).
users = ["alice@acme.test", "bob@acme.test"]
# Attendees at these domains are colleagues, not customers (default: the domains of `users`).
internal_domains = ["acme.test"]
# Attendees never treated as customers (glob patterns, case-insensitive).
exclude = ["*@resource.calendar.google.com", "noreply@*"]
# How far back the first sync reaches, and how often calsync polls.
lookback_days = 30
interval_minutes = 40
# "skip": private meetings are not logged; "sync": logged as "Private meeting", without details.
private_events = "skip"
# Optional custom Date/Time Activity field that receives the meeting's start.
activity_datetime_field = "Calsync_Activity_DateTime__c"
# Calendars fetched in parallel (1-16). lookback_days is 0-3650, interval_minutes 1-1440.
concurrency = 4
# Reserved: relate one Event to several Contacts (Shared Activities). Not used yet.
shared_activities = false
# How often to ask Salesforce which Contacts, Leads and Opportunities changed, and re-plan the
# meetings they affect (minutes, 0 = every cycle, at most 10080 = a week).
directory_refresh_minutes = 60

# For users whose Salesforce login differs from their Google address:
# [sync.user_map]
# "bob@acme.test" = "bob.smith@acme.test"   # Salesforce username, or a User Id (005...)

[state]
path = "/var/lib/calsync/state.db"

[google]
# Domain-wide delegation: a service-account key file (its token_uri is honoured). "%d/" is the
# credentials directory: $CREDENTIALS_DIRECTORY under systemd (LoadCredential=), else the
# credential store /etc/credstore/calsync (systemd/README.md).
service_account_file = "%d/google_service_account.json"
# Or the installed-app flow, one refresh token per user (`calsync auth google`):
# oauth_client_file = "/etc/calsync/google-oauth-client.json"
# token_dir = "/var/lib/calsync/google-tokens"
# Optional: another Calendar API base URL (e.g. the sandbox emulator).
# api_endpoint = "http://127.0.0.1:8701/"
# Seconds each Calendar request may take to connect, and again to answer (1-600).
timeout_seconds = 60
# Google Calendar's per-minute quotas as Google granted them to the project (10,000 per
# project, 600 per user by default), and the share of both this calsync may use (0.01-1).
requests_per_minute = 10000
requests_per_minute_per_user = 600
request_share = 0.8
# Optional push notifications: Google posts to push_url (public, HTTPS, a reverse proxy in
# front of calsync) and the proxy forwards to push_listen. Polling goes on as a safety net.
# push_url = "https://calsync.example.com/google/notify"
# push_listen = "127.0.0.1:8790"
# push_channel_hours = 168      # channel lifetime asked of Google (1-720); renewed before expiry

[salesforce]
instance_url = "https://acme.my.salesforce.com"
# "jwt" (a daemon's credential: it does not expire), "password" or "access_token" (trials only:
# the token dies with its session, and a new one needs a restart).
auth = "jwt"
# auth = "jwt": a connected app with a certificate, pre-authorized for the user.
login_url = "https://login.salesforce.com"
consumer_key = "3MVG9..."
private_key_file = "%d/salesforce_jwt.key"
username = "calsync@acme.test"
#
# auth = "access_token": prefer the environment variable CALSYNC_SALESFORCE_ACCESS_TOKEN or the
# systemd credential salesforce_access_token (LoadCredential=) over writing the token here.
# access_token = "00D...!AQ..."
#
# auth = "password": client_secret, password and security_token may also come from
# CALSYNC_SALESFORCE_CLIENT_SECRET / _PASSWORD / _SECURITY_TOKEN or systemd credentials.
# client_id = "3MVG9..."
# username = "calsync@acme.test"
#
# Optional: extra CA certificates to trust.
# ca_bundle = "/etc/calsync/ca.pem"
api_version = "59.0"
# Optional Event External ID field: when set, every write is an upsert on it.
# external_id_field = "Calsync_Key__c"
# calsync stops writing when the org's remaining daily API calls fall below this.
daily_call_budget = 1000
# Seconds to connect (1-120) and to wait for each answer (1-600), every Salesforce request.
connect_timeout_seconds = 10
read_timeout_seconds = 120

[log]
format = "text"   # or "json"
level = "info"    # "debug", "info", "warning", "error"

[metrics]
# Prometheus metrics: a node_exporter textfile rewritten after each cycle, and/or an HTTP
# listener of the daemon (`calsync run`). Both optional.
# textfile = "/var/lib/prometheus/node-exporter/calsync.prom"
# listen = "127.0.0.1:9464"
'''


def example_toml() -> str:
    """A commented example configuration (systemd/README.md); it loads as is where a credentials
    directory exists ($CREDENTIALS_DIRECTORY, or the credential store)."""
    return _EXAMPLE
