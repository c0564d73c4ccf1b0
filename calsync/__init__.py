"""calsync: logs Google Calendar meetings with Salesforce Contacts and Leads as Salesforce Events."""

# The one source of calsync's version (pyproject reads it; `calsync --version` prints it). It
# changes with every release and every schema change (upgrade.MIGRATIONS_BY_VERSION).
__version__ = "0.2.0"
