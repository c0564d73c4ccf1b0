"""calsync's exception tree and the exit codes the CLI maps it to.

    CalsyncError                 everything calsync raises to the CLI
    ├── ConfigError              the configuration is wrong: fix it (exit 78, EX_CONFIG)
    ├── StateError               the state database is unusable (unknown schema, locked) (exit 74)
    ├── AuthError                a credential was refused (exit 77, EX_NOPERM)
    ├── TransientError           network, 5xx, lock contention: retry later with backoff (exit 75)
    │   ├── NetworkError         no connection, DNS, TLS, timeout: names the host, cause, remedy
    │   └── QuotaExhausted       Salesforce REQUEST_LIMIT_EXCEEDED / Google quota: stop writing
    ├── SyncTokenExpired         Google said 410 fullSyncRequired: drop the token, full sync
    │   └── SyncTokenRefused     Google said 400 to the stored token: dropped the same way
    └── PermanentError           this record will not go through as is: skip it, report it

Adapters translate client-library errors into these at the edge (keeping the cause with
``raise ... from exc``); nothing outside the adapters imports the client libraries.
"""

from __future__ import annotations

# Exit codes follow sysexits.h, which systemd and operators already know.
EXIT_OK = 0
EXIT_FAILURE = 1  # a cycle ran but at least one calendar failed
EXIT_USAGE = 64
# Every calendar synced, but Salesforce refused at least one record (parked for retry).
# EX_DATAERR, "the input data was incorrect": a validation rule, a required field, a permission
# on one record; distinct from 1 (something unreachable, which retrying fixes by itself) so a
# wrapper or timer can tell "needs an admin to look at a record" from "an outage".
EXIT_REFUSED = 65
EXIT_STATE = 74
EXIT_TEMPFAIL = 75
EXIT_NOPERM = 77
EXIT_CONFIG = 78


class CalsyncError(Exception):
    """Base of every error calsync raises on purpose."""

    exit_code = EXIT_FAILURE


class ConfigError(CalsyncError):
    """The configuration is wrong; the message names the key."""

    exit_code = EXIT_CONFIG


class StateError(CalsyncError):
    """The state database cannot be used (unknown schema version, corrupt, locked)."""

    exit_code = EXIT_STATE


class AuthError(CalsyncError):
    """Google or Salesforce refused a credential. `remedy`: what an operator can do about it
    (already in the message; `doctor` shows it on its own line)."""

    exit_code = EXIT_NOPERM

    def __init__(self, message: str, remedy: str = "") -> None:
        super().__init__(message)
        self.remedy = remedy


class TransientError(CalsyncError):
    """Worth retrying later: network trouble, 5xx, UNABLE_TO_LOCK_ROW, rate limits."""

    exit_code = EXIT_TEMPFAIL


class NetworkError(TransientError):
    """No answer at the network level: refused connection, unknown host, TLS, timeout.

    The message names the host and the cause; `remedy` says what an operator can do about it
    (egress, proxy, `salesforce.ca_bundle`, the URL in the configuration).
    """

    def __init__(self, message: str, remedy: str = "") -> None:
        super().__init__(f"{message}; {remedy}" if remedy else message)
        self.remedy = remedy


class QuotaExhausted(TransientError):
    """The API allowance is spent (Salesforce REQUEST_LIMIT_EXCEEDED): stop writing this cycle."""


class SyncTokenExpired(CalsyncError):
    """Google answered 410 fullSyncRequired: the calendar needs a full sync."""


class SyncTokenRefused(SyncTokenExpired):
    """Google answered 400 to a listing with the stored sync token (damaged, or not Google's):
    the token is dropped like an expired one, after a warning, instead of failing every cycle."""


class PermanentError(CalsyncError):
    """One record cannot be written as it is (validation); skip it and report it."""

    def __init__(self, message: str, status_code: str | None = None) -> None:
        super().__init__(message)
        self.status_code = status_code
