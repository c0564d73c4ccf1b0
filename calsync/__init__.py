"""calsync: logs Google Calendar meetings with Salesforce Contacts and Leads as Salesforce Events."""

__version__ = "0.1.0"
