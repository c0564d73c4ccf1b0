"""The Salesforce adapter: calsync's one way into a Salesforce org, over simple-salesforce.

`org.SalesforceOrg` is what the layers above hold (engine, service, commands): built from
`[salesforce]` by `SalesforceOrg.from_config`, it reads Users, Contacts, Leads, Opportunity
contact roles and Events, and writes Events. Behind it, one module per concern:

- `connection.py`: login (access token, JWT bearer, username-password), the HTTP session with
  calsync's timeouts and CA bundle, Salesforce's clock from its Date headers, and each call with
  session renewal, retries of idempotent calls and the mapping of Salesforce's errors onto
  `calsync.core.errors` (QuotaExhausted, TransientError, PermanentError, AuthError, NetworkError).
  The only module that imports simple_salesforce.
- `reads.py`: SOQL queries (paged; `IN` lists batched and bisected around a refused value),
  directory lookups, Events through queryAll with `IsDeleted = false` (archived ones included),
  and what changed since a moment (SystemModstamp).
- `writes.py`: sObject Collections create, update, upsert and delete, 200 records a call,
  one `WriteResult` per record in request order.
- `soql.py`: SOQL literals and URL-budgeted `IN (...)` batches (pure text).

Every call is counted on the connection (`SalesforceOrg.calls`, the cycle's salesforce_calls),
and none is made below `salesforce.daily_call_budget` of the org's daily allowance left. This
layer imports only `calsync.core` and `calsync.rules`, never the engine or anything above it.
"""
