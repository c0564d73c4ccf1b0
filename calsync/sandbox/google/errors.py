"""Google Calendar's and Google OAuth's error bodies, as the emulator answers them.

Calendar errors share one shape (reference A7):
`{"error": {"errors": [{"domain", "reason", "message", "locationType"?, "location"?}], "code",
"message"}}`. OAuth token errors are `{"error", "error_description"}` (reference A9).

`GoogleError` is raised by the backend and the routes and rendered by the emulator; `google_error()`
builds the same bodies for scripted faults (`emulator.fail_next(...)`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

# reason -> (default HTTP status, domain, message, locationType, location)  (reference A7, A2)
_REASONS: dict[str, tuple[int, str, str, str | None, str | None]] = {
    "invalid": (400, "global", "Invalid Value", None, None),
    "timeRangeEmpty": (
        400,
        "calendar",
        "The specified time range is empty.",
        "parameter",
        "timeMax",
    ),
    "authError": (401, "global", "Invalid Credentials", "header", "Authorization"),
    "userRateLimitExceeded": (403, "usageLimits", "User Rate Limit Exceeded", None, None),
    "rateLimitExceeded": (403, "usageLimits", "Rate Limit Exceeded", None, None),
    "quotaExceeded": (403, "usageLimits", "Calendar usage limits exceeded.", None, None),
    "forbidden": (403, "global", "Forbidden", None, None),
    # The Calendar API not enabled in the credentials' Cloud project, as observed from a real
    # events.list (googleworkspace/python-samples#17, taylorwilsdon/google_workspace_mcp#126):
    # domain usageLimits, reason accessNotConfigured; the project number stands for a real one.
    "accessNotConfigured": (
        403,
        "usageLimits",
        "Google Calendar API has not been used in project 253222910799 before or it is disabled."
        " Enable it by visiting https://console.developers.google.com/apis/api/"
        "calendar-json.googleapis.com/overview?project=253222910799 then retry. If you enabled"
        " this API recently, wait a few minutes for the action to propagate to our systems and"
        " retry.",
        None,
        None,
    ),
    "insufficientPermissions": (403, "global", "Insufficient Permission", None, None),
    "notFound": (404, "global", "Not Found", None, None),
    "fullSyncRequired": (
        410,
        "calendar",
        "Sync token is no longer valid, a full sync is required.",
        "parameter",
        "syncToken",
    ),
    "updatedMinTooLongAgo": (
        410,
        "calendar",
        "The requested minimum modification time lies too far in the past.",
        "parameter",
        "updatedMin",
    ),
    "deleted": (410, "global", "Resource has been deleted", None, None),
    "backendError": (500, "global", "Backend Error", None, None),
}

# Emulator default for syncToken + a restriction; reason and wording unconfirmed (reference A2).
SYNC_TOKEN_COMBINATION_MESSAGE = "Sync token cannot be used with other request restrictions."


def google_error_body(
    status: int, reason: str, message: str | None = None, location: str | None = None
) -> dict[str, Any]:
    """The JSON body Google sends for `reason` (reference A7); `message` overrides the text."""
    _, domain, default_message, location_type, default_location = _REASONS.get(
        reason, (status, "global", reason, None, None)
    )
    text = message or default_message
    item: dict[str, Any] = {"domain": domain, "reason": reason, "message": text}
    location = location or default_location
    if location is not None:
        item["locationType"] = location_type or "parameter"
        item["location"] = location
    return {"error": {"errors": [item], "code": status, "message": text}}


def google_error(
    status: int | None, reason: str, message: str | None = None
) -> tuple[int, dict[str, Any]]:
    """(status, body) for a Google error; `status=None` takes the reason's usual status.

    `google_error(429, "rateLimitExceeded")` gives the 429 variant (reference A7: "rateLimitExceeded
    may arrive as 403 or 429"); `google_error(503, "backendError")` the 503 one.
    """
    code = status if status is not None else default_status(reason)
    return code, google_error_body(code, reason, message)


def default_status(reason: str) -> int:
    return _REASONS[reason][0] if reason in _REASONS else 400


@dataclass
class GoogleError(Exception):
    """A Calendar API error the routes render with Google's body."""

    status: int
    reason: str
    message: str | None = None
    location: str | None = None

    def __str__(self) -> str:
        return f"{self.status} {self.reason}: {self.message or ''}"

    def body(self) -> dict[str, Any]:
        return google_error_body(self.status, self.reason, self.message, self.location)


def invalid_value(location: str | None = None) -> GoogleError:
    """Google's 400 for a malformed parameter (bad pageToken, syncToken, timeMin, ...)."""
    return GoogleError(400, "invalid", "Invalid Value", location)


def not_found() -> GoogleError:
    return GoogleError(404, "notFound")


def auth_error() -> GoogleError:
    return GoogleError(401, "authError")


@dataclass
class OAuthError(Exception):
    """A token-endpoint error: `{"error", "error_description"}` (reference A9)."""

    status: int
    error: str
    description: str

    def __str__(self) -> str:
        return f"{self.status} {self.error}: {self.description}"

    def body(self) -> dict[str, str]:
        return {"error": self.error, "error_description": self.description}


# The token endpoint's texts (reference A9, JWT error table).
INVALID_USER = "Invalid email or User ID"
INVALID_SIGNATURE = "Invalid JWT Signature."
INVALID_TIMEFRAME = (
    "Invalid JWT: Token must be a short-lived token (60 minutes) and in a reasonable timeframe. "
    "Check your iat and exp values in the JWT claim."
)
UNAUTHORIZED_SCOPE = "Unauthorized client or scope in request."
