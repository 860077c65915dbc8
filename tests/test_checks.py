"""Every validation error code, one fixture each: tests/fixtures/invalid/<CODE>-<slug>/.

Each fixture is the minimal valid policy set (tests/fixtures/policies/minimal) with exactly one mistake and an
`expected.json` naming the diagnostic it must produce: code, file, line, column (the text it points at is in
`points_at`) and a message fragment. Regenerate with tests/fixtures/invalid/_make_fixtures.py.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

import engine
from engine.errors import PolicyError
from conftest import MINIMAL, REPO

INVALID = REPO / "tests" / "fixtures" / "invalid"
FIXTURES = sorted(p for p in INVALID.iterdir() if p.is_dir())
IDS = [p.name for p in FIXTURES]


def diagnostics_of(fixture: Path) -> list[engine.Diagnostic]:
    with pytest.raises(PolicyError) as info:
        engine.load_policies(fixture / "policies")
    return info.value.diagnostics


def expected_of(fixture: Path) -> dict:
    return json.loads((fixture / "expected.json").read_text(encoding="utf-8"))


def test_minimal_base_set_is_valid() -> None:
    ps = engine.load_policies(MINIMAL / "policies")
    assert ps.describe()["routing_rules"] == 3


def test_fixture_names_match_their_expected_code() -> None:
    assert FIXTURES, "no fixtures found"
    for fixture in FIXTURES:
        code = fixture.name.split("-", 1)[0]
        assert expected_of(fixture)["code"] == code, fixture.name


@pytest.mark.parametrize("fixture", FIXTURES, ids=IDS)
def test_fixture_reports_its_diagnostic_at_the_mistake(fixture: Path) -> None:
    exp = expected_of(fixture)
    diags = diagnostics_of(fixture)
    found = [(d.code, d.location.file, d.location.line, d.location.column) for d in diags]
    want = (exp["code"], exp["file"], exp["line"], exp["column"])
    assert want in found, f"expected {want} (pointing at {exp['points_at']!r}); got {found}"
    diag = next(d for d in diags if (d.code, d.location.file, d.location.line, d.location.column) == want)
    assert exp["message"] in diag.message
    assert diag.severity == "error"
    assert diag.format().startswith(f"{exp['file']}" + (f":{exp['line']}:{exp['column']}" if exp["line"] else "")
                                    + f": error[{exp['code']}]: ")


@pytest.mark.parametrize("fixture", FIXTURES, ids=IDS)
def test_fixture_diagnostic_has_a_hint(fixture: Path) -> None:
    """README: every error is reported with a hint."""
    code = expected_of(fixture)["code"]
    diag = next(d for d in diagnostics_of(fixture) if d.code == code)
    assert diag.hint.strip(), f"{diag.format()} has no hint"
    assert "\n  hint: " in diag.format()


@pytest.mark.parametrize("fixture", FIXTURES, ids=IDS)
def test_one_mistake_gives_exactly_one_diagnostic(fixture: Path) -> None:
    """No follow-on errors: the compiler promises that no error is reported twice or hidden behind another."""
    diags = diagnostics_of(fixture)
    assert len(diags) == 1, "\n".join(d.format() for d in diags)


def _emitted_codes() -> set[str]:
    """Every diagnostic code the compiler and checks can emit (read from their source, so new codes count)."""
    codes: set[str] = set()
    for module in ("compiler.py", "checks.py", "sources.py"):
        source = (REPO / "engine" / module).read_text(encoding="utf-8")
        codes |= set(re.findall(r'"((?:POL|SCHEMA|REF|RULE|CAL|DUR|LEADSCHEMA)\d{3})"', source))
    return codes


def test_every_emitted_code_has_a_fixture() -> None:
    covered = {expected_of(f)["code"] for f in FIXTURES}
    missing = _emitted_codes() - covered
    assert not missing, f"codes without a fixture in tests/fixtures/invalid: {sorted(missing)}"
    # and a few expression and YAML codes reach authors through the policy path
    assert {"EXPR001", "EXPR003", "EXPR004", "EXPR005", "EXPR008", "YAML001", "YAML002"} <= covered


def test_checks_docstring_lists_every_code_it_reports() -> None:
    import engine.checks as checks

    source = Path(checks.__file__).read_text(encoding="utf-8")
    body = source.split('"""', 2)[2]
    reported = set(re.findall(r'"((?:REF|RULE)\d{3})"', body))
    for code in reported:
        assert code in (checks.__doc__ or ""), f"{code} is reported by checks.py but not documented in its docstring"


def test_diagnostics_json_rendering_of_a_fixture() -> None:
    from engine import render

    fixture = INVALID / "REF003-unknown-team"
    data = json.loads(render.diagnostics_json(diagnostics_of(fixture)))
    assert data["valid"] is False
    (err,) = data["errors"]
    exp = expected_of(fixture)
    assert {k: err[k] for k in ("code", "file", "line", "column")} == {k: exp[k] for k in ("code", "file", "line", "column")}
    assert err["hint"].startswith("did you mean 'reps'?")


def test_two_mistakes_in_two_files_are_both_reported(mini_set) -> None:
    mini_set.patch("routing.yaml", "{team: reps}", "{team: rep}")
    mini_set.patch("stages.yaml", "{to: nurture, reason_required: true}", "{to: nurtur, reason_required: true}")
    assert sorted(mini_set.codes()) == ["REF002", "REF003"]


def test_diagnostics_are_sorted_by_location(mini_set) -> None:
    mini_set.patch("teams.yaml", "calendar: syd", "calendar: sydney")
    mini_set.patch("routing.yaml", "{queue: triage}", "{queue: triag}")
    mini_set.patch("routing.yaml", "{team: reps}", "{team: rep}")
    diags = mini_set.diagnostics()
    assert [d.code for d in diags] == ["REF003", "REF004", "REF005"]
    assert diags == sorted(diags, key=lambda d: d.sort_key())


def test_reference_errors_suggest_the_closest_known_id(mini_set) -> None:
    mini_set.patch("slas.yaml", "applies_to: {stages: [mql]}", "applies_to: {stages: [mq1]}")
    (diag,) = mini_set.diagnostics()
    assert diag.code == "REF002" and "did you mean 'mql'?" in diag.hint
    assert "known stages: mql, new, nurture, sql" in diag.hint


def test_fallback_rule_cannot_be_shadowed_by_a_true_condition(mini_set) -> None:
    """`when: true` counts as a catch-all: rules after it (other than the fallback) are unreachable."""
    mini_set.patch("routing.yaml", "  - id: au\n", "  - id: all\n    when: \"True\"\n    assign: {queue: triage}\n  - id: au\n")
    (diag,) = mini_set.diagnostics()
    assert diag.code == "RULE003" and "'all'" in diag.message


def test_escalation_percent_after_due_ordering_is_accepted(mini_set) -> None:
    """50% -> 100% -> +1h -> +2h is in order; equal steps are allowed."""
    mini_set.patch("slas.yaml", "      - {at: +2h, action: reassign, to: \"queue:triage\"}\n",
                   "      - {at: 100%, action: notify, to: manager}\n      - {at: 100%, action: notify, to: owner}\n"
                   "      - {at: +1h, action: notify, to: manager}\n      - {at: +2h, action: reassign, to: \"queue:triage\"}\n")
    assert len(mini_set.load().model.slas[0].escalations) == 5


def test_total_floor_above_total_cap(mini_set) -> None:
    mini_set.patch("scoring.yaml", "grade: [fit]\n", "grade: [fit]\ntotal: {cap: 10, floor: 20}\n")
    (diag,) = mini_set.diagnostics()
    assert diag.code == "RULE005" and "total floor 20 is above total cap 10" in diag.message
