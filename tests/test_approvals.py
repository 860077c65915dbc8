"""Approvals by the owners of every changed area, from GitHub's reviews JSON (fixtures in its real shape)."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest
from click.testing import CliRunner

import engine
from engine.approvals import ReviewsError, changed_files, check_approvals, latest_verdicts, parse_reviews
from engine.sources import read_directory

ROOT = Path(__file__).resolve().parents[1]
FIXTURES = ROOT / "tests" / "fixtures" / "reviews"
HEAD = "c0ffee" + "0" * 34  # the commit the fixtures' current reviews approve
OLD = "badc0de" + "0" * 33  # an earlier push
OWN = engine.load_policies(ROOT / "policies").model.ownership
SQL_AND_ROUTING = ["routing.yaml", "stages.yaml"]  # the files a "raise SQL bar + re-route" change touches


def reviews(name: str) -> list:
    return parse_reviews((FIXTURES / name).read_text())


def check(name: str, changed: list[str] = SQL_AND_ROUTING):
    return check_approvals(OWN, OWN, changed, reviews(name), HEAD)


def test_every_group_approved_the_head() -> None:
    result = check("all_approved.json")
    assert result.ok
    assert {a.area: a.required for a in result.areas} == {"routing": ["sales-ops"], "stages": ["marketing", "sales"]}
    assert "all required approvals present" in result.text()


def test_one_team_is_not_enough() -> None:
    result = check("marketing_only.json")
    assert not result.ok
    stages = next(a for a in result.areas if a.area == "stages")
    assert stages.missing == ["sales"] and stages.approved_by == {"marketing": ["priya-marketing"]}
    assert next(a for a in result.areas if a.area == "routing").ok
    assert "waiting for one of sarah-sales, mike-anz" in result.text()


def test_stale_dismissed_and_non_owner_approvals_do_not_count() -> None:
    result = check("stale_and_dismissed.json")
    assert not result.ok
    stages = next(a for a in result.areas if a.area == "stages")
    assert stages.missing == ["sales"]
    assert stages.stale == {"sales": ["sarah-sales"]}
    notes = " ".join(result.ignored)
    assert "sarah-sales is for badc0de00000" in notes and "stale" in notes
    assert "mike-anz was dismissed" in notes
    assert "random-dev does not count: not a member" in notes


def test_outstanding_change_request_blocks_even_with_another_approval() -> None:
    result = check("changes_requested.json")  # mike (sales) approved, sarah (sales) still requests changes
    stages = next(a for a in result.areas if a.area == "stages")
    assert not result.ok and stages.blocked == ["sales"] and stages.changes_requested == {"sales": ["sarah-sales"]}
    assert "changes requested by sarah-sales" in result.text()


def test_only_the_latest_verdict_per_user_counts() -> None:
    latest = latest_verdicts(reviews("latest_wins.json"))
    assert latest["tom-demandgen"].state == "CHANGES_REQUESTED"
    assert latest["mike-anz"].state == "APPROVED"
    result = check("latest_wins.json")
    stages = next(a for a in result.areas if a.area == "stages")
    assert stages.blocked == ["marketing"] and "sales" in stages.approved_by


def test_paginated_output_of_gh_api() -> None:
    assert [r.login for r in reviews("paginated.json")] == [r.login for r in reviews("all_approved.json")]
    assert check("paginated.json").ok


@pytest.mark.parametrize("text", ["{}", "[1]", '[{"state": "APPROVED"}]', "not json"])
def test_bad_reviews_files(text: str) -> None:
    with pytest.raises(ReviewsError):
        parse_reviews(text)


def test_unassigned_files_fall_to_policy_set_owners_and_no_change_needs_nobody() -> None:
    result = check_approvals(OWN, OWN, ["../schemas/lead.schema.json"], [], HEAD)
    assert [(a.area, a.required) for a in result.areas] == [("policy-set", ["sales-ops"])]
    assert check_approvals(OWN, OWN, [], [], HEAD).ok


def test_ownership_from_both_revisions() -> None:
    """A pull request that drops sales from the stages area still needs sales (base ownership counts)."""
    files, root = read_directory(ROOT / "policies")
    files = dict(files)
    files["policies/leadops.yaml"] = files["policies/leadops.yaml"].replace(
        b"stages: {files: [stages.yaml], approvers: [marketing, sales]}", b"stages: {files: [stages.yaml], approvers: [marketing]}")
    head_own = engine.load_policy_files(files, root).model.ownership
    result = check_approvals(OWN, head_own, ["leadops.yaml", "stages.yaml"], reviews("marketing_only.json"), HEAD)
    assert not result.ok
    assert next(a for a in result.areas if a.area == "stages").missing == ["sales"]


# ------------------------------------------------------------------------------------------- CLI, real git


def git(cwd: Path, *args: str) -> str:
    return subprocess.run(["git", "-c", "user.name=Test", "-c", "user.email=test@example.com", "-c",
                           "commit.gpgsign=false", *args], cwd=cwd, check=True, capture_output=True, text=True).stdout.strip()


@pytest.fixture
def pr(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Path, str, str]:
    root = tmp_path / "repo"
    root.mkdir()
    shutil.copytree(ROOT / "policies", root / "policies")
    shutil.copytree(ROOT / "schemas", root / "schemas")
    git(root, "init", "-q", "-b", "main")
    git(root, "add", "-A")
    git(root, "commit", "-qm", "base")
    git(root, "checkout", "-qb", "raise-sql")
    for name, old, new in [("stages.yaml", "score.total >= 50 and not", "score.total >= 60 and not"),
                           ("routing.yaml", "lead.employees < 101", "lead.employees < 201")]:
        p = root / "policies" / name
        p.write_text(p.read_text().replace(old, new))
        git(root, "commit", "-qam", f"change {name}")
    first = git(root, "rev-parse", "HEAD~1")
    head = git(root, "rev-parse", "HEAD")
    git(root, "checkout", "-q", "main")  # main moves on meanwhile: a scoring change that is not the PR's
    p = root / "policies" / "scoring.yaml"
    p.write_text(p.read_text().replace("        points: 20\n", "        points: 22\n", 1))
    git(root, "commit", "-qam", "main moves on")
    git(root, "checkout", "-q", "raise-sql")
    monkeypatch.chdir(root)
    return root, first, head


def write_reviews(tmp: Path, name: str, head: str, old: str) -> str:
    text = (FIXTURES / name).read_text().replace(HEAD, head).replace(OLD, old)
    out = tmp / name
    out.write_text(text)
    return str(out)


def test_cli_blocks_until_both_teams_approve(pr: tuple[Path, str, str], tmp_path: Path) -> None:
    from cli import cli

    root, first, head = pr
    run = CliRunner().invoke
    r = run(cli, ["approvals", "--base", "main", "--head", "HEAD", "--reviews", write_reviews(tmp_path, "marketing_only.json", head, first)])
    assert r.exit_code == 1, r.output
    assert "MISSING stages (stages.yaml): needs marketing and sales" in r.output
    assert "scoring" not in r.output  # main's own scoring change is not the pull request's (merge base)
    r = run(cli, ["approvals", "--base", "main", "--head", head, "--reviews", write_reviews(tmp_path, "stale_and_dismissed.json", head, first)])
    assert r.exit_code == 1 and "stale" in r.output
    r = run(cli, ["approvals", "--base", "main", "--head", head, "--reviews", write_reviews(tmp_path, "all_approved.json", head, first),
                  "--format", "json"])
    assert r.exit_code == 0, r.output
    data = json.loads(r.output)
    assert data["ok"] and data["head"] == head and [a["area"] for a in data["areas"]] == ["routing", "stages"]
    # the same approvals no longer count after another push
    (root / "policies" / "routing.yaml").write_text((root / "policies" / "routing.yaml").read_text() + "\n")
    git(root, "commit", "-qam", "push again")
    r = run(cli, ["approvals", "--base", "main", "--reviews", write_reviews(tmp_path, "all_approved.json", head, first)])
    assert r.exit_code == 1 and "stale" in r.output


def test_cli_errors(pr: tuple[Path, str, str], tmp_path: Path) -> None:
    from cli import cli

    bad = tmp_path / "bad.json"
    bad.write_text('{"message": "Bad credentials"}')
    r = CliRunner().invoke(cli, ["approvals", "--base", "main", "--reviews", str(bad)])
    assert r.exit_code == 1 and "expected a JSON array" in r.output and "Traceback" not in r.output
    r = CliRunner().invoke(cli, ["approvals", "--base", "main", "--reviews", str(tmp_path / "missing.json")])
    assert r.exit_code == 1 and "cannot read" in r.output
    r = CliRunner().invoke(cli, ["approvals", "--base", "nope", "--reviews", str(FIXTURES / "all_approved.json")])
    assert r.exit_code == 1 and "GIT002" in r.output
    r = CliRunner().invoke(cli, ["approvals", "--base", "main"])
    assert r.exit_code == 2


def test_changed_files_across_renames() -> None:
    files, root = read_directory(ROOT / "policies")
    moved = {k.replace("policies/", "rules/") if k.startswith("policies/") else k: v for k, v in files.items()}
    assert changed_files(files, root, moved, "rules") == []
    renamed = dict(files)
    renamed["policies/lead-scoring.yaml"] = renamed.pop("policies/scoring.yaml")
    assert changed_files(files, root, renamed, root) == ["lead-scoring.yaml", "scoring.yaml"]


# ------------------------------------------------------------------------------- what reviewers said, outsiders


def test_each_reviewers_latest_comment_is_quoted() -> None:
    result = check("changes_requested.json")
    said = {c["login"]: c["body"] for c in result.to_dict()["comments"]}
    assert said == {"sarah-sales": "Still thinking."}  # her newer COMMENTED review replaces the older words
    md = result.markdown()
    assert "**What reviewers said**" in md and "> Still thinking." in md and "@sarah-sales (sales)" in md
    assert "sarah-sales (sales, commented" in result.text()


def test_quotes_cannot_ping_or_hide_markers() -> None:
    from engine.approvals import quote_markdown

    quoted = quote_markdown("cc @mike-anz\n<!-- leadops-impact-report -->")
    assert quoted.splitlines()[0] == "> cc @\u200bmike-anz" and "<!--" not in quoted


def test_approval_from_outside_the_owning_groups_is_named() -> None:
    result = check("marketing_only.json", ["stages.yaml"])  # a stages-only change: marketing and sales own it
    assert result.outside == {"dan-salesops": ["sales-ops"]}
    assert "@dan-salesops (sales-ops)" in result.markdown() and "outside the owning groups" in result.markdown()
    assert check("marketing_only.json").outside == {}  # with routing changed too, sales-ops owns an area
    assert check("stale_and_dismissed.json").outside == {"random-dev": []}
