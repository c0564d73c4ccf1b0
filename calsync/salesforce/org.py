"""Salesforce adapter: sessions, batched and escaped lookups, Event writes, error mapping.

Lookups put many addresses in one `Email IN (...)` query, split so that each URL stays under
Salesforce's URI budget (reference B1, C8). Writes go through sObject Collections, 200 records a
call with allOrNone false, and return one result per record in request order (reference B4).

Errors of a whole call are mapped to calsync's tree (reference B5, C11): REQUEST_LIMIT_EXCEEDED →
QuotaExhausted; 5xx, UNABLE_TO_LOCK_ROW and network → TransientError (idempotent calls are retried
here first); an expired session is renewed once (jwt/password) and the call retried. Nothing
outside this module imports simple_salesforce.
"""

from __future__ import annotations

import datetime as dt
import email.utils
import logging
import os
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote

import jwt
import requests
from simple_salesforce import Salesforce
from simple_salesforce.exceptions import (
    SalesforceError,
    SalesforceExpiredSession,
    SalesforceMalformedRequest,
    SalesforceRefusedRequest,
    SalesforceResourceNotFound,
)

from calsync.core import logs, network
from calsync.core.errors import (
    AuthError,
    ConfigError,
    NetworkError,
    PermanentError,
    QuotaExhausted,
    TransientError,
)
from calsync.core.model import Contact, Conversion, Lead, Opportunity
from calsync.core.network import TracingSession

log = logging.getLogger("calsync.salesforce")  # names predate the layers (ARCHITECTURE.md)

COLLECTION_SIZE = 200  # sObject Collections limit (reference B4)
# Salesforce's URI limit is 16,384 bytes with headers (reference B1); keep the encoded query well
# below it so the path, version and headers always fit.
MAX_ENCODED_QUERY = 15_000
RETRIES = 2
CONNECT_TIMEOUT = 10  # seconds ([salesforce] connect_timeout_seconds)
READ_TIMEOUT = 120  # seconds to wait for each answer ([salesforce] read_timeout_seconds)


@dataclass(frozen=True)
class WriteResult:
    ok: bool
    id: str | None = None
    status_code: str | None = None
    message: str | None = None
    created: bool | None = None


@dataclass(frozen=True)
class ChangedRecord:
    """One row of a "changed since" query (directory refresh, `directory.py`).

    `stamp` is the SystemModstamp that made the row match (for a contact role, the later of its
    own and its Opportunity's). `email` is a Contact's or Lead's address as stored now;
    `linked` the ids the change touches besides the record itself: a converted Lead's Contact,
    a contact role's Contact and Opportunity.
    """

    id: str
    stamp: dt.datetime
    email: str | None = None
    linked: tuple[str, ...] = ()
    deleted: bool = False


@dataclass(frozen=True)
class LeadsFound:
    """The Leads of some addresses (`find_leads`), by lowercased address: those not converted,
    and the converted ones with the Contact each became."""

    leads: dict[str, tuple[Lead, ...]] = field(default_factory=dict)
    converted: dict[str, tuple[Conversion, ...]] = field(default_factory=dict)


@dataclass(frozen=True)
class SalesforceUser:
    id: str
    email: str | None
    username: str | None
    active: bool


def soql_quote(value: str) -> str:
    """A SOQL string literal: backslash and quote escaped, controls as their escapes (B1)."""
    escaped = (
        value.replace("\\", "\\\\")
        .replace("'", "\\'")
        .replace("\n", "\\n")
        .replace("\r", "\\r")
        .replace("\t", "\\t")
        .replace("\b", "\\b")
        .replace("\f", "\\f")
        .replace('"', '\\"')
    )
    return f"'{escaped}'"


def soql_datetime(value: dt.datetime) -> str:
    return value.astimezone(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def in_batches(head: str, values: Iterable[str], tail: str = "") -> Iterator[list[str]]:
    """Split `values` so that each `head IN (...) tail` statement stays within the URL budget."""
    base = len(quote(head + " IN () " + tail))
    batch: list[str] = []
    size = base
    for value in sorted(set(values)):
        cost = len(quote(soql_quote(value))) + 3
        if batch and size + cost > MAX_ENCODED_QUERY:
            yield batch
            batch, size = [], base
        batch.append(value)
        size += cost
    if batch:
        yield batch


def in_statement(head: str, values: Sequence[str], tail: str = "") -> str:
    return f"{head} IN ({','.join(soql_quote(v) for v in values)}){tail}"


def _chunks(items: Sequence[Any], size: int) -> Iterator[Sequence[Any]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def _error_code(exc: SalesforceError) -> str:
    content = getattr(exc, "content", None)
    if isinstance(content, list) and content and isinstance(content[0], Mapping):
        return str(content[0].get("errorCode") or "")
    return ""


def _error_message(exc: SalesforceError) -> str:
    content = getattr(exc, "content", None)
    if isinstance(content, list) and content and isinstance(content[0], Mapping):
        return str(content[0].get("message") or "")
    return str(getattr(exc, "status", ""))


class SalesforceOrg:
    """A session with one org. Counts the API calls it makes (`calls`)."""

    def __init__(
        self,
        instance_url: str,
        *,
        auth: str = "access_token",
        access_token: str | None = None,
        login_url: str = "https://login.salesforce.com",
        username: str | None = None,
        consumer_key: str | None = None,
        private_key: str | None = None,
        client_id: str | None = None,
        client_secret: str | None = None,
        password: str | None = None,
        security_token: str | None = None,
        ca_bundle: str | None = None,
        api_version: str = "59.0",
        min_remaining: int = 0,
        sleep: Callable[[float], None] = time.sleep,
        connect_timeout: float = CONNECT_TIMEOUT,
        read_timeout: float = READ_TIMEOUT,
    ) -> None:
        self.instance_url = instance_url.rstrip("/")
        self.auth = auth
        self._access_token = access_token
        self.login_url = login_url.rstrip("/")
        self.username = username
        self._consumer_key = consumer_key
        self._private_key = private_key
        self._client_id = client_id
        self._client_secret = client_secret
        self._password = password
        self._security_token = security_token
        self.api_version = api_version
        self.min_remaining = min_remaining
        self._sleep = sleep
        self.calls = 0
        self.api_usage: tuple[int, int] | None = None
        self._lock = threading.Lock()
        self.server_time: dt.datetime | None = None  # Salesforce's clock at its last answer
        self._server_seen_at: float | None = None  # time.monotonic() when that answer came
        self._own_user_id: str | None = None  # the session's user, from the token answer's `id`
        # Timeouts on every request, the debug trace, the allowance noted (network.py).
        self._http = TracingSession((connect_timeout, read_timeout))
        self._http.hooks["response"].append(self._note_server_time)
        if ca_bundle:
            self._http.verify = _trust(ca_bundle)
            # With trust_env on, REQUESTS_CA_BUNDLE/CURL_CA_BUNDLE replace session.verify on
            # every request (reference B8, psf/requests#3829); _trust() already folded those in.
            self._http.trust_env = False
        for secret in (access_token, private_key, client_secret, password, security_token):
            if secret:
                logs.register_secret(secret)
        self._sf: Salesforce | None = None

    def _note_server_time(self, response: requests.Response, *args: Any, **kwargs: Any) -> None:
        """Keep the answer's Date header (RFC 9110 §6.6.1): Salesforce's clock, not ours."""
        try:
            moment = email.utils.parsedate_to_datetime(response.headers.get("Date", ""))
        except (TypeError, ValueError, IndexError):
            return
        if moment.tzinfo is not None:
            self.server_time = moment.astimezone(dt.timezone.utc)
            self._server_seen_at = time.monotonic()

    def server_now(self) -> dt.datetime | None:
        """Salesforce's clock now, as far as its answers tell: the last Date header plus the time
        elapsed since, by this process's monotonic clock (None before any answer).

        The header counts whole seconds and is written before the answer travels, so this is at
        most a second or so behind Salesforce's own clock, never ahead of it; calsync's clock
        plays no part, however far it is from Salesforce's (reference B10, "Clocks").
        """
        if self.server_time is None or self._server_seen_at is None:
            return None
        return self.server_time + dt.timedelta(seconds=max(0.0, time.monotonic() - self._server_seen_at))

    @classmethod
    def from_config(cls, cfg: Any) -> "SalesforceOrg":
        """Build from `config.SalesforceConfig` (secrets revealed only here)."""

        def reveal(value: Any) -> str | None:
            if value is None:
                return None
            return value.reveal() if hasattr(value, "reveal") else str(value)

        private_key = None
        if getattr(cfg, "private_key_file", None):
            try:
                private_key = Path(cfg.private_key_file).read_text()
            except OSError as exc:
                raise ConfigError(
                    f"salesforce.private_key_file: cannot read {cfg.private_key_file}: {exc.strerror}"
                ) from exc
        return cls(
            cfg.instance_url,
            auth=cfg.auth,
            access_token=reveal(getattr(cfg, "access_token", None)),
            login_url=getattr(cfg, "login_url", "https://login.salesforce.com"),
            username=getattr(cfg, "username", None),
            consumer_key=getattr(cfg, "consumer_key", None),
            private_key=private_key,
            client_id=getattr(cfg, "client_id", None),
            client_secret=reveal(getattr(cfg, "client_secret", None)),
            password=reveal(getattr(cfg, "password", None)),
            security_token=reveal(getattr(cfg, "security_token", None)),
            ca_bundle=getattr(cfg, "ca_bundle", None),
            api_version=getattr(cfg, "api_version", "59.0"),
            min_remaining=getattr(cfg, "daily_call_budget", 0),
            connect_timeout=getattr(cfg, "connect_timeout_seconds", CONNECT_TIMEOUT),
            read_timeout=getattr(cfg, "read_timeout_seconds", READ_TIMEOUT),
        )

    # -- sessions --------------------------------------------------------------------------------

    def _client(self) -> Salesforce:
        if self._sf is None:
            self._sf = self._login()
        return self._sf

    def _login(self) -> Salesforce:
        if self.auth == "access_token":
            if not self._access_token:
                raise AuthError("salesforce.access_token is empty")
            token, instance = self._access_token, self.instance_url
        elif self.auth == "jwt":
            token, instance = self._token_request(self._jwt_form())
        elif self.auth == "password":
            token, instance = self._token_request(
                {
                    "grant_type": "password",
                    "client_id": self._client_id or "",
                    "client_secret": self._client_secret or "",
                    "username": self.username or "",
                    "password": (self._password or "") + (self._security_token or ""),
                }
            )
        else:
            raise ConfigError(f"salesforce.auth: unknown mode {self.auth!r}")
        logs.register_secret(token)
        # simple-salesforce keeps only host and port of instance_url and always speaks https
        # (reference B8); our own session carries the CA bundle.
        return Salesforce(
            instance_url=instance, session_id=token, session=self._http, version=self.api_version
        )

    def _jwt_form(self) -> dict[str, str]:
        if not (self._consumer_key and self._private_key and self.username):
            raise ConfigError("salesforce: jwt needs consumer_key, private_key_file and username")
        now = int(time.time())
        claims = {
            "iss": self._consumer_key,
            "sub": self.username,
            "aud": self.login_url,
            "exp": now + 180,  # at most 3 minutes ahead (reference B7)
            "jti": uuid.uuid4().hex,
        }
        try:
            assertion = jwt.encode(claims, self._private_key, algorithm="RS256")
        except (ValueError, TypeError) as exc:
            raise ConfigError(f"salesforce.private_key_file: not an RSA private key ({type(exc).__name__})") from exc
        return {"grant_type": "urn:ietf:params:oauth:grant-type:jwt-bearer", "assertion": assertion}

    def _token_request(self, form: Mapping[str, str]) -> tuple[str, str]:
        url = f"{self.login_url}/services/oauth2/token"
        try:
            response = self._http.post(url, data=dict(form))
        except requests.RequestException as exc:
            raise self._unreachable(exc, "login", url, "salesforce.login_url") from exc
        try:
            body = response.json()
        except ValueError:
            body = {}
        if response.status_code != 200 or "access_token" not in body:
            error = body.get("error") if isinstance(body, dict) else None
            description = body.get("error_description") if isinstance(body, dict) else None
            if response.status_code >= 500:
                raise TransientError(f"Salesforce login answered {response.status_code}")
            # The description may echo the request (some gateways do): redacted and cut, never
            # the raw body.
            raise AuthError(
                f"Salesforce refused the {self.auth} login for {self.username}: "
                + logs.excerpt(f"{error or response.status_code} {description or ''}".strip())
            )
        # The answer's `id` is the identity URL, .../id/<org id>/<user id> (reference B7): who
        # calsync's own writes are made by (their CreatedById and LastModifiedById).
        identity = str(body.get("id") or "").rstrip("/").rsplit("/", 1)[-1]
        if identity.startswith("005"):
            self._own_user_id = identity
        return str(body["access_token"]), str(body.get("instance_url") or self.instance_url)

    # -- calls ---------------------------------------------------------------------------------

    def _call(self, what: str, fn: Callable[[Salesforce], Any], *, idempotent: bool = True) -> Any:
        """Run one API call with session renewal, retries for idempotent calls, error mapping."""
        renewed = False
        attempt = 0
        if self.api_usage is not None:
            used, total = self.api_usage
            if total - used < self.min_remaining:
                # Keep the rest of the org's daily allowance for its other integrations.
                raise QuotaExhausted(
                    f"only {total - used} of the org's {total} daily API calls left, below"
                    f" salesforce.daily_call_budget = {self.min_remaining}; not calling for {what}"
                )
        while True:
            client = self._client()
            with self._lock:
                self.calls += 1
            try:
                result = fn(client)
                usage = getattr(client, "api_usage", {}).get("api-usage")
                if usage is not None:
                    self.api_usage = (int(usage.used), int(usage.total))
                return result
            except SalesforceExpiredSession as exc:
                if renewed or self.auth == "access_token":
                    raise AuthError(
                        f"Salesforce session expired or invalid during {what}"
                        + ("" if self.auth != "access_token" else
                           "; give a new salesforce.access_token and restart calsync (a daemon"
                           " should use auth = \"jwt\", which does not expire)")
                    ) from exc
                renewed = True
                self._sf = None  # sign a new assertion / log in again, then retry once
                continue
            except SalesforceRefusedRequest as exc:
                code = _error_code(exc)
                if code == "REQUEST_LIMIT_EXCEEDED":
                    raise QuotaExhausted(f"Salesforce API allowance spent ({_error_message(exc)})") from exc
                raise AuthError(f"Salesforce refused {what}: {code} {_error_message(exc)}") from exc
            except SalesforceMalformedRequest as exc:
                code = _error_code(exc)
                if code == "UNABLE_TO_LOCK_ROW" and idempotent and attempt < RETRIES:
                    attempt += 1
                    self._sleep(attempt)
                    continue
                if code == "UNABLE_TO_LOCK_ROW":
                    raise TransientError(f"{what}: UNABLE_TO_LOCK_ROW") from exc
                raise PermanentError(f"{what}: {code} {_error_message(exc)}", code) from exc
            except SalesforceResourceNotFound as exc:
                raise PermanentError(f"{what}: NOT_FOUND", _error_code(exc) or "NOT_FOUND") from exc
            except SalesforceError as exc:
                status = getattr(exc, "status", 0) or 0
                if idempotent and attempt < RETRIES and status >= 500:
                    attempt += 1
                    self._sleep(attempt)
                    continue
                raise TransientError(f"{what}: Salesforce answered {status} {_error_code(exc)}") from exc
            except requests.RequestException as exc:
                # A create that timed out may have landed: it is not retried here; its recorded
                # intent is reconciled on the next run (the crash-safety path). A certificate
                # this machine does not trust will not be trusted a second later either.
                if idempotent and attempt < RETRIES and not network.untrusted(exc):
                    attempt += 1
                    self._sleep(attempt)
                    continue
                request = getattr(exc, "request", None)
                url = getattr(request, "url", None) or self.instance_url
                raise self._unreachable(exc, what, url, "salesforce.instance_url") from exc

    def _unreachable(
        self, exc: requests.RequestException, what: str, url: str, setting: str
    ) -> NetworkError:
        """The host, the cause and the remedy of a request that got no answer (network.py)."""
        found = network.failure(
            exc, url, service="Salesforce", setting=setting,
            trust="add its CA certificate to salesforce.ca_bundle",
            timeout=_timeout_text(exc, self._http),
        )
        return NetworkError(f"{what}: {str(found).removesuffix('; ' + found.remedy)}", found.remedy)

    def query(self, soql: str, *, include_deleted: bool = False) -> list[dict[str, Any]]:
        """All rows of a query; each further page (nextRecordsUrl) is one more call.

        `include_deleted` asks queryAll, which adds rows in the recycle bin (reference B1).
        """
        first = self._call("query", lambda sf: sf.query(soql, include_deleted=include_deleted))
        records = list(first.get("records", []))
        page = first
        while not page.get("done", True) and page.get("nextRecordsUrl"):
            url = page["nextRecordsUrl"]
            page = self._call("query", lambda sf, url=url: sf.query_more(url, identifier_is_url=True))
            records.extend(page.get("records", []))
        return records

    def query_in(
        self, head: str, values: Iterable[str], tail: str = "", *, bisect: bool = True,
        include_deleted: bool = False,
    ) -> list[dict[str, Any]]:
        """Rows of `head IN (values) tail`, batched; a value Salesforce refuses is left out.

        One odd address must not stop the lookup of every other one: a batch refused as a
        whole is halved until the culprit stands alone, which is then skipped with a warning.
        Without `bisect` a refusal raises (the statement itself is the problem).
        `include_deleted` asks queryAll (see `query`).
        """
        rows: list[dict[str, Any]] = []
        pending = list(in_batches(head, values, tail))
        while pending:
            batch = pending.pop()
            try:
                rows.extend(self.query(in_statement(head, batch, tail), include_deleted=include_deleted))
            except PermanentError as exc:
                if not bisect:
                    raise
                if len(batch) == 1:
                    log.warning("lookup refused one value", extra={"fields": {
                        "status_code": exc.status_code, "value": batch[0][:100]}})
                    continue
                half = len(batch) // 2
                pending += [batch[:half], batch[half:]]
        return rows

    def describe(self, sobject: str) -> dict[str, Any]:
        return self._call(f"describe {sobject}", lambda sf: getattr(sf, sobject).describe())  # type: ignore[no-any-return]

    def limits(self) -> dict[str, Any]:
        return self._call("limits", lambda sf: sf.restful("limits"))  # type: ignore[no-any-return]

    def own_user_id(self) -> str | None:
        """The Id of the User calsync's session writes as (its integration user), or None.

        JWT and password logins name it in the token answer (no call). An access token does not:
        the OpenID Connect UserInfo endpoint on the instance answers `user_id` (Help, "Query for
        User Information"; one call), else, with `username` configured, a User query. None when
        neither answers; the caller then judges edits without it (ownership.py).
        """
        client = self._client()
        if self._own_user_id is not None:
            return self._own_user_id
        url = f"https://{client.sf_instance}/services/oauth2/userinfo"
        with self._lock:
            self.calls += 1
        try:
            answer = self._http.get(url, headers={"Authorization": f"Bearer {client.session_id}"})
        except requests.RequestException as exc:
            raise self._unreachable(exc, "userinfo", url, "salesforce.instance_url") from exc
        try:
            found = answer.json().get("user_id") if answer.status_code == 200 else None
        except (ValueError, AttributeError):
            found = None
        if isinstance(found, str) and found.startswith("005"):
            self._own_user_id = found
        elif self.username:
            rows = self.query(f"SELECT Id FROM User WHERE Username = {soql_quote(self.username.lower())}")
            self._own_user_id = str(rows[0]["Id"]) if rows else None
        if self._own_user_id is None:
            log.warning("cannot tell which Salesforce user calsync writes as",
                        extra={"fields": {"userinfo_status": answer.status_code}})
        return self._own_user_id

    # -- directory lookups ---------------------------------------------------------------------

    def find_users(self, addresses: Iterable[str], ids: Iterable[str] = ()) -> list[SalesforceUser]:
        """Users whose Email or Username is one of `addresses`, or whose Id is in `ids`.

        One query per 100 users: configured users are few, and one call beats three.
        """
        wanted = sorted({a.lower() for a in addresses})
        id_list = sorted(set(ids))
        rows: list[dict[str, Any]] = []
        for start in range(0, max(len(wanted), len(id_list)), 100):
            emails = ",".join(soql_quote(a) for a in wanted[start : start + 100])
            some_ids = ",".join(soql_quote(i) for i in id_list[start : start + 100])
            terms = []
            if emails:
                terms += [f"Email IN ({emails})", f"Username IN ({emails})"]
            if some_ids:
                terms.append(f"Id IN ({some_ids})")
            rows.extend(self.query("SELECT Id, Email, Username, IsActive FROM User WHERE " + " OR ".join(terms)))
        seen: dict[str, SalesforceUser] = {}
        for row in rows:
            seen[row["Id"]] = SalesforceUser(
                id=row["Id"],
                email=(row.get("Email") or "").lower() or None,
                username=(row.get("Username") or "").lower() or None,
                active=bool(row.get("IsActive")),
            )
        return sorted(seen.values(), key=lambda u: u.id)

    def find_contacts(self, addresses: Iterable[str]) -> dict[str, tuple[Contact, ...]]:
        found: dict[str, list[Contact]] = {}
        for row in self.query_in("SELECT Id, Email, AccountId, CreatedDate FROM Contact WHERE Email", addresses):
            email = (row.get("Email") or "").lower()
            found.setdefault(email, []).append(
                Contact(row["Id"], email, row.get("CreatedDate") or "", row.get("AccountId"))
            )
        return {k: tuple(v) for k, v in found.items()}

    def find_leads(self, addresses: Iterable[str]) -> LeadsFound:
        """Leads by Email, converted ones with the Contact each became, in the same query.

        Converting moves a Lead's activities to its Contact (reference B10), which may be an
        existing one with another address: it is read through the ConvertedContact relationship
        (the parent's fields "directly in the SELECT", SOQL relationship queries), so a converted
        Lead costs no call of its own. A converted Lead whose Contact is gone (deleted, or a
        conversion without one) resolves to nothing.
        """
        leads: dict[str, list[Lead]] = {}
        converted: dict[str, list[Conversion]] = {}
        head = (
            "SELECT Id, Email, CreatedDate, IsConverted, ConvertedContactId, ConvertedAccountId,"
            " ConvertedOpportunityId, ConvertedContact.Email, ConvertedContact.AccountId,"
            " ConvertedContact.CreatedDate FROM Lead WHERE Email"
        )
        for row in self.query_in(head, addresses):
            email = (row.get("Email") or "").lower()
            lead = Lead(
                row["Id"], email, row.get("CreatedDate") or "",
                converted_contact_id=row.get("ConvertedContactId"),
                converted_account_id=row.get("ConvertedAccountId"),
                converted_opportunity_id=row.get("ConvertedOpportunityId"),
                is_converted=bool(row.get("IsConverted")),
            )
            if not lead.is_converted:
                leads.setdefault(email, []).append(lead)
                continue
            contact = row.get("ConvertedContact")
            if lead.converted_contact_id and isinstance(contact, Mapping):
                converted.setdefault(email, []).append(Conversion(lead, Contact(
                    lead.converted_contact_id, (contact.get("Email") or "").lower(),
                    contact.get("CreatedDate") or "", contact.get("AccountId"),
                )))
        return LeadsFound({k: tuple(v) for k, v in leads.items()}, {k: tuple(v) for k, v in converted.items()})

    def leads_converted_into(self, contact_ids: Iterable[str]) -> dict[str, Lead]:
        """The converted Leads whose Contact is one of these, by 15-character Lead Id: whether
        an Event's Name moved from a Lead to a Contact by a conversion (ownership.py)."""
        head = (
            "SELECT Id, Email, CreatedDate, ConvertedContactId, ConvertedAccountId,"
            " ConvertedOpportunityId FROM Lead WHERE IsConverted = true AND ConvertedContactId"
        )
        found: dict[str, Lead] = {}
        for row in self.query_in(head, sorted(set(contact_ids)), bisect=False):
            found[str(row["Id"])[:15]] = Lead(
                row["Id"], (row.get("Email") or "").lower(), row.get("CreatedDate") or "",
                converted_contact_id=row.get("ConvertedContactId"),
                converted_account_id=row.get("ConvertedAccountId"),
                converted_opportunity_id=row.get("ConvertedOpportunityId"),
                is_converted=True,
            )
        return found

    def find_primary_opportunities(self, contact_ids: Iterable[str]) -> dict[str, tuple[Opportunity, ...]]:
        found: dict[str, list[Opportunity]] = {}
        head = (
            "SELECT ContactId, OpportunityId, Opportunity.IsClosed, Opportunity.CloseDate"
            " FROM OpportunityContactRole WHERE IsPrimary = true AND ContactId"
        )
        for row in self.query_in(head, contact_ids):
            opp = row.get("Opportunity") or {}
            found.setdefault(row["ContactId"], []).append(
                Opportunity(
                    id=row["OpportunityId"],
                    contact_id=row["ContactId"],
                    is_closed=bool(opp.get("IsClosed")),
                    close_date=opp.get("CloseDate"),
                )
            )
        return {k: tuple(v) for k, v in found.items()}

    # -- Events ----------------------------------------------------------------------------------
    #
    # Every read of Events asks queryAll with `IsDeleted = false`: query() leaves out archived
    # Events (dated 365 days ago or more, reference B10), which stay there, can be updated and
    # deleted, and are as much calsync's as any other (a year-old series keeps its Event on its
    # first slot). Leaving the recycle bin out keeps a deleted Event deleted. queryAll costs the
    # same one call as query.

    def _events_in(self, head: str, values: Iterable[str]) -> list[dict[str, Any]]:
        return self.query_in(head, values, bisect=False, include_deleted=True)

    def events_by_key(self, field: str, keys: Iterable[str]) -> dict[str, str]:
        """Event ids by External ID value (reconciling creates in upsert mode)."""
        found: dict[str, str] = {}
        for row in self._events_in(f"SELECT Id, {field} FROM Event WHERE IsDeleted = false AND {field}", keys):
            found[str(row[field])] = row["Id"]
        return found

    def events_starting_since(
        self, owner_ids: Iterable[str], since: dt.datetime, extra_fields: Sequence[str] = ()
    ) -> list[dict[str, Any]]:
        """Events of these owners starting after `since` (adopting Events and finding duplicates
        on a full listing or a resync), with CreatedDate and `extra_fields` (an External ID)."""
        extra = "".join(f", {name}" for name in extra_fields)
        head = (
            "SELECT Id, OwnerId, Subject, StartDateTime, EndDateTime, IsAllDayEvent, ActivityDate,"
            f" WhoId, WhatId, CreatedDate{extra} FROM Event"
            f" WHERE IsDeleted = false AND StartDateTime > {soql_datetime(since)} AND OwnerId"
        )
        return self._events_in(head, owner_ids)

    def events_by_ids(self, ids: Iterable[str], fields: Sequence[str]) -> dict[str, dict[str, Any]]:
        """The Events with these ids as Salesforce holds them now, by 15-character Id.

        An Event deleted in Salesforce is not among them (IsDeleted = false); an archived one is
        (queryAll). Batched by URL length: several hundred ids a call, so at most one call per
        200 Events.
        """
        head = f"SELECT Id, {', '.join(f for f in fields if f != 'Id')} FROM Event WHERE IsDeleted = false AND Id"
        rows = self._events_in(head, sorted(set(ids)))
        return {str(row["Id"])[:15]: row for row in rows}

    def who_relations(self, event_ids: Iterable[str]) -> dict[str, list[str]]:
        """Shared Activities: the Contacts and Lead each Event is related to as its Name(s)
        (EventRelation with IsParent and not IsWhat, reference B3), by 15-character Event Id.
        EventWhoIds itself cannot be queried."""
        head = (
            "SELECT EventId, RelationId FROM EventRelation WHERE IsDeleted = false AND IsParent = true"
            " AND IsWhat = false AND EventId"
        )
        found: dict[str, list[str]] = {}
        for row in self._events_in(head, sorted(set(event_ids))):
            found.setdefault(str(row["EventId"])[:15], []).append(str(row["RelationId"]))
        return found

    def events_created_since(
        self,
        owner_ids: Iterable[str],
        since: dt.datetime,
        created_by: str | None = None,
        extra_fields: Sequence[str] = (),
    ) -> list[dict[str, Any]]:
        """Events of these owners created at or after `since` (Salesforce's clock), by
        `created_by` when given: where a create whose answer was lost may have landed
        (reconciling creates without External ID). With their times, who created and last
        modified them, and `extra_fields` (what calsync writes, for the baseline of ownership)."""
        wanted = ["Id", "OwnerId", "Subject", "StartDateTime", "EndDateTime", "IsAllDayEvent", "ActivityDate",
                  "DurationInMinutes", "WhoId", "WhatId", "CreatedDate", "CreatedById", "LastModifiedById"]
        wanted += [f for f in extra_fields if f not in wanted and f != "EventWhoIds"]
        by = f" AND CreatedById = {soql_quote(created_by)}" if created_by else ""
        head = (
            f"SELECT {', '.join(wanted)} FROM Event WHERE IsDeleted = false AND"
            f" CreatedDate >= {soql_datetime(since)}{by} AND OwnerId"
        )
        return self._events_in(head, owner_ids)

    # -- what changed since a moment (directory.py) ---------------------------------------------
    #
    # Every create, edit and delete moves a record's SystemModstamp (server time); queryAll also
    # returns the rows deleted since, which matter as much (a primary role removed). Each is one
    # call unless more than 2,000 rows changed (paging, reference B1).

    def contacts_changed_since(self, since: dt.datetime) -> list[ChangedRecord]:
        """Contacts created, edited (Email, AccountId, anything) or deleted after `since`."""
        rows = self.query(
            "SELECT Id, Email, AccountId, SystemModstamp, IsDeleted FROM Contact"
            f" WHERE SystemModstamp > {soql_datetime(since)}",
            include_deleted=True,
        )
        return [_changed(row, email=row.get("Email")) for row in rows]

    def leads_changed_since(self, since: dt.datetime) -> list[ChangedRecord]:
        """Leads created, edited, converted (IsConverted, ConvertedContactId) or deleted."""
        rows = self.query(
            "SELECT Id, Email, IsConverted, ConvertedContactId, SystemModstamp, IsDeleted FROM Lead"
            f" WHERE SystemModstamp > {soql_datetime(since)}",
            include_deleted=True,
        )
        return [_changed(row, email=row.get("Email"), linked=(row.get("ConvertedContactId"),)) for row in rows]

    def roles_changed_since(self, since: dt.datetime) -> list[ChangedRecord]:
        """OpportunityContactRoles added, edited or removed after `since`, and every role of an
        Opportunity edited since (stage, close date: what makes it open or the latest).

        One statement: a parent's field may be filtered on with the dot notation and combined
        with OR (SOQL "Using Relationship Queries": child-to-parent relationships go "directly
        in the SELECT, FROM, or WHERE clauses"); only semi-joins are refused under OR.
        """
        at = soql_datetime(since)
        rows = self.query(
            "SELECT Id, ContactId, OpportunityId, SystemModstamp, IsDeleted, Opportunity.SystemModstamp"
            f" FROM OpportunityContactRole WHERE SystemModstamp > {at} OR Opportunity.SystemModstamp > {at}",
            include_deleted=True,
        )
        return [
            _changed(
                row,
                linked=(row.get("ContactId"), row.get("OpportunityId")),
                also=(row.get("Opportunity") or {}).get("SystemModstamp"),
            )
            for row in rows
        ]

    # -- writes ----------------------------------------------------------------------------------

    def create(self, records: Sequence[Mapping[str, Any]]) -> list[WriteResult]:
        # Not retried blindly: a create whose answer was lost may have landed. The caller
        # recorded its intent and reconciles on the next run (reference C5).
        return self._collection("POST", "composite/sobjects", records, idempotent=False)

    def update(self, records: Sequence[Mapping[str, Any]]) -> list[WriteResult]:
        return self._collection("PATCH", "composite/sobjects", records)

    def upsert(self, field: str, records: Sequence[Mapping[str, Any]]) -> list[WriteResult]:
        return self._collection("PATCH", f"composite/sobjects/Event/{field}", records)

    def delete(self, ids: Sequence[str]) -> list[WriteResult]:
        results: list[WriteResult] = []
        for chunk in _chunks(list(ids), COLLECTION_SIZE):
            params = {"ids": ",".join(chunk), "allOrNone": "false"}
            answer = self._call(
                "delete Events",
                lambda sf, params=params: sf.restful("composite/sobjects", method="DELETE", params=params),
            )
            results.extend(_results(answer, len(chunk)))
        return results

    def _collection(
        self, method: str, path: str, records: Sequence[Mapping[str, Any]], *, idempotent: bool = True
    ) -> list[WriteResult]:
        results: list[WriteResult] = []
        for chunk in _chunks(list(records), COLLECTION_SIZE):
            body = {
                "allOrNone": False,
                "records": [{"attributes": {"type": "Event"}, **r} for r in chunk],
            }
            answer = self._call(
                f"{method} {path}",
                lambda sf, body=body: sf.restful(path, method=method, json=body),
                idempotent=idempotent,
            )
            results.extend(_results(answer, len(chunk)))
        return results


def _changed(
    row: Mapping[str, Any], *, email: Any = None, linked: Iterable[Any] = (), also: Any = None
) -> ChangedRecord:
    stamps = [s for s in (_sf_instant(row.get("SystemModstamp")), _sf_instant(also)) if s is not None]
    return ChangedRecord(
        id=str(row["Id"]),
        # A row without a readable stamp still counts; the epoch keeps it from moving a watermark.
        stamp=max(stamps, default=dt.datetime.fromtimestamp(0, dt.timezone.utc)),
        email=email.strip().lower() if isinstance(email, str) and email.strip() else None,
        linked=tuple(str(i) for i in linked if i),
        deleted=bool(row.get("IsDeleted")),
    )


def _sf_instant(value: Any) -> dt.datetime | None:
    """A Salesforce dateTime (2026-01-05T15:00:00.000+0000) as an aware UTC datetime."""
    if not isinstance(value, str):
        return None
    try:
        return dt.datetime.fromisoformat(value).astimezone(dt.timezone.utc)
    except ValueError:
        return None


def _timeout_text(exc: requests.RequestException, session: TracingSession) -> str:
    """The timeout that ran out, with its setting, for the message of a timed-out request."""
    connect, read = session.timeout
    if isinstance(exc, requests.ConnectTimeout):
        return f"{connect:g} s (connect_timeout_seconds)"
    return f"{read:g} s (read_timeout_seconds)"


def _results(answer: Any, expected: int) -> list[WriteResult]:
    """Collections answer one result per record in request order (reference B4)."""
    if not isinstance(answer, list) or len(answer) != expected:
        raise TransientError(
            f"Salesforce Collections answered {len(answer) if isinstance(answer, list) else type(answer).__name__}"
            f" results for {expected} records"
        )
    results = []
    for item in answer:
        errors = item.get("errors") or []
        first = errors[0] if errors and isinstance(errors[0], Mapping) else {}
        results.append(
            WriteResult(
                ok=bool(item.get("success")),
                id=item.get("id"),
                status_code=first.get("statusCode"),
                message=first.get("message"),
                created=item.get("created"),
            )
        )
    return results


_trust_files: dict[str, str] = {}


def _trust(ca_bundle: str) -> str:
    """`ca_bundle` adds to the public CAs: requests' `verify` replaces them, so join both."""
    if ca_bundle in _trust_files:
        return _trust_files[ca_bundle]
    try:
        extra = Path(ca_bundle).read_text()
    except OSError as exc:
        raise ConfigError(f"salesforce.ca_bundle: cannot read {ca_bundle}: {exc.strerror}") from exc
    public = ""
    for candidate in (os.environ.get("REQUESTS_CA_BUNDLE"), os.environ.get("CURL_CA_BUNDLE")):
        if candidate and Path(candidate).is_file():
            public = Path(candidate).read_text()
            break
    else:
        try:
            import certifi

            public = Path(certifi.where()).read_text()
        except (ImportError, OSError):
            public = ""
    handle = tempfile.NamedTemporaryFile("w", prefix="calsync-ca-", suffix=".pem", delete=False)
    with handle:
        handle.write(public + "\n" + extra)
    _trust_files[ca_bundle] = handle.name
    return handle.name
