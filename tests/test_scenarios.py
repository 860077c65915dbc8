"""Scenario files, `leadops test` / `leadops record`, --update, JUnit and the pytest plugin."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
import xml.etree.ElementTree as ET
from datetime import datetime
from pathlib import Path

import pytest
from click.testing import CliRunner

import engine
from cli import cli
from engine import scenarios as sc

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = Path(__file__).parent / "fixtures" / "scenarios"
SAMPLES = ROOT / "scenarios" / "sample-leads.yaml"
SUMMARY = re.compile(r"^\d+ passed, \d+ failed(, \d+ skipped)?$", re.M)


@pytest.fixture(scope="module")
def ps() -> engine.PolicySet:
    return engine.load_policies(str(ROOT / "policies"))


def copy_policies(tmp_path: Path) -> Path:
    """policies/ + schemas/ copied side by side (the lead schema is referenced as ../schemas/...)."""
    shutil.copytree(ROOT / "policies", tmp_path / "policies")
    shutil.copytree(ROOT / "schemas", tmp_path / "schemas")
    return tmp_path / "policies"


def run_cli(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(cli, list(args), catch_exceptions=False)
    return result.exit_code, result.output


@pytest.fixture()
def broken_sql_threshold(tmp_path: Path) -> Path:
    pol = copy_policies(tmp_path)
    stages = pol / "stages.yaml"
    text = stages.read_text()
    assert "score.total >= 50 and not lead.is_competitor" in text
    stages.write_text(text.replace("score.total >= 50 and not lead.is_competitor",
                                   "score.total >= 150 and not lead.is_competitor"))
    return pol


# ------------------------------------------------------------------ the shipped suite


def test_shipped_suite_passes_with_full_coverage() -> None:
    code, out = run_cli("test", str(ROOT / "scenarios"), "--coverage", "--min-coverage", "100")
    assert code == 0, out
    n = int(re.search(r"^(\d+) passed, 0 failed$", out, re.M).group(1))
    assert n >= 60
    assert "coverage: 60/60 policy rules exercised (100%)" in out


def test_validate_checks_the_shipped_scenarios(ps: engine.PolicySet) -> None:
    assert sc.validate_scenarios(ps, [ROOT / "scenarios"]) == []


# ------------------------------------------------------------------ a broken policy


def test_broken_sql_threshold_fails_with_an_analyst_readable_message(broken_sql_threshold: Path) -> None:
    code, out = run_cli("test", "--policies", str(broken_sql_threshold), str(SAMPLES))
    assert code == 1
    assert SUMMARY.search(out).group(0) == "12 passed, 2 failed"
    # which scenario, where, what was expected and what happened
    assert "FAIL scenarios/sample-leads.yaml:10: ICP enterprise lead in Brisbane becomes an SQL" in out
    assert "stage.to: expected sql, got mql" in out
    assert "SLA 'sql-first-response' does not apply to this decision: the lead is in stage 'mql'" in out
    # and why: the SQL entry rule, where it is written, the rule text and the lead's score
    assert "✗ stage stage:sql: entry criteria do not hold" in out
    assert re.search(r"\[policies/stages\.yaml:\d+\]", out)
    assert "rule: score.total >= 150 and not lead.is_competitor" in out
    assert "values: score.total=146" in out


def test_broken_policy_json_output(broken_sql_threshold: Path) -> None:
    code, out = run_cli("test", "--policies", str(broken_sql_threshold), str(SAMPLES), "--format", "json")
    assert code == 1
    data = json.loads(out)
    assert data["summary"] == {"passed": 12, "failed": 2, "skipped": 0, "total": 14, "line": "12 passed, 2 failed"}
    failed = [r for r in data["results"] if r["status"] == "failed"]
    first = failed[0]["failures"][0]
    assert (first["path"], first["expected"], first["actual"]) == ("stage.to", "sql", "mql")


def test_junit_output_parses(broken_sql_threshold: Path, tmp_path: Path) -> None:
    report = tmp_path / "reports" / "scenarios.xml"
    code, _ = run_cli("test", "--policies", str(broken_sql_threshold), str(SAMPLES), "--junit", str(report))
    assert code == 1
    root = ET.parse(report).getroot()
    assert root.tag == "testsuites"
    assert (root.get("tests"), root.get("failures"), root.get("errors")) == ("14", "2", "0")
    cases = root.findall(".//testcase")
    assert len(cases) == 14
    failed = [c for c in cases if c.find("failure") is not None]
    assert {c.get("name") for c in failed} == {"ICP enterprise lead in Brisbane becomes an SQL",
                                               "US quote request is an SQL in New York time"}
    assert failed[0].get("classname") == "scenarios.sample-leads"
    assert "stage.to: expected sql, got mql" in failed[0].find("failure").get("message")


def test_pytest_collects_scenarios_and_reports_readable_failures(broken_sql_threshold: Path) -> None:
    proc = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                           "--leadops-policies", str(broken_sql_threshold), "scenarios/sample-leads.yaml"],
                          cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "2 failed, 12 passed" in proc.stdout
    assert "FAIL scenarios/sample-leads.yaml:10: ICP enterprise lead in Brisbane becomes an SQL" in proc.stdout
    assert "Traceback" not in proc.stdout


# ------------------------------------------------------------------ exit codes and selection


def test_exit_codes(tmp_path: Path) -> None:
    assert run_cli("test", str(SAMPLES))[0] == 0
    code, out = run_cli("test", str(tmp_path / "nope.yaml"))
    assert code == 1 and "does not exist" in out
    code, out = run_cli("test", str(SAMPLES), "-k", "no-such-scenario-name")
    assert code == 1 and "no scenarios found matching the selection" in out
    code, out = run_cli("test", str(SAMPLES), "-k", "sla and (")
    assert code == 2
    code, out = run_cli("test", str(FIXTURES / "invalid.yaml"))
    assert code == 1
    assert "error[SCN002]: unknown stage 'sqll'" in out


def test_keyword_and_tag_selection() -> None:
    code, out = run_cli("test", str(ROOT / "scenarios"), "-k", "dst and not mql", "-v")
    assert code == 0
    assert SUMMARY.search(out).group(0) == "4 passed, 0 failed"
    assert "PASS scenarios/slas.yaml:" in out and "MQL clock" not in out
    code, out = run_cli("test", str(ROOT / "scenarios"), "--tag", "out-of-office")
    assert SUMMARY.search(out).group(0) == "5 passed, 0 failed"


def test_min_coverage_fails_below_threshold() -> None:
    code, out = run_cli("test", str(SAMPLES), "--min-coverage", "90")
    assert code == 1
    assert re.search(r"coverage \d+(\.\d)?% is below the required 90%", out)
    # uncovered rules are listed by file:line
    assert re.search(r"^  policies/stages\.yaml:\d+: transition opportunity -> recycled$", out, re.M)
    assert SUMMARY.search(out).group(0) == "14 passed, 0 failed"


def test_skipped_scenarios_are_counted(tmp_path: Path) -> None:
    f = tmp_path / "skip.yaml"
    f.write_text("kind: scenarios\nscenarios:\n"
                 "  - name: later\n    skip: waiting for the new routing rules\n    now: 2026-11-23T09:00:00+10:00\n"
                 "    lead: {id: S-1}\n    expect: {route.rule: global-triage}\n"
                 "  - name: now\n    now: 2026-11-23T09:00:00+10:00\n    lead: {id: S-2}\n"
                 "    expect: {route.rule: global-triage}\n")
    code, out = run_cli("test", str(f))
    assert code == 0
    assert out.strip().splitlines()[-1] == "1 passed, 0 failed, 1 skipped"


# ------------------------------------------------------------------ record and update


def test_record_then_test_round_trip(tmp_path: Path) -> None:
    target = tmp_path / "recorded" / "regressions.yaml"
    lead = ROOT / "scenarios" / "leads" / "us-quote-request.json"
    code, out = run_cli("record", str(lead), "--now", "2026-11-23T09:00:00+10:00", "--name", "US quote",
                        "--to", str(target))
    assert code == 0, out
    code, out = run_cli("record", str(ROOT / "scenarios" / "leads" / "student.json"),
                        "--now", "2026-11-23T09:00:00+10:00", "--to", str(target))
    assert code == 0, out
    text = target.read_text()
    assert "route.owner: mia.johnson" in text and "lead_file: " in text
    assert "slas[sql-first-response].due: 2026-11-23T13:00:00-05:00" in text
    code, out = run_cli("test", str(target))
    assert code == 0 and out.strip().endswith("2 passed, 0 failed")
    code, out = run_cli("record", str(lead), "--now", "2026-11-23T09:00:00+10:00", "--name", "US quote",
                        "--to", str(target))
    assert code == 1 and "already exists" in out


def test_record_prints_inline_when_no_target() -> None:
    code, out = run_cli("record", str(ROOT / "scenarios" / "leads" / "missing-fields.json"),
                        "--now", "2026-11-23T09:00:00+10:00")
    assert code == 0
    assert out.startswith("  - name: lead L-1005 at 2026-11-23T09:00:00+10:00")
    assert "route.rule: global-triage" in out


def test_update_rewrites_only_failing_expectations_and_keeps_comments(tmp_path: Path) -> None:
    target = tmp_path / "tests" / "fixtures" / "scenarios" / "stale.yaml"
    target.parent.mkdir(parents=True)
    shutil.copy(FIXTURES / "stale.yaml", target)
    shutil.copytree(ROOT / "scenarios" / "leads", tmp_path / "scenarios" / "leads")
    before = target.read_text()
    code, out = run_cli("test", str(target), "--update")
    assert code == 1  # this run failed; the file is fixed for the next one
    assert "updated 3 expectation(s)" in out
    assert "stage.to: mql -> sql" in out
    after = target.read_text()
    assert "score.total: {approx: 146, tolerance: 0.5}   # was 140 before the whitepaper rule" in after
    assert "stage.to: sql        # keep this comment" in after
    assert "fired: [pricing-page]" in after
    assert "route.owner: ben.taylor" in after and "score.grade: A1" in after
    assert len(after.splitlines()) == len(before.splitlines()) - 2  # the block list became one line
    code, out = run_cli("test", str(target))
    assert code == 0 and out.strip().endswith("2 passed, 0 failed")


# ------------------------------------------------------------------ loading and semantics


def test_invalid_file_diagnostics(ps: engine.PolicySet) -> None:
    diags = sc.validate_scenarios(ps, [FIXTURES / "invalid.yaml"])
    got = {(d.code, d.location.line, d.message) for d in diags}
    assert ("SCN002", 8, "unknown stage 'sqll'") in got
    assert ("SCN002", 9, "unknown queue 'nurture-queue'") in got
    assert ("SCN002", 10, "unknown team 'anz-enterprize'") in got
    assert ("SCN002", 11, "unknown SLA 'sql-first-responce'") in got
    assert ("SCN002", 13, "unknown rule 'pricing-pages'") in got
    assert ("SCN002", 14, "unknown route rule 'nope'") in got
    assert ("SCN002", 15, "unknown grade 'Z9'") in got
    assert any(d.code == "SCN002" and "escalations[5] does not exist" in d.message for d in diags)
    assert any(d.code == "SCN006" and "has no `now`" in d.message for d in diags)
    assert any(d.code == "SCN005" and "employees" in d.message for d in diags)
    assert any(d.code == "SCN004" and "does-not-exist.json" in d.message for d in diags)
    hint = next(d.hint for d in diags if "sqll" in d.message)
    assert hint.startswith("did you mean 'sql'?")


def test_schema_errors_are_located(tmp_path: Path) -> None:
    f = tmp_path / "s.yaml"
    f.write_text("scenarios:\n  - name: x\n    now: 2026-11-23T09:00:00\n    lead: {id: a}\n"
                 "    expect:\n      score.totl: 5\n")
    loaded = sc.load_scenario_file(f)
    msgs = {(d.location.line, d.message) for d in loaded.diagnostics}
    assert (3, "scenarios/0/now: '2026-11-23T09:00:00' is not an ISO 8601 date-time with an offset") in msgs
    assert (6, "scenarios/0/expect: unknown property 'score.totl'") in msgs
    assert any("did you mean 'score.total'" in d.hint for d in loaded.diagnostics)


def test_yaml_safety_applies_to_scenario_files(tmp_path: Path) -> None:
    f = tmp_path / "s.yaml"
    f.write_text("scenarios:\n  - &a\n    name: x\n")
    assert [d.code for d in sc.load_scenario_file(f).diagnostics] == ["YAML004"]


def test_lead_file_overrides_and_current_stage(tmp_path: Path) -> None:
    (tmp_path / "leads").mkdir()
    (tmp_path / "leads" / "l.json").write_text(json.dumps(
        {"id": "L", "email": "a@b.com", "company": {"name": "B", "industry": "software"}, "state": "QLD"}))
    (tmp_path / "suite").mkdir()
    f = tmp_path / "suite" / "s.yaml"
    f.write_text("defaults: {now: 2026-11-23T09:00:00+10:00, lead_file: leads/l.json}\nscenarios:\n"
                 "  - name: x\n    lead_overrides: {state: null, company: {industry: retail}}\n"
                 "    current_stage: {stage: sql, entered_at: 2026-11-20T10:00:00+10:00}\n"
                 "    transition_request: {to: nurture}\n    expect: {stage.to: sql}\n")
    loaded = sc.load_scenario_file(f)
    assert loaded.diagnostics == []
    lead = loaded.scenarios[0].lead
    assert "state" not in lead
    assert lead["company"] == {"name": "B", "industry": "retail"}
    assert (lead["stage"], lead["stage_entered_at"]) == ("sql", "2026-11-20T10:00:00+10:00")
    assert lead["transition_request"] == {"to": "nurture"}


def test_single_scenario_file(tmp_path: Path) -> None:
    f = tmp_path / "one.yaml"
    f.write_text("name: one\nnow: 2026-11-23T09:00:00+10:00\nlead: {id: O-1}\nexpect: {route.queue: global-triage}\n")
    code, out = run_cli("test", str(f))
    assert code == 0 and out.strip() == "1 passed, 0 failed"


# ------------------------------------------------------------------ expectation semantics


DECISION = {
    "score": {"total": 65.5, "groups": {"fit": 40, "engagement": 25.5}, "grade": "B3",
              "fired": [{"rule": "pricing-page", "group": "engagement", "points": 10, "why": ""}]},
    "stage": {"from": "lead", "to": "mql", "changed": True, "rule": "stage:mql",
              "rejected": {"to": "nurture", "reason_code": None, "reason": "moving from 'mql' to 'nurture' requires a reason code"}},
    "route": {"rule": "seq-smb", "queue": None, "team": "seq-smb", "owner": "chloe.smith", "fallback": False},
    "slas": [{"id": "mql-acceptance", "due": "2026-11-25T09:00:00+10:00", "status": "running",
              "escalations": [{"at": "2026-11-24T09:00:00+10:00", "action": "notify", "to": "chloe.smith"}]}],
}


def exp(path: str, value: object) -> sc.Expectation:
    return sc.Expectation(path, value, sc.Location("t.yaml", 1, 1))


@pytest.mark.parametrize("path,value", [
    ("score.total", 65.5),
    ("score.total", {"approx": 65, "tolerance": 0.5}),
    ("score.total", {"min": 60, "max": 70}),
    ("score.groups.fit", 40),
    ("score.fired[pricing-page].points", 10),
    ("score.fired[webinar]", None),
    ("stage.rejected.reason", {"contains": "REQUIRES A REASON"}),
    ("route.owner", {"one_of": ["chloe.smith", "dylan.jones"]}),
    ("route.queue", None),
    ("slas[mql-acceptance].due", "2026-11-24T23:00:00Z"),  # the same instant in another offset
    ("slas[mql-acceptance].escalations[0].to", "chloe.smith"),
    ("slas[sql-first-response]", None),
    ("fired", ["pricing-page", "stage:mql", "route:seq-smb", "sla:mql-acceptance"]),
    ("not_fired", ["webinar", "scoring:seq-smb"]),
    ("slas", ["mql-acceptance"]),
])
def test_expectations_that_hold(path: str, value: object) -> None:
    assert sc.check(DECISION, [exp(path, value)]) == []


@pytest.mark.parametrize("path,value,message", [
    ("score.total", 60, "score.total: expected 60, got 65.5 (off by 5.5)"),
    ("score.total", {"approx": 65, "tolerance": 0.1}, "score.total: expected 65 ± 0.1, got 65.5 (off by 0.5)"),
    ("stage.changed", 1, "stage.changed: expected 1, got true"),
    ("slas[mql-acceptance].due", "2026-11-25T08:00:00+10:00",
     "slas[mql-acceptance].due: expected 2026-11-25T08:00:00+10:00, got 2026-11-25T09:00:00+10:00 (1h later)"),
    ("slas[sql-first-response].due", "2026-11-25T08:00:00+10:00",
     "slas[sql-first-response].due: expected 2026-11-25T08:00:00+10:00, got nothing"),
    ("fired", ["webinar"], "did not fire: webinar"),
    ("not_fired", ["pricing-page"], "fired, but should not have: pricing-page"),
])
def test_expectations_that_fail(path: str, value: object, message: str) -> None:
    (failure,) = sc.check(DECISION, [exp(path, value)])
    assert failure.message == message


def test_keyword_expressions() -> None:
    f = sc.compile_keyword("sla and (dst or holiday) and not london")
    assert f("sla dst sydney") and f("sla holiday") and not f("sla dst london") and not f("dst")
    with pytest.raises(ValueError):
        sc.compile_keyword("a and")


def test_team_with_nobody_available_falls_through(tmp_path: Path) -> None:
    pol = copy_policies(tmp_path)
    teams = pol / "teams.yaml"
    text = teams.read_text()
    text = text.replace("{id: chloe.smith, weight: 1}", "{id: chloe.smith, weight: 1, active: false}")
    text = text.replace("{id: dylan.jones, weight: 1}", "{id: dylan.jones, weight: 1, active: false}")
    teams.write_text(text)
    ps = engine.load_policies(str(pol))
    s = sc.Scenario(name="seq team away", file="t.yaml", line=1, index=0,
                    now=datetime.fromisoformat("2026-11-23T09:00:00+10:00"),
                    lead=json.loads((ROOT / "scenarios/leads/seq-smb-pricing.json").read_text()),
                    expect=[exp("route.rule", "anz-smb"), exp("route.team", "anz-mid-market"),
                            exp("not_fired", ["seq-smb"])])
    result = sc.run_scenario(ps, s)
    assert result.status == "passed", sc.failure_text(result)
