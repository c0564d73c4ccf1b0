"""The emulator's SOQL subset against a small in-memory org (reference B1, B5)."""

from __future__ import annotations

import datetime as dt
import time
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from calsync.sandbox.salesforce.soql import QueryResult, SoqlError, execute
from soql_fixture import (
    ACCOUNT_SYNC,
    ACME,
    ANN,
    BIG_DEAL,
    BOB,
    DELETED_EVENT,
    GLOBEX,
    GONE,
    KICKOFF,
    LEAD,
    LEAD_CALL,
    OBRIEN,
    ORPHAN,
    PERCENT,
    RENEWAL,
    ROLE_ANN,
    SLASH,
    MemoryData,
    MemorySchema,
    make_id,
    org,
)

SCHEMA = MemorySchema()
NOW = dt.datetime(2026, 1, 6, 12, 0, tzinfo=dt.timezone.utc)


def run(text: str, data: MemoryData | None = None, **kwargs: Any) -> QueryResult:
    return execute(text, SCHEMA, data or org(), **kwargs)


def ids(text: str, **kwargs: Any) -> list[str]:
    return [r["Id"] for r in run(text, **kwargs).records]


def error(text: str, data: MemoryData | None = None) -> SoqlError:
    with pytest.raises(SoqlError) as info:
        execute(text, SCHEMA, data or org())
    return info.value


# --- record shape -------------------------------------------------------------------------------

def test_record_has_attributes_with_type_and_url_first() -> None:
    record = run(f"SELECT Id FROM Account WHERE Id = '{ACME}'").records[0]
    assert list(record) == ["attributes", "Id"]
    assert record["attributes"] == {"type": "Account",
                                    "url": f"/services/data/v59.0/sobjects/Account/{ACME}"}


def test_attributes_url_uses_given_api_path() -> None:
    record = run(f"SELECT Id FROM Account WHERE Id = '{ACME}'",
                 api_path="/services/data/v61.0").records[0]
    assert record["attributes"]["url"] == f"/services/data/v61.0/sobjects/Account/{ACME}"


def test_fields_come_back_in_select_order_with_canonical_names() -> None:
    record = run(f"select email, lastname, ID from contact where id = '{ANN}'").records[0]
    assert list(record) == ["attributes", "Email", "LastName", "Id"]


def test_object_name_is_canonical_whatever_the_query_case() -> None:
    result = run("SELECT Id FROM opportunitycontactrole")
    assert result.object_name == "OpportunityContactRole"
    assert result.records[0]["attributes"]["type"] == "OpportunityContactRole"


def test_keywords_are_case_insensitive() -> None:
    assert ids("sElEcT Id fRoM Account wHeRe Name = 'Acme' oRdEr bY Name aSc LiMiT 1") == [ACME]


def test_parent_field_is_nested_under_relationship_name() -> None:
    record = run(f"SELECT Id, account.name FROM Contact WHERE Id = '{ANN}'").records[0]
    assert record["Account"] == {
        "attributes": {"type": "Account", "url": f"/services/data/v59.0/sobjects/Account/{ACME}"},
        "Name": "Acme",
    }


def test_null_parent_lookup_renders_none() -> None:
    record = run(f"SELECT Id, Account.Name FROM Contact WHERE Id = '{SLASH}'").records[0]
    assert record["Account"] is None


def test_fields_of_one_parent_share_one_nested_record_in_select_order() -> None:
    record = run(f"SELECT Account.Type, Id, Account.Name FROM Contact WHERE Id = '{ANN}'").records[0]
    assert list(record) == ["attributes", "Account", "Id"]
    assert list(record["Account"]) == ["attributes", "Type", "Name"]


def test_two_level_parent_path_nests_twice() -> None:
    record = run(f"SELECT Opportunity.Account.Name FROM OpportunityContactRole "
                 f"WHERE Id = '{ROLE_ANN}'").records[0]
    assert record["Opportunity"]["attributes"]["type"] == "Opportunity"
    assert record["Opportunity"]["Account"]["Name"] == "Acme"


def test_null_grandparent_renders_none_inside_parent() -> None:
    data = org()
    data.tables["OpportunityContactRole"][0]["OpportunityId"] = ORPHAN
    record = run(f"SELECT Opportunity.Name, Opportunity.Account.Name FROM OpportunityContactRole "
                 f"WHERE Id = '{ROLE_ANN}'", data).records[0]
    assert record["Opportunity"]["Name"] == "Orphan"
    assert record["Opportunity"]["Account"] is None


def test_polymorphic_type_gives_related_object_name() -> None:
    record = run(f"SELECT Who.Type, What.Type FROM Event WHERE Id = '{KICKOFF}'").records[0]
    assert record["Who"]["Type"] == "Contact"
    assert record["What"]["Type"] == "Opportunity"
    assert record["What"]["attributes"]["type"] == "Opportunity"


def test_polymorphic_name_reads_related_record_name() -> None:
    record = run(f"SELECT What.Name, Who.Name FROM Event WHERE Id = '{LEAD_CALL}'").records[0]
    assert record["Who"]["Name"] == "Lee Lead"
    assert record["What"] is None


def test_polymorphic_relationship_exposes_only_name_fields() -> None:
    err = error("SELECT What.IsClosed FROM Event")
    assert err.error_code == "INVALID_FIELD"
    assert "No such column 'IsClosed' on entity 'Name'" in err.message


def test_count_returns_count_and_no_records() -> None:
    result = run("SELECT COUNT() FROM Contact")
    assert (result.count, result.records) == (4, [])


def test_count_honours_where() -> None:
    assert run("SELECT count() FROM Contact WHERE Account.Name = 'Acme'").count == 2


def test_plain_select_has_no_count() -> None:
    assert run("SELECT Id FROM Account").count is None


def test_duplicate_selected_field_is_malformed() -> None:
    assert error("SELECT Id, id FROM Account").error_code == "MALFORMED_QUERY"


# --- WHERE: strings ------------------------------------------------------------------------------

def test_string_equality_is_case_insensitive() -> None:
    assert ids("SELECT Id FROM Contact WHERE Email = 'bob@example.com'") == [BOB]


def test_not_equal_keeps_null_values() -> None:
    found = ids("SELECT Id FROM Event WHERE ExtId__c != 'k1'")
    assert ACCOUNT_SYNC in found and KICKOFF not in found


def test_angle_brackets_mean_not_equal() -> None:
    assert ids("SELECT Id FROM Account WHERE Name <> 'acme'") == [GLOBEX]


def test_equals_null_matches_missing_values() -> None:
    assert ids("SELECT Id FROM Contact WHERE AccountId = null") == [SLASH]


def test_not_equals_null_matches_present_values() -> None:
    assert ids("SELECT Id FROM Event WHERE WhatId != NULL") == [KICKOFF, ACCOUNT_SYNC, PERCENT]


def test_in_list_is_case_insensitive() -> None:
    assert ids("SELECT Id FROM Contact WHERE Email IN ('ANN@example.com', 'bob@EXAMPLE.com')") \
        == [ANN, BOB]


def test_not_in_list_excludes_values() -> None:
    assert ids("SELECT Id FROM Account WHERE Name NOT IN ('ACME')") == [GLOBEX]


def test_in_list_with_null_matches_nulls() -> None:
    assert ids("SELECT Id FROM Account WHERE Type IN (null, 'x')") == [GLOBEX]


def test_like_percent_matches_any_run() -> None:
    assert ids("SELECT Id FROM Contact WHERE Email LIKE '%@example.com'") == [ANN, BOB]


def test_like_underscore_matches_one_character() -> None:
    assert ids("SELECT Id FROM Account WHERE Name LIKE 'Ac_e'") == [ACME]
    assert ids("SELECT Id FROM Account WHERE Name LIKE 'Ac_'") == []


def test_like_is_case_insensitive() -> None:
    assert ids("SELECT Id FROM Account WHERE Name LIKE 'GLO%'") == [GLOBEX]


def test_like_escaped_percent_and_underscore_are_literal() -> None:
    assert ids("SELECT Id FROM Event WHERE Subject LIKE '100\\% done\\_ok'") == [PERCENT]
    assert ids("SELECT Id FROM Event WHERE Subject LIKE '100\\% done\\_o'") == []
    assert ids("SELECT Id FROM Event WHERE Subject LIKE 'Kick\\%'") == []


def test_escaped_quote_in_email_literal() -> None:
    assert ids("SELECT Id FROM Contact WHERE Email = 'o\\'brien@x.com'") == [OBRIEN]


def test_escaped_backslash_in_literal() -> None:
    assert ids("SELECT Id FROM Contact WHERE Email IN ('back\\\\slash@x.com')") == [SLASH]


def test_newline_escape_decodes() -> None:
    assert ids("SELECT Id FROM Event WHERE Description = 'line1\\nline2'") == [KICKOFF]


def test_unicode_escape_decodes() -> None:
    assert ids("SELECT Id FROM Event WHERE Subject = 'Kick\\u006Fff'") == [KICKOFF]


def test_upper_case_escape_letters_are_accepted() -> None:
    assert ids("SELECT Id FROM Event WHERE Description = 'line1\\Nline2'") == [KICKOFF]


def test_unknown_backslash_escape_is_malformed() -> None:
    assert error("SELECT Id FROM Contact WHERE Email = 'a\\qb'").error_code == "MALFORMED_QUERY"


def test_wildcard_escape_outside_like_is_malformed() -> None:
    assert error("SELECT Id FROM Event WHERE Subject = '100\\%'").error_code == "MALFORMED_QUERY"


def test_unterminated_string_is_malformed() -> None:
    assert error("SELECT Id FROM Contact WHERE Email = 'ann").error_code == "MALFORMED_QUERY"


def test_string_comparison_orders_case_insensitively() -> None:
    assert ids("SELECT Id FROM Account WHERE Name > 'ACME'") == [GLOBEX]


# --- WHERE: logic -------------------------------------------------------------------------------

def test_and_requires_both() -> None:
    assert ids("SELECT Id FROM Opportunity WHERE IsClosed = false AND Amount > 0") == [BIG_DEAL]


def test_or_requires_either() -> None:
    assert ids("SELECT Id FROM Opportunity WHERE Name = 'Orphan' OR IsClosed = true") \
        == [RENEWAL, ORPHAN]


def test_not_negates() -> None:
    assert ids("SELECT Id FROM Opportunity WHERE NOT IsClosed = false") == [RENEWAL]


def test_mixing_and_or_without_parentheses_is_malformed() -> None:
    err = error("SELECT Id FROM Opportunity WHERE IsClosed = false AND Amount > 0 OR Name = 'x'")
    assert err.error_code == "MALFORMED_QUERY"
    assert err.message.endswith("unexpected token: 'OR'")


def test_parentheses_allow_mixing_and_or() -> None:
    assert ids("SELECT Id FROM Opportunity WHERE (IsClosed = false AND Amount > 0) "
               "OR Name = 'Globex renewal'") == [BIG_DEAL, RENEWAL]


def test_not_with_parentheses() -> None:
    assert ids("SELECT Id FROM Opportunity WHERE NOT (IsClosed = true OR Amount < 0)") == [BIG_DEAL]


# --- WHERE: types -------------------------------------------------------------------------------

def test_boolean_literal_matches() -> None:
    assert ids("SELECT Id FROM Lead WHERE IsConverted = FALSE") == [LEAD]


def test_decimal_comparison() -> None:
    assert ids("SELECT Id FROM Opportunity WHERE Amount >= 999.5") == [BIG_DEAL]


def test_negative_number_literal() -> None:
    assert ids("SELECT Id FROM Opportunity WHERE Amount = -50.5") == [ORPHAN]


def test_integer_comparison() -> None:
    assert ids("SELECT Id FROM Event WHERE DurationInMinutes < 60") == [LEAD_CALL]


def test_null_number_never_satisfies_an_ordering() -> None:
    assert RENEWAL not in ids("SELECT Id FROM Opportunity WHERE Amount < 100000")


def test_date_comparison() -> None:
    assert ids("SELECT Id FROM Opportunity WHERE CloseDate > 2026-01-01") == [BIG_DEAL, ORPHAN]


def test_datetime_comparison_with_z() -> None:
    assert ids("SELECT Id FROM Event WHERE StartDateTime >= 2026-01-05T00:00:00Z") \
        == [KICKOFF, LEAD_CALL]


def test_datetime_comparison_with_milliseconds() -> None:
    assert ids("SELECT Id FROM Event WHERE StartDateTime = 2026-01-05T15:00:00.000Z") == [KICKOFF]


def test_datetime_literal_offset_is_an_instant() -> None:
    # 2026-01-05T00:00:00+01:00 is 2026-01-04T23:00:00Z, the start of "account sync".
    assert ids("SELECT Id FROM Event WHERE StartDateTime = 2026-01-05T00:00:00+01:00") \
        == [ACCOUNT_SYNC]


def test_datetime_literal_on_date_field_is_invalid_field() -> None:
    err = error("SELECT Id FROM Opportunity WHERE CloseDate > 2026-01-01T00:00:00Z")
    assert err.error_code == "INVALID_FIELD"
    assert "must be of type date" in err.message


def test_quoted_boolean_is_invalid_field() -> None:
    err = error("SELECT Id FROM Lead WHERE IsConverted = 'false'")
    assert err.error_code == "INVALID_FIELD"
    assert err.message.endswith("value of filter criterion for field 'IsConverted' must be of "
                                "type boolean and should not be enclosed in quotes")


def test_unquoted_string_value_is_invalid_field() -> None:
    assert error("SELECT Id FROM Contact WHERE Email = 5").error_code == "INVALID_FIELD"


def test_invalid_calendar_date_is_malformed() -> None:
    assert error("SELECT Id FROM Opportunity WHERE CloseDate = 2026-02-30").error_code \
        == "MALFORMED_QUERY"


def test_today_matches_the_current_utc_day() -> None:
    assert ids("SELECT Id FROM Event WHERE StartDateTime = TODAY", now=NOW) == [LEAD_CALL]


def test_yesterday_on_a_date_field() -> None:
    assert ids("SELECT Id FROM Event WHERE ActivityDate = YESTERDAY", now=NOW) == [KICKOFF]


def test_last_n_days_covers_today_and_n_days_back() -> None:
    assert ids("SELECT Id FROM Event WHERE StartDateTime = LAST_N_DAYS:1", now=NOW) \
        == [KICKOFF, LEAD_CALL]


def test_greater_than_today_means_after_today() -> None:
    assert ids("SELECT Id FROM Opportunity WHERE CloseDate > TODAY", now=NOW) == [BIG_DEAL, ORPHAN]


# --- WHERE: ids ---------------------------------------------------------------------------------

def test_fifteen_char_id_matches_eighteen_char_id() -> None:
    assert ids(f"SELECT Id FROM Contact WHERE Id = '{ANN[:15]}'") == [ANN]


def test_eighteen_char_id_checksum_is_case_insensitive() -> None:
    assert ids(f"SELECT Id FROM Contact WHERE Id = '{ANN[:15] + ANN[15:].lower()}'") == [ANN]


def test_fifteen_char_id_is_case_sensitive() -> None:
    assert ids(f"SELECT Id FROM Contact WHERE Id = '{ANN[:15].lower()}'") == []


def test_reference_field_in_list_accepts_fifteen_char_ids() -> None:
    assert ids(f"SELECT Id FROM Contact WHERE AccountId IN ('{GLOBEX[:15]}')") == [OBRIEN]


# --- WHERE: parent paths and semi-joins ---------------------------------------------------------

def test_parent_field_in_where() -> None:
    assert ids("SELECT Id FROM OpportunityContactRole WHERE Opportunity.IsClosed = false") \
        == [ROLE_ANN]


def test_parent_string_in_where_is_case_insensitive() -> None:
    assert ids("SELECT Id FROM Contact WHERE Account.Name = 'ACME'") == [ANN, BOB]


def test_polymorphic_type_in_where() -> None:
    assert ids("SELECT Id FROM Event WHERE What.Type = 'Opportunity'") == [KICKOFF]


def test_polymorphic_type_in_list() -> None:
    assert ids("SELECT Id FROM Event WHERE Who.Type IN ('lead')") == [LEAD_CALL]


def test_semi_join_keeps_rows_in_subselect() -> None:
    assert ids("SELECT Id FROM Contact WHERE Id IN (SELECT ContactId FROM OpportunityContactRole "
               "WHERE Opportunity.IsClosed = false)") == [ANN]


def test_semi_join_not_in_drops_rows_in_subselect() -> None:
    assert ids("SELECT Id FROM Contact WHERE Id NOT IN (SELECT ContactId FROM "
               "OpportunityContactRole)") == [SLASH, BOB]


def test_semi_join_on_reference_field() -> None:
    assert ids("SELECT Id FROM Opportunity WHERE AccountId IN (SELECT AccountId FROM Contact "
               "WHERE Email LIKE 'bob%')") == [BIG_DEAL]


def test_semi_join_with_or_is_malformed() -> None:
    err = error("SELECT Id FROM Contact WHERE Email = 'x' OR Id IN "
                "(SELECT ContactId FROM OpportunityContactRole)")
    assert err.error_code == "MALFORMED_QUERY"


def test_semi_join_selecting_two_fields_is_malformed() -> None:
    err = error("SELECT Id FROM Contact WHERE Id IN (SELECT ContactId, Id FROM "
                "OpportunityContactRole)")
    assert err.error_code == "MALFORMED_QUERY"


def test_semi_join_unknown_inner_object_is_invalid_type() -> None:
    assert error("SELECT Id FROM Contact WHERE Id IN (SELECT ContactId FROM Nope)").error_code \
        == "INVALID_TYPE"


# --- ORDER BY, LIMIT, OFFSET ------------------------------------------------------------------

def test_order_by_ascending_puts_nulls_first_by_default() -> None:
    assert ids("SELECT Id FROM Opportunity ORDER BY Amount") == [RENEWAL, ORPHAN, BIG_DEAL]


def test_order_by_descending_puts_nulls_last_by_default() -> None:
    assert ids("SELECT Id FROM Opportunity ORDER BY Amount DESC") == [BIG_DEAL, ORPHAN, RENEWAL]


def test_order_by_nulls_last_ascending() -> None:
    assert ids("SELECT Id FROM Opportunity ORDER BY Amount ASC NULLS LAST") \
        == [ORPHAN, BIG_DEAL, RENEWAL]


def test_order_by_nulls_first_descending() -> None:
    assert ids("SELECT Id FROM Opportunity ORDER BY Amount DESC NULLS FIRST") \
        == [RENEWAL, BIG_DEAL, ORPHAN]


def test_order_by_string_is_case_insensitive() -> None:
    # "account sync" sorts before "Kickoff" only when case is ignored.
    assert ids("SELECT Id FROM Event WHERE Id != null ORDER BY Subject")[:2] \
        == [PERCENT, ACCOUNT_SYNC]


def test_order_by_several_keys() -> None:
    assert ids("SELECT Id FROM Opportunity ORDER BY StageName DESC, Name DESC") \
        == [ORPHAN, BIG_DEAL, RENEWAL]


def test_order_by_parent_field() -> None:
    assert ids("SELECT Id FROM Contact ORDER BY Account.Name DESC NULLS LAST, Email") \
        == [OBRIEN, ANN, BOB, SLASH]


def test_order_by_datetime() -> None:
    assert ids("SELECT Id FROM Event ORDER BY StartDateTime DESC NULLS LAST") \
        == [LEAD_CALL, KICKOFF, ACCOUNT_SYNC, PERCENT]


def test_limit_caps_rows() -> None:
    assert ids("SELECT Id FROM Opportunity ORDER BY Name LIMIT 2") == [BIG_DEAL, RENEWAL]


def test_offset_skips_rows() -> None:
    assert ids("SELECT Id FROM Opportunity ORDER BY Name LIMIT 5 OFFSET 1") == [RENEWAL, ORPHAN]


def test_offset_above_2000_is_malformed() -> None:
    assert error("SELECT Id FROM Account LIMIT 10 OFFSET 2001").error_code == "MALFORMED_QUERY"


# --- deleted rows (queryAll) --------------------------------------------------------------------

def test_deleted_rows_are_hidden_from_query() -> None:
    assert GONE not in ids("SELECT Id FROM Contact")


def test_include_deleted_returns_deleted_rows() -> None:
    assert ids("SELECT Id FROM Event WHERE ExtId__c = 'k5'", include_deleted=True) \
        == [DELETED_EVENT]


# --- errors -------------------------------------------------------------------------------------

def test_unknown_object_is_invalid_type() -> None:
    err = error("SELECT Id FROM Foo")
    assert err.error_code == "INVALID_TYPE"
    assert err.message.endswith(
        "sObject type 'Foo' is not supported. If you are attempting to use a custom object, be "
        "sure to append the '__c' after the entity name. Please reference your WSDL or the "
        "describe call for the appropriate names.")


def test_unknown_field_is_invalid_field_in_salesforce_layout() -> None:
    err = error("SELECT Id, Foo__c FROM Event")
    assert err.error_code == "INVALID_FIELD"
    assert err.message == (
        "\nSELECT Id, Foo__c FROM Event\n           ^\nERROR at Row:1:Column:12\n"
        "No such column 'Foo__c' on entity 'Event'. If you are attempting to use a custom "
        "field, be sure to append the '__c' after the custom field name. Please reference your "
        "WSDL or the describe call for the appropriate names.")


def test_unknown_field_fails_even_on_an_empty_table() -> None:
    assert error("SELECT Nope FROM Account", MemoryData()).error_code == "INVALID_FIELD"


def test_unknown_field_in_where_is_invalid_field() -> None:
    err = error("SELECT Id FROM Contact WHERE Phone__c = 'x'")
    assert (err.error_code, "No such column 'Phone__c' on entity 'Contact'" in err.message) \
        == ("INVALID_FIELD", True)


def test_unknown_field_on_parent_names_the_parent_entity() -> None:
    assert "on entity 'Account'" in error("SELECT Account.Nope FROM Contact").message


def test_unknown_relationship_is_invalid_field() -> None:
    err = error("SELECT Owner.Name FROM Contact")
    assert err.error_code == "INVALID_FIELD"
    assert "Didn't understand relationship 'Owner'" in err.message


def test_syntax_error_names_the_unexpected_token() -> None:
    err = error("SELECT Id FROM Contact WHERE Email == 'a'")
    assert err.error_code == "MALFORMED_QUERY"
    assert err.message.endswith("unexpected token: '='")
    assert "ERROR at Row:1:Column:37" in err.message


def test_missing_end_of_query_is_unexpected_eof() -> None:
    assert error("SELECT Id FROM").message.endswith("unexpected token: '<EOF>'")


def test_error_row_and_column_count_lines() -> None:
    assert "ERROR at Row:2:Column:14" in error("SELECT Id\nFROM Contact Contact").message


def test_error_on_a_very_long_line_echoes_a_window_around_the_caret() -> None:
    emails = ", ".join(f"'user{n}@example.com'" for n in range(500))
    err = error(f"SELECT Id FROM Contact WHERE Email IN ({emails}) AND Nope__c = 1")
    _, line, caret, where, _ = err.message.split("\n", 4)
    assert len(line) <= 200
    assert line[caret.index("^"):].startswith("Nope__c")
    assert where.startswith("ERROR at Row:1:Column:")


def test_unsupported_clause_is_malformed() -> None:
    assert error("SELECT Name FROM Account GROUP BY Name").error_code == "MALFORMED_QUERY"


def test_aggregate_function_is_malformed() -> None:
    assert error("SELECT COUNT(Id) FROM Account").error_code == "MALFORMED_QUERY"


def test_statement_over_100000_chars_is_malformed() -> None:
    text = "SELECT Id FROM Account WHERE Name = 'x'" + " " * 100_000
    err = error(text)
    assert err.error_code == "MALFORMED_QUERY"


def test_string_literal_over_4000_chars_is_malformed() -> None:
    err = error("SELECT Id FROM Account WHERE Name = '" + "a" * 4001 + "'")
    assert err.error_code == "MALFORMED_QUERY"


def test_string_literal_of_4000_chars_is_accepted() -> None:
    assert ids("SELECT Id FROM Account WHERE Name = '" + "a" * 4000 + "'") == []


def test_deep_nesting_is_a_soql_error_not_a_recursion_error() -> None:
    assert error("SELECT Id FROM Account WHERE " + "(" * 5000 + "Name = 'x'" + ")" * 5000) \
        .error_code == "MALFORMED_QUERY"


_VOCABULARY = [
    "SELECT", "Id", "Email", "Account.Name", "What.Type", "FROM", "Contact", "Event", "WHERE",
    "AND", "OR", "NOT", "IN", "LIKE", "(", ")", ",", "=", "!=", "<", ">=", "'a'", "'o\\'b'",
    "null", "true", "2026-01-05", "2026-01-05T00:00:00Z", "12", "-1.5", "ORDER", "BY", "DESC",
    "NULLS", "LAST", "LIMIT", "OFFSET", "COUNT()", "TODAY", "LAST_N_DAYS:2", "'\\", ".", ":",
    "SELECT ContactId FROM OpportunityContactRole", "\u00b2", "\u0663", "2026-13-01",
]


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.text(max_size=80))
def test_random_text_gives_soql_error_or_result(text: str) -> None:
    try:
        execute(text, SCHEMA, org(), now=NOW)
    except SoqlError as exc:
        assert exc.error_code in {"MALFORMED_QUERY", "INVALID_FIELD", "INVALID_TYPE"}


@settings(max_examples=500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.sampled_from(_VOCABULARY), max_size=20))
def test_random_token_soup_gives_soql_error_or_result(words: list[str]) -> None:
    try:
        execute(" ".join(words), SCHEMA, org(), now=NOW)
    except SoqlError as exc:
        assert exc.error_code in {"MALFORMED_QUERY", "INVALID_FIELD", "INVALID_TYPE"}


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.sampled_from(_VOCABULARY[9:]), max_size=12))
def test_random_where_clause_gives_soql_error_or_result(words: list[str]) -> None:
    try:
        execute("SELECT Id, Who.Type FROM Event WHERE " + " ".join(words), SCHEMA, org(), now=NOW)
    except SoqlError as exc:
        assert exc.error_code in {"MALFORMED_QUERY", "INVALID_FIELD", "INVALID_TYPE"}


# --- performance --------------------------------------------------------------------------------

def test_email_in_500_values_over_5000_rows_is_fast() -> None:
    rows = [{"Id": make_id("003", 1000 + n), "Email": f"user{n}@example.com", "AccountId": None,
             "IsDeleted": False} for n in range(5000)]
    data = MemoryData({"Contact": rows})
    wanted = ", ".join(f"'USER{n}@example.com'" for n in range(0, 5000, 10))
    started = time.perf_counter()
    result = execute(f"SELECT Id, Email FROM Contact WHERE Email IN ({wanted})", SCHEMA, data)
    elapsed = time.perf_counter() - started
    assert len(result.records) == 500
    assert elapsed < 0.5
