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


@pytest.fixture
def example(tmp_path: Path) -> Path:
    r = CliRunner().invoke(cli, ["init", str(tmp_path / "acme"), "--example"])
    assert r.exit_code == 0, r.output
    return tmp_path / "acme"


COMMON = ("schemas/lead.schema.json", ".github/workflows/policy-pr.yml", ".github/workflows/policy-release.yml",
          ".github/workflows/policy-approvals.yml", ".github/CODEOWNERS", ".pre-commit-config.yaml", "README.md",
          ".gitignore")


def test_layout(scaffolded: Path) -> None:
    """The default is the small starter set: placeholders marked, one scenario, no Acme data."""
    for rel in ("policies/leadops.yaml", "policies/scoring.yaml", "scenarios/starter.yaml", *COMMON):
        assert (scaffolded / rel).is_file(), rel
    assert (scaffolded / ".git").is_dir()
    assert not (scaffolded / "scenarios" / "leads").exists()
    assert not (scaffolded / ".github" / "workflows" / "dependency-drift.yml").exists()  # leadops' own CI only
    meta = yaml.safe_load((scaffolded / "policies" / "leadops.yaml").read_text())
    assert meta["name"] == "revenue-policies" and meta["version"] == "0.1.0"
    text = "\n".join(p.read_text() for p in (scaffolded / "policies").glob("*.yaml"))
    assert "PLACEHOLDER" in text and "acme" not in text.lower() and "Australia" not in text
    assert "@" not in (scaffolded / ".github" / "CODEOWNERS").read_text().replace("@replace-with-", "")


def test_example_layout(example: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for rel in ("policies/leadops.yaml", "scenarios/leads/icp-enterprise-brisbane.json", *COMMON):
        assert (example / rel).is_file(), rel
    monkeypatch.chdir(example)
    assert CliRunner().invoke(cli, ["validate"]).exit_code == 0
    r = CliRunner().invoke(cli, ["eval", "scenarios/leads/icp-enterprise-brisbane.json", "--now", "2026-11-23T09:00:00+10:00"])
    assert r.exit_code == 0
    assert CliRunner().invoke(cli, ["test"]).exit_code == 0


def test_validates_immediately(scaffolded: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(scaffolded)
    r = CliRunner().invoke(cli, ["validate"])
    assert r.exit_code == 0 and "valid — revenue-policies 0.1.0" in r.output
    assert CliRunner().invoke(cli, ["codeowners", "--check"]).exit_code == 0


def test_git_starts_on_main(scaffolded: Path) -> None:
    head = subprocess.run(["git", "-C", str(scaffolded), "symbolic-ref", "HEAD"], capture_output=True, text=True)
    assert head.stdout.strip() == "refs/heads/main"


@pytest.mark.parametrize(("path", "ignored"), [
    ("keys/prod.private.pem", True), ("keys/prod.public.pem", True), ("signer.pem", True),
    ("secrets/ci.private.pem", True), (".leadops-cache/bundle.tar.gz", True), ("dist/leadops-abc.tar.gz", True),
    ("leadops-abc.tar.gz", True), ("verifier.public.pem", False), ("policies/scoring.yaml", False),
    ("scenarios/starter.yaml", False),
])
def test_gitignore_keeps_private_keys_bundles_and_caches_out(scaffolded: Path, path: str, ignored: bool) -> None:
    r = subprocess.run(["git", "-C", str(scaffolded), "check-ignore", "-q", "--no-index", path])
    assert (r.returncode == 0) is ignored


def test_readme_installs_leadops_from_its_repository(scaffolded: Path) -> None:
    readme = (scaffolded / "README.md").read_text()
    assert 'pip install -q "leadops @ git+' in readme and "leadops==" not in readme
    package = readme.split('pip install -q "', 1)[1].split('"', 1)[0]
    for wf in (scaffolded / ".github" / "workflows").glob("*.yml"):
        assert f'LEADOPS_PACKAGE: "{package}"' in wf.read_text(), wf.name  # CI installs the same leadops


def test_install_spec_pins_the_repository_and_commit_leadops_came_from(tmp_path: Path) -> None:
    from engine.scaffold import REPOSITORY_PLACEHOLDER, install_spec

    g = ["git", "-C", str(tmp_path), "-c", "user.name=T", "-c", "user.email=t@example.com", "-c", "commit.gpgsign=false"]
    subprocess.run([*g, "init", "-q"], check=True)
    assert install_spec(tmp_path) == (f"leadops @ git+{REPOSITORY_PLACEHOLDER}@v0.1.0", False)  # no origin: say so
    subprocess.run([*g, "commit", "-q", "--allow-empty", "-m", "x"], check=True)
    subprocess.run([*g, "remote", "add", "origin", "git@github.com:revops/leadops.git"], check=True)
    sha = subprocess.run([*g, "rev-parse", "HEAD"], capture_output=True, text=True, check=True).stdout.strip()
    assert install_spec(tmp_path) == (f"leadops @ git+https://github.com/revops/leadops.git@{sha}", True)


def test_region_options_make_the_calendar_right(tmp_path: Path) -> None:
    """US/NY holidays in New York time: an SLA clock started the Thursday before Independence Day (observed
    Friday 2026-07-03) skips the holiday and the weekend."""
    import engine

    root = tmp_path / "ny"
    r = CliRunner().invoke(cli, ["init", str(root), "--country", "US", "--subdivision", "NY", "--time-zone",
                                 "America/New_York"])
    assert r.exit_code == 0, r.output
    cal = yaml.safe_load((root / "policies" / "calendars.yaml").read_text())["calendars"][0]
    assert cal["timezone"] == "America/New_York" and cal["holidays"] == {"country": "US", "subdivision": "NY"}
    lead = {"id": "L-1", "email": "a@b.com", "stage": "mql", "stage_entered_at": "2026-07-02T16:00:00-04:00",
            "employees": 500, "seniority": "director"}
    from datetime import datetime

    d = engine.load_policies(root / "policies").evaluate(lead, datetime.fromisoformat("2026-07-02T17:00:00-04:00"))
    assert d.to_dict()["slas"][0]["due"] == "2026-07-06T16:00:00-04:00"


@pytest.mark.parametrize(("args", "option", "words"), [
    (["--country", "US", "--subdivision", "XX", "--time-zone", "America/New_York"], "--subdivision", "'XX' for country 'US'"),
    (["--country", "ZZ"], "--country", "unknown holiday country 'ZZ'"),
    (["--time-zone", "America/San_Francisco"], "--time-zone", "did you mean 'America/Los_Angeles'?"),
    (["--country", "US"], "--time-zone", "America/New_York, America/Chicago"),
    (["--subdivision", "NY"], "--subdivision", "needs --country"),
])
def test_bad_region_is_a_usage_error_naming_the_option(tmp_path: Path, args: list[str], option: str, words: str) -> None:
    r = CliRunner().invoke(cli, ["init", str(tmp_path / "x"), *args])
    assert r.exit_code == 2 and f"Invalid value for {option}" in r.output and words in r.output, r.output
    assert not (tmp_path / "x").exists() and "Traceback" not in r.output


def test_passes_its_own_tests(scaffolded: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    if "test" not in cli.commands:
        pytest.xfail("`leadops test` is being built in parallel")
    monkeypatch.chdir(scaffolded)
    r = CliRunner().invoke(cli, ["test"])
    assert r.exit_code == 0, r.output


def test_workflows_stay_valid(scaffolded: Path) -> None:
    for wf in sorted((scaffolded / ".github" / "workflows").glob("*.yml")):
        text = wf.read_text()
        assert 'LEADOPS_PACKAGE: "leadops @ git+' in text and '".[test]"' not in text
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
