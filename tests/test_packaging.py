"""Reproducible installs: CI and the README install the exact versions the committed lock fixes."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
LOCK = ROOT / "requirements" / "constraints.txt"
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))


def _name(requirement: str) -> str:
    return re.split(r"[\s<>=!~;\[]", requirement, maxsplit=1)[0].lower().replace("_", "-")


def _pins() -> dict[str, str]:
    pins = {}
    for line in LOCK.read_text(encoding="utf-8").splitlines():
        m = re.match(r"^([A-Za-z0-9_.\-]+)==(\S+)", line)
        if m:
            pins[m.group(1).lower().replace("_", "-")] = m.group(2)
    return pins


def _readme_test_command() -> str:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    lines = [line for line in text.splitlines() if line.startswith("python3 -m venv .venv &&") and "pytest" in line]
    assert len(lines) == 1, lines
    return lines[0]


def test_ci_runs_the_readme_test_command() -> None:
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8")
    assert _readme_test_command() in ci


def test_readme_installs_from_the_lock() -> None:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    installs = [x for x in text.splitlines() if x.startswith("python3 -m venv .venv ") and "pip install" in x]
    assert len(installs) == 2
    for command in installs:
        assert "-c requirements/constraints.txt" in command, command


@pytest.mark.parametrize(
    "requirement",
    PYPROJECT["project"]["dependencies"]
    + [r for extra in PYPROJECT["project"]["optional-dependencies"].values() for r in extra],
)
def test_every_dependency_is_pinned_exactly(requirement: str) -> None:
    assert _name(requirement) in _pins(), f"{requirement} has no exact pin in {LOCK.name}: refresh the lock"


def test_pyproject_keeps_lower_bounds_not_pins() -> None:
    for requirement in PYPROJECT["project"]["dependencies"]:
        assert ">=" in requirement and "==" not in requirement, requirement


def test_lock_says_how_it_was_made() -> None:
    head = LOCK.read_text(encoding="utf-8").splitlines()[:3]
    assert any("uv pip compile pyproject.toml" in line for line in head)
    assert "uv pip compile pyproject.toml" in (ROOT / "README.md").read_text(encoding="utf-8")
