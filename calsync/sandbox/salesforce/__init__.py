"""A Salesforce REST API emulator that the real simple-salesforce talks to over HTTPS on loopback.

    emulator = SalesforceEmulator().start()          # https://127.0.0.1:<port>
    token = emulator.backend.create_session()        # or POST /services/oauth2/token
    session = requests.Session(); session.verify = emulator.ca_file
    sf = Salesforce(instance_url=emulator.url, session_id=token, session=session)

The pieces: `emulator.py` (the HTTPS server), `backend.py` (the org: a facade over one module
per concern, listed in its docstring), `routes.py` (REST resources and the `/_control/` API),
`errors.py` (Salesforce error bodies and faults), `schema.py` (sObjects and ids), `oauth.py`
(token endpoint), `tls.py` (local CA and server certificate), `soql_parser.py` and `soql.py`
(queries). This package only re-exports; its modules never import it.
"""

from __future__ import annotations

from calsync.sandbox.salesforce.backend import SalesforceBackend
from calsync.sandbox.salesforce.emulator import SalesforceEmulator

__all__ = ["SalesforceBackend", "SalesforceEmulator"]
