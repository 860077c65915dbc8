"""The handbook: the example agreement byte for byte, one phrase per operator and helper, and the diff in words."""

from __future__ import annotations

import json
import os
from datetime import date
from pathlib import Path

import pytest

import engine
from engine import handbook as hb
from engine.handbook.phrasebook import Phrasebook

REPO = Path(__file__).resolve().parent.parent
GOLDEN = REPO / "tests" / "fixtures" / "golden" / "handbook-example.md"
AS_OF = date(2026, 11, 20)


def example_handbook(text_patch: tuple[str, str, str] | None = None) -> hb.Handbook:
    files = dict(engine.load_policies(REPO / "policies").source_files)
    if text_patch:
        name, old, new = text_patch
        assert old in files[name].decode()
        files[name] = files[name].decode().replace(old, new, 1).encode()
    ps = engine.load_policy_files(files, "policies", revision="golden")
    return hb.handbook(ps, AS_OF)


def test_example_handbook_matches_the_golden_file() -> None:
    text = hb.to_markdown(example_handbook())
    if os.environ.get("LEADOPS_UPDATE_GOLDEN"):
        GOLDEN.write_text(text, encoding="utf-8")
    assert text == GOLDEN.read_text(encoding="utf-8"), (
        "the handbook changed; if intended, rerun with LEADOPS_UPDATE_GOLDEN=1 and review the diff")


def test_handbook_states_the_agreement_in_words() -> None:
    text = hb.to_markdown(example_handbook())
    assert "| Registered Australian business (has an ABN) | the ABN is known | +10 |" in text
    assert "Entered automatically when the total score is at least 50" in text
    assert "| 2027-01-26 | Tuesday | Australia Day |" in text  # the coming year's holidays, from AS_OF
    assert "| 2026-11-19 |" not in text
    assert "Changes need the approval of sales-ops." in text


def test_html_is_self_contained_and_escaped() -> None:
    page = hb.to_html(example_handbook())
    assert page.startswith("<!doctype html>")
    assert "<script" not in page and "http://" not in page and "https://" not in page
    assert "<td>the country is “AU” and the state is “QLD”</td>" in page


SCHEMA = {"properties": {"employees": {"title": "Number of employees", "type": "integer"},
                         "is_student": {"title": "Student flag", "type": "boolean"},
                         "email": {"type": "string"},
                         "company": {"properties": {"industry": {"title": "Industry"}}}}}


@pytest.mark.parametrize("source, words", [
    # comparisons, each operator and its negation
    ("lead.employees == 50", "the number of employees is 50"),
    ("lead.employees != 50", "the number of employees is not 50"),
    ("lead.employees < 50", "the number of employees is less than 50"),
    ("lead.employees <= 50", "the number of employees is at most 50"),
    ("lead.employees > 50", "the number of employees is more than 50"),
    ("lead.employees >= 50", "the number of employees is at least 50"),
    ("not lead.employees >= 50", "the number of employees is less than 50"),
    ("lead.company.industry in ['software', 'retail']", "the industry is one of “software” or “retail”"),
    ("lead.company.industry not in ['software']", "the industry is not “software”"),
    ("'x' in lead.email", "the email contains “x”"),
    ("10 < lead.employees < 20", "10 is less than the number of employees and the number of employees is less than 20"),
    # boolean fields, and / or / not, nesting
    ("lead.is_student", "the student flag is set"),
    ("not lead.is_student", "the student flag is not set"),
    ("lead.is_student and lead.employees > 5", "the student flag is set and the number of employees is more than 5"),
    ("lead.is_student or lead.employees > 5", "the student flag is set or the number of employees is more than 5"),
    ("not (lead.is_student or lead.employees > 5)", "the student flag is not set and the number of employees is at most 5"),
    ("lead.employees > 5 and (lead.is_student or present(lead.email))",
     "the number of employees is more than 5, and either the student flag is set or the email is known"),
    ("True", "always"),
    # arithmetic
    ("lead.employees + 1 > 2", "the number of employees plus 1 is more than 2"),
    ("lead.employees - 1 > 2", "the number of employees minus 1 is more than 2"),
    ("lead.employees * 2 > 2", "the number of employees times 2 is more than 2"),
    ("lead.employees / 2 > 2", "the number of employees divided by 2 is more than 2"),
    ("lead.employees // 2 > 2", "the number of employees divided by (whole part) 2 is more than 2"),
    ("lead.employees % 2 == 0", "the number of employees modulo 2 is 0"),
    ("lead.employees ** 2 > 2", "the number of employees to the power of 2 is more than 2"),
    ("lead.employees > -1", "the number of employees is more than -1"),
    ("-lead.employees < +3", "minus the number of employees is less than 3"),
    # scope names
    ("score.total >= 50", "the total score is at least 50"),
    ("score.fit >= 10", "the fit score is at least 10"),
    ("stage == 'sql'", "the decided stage is “sql”"),
    ("activity.url == '/x'", "the page address is “/x”"),
    # helpers
    ("present(lead.email)", "the email is known"),
    ("missing(lead.email)", "the email is unknown"),
    ("not present(lead.email)", "the email is unknown"),
    ("coalesce(lead.employees, 0) > 5", "the number of employees (or 0 when unknown) is more than 5"),
    ("lower(lead.email) == 'a'", "the email (in any case) is “a”"),
    ("upper(lead.email) == 'A'", "the email (in any case) is “A”"),
    ("strip(lead.email) == 'a'", "the email (without surrounding spaces) is “a”"),
    ("startswith(lead.email, 'a')", "the email starts with “a”"),
    ("endswith(lead.email, '.edu')", "the email ends with “.edu”"),
    ("not endswith(lead.email, '.edu')", "the email does not end with “.edu”"),
    ("contains(lead.email, '+')", "the email contains “+”"),
    ("len(lead.email) > 3", "the length of the email is more than 3"),
    ("min(lead.employees, 10) > 3", "the smallest of the number of employees and 10 is more than 3"),
    ("max(lead.employees, 10) > 3", "the largest of the number of employees and 10 is more than 3"),
    ("abs(lead.employees) > 3", "the size of the number of employees (ignoring sign) is more than 3"),
    ("round(lead.employees) > 3", "the number of employees rounded is more than 3"),
    ("round(lead.employees, ndigits=1) > 3", "the number of employees rounded to 1 decimals is more than 3"),
    ("email_domain(lead.email) == 'a.com'", "the domain of the email is “a.com”"),
    ("is_free_email(lead.email)", "the email is a free-mail address"),
    ("not is_free_email(lead.email)", "the email is not a free-mail address"),
    ("days_since(lead.stage_entered_at) > 3", "the days since the stage entered at is more than 3"),
    ("hours_since(lead.stage_entered_at) > 3", "the hours since the stage entered at is more than 3"),
    ("count_activities('page_view', within_days=30) >= 3",
     "the number of page view activities in the last 30 days is at least 3"),
    ("count_activities('page_view', within_days=7, url='/pricing') >= 1",
     "the number of page view activities in the last 7 days on “/pricing” is at least 1"),
    ("has_activity('demo_request', within_days=30)", "the lead had a demo request in the last 30 days"),
    ("not has_activity('demo_request')", "the lead had no demo request"),
    ("days_since(last_activity_at('form_fill')) < 7", "the days since the time of the last form fill is less than 7"),
    ("matches(lead.email, '^a')", "the email matches the pattern “^a”"),
])
def test_phrasebook(source: str, words: str) -> None:
    assert Phrasebook(SCHEMA).phrase(source) == words


def test_every_helper_and_operator_has_a_phrase() -> None:
    import ast

    from engine.expr.functions import HELPERS
    from engine.expr.sandbox import ALLOWED_OPERATORS
    from engine.handbook.phrasebook import ARITHMETIC, COMPARE, CONDITION_HELPERS, VALUE_HELPERS

    assert set(HELPERS) <= set(CONDITION_HELPERS) | set(VALUE_HELPERS)
    assert ALLOWED_OPERATORS <= set(COMPARE) | set(ARITHMETIC) | {ast.And, ast.Or, ast.Not, ast.USub, ast.UAdd}


@pytest.mark.parametrize("source", [
    "lead.activities[0].type == 'x'",  # subscripts have no phrase
    "(lead.employees if lead.is_student else 3) > 1",  # nor conditional values
    "lead.employees > (",  # nor does text that is not an expression
])
def test_unphrasable_expressions_are_shown_as_written(source: str) -> None:
    assert Phrasebook(SCHEMA).phrase(source) == f"`{' '.join(source.split())}`"


def test_threshold_change_reads_as_one_changed_sentence() -> None:
    old = example_handbook()
    new = example_handbook(("policies/stages.yaml", "score.total >= 50", "score.total >= 60"))
    changes = hb.diff_handbooks(old, new)
    assert [(c.kind, c.key) for c in changes] == [("changed", "stage:sql")]
    assert "at least 50" in changes[0].before and "at least 60" in changes[0].after
    md = hb.diff_markdown(changes)
    assert md.startswith("1 sentence of the handbook changes:")
    assert "~~50~~," in md and "**60**," in md


def test_added_and_removed_sentences() -> None:
    old = example_handbook()
    new = example_handbook(("policies/stages.yaml", "  - {code: re-engaged, description: Re-opened after new engagement}\n",
                            "  - {code: no-show, description: Missed the booked meeting}\n"))
    kinds = sorted((c.kind, c.key) for c in hb.diff_handbooks(old, new))
    assert kinds == [("added", "reason:no-show"), ("removed", "reason:re-engaged")]


def test_cli_handbook_is_deterministic_for_a_revision() -> None:
    from click.testing import CliRunner

    from cli import cli

    args = ["handbook", "--rev", "HEAD", "--policies", str(REPO / "policies")]
    first, second = (CliRunner().invoke(cli, args) for _ in range(2))
    assert first.exit_code == 0 and first.output == second.output
    assert first.output.startswith("# Rules of engagement: acme-revenue")
    page = CliRunner().invoke(cli, args + ["--format", "html"])
    assert page.output.startswith("<!doctype html>") and "Who gets which lead" in page.output
    bad = CliRunner().invoke(cli, args + ["--as-of", "soon"])
    assert bad.exit_code == 2 and "is not a date" in bad.output
    assert isinstance(bad.exception, SystemExit)  # a usage error, not a traceback
