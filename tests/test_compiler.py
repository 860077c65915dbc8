"""The compiler: passes yaml -> schema -> model -> references -> expressions -> checks, and the model it builds.

Per-code diagnostics live in test_checks.py (one fixture per code); these tests cover how the passes fit
together, what the model holds, and where expression errors are located.
"""

from __future__ import annotations

from datetime import timedelta

import pytest
import yaml

import engine
from conftest import EXAMPLE_POLICIES, LEAD_SCHEMA, MINIMAL
from engine.compiler import compile_policy_files
from engine.errors import PolicyError
from engine.policyset import content_revision


def files_of(policy_dir) -> dict[str, bytes]:
    files = {f"policies/{p.name}": p.read_bytes() for p in sorted(policy_dir.policies.glob("*.yaml"))}
    files["schemas/lead.schema.json"] = (policy_dir.root / "schemas" / "lead.schema.json").read_bytes()
    return files


# ---------------------------------------------------------------- the model


def test_model_mirrors_the_example_yaml(example_ps: engine.PolicySet) -> None:
    def doc(name: str) -> dict:
        return yaml.safe_load((EXAMPLE_POLICIES / name).read_text(encoding="utf-8"))

    m = example_ps.model
    meta = doc("leadops.yaml")
    assert (m.name, m.version) == (meta["name"], str(meta["version"]))
    assert [g.id for g in m.scoring.groups] == [g["id"] for g in doc("scoring.yaml")["groups"]]
    assert [[r.id for r in g.rules] for g in m.scoring.groups] == \
        [[r["id"] for r in g["rules"]] for g in doc("scoring.yaml")["groups"]]
    stages = doc("stages.yaml")
    assert [s.id for s in m.stages.pipeline] == [s["id"] for s in stages["pipeline"]]
    assert [s.pipeline_index for s in m.stages.pipeline] == list(range(len(stages["pipeline"])))
    assert all(s.pipeline_index is None for s in m.stages.detours)
    assert set(m.stages.reason_codes) == {r["code"] for r in stages["reason_codes"]}
    assert [r.id for r in m.routing] == [r["id"] for r in doc("routing.yaml")["rules"]]
    assert set(m.teams) == {t["id"] for t in doc("teams.yaml")["teams"]}
    assert set(m.calendars) == {c["id"] for c in doc("calendars.yaml")["calendars"]}
    assert m.default_calendar == doc("slas.yaml")["default_calendar"]
    assert m.max_changed_percent == meta["guard"]["max_changed_percent"]


def test_every_expression_is_compiled_once_at_load(example_ps: engine.PolicySet) -> None:
    m = example_ps.model
    exprs = [r.when for g in m.scoring.groups for r in g.rules if r.when]
    exprs += [r.where for g in m.scoring.groups for r in g.rules if r.where]
    exprs += [s.entry for s in (*m.stages.pipeline, *m.stages.detours) if s.entry]
    exprs += [r.when for r in m.routing if r.when] + [r.owner for r in m.routing if r.owner]
    assert len(exprs) > 30
    assert all(e.compiled is not None and callable(e.fn) for e in exprs)


def test_every_defined_id_has_a_location(example_ps: engine.PolicySet) -> None:
    locs = example_ps.model.locations
    assert locs["stage:mql"].file.endswith("stages.yaml") and locs["stage:mql"].line > 0
    assert locs["route:global-triage"].file.endswith("routing.yaml")
    for key, loc in locs.items():
        assert loc.file and loc.line > 0 and loc.column > 0, key


def test_routing_targets_and_owner_expression(mini_set) -> None:
    rules = {r.id: r for r in mini_set.load().model.routing}
    assert (rules["owner"].target_kind, rules["owner"].owner.source) == ("owner", "lead.account_owner")
    assert (rules["au"].target_kind, rules["au"].target, rules["au"].owner) == ("team", "reps", None)
    assert (rules["catch-all"].target_kind, rules["catch-all"].fallback, rules["catch-all"].when) == ("queue", True, None)


def test_members_default_to_weight_one_and_active(mini_set) -> None:
    team = mini_set.load().model.teams["reps"]
    ann, bob = team.members
    assert (ann.weight, ann.active, ann.out_of_office) == (2, True, ())
    assert (bob.weight, bob.active) == (1, True)
    assert [(a.start.isoformat(), a.end.isoformat()) for a in bob.out_of_office] == [("2026-12-21", "2027-01-08")]


@pytest.mark.parametrize("written,expected", [
    ("4h", timedelta(hours=4)),
    ("30m", timedelta(minutes=30)),
    ("1h30m", timedelta(minutes=90)),
    ("2d", timedelta(hours=48)),
    ("1.5h", timedelta(minutes=90)),
    ("3", timedelta(hours=3)),  # a bare number means hours
])
def test_durations(mini_set, written: str, expected: timedelta) -> None:
    mini_set.patch("slas.yaml", "respond_within: 4h", f"respond_within: {written}")
    assert mini_set.load().model.slas[0].respond_within == expected


def test_decay_is_inherited_from_the_group_and_can_be_switched_off(mini_set) -> None:
    mini_set.patch("scoring.yaml", "    floor: 0\n", "    floor: 0\n    decay: {every: 30d, factor: 0.25}\n")
    mini_set.patch("scoring.yaml", "        decay: {every: 7d, factor: 0.5}\n",
                   "        decay: {every: 7d, factor: 0.5}\n"
                   "      - id: inherits\n        activity: demo_request\n        points: 5\n"
                   "      - id: no-decay\n        activity: demo_request\n        points: 5\n        decay: false\n")
    rules = {r.id: r for r in mini_set.load().model.scoring.groups[0].rules}
    assert rules["big"].decay is None  # condition rules never decay
    assert (rules["pricing"].decay.every, rules["pricing"].decay.factor) == (timedelta(days=7), 0.5)
    assert (rules["inherits"].decay.every, rules["inherits"].decay.factor) == (timedelta(days=30), 0.25)
    assert rules["no-decay"].decay is None


def test_escalation_steps(mini_set) -> None:
    (sla,) = mini_set.load().model.slas
    pct, after = sla.escalations
    assert (pct.percent, pct.after_due, pct.text, pct.to) == (50.0, None, "50%", "owner")
    assert (after.percent, after.after_due, after.text, after.to) == (None, timedelta(hours=2), "+2h", "queue:triage")
    assert sla.attempts.min == 2 and sla.attempts.activity == "call_attempt" and sla.attempts.before == ("nurture",)


# ---------------------------------------------------------------- passes and diagnostics


def test_one_broken_file_does_not_hide_the_errors_of_the_others(mini_set) -> None:
    """compiler docstring: a pass runs on what earlier passes accepted, so one broken file does not hide the
    errors of the others. A schema error in teams.yaml must not hide an expression error in scoring.yaml."""
    mini_set.patch("teams.yaml", "{id: ann, weight: 2}", "{id: ann, wieght: 2}")
    mini_set.patch("scoring.yaml", "lead.employees >= 50", "lead.employes >= 50")
    assert sorted(mini_set.codes()) == ["EXPR004", "SCHEMA001"]


def test_yaml_errors_in_two_files_are_both_reported(mini_set) -> None:
    mini_set.patch("stages.yaml", "initial: new\n", "initial: new\ninitial: mql\n")
    mini_set.patch("teams.yaml", "    manager: boss\n", "    manager: boss: big\n")
    diags = mini_set.diagnostics()
    assert {(d.code, d.location.file) for d in diags} == {
        ("YAML002", "policies/stages.yaml"), ("YAML001", "policies/teams.yaml")}


def test_every_expression_error_is_reported_not_just_the_first(mini_set) -> None:
    mini_set.patch("scoring.yaml", "lead.employees >= 50", "lead.employes >= 50")
    mini_set.patch("routing.yaml", 'lead.country == "AU"', 'lead.contry == "AU"')
    mini_set.patch("stages.yaml", "score.total >= 30", "score.totl >= 30")
    diags = mini_set.diagnostics()
    assert [(d.code, d.location.file) for d in diags] == [
        ("EXPR004", "policies/routing.yaml"), ("EXPR004", "policies/scoring.yaml"), ("EXPR004", "policies/stages.yaml")]
    assert "did you mean 'country'" in diags[0].hint
    assert "did you mean 'total'" in diags[2].hint


def test_schema_error_suggests_the_property_it_resembles(mini_set) -> None:
    mini_set.patch("teams.yaml", "{id: ann, weight: 2}", "{id: ann, wieght: 2}")
    (d,) = mini_set.diagnostics()
    assert d.code == "SCHEMA001" and "did you mean 'weight'?" in d.hint


def test_schema_error_for_missing_required_property(mini_set) -> None:
    mini_set.patch("routing.yaml", "    assign: {team: reps}\n", "")
    (d,) = mini_set.diagnostics()
    assert d.code == "SCHEMA001" and "'assign' is a required property" in d.message
    assert d.location.file == "policies/routing.yaml" and d.location.line == 6  # the rule missing it


def test_quoted_expression_error_points_inside_the_quotes(mini_set) -> None:
    mini_set.patch("scoring.yaml", "when: lead.employees >= 50", "when: \"lead.employes >= 50\"")
    (d,) = mini_set.diagnostics()
    line = mini_set.text("scoring.yaml").splitlines()[d.location.line - 1]
    assert line[d.location.column - 1:].startswith("lead.employes")


def test_expression_error_column_points_at_the_offending_part(mini_set) -> None:
    mini_set.patch("routing.yaml", 'lead.country == "AU"', 'lead.country == "AU" and lead.employees > "5"')
    (d,) = mini_set.diagnostics()
    line = mini_set.text("routing.yaml").splitlines()[d.location.line - 1]
    assert d.code == "EXPR005"
    assert line[d.location.column - 1:].startswith("lead.employees")


def test_block_scalar_expression_error_points_at_the_text_on_the_next_line(mini_set) -> None:
    mini_set.patch("stages.yaml", "entry: score.total >= 30", "entry: >\n      score.totl >= 30\n      and True")
    (d,) = mini_set.diagnostics()
    assert d.code == "EXPR004"
    assert (d.location.line, d.location.column) == (9, 7)
    assert mini_set.text("stages.yaml").splitlines()[8].strip().startswith("score.totl")


def test_expression_scopes_per_context(mini_set) -> None:
    """score is visible in stages/routing/SLAs, not in scoring; activity only in `where`; stage only in routing/SLAs."""
    mini_set.patch("scoring.yaml", "lead.employees >= 50", "score.total > 1")
    assert mini_set.codes() == ["EXPR003"]


def test_activity_is_not_in_scope_of_a_routing_condition(mini_set) -> None:
    mini_set.patch("routing.yaml", 'lead.country == "AU"', 'activity.url == "/x"')
    assert mini_set.codes() == ["EXPR003"]


def test_stage_and_score_are_in_scope_of_routing(mini_set) -> None:
    mini_set.patch("routing.yaml", 'lead.country == "AU"', 'stage == "mql" and score.fit >= 0 and score.fit_grade == "A"')
    mini_set.load()


def test_routing_owner_expression_must_give_a_string(mini_set) -> None:
    mini_set.patch("routing.yaml", "{owner: lead.account_owner}", "{owner: lead.employees}")
    (d,) = mini_set.diagnostics()
    assert d.code == "EXPR005" and d.location.file == "policies/routing.yaml" and d.location.line == 5


def test_unknown_enum_literal_is_rejected(example_set) -> None:
    example_set.patch("routing.yaml", 'lead.source == "partner"', 'lead.source == "partners"')
    (d,) = example_set.diagnostics()
    assert d.code == "EXPR005" and "partners" in d.message


def test_literal_outside_the_schema_pattern_is_rejected_at_the_literal() -> None:
    minimal = MINIMAL / "policies"
    files = {f"policies/{p.name}": p.read_bytes() for p in sorted(minimal.glob("*.yaml"))}
    files["schemas/lead.schema.json"] = LEAD_SCHEMA.read_bytes()  # country: "pattern": "^[A-Z]{2}$"
    engine.load_policy_files(files)  # the unpatched set loads against this schema
    scoring = files["policies/scoring.yaml"].decode()
    assert scoring.count("when: lead.employees >= 50") == 1
    files["policies/scoring.yaml"] = scoring.replace("when: lead.employees >= 50", 'when: lead.country == "AUS"').encode()
    with pytest.raises(PolicyError) as info:
        engine.load_policy_files(files)
    (d,) = info.value.diagnostics
    assert d.code == "EXPR005" and d.location.file == "policies/scoring.yaml"
    assert "'AUS' can never be a value of lead.country" in d.message
    line = files["policies/scoring.yaml"].decode().splitlines()[d.location.line - 1]
    assert line[d.location.column - 1:].startswith('"AUS"')


def test_calendar_error_message_names_the_calendar_once(mini_set) -> None:
    mini_set.patch("calendars.yaml", "Australia/Sydney", "Australia/Sidney")
    d = next(x for x in mini_set.diagnostics() if x.code == "CAL001")
    assert d.message.count("calendar 'syd'") == 1, d.message


def test_unknown_default_calendar_with_no_slas_still_names_the_file(mini_set) -> None:
    mini_set.write("slas.yaml", "kind: slas\ndefault_calendar: nowhere\nslas: []\n")
    (d,) = mini_set.diagnostics()
    assert d.code == "REF005"
    assert d.location.file == "policies/slas.yaml" and d.location.line == 2


def test_nonexistent_policy_directory(tmp_path) -> None:
    with pytest.raises(PolicyError) as info:
        engine.load_policies(tmp_path / "nope")
    (d,) = info.value.diagnostics
    assert d.code == "POL001" and "does not exist" in d.message


def test_policy_error_lists_every_diagnostic_in_its_message(mini_set) -> None:
    mini_set.patch("routing.yaml", "{team: reps}", "{team: rep}")
    mini_set.patch("routing.yaml", "{queue: triage}", "{queue: triag}")
    with pytest.raises(PolicyError) as info:
        mini_set.load()
    assert len(info.value.diagnostics) == 2
    assert str(info.value).startswith("2 error(s) in policy set; first: policies/routing.yaml:6:9: error[REF003]")


# ---------------------------------------------------------------- in-memory loading and revisions


def test_load_policy_files_from_memory(mini_set) -> None:
    files = files_of(mini_set)
    ps = engine.load_policy_files(files, root="policies", revision="abc123")
    assert ps.revision == "abc123"
    assert ps.source_files == files
    ps2 = engine.load_policy_files(files)
    assert ps2.revision == content_revision(files) and ps2.revision.startswith("sha256:")


def test_load_policy_files_with_a_nested_root(mini_set) -> None:
    files = {f"config/leadops/{k.split('/')[-1]}": v for k, v in files_of(mini_set).items() if k.endswith(".yaml")}
    files["config/schemas/lead.schema.json"] = files_of(mini_set)["schemas/lead.schema.json"]
    ps = engine.load_policy_files(files, root="config/leadops")
    assert ps.describe()["routing_rules"] == 3


def test_compile_ignores_yaml_files_outside_the_root(mini_set) -> None:
    files = files_of(mini_set)
    files["policies/sub/extra.yaml"] = b"kind: bogus\n"
    files["other/routing.yaml"] = b"kind: routing\n"
    model, _ = compile_policy_files(files, "policies")
    assert model.name == "mini"


def test_content_revision_depends_on_every_byte_and_not_on_order(mini_set) -> None:
    files = files_of(mini_set)
    rev = content_revision(files)
    assert content_revision(dict(reversed(list(files.items())))) == rev
    changed = dict(files)
    changed["policies/teams.yaml"] = files["policies/teams.yaml"] + b"\n"
    assert content_revision(changed) != rev
    renamed = {k.replace("teams.yaml", "teams2.yaml"): v for k, v in files.items()}
    assert content_revision(renamed) != rev


def test_directory_source_files_include_the_lead_schema(mini_set) -> None:
    ps = mini_set.load()
    assert set(ps.source_files) == {f"policies/{p.name}" for p in mini_set.policies.glob("*.yaml")} | {
        "schemas/lead.schema.json"}


def test_example_set_loads_from_a_copy(example_set) -> None:
    ps = example_set.load()
    assert ps.source_files["schemas/lead.schema.json"] == LEAD_SCHEMA.read_bytes()
