"""pytest plugin: every scenario in scenarios/**/*.yaml becomes a test item with a readable failure.

Registered by the repository's conftest.py (`pytest_plugins = ["engine.pytest_plugin"]`). Options:
`--leadops-policies DIR` (default: <rootdir>/policies) and the ini key `leadops_scenarios` (directories whose
YAML files are scenario files; default: scenarios). Files elsewhere (e.g. tests/fixtures) are never collected.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from engine import scenarios as sc

_POLICIES: dict[str, Any] = {}


def pytest_addoption(parser: Any) -> None:
    group = parser.getgroup("leadops")
    group.addoption("--leadops-policies", metavar="DIR", default=None,
                    help="policy directory scenarios are replayed against (default: <rootdir>/policies)")
    parser.addini("leadops_scenarios", "directories holding leadops scenario files", type="paths",
                  default=["scenarios"])


def _scenario_dirs(config: Any) -> list[Path]:
    root = Path(str(config.rootpath))
    out = []
    for p in config.getini("leadops_scenarios") or []:
        p = Path(str(p))
        out.append((p if p.is_absolute() else root / p).resolve())
    return out


def pytest_collect_file(file_path: Path, parent: Any) -> Any:
    if file_path.suffix not in sc.SCENARIO_SUFFIXES:
        return None
    resolved = file_path.resolve()
    if not any(d == resolved.parent or d in resolved.parents for d in _scenario_dirs(parent.config)):
        return None
    return ScenarioFile.from_parent(parent, path=file_path)


def _policyset(config: Any) -> Any:
    import engine

    spec = config.getoption("--leadops-policies") or str(Path(str(config.rootpath)) / "policies")
    if spec not in _POLICIES:
        _POLICIES[spec] = engine.load_policies(spec)
    return _POLICIES[spec]


class ScenarioFailed(Exception):
    pass


class ScenarioFile(pytest.File):
    def collect(self) -> Any:
        loaded = sc.load_scenario_file(self.path)
        if loaded.diagnostics:
            yield InvalidScenarioFile.from_parent(self, name="<scenario file>", diagnostics=loaded.diagnostics)
        for s in loaded.scenarios:
            yield ScenarioItem.from_parent(self, name=s.name, scenario=s)


class InvalidScenarioFile(pytest.Item):
    def __init__(self, *, diagnostics: list[Any], **kw: Any) -> None:
        super().__init__(**kw)
        self.diagnostics = diagnostics

    def runtest(self) -> None:
        raise ScenarioFailed("\n".join(d.format() for d in self.diagnostics))

    def repr_failure(self, excinfo: Any, style: Any = None) -> str:
        if isinstance(excinfo.value, ScenarioFailed):
            return str(excinfo.value)
        return super().repr_failure(excinfo)

    def reportinfo(self) -> tuple[Any, int, str]:
        return self.path, 0, f"{self.path.name}: invalid scenario file"


class ScenarioItem(pytest.Item):
    def __init__(self, *, scenario: sc.Scenario, **kw: Any) -> None:
        super().__init__(**kw)
        self.scenario = scenario
        self.extra_keyword_matches.update(scenario.tags)  # `pytest -k dst` selects by tag too

    def runtest(self) -> None:
        ps = _policyset(self.config)
        problems = sc.check_scenario(ps, self.scenario)
        if problems:
            raise ScenarioFailed("\n".join(d.format() for d in problems))
        result = sc.run_scenario(ps, self.scenario)
        if result.status == "skipped":
            pytest.skip(result.error)
        if not result.ok:
            raise ScenarioFailed(sc.failure_text(result))

    def repr_failure(self, excinfo: Any, style: Any = None) -> str:
        if isinstance(excinfo.value, ScenarioFailed):
            return str(excinfo.value)
        return super().repr_failure(excinfo)

    def reportinfo(self) -> tuple[Any, int, str]:
        return self.path, self.scenario.line - 1, f"scenario: {self.scenario.name}"
