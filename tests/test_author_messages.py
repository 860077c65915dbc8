"""Messages that send policy authors the right way (issue 11): each mistake a new author makes gets the fix
in its hint, and a suggested fix is itself valid."""

from __future__ import annotations

import pytest

from engine.checks import did_you_mean


def only(diagnostics, code: str):
    (d,) = [x for x in diagnostics if x.code == code]
    return d


def test_duration_written_in_words_says_what_a_duration_looks_like(example_set) -> None:
    example_set.patch("slas.yaml", "respond_within: 4h", "respond_within: 2 hours")
    d = only(example_set.diagnostics(), "SCHEMA001")
    assert d.message.endswith("'2 hours' is not a duration")
    assert "'2h', '30m', '1d'" in d.hint
    assert "indentation" not in d.hint and "number" not in d.message


def test_quoted_number_says_remove_the_quotes(example_set) -> None:
    example_set.patch("scoring.yaml", "points: -40", 'points: "-40"')
    d = only(example_set.diagnostics(), "SCHEMA001")
    assert "remove the quotes" in d.hint and "write -40" in d.hint
    assert "indentation" not in d.hint


def test_misnested_mapping_still_points_at_the_indentation(mini_set) -> None:
    mini_set.patch("slas.yaml", "applies_to: {stages: [mql]}", "applies_to: mql")
    d = only(mini_set.diagnostics(), "SCHEMA001")
    assert "indentation" in d.hint


def test_upper_case_stage_reference_offers_the_lower_case_id(example_set) -> None:
    example_set.patch("slas.yaml", "applies_to: {stages: [mql]}", "applies_to: {stages: [MQL]}")
    d = only(example_set.diagnostics(), "SCHEMA001")
    assert d.hint.startswith("did you mean 'mql'?")


def test_did_you_mean_matches_ids_whatever_their_case() -> None:
    assert did_you_mean("SQL", ["mql", "sql", "sal"]) == "did you mean 'sql'? "
    assert did_you_mean("Anz-Enterprise", ["anz-enterprise", "seq-smb"]) == "did you mean 'anz-enterprise'? "
    assert did_you_mean("sqll", ["mql", "sql"]) == "did you mean 'sql'? "
    assert did_you_mean("sql", ["sql"]) == ""


def test_city_that_is_not_a_zone_suggests_the_zone_it_keeps(example_set) -> None:
    example_set.patch("calendars.yaml", "timezone: America/New_York", "timezone: America/San_Francisco")
    d = only(example_set.diagnostics(), "CAL001")
    assert d.hint.startswith("did you mean 'America/Los_Angeles'?")
    assert "Caracas" not in d.hint
    assert "zoneinfo.available_timezones()" in d.hint  # how to list the valid names


def test_zone_typo_still_gets_the_close_spelling(example_set) -> None:
    example_set.patch("calendars.yaml", "timezone: Australia/Sydney", "timezone: Australia/Sidney")
    assert only(example_set.diagnostics(), "CAL001").hint.startswith("did you mean 'Australia/Sydney'?")


def test_unknown_subdivision_hint_uses_the_calendars_own_country(example_set) -> None:
    example_set.patch("calendars.yaml", "{country: US, subdivision: NY}", "{country: US, subdivision: QQ}")
    d = only(example_set.diagnostics(), "CAL001")
    assert "'QQ' for country 'US'" in d.message and " NY," in d.message
    assert "US" in d.hint and "AU" not in d.hint and "QLD" not in d.hint


@pytest.mark.parametrize("method", ['lead.email.lower().endswith(".edu")', 'lead.email.casefold().endswith(".edu")'])
def test_method_call_hint_is_accepted_by_the_checker(example_set, method: str) -> None:
    """The rewrite offered in the hint, pasted back into the policy, validates."""
    original = 'endswith(lower(lead.email), ".edu")'
    example_set.patch("scoring.yaml", original, method)
    d = only(example_set.diagnostics(), "EXPR002")
    suggestion = d.hint.rsplit(": ", 1)[1]
    assert suggestion == original
    example_set.patch("scoring.yaml", method, suggestion).load()


def test_stage_literal_in_the_wrong_case_is_refused_with_the_id(example_set) -> None:
    """`stage` is one of the declared stage ids: a literal no stage has can never match (a silent bug before)."""
    example_set.patch("routing.yaml", 'stage in ["nurture", "recycled",', 'stage in ["Nurture", "recycled",')
    d = only(example_set.diagnostics(), "EXPR005")
    assert "'Nurture' is not an allowed value of stage" in d.message
    assert d.hint.startswith("did you mean 'nurture'?")


def test_scenario_reference_in_the_wrong_case_offers_the_id(example_set) -> None:
    from click.testing import CliRunner

    from cli import cli

    scen = example_set.root / "scenarios"
    scen.mkdir()
    (scen / "case.yaml").write_text(
        "kind: scenarios\ndefaults: {now: 2026-11-23T09:00:00+10:00}\nscenarios:\n"
        "  - name: wrong case\n    lead: {id: L-1, email: a@b.com}\n    expect:\n      route.team: ANZ-Enterprise\n")
    r = CliRunner().invoke(cli, ["test", str(scen), "--policies", str(example_set.policies)])
    assert r.exit_code == 1 and "did you mean 'anz-enterprise'?" in r.output, r.output
