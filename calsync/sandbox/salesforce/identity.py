"""Who may call the emulated org: its Users, the sessions (access tokens) issued to them, the
connected apps of the token endpoint and the users' passwords (reference B7). The token and
UserInfo endpoints themselves are `oauth.py`'s; this holds what they read.
"""

from __future__ import annotations

import datetime as dt
import secrets
from collections.abc import Iterable
from dataclasses import dataclass

from calsync.sandbox.salesforce.schema import make_id
from calsync.sandbox.salesforce.store import OrgStore, Row
from calsync.sandbox.salesforce.writes import RecordWriter


@dataclass
class Session:
    token: str
    user_id: str
    username: str
    issued_at: dt.datetime
    expires_at: dt.datetime


@dataclass
class ConnectedApp:
    consumer_key: str
    public_key_pem: str | None
    consumer_secret: str | None = None
    authorized_usernames: set[str] | None = None  # None: pre-authorized for every user

    def approved(self, username: str) -> bool:
        return self.authorized_usernames is None or username.lower() in self.authorized_usernames


class Identity:
    """Users (records written through the one write path), sessions, connected apps, passwords."""

    def __init__(self, store: OrgStore, writer: RecordWriter) -> None:
        self.store = store
        self.writer = writer
        self.sessions: dict[str, Session] = {}
        self._apps: dict[str, ConnectedApp] = {}
        self._passwords: dict[str, tuple[str, str]] = {}
        self.org_id = make_id("00D", 1)
        self.instance_url = "https://127.0.0.1"  # the emulator sets its URL on start
        self.session_lifetime = dt.timedelta(hours=2)

    def create_user(self, username: str, *, first_name: str | None = None, last_name: str | None = None,
                    email: str | None = None, active: bool = True, alias: str | None = None) -> str:
        """A User (Username unique); returns its 18-char id."""
        last = last_name or username.split("@")[0]
        fields = {"Username": username, "FirstName": first_name, "LastName": last, "Email": email or username,
                  "IsActive": active, "Alias": alias or last[:8]}
        with self.store.lock:
            user_id = self.store.default_user_id
            return self.writer.create_record("User", fields, user_id=user_id, system=True)

    def user_by_username(self, username: str) -> Row | None:
        with self.store.lock:
            f = self.store.objects["user"].fields["username"]
            ids = self.store.matches(self.store.objects["user"], f, username)
            return dict(self.store.rows["user"][ids[0]]) if ids else None

    def set_user_active(self, username_or_id: str, active: bool) -> None:
        with self.store.lock:
            user = self.user(username_or_id)
            self.writer.update_record("User", user["Id"], {"IsActive": bool(active)})

    def user(self, username_or_id: str) -> Row:
        found = self.store.find(username_or_id)
        if found is not None and found[0].name == "User":
            return found[1]
        user = self.user_by_username(username_or_id)
        if user is None:
            raise KeyError(f"no such user: {username_or_id}")
        return user

    def create_session(self, username: str | None = None) -> str:
        """A new access token for an existing user (default: the sandbox admin)."""
        with self.store.lock:
            user = self.user(username) if username else self.store.rows["user"][self.store.default_user_id]
            now = self.store.clock.now()
            token = f"{self.org_id[:15]}!AQ{secrets.token_urlsafe(48)}"
            self.sessions[token] = Session(token, user["Id"], user["Username"], now, now + self.session_lifetime)
            return token

    def authenticate(self, token: str | None) -> Session | None:
        """The live session of a bearer token: None if unknown, expired or its user inactive."""
        if not token:
            return None
        with self.store.lock:
            session = self.sessions.get(token)
            if session is None or self.store.clock.now() >= session.expires_at:
                return None
            user = self.store.rows["user"].get(session.user_id)
            if user is None or not user["IsActive"]:
                return None
            return session

    def expire_sessions(self) -> int:
        """End every session now (tests of the 401 path); returns how many there were."""
        with self.store.lock:
            n = len(self.sessions)
            now = self.store.clock.now()
            for s in self.sessions.values():
                s.expires_at = min(s.expires_at, now)
            return n

    def register_connected_app(self, consumer_key: str, public_key_pem: str | bytes | None = None, *,
                               consumer_secret: str | None = None,
                               authorized_usernames: Iterable[str] | None = None) -> ConnectedApp:
        """A connected app for the token endpoint. `authorized_usernames` None = pre-authorized
        for all users (JWT bearer needs pre-authorization, reference B7)."""
        pem = public_key_pem.decode("ascii") if isinstance(public_key_pem, bytes) else public_key_pem
        app = ConnectedApp(consumer_key, pem, consumer_secret,
                           None if authorized_usernames is None else {u.lower() for u in authorized_usernames})
        with self.store.lock:
            self._apps[consumer_key] = app
        return app

    def connected_app(self, consumer_key: str) -> ConnectedApp | None:
        with self.store.lock:
            return self._apps.get(consumer_key)

    def set_password(self, username: str, password: str, security_token: str = "") -> None:
        with self.store.lock:
            self.user(username)
            self._passwords[username.lower()] = (password, security_token)

    def check_password(self, username: str, password_and_token: str) -> bool:
        with self.store.lock:
            stored = self._passwords.get(username.lower())
            user = self.user_by_username(username)
            if stored is None or user is None or not user["IsActive"]:
                return False
            return secrets.compare_digest(password_and_token, stored[0] + stored[1])
