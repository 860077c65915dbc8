"""`leadops init DIR`: a new policy repository that validates (and passes its own checks) immediately."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from cli import cli

ROOT = Path(__file__).resolve().parents[1]
BIN = ROOT / ".venv" / "bin"


@pytest.fixture
def scaffolded(tmp_path: Path) -> Path:
    r = CliRunner().invoke(cli, ["init", str(tmp_path / "Revenue Policies"), "--name", "revenue-policies"])
    assert r.exit_code == 0, r.output
    return tmp_path / "Revenue Policies"


def test_layout(scaffolded: Path) -> None:
    for rel in ("policies/leadops.yaml", "policies/scoring.yaml", "schemas/lead.schema.json",
                "scenarios/leads/icp-enterprise-brisbane.json", ".github/workflows/policy-pr.yml",
                ".github/workflows/policy-release.yml", ".github/CODEOWNERS", ".pre-commit-config.yaml", "README.md",
                ".gitignore"):
        assert (scaffolded / rel).is_file(), rel
    assert (scaffolded / ".git").is_dir()
    meta = yaml.safe_load((scaffolded / "policies" / "leadops.yaml").read_text())
    assert meta["name"] == "revenue-policies" and meta["version"] == "0.1.0"


def test_validates_immediately(scaffolded: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(scaffolded)
    r = CliRunner().invoke(cli, ["validate"])
    assert r.exit_code == 0 and "valid — revenue-policies 0.1.0" in r.output
    assert CliRunner().invoke(cli, ["codeowners", "--check"]).exit_code == 0
    r = CliRunner().invoke(cli, ["eval", "scenarios/leads/icp-enterprise-brisbane.json", "--now", "2026-11-23T09:00:00+10:00"])
    assert r.exit_code == 0


def test_passes_its_own_tests(scaffolded: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    if "test" not in cli.commands:
        pytest.xfail("`leadops test` is being built in parallel")
    monkeypatch.chdir(scaffolded)
    r = CliRunner().invoke(cli, ["test"])
    assert r.exit_code == 0, r.output


def test_workflows_install_the_released_package_and_stay_valid(scaffolded: Path) -> None:
    for wf in sorted((scaffolded / ".github" / "workflows").glob("*.yml")):
        text = wf.read_text()
        assert 'LEADOPS_PACKAGE: "leadops==' in text and '".[test]"' not in text
        if (BIN / "check-jsonschema").exists():
            r = subprocess.run([str(BIN / "check-jsonschema"), "--builtin-schema", "vendor.github-workflows", str(wf)],
                               capture_output=True, text=True)
            assert r.returncode == 0, r.stdout


def test_commits_and_diffs_cleanly(scaffolded: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    g = ["git", "-c", "user.name=T", "-c", "user.email=t@example.com", "-c", "commit.gpgsign=false"]
    subprocess.run([*g, "add", "-A"], cwd=scaffolded, check=True)
    subprocess.run([*g, "commit", "-qm", "Policy set"], cwd=scaffolded, check=True)
    monkeypatch.chdir(scaffolded)
    r = CliRunner().invoke(cli, ["diff", "--base", "HEAD", "--now", "2026-11-23T09:00:00+10:00"])
    assert r.exit_code == 0 and "policy changes (0)" in r.output and "no lead of" in r.output


def test_refuses_a_non_empty_directory(tmp_path: Path) -> None:
    (tmp_path / "x").mkdir()
    (tmp_path / "x" / "file").write_text("keep me")
    r = CliRunner().invoke(cli, ["init", str(tmp_path / "x")])
    assert r.exit_code == 1 and "not empty" in r.output and "Traceback" not in r.output
    assert (tmp_path / "x" / "file").read_text() == "keep me"
    r = CliRunner().invoke(cli, ["init", str(tmp_path / "y"), "--name", "Bad Name"])
    assert r.exit_code == 1 and "lower-case id" in r.output
    assert CliRunner().invoke(cli, ["init"]).exit_code == 2
