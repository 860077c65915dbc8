"""Impact of a policy change on leads: counts, matrices, examples, the guard and the markdown report."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import tracemalloc
from datetime import datetime
from pathlib import Path

import pytest
from click.testing import CliRunner

import engine
from engine.impact import MARKER, Impact, Outcome, Report, analyse, iter_lead_texts
from engine.semantic_diff import semantic_diff
from engine.sources import read_directory

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # benchmarks/ (the lead generator) lives at the repository root
    sys.path.insert(0, str(ROOT))
NOW = datetime.fromisoformat("2026-11-23T09:00:00+10:00")
SCENARIO_LEADS = sorted(str(p) for p in (ROOT / "scenarios" / "leads").glob("*.json"))
BASE_FILES, BASE_ROOT = read_directory(ROOT / "policies")
BASE = engine.load_policy_files(BASE_FILES, BASE_ROOT, revision="base")


def head_with(edits: dict[str, list[tuple[str, str]]]) -> engine.PolicySet:
    files = dict(BASE_FILES)
    for name, pairs in edits.items():
        text = files[f"policies/{name}"].decode()
        for old, new in pairs:
            assert old in text
            text = text.replace(old, new, 1)
        files[f"policies/{name}"] = text.encode()
    return engine.load_policy_files(files, BASE_ROOT, revision="head")


SQL_60 = {"stages.yaml": [("score.total >= 50 and not lead.is_competitor", "score.total >= 60 and not lead.is_competitor")]}
SEQ_200 = {"routing.yaml": [("lead.employees < 101", "lead.employees < 201")]}


def generated(n: int, seed: int = 7) -> list[tuple[str, str]]:
    from benchmarks.leadgen import generate_leads

    return [(f"gen:{i}", json.dumps(lead)) for i, lead in enumerate(generate_leads(n, seed=seed), 1)]


def test_same_policies_change_nothing() -> None:
    imp = analyse(BASE, BASE, iter_lead_texts(SCENARIO_LEADS), NOW, [], progress=False)
    assert imp.total == len(SCENARIO_LEADS) and imp.errors == 0
    assert sum(imp.changed.values()) == 0 and imp.guarded == 0


def test_sql_threshold_and_routing_change_on_generated_leads() -> None:
    head = head_with({**SQL_60, **SEQ_200})
    changes = semantic_diff(BASE.model, head.model)
    imp = analyse(BASE, head, generated(2000), NOW, changes, progress=False)
    assert imp.total + imp.errors == 2000
    assert imp.changed["stage"] > 0 and imp.changed["route"] > 0
    assert all(a == "sql" for a, _ in imp.stage_moves)  # raising the SQL bar only moves leads out of SQL
    assert set(imp.route_rule_moves) == {("anz-mid-market", "seq-smb")}
    assert ("team anz-mid-market", "team seq-smb") in imp.route_moves
    assert imp.changed["score"] == 0 and imp.changed["grade"] == 0  # neither change touches scoring
    ex = imp.examples["stage"][0]
    assert ex["before"] == "SQL" and "stages › sql (changed)" in ex["because"]
    assert "routing › anz-mid-market → seq-smb (changed)" in imp.examples["route"][0]["because"]
    assert len(imp.examples["route"]) == 5
    assert imp.guarded >= max(imp.changed["stage"], imp.changed["route"])


def test_score_change_names_the_rule_and_shifts_the_mean() -> None:
    head = head_with({"scoring.yaml": [("        within: 30d\n        points: 20\n", "        within: 30d\n        points: 30\n")]})
    imp = analyse(BASE, head, generated(1500), NOW, semantic_diff(BASE.model, head.model), progress=False)
    assert imp.changed["score"] > 0 and imp.score_down == 0
    assert imp.mean_head > imp.mean_base
    assert set(imp.score_rules) == {"pricing-page"}
    assert imp.examples["score"][0]["because"].startswith("scoring › pricing-page ")


def test_parallel_equals_serial() -> None:
    head = head_with({**SQL_60, **SEQ_200})
    changes = semantic_diff(BASE.model, head.model)
    leads = generated(1200, seed=3)
    serial = analyse(BASE, head, leads, NOW, changes, progress=False)
    parallel = analyse(BASE, head, iter(leads), NOW, changes, jobs=2, progress=False)
    assert serial.to_dict() == parallel.to_dict()


def test_bad_leads_are_counted_not_fatal() -> None:
    items = [("a", "{not json"), ("b", json.dumps({"id": 5})), ("c", json.dumps({"id": "ok-1", "country": "AU"}))]
    imp = analyse(BASE, BASE, items, NOW, [], progress=False)
    assert imp.total == 1 and imp.errors == 2
    assert imp.error_kinds["both"] == 2 and imp.error_examples[0]["lead"] == "a"


def test_same_instant_in_another_offset_is_not_an_sla_change() -> None:
    a = Outcome("mql", "stage:mql", (None, "x", "r"), "r", "A1", 10, {}, {"s": "2026-11-25T10:00:00+11:00"})
    b = Outcome("mql", "stage:mql", (None, "x", "r"), "r", "A1", 10, {}, {"s": "2026-11-25T09:00:00+10:00"})
    imp = Impact()
    imp.add("l", "L1", a, b, {})
    assert imp.changed["sla"] == 0
    c = Outcome("mql", "stage:mql", (None, "x", "r"), "r", "A1", 10, {}, {"s": "2026-11-25T11:00:00+10:00"})
    imp.add("l", "L2", a, c, {})
    assert imp.changed["sla"] == 1 and imp.sla_later["s"] == 1 and imp.sla_shift_hours["s"] == 2


def test_memory_is_bounded_while_streaming() -> None:
    head = head_with(SQL_60)
    lead = json.dumps(json.loads(Path(SCENARIO_LEADS[0]).read_text()))

    def stream(n: int):
        for i in range(n):
            yield f"s:{i}", lead.replace('"id": "', f'"id": "{i}-', 1)

    tracemalloc.start()
    analyse(BASE, head, stream(300), NOW, [], progress=False)
    small = tracemalloc.get_traced_memory()[1]
    tracemalloc.reset_peak()
    imp = analyse(BASE, head, stream(3000), NOW, [], progress=False)
    large = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert imp.total == 3000
    assert large < small * 2 + 2_000_000  # ten times the leads, not ten times the memory


def test_report_markdown_has_headline_tables_and_chart() -> None:
    head = head_with({**SQL_60, **SEQ_200})
    changes = semantic_diff(BASE.model, head.model)
    imp = analyse(BASE, head, generated(2000), NOW, changes, progress=False)
    rep = Report("main (abc)", "working tree", "abc", "def", NOW, changes, imp, "gen", 10)
    md = rep.markdown()
    assert md.startswith(MARKER)
    first = md.splitlines()[1]
    assert first.startswith("## ") and f"of {imp.total} leads would change route" in first and "SQL → MQL" in first
    assert "```mermaid\nflowchart LR" in md and "| before ↓ / after → |" in md
    assert "| stages | sql | entry: score.total >= **50 → 60** |" in md
    assert not rep.blocked
    tight = Report("main", "wt", "a", "b", NOW, changes, imp, "gen", 0.1)
    assert tight.blocked and "Blast radius exceeded" in tight.markdown()
    assert not Report("main", "wt", "a", "b", NOW, changes, imp, "gen", 0.1, acknowledged=True).blocked
    assert json.loads(json.dumps(rep.to_dict()))["guard"]["exceeded"] is False


def test_stage_matrix_and_text_follow_the_policy_stage_order() -> None:
    from types import SimpleNamespace

    from engine.impact import stage_order

    order = stage_order(BASE, BASE)
    pipeline = [s.id for s in BASE.model.stages.pipeline]
    assert order == pipeline + [s.id for s in BASE.model.stages.detours]
    # the head's order first, then stages only the base declares (in the base's order)
    fake = lambda *ids: SimpleNamespace(model=SimpleNamespace(stages=SimpleNamespace(  # noqa: E731
        pipeline=[SimpleNamespace(id=i) for i in ids], detours=[])))
    assert stage_order(fake("a", "c", "b"), fake("b", "c", "d")) == ["b", "c", "d", "a"]

    def out(stage: str) -> Outcome:
        return Outcome(stage, f"stage:{stage}", (None, "x", "r"), "r", "A1", 10, {}, {})

    imp = Impact(stage_order=order)
    for i, (a, b) in enumerate([("lead", "sql")] * 3 + [("sql", "mql")] + [("nurture", "lead")] * 2):
        imp.add("l", f"L{i}", out(a), out(b), {})
    rep = Report("main", "wt", "a", "b", NOW, [], imp, "t", None)
    md = rep.markdown()
    assert "| before ↓ / after → | Lead | MQL | SQL |" in md  # pipeline order, not by lead count
    rows = [line.split(" | ")[0] for line in md.splitlines() if line.startswith("| **")]
    assert rows == ["| **Lead**", "| **SQL**", "| **Nurture**"]  # pipeline, then detours; business names
    text = rep.text()
    assert text.index("Lead → SQL: 3") < text.index("SQL → MQL: 1") < text.index("Nurture → Lead: 2")


# ------------------------------------------------------------------------------------------- CLI, real git


def git(cwd: Path, *args: str) -> str:
    return subprocess.run(["git", "-c", "user.name=Test", "-c", "user.email=test@example.com", "-c",
                           "commit.gpgsign=false", *args], cwd=cwd, check=True, capture_output=True, text=True).stdout.strip()


@pytest.fixture
def branch(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A repo whose branch `raise-sql` raises the SQL threshold and widens the seq-smb routing rule."""
    root = tmp_path / "repo"
    root.mkdir()
    shutil.copytree(ROOT / "policies", root / "policies")
    shutil.copytree(ROOT / "schemas", root / "schemas")
    shutil.copytree(ROOT / "scenarios" / "leads", root / "scenarios" / "leads")
    git(root, "init", "-q", "-b", "main")
    git(root, "add", "-A")
    git(root, "commit", "-qm", "base")
    git(root, "checkout", "-qb", "raise-sql")
    for name, pairs in {**SQL_60, **SEQ_200}.items():
        p = root / "policies" / name
        p.write_text(p.read_text().replace(*pairs[0]))
    git(root, "commit", "-qam", "raise SQL threshold; SEQ SMB up to 200 employees")
    from benchmarks.leadgen import write_jsonl

    write_jsonl(str(tmp_path / "leads.jsonl"), 1000, seed=11)
    monkeypatch.chdir(root)
    return root


def test_cli_diff_guard_and_acknowledge(branch: Path) -> None:
    from cli import cli

    leads = str(branch.parent / "leads.jsonl")
    run = CliRunner().invoke
    ok = run(cli, ["diff", "--base", "main", "--leads", leads, "--now", NOW.isoformat(), "--format", "markdown"])
    assert ok.exit_code == 0, ok.output
    assert ok.output.startswith(MARKER) and "would change route" in ok.output
    blocked = run(cli, ["diff", "--base", "main", "--leads", leads, "--now", NOW.isoformat(), "--max-changed", "0.1"])
    assert blocked.exit_code == 1 and "Blast radius exceeded" in blocked.output
    acked = run(cli, ["diff", "--base", "main", "--leads", leads, "--now", NOW.isoformat(), "--max-changed", "0.1",
                      "--acknowledge"])
    assert acked.exit_code == 0 and "acknowledged" in acked.output
    as_json = run(cli, ["diff", "--base", "main", "--head", "raise-sql", "--leads", leads, "--now", NOW.isoformat(),
                        "--format", "json"])
    data = json.loads(as_json.output)
    assert data["head"]["revision"] == git(branch, "rev-parse", "raise-sql")
    assert [c["text"] for c in data["changes"]] == ["entry: score.total >= 50 → 60", "when: lead.employees < 101 → 201"]


@pytest.mark.parametrize("fmt", ["text", "markdown", "json"])
def test_cli_diff_over_the_limit_says_so_once(branch: Path, fmt: str) -> None:
    """The blast-radius message appears exactly once across stdout and stderr, whatever the format."""
    from cli import cli

    r = CliRunner().invoke(cli, ["diff", "--base", "main", "--leads", str(branch.parent / "leads.jsonl"),
                                 "--now", NOW.isoformat(), "--max-changed", "0.1", "--format", fmt])
    assert r.exit_code == 1
    assert (r.stdout + r.stderr).count("Blast radius exceeded") == 1, (r.stdout, r.stderr)


def test_cli_guard_default_from_leadops_yaml(branch: Path) -> None:
    from cli import cli

    p = branch / "policies" / "leadops.yaml"
    p.write_text(p.read_text().replace("max_changed_percent: 10", "max_changed_percent: 0.01"))
    r = CliRunner().invoke(cli, ["diff", "--base", "main", "--leads", str(branch.parent / "leads.jsonl"),
                                 "--now", NOW.isoformat()])
    assert r.exit_code == 1 and "limit of 0.01%" in r.output


def test_cli_diff_default_scenario_leads_and_errors(branch: Path) -> None:
    from cli import cli

    r = CliRunner().invoke(cli, ["diff", "--base", "main", "--now", NOW.isoformat()])
    assert r.exit_code == 0 and "leads from the scenarios" in r.output
    r = CliRunner().invoke(cli, ["diff", "--base", "nope"])
    assert r.exit_code == 1 and "GIT002" in r.output and "Traceback" not in r.output
    r = CliRunner().invoke(cli, ["diff", "--base", "main", "--leads", "missing.jsonl"])
    assert r.exit_code == 1 and "does not exist" in r.output
    r = CliRunner().invoke(cli, ["diff"])
    assert r.exit_code == 2


def test_default_leads_include_leads_written_inside_scenarios() -> None:
    from engine.impact import default_leads

    items = default_leads(ROOT / "policies")
    assert len(items) >= len(SCENARIO_LEADS)
    assert len({json.dumps(json.loads(t), sort_keys=True) for _, t in items}) == len(items)  # each lead once
    if list((ROOT / "scenarios").glob("*.yaml")):
        assert any(".yaml: " in label for label, _ in items)


def test_cli_diff_sla_counts_agree_between_summary_and_sla_table(branch: Path) -> None:
    import re

    from cli import cli

    args = ["diff", "--base", "main", "--head", "raise-sql", "--leads", str(branch.parent / "leads.jsonl"),
            "--now", NOW.isoformat()]
    data = json.loads(CliRunner().invoke(cli, [*args, "--format", "json"]).output)["impact"]
    md = CliRunner().invoke(cli, [*args, "--format", "markdown"]).output
    text = CliRunner().invoke(cli, [*args, "--format", "text"]).output
    n = data["changed"]["sla"]
    assert n > 0 and data["slas"]  # the SQL threshold moves leads between SLAs: a real SLA impact
    summary = re.search(r"^\| SLA \(due time changed, started or stopped applying\) \| (\d+) \|", md, re.M)
    total = re.search(r"^\| \*\*any SLA\*\* \| \*\*(\d+)\*\* \|", md, re.M)
    assert summary and total and int(summary.group(1)) == int(total.group(1)) == n
    assert f"SLA total: {n} leads" in text
    for s in data["slas"]:  # each SLA's lead count is its three kinds of change; the total counts a lead once
        assert s["leads"] == s["due_changed"] + s["now_applies"] + s["no_longer_applies"]
        assert s["due_changed"] == s["earlier"] + s["later"]
        assert f"| `{s['sla']}` | {s['leads']} | {s['due_changed']} |" in md
    assert max(s["leads"] for s in data["slas"]) <= n <= sum(s["leads"] for s in data["slas"])
    header = next(line for line in md.splitlines() if line.startswith("| before ↓ / after → |"))
    cols = [c.strip().lower() for c in header.split("|")[2:-1]]
    order = [s.id for s in (*BASE.model.stages.pipeline, *BASE.model.stages.detours)]
    assert cols == sorted(cols, key=order.index)
