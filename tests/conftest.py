"""Shared helpers: copies of policy sets in tmp dirs that a test can patch, and the example set loaded once."""

from __future__ import annotations

import math
import os
import shutil
from datetime import datetime
from pathlib import Path

import pytest
from hypothesis import settings

import engine
from engine.errors import Diagnostic, PolicyError

# Property tests explore new inputs on every developer run; in CI (CI=true) they replay a fixed derivation so a
# landing is judged on the same cases every time (a bug found locally becomes a fixed example test).
settings.register_profile("ci", derandomize=True, deadline=None, print_blob=True)
if os.environ.get("CI"):
    settings.load_profile("ci")

REPO = Path(__file__).resolve().parents[1]
EXAMPLE_POLICIES = REPO / "policies"
LEAD_SCHEMA = REPO / "schemas" / "lead.schema.json"
MINIMAL = REPO / "tests" / "fixtures" / "policies" / "minimal"
SAMPLE_LEADS = sorted((REPO / "scenarios" / "leads").glob("*.json"))
NOW = datetime.fromisoformat("2026-11-23T09:00:00+10:00")  # a Monday, 09:00 in Brisbane


class PolicyDir:
    """A policy set copied into a tmp dir (`<root>/policies/*.yaml` + `<root>/schemas/lead.schema.json`)."""

    def __init__(self, root: Path):
        self.root = root
        self.policies = root / "policies"

    def text(self, name: str) -> str:
        return (self.policies / name).read_text(encoding="utf-8")

    def write(self, name: str, text: str) -> "PolicyDir":
        (self.policies / name).write_text(text, encoding="utf-8")
        return self

    def patch(self, name: str, old: str, new: str) -> "PolicyDir":
        """Replace the one occurrence of `old` in policies/<name> (fails loudly when the text is not there)."""
        text = self.text(name)
        assert text.count(old) == 1, f"{old!r} occurs {text.count(old)} times in {name}"
        return self.write(name, text.replace(old, new))

    def remove(self, name: str) -> "PolicyDir":
        (self.policies / name).unlink()
        return self

    def load(self) -> engine.PolicySet:
        return engine.load_policies(self.policies)

    def diagnostics(self) -> list[Diagnostic]:
        with pytest.raises(PolicyError) as info:
            self.load()
        return info.value.diagnostics

    def codes(self) -> list[str]:
        return [d.code for d in self.diagnostics()]


def same(a: object, b: object) -> bool:
    """Expression results equal in value and type (NaN equals NaN): the fast path vs the reference."""
    if type(a) is not type(b):
        return False
    if isinstance(a, float):
        return (math.isnan(a) and math.isnan(b)) or a == b  # type: ignore[arg-type]
    if isinstance(a, tuple):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b))  # type: ignore[arg-type]
    return a is b or a == b


def both_paths(compiled: object, lead: object, now: datetime) -> tuple[object, object]:
    """(fast path, reference) outcomes of a compiled expression: the value, or the EvaluationError code."""
    from engine.errors import EvaluationError

    out = []
    for fn in (compiled.fn, compiled.reference):  # type: ignore[attr-defined]
        try:
            out.append(fn(lead, now))
        except EvaluationError as exc:
            out.append(exc.code)
    return out[0], out[1]


def copy_policy_set(source: Path, dest: Path) -> PolicyDir:
    """Copy a policy set laid out as <source>/policies + <source>/schemas into dest."""
    shutil.copytree(source / "policies", dest / "policies")
    shutil.copytree(source / "schemas", dest / "schemas")
    return PolicyDir(dest)


@pytest.fixture
def example_set(tmp_path: Path) -> PolicyDir:
    """A private copy of the example policy set (policies/ + the lead schema)."""
    (tmp_path / "set" / "schemas").mkdir(parents=True)
    shutil.copytree(EXAMPLE_POLICIES, tmp_path / "set" / "policies")
    shutil.copy(LEAD_SCHEMA, tmp_path / "set" / "schemas" / "lead.schema.json")
    return PolicyDir(tmp_path / "set")


@pytest.fixture
def mini_set(tmp_path: Path) -> PolicyDir:
    """A private copy of tests/fixtures/policies/minimal: one team (ann w2, bob w1 + OOO), one queue, one SLA."""
    return copy_policy_set(MINIMAL, tmp_path / "mini")


@pytest.fixture(scope="session")
def example_ps() -> engine.PolicySet:
    return engine.load_policies(EXAMPLE_POLICIES)


# --- a real browser for the web pages and HTML reports -------------------------------------------------------
# Playwright drives Debian's Chromium (`apt-get install chromium`; .ci/run installs it when missing), never a
# browser Playwright downloads. Each page records console errors and every request that would leave loopback,
# and aborts the latter, so a test can assert that a page works offline.

CHROMIUM_ARGS = [
    "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]
LOCAL_PREFIXES = ("http://127.0.0.1", "http://localhost", "http://[::1]", "file://", "data:", "blob:", "about:")


def chromium_path() -> str:
    """Debian's Chromium, or the binary named by LEADOPS_CHROMIUM."""
    path = os.environ.get("LEADOPS_CHROMIUM") or shutil.which("chromium") or shutil.which("chromium-browser")
    if not path:
        pytest.fail("browser tests need Debian's Chromium: apt-get install chromium (or set LEADOPS_CHROMIUM)")
    return path


@pytest.fixture(scope="session")
def browser():
    """One headless Chromium for the whole run."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        instance = pw.chromium.launch(executable_path=chromium_path(), args=CHROMIUM_ARGS)
        yield instance
        instance.close()


@pytest.fixture
def page(browser):
    """A fresh page; `page.console_errors` and `page.external_requests` list what went wrong."""
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    new_page = context.new_page()
    new_page.console_errors = []
    new_page.external_requests = []
    new_page.on("console", lambda msg: new_page.console_errors.append(msg.text) if msg.type == "error" else None)
    new_page.on("pageerror", lambda exc: new_page.console_errors.append(str(exc)))

    def guard(route):
        url = route.request.url
        if url.startswith(LOCAL_PREFIXES):
            route.continue_()
        else:
            new_page.external_requests.append(url)
            route.abort()

    context.route("**/*", guard)
    yield new_page
    context.close()


@pytest.fixture(scope="session")
def artifacts_dir() -> Path:
    """Where tests save screenshots (CI uploads it): $LEADOPS_ARTIFACTS or .artifacts/ in the checkout."""
    path = Path(os.environ.get("LEADOPS_ARTIFACTS") or REPO / ".artifacts")
    path.mkdir(parents=True, exist_ok=True)
    return path
