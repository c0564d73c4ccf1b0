"""calsync's core: what every layer shares, and nothing that knows about the others.

- `model.py`: the frozen data that crosses boundaries (Google events, Salesforce Contacts,
  Leads, Opportunities, the fields of an Event, what was written, the planner's operations).
- `errors.py`: the exception tree, drawn in its docstring, and the exit codes the CLI maps it to.
- `logs.py`: one log line per event (key=value or JSON), every secret redacted.
- `config.py`: the TOML file → frozen dataclasses, or one ConfigError naming the key; its parts
  are `config_model.py` (the settings dataclasses and their bounds), `config_table.py` (the
  typed checks of one table), `config_secrets.py` (`Secret`, and where each secret comes from)
  and `config_example.py` (the commented example configuration).
- `credentials.py`: where credentials are ($CREDENTIALS_DIRECTORY, the credential store, `%d/`).
- `atomic.py`: whole-file writes (the metrics textfile, Google tokens).
- `display.py`: how a meeting, a start, an owner print, the same in every command.
- `network.py`: the HTTP layer's shared parts: failures that name host, cause and remedy, and
  the traced transports handed to the client libraries.

Every layer may use it: rules, the adapters (calendar, salesforce, state), engine, service,
commands, cli. It imports nothing outside `calsync.core`, not even inside a function, so it
never takes part in an import loop.
"""
