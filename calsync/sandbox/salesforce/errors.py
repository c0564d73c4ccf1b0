"""Salesforce's error codes and bodies, and ready-made faults that answer with them.

Whole-request errors are a JSON **list** `[{"message", "errorCode", "fields"}]` (reference B5);
per-record errors inside a Collections answer use `statusCode` instead of `errorCode` (B4).
The backend raises `ApiError` (one whole-request error) or `RecordFailed` (a record's errors);
routes render them. The `*_fault` helpers build `server.Fault`s for `emulator.faults.add()`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from calsync.sandbox.server import Fault, Response

API_PREFIX = "/services/data"

LOCK_MESSAGE = "unable to obtain exclusive access to this record"
ROLLED_BACK_MESSAGE = (
    "Record rolled back because not all records were valid and the request was using AllOrNone header"
)
LIMIT_MESSAGE = "TotalRequests Limit exceeded."
SESSION_MESSAGE = "Session expired or invalid"
NOT_FOUND_MESSAGE = "The requested resource does not exist"


def error_body(code: str, message: str, fields: list[str] | tuple[str, ...] | None = None) -> list[dict[str, Any]]:
    """The list-shaped body of a whole-request error (reference B5)."""
    item: dict[str, Any] = {"message": message, "errorCode": code}
    if fields is not None:
        item["fields"] = list(fields)
    return [item]


def sf_error(status: int, code: str, message: str, fields: list[str] | tuple[str, ...] | None = None) -> Response:
    """A whole-request error response: `status` with a list body."""
    return Response(status, error_body(code, message, fields))


@dataclass(frozen=True)
class RecordError:
    """One error of one record; `statusCode` in Collections, `errorCode` as a whole request."""

    status_code: str
    message: str
    fields: tuple[str, ...] = ()

    def as_result_error(self) -> dict[str, Any]:
        return {"statusCode": self.status_code, "message": self.message, "fields": list(self.fields)}

    def as_request_error(self) -> dict[str, Any]:
        return {"message": self.message, "errorCode": self.status_code, "fields": list(self.fields)}


class ApiError(Exception):
    """A whole-request failure: HTTP status plus one list-body error."""

    def __init__(self, status: int, code: str, message: str, fields: tuple[str, ...] | None = None) -> None:
        super().__init__(f"{code}: {message}")
        self.status = status
        self.code = code
        self.message = message
        self.fields = fields

    def response(self) -> Response:
        return sf_error(self.status, self.code, self.message, self.fields)


class RecordFailed(Exception):
    """A record was refused: per-record results in Collections, a 400 list body otherwise.

    (Addressing a deleted or unknown record in the URL is an ApiError 404 instead.)"""

    def __init__(self, *errors: RecordError) -> None:
        super().__init__("; ".join(f"{e.status_code}: {e.message}" for e in errors))
        self.errors: tuple[RecordError, ...] = errors

    def response(self) -> Response:
        return Response(400, [e.as_request_error() for e in self.errors])


# --- common whole-request errors ----------------------------------------------------------------


def invalid_session() -> Response:
    # No "fields" key: the body Salesforce sends for an expired session (reference B7).
    return Response(401, [{"message": SESSION_MESSAGE, "errorCode": "INVALID_SESSION_ID"}])


def request_limit_exceeded() -> Response:
    return sf_error(403, "REQUEST_LIMIT_EXCEEDED", LIMIT_MESSAGE)


def not_found() -> Response:
    return sf_error(404, "NOT_FOUND", NOT_FOUND_MESSAGE)


def unknown_exception(message: str = "An unexpected error occurred. Please include this ErrorId if you "
                      "contact support: 1234567890-12345 (-1234567890)") -> Response:
    return sf_error(500, "UNKNOWN_EXCEPTION", message)


def server_unavailable() -> Response:
    return sf_error(503, "SERVER_UNAVAILABLE", "Server temporarily unavailable, please try again later")


def unable_to_lock_row() -> Response:
    return sf_error(400, "UNABLE_TO_LOCK_ROW", LOCK_MESSAGE)


def json_parser_error(message: str) -> ApiError:
    return ApiError(400, "JSON_PARSER_ERROR", message)


def invalid_type(name: str) -> ApiError:
    """An unknown sObject named in a body (an unknown one in a URL is 404 NOT_FOUND)."""
    return ApiError(
        400,
        "INVALID_TYPE",
        f"sObject type '{name}' is not supported. If you are attempting to use a custom object, be sure "
        "to append the '__c' after the entity name. Please reference your WSDL or the describe call for "
        "the appropriate names.",
    )


def malformed_id(record_id: str, label: str = "Record ID") -> RecordError:
    return RecordError("MALFORMED_ID", f"{label}: id value of incorrect type: {record_id}")


# --- faults (server.Fault) with Salesforce bodies -----------------------------------------------


def _fault(response: Response, times: int, method: str | None, path_prefix: str) -> Fault:
    return Fault(status=response.status, body=response.body, method=method, path_prefix=path_prefix,
                 times=times)


def request_limit_fault(times: int = 1, method: str | None = None, path_prefix: str = API_PREFIX) -> Fault:
    """403 REQUEST_LIMIT_EXCEEDED (the daily allocation), without touching the call counter."""
    return _fault(request_limit_exceeded(), times, method, path_prefix)


def unable_to_lock_row_fault(times: int = 1, method: str | None = None, path_prefix: str = API_PREFIX) -> Fault:
    """A whole-request 400 UNABLE_TO_LOCK_ROW (transient, reference B5)."""
    return _fault(unable_to_lock_row(), times, method, path_prefix)


def unknown_exception_fault(times: int = 1, method: str | None = None, path_prefix: str = API_PREFIX) -> Fault:
    return _fault(unknown_exception(), times, method, path_prefix)


def server_unavailable_fault(times: int = 1, method: str | None = None, path_prefix: str = API_PREFIX) -> Fault:
    return _fault(server_unavailable(), times, method, path_prefix)


def invalid_session_fault(times: int = 1, method: str | None = None, path_prefix: str = API_PREFIX) -> Fault:
    return _fault(invalid_session(), times, method, path_prefix)


def slow_fault(delay: float, times: int = 1, method: str | None = None, path_prefix: str = API_PREFIX) -> Fault:
    """Answers normally after `delay` seconds."""
    return Fault(delay=delay, times=times, method=method, path_prefix=path_prefix)


def drop_fault(times: int = 1, method: str | None = None, path_prefix: str = API_PREFIX) -> Fault:
    """Closes the connection without an answer."""
    return Fault(drop=True, times=times, method=method, path_prefix=path_prefix)
