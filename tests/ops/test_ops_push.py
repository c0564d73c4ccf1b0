"""Push notifications in the operator commands: `doctor` checks that push_url is HTTPS and that
the daemon's listener answers (at push_listen, and through the reverse proxy at push_url);
`status` shows each calendar's channel expiry.

The listener is calsync's own (push.Listener) on loopback; the reverse proxy is a small TLS
server forwarding to it, with a certificate from the sandbox's local CA (trusted through
SSL_CERT_FILE, as an operator's system trust store would trust a real one).
"""

from __future__ import annotations

import datetime as dt
import http.client
import http.server
import json
import socket
import ssl
import threading
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from calsync.core import config as config_module
from calsync.commands import doctor as ops
from calsync.cli import main
from calsync.service.push import ChannelBook, Listener
from calsync.sandbox.salesforce.tls import ensure_certificates
from calsync.state.store import PushChannel, StateStore, save_push_channel

UTC = dt.timezone.utc


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def listener():
    found = Listener(("127.0.0.1", _free_port()), ChannelBook(), on_change=lambda user: None)
    found.start()
    yield found
    found.stop()


class TlsProxy:
    """https://127.0.0.1:PORT/... → http://TARGET/... (GET and POST, headers passed on)."""

    def __init__(self, target: tuple[str, int], tls_dir: Path) -> None:
        paths = ensure_certificates(tls_dir)
        self.ca_file = paths.ca_file

        class Forward(http.server.BaseHTTPRequestHandler):
            def _forward(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else None
                conn = http.client.HTTPConnection(*target, timeout=5)
                headers = {k: v for k, v in self.headers.items() if k.lower() != "host"}
                conn.request(self.command, self.path, body=body, headers=headers)
                answer = conn.getresponse()
                payload = answer.read()
                self.send_response(answer.status)
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)
                conn.close()

            do_GET = do_POST = _forward

            def log_message(self, *args: Any) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Forward)
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(paths.cert_file, paths.key_file)
        self.server.socket = context.wrap_socket(self.server.socket, server_side=True)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = f"https://127.0.0.1:{self.server.server_address[1]}/google/notify"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def proxy(listener, tmp_path, monkeypatch):
    found = TlsProxy(listener.address, tmp_path / "tls")
    monkeypatch.setenv("SSL_CERT_FILE", str(found.ca_file))  # the operator's trust store
    yield found
    found.close()


def _push_checks(path: Path) -> dict[str, ops.Check]:
    cfg = config_module.load(path)
    return {c.name: c for c in ops._check_push(cfg)}


def test_doctor_passes_behind_an_https_reverse_proxy(make_config, listener, proxy):
    path = make_config(google={"push_url": proxy.url, "push_listen": f"127.0.0.1:{listener.port}"})
    checks = _push_checks(path)
    assert [c.name for c in checks.values()] == ["push URL", "push listener", "push URL reaches the listener"]
    assert all(c.ok for c in checks.values()), checks
    result = CliRunner().invoke(main, ["--config", str(path), "doctor"])
    assert "ok   push URL reaches the listener: " + proxy.url in result.stdout


def test_an_http_push_url_fails_doctor(make_config, listener):
    path = make_config(google={"push_url": f"http://127.0.0.1:{listener.port}/google/notify",
                               "push_listen": f"127.0.0.1:{listener.port}"})
    checks = _push_checks(path)
    assert not checks["push URL"].ok
    assert "Google delivers notifications only to HTTPS" in checks["push URL"].detail
    assert "reverse proxy" in (checks["push URL"].advice or "")
    assert checks["push listener"].ok


def test_no_listener_fails_doctor(make_config):
    port = _free_port()
    path = make_config(google={"push_url": "https://calsync.example.com/google/notify",
                               "push_listen": f"127.0.0.1:{port}"})
    checks = _push_checks(path)
    assert not checks["push listener"].ok
    assert "no answer" in checks["push listener"].detail
    assert "start the daemon" in (checks["push listener"].advice or "")
    assert "push URL reaches the listener" not in checks


def test_a_push_url_that_does_not_reach_the_listener_fails_doctor(make_config, listener, tmp_path,
                                                                  monkeypatch):
    other = TlsProxy(("127.0.0.1", _free_port()), tmp_path / "tls2")  # forwards to nothing
    monkeypatch.setenv("SSL_CERT_FILE", str(other.ca_file))
    try:
        path = make_config(google={"push_url": other.url, "push_listen": f"127.0.0.1:{listener.port}"})
        checks = _push_checks(path)
    finally:
        other.close()
    assert checks["push listener"].ok
    reach = checks["push URL reaches the listener"]
    assert not reach.ok and "make the reverse proxy forward" in (reach.advice or "")


def test_notifications_pass_through_the_proxy(make_config, proxy, listener):
    channel = PushChannel("ch-1", "alice@acme.test", "tok", proxy.url, "res-1",
                          dt.datetime.now(UTC) + dt.timedelta(days=7), dt.datetime.now(UTC))
    listener.book.put(channel)
    seen: list[str] = []
    listener.on_change = seen.append
    context = ssl.create_default_context(cafile=str(proxy.ca_file))
    port = int(proxy.url.split(":")[2].split("/")[0])
    conn = http.client.HTTPSConnection("127.0.0.1", port, context=context, timeout=5)
    conn.request("POST", "/google/notify", headers={
        "X-Goog-Channel-ID": "ch-1", "X-Goog-Channel-Token": "tok", "X-Goog-Resource-ID": "res-1",
        "X-Goog-Resource-State": "exists", "X-Goog-Message-Number": "3", "Content-Length": "0"})
    assert conn.getresponse().status == 200
    assert seen == ["alice@acme.test"]


def test_status_shows_each_channels_expiry(make_config, sync, tmp_path):
    path = make_config(google={"push_url": "https://calsync.example.com/google/notify",
                               "push_listen": "127.0.0.1:8790"})
    assert sync(path).ok
    now = dt.datetime.now(UTC)
    store = StateStore(tmp_path / "state.db")
    try:
        for user, days in (("alice@acme.test", 6), ("bob@acme.test", 2)):
            save_push_channel(store, PushChannel(f"ch-{user}", user, "secret-token", "https://x",
                                                 "res", now + dt.timedelta(days=days), now))
        # a channel whose watch never answered has no expiry to show
        save_push_channel(store, PushChannel("ch-pending", "carol@acme.test", "t", "https://x",
                                             None, None, now))
    finally:
        store.close()
    report = json.loads(CliRunner().invoke(main, ["--config", str(path), "status", "--json"]).stdout)
    shown = {c["user"]: c["push_channel_expires_at"] for c in report["calendars"]}
    assert shown["alice@acme.test"].startswith((now + dt.timedelta(days=6)).date().isoformat())
    assert shown["bob@acme.test"] and shown["carol@acme.test"] is None
    text = CliRunner().invoke(main, ["--config", str(path), "status"]).stdout
    assert text.count("  push channel: expires ") == 2
    assert "(in 5 d)" in text and "(in 1 d)" in text  # six and two days, less a moment
    assert "secret-token" not in text


def test_the_listener_counts_notifications_received_refused_and_acted_on(listener):
    from calsync.service import metrics

    listener.book.put(PushChannel("ch-9", "bob@acme.test", "tok", "https://x", "res-9",
                                  dt.datetime.now(UTC) + dt.timedelta(days=1), dt.datetime.now(UTC)))
    before = (metrics.value("calsync_push_notifications_received_total"),
              metrics.value("calsync_push_notifications_acted_total"),
              metrics.value("calsync_push_notifications_refused_total", reason="wrong_token"),
              metrics.value("calsync_push_notifications_refused_total", reason="unknown_channel"))
    base = {"X-Goog-Channel-ID": "ch-9", "X-Goog-Channel-Token": "tok", "X-Goog-Resource-ID": "res-9"}
    answers = [
        listener.handle({**base, "X-Goog-Resource-State": "sync"}),
        listener.handle({**base, "X-Goog-Resource-State": "exists"}),
        listener.handle({**base, "X-Goog-Channel-Token": "nope", "X-Goog-Resource-State": "exists"}),
        listener.handle({**base, "X-Goog-Channel-ID": "ch-0", "X-Goog-Resource-State": "exists"}),
    ]
    assert [status for status, _ in answers] == [200, 200, 403, 404]
    after = (metrics.value("calsync_push_notifications_received_total"),
             metrics.value("calsync_push_notifications_acted_total"),
             metrics.value("calsync_push_notifications_refused_total", reason="wrong_token"),
             metrics.value("calsync_push_notifications_refused_total", reason="unknown_channel"))
    assert [b - a for a, b in zip(before, after)] == [4, 1, 1, 1]
    text = metrics.generate_latest(metrics.REGISTRY).decode()
    assert 'calsync_push_notifications_refused_total{reason="wrong_token"}' in text
