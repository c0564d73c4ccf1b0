"""What Google's refusals mean for an operator: the likely cause, the remedy, Google's own words.

A Google Workspace admin meets these when a calendar fails (the log, `status`, `doctor`):

| Google says | likely cause | remedy |
|---|---|---|
| token: `unauthorized_client` | domain-wide delegation missing for the service account, or not for calsync's scope (reference A9; new grants take up to 24 h) | Admin console → Security → Access and data control → API controls → Manage Domain Wide Delegation: the numeric client ID with the scopes |
| token: `invalid_grant` "Invalid email or User ID" | no such user in the domain (a typo, a group or alias, a deleted user) or one that cannot sign in (suspended) (A9) | check the address in the Admin console, or remove it from `[sync] users` |
| token: `invalid_grant` "Invalid JWT Signature." / a timeframe | the key was deleted or replaced / this machine's clock is off (A9) | a current key / `timedatectl` |
| token: `invalid_grant` (installed app) | the refresh token was revoked (A9) | `calsync auth google USER` again |
| token: `access_denied`, `invalid_scope` | the scope was not granted (A9) | the delegation's scopes |
| 401 `authError` | the access token was refused after it was issued (A7) | usually passes with a new token; if not, the key or the user |
| 403 `insufficientPermissions` | the token lacks the Calendar scope (the delegation or consent lists other scopes) | the delegation's scopes / `calsync auth google` |
| 403 `accessNotConfigured` | the Google Calendar API is not enabled in the key's Cloud project (answered as `usageLimits`/`accessNotConfigured`, "Google Calendar API has not been used in project N before or it is disabled": googleworkspace/python-samples#17, taylorwilsdon/google_workspace_mcp#126) | enable it: APIs & Services → Library → Google Calendar API |
| 403 `forbidden` | the user may not use Calendar (the service is off for their organizational unit) or is suspended | the user in the Admin console |
| 404 `notFound` on `primary` | the address has no calendar these credentials can read: not a user of the domain, or Calendar off | the address in `[sync] users` |

Each message ends with Google's own status, reason and message (redacted and cut, `logs.excerpt`),
so what Google said is never lost behind calsync's reading of it.
"""

from __future__ import annotations

from collections.abc import Sequence

from calsync.core import logs

ADMIN_DELEGATION = ("Google Admin console → Security → Access and data control → API controls →"
                    " Manage Domain Wide Delegation")
USERS = "Google Admin console → Directory → Users"


def calendar_refusal(
    status: int, reason: str, message: str, user: str, *, mode: str, scopes: Sequence[str],
) -> tuple[str, str]:
    """(what happened, what to do) for a Calendar API answer 401, 403 (not a rate limit) or 404."""
    said = _said(f"{status} {reason}".strip(), message)
    scope_list = ", ".join(scopes)
    consent = (f"run `calsync auth google {user}` again and grant Calendar access"
               if mode == "installed_app" else
               f"in the {ADMIN_DELEGATION}, give the service account's numeric client ID the"
               f" scopes {scope_list} (a new grant can take up to 24 h)")
    if status == 401:
        return (f"Google refused the access token for {user}'s calendar ({said})",
                "this usually passes with the next token; if it stays, the service-account key was"
                f" deleted or the user changed: check the key (calsync doctor) and {user} in the {USERS}")
    if reason == "accessNotConfigured" or "has not been used in project" in message:
        return (f"the Google Calendar API is not enabled in the Google Cloud project of calsync's"
                f" credentials ({said})",
                "enable it: Google Cloud console → APIs & Services → Library → Google Calendar API"
                " → Enable, in the project of the service-account key (or OAuth client), then wait"
                " a few minutes")
    if status == 403 and reason in ("insufficientPermissions", "ACCESS_TOKEN_SCOPE_INSUFFICIENT"):
        return (f"Google Calendar refused {user}'s calendar: the credentials lack the Calendar"
                f" scope ({said})", consent)
    if status == 403:
        return (f"Google Calendar refused {user}'s calendar: the user may not use Google Calendar"
                f" (the Calendar service is off for their organizational unit, or the user is"
                f" suspended) or the delegation does not cover it ({said})",
                f"check {user} in the {USERS} (active, Calendar on for their organizational unit);"
                f" {consent}")
    if status == 404:
        return (f"{user} has no Google Calendar these credentials can read: not a user of the"
                f" Google Workspace domain (a typo, a group or an alias, a deleted user), or"
                f" Calendar is off for them ({said})",
                f"check the address in the {USERS}; fix or remove it in [sync] users")
    return (f"Google Calendar refused {user}'s calendar ({said})", consent)


def token_refusal(error: str, user: str, *, mode: str, scopes: Sequence[str]) -> tuple[str, str]:
    """(what happened, what to do) for a token request Google refused. `error` is google-auth's
    RefreshError text, `<error>: <error_description>` (reference A9)."""
    said = _said("token", error)
    code = error.split(":", 1)[0].strip()
    scope_list = ", ".join(scopes)
    delegation = (f"in the {ADMIN_DELEGATION}, add the service account's numeric client ID (the"
                  f" client_id of the key file, not its email) with the scopes {scope_list}; a new"
                  " grant can take up to 24 h")
    if mode == "installed_app":
        if code in ("invalid_grant", "unauthorized_client", "access_denied"):
            return (f"Google refused {user}'s stored authorisation: revoked or expired ({said})",
                    f"run `calsync auth google {user}` again as the service's user")
        return (f"Google refused {user}'s stored authorisation ({said})",
                f"run `calsync auth google {user}` again")
    if code == "unauthorized_client":
        return (f"the service account may not act for {user}: domain-wide delegation is missing,"
                f" or does not cover calsync's scopes ({said})", delegation)
    if code in ("access_denied", "invalid_scope"):
        return (f"the scopes calsync asks for were not granted to the service account ({said})",
                delegation + ", or set [google] scopes to the granted ones")
    if code == "invalid_grant":
        lowered = error.lower()
        if "signature" in lowered:
            return (f"Google does not know the service-account key any more ({said})",
                    "create a new key for the service account and install it (systemd/README.md,"
                    " \"Rotating credentials\")")
        if "timeframe" in lowered or "iat" in lowered or "exp" in lowered:
            return (f"Google refused the key's assertion as out of time: this machine's clock is"
                    f" off ({said})", "set the clock right (timedatectl; NTP)")
        return (f"{user} is not a user Google can act for: unknown in the Google Workspace domain"
                f" (a typo, a group or an alias, a deleted user) or suspended ({said})",
                f"check the address in the {USERS}; fix or remove it in [sync] users")
    return (f"Google refused the credentials for {user} ({said})", delegation)


def _said(head: str, message: str) -> str:
    text = logs.excerpt(message) if message else ""
    return f"Google: {head}" + (f", {text}" if text else "")


__all__ = ["calendar_refusal", "token_refusal"]
