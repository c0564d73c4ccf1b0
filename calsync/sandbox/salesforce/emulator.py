"""The Salesforce emulator as an HTTPS server: TLS from its own CA, the REST resources and the
control API of `routes.py` over one `SalesforceBackend` (the org).
"""

from __future__ import annotations

import logging
import ssl
import tempfile
from pathlib import Path

from calsync.sandbox.salesforce.backend import SalesforceBackend
from calsync.sandbox.salesforce.errors import not_found as _not_found
from calsync.sandbox.salesforce.errors import sf_error, unknown_exception
from calsync.sandbox.salesforce.routes import SalesforceApi
from calsync.sandbox.salesforce.store import Clock
from calsync.sandbox.salesforce.tls import CertificatePaths, ensure_certificates
from calsync.sandbox.server import Emulator, Request, Response

log = logging.getLogger("calsync.sandbox.salesforce")  # the name operators and tests know


class SalesforceEmulator(Emulator):
    """HTTPS emulator of the Salesforce REST API (`.backend` holds the org)."""

    scheme = "https"

    def __init__(self, state_dir: str | Path | None = None, clock: Clock | None = None) -> None:
        super().__init__()
        self._tempdir: tempfile.TemporaryDirectory[str] | None = None
        if state_dir is None:
            self._tempdir = tempfile.TemporaryDirectory(prefix="calsync-sf-")
            state_dir = self._tempdir.name
        self.state_dir = Path(state_dir)
        self.certificates: CertificatePaths = ensure_certificates(self.state_dir)
        self.backend = SalesforceBackend(clock=clock)
        self.api = SalesforceApi(self, self.backend)

    @property
    def ca_file(self) -> str:
        """Path of the CA certificate to trust (`session.verify = emulator.ca_file`)."""
        return str(self.certificates.ca_file)

    def ssl_context(self) -> ssl.SSLContext:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(str(self.certificates.cert_file), str(self.certificates.key_file))
        return context

    def start(self, host: str = "127.0.0.1", port: int = 0) -> "SalesforceEmulator":
        super().start(host, port)
        self.backend.instance_url = self.url  # token answers and JWT audiences use it
        log.info("salesforce emulator listening url=%s", self.url)
        return self

    def dispatch(self, request: Request) -> Response:
        return self.api.handle(request)

    def not_found(self, request: Request, method_not_allowed: bool = False) -> Response:
        if method_not_allowed:
            return sf_error(405, "METHOD_NOT_ALLOWED", f"HTTP Method '{request.method}' not allowed.")
        return _not_found()

    def internal_error(self) -> Response:
        return unknown_exception()

    def __enter__(self) -> "SalesforceEmulator":
        super().__enter__()
        return self
