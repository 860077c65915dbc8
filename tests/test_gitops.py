"""Policy sets at git revisions, read from real temporary git repositories (no mocks of git)."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

import engine
from engine import gitops
from engine.errors import PolicyError
from engine.sources import read_directory

ROOT = Path(__file__).resolve().parents[1]
NOW = "2026-11-23T09:00:00+10:00"


def git(cwd: Path, *args: str) -> str:
    return subprocess.run(["git", "-c", "user.name=Test", "-c", "user.email=test@example.com", "-c",
                           "commit.gpgsign=false", "-c", "tag.gpgsign=false", *args],
                          cwd=cwd, check=True, capture_output=True, text=True).stdout.strip()


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    root = tmp_path / "repo"
    root.mkdir()
    shutil.copytree(ROOT / "policies", root / "policies")
    shutil.copytree(ROOT / "schemas", root / "schemas")
    (root / "README.md").write_text("policies\n")
    git(root, "init", "-q", "-b", "main")
    git(root, "add", "-A")
    git(root, "commit", "-qm", "base")
    return root


def edit(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    assert old in text, old
    path.write_text(text.replace(old, new, 1))


def test_revision_files_equal_read_directory(repo: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(repo)
    src = gitops.source_at_revision("HEAD", "policies")
    files, root = read_directory(repo / "policies")
    assert src.root == root == "policies"
    assert src.files == files
    assert "schemas/lead.schema.json" in src.files
    ps = gitops.load_at_revision("main", "policies")
    assert ps.revision == git(repo, "rev-parse", "HEAD")
    assert ps.source_files == files


def test_any_revision_without_touching_the_working_tree(repo: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(repo)
    first = git(repo, "rev-parse", "HEAD")
    git(repo, "tag", "-a", "v1", "-m", "release 1")
    git(repo, "checkout", "-qb", "raise-points")
    edit(repo / "policies" / "scoring.yaml", "        points: 20\n", "        points: 25\n")
    git(repo, "commit", "-qam", "pricing page 25")
    second = git(repo, "rev-parse", "HEAD")
    edit(repo / "policies" / "scoring.yaml", "        points: 25\n", "        points: 30\n")  # uncommitted
    before = (repo / "policies" / "scoring.yaml").read_bytes()
    status = git(repo, "status", "--porcelain")

    def pricing(ps: engine.PolicySet) -> float:
        return next(r.points for g in ps.model.scoring.groups for r in g.rules if r.id == "pricing-page")

    assert pricing(gitops.load_at_revision("v1")) == 20 and gitops.load_at_revision("v1").revision == first
    assert pricing(gitops.load_at_revision("main")) == 20
    assert pricing(gitops.load_at_revision("HEAD~1")) == 20
    assert pricing(gitops.load_at_revision(first[:10])) == 20
    assert pricing(gitops.load_at_revision("raise-points")) == 25
    assert gitops.load_at_revision("raise-points").revision == second
    assert pricing(engine.load_policies("policies")) == 30
    assert (repo / "policies" / "scoring.yaml").read_bytes() == before
    assert git(repo, "status", "--porcelain") == status
    assert git(repo, "rev-parse", "--abbrev-ref", "HEAD") == "raise-points"


def test_working_tree_revision_and_dirty_marker(repo: Path) -> None:
    sha = git(repo, "rev-parse", "HEAD")
    assert engine.load_policies(repo / "policies").revision == sha
    (repo / "README.md").write_text("unrelated change\n")  # not a policy file: still clean
    assert engine.load_policies(repo / "policies").revision == sha

    edit(repo / "policies" / "routing.yaml", "lead.employees < 101", "lead.employees < 201")
    dirty = engine.load_policies(repo / "policies").revision
    assert dirty.startswith(sha + "+dirty.")
    git(repo, "checkout", "--", "policies/routing.yaml")
    assert engine.load_policies(repo / "policies").revision == sha

    schema = repo / "schemas" / "lead.schema.json"
    data = json.loads(schema.read_text())
    data["description"] = "edited"
    schema.write_text(json.dumps(data, indent=2))
    assert engine.load_policies(repo / "policies").revision.startswith(sha + "+dirty.")
    git(repo, "checkout", "--", "schemas/lead.schema.json")

    (repo / "policies" / "teams.yaml").rename(repo / "policies" / "team-roster.yaml")  # uncommitted rename
    assert engine.load_policies(repo / "policies").revision.startswith(sha + "+dirty.")
    (repo / "policies" / "team-roster.yaml").rename(repo / "policies" / "teams.yaml")
    assert engine.load_policies(repo / "policies").revision == sha


def test_dirty_revisions_differ_by_content(repo: Path) -> None:
    edit(repo / "policies" / "scoring.yaml", "        points: 20\n", "        points: 21\n")
    one = engine.load_policies(repo / "policies").revision
    edit(repo / "policies" / "scoring.yaml", "        points: 21\n", "        points: 22\n")
    two = engine.load_policies(repo / "policies").revision
    assert one != two and one.split("+")[0] == two.split("+")[0]


def test_decisions_record_the_commit(repo: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from cli import cli

    monkeypatch.chdir(repo)
    sha = git(repo, "rev-parse", "HEAD")
    lead = str(ROOT / "scenarios" / "leads" / "icp-enterprise-brisbane.json")
    r = CliRunner().invoke(cli, ["eval", lead, "--now", NOW])
    assert r.exit_code == 0, r.output
    assert json.loads(r.output)["policy_revision"] == sha
    edit(repo / "policies" / "scoring.yaml", "        points: 20\n", "        points: 25\n")
    r = CliRunner().invoke(cli, ["eval", lead, "--now", NOW, "--policies", "HEAD:policies"])
    assert r.exit_code == 0 and json.loads(r.output)["policy_revision"] == sha
    r = CliRunner().invoke(cli, ["eval", lead, "--now", NOW])
    assert json.loads(r.output)["policy_revision"].startswith(sha + "+dirty.")


def test_outside_git_uses_content_hash_and_never_imports_git(tmp_path: Path) -> None:
    shutil.copytree(ROOT / "policies", tmp_path / "policies")
    shutil.copytree(ROOT / "schemas", tmp_path / "schemas")
    code = ("import sys, engine; ps = engine.load_policies(sys.argv[1]); "
            "print(ps.revision, 'git' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code, str(tmp_path / "policies")], cwd=ROOT, capture_output=True,
                         text=True, check=True, env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(ROOT)}).stdout.split()
    assert out[0].startswith("sha256:") and out[1] == "False"


def test_renamed_policy_directory(repo: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(repo)
    old = git(repo, "rev-parse", "HEAD")
    git(repo, "mv", "policies", "rules")
    edit(repo / "rules" / "leadops.yaml", "lead_schema: ../schemas/lead.schema.json", "lead_schema: ../schemas/lead.schema.json")
    git(repo, "commit", "-qm", "rename policies/ to rules/")
    assert gitops.open_policy_source(f"{old}:policies", None).revision == old
    assert gitops.open_policy_source("rules", None).revision == git(repo, "rev-parse", "HEAD")
    assert gitops.open_policy_source("rules", "HEAD").root == "rules"
    with pytest.raises(PolicyError) as exc:
        gitops.open_policy_source("HEAD:policies", None)
    assert exc.value.diagnostics[0].code == "POL001"


def test_renamed_policy_file_loads_the_same_model(repo: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(repo)
    git(repo, "mv", "policies/scoring.yaml", "policies/lead-scoring.yaml")
    git(repo, "commit", "-qm", "rename scoring file")
    a, b = gitops.load_at_revision("HEAD~1"), gitops.load_at_revision("HEAD")
    assert "policies/lead-scoring.yaml" in b.source_files and "policies/scoring.yaml" not in b.source_files
    from engine.semantic_diff import semantic_diff

    assert semantic_diff(a.model, b.model) == []


def test_policy_directory_in_a_subfolder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    root = tmp_path / "mono"
    (root / "revops").mkdir(parents=True)
    shutil.copytree(ROOT / "policies", root / "revops" / "policies")
    shutil.copytree(ROOT / "schemas", root / "revops" / "schemas")
    git(root, "init", "-q", "-b", "main")
    git(root, "add", "-A")
    git(root, "commit", "-qm", "base")
    monkeypatch.chdir(root / "revops")
    src = gitops.source_at_revision("HEAD", "policies")
    assert src.files == read_directory(root / "revops" / "policies")[0]
    assert src.repo_dir == "revops/policies"
    monkeypatch.chdir(root)
    assert gitops.open_policy_source("HEAD:revops/policies", None).revision == git(root, "rev-parse", "HEAD")
    assert engine.load_policies("revops/policies").revision == git(root, "rev-parse", "HEAD")


def test_errors_are_diagnostics(repo: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(repo)
    with pytest.raises(PolicyError) as exc:
        gitops.load_at_revision("no-such-branch")
    assert exc.value.diagnostics[0].code == "GIT002"
    with pytest.raises(PolicyError) as exc:
        gitops.load_at_revision("HEAD^{tree}")
    assert exc.value.diagnostics[0].code == "GIT002" and "not a commit" in exc.value.diagnostics[0].message
    with pytest.raises(PolicyError) as exc:
        gitops.open_policy_source(":policies", None)
    assert exc.value.diagnostics[0].code == "GIT002"
    plain = tmp_path / "plain"
    plain.mkdir()
    monkeypatch.chdir(plain)
    with pytest.raises(PolicyError) as exc:
        gitops.open_policy_source("HEAD:policies", None)
    assert exc.value.diagnostics[0].code == "GIT001"


def test_cli_bad_revision_is_one_message_exit_1(repo: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from cli import cli

    monkeypatch.chdir(repo)
    lead = str(ROOT / "scenarios" / "leads" / "student.json")
    r = CliRunner().invoke(cli, ["eval", lead, "--policies", "nope:policies", "--now", NOW])
    assert r.exit_code == 1
    assert "GIT002" in r.output and "Traceback" not in r.output


def test_invalid_policy_at_a_revision_reports_located_errors(repo: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(repo)
    edit(repo / "policies" / "routing.yaml", "assign: {team: seq-smb}", "assign: {team: seq-smbb}")
    git(repo, "commit", "-qam", "typo")
    with pytest.raises(PolicyError) as exc:
        gitops.load_at_revision("HEAD")
    assert any(d.location.file == "policies/routing.yaml" and d.location.line > 0 for d in exc.value.diagnostics)
    assert gitops.load_at_revision("HEAD~1").revision
