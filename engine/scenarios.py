"""Recorded lead scenarios: load, validate, replay, record and update.

A scenario is a lead, an explicit `now` and a *partial* expectation over the decision. Files live under
`scenarios/` (schema: schemas/scenario.schema.json); one file holds a list under `scenarios:` or a single
scenario at the top level. Every front end (the `leadops test` / `leadops record` commands, the pytest plugin,
the benchmark) goes through this module; coverage lives in engine/coverage.py.

Expectation paths address the decision JSON (schemas/decision.schema.json): `score.total`, `score.grade`,
`score.groups.fit`, `score.fired[pricing-page].points`, `stage.to`, `stage.rejected.reason`, `route.queue`,
`slas[sql-first-response].due`, `slas[sql-first-response].escalations[0].at` ... A `[x]` selector picks a list
item by `id`/`rule` or by index. Three special keys: `fired` / `not_fired` (rule ids) and `slas` (the exact
list of SLAs that apply). Values compare exactly (date-times as instants, whatever offset they are written
in), or through a matcher: `{approx: 65, tolerance: 0.5}`, `{min: 50}`, `{max: 10}`, `{contains: "reason"}`,
`{one_of: [a, b]}`. `null` expects the field to be absent or null (e.g. `slas[mql-acceptance]: null`: the SLA
does not apply).

Fast path: passing scenarios are evaluated without a trace; only a failing scenario is evaluated again with
`explain=True` to name the rules that explain the difference.
"""

from __future__ import annotations

import copy
import difflib
import json
import math
import re
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from functools import lru_cache
from pathlib import Path
from typing import Any

import jsonschema

from engine.errors import Diagnostic, LeadError, LeadopsError, Location, PolicyError
from engine.policyset import parse_instant
from engine.yamlsafe import load_yaml

SCHEMA_PATH = Path(__file__).resolve().parent.parent / "schemas" / "scenario.schema.json"
SCENARIO_SUFFIXES = (".yaml", ".yml")
DATETIME_LEAVES = {"clock_starts", "due", "attempts_due", "at", "evaluated_at"}
SPECIAL_KEYS = ("fired", "not_fired", "slas", "warnings")
RULE_PREFIXES = {"scoring": "scoring", "route": "routing", "routing": "routing", "sla": "sla"}


class _Absent:
    """A path that does not exist in the decision (an SLA that did not apply, no rejection, ...)."""

    def __repr__(self) -> str:
        return "<absent>"


ABSENT = _Absent()


# ---------------------------------------------------------------- the model


@dataclass
class Expectation:
    path: str  # as written: "slas[sql-first-response].due"
    expected: Any
    location: Location
    value_path: tuple[str | int, ...] = ()  # where the value sits in the YAML document (for --update)


@dataclass
class Scenario:
    name: str
    file: str
    line: int
    index: int  # position in the file (0 for a single-scenario file)
    now: datetime
    lead: dict[str, Any]
    expect: list[Expectation]
    description: str = ""
    tags: tuple[str, ...] = ()
    skip: str | None = None
    lead_file: str | None = None
    doc_path: tuple[str | int, ...] = ()  # path of the scenario mapping in the YAML document
    record: dict[str, Any] | None = None  # a raw CRM record + the mapping that makes it the lead (engine/crm)
    mapping: str | None = None
    activities: list[Any] | None = None
    overrides: dict[str, Any] | None = None  # lead_overrides / current_stage / transition_request, applied after mapping

    @property
    def where(self) -> str:
        return f"{self.file}:{self.line}"

    @property
    def nodeid(self) -> str:
        return f"{self.file}::{self.name}"


@dataclass
class Failure:
    path: str
    expected: Any
    actual: Any
    message: str
    location: Location
    note: str = ""  # why the value is missing (shared by related failures, printed once)


@dataclass
class Result:
    scenario: Scenario
    status: str  # passed | failed | error | skipped
    failures: list[Failure] = field(default_factory=list)
    error: str = ""
    explanation: list[str] = field(default_factory=list)
    decision: dict[str, Any] | None = None
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return self.status in ("passed", "skipped")


@dataclass
class ScenarioFile:
    path: str
    scenarios: list[Scenario]
    diagnostics: list[Diagnostic]
    data: dict[str, Any] | None = None
    marks: Any = None


# ---------------------------------------------------------------- discovery


def discover(paths: Sequence[str | Path]) -> list[Path]:
    """Scenario files under the given files/directories (directories: every *.yaml / *.yml, recursively)."""
    out: list[Path] = []
    seen: set[Path] = set()
    for p in paths:
        path = Path(p)
        if path.is_dir():
            found = sorted(f for f in path.rglob("*") if f.suffix in SCENARIO_SUFFIXES and f.is_file()
                           and not any(part.startswith(".") for part in f.relative_to(path).parts))
        else:
            found = [path]
        for f in found:
            key = f.resolve()
            if key not in seen:
                seen.add(key)
                out.append(f)
    return out


def default_scenario_paths(policies: str | Path | None = None) -> list[Path]:
    """`scenarios/` next to the policy directory (what `leadops validate` checks), if it exists."""
    base = Path(policies or "policies").resolve().parent
    d = base / "scenarios"
    return [d] if d.is_dir() else []


def display_path(path: Path) -> str:
    try:
        return path.resolve().relative_to(Path.cwd().resolve()).as_posix()
    except ValueError:
        return path.as_posix()


# ---------------------------------------------------------------- loading


@lru_cache(maxsize=1)
def _validator() -> jsonschema.Draft202012Validator:
    return jsonschema.Draft202012Validator(json.loads(SCHEMA_PATH.read_text(encoding="utf-8")))


def parse_datetime(text: Any) -> datetime | None:
    if not isinstance(text, str):
        return None
    try:
        return parse_instant(text.strip())
    except ValueError:
        return None


def merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7386 JSON merge patch: objects merge recursively, null deletes, anything else replaces."""
    if not isinstance(patch, Mapping):
        return copy.deepcopy(patch)
    out = dict(target) if isinstance(target, Mapping) else {}
    for k, v in patch.items():
        if v is None:
            out.pop(k, None)
        else:
            out[k] = merge_patch(out.get(k), v)
    return out


def _schema_diagnostics(data: Any, marks: Any) -> list[Diagnostic]:
    out = []
    errors = sorted(_validator().iter_errors(data), key=lambda e: list(map(str, e.absolute_path)))
    for err in errors:
        if err.validator in ("oneOf", "anyOf") and err.context:
            best = jsonschema.exceptions.best_match(err.context)
            err = best if best is not None else err
        path = tuple(err.absolute_path)
        where = "/".join(map(str, path)) or "(top level)"
        loc = marks.at(path)
        hint = ""
        if err.validator == "additionalProperties":
            props = list(err.schema.get("properties", {}))
            extra = sorted(set(err.instance) - set(props))
            name = extra[0] if extra else "?"
            bad = [k for k in extra if not any(re.search(p, k) for p in err.schema.get("patternProperties", {}))]
            name = bad[0] if bad else name
            loc = marks.key_at((*path, name))
            msg = f"unknown property '{name}'"
            close = difflib.get_close_matches(name, props, n=1)
            hint = f"did you mean '{close[0]}'? " if close else ""
            if path and path[-1] == "expect":
                hint += ("expectations address the decision, e.g. score.total, score.grade, score.groups.fit, "
                         "stage.to, route.queue, slas[sql-first-response].due, fired, not_fired")
            else:
                hint += "allowed here: " + ", ".join(props)
        elif err.validator == "pattern" and "datetime" in str(err.schema.get("description", "")).lower() or (
                err.validator == "pattern" and "T" in str(err.validator_value)):
            msg = f"{err.instance!r} is not an ISO 8601 date-time with an offset"
            hint = "write e.g. 2026-11-23T09:00:00+10:00 (an explicit offset keeps SLA clocks unambiguous)"
        elif err.validator == "type":
            msg = f"expected {err.validator_value}, got {type(err.instance).__name__} {err.instance!r}"[:200]
        else:
            msg = err.message[:300]
        out.append(Diagnostic("SCN001", f"{where}: {msg}", loc, hint))
    return out


def _find_lead_file(base: Path, ref: str) -> Path | None:
    """`ref` relative to the scenario file's directory, else to one of its parents."""
    p = Path(ref)
    if p.is_absolute():
        return p if p.is_file() else None
    d = base
    for _ in range(8):
        cand = d / p
        if cand.is_file():
            return cand
        if d.parent == d:
            break
        d = d.parent
    return None


_LEAD_CACHE: dict[tuple[str, float], dict[str, Any]] = {}


def _read_lead(path: Path) -> dict[str, Any]:
    key = (str(path.resolve()), path.stat().st_mtime)
    hit = _LEAD_CACHE.get(key)
    if hit is None:
        hit = json.loads(path.read_text(encoding="utf-8"))
        if not isinstance(hit, dict):
            raise ValueError("a lead file must hold one JSON object")
        _LEAD_CACHE[key] = hit
    return hit


def load_scenario_file(path: str | Path) -> ScenarioFile:
    """Parse, schema-check and build the scenarios of one file. Problems become diagnostics (never raise)."""
    path = Path(path)
    name = display_path(path)
    try:
        raw = path.read_bytes()
    except OSError as exc:
        return ScenarioFile(name, [], [Diagnostic("SCN004", f"cannot read scenario file: {exc.strerror}", Location(name))])
    try:
        data, marks = load_yaml(raw, name)
    except PolicyError as exc:
        return ScenarioFile(name, [], list(exc.diagnostics))
    diags = _schema_diagnostics(data, marks)
    sf = ScenarioFile(name, [], diags, data, marks)
    if diags:
        return sf
    defaults = data.get("defaults", {}) if "scenarios" in data else {}
    if "scenarios" in data:
        items = [(("scenarios", i), s) for i, s in enumerate(data["scenarios"])]
    elif "name" in data and "expect" in data:
        items = [((), data)]
    else:
        sf.diagnostics.append(Diagnostic("SCN001", "a scenario file needs `scenarios:` (a list) or a single scenario "
                                         "with `name` and `expect`", Location(name, 1, 1),
                                         "see schemas/scenario.schema.json"))
        return sf
    names: dict[str, int] = {}
    for index, (doc_path, item) in enumerate(items):
        scen = _build(path, name, index, doc_path, item, defaults, marks, sf.diagnostics)
        if scen is None:
            continue
        if scen.name in names:
            sf.diagnostics.append(Diagnostic("SCN007", f"duplicate scenario name '{scen.name}' (first at line "
                                             f"{names[scen.name]})", Location(name, scen.line, 1),
                                             "names identify scenarios in reports and -k; make them unique"))
            continue
        names[scen.name] = scen.line
        sf.scenarios.append(scen)
    return sf


def _build(path: Path, name: str, index: int, doc_path: tuple[str | int, ...], item: dict[str, Any],
           defaults: dict[str, Any], marks: Any, diags: list[Diagnostic]) -> Scenario | None:
    at = lambda *p: marks.at((*doc_path, *p))  # noqa: E731
    line = marks.key_at((*doc_path, "name")).line or at().line
    now_text = item.get("now", defaults.get("now"))
    if now_text is None:
        diags.append(Diagnostic("SCN006", f"scenario '{item['name']}' has no `now`", at("name"),
                                "every scenario needs an explicit decision time, e.g. now: 2026-11-23T09:00:00+10:00 "
                                "(or set defaults.now for the file)"))
        return None
    now = parse_datetime(now_text)
    if now is None:
        diags.append(Diagnostic("SCN006", f"`now` {now_text!r} is not a date-time with an offset",
                                at("now") if "now" in item else marks.at(("defaults", "now")),
                                "write e.g. 2026-11-23T09:00:00+10:00"))
        return None
    if "record" in item:  # a raw CRM record: mapped to the lead when a policy set is at hand (resolve_record)
        if "lead" in item or "lead_file" in item or "mapping" not in item:
            diags.append(Diagnostic("SCN001", "a `record` needs a `mapping` and neither `lead` nor `lead_file`",
                                    at("record"), "e.g. record: {...}  mapping: hubspot"))
            return None
        expect = [Expectation(k, v, marks.key_at((*doc_path, "expect", k)), (*doc_path, "expect", k))
                  for k, v in item["expect"].items()]
        tags = tuple(dict.fromkeys([*defaults.get("tags", ()), *item.get("tags", ())]))
        overrides = {k: item[k] for k in ("lead_overrides", "transition_request") if k in item}
        if item.get("current_stage", defaults.get("current_stage")) is not None:
            overrides["current_stage"] = item.get("current_stage", defaults.get("current_stage"))
        return Scenario(name=item["name"], file=name, line=line, index=index, now=now, lead={}, expect=expect,
                        description=item.get("description", ""), tags=tags, skip=item.get("skip"), doc_path=doc_path,
                        record=copy.deepcopy(item["record"]), mapping=item["mapping"],
                        activities=copy.deepcopy(item.get("activities")), overrides=overrides)
    lead_file = item.get("lead_file", defaults.get("lead_file") if "lead" not in item else None)
    if "lead" in item and "lead_file" in item:
        diags.append(Diagnostic("SCN001", "give either `lead` or `lead_file`, not both", at("lead_file")))
        return None
    if "lead" in item:
        lead: Any = copy.deepcopy(item["lead"])
    elif lead_file is not None:
        found = _find_lead_file(path.parent, lead_file)
        where = at("lead_file") if "lead_file" in item else marks.at(("defaults", "lead_file"))
        if found is None:
            diags.append(Diagnostic("SCN004", f"lead file '{lead_file}' not found", where,
                                    f"paths are relative to {display_path(path.parent)}/ (or a parent directory)"))
            return None
        try:
            lead = copy.deepcopy(_read_lead(found))
        except (OSError, ValueError) as exc:
            diags.append(Diagnostic("SCN004", f"lead file '{lead_file}' is not a JSON object: {exc}", where))
            return None
        lead_file = display_path(found)
    else:
        diags.append(Diagnostic("SCN001", f"scenario '{item['name']}' has neither `lead` nor `lead_file`", at("name"),
                                "add lead: {...} inline or lead_file: leads/<file>.json"))
        return None
    lead = _apply_overrides(lead, {**item, "current_stage": item.get("current_stage", defaults.get("current_stage"))})
    expect = []
    for key, value in item["expect"].items():
        expect.append(Expectation(key, value, marks.key_at((*doc_path, "expect", key)), (*doc_path, "expect", key)))
    tags = tuple(dict.fromkeys([*defaults.get("tags", ()), *item.get("tags", ())]))
    return Scenario(name=item["name"], file=name, line=line, index=index, now=now, lead=lead, expect=expect,
                    description=item.get("description", ""), tags=tags, skip=item.get("skip"),
                    lead_file=lead_file, doc_path=doc_path)


def _apply_overrides(lead: Any, item: dict[str, Any]) -> Any:
    """lead_overrides (merge patch), current_stage and transition_request of a scenario, applied to its lead."""
    if "lead_overrides" in item:
        lead = merge_patch(lead, item["lead_overrides"])
    cs = item.get("current_stage")
    if isinstance(cs, str):
        lead["stage"] = cs
    elif isinstance(cs, dict):
        lead["stage"] = cs["stage"]
        if "entered_at" in cs:
            lead["stage_entered_at"] = cs["entered_at"]
    if "transition_request" in item:
        lead["transition_request"] = copy.deepcopy(item["transition_request"])
    return lead


def resolve_record(ps: Any, s: Scenario) -> str | None:
    """Map a scenario's raw CRM `record` into its lead with `mapping` (once); the problem in words, or None.
    A mapping name is looked up in the nearest policies/mappings/ above the scenario file, then the presets."""
    if s.record is None or s.lead:
        return None
    from engine.crm.mapping import load_mapping
    from engine.errors import PolicyError

    here = Path(s.file).resolve().parent
    search = next((p / "policies" / "mappings" for p in (here, *here.parents) if (p / "policies" / "mappings").is_dir()),
                  None)
    try:
        mapping = load_mapping(s.mapping or "", ps, search=search)
        lead = mapping.to_lead(s.record, s.activities if s.activities is not None else None)
    except PolicyError as exc:
        return f"mapping '{s.mapping}' does not load: {exc.diagnostics[0].format() if exc.diagnostics else exc}"
    except LeadError as exc:
        return f"the record cannot be mapped: {exc.message}"
    s.lead = _apply_overrides(lead, s.overrides or {})
    return None


# ---------------------------------------------------------------- expectation paths

_SEG = re.compile(r"([A-Za-z_][A-Za-z0-9_-]*)((?:\[[^\]]+\])*)")


@lru_cache(maxsize=4096)
def parse_path(text: str) -> tuple[str | tuple[str], ...]:
    """'slas[x].escalations[0].at' -> ['slas', ('x',), 'escalations', ('0',), 'at'] (selectors as 1-tuples)."""
    steps: list[str | tuple[str]] = []
    for part in text.split("."):
        m = _SEG.fullmatch(part)
        if not m:
            raise ValueError(f"'{part}' is not a field name")
        steps.append(m.group(1))
        for sel in re.findall(r"\[([^\]]+)\]", m.group(2)):
            steps.append((sel.strip(),))
    return tuple(steps)


def resolve(data: Any, text: str) -> Any:
    """The value at an expectation path in the decision, or ABSENT."""
    value = data
    for step in parse_path(text):
        if isinstance(step, tuple):
            sel = step[0]
            if not isinstance(value, list):
                return ABSENT
            if sel.lstrip("-").isdigit():
                i = int(sel)
                value = value[i] if -len(value) <= i < len(value) else ABSENT
            else:
                value = next((x for x in value if isinstance(x, dict) and sel in (x.get("id"), x.get("rule"))), ABSENT)
        else:
            value = value.get(step, ABSENT) if isinstance(value, dict) else ABSENT
        if value is ABSENT:
            return ABSENT
    return value


def is_matcher(v: Any) -> bool:
    return isinstance(v, dict) and bool(v) and set(v) <= {"approx", "tolerance", "min", "max", "contains", "one_of"}


def fmt(v: Any) -> str:
    if v is ABSENT:
        return "nothing"
    if v is None:
        return "null"
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, float) and v == int(v):
        return str(int(v))
    if isinstance(v, (list, dict)):
        return json.dumps(v, ensure_ascii=False)
    return str(v)


def _fmt_expected(v: Any) -> str:
    if is_matcher(v):
        parts = []
        if "approx" in v:
            parts.append(f"{fmt(v['approx'])} ± {fmt(v.get('tolerance', 0.01))}")
        if "min" in v and "max" in v:
            parts.append(f"between {fmt(v['min'])} and {fmt(v['max'])}")
        elif "min" in v:
            parts.append(f"at least {fmt(v['min'])}")
        elif "max" in v:
            parts.append(f"at most {fmt(v['max'])}")
        if "contains" in v:
            parts.append(f"text containing {v['contains']!r}")
        if "one_of" in v:
            parts.append("one of " + ", ".join(fmt(x) for x in v["one_of"]))
        return " and ".join(parts)
    return fmt(v)


def _span(seconds: float) -> str:
    s = abs(int(seconds))
    d, rem = divmod(s, 86400)
    h, rem = divmod(rem, 3600)
    m = rem // 60
    parts = [f"{d}d" if d else "", f"{h}h" if h else "", f"{m}m" if m else ""]
    return "".join(parts) or f"{s}s"


def _is_number(x: Any) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool)


def compare(path: str, expected: Any, actual: Any) -> str | None:
    """None when `actual` satisfies `expected`, else a short explanation of the difference."""
    leaf = path.rsplit(".", 1)[-1]
    if is_matcher(expected):
        if actual is ABSENT or actual is None:
            return "missing"
        if "approx" in expected:
            tol = expected.get("tolerance", 0.01)
            if not _is_number(actual) or abs(actual - expected["approx"]) > tol + 1e-9:
                return f"off by {fmt(round(actual - expected['approx'], 4))}" if _is_number(actual) else "not a number"
        if "min" in expected and not (_is_number(actual) and actual >= expected["min"]):
            return "too low"
        if "max" in expected and not (_is_number(actual) and actual <= expected["max"]):
            return "too high"
        if "contains" in expected and not (isinstance(actual, str) and expected["contains"].lower() in actual.lower()):
            return "text differs"
        if "one_of" in expected and not any(_equal(leaf, x, actual) for x in expected["one_of"]):
            return "not one of them"
        return None
    if expected is None:
        return None if actual is ABSENT or actual is None else "expected nothing"
    if actual is ABSENT:
        return "missing"
    if _equal(leaf, expected, actual):
        return None
    if leaf in DATETIME_LEAVES:
        e, a = parse_datetime(expected), parse_datetime(actual)
        if e is not None and a is not None:
            delta = (a - e).total_seconds()
            return f"{_span(delta)} {'later' if delta > 0 else 'earlier'}"
    if _is_number(expected) and _is_number(actual):
        return f"off by {fmt(round(actual - expected, 4))}"
    return "differs"


def _equal(leaf: str, expected: Any, actual: Any) -> bool:
    if leaf in DATETIME_LEAVES or (isinstance(expected, str) and isinstance(actual, str) and "T" in expected):
        e, a = parse_datetime(expected), parse_datetime(actual)
        if e is not None and a is not None:
            return e == a
    if isinstance(expected, bool) or isinstance(actual, bool):
        return expected is actual
    if _is_number(expected) and _is_number(actual):
        return math.isclose(expected, actual, rel_tol=0, abs_tol=1e-9)
    return expected == actual


def rule_matches(decision: Mapping[str, Any], ident: str) -> bool:
    """Whether a rule (optionally prefixed scoring:/route:/sla:) fired in this decision."""
    kind = None
    if ":" in ident and not ident.startswith(("stage:", "transition:")):
        prefix, rest = ident.split(":", 1)
        if prefix in RULE_PREFIXES:
            kind, ident = RULE_PREFIXES[prefix], rest
    if kind in (None, "scoring") and any(f["rule"] == ident for f in decision["score"]["fired"]):
        return True
    if kind is None and decision["stage"].get("rule") == ident:
        return True
    if kind in (None, "routing") and decision["route"]["rule"] == ident:
        return True
    return kind in (None, "sla") and any(s["id"] == ident for s in decision["slas"])


def check(decision: Mapping[str, Any], expectations: Iterable[Expectation]) -> list[Failure]:
    """Every expectation the decision does not meet."""
    out = []
    for e in expectations:
        if e.path in ("fired", "not_fired"):
            want = e.path == "fired"
            wrong = [r for r in e.expected if rule_matches(decision, r) != want]
            if wrong:
                msg = ("did not fire: " if want else "fired, but should not have: ") + ", ".join(wrong)
                out.append(Failure(e.path, wrong, [r for r in wrong if rule_matches(decision, r)], msg, e.location))
            continue
        if e.path == "slas":
            actual = [s["id"] for s in decision["slas"]]
            if sorted(actual) != sorted(e.expected):
                out.append(Failure("slas", e.expected, actual,
                                   f"slas: expected {fmt(e.expected)}, got {fmt(actual)}", e.location))
            continue
        if e.path == "warnings":
            actual = [w["rule"] for w in decision.get("warnings", [])]
            if sorted(actual) != sorted(e.expected):
                out.append(Failure("warnings", e.expected, actual,
                                   f"warnings: expected {fmt(e.expected)}, got {fmt(actual)} "
                                   f"({'; '.join(w['message'] for w in decision.get('warnings', []))})", e.location))
            continue
        actual = resolve(decision, e.path)
        why = compare(e.path, e.expected, actual)
        if why is None:
            continue
        note = _absent_reason(decision, e.path) if actual is ABSENT else ""
        msg = f"{e.path}: expected {_fmt_expected(e.expected)}, got {fmt(actual)}"
        if why not in ("differs", "missing", "expected nothing", "text differs", "not one of them"):
            msg += f" ({why})"
        out.append(Failure(e.path, e.expected, None if actual is ABSENT else actual, msg, e.location, note))
    return out


def _absent_reason(decision: Mapping[str, Any], path: str) -> str:
    steps = parse_path(path)
    if steps[0] == "slas" and len(steps) > 1 and isinstance(steps[1], tuple):
        sid = steps[1][0]
        if not any(s["id"] == sid for s in decision["slas"]):
            applied = ", ".join(s["id"] for s in decision["slas"]) or "none"
            return (f"SLA '{sid}' does not apply to this decision: the lead is in stage '{decision['stage']['to']}', "
                    f"routed by '{decision['route']['rule']}' (SLAs that apply: {applied})")
    if steps[:2] == ("stage", "rejected"):
        return "no requested move was refused"
    if steps[:2] == ("score", "fired"):
        return f"scoring rule '{steps[2][0]}' did not fire"
    return ""


# ---------------------------------------------------------------- semantic checks


def validate_scenarios(policyset: Any, paths: Sequence[str | Path]) -> list[Diagnostic]:
    """Schema + semantic problems in the scenario files under `paths` (for `leadops validate`).

    Semantic checks: every stage, queue, team, routing rule, scoring rule, group, SLA, calendar and grade named
    in an expectation exists in the policy set; each expectation path addresses the decision; date-times have
    offsets; each lead passes the lead schema.
    """
    out: list[Diagnostic] = []
    for f in discover(paths):
        sf = load_scenario_file(f)
        out.extend(sf.diagnostics)
        for s in sf.scenarios:
            out.extend(check_scenario(policyset, s))
    return sorted(out, key=Diagnostic.sort_key)


@dataclass
class _Names:
    stages: list[str]
    queues: list[str]
    teams: list[str]
    routes: list[str]
    scoring: list[str]
    groups: list[str]
    slas: dict[str, int]  # id -> number of escalation steps
    calendars: list[str]
    reasons: list[str]
    grades: set[str]
    transitions: list[str]

    def rules(self) -> list[str]:
        return [*self.scoring, *self.routes, *self.slas, *(f"stage:{s}" for s in self.stages), *self.transitions]


def _names(ps: Any) -> _Names:
    cached = getattr(ps, "_scenario_names", None)
    if cached is not None:
        return cached
    m = ps.model
    stages = [*m.stages.pipeline, *m.stages.detours]
    grade_sets: list[list[str]] = []
    for gid in m.scoring.grade_groups:
        group = next((g for g in m.scoring.groups if g.id == gid), None)
        grade_sets.append([g.grade for g in group.grades] if group else [""])
    grades = {""} if grade_sets else set()
    for gs in grade_sets:
        grades = {a + b for a in grades for b in gs}
    names = _Names(
        stages=[s.id for s in stages], queues=list(m.queues), teams=list(m.teams), routes=[r.id for r in m.routing],
        scoring=[r.id for g in m.scoring.groups for r in g.rules], groups=[g.id for g in m.scoring.groups],
        slas={s.id: len(s.escalations) for s in m.slas}, calendars=list(m.calendars),
        reasons=list(m.stages.reason_codes), grades=grades,
        transitions=[f"transition:{s.id}->{t.to}" for s in stages for t in s.transitions])
    try:
        ps._scenario_names = names
    except AttributeError:  # pragma: no cover
        pass
    return names


def _unknown(code_what: str, value: Any, known: Sequence[str], loc: Location) -> Diagnostic:
    close = difflib.get_close_matches(str(value), [str(k) for k in known], n=1)
    listed = ", ".join(map(str, known[:15])) + (f", … ({len(known)} in all)" if len(known) > 15 else "")
    hint = (f"did you mean '{close[0]}'? " if close else "") + f"known: {listed}"
    return Diagnostic("SCN002", f"unknown {code_what} '{value}'", loc, hint)


def check_scenario(ps: Any, s: Scenario) -> list[Diagnostic]:
    """Semantic problems of one loaded scenario against a policy set."""
    n = _names(ps)
    out: list[Diagnostic] = []
    problem = resolve_record(ps, s)
    if problem is not None:
        return [Diagnostic("SCN005", f"scenario '{s.name}': {problem}", Location(s.file, s.line, 1),
                           "fix the record or the mapping (leadops validate checks policies/mappings/)")]
    try:
        ps.prepare(s.lead)
    except LeadError as exc:
        out.append(Diagnostic("SCN005", f"scenario '{s.name}': the lead is invalid: "
                              f"{exc.field + ': ' if exc.field else ''}{exc.message}", Location(s.file, s.line, 1),
                              f"fix the lead{' file ' + s.lead_file if s.lead_file else ''} or lead_overrides"))
    stage = s.lead.get("stage")
    if isinstance(stage, str) and stage not in n.stages:
        out.append(_unknown("stage", stage, n.stages, Location(s.file, s.line, 1)))
    for e in s.expect:
        out.extend(_check_expectation(n, e))
    return out


def _values(e: Expectation) -> list[Any]:
    v = e.expected
    if is_matcher(v):
        return list(v.get("one_of", []))
    return [v]


def _check_expectation(n: _Names, e: Expectation) -> list[Diagnostic]:
    loc = e.location
    out: list[Diagnostic] = []
    if e.path in ("fired", "not_fired"):
        known = n.rules()
        for r in e.expected:
            ident = r
            if ":" in r and not r.startswith(("stage:", "transition:")):
                prefix, ident = r.split(":", 1)
                pool = {"scoring": n.scoring, "route": n.routes, "routing": n.routes, "sla": list(n.slas)}.get(prefix)
                if pool is None:
                    out.append(Diagnostic("SCN002", f"unknown rule kind '{prefix}:' in '{r}'", loc,
                                          "prefixes: scoring:, route:, sla: (or stage:<id>, transition:<from>-><to>)"))
                elif ident not in pool:
                    out.append(_unknown(f"{prefix} rule", ident, pool, loc))
            elif r not in known:
                out.append(_unknown("rule", r, known, loc))
        return out
    if e.path == "slas":
        return [_unknown("SLA", x, list(n.slas), loc) for x in e.expected if x not in n.slas]
    if e.path == "warnings":
        return []
    try:
        steps = parse_path(e.path)
    except ValueError as exc:
        return [Diagnostic("SCN003", f"'{e.path}' is not an expectation path: {exc}", loc,
                           "write paths like score.total, stage.to, slas[sql-first-response].due")]
    shape = [("[]" if isinstance(st, tuple) else st) for st in steps]
    text = ".".join(shape).replace(".[]", "[]")
    ok_shapes = {
        "lead_id", "score.total", "score.grade", "score.groups.*", "score.fired[]", "score.fired[].points",
        "stage.from", "stage.to", "stage.changed", "stage.rule", "stage.reason_code", "stage.rejected",
        "stage.rejected.to", "stage.rejected.reason_code", "stage.rejected.reason",
        "route.rule", "route.queue", "route.team", "route.owner", "route.fallback",
        "slas[]", "slas[].id", "slas[].clock_starts", "slas[].due", "slas[].calendar", "slas[].attempts_required",
        "slas[].attempts_due", "slas[].status", "slas[].escalations[]", "slas[].escalations[].at",
        "slas[].escalations[].when", "slas[].escalations[].action", "slas[].escalations[].to",
    }
    norm = re.sub(r"^score\.groups\.[^.\[]+$", "score.groups.*", text)
    if norm not in ok_shapes:
        close = difflib.get_close_matches(norm, sorted(ok_shapes), n=1)
        return [Diagnostic("SCN003", f"'{e.path}' does not address a decision field", loc,
                           (f"did you mean '{close[0]}'? " if close else "") + "see schemas/decision.schema.json")]
    values = [v for v in _values(e) if v is not None]
    if norm == "score.groups.*" and steps[2] not in n.groups:
        out.append(_unknown("score group", steps[2], n.groups, loc))
    if norm.startswith("score.fired[") and steps[2][0] not in n.scoring:
        out.append(_unknown("scoring rule", steps[2][0], n.scoring, loc))
    if norm.startswith("slas["):
        sid = steps[1][0]
        if sid not in n.slas:
            out.append(_unknown("SLA", sid, list(n.slas), loc))
        elif norm.startswith("slas[].escalations[]"):
            idx = steps[3][0]
            if not idx.isdigit() or int(idx) >= n.slas[sid]:
                out.append(Diagnostic("SCN002", f"SLA '{sid}' has {n.slas[sid]} escalation step(s); "
                                      f"escalations[{idx}] does not exist", loc, "steps are numbered from 0"))
    pools = {"stage.from": ("stage", n.stages), "stage.to": ("stage", n.stages),
             "route.queue": ("queue", n.queues),
             "route.team": ("team", n.teams), "route.rule": ("routing rule", n.routes),
             "slas[].calendar": ("calendar", n.calendars), "stage.reason_code": ("reason code", n.reasons),
             "score.grade": ("grade", sorted(n.grades))}
    if norm in pools:
        what, pool = pools[norm]
        out.extend(_unknown(what, v, pool, loc) for v in values if v not in pool)
    if norm == "stage.rule":
        pool = [f"stage:{s}" for s in n.stages] + n.transitions
        out.extend(_unknown("stage rule", v, pool, loc) for v in values if v not in pool
                   and not (isinstance(v, str) and v.startswith("transition:")))
    if steps[-1] in DATETIME_LEAVES:
        for v in values:
            if parse_datetime(v) is None:
                out.append(Diagnostic("SCN006", f"{e.path}: {v!r} is not a date-time with an offset", loc,
                                      "write e.g. 2026-12-01T13:00:00+10:00"))
    return out


# ---------------------------------------------------------------- running


def select(scenarios: Iterable[Scenario], keyword: str | None = None, tags: Sequence[str] = ()) -> list[Scenario]:
    """Scenarios matching a -k expression (words, and/or/not, parentheses; case-insensitive substrings of the
    name, file and tags) and carrying any of `tags`."""
    test = compile_keyword(keyword) if keyword else None
    out = []
    for s in scenarios:
        if tags and not set(tags) & set(s.tags):
            continue
        if test is not None and not test(" ".join([s.name, s.file, *s.tags]).lower()):
            continue
        out.append(s)
    return out


def compile_keyword(expr: str) -> Any:
    tokens = re.findall(r"\(|\)|[^\s()]+", expr)
    pos = 0

    def peek() -> str | None:
        return tokens[pos] if pos < len(tokens) else None

    def take() -> str:
        nonlocal pos
        pos += 1
        return tokens[pos - 1]

    def p_or() -> Any:
        left = p_and()
        while peek() == "or":
            take()
            right = p_and()
            left = (lambda a, b: lambda t: a(t) or b(t))(left, right)
        return left

    def p_and() -> Any:
        left = p_not()
        while peek() == "and":
            take()
            right = p_not()
            left = (lambda a, b: lambda t: a(t) and b(t))(left, right)
        return left

    def p_not() -> Any:
        if peek() == "not":
            take()
            inner = p_not()
            return lambda t: not inner(t)
        return p_atom()

    def p_atom() -> Any:
        tok = peek()
        if tok is None or tok in ("and", "or", ")"):
            raise ValueError(f"-k: expected a word at position {pos + 1} in {expr!r}")
        take()
        if tok == "(":
            inner = p_or()
            if peek() != ")":
                raise ValueError(f"-k: missing ')' in {expr!r}")
            take()
            return inner
        word = tok.lower()
        return lambda t: word in t

    fn = p_or()
    if pos != len(tokens):
        raise ValueError(f"-k: unexpected {tokens[pos]!r} in {expr!r}")
    return fn


def run_scenario(ps: Any, s: Scenario, explain_failures: bool = True) -> Result:
    """Replay one scenario: evaluate (no trace), check, and on failure explain with a trace."""
    if s.skip:
        return Result(s, "skipped", error=s.skip)
    t0 = time.perf_counter()
    problem = resolve_record(ps, s)
    if problem is not None:
        return Result(s, "error", error=problem, seconds=time.perf_counter() - t0)
    try:
        decision = ps.evaluate(s.lead, s.now).to_dict()
    except LeadError as exc:
        return Result(s, "error", error=f"the lead is invalid: {exc.field + ': ' if exc.field else ''}{exc.message}",
                      seconds=time.perf_counter() - t0)
    except LeadopsError as exc:
        return Result(s, "error", error=str(exc), seconds=time.perf_counter() - t0)
    failures = check(decision, s.expect)
    if not failures:
        return Result(s, "passed", decision=decision, seconds=time.perf_counter() - t0)
    result = Result(s, "failed", failures=failures, decision=decision)
    if explain_failures:
        traced = ps.evaluate(s.lead, s.now, explain=True).to_dict()
        result.explanation = explain(ps, traced, failures)
    result.seconds = time.perf_counter() - t0
    return result


def run(ps: Any, scenarios: Iterable[Scenario], explain_failures: bool = True) -> list[Result]:
    return [run_scenario(ps, s, explain_failures) for s in scenarios]


# ---------------------------------------------------------------- explanations


def _policy_sources(ps: Any) -> dict[str, tuple[Location, str]]:
    """Trace rule name -> (where it is written, the expression an analyst should read)."""
    cached = getattr(ps, "_scenario_sources", None)
    if cached is not None:
        return cached
    m = ps.model
    out: dict[str, tuple[Location, str]] = {}
    for g in m.scoring.groups:
        out[g.id] = (g.location, f"group {g.id}: floor {g.floor}, cap {g.cap}")
        for r in g.rules:
            text = r.when.source if r.when else f"{r.points:g} per {r.activity}" + (
                f" where {r.where.source}" if r.where else "")
            out[r.id] = (r.location, " ".join(text.split()))
    for st in (*m.stages.pipeline, *m.stages.detours):
        out[f"stage:{st.id}"] = (st.entry.location if st.entry else st.location,
                                 " ".join(st.entry.source.split()) if st.entry else "")
        for t in st.transitions:
            out[f"transition:{st.id}->{t.to}"] = (t.location, "reason code required" if t.reason_required else "")
    for r in m.routing:
        out[f"route:{r.id}"] = (r.when.location if r.when else r.location,
                                " ".join(r.when.source.split()) if r.when else "fallback")
    for s in m.slas:
        out[f"sla:{s.id}"] = (s.location, s.description)
    try:
        ps._scenario_sources = out
    except AttributeError:  # pragma: no cover
        pass
    return out


def _trace_key(entry: Mapping[str, Any]) -> str:
    kind, rule = entry["kind"], entry["rule"]
    if kind == "routing":
        return f"route:{rule}"
    if kind == "sla":
        return f"sla:{rule}"
    return rule


def _entry_line(ps: Any, entry: Mapping[str, Any]) -> list[str]:
    src = _policy_sources(ps).get(_trace_key(entry))
    mark = "✓" if entry["fired"] else ("·" if entry.get("note") else "✗")
    label = {"scoring": "score", "stage": "stage", "routing": "route", "sla": "sla"}[entry["kind"]]
    pts = ""
    if entry["kind"] == "scoring" and entry["fired"] and entry.get("points") is not None and not entry.get("note"):
        p = entry["points"]
        pts = f" ({'+' if p >= 0 else ''}{fmt(p)})"
    head = f"{mark} {label} {entry['rule']}{pts}: {entry['reason']}"
    if src is not None and src[0].file:
        head += f"  [{src[0].file}:{src[0].line}]"
    lines = [head]
    details = []
    if src is not None and src[1] and entry["kind"] in ("stage", "routing") and not entry["rule"].startswith("transition:"):
        details.append(f"rule: {src[1]}")
    vals = entry.get("values") or {}
    shown = {k: v for k, v in vals.items() if k != "lead.activities"}
    if shown:
        details.append("values: " + ", ".join(f"{k}={json.dumps(v, ensure_ascii=False)}" for k, v in shown.items()))
    if entry.get("missing"):
        details.append("missing: " + ", ".join(entry["missing"]))
    lines.extend("    " + d for d in details)
    return lines


_SKIPPED: dict[str, Any] = {"kind": "routing", "rule": "", "fired": False, "reason": ""}


def explain(ps: Any, traced: Mapping[str, Any], failures: Sequence[Failure]) -> list[str]:
    """The trace entries that explain the failed expectations, as text lines (policy file:line included)."""
    trace = traced.get("trace") or []
    areas: set[str] = set()
    rules: set[str] = set()
    for f in failures:
        head = f.path.split(".", 1)[0].split("[", 1)[0]
        if f.path in ("fired", "not_fired"):
            for r in f.expected:
                rules.add(r.split(":", 1)[1] if r.split(":", 1)[0] in RULE_PREFIXES else r)
        elif f.path.startswith("score.fired["):
            rules.add(parse_path(f.path)[2][0])
        else:
            areas.add(head)
    expected_routes = {str(f.expected) for f in failures if f.path == "route.rule"}
    picked: list[Mapping[str, Any]] = []
    skipped_routes: list[str] = []
    for e in trace:
        kind = e["kind"]
        if e["rule"] in rules:
            picked.append(e)
        elif kind == "scoring" and "score" in areas and (e["fired"] or e.get("note")):
            picked.append(e)
        elif kind == "stage" and ("stage" in areas or "slas" in areas):
            picked.append(e)
        elif kind == "routing" and ("route" in areas or "slas" in areas):
            if e["fired"] or e["rule"] in expected_routes or "nobody" in e["reason"] or "owner" in e["reason"]:
                picked.append(e)
            elif "route" in areas:
                skipped_routes.append(e["rule"])
                if not any(x is _SKIPPED for x in picked):
                    picked.append(_SKIPPED)
        elif kind == "sla" and "slas" in areas:
            picked.append(e)
    lines: list[str] = []
    if "score" in areas or "stage" in areas:
        s = traced["score"]
        groups = ", ".join(f"{k} {fmt(v)}" for k, v in s["groups"].items())
        lines.append(f"score {fmt(s['total'])} ({groups}), grade {s['grade'] or '-'}")
    st = traced["stage"]
    if ("stage" in areas or "slas" in areas) and st.get("rejected"):
        rj = st["rejected"]
        lines.append(f"requested move to '{rj['to']}' refused: {rj['reason']}")
    for e in picked:
        if e is _SKIPPED:
            lines.append(f"✗ route {', '.join(skipped_routes)}: condition false (tried first, in this order)")
        else:
            lines.extend(_entry_line(ps, e))
    for w in traced.get("warnings", []):
        lines.append(f"! warning from {w['rule']}: {w['message']}")
    return lines


# ---------------------------------------------------------------- reporting


def summary_line(results: Sequence[Result]) -> str:
    passed = sum(r.status == "passed" for r in results)
    failed = sum(r.status in ("failed", "error") for r in results)
    skipped = sum(r.status == "skipped" for r in results)
    return f"{passed} passed, {failed} failed" + (f", {skipped} skipped" if skipped else "")


def failure_text(r: Result) -> str:
    """The report of one failed scenario, readable by someone who wrote the policy, not the code."""
    s = r.scenario
    if r.status == "error":
        return f"ERROR {s.where}: {s.name}\n  {r.error}"
    lines = [f"FAIL {s.where}: {s.name}"]
    if s.description:
        lines.append(f"  ({' '.join(s.description.split())})")
    for f in r.failures:
        lines.append(f"  line {f.location.line}: {f.message}")
    for note in dict.fromkeys(f.note for f in r.failures if f.note):
        lines.append(f"  -> {note}")
    if r.explanation:
        lines.append("  why:")
        lines.extend("    " + x for x in r.explanation)
    return "\n".join(lines)


def results_json(results: Sequence[Result], coverage: Mapping[str, Any] | None = None) -> dict[str, Any]:
    items = []
    for r in results:
        s = r.scenario
        item: dict[str, Any] = {"file": s.file, "line": s.line, "name": s.name, "tags": list(s.tags),
                                "status": r.status, "seconds": round(r.seconds, 6)}
        if r.failures:
            item["failures"] = [{"path": f.path, "expected": f.expected, "actual": f.actual, "message": f.message,
                                 "line": f.location.line} for f in r.failures]
            item["explanation"] = r.explanation
        if r.error:
            item["error" if r.status == "error" else "reason"] = r.error
        items.append(item)
    out: dict[str, Any] = {
        "summary": {"passed": sum(r.status == "passed" for r in results),
                    "failed": sum(r.status in ("failed", "error") for r in results),
                    "skipped": sum(r.status == "skipped" for r in results), "total": len(results),
                    "line": summary_line(results)},
        "results": items,
    }
    if coverage is not None:
        out["coverage"] = coverage
    return out


def junit_xml(results: Sequence[Result], invalid: Sequence[Diagnostic] = (), name: str = "leadops scenarios") -> str:
    """JUnit XML: one <testsuite> per scenario file, one <testcase> per scenario."""
    import xml.etree.ElementTree as ET

    root = ET.Element("testsuites", name=name)
    by_file: dict[str, list[Result]] = {}
    for r in results:
        by_file.setdefault(r.scenario.file, []).append(r)
    total = {"tests": 0, "failures": 0, "errors": 0, "skipped": 0, "time": 0.0}
    for file, rs in by_file.items():
        suite = ET.SubElement(root, "testsuite", name=file)
        counts = {"tests": len(rs), "failures": sum(r.status == "failed" for r in rs),
                  "errors": sum(r.status == "error" for r in rs), "skipped": sum(r.status == "skipped" for r in rs)}
        secs = sum(r.seconds for r in rs)
        for r in rs:
            s = r.scenario
            classname = re.sub(r"\.ya?ml$", "", s.file).replace("/", ".")
            case = ET.SubElement(suite, "testcase", name=s.name, classname=classname, file=s.file, line=str(s.line),
                                 time=f"{r.seconds:.6f}")
            if r.status == "failed":
                el = ET.SubElement(case, "failure", message="; ".join(f.message for f in r.failures)[:1000],
                                   type="ExpectationFailed")
                el.text = failure_text(r)
            elif r.status == "error":
                el = ET.SubElement(case, "error", message=r.error[:1000], type="ScenarioError")
                el.text = failure_text(r)
            elif r.status == "skipped":
                ET.SubElement(case, "skipped", message=r.error)
        for k, v in counts.items():
            suite.set(k, str(v))
            total[k] += v
        suite.set("time", f"{secs:.6f}")
        total["time"] += secs
    if invalid:
        suite = ET.SubElement(root, "testsuite", name="invalid scenario files", tests=str(len(invalid)),
                              failures="0", errors=str(len(invalid)), skipped="0", time="0")
        for d in invalid:
            case = ET.SubElement(suite, "testcase", name=f"{d.location}", classname=d.location.file, time="0")
            el = ET.SubElement(case, "error", message=d.message[:1000], type=d.code)
            el.text = d.format()
        total["tests"] += len(invalid)
        total["errors"] += len(invalid)
    for k, v in total.items():
        root.set(k, f"{v:.6f}" if k == "time" else str(v))
    ET.indent(root)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, encoding="unicode") + "\n"


# ---------------------------------------------------------------- record


RECORD_SCORE = ("score.total", "score.grade")


def expectations_for(decision: Mapping[str, Any], now: datetime | None = None) -> dict[str, Any]:
    """The fields a reviewer cares about (not the whole trace) as an `expect` mapping."""
    d = decision
    exp: dict[str, Any] = {"score.total": d["score"]["total"], "score.grade": d["score"]["grade"]}
    for g, v in d["score"]["groups"].items():
        exp[f"score.groups.{g}"] = v
    st = d["stage"]
    exp["stage.to"] = st["to"]
    exp["stage.changed"] = st["changed"]
    if st.get("reason_code"):
        exp["stage.reason_code"] = st["reason_code"]
    if st.get("rejected"):
        exp["stage.rejected.reason"] = st["rejected"]["reason"]
    r = d["route"]
    exp["route.rule"] = r["rule"]
    for k in ("queue", "team", "owner"):
        if r[k] is not None:
            exp[f"route.{k}"] = r[k]
    exp["slas"] = [s["id"] for s in d["slas"]]
    for s in d["slas"]:
        exp[f"slas[{s['id']}].due"] = s["due"]
        exp[f"slas[{s['id']}].status"] = s["status"]
    exp["fired"] = [f["rule"] for f in d["score"]["fired"]]
    return exp


_PLAIN = re.compile(r"^[A-Za-z_/][A-Za-z0-9_./@+:,()' -]*[A-Za-z0-9_./@+)-]$|^[A-Za-z]$|^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9:.]+(Z|[+-][0-9]{2}:[0-9]{2})$")
_RESERVED = {"true", "false", "null", "yes", "no", "on", "off", "y", "n", "~"}


def yaml_scalar(v: Any) -> str:
    if v is None:
        return "null"
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (int, float)):
        return fmt(v) if isinstance(v, float) and v == int(v) else repr(v)
    if isinstance(v, str):
        if _PLAIN.match(v) and v.lower() not in _RESERVED and ": " not in v and " #" not in v:
            return v
        return json.dumps(v, ensure_ascii=False)
    if isinstance(v, list):
        return "[" + ", ".join(yaml_scalar(x) for x in v) + "]"
    if isinstance(v, dict):
        return "{" + ", ".join(f"{yaml_scalar(k)}: {yaml_scalar(x)}" for k, x in v.items()) + "}"
    return json.dumps(v)


def render_scenario(name: str, now: datetime, expect: Mapping[str, Any], lead: Mapping[str, Any] | None = None,
                    lead_file: str | None = None, current_stage: str | None = None, indent: str = "  ",
                    description: str = "", tags: Sequence[str] = ()) -> str:
    """One scenario as a YAML list item (for appending under `scenarios:`)."""
    pad = indent + "  "
    lines = [f"{indent}- name: {yaml_scalar(name)}"]
    if description:
        lines.append(f"{pad}description: {yaml_scalar(description)}")
    if tags:
        lines.append(f"{pad}tags: {yaml_scalar(list(tags))}")
    lines.append(f"{pad}now: {now.isoformat()}")
    if lead_file is not None:
        lines.append(f"{pad}lead_file: {yaml_scalar(lead_file)}")
    else:
        lines.append(f"{pad}lead: {json.dumps(lead, ensure_ascii=False)}")
    if current_stage:
        lines.append(f"{pad}current_stage: {yaml_scalar(current_stage)}")
    lines.append(f"{pad}expect:")
    for k, v in expect.items():
        lines.append(f"{pad}  {k}: {yaml_scalar(v)}")
    return "\n".join(lines) + "\n"


FILE_HEADER = ("# yaml-language-server: $schema={schema}\n"
               "# Recorded lead scenarios: replay with `leadops test {path}`.\n"
               "kind: scenarios\n"
               "scenarios:\n")


def record(ps: Any, lead: Mapping[str, Any], now: datetime, name: str, lead_file: Path | None = None,
           to: Path | None = None) -> tuple[str, dict[str, Any]]:
    """Evaluate a lead and build a scenario whose expectation is today's decision.

    Returns (yaml text of the scenario item, the expectation). With `to`, the text is appended to that file
    (created with a header when missing); a lead file is referenced by a path relative to `to`.
    """
    decision = ps.evaluate(lead, now).to_dict()
    expect = expectations_for(decision, now)
    ref = None
    if lead_file is not None:
        base = (to.parent if to is not None else Path.cwd()).resolve()
        try:
            ref = Path(_relpath(lead_file.resolve(), base)).as_posix()
        except ValueError:
            ref = lead_file.resolve().as_posix()
    text = render_scenario(name, now, expect, lead=None if ref else lead, lead_file=ref)
    if to is not None:
        if to.exists():
            existing = to.read_text(encoding="utf-8")
            sf = load_scenario_file(to)
            if sf.data is None or "scenarios" not in sf.data:
                raise LeadopsError(f"{to}: not a scenario file with a `scenarios:` list; record into a new file")
            if any(sc.name == name for sc in sf.scenarios):
                raise LeadopsError(f"{to}: a scenario named '{name}' already exists; pick another --name")
            indent = " " * max(0, sf.marks.at(("scenarios", 0)).column - 3) if sf.data["scenarios"] else "  "
            item = render_scenario(name, now, expect, lead=None if ref else lead, lead_file=ref, indent=indent)
            to.write_text(existing + ("" if existing.endswith("\n") else "\n") + item, encoding="utf-8")
        else:
            to.parent.mkdir(parents=True, exist_ok=True)
            schema = _relpath(_nearest_scenario_schema(to.parent.resolve()), to.parent.resolve())
            to.write_text(FILE_HEADER.format(schema=Path(schema).as_posix(), path=display_path(to)) + text,
                          encoding="utf-8")
        after = load_scenario_file(to)
        if after.diagnostics:
            raise LeadopsError(f"{to}: the recorded file does not load: {after.diagnostics[0].format()}")
    return text, expect


def _nearest_scenario_schema(start: Path) -> Path:
    """The repository's own schemas/scenario.schema.json above `start` (the installed engine's as a fallback)."""
    for folder in (start, *start.parents):
        candidate = folder / "schemas" / "scenario.schema.json"
        if candidate.is_file():
            return candidate
    return SCHEMA_PATH


def _relpath(target: Path, base: Path) -> str:
    import os

    return os.path.relpath(target, base)


# ---------------------------------------------------------------- update


@dataclass
class Change:
    file: str
    line: int
    scenario: str
    path: str
    old: Any
    new: Any

    def __str__(self) -> str:
        return (f"{self.file}:{self.line}: {self.scenario}: {self.path}: {_fmt_expected(self.old)} -> "
                f"{_fmt_expected(self.new)}")


def _new_value(decision: Mapping[str, Any], e: Expectation) -> Any:
    if e.path in ("fired", "not_fired"):
        want = e.path == "fired"
        return [r for r in e.expected if rule_matches(decision, r) == want]
    if e.path == "slas":
        return [s["id"] for s in decision["slas"]]
    if e.path == "warnings":
        return [w["rule"] for w in decision.get("warnings", [])]
    actual = resolve(decision, e.path)
    if actual is ABSENT:
        return None
    if is_matcher(e.expected) and "approx" in e.expected and _is_number(actual):
        return {**e.expected, "approx": actual}
    return actual


def update(results: Sequence[Result]) -> list[Change]:
    """Rewrite the failing expectations of failed scenarios to today's decisions, in place.

    Only the value text of each failing expectation is replaced (comments, key order and every other line stay
    as written); a block-style value becomes a one-line flow value.
    """
    import yaml

    changes: list[Change] = []
    by_file: dict[str, list[tuple[Result, Failure, Expectation]]] = {}
    for r in results:
        if r.status != "failed" or r.decision is None:
            continue
        for f in r.failures:
            e = next(x for x in r.scenario.expect if x.path == f.path and x.location == f.location)
            by_file.setdefault(r.scenario.file, []).append((r, f, e))
    for file, items in by_file.items():
        path = Path(file)
        text = path.read_text(encoding="utf-8")
        root = yaml.compose(text, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
        edits: list[tuple[int, int, str]] = []
        for r, f, e in items:
            new = _new_value(r.decision, e)
            node = _node_at(root, e.value_path)
            if node is None:
                continue
            if is_matcher(e.expected) and isinstance(new, dict) and "approx" in new:
                node = _node_at(node, ("approx",)) or node
                rendered = yaml_scalar(new["approx"])
            else:
                rendered = yaml_scalar(new)
            start, end = node.start_mark.index, node.end_mark.index
            if isinstance(node, (yaml.SequenceNode, yaml.MappingNode)) and not node.flow_style:
                # a block collection ends where the next key starts: keep that line's indentation
                rendered += "\n" + " " * node.end_mark.column
                before = text[:start].rstrip()
                if before.endswith(":"):  # the value began on the line after its key: put it after "key:"
                    start = len(before)
                rendered = " " + rendered
            edits.append((start, end, rendered))
            changes.append(Change(file, f.location.line, r.scenario.name, e.path, e.expected, new))
        for start, end, rendered in sorted(edits, reverse=True):
            text = text[:start] + rendered + text[end:]
        path.write_text(text, encoding="utf-8")
    return changes


def _node_at(node: Any, path: Sequence[str | int]) -> Any:
    import yaml

    for step in path:
        if isinstance(node, yaml.MappingNode):
            node = next((v for k, v in node.value if k.value == step), None)
        elif isinstance(node, yaml.SequenceNode) and isinstance(step, int):
            node = node.value[step] if step < len(node.value) else None
        else:
            return None
        if node is None:
            return None
    return node


# ---------------------------------------------------------------- one call for front ends


def load_all(paths: Sequence[str | Path]) -> tuple[list[Scenario], list[Diagnostic]]:
    """Every scenario under `paths` plus the diagnostics of files that could not be (fully) loaded."""
    scenarios: list[Scenario] = []
    diags: list[Diagnostic] = []
    for f in discover(paths):
        sf = load_scenario_file(f)
        scenarios.extend(sf.scenarios)
        diags.extend(sf.diagnostics)
    return scenarios, diags
