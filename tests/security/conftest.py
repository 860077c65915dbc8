"""Shared helpers for the security suites; every test in this folder is marked `security` automatically.

Cases that could hang or blow up memory run in a child process with a wall-clock timeout and an address-space
limit (RLIMIT_AS), so a regression fails the test instead of hanging CI or exhausting the runner.
"""

from __future__ import annotations

import os
import resource
import subprocess
import sys
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
REPO = HERE.parent.parent
PYTHON = sys.executable
LEADOPS = str(Path(sys.executable).with_name("leadops"))
NOW = "2026-11-23T09:00:00+10:00"


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        if HERE in Path(str(item.path)).resolve().parents:
            item.add_marker(pytest.mark.security)


def _limits(mem_mb: int | None):
    def apply() -> None:
        if mem_mb:
            limit = mem_mb * 1024 * 1024
            resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
        resource.setrlimit(resource.RLIMIT_CORE, (0, 0))

    return apply


def run_limited(args: list[str], *, input: bytes | None = None, timeout: float = 30, mem_mb: int | None = 1024,
                env: dict[str, str] | None = None, cwd: str | Path | None = None) -> subprocess.CompletedProcess:
    """Run a command with a timeout and an address-space limit; a timeout fails the calling test."""
    full_env = {**os.environ, **(env or {})}
    try:
        return subprocess.run(args, input=input, capture_output=True, timeout=timeout, env=full_env,
                              cwd=str(cwd or REPO), preexec_fn=_limits(mem_mb))
    except subprocess.TimeoutExpired as exc:  # pragma: no cover - a regression
        pytest.fail(f"timed out after {timeout}s (hang): {args[:4]} …\nstderr so far: {exc.stderr!r:.500}")


def leadops(*args: str, **kwargs) -> subprocess.CompletedProcess:
    return run_limited([LEADOPS, *args], **kwargs)


def assert_no_traceback(proc: subprocess.CompletedProcess) -> None:
    text = proc.stdout.decode("utf-8", "replace") + proc.stderr.decode("utf-8", "replace")
    assert "Traceback (most recent call last)" not in text, text[-3000:]


@pytest.fixture(scope="session")
def policy_set():
    import engine

    return engine.load_policies(str(REPO / "policies"))


@pytest.fixture(scope="session")
def sec():
    """The helpers above, for tests (test modules do not import conftest directly)."""
    import types

    return types.SimpleNamespace(run_limited=run_limited, leadops=leadops, assert_no_traceback=assert_no_traceback,
                                 NOW=NOW, REPO=REPO, LEADOPS=LEADOPS, PYTHON=PYTHON)
