"""`kind: mapping` files: validated like every policy file, compiled once into closures that turn one source
record (a CSV row, an API JSON object, an Arrow row) into a lead of the lead schema.

A mapping names, per lead field, where its value comes from (`from`: column name, CSV header label or dotted
JSON path; the first candidate with a value wins), how the text becomes the field's type (inferred from the
lead schema: numbers "1,200", booleans, date-times in the mapping's `time_zone`, bands), and for enums and
owners which source spellings mean which lead value. Anything it cannot place is an error naming the row, the
column, the value and the closest known spelling; source fields no rule names are reported, never dropped
silently (`unused_fields`; errors with `strict`).
"""

from __future__ import annotations

import difflib
import json
import weakref
from collections.abc import Callable, Iterable, Mapping as MappingABC
from dataclasses import dataclass, field
from functools import lru_cache, partial
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import jsonschema

from engine import checks
from engine.crm.coerce import CoerceError, spelling, to_band, to_bool, to_datetime, to_number, zone
from engine.errors import Diagnostic, LeadError, Location, PolicyError
from engine.yamlsafe import Marks, YamlError, load_yaml

PRESET_DIR = Path(__file__).resolve().parent / "presets"
SCHEMA_FILE = Path(__file__).resolve().parents[2] / "schemas" / "mapping.schema.json"
_ABSENT = object()
_ABSENT_MARK = object()  # a `skip` spelling in a value table: the field stays absent
Getter = Callable[[MappingABC[str, Any], dict[str, Any], "Context"], Any]


class MappingError(LeadError):
    """A source record that the mapping cannot turn into a lead. The message names the row, the column, the
    value and (for value maps) the closest known spelling; `field` is the lead field."""

    def __init__(self, message: str, field: str = "", code: str = "MAP001", *, row: int | None = None,
                 column: str = "", value: Any = None, closest: str | None = None):
        super().__init__(message, field, code)
        self.row = row
        self.column = column
        self.value = value
        self.closest = closest


class Context:
    """Per-record state while mapping: the row (for messages) and what a row is ("row", "activity row")."""

    __slots__ = ("row", "what")

    def __init__(self, row: int | None = None, what: str = "row"):
        self.row = row
        self.what = what

    def where(self, column: str) -> str:
        place = f"{self.what} {self.row}" if self.row is not None else self.what
        return f"{place}, column '{column}'" if column else place


@lru_cache(maxsize=1)
def _schema_validator() -> jsonschema.Draft202012Validator:
    return jsonschema.Draft202012Validator(json.loads(SCHEMA_FILE.read_text(encoding="utf-8")))


def presets() -> list[str]:
    """Names of the mappings shipped with leadops (engine/crm/presets/*.yaml)."""
    return sorted(p.stem for p in PRESET_DIR.glob("*.yaml"))


# ------------------------------------------------------------------------------------------ lead schema facts


@dataclass(frozen=True)
class Target:
    """What the lead schema says about one (possibly nested) field: its JSON type, enum and format."""

    path: tuple[str, ...]
    type: str
    enum: tuple[Any, ...] | None = None

    @property
    def name(self) -> str:
        return ".".join(self.path)


def schema_targets(properties: MappingABC[str, Any], prefix: tuple[str, ...] = ()) -> dict[str, Target]:
    """Every scalar field of an object schema, dotted ("company.name"), with its coercion type."""
    out: dict[str, Target] = {}
    for name, spec in properties.items():
        if not isinstance(spec, dict):
            continue
        kind = spec.get("type")
        kind = next((k for k in kind if k != "null"), None) if isinstance(kind, list) else kind
        path = prefix + (name,)
        if kind == "object" and isinstance(spec.get("properties"), dict):
            out.update(schema_targets(spec["properties"], path))
        elif kind in ("string", "integer", "number", "boolean"):
            ctype = "date-time" if kind == "string" and spec.get("format") == "date-time" else kind
            enum = tuple(spec["enum"]) if isinstance(spec.get("enum"), list) else None
            out[".".join(path)] = Target(path, ctype, enum)
    return out


# ------------------------------------------------------------------------------------------ compiled mapping


@dataclass
class FieldRule:
    """One compiled `lead:` (or activity) entry: the getter and the source names it reads."""

    target: Target
    get: Getter
    sources: tuple[str, ...]
    required: bool = False
    reverse: dict[Any, list[tuple[tuple[str, ...], Any]]] = field(default_factory=dict)  # value -> (columns, spelling)
    candidates: tuple[str, ...] = ()
    late: bool = False  # stage_dates: read after the other fields (it needs the mapped stage)
    simple: tuple[tuple[str, ...], Any] | None = None  # a plain `from`: (candidate columns, convert)
    joined: tuple[tuple[tuple[str, ...], ...], Any] | None = None  # a `join`: (candidates per part, convert)
    dated: tuple[dict[str, tuple[str, ...]], Any] | None = None  # `stage_dates`: (stage -> candidates, convert)


class Mapping:
    """A compiled mapping. Build with `load_mapping`; `to_lead` is safe to call from many threads."""

    def __init__(self, name: str, source: tuple[str, bytes], rules: list[FieldRule], ignore: Iterable[str],
                 activity_key: FieldRule | None, activity_rules: list[FieldRule], activity_ignore: Iterable[str],
                 writeback: dict[str, tuple[str, str | None]], time_zone: str, strict: bool = False):
        self.name = name
        self.source = source  # (file name, bytes): workers rebuild the mapping from exactly these bytes
        self.rules = [r for r in rules if not r.late] + [r for r in rules if r.late]
        self.time_zone = time_zone
        self.strict = strict
        self.activity_key = activity_key
        self.activity_rules = activity_rules
        self.writeback = writeback
        self._declared = frozenset(s for r in rules for s in r.sources) | frozenset(ignore)
        self._activity_declared = frozenset(s for r in activity_rules for s in r.sources) | frozenset(activity_ignore) \
            | frozenset(activity_key.sources if activity_key else ())
        self._plans: dict[tuple[Any, ...], tuple[Callable[..., dict[str, Any]], tuple[str, ...]]] = {}
        self._by_target = {r.target.name: r for r in rules}

    def __repr__(self) -> str:
        return f"Mapping({self.name!r}, {len(self.rules)} fields, activities={self.activity_key is not None})"

    # ---------------------------------------------------------------- records -> leads
    def to_lead(self, record: Any, activities: Iterable[Any] | None = None, row: int | None = None) -> dict[str, Any]:
        """The native lead of one source record (raises MappingError naming row, column, value, closest label).

        `activities`: source activity rows already joined to this record (dicts, or (row, dict) pairs so that
        errors name the activity file's row)."""
        return self.map_record(record, activities, row)[0]

    def map_record(self, record: Any, activities: Iterable[Any] | None = None, row: int | None = None,
                   ) -> tuple[dict[str, Any], list[str], list[str]]:
        """(lead, unused record fields, unused activity fields): `to_lead` plus what the batch reports."""
        if record.__class__ is not dict and not isinstance(record, MappingABC):
            raise MappingError(f"{Context(row).where('')}: a record must be an object, got {type(record).__name__}",
                               code="MAP000", row=row)
        ctx = Context(row)
        plan, unused_names = self._plan(self.rules, record, self._declared)
        unused = _with_values(plan[0], unused_names) if unused_names else []
        if unused and self.strict:
            self._refuse_unused(unused, ctx, "")
        lead = _run_plan(plan, ctx)
        act_unused: list[str] = []
        if activities is not None and self.activity_rules:
            acts = []
            last_keys: Any = None
            for position, item in enumerate(activities, 1):
                act_row, act = item if item.__class__ is tuple else (position, item)
                actx = Context(act_row, "activity row")
                if last_keys is not None and act.keys() == last_keys and dict not in map(type, act.values()):
                    act_plan, names = (act, act_plan[1]), names  # same columns as the row before: same plan
                else:
                    act_plan, names = self._plan(self.activity_rules, act, self._activity_declared)
                    last_keys = act.keys() if act_plan[0] is act else None
                if names:
                    extra = _with_values(act_plan[0], names)
                    if extra and self.strict:
                        self._refuse_unused(extra, actx, "activities")
                    act_unused.extend(extra)
                mapped = act_plan[1](act_plan[0], actx)
                if "type" in mapped:  # absent: a `skip` spelling, declared as not a lead activity
                    acts.append(mapped)
            if acts:
                if len(acts) > 1:
                    acts.sort(key=_activity_time)
                lead["activities"] = acts
        return lead, unused, act_unused

    def _plan(self, rules: list[FieldRule], record: MappingABC[str, Any], declared: frozenset[str],
              ) -> tuple[tuple[MappingABC[str, Any], Callable[..., dict[str, Any]]], tuple[str, ...]]:
        """((flat record, steps), undeclared fields) — the steps for records with these keys are built once:
        for each `from` rule, only the candidate columns this record has (the batch path's fast path)."""
        flat = _flatten(record) if dict in map(type, record.values()) else record
        key = (id(rules), *flat)
        cached = self._plans.get(key)
        if cached is None:
            present = set(flat)
            steps: list[tuple[Any, ...]] = []
            for rule in rules:
                if rule.joined is not None:
                    parts = tuple(tuple(n for n in part if n in present) for part in rule.joined[0])
                    steps.append((rule, parts, rule.joined[1]))
                    continue
                if rule.dated is not None:  # stage -> the candidate columns this record has
                    by_stage = {st: tuple(n for n in names if n in present) for st, names in rule.dated[0].items()}
                    steps.append((rule, {st: c for st, c in by_stage.items() if c}, rule.dated[1]))
                    continue
                if rule.simple is None:
                    steps.append((rule, None, None))
                    continue
                names, convert = rule.simple
                cols = tuple(n for n in names if n in present)
                if cols or rule.required:
                    steps.append((rule, cols, convert))
            unused = tuple(name for name in flat if not _declared(name, declared))
            cached = (_compile_steps(steps), unused)
            if len(self._plans) >= 256:  # records of ever new shapes: start over rather than grow without bound
                self._plans.clear()
            self._plans[key] = cached
        return (flat, cached[0]), cached[1]

    def to_activity(self, record: MappingABC[str, Any], row: int | None = None) -> dict[str, Any] | None:
        """One activity row through the `activities` fields alone (None: declared `skip`, not a lead activity);
        raises MappingError like to_lead. For events joined to leads by other means (engine.crm.ga4)."""
        ctx = Context(row, "event row")
        plan, _ = self._plan(self.activity_rules, record, self._activity_declared)
        mapped = plan[1](plan[0], ctx)
        return mapped if "type" in mapped else None

    def _refuse_unused(self, unused: list[str], ctx: Context, prefix: str) -> None:
        if unused:
            raise MappingError(f"{ctx.where(unused[0])}: no mapping rule uses this field (--strict)",
                               prefix, "MAP005", row=ctx.row, column=unused[0])

    def join_key(self, activity_record: Any) -> str | None:
        """The lead id an activity row belongs to (None when it has none)."""
        if self.activity_key is None or not isinstance(activity_record, MappingABC):
            return None
        value = self.activity_key.get(activity_record, {}, Context())
        return None if value is _ABSENT else spelling(value)

    # ---------------------------------------------------------------- nothing silently dropped
    def unused_fields(self, record: MappingABC[str, Any]) -> list[str]:
        """Source fields of `record` with a value that no rule of the mapping names (nor `ignore`); nested JSON
        fields by dotted path ("properties.phone")."""
        plan, unused = self._plan(self.rules, record, self._declared)
        return _with_values(plan[0], unused)

    def unused_activity_fields(self, record: MappingABC[str, Any]) -> list[str]:
        plan, unused = self._plan(self.activity_rules, record, self._activity_declared)
        return _with_values(plan[0], unused)

    # ---------------------------------------------------------------- leads -> source (presets reversed)
    def source_name(self, target: str, prefer: str = "first") -> str | None:
        """The source field a lead field is read from: the first candidate ("first": API names) or the last
        ("last": export labels)."""
        rule = self._by_target.get(target)
        if rule is None or not rule.candidates:
            return None
        return rule.candidates[0] if prefer == "first" else rule.candidates[-1]

    def reverse_value(self, target: str, value: Any, prefer: str = "first", column: str | None = None) -> Any:
        """The source spelling of a lead value through the field's value or owner map (the value itself when
        the field has no map): the first spelling (internal value) or, with prefer="label", the second (the
        display label) when there is one. `column`: only spellings of the alternative that reads that column."""
        rule = self._by_target.get(target)
        pairs = rule.reverse.get(value) if rule is not None else None
        if pairs and column is not None:
            pairs = [p for p in pairs if column in p[0]] or pairs
        if not pairs:
            return value
        spellings = [s for cols, s in pairs if cols == pairs[0][0]]
        return spellings[1] if prefer == "label" and len(spellings) > 1 else spellings[0]

    def rule(self, target: str) -> FieldRule | None:
        return self._by_target.get(target)


def _run_plan(plan: tuple[MappingABC[str, Any], Callable[..., dict[str, Any]]], ctx: Context) -> dict[str, Any]:
    flat, run = plan
    return run(flat, ctx)


def _activity_time(activity: dict[str, Any]) -> str:
    return str(activity.get("at", ""))


def _missing(rule: FieldRule, ctx: Context) -> None:
    names = ", ".join(f"'{c}'" for c in rule.candidates) or "its source"
    raise MappingError(f"{ctx.where('')}: no value for {rule.target.name} (looked in {names})",
                       rule.target.name, "MAP006", row=ctx.row)


_EMPTY = "raw is None or raw == '' or (raw.__class__ is str and raw.isspace())"


def _join_lines(i: int, parts: tuple[tuple[str, ...], ...], exact: bool) -> list[str]:
    """Generated lines of a `join` step: each part's first non-empty column, joined with '/'."""
    lines = ["    parts = []"]
    for cols in parts:
        indent = "    "
        for col in cols:
            lines += [f"{indent}raw = flat[{col!r}]", f"{indent}if not ({_EMPTY}):",
                      f"{indent}    parts.append(raw.strip() if raw.__class__ is str else _spelling(raw))",
                      f"{indent}else:"]
            indent += "    "
        lines.append(f"{indent}parts.append('')")
    label = "/".join(cols[0] if cols else "" for cols in parts)
    lines += ["    text = '/'.join(parts).rstrip('/')", "    if text:"]
    if exact:
        lines += [f"        v = m{i}.get(text, _ABSENT)", "        if v is _ABSENT:",
                  f"            v = c{i}(text, {label!r}, ctx)", "        elif v is _MARK:", "            v = _ABSENT"]
    else:
        lines.append(f"        v = c{i}(text, {label!r}, ctx)")
    return lines


def _compile_steps(steps: list[tuple[Any, ...]]) -> Callable[..., dict[str, Any]]:
    """The steps of one record shape as straight-line Python (compiled once per shape): each column read
    directly, plain strings and exact value-map hits inlined, everything else through the rule's converter.
    Only generated names and repr()'d column names appear in the source."""
    env: dict[str, Any] = {"_ABSENT": _ABSENT, "_MARK": _ABSENT_MARK, "_put": _put, "_missing": _missing,
                           "_spelling": spelling, "_CoerceError": CoerceError}
    lines = ["def run(flat, ctx):", "    out = {}"]
    for i, (rule, cols, convert) in enumerate(steps):
        env[f"r{i}"], env[f"c{i}"] = rule, convert
        path = rule.target.path
        assign = f"out[{path[0]!r}] = v" if len(path) == 1 else f"_put(out, {path!r}, v)"
        if cols is None:
            lines += [f"    v = r{i}.get(flat, out, ctx)", "    if v is not _ABSENT:", f"        {assign}"]
            if rule.required:
                lines += ["    else:", f"        _missing(r{i}, ctx)"]
            continue
        lines.append("    v = _ABSENT")
        exact = getattr(convert, "exact", None)
        if rule.dated is not None:  # cols: stage -> present candidate columns
            env[f"d{i}"] = cols
            lines += [f"    for col in d{i}.get(out.get('stage'), ()):", "        raw = flat[col]",
                      f"        if not ({_EMPTY}):", f"            v = c{i}(raw, col, ctx)", "            break",
                      "    if v is not _ABSENT:", f"        {assign}"]
            continue
        if rule.joined is not None:  # cols: the present candidates of each part
            lines += _join_lines(i, cols, exact is not None)
            if exact is not None:
                env[f"m{i}"] = exact
            lines += ["    if v is not _ABSENT:", f"        {assign}"]
            if rule.required:
                lines += ["    else:", f"        _missing(r{i}, ctx)"]
            continue
        if exact is not None:
            env[f"m{i}"] = exact
        indent = "    "
        for col in cols:
            lines += [f"{indent}raw = flat[{col!r}]", f"{indent}if not ({_EMPTY}):"]
            body = indent + "    "
            if getattr(convert, "plain", False):
                lines.append(f"{body}v = raw.strip() if raw.__class__ is str else c{i}(raw, {col!r}, ctx)")
            elif exact is not None:
                lines += [f"{body}v = m{i}.get(raw, _ABSENT)", f"{body}if v is _ABSENT:",
                          f"{body}    v = c{i}(raw, {col!r}, ctx)", f"{body}elif v is _MARK:", f"{body}    v = _ABSENT"]
            elif getattr(convert, "coerce", None) is not None:  # the coercion itself; its error through c{i}
                env[f"k{i}"] = convert.coerce
                lines += [f"{body}try:", f"{body}    v = k{i}(raw)", f"{body}except _CoerceError:",
                          f"{body}    v = c{i}(raw, {col!r}, ctx)"]
            else:
                lines.append(f"{body}v = c{i}(raw, {col!r}, ctx)")
            lines.append(f"{indent}else:")
            indent += "    "
        lines.append(f"{indent}pass")
        lines += ["    if v is not _ABSENT:", f"        {assign}"]
        if rule.required:
            lines += ["    else:", f"        _missing(r{i}, ctx)"]
    lines.append("    return out")
    exec(compile("\n".join(lines), "<leadops-mapping-plan>", "exec"), env)  # noqa: S102 - generated from ids only
    return env["run"]


def _flatten(record: MappingABC[str, Any], prefix: str = "", out: dict[str, Any] | None = None) -> dict[str, Any]:
    """Nested JSON objects as dotted keys ({"properties": {"email": …}} -> {"properties.email": …})."""
    out = {} if out is None else out
    for key, value in record.items():
        name = prefix + str(key)
        if isinstance(value, MappingABC):
            _flatten(value, name + ".", out)
        else:
            out[name] = value
    return out


def _declared(name: str, declared: frozenset[str]) -> bool:
    """A field is declared when it, or an object holding it ("attributes" for "attributes.url"), is named."""
    if name in declared:
        return True
    while "." in name:
        name = name.rsplit(".", 1)[0]
        if name in declared:
            return True
    return False


def _with_values(flat: MappingABC[str, Any], names: tuple[str, ...]) -> list[str]:
    return [n for n in names if _has_value(flat.get(n))]


def _put(out: dict[str, Any], path: tuple[str, ...], value: Any) -> None:
    for part in path[:-1]:
        out = out.setdefault(part, {})
    out[path[-1]] = value


def _has_value(value: Any) -> bool:
    return value is not _ABSENT and value is not None and not (isinstance(value, str) and not value.strip()) \
        and value != {} and value != []


def _lookup(record: MappingABC[str, Any], name: str) -> Any:
    """A column by exact name, else a dotted JSON path ("properties.email"), optionally ending in a list
    selector: "person.email[primary]" (the `value` of the item marked primary, else of the first: Pipedrive's
    e-mail and phone lists), "label_ids[0]" (an item by position) or "event_params[page_location]" (the value
    of the {key, value} item with that key: GA4's event parameters)."""
    value = record.get(name, _ABSENT)
    if value is not _ABSENT:
        return value
    if name.endswith("]") and "[" in name:
        base, _, selector = name[:-1].rpartition("[")
        return _select(_lookup(record, base), selector)
    if "." not in name:
        return value
    current: Any = record
    for part in name.split("."):
        if not isinstance(current, MappingABC):
            return _ABSENT
        current = current.get(part, _ABSENT)
        if current is _ABSENT:
            return _ABSENT
    return current


def _select(items: Any, selector: str) -> Any:
    """One item of a list value by a `[selector]` (see _lookup); _ABSENT when there is none."""
    if isinstance(items, str) and items.startswith("["):  # a list kept as JSON text (CSV, warehouse columns)
        try:
            items = json.loads(items)
        except ValueError:
            return _ABSENT
    if not isinstance(items, list) or not items:
        return _ABSENT
    if selector == "primary":
        chosen = next((i for i in items if isinstance(i, MappingABC) and i.get("primary") is True), items[0])
        return chosen.get("value", _ABSENT) if isinstance(chosen, MappingABC) else chosen
    if selector.isdigit():
        return items[int(selector)] if int(selector) < len(items) else _ABSENT
    for item in items:  # GA4's event_params: [{key, value: {string_value, int_value, float_value, double_value}}]
        if isinstance(item, MappingABC) and item.get("key") == selector:
            value = item.get("value")
            if not isinstance(value, MappingABC):
                return _ABSENT if value is None else value
            return next((v for v in value.values() if v is not None), _ABSENT)
    return _ABSENT


def base_name(name: str) -> str:
    """The source field a name reads ("person.email[primary]" -> "person.email")."""
    return name.split("[", 1)[0]


# ------------------------------------------------------------------------------------------ compiling


class _Builder:
    """Compiles one mapping document, collecting located diagnostics (did-you-mean against the lead schema,
    its enums, the policy's stages and the reps of teams.yaml)."""

    def __init__(self, doc: dict[str, Any], marks: Marks, ps: Any):
        self.doc = doc
        self.marks = marks
        self.diagnostics: list[Diagnostic] = []
        schema = ps.lead_schema.schema
        props = schema.get("properties", {}) if isinstance(schema, dict) else {}
        self.targets = schema_targets(props)
        items = props.get("activities", {}).get("items", {}) if isinstance(props.get("activities"), dict) else {}
        self.activity_targets = schema_targets(items.get("properties", {}) if isinstance(items, dict) else {})
        stages = ps.model.stages
        self.stage_ids = [s.id for s in (*stages.pipeline, *stages.detours)]
        reps: list[str] = []
        for team in ps.model.teams.values():
            reps.extend(m.id for m in team.members)
            if team.manager:
                reps.append(team.manager)
        self.reps = sorted(set(reps))
        self.time_zone = doc.get("time_zone", "UTC")

    def error(self, code: str, message: str, path: tuple[Any, ...], hint: str = "", key: bool = False) -> None:
        location = self.marks.key_at(path) if key else self.marks.at(path)
        self.diagnostics.append(Diagnostic(code, message, location, hint))

    def build(self, name: str, source: tuple[str, bytes], strict: bool) -> Mapping:
        try:
            zone(self.time_zone)
        except ValueError as exc:
            self.error("MAPPING004", str(exc), ("time_zone",), "use an IANA name such as UTC or Australia/Sydney")
        rules = self.rules(self.doc["lead"], ("lead",), self.targets, "lead field")
        if not any(r.target.name == "id" for r in rules):
            self.error("MAPPING001", "the mapping gives no lead 'id'", ("lead",),
                       "add e.g. `id: {from: [id, \"Record ID\"], required: true}`: routing hashes it", key=False)
        acts = self.doc.get("activities")
        key_rule, act_rules = None, []
        if isinstance(acts, dict):
            key_rule = self.rule(acts["lead_id"], ("activities", "lead_id"), Target(("lead_id",), "string"))
            act_rules = self.rules(acts["fields"], ("activities", "fields"), self.activity_targets, "activity field")
            for needed in ("type", "at"):
                if needed not in acts["fields"]:
                    self.error("MAPPING001", f"activities give no '{needed}'", ("activities", "fields"),
                               "the lead schema requires type and at on every activity")
        writeback = self.writeback(rules)
        if self.diagnostics:
            raise PolicyError(self.diagnostics)
        return Mapping(name, source, rules, self.doc.get("ignore", []), key_rule, act_rules,
                       acts.get("ignore", []) if isinstance(acts, dict) else [], writeback, self.time_zone, strict)

    def rules(self, specs: dict[str, Any], path: tuple[Any, ...], targets: dict[str, Target], what: str) -> list[FieldRule]:
        out = []
        for name, spec in specs.items():
            target = targets.get(name)
            if target is None:
                self.error("MAPPING002", f"unknown {what} '{name}'", path + (name,),
                           checks.did_you_mean(name, targets) + f"map to a field of the lead schema "
                           f"(add custom fields to it first); known: {', '.join(sorted(targets))}", key=True)
                continue
            if "type" in spec:
                target = Target(target.path, spec["type"], target.enum)
            out.append(self.rule(spec, path + (name,), target))
        return out

    def rule(self, spec: dict[str, Any], path: tuple[Any, ...], target: Target) -> FieldRule:
        sources: list[str] = []
        get = self.getter(spec, path, target, sources)
        reverse = self.reverse_map(spec)
        candidates = tuple(_candidates(spec))
        simple = (tuple(get.names), get.convert) if hasattr(get, "names") else None
        joined = (tuple(tuple(p) for p in get.parts), get.convert) if hasattr(get, "parts") else None
        dated = (get.stage_dates, get.convert) if hasattr(get, "stage_dates") else None
        return FieldRule(target, get, tuple(sources), bool(spec.get("required")), reverse, candidates,
                         late="stage_dates" in spec, simple=simple, joined=joined, dated=dated)

    # ---------------------------------------------------------------- getters
    def getter(self, spec: dict[str, Any], path: tuple[Any, ...], target: Target, sources: list[str]) -> Getter:
        kinds = [k for k in ("from", "join", "const", "first", "stage_dates") if k in spec]
        if len(kinds) != 1:
            self.error("MAPPING003", f"give exactly one of from, join, const, first, stage_dates (got {', '.join(kinds) or 'none'})",
                       path, "e.g. `{from: numemployees}`")
            return lambda record, lead, ctx: _ABSENT
        kind = kinds[0]
        if kind == "first":
            alternatives = [self.getter(sub, path + ("first", i), target, sources) for i, sub in enumerate(spec["first"])]

            def first(record: MappingABC[str, Any], lead: dict[str, Any], ctx: Context) -> Any:
                for alt in alternatives:
                    value = alt(record, lead, ctx)
                    if value is not _ABSENT:
                        return value
                return _ABSENT
            return first
        if kind == "const":
            value = self.convert(spec, path, target)(spec["const"], "", Context())
            return lambda record, lead, ctx: value
        if kind == "stage_dates":
            return self.stage_dates(spec, path, target, sources)
        convert = self.convert(spec, path, target)
        if kind == "from":
            names = _names(spec["from"])
            sources.extend(map(base_name, names))
            read = _reader(names)
        else:
            parts = [_names(p) for p in spec["join"]]
            for p in parts:
                sources.extend(map(base_name, p))
            read = _joiner([_reader(p) for p in parts])

        def get(record: MappingABC[str, Any], lead: dict[str, Any], ctx: Context) -> Any:
            column, raw = read(record)
            if column is None:
                return _ABSENT
            return convert(raw, column, ctx)
        if any("[" in n for n in (names if kind == "from" else [n for p in parts for n in p])):
            pass  # list selectors are read through _lookup, never inlined
        elif kind == "from":
            get.names, get.convert = names, convert  # type: ignore[attr-defined]  # the plan's fast path
        else:
            get.parts, get.convert = parts, convert  # type: ignore[attr-defined]
        return get

    def stage_dates(self, spec: dict[str, Any], path: tuple[Any, ...], target: Target, sources: list[str]) -> Getter:
        readers: dict[str, Callable[[MappingABC[str, Any]], tuple[str | None, Any]]] = {}
        for stage, names in spec["stage_dates"].items():
            if stage not in self.stage_ids:
                self.error("MAPPING005", f"unknown stage '{stage}'", path + ("stage_dates", stage),
                           checks.did_you_mean(stage, self.stage_ids) + "stages: " + ", ".join(self.stage_ids), key=True)
            readers[stage] = _reader(_names(names))
            sources.extend(map(base_name, _names(names)))
        convert = self.convert({k: v for k, v in spec.items() if k != "stage_dates"}, path, target)

        def get(record: MappingABC[str, Any], lead: dict[str, Any], ctx: Context) -> Any:
            read = readers.get(lead.get("stage"))  # type: ignore[arg-type]
            if read is None:
                return _ABSENT
            column, raw = read(record)
            return _ABSENT if column is None else convert(raw, column, ctx)
        get.stage_dates = {stage: tuple(_names(names)) for stage, names in spec["stage_dates"].items()}  # type: ignore[attr-defined]
        get.convert = convert  # type: ignore[attr-defined]
        return get

    def convert(self, spec: dict[str, Any], path: tuple[Any, ...], target: Target) -> Callable[[Any, str, Context], Any]:
        """raw source value -> lead value (or _ABSENT for a `skip` spelling)."""
        lookup = self.value_map(spec, path, target)
        skip = frozenset(spelling(s) for s in _names(spec.get("skip", []))) if lookup is None else frozenset()
        coerce = self.coercion(spec, path, target)
        name = target.name

        def convert(raw: Any, column: str, ctx: Context) -> Any:
            if skip and spelling(raw) in skip:
                return _ABSENT
            if lookup is not None:
                return lookup(raw, column, ctx)
            try:
                return coerce(raw)
            except CoerceError as exc:
                code = "MAP004" if target.type == "date-time" else "MAP002"
                raise MappingError(f"{ctx.where(column)}: {_show(raw)} is not {exc.expected} (lead field {name})",
                                   name, code, row=ctx.row, column=column, value=raw) from None
        convert.exact = getattr(lookup, "exact", None)  # type: ignore[attr-defined]  # generated plans inline these
        convert.plain = lookup is None and not skip and coerce is spelling  # type: ignore[attr-defined]
        convert.coerce = coerce if lookup is None and not skip else None  # type: ignore[attr-defined]
        return convert

    def coercion(self, spec: dict[str, Any], path: tuple[Any, ...], target: Target) -> Callable[[Any], Any]:
        kind = target.type
        enum = frozenset(target.enum) if target.enum else None
        if "url_part" in spec:  # "https://acme.example/pricing?plan=pro" -> "/pricing"
            return lambda raw: urlsplit(spelling(raw)).path or "/"
        if "band" in spec:
            if kind not in ("integer", "number"):
                self.error("MAPPING006", f"band applies to numbers; {target.name} is {kind}", path + ("band",))
            bound = spec["band"]
            return partial(to_band, bound=bound)
        tz = spec.get("time_zone", self.time_zone)
        if "time_zone" in spec:
            try:
                zone(tz)
            except ValueError as exc:
                self.error("MAPPING004", str(exc), path + ("time_zone",), "use an IANA name such as UTC or Europe/London")
        if kind == "integer":
            return partial(to_number, integer=True)
        if kind == "number":
            return partial(to_number, integer=False)
        if kind == "boolean":
            return to_bool
        if kind == "date-time":
            return partial(to_datetime, zone_name=tz)
        if enum is not None:
            unknown = spec.get("unknown", "error")
            options = sorted(map(str, enum))

            def enum_value(raw: Any) -> Any:
                text = spelling(raw)
                if text in enum or unknown == "keep":
                    return text
                close = difflib.get_close_matches(text, options, n=1)
                raise CoerceError(f"one of {', '.join(options)}" + (f" (did you mean '{close[0]}'?)" if close else ""))
            return enum_value
        return spelling

    def value_map(self, spec: dict[str, Any], path: tuple[Any, ...], target: Target) -> Callable[[Any, str, Context], Any] | None:
        table_key = "owners" if "owners" in spec else "values" if "values" in spec else None
        if table_key is None:
            return None
        allowed: list[str] | None
        if table_key == "owners":
            allowed, what = self.reps, "rep of teams.yaml"
        elif target.name == "stage":
            allowed, what = self.stage_ids, "stage"
        elif target.enum is not None:
            allowed, what = [str(e) for e in target.enum], f"value of {target.name}"
        else:
            allowed, what = None, ""
        exact: dict[str, Any] = {}
        folded: dict[str, Any] = {}
        for s in _names(spec.get("skip", [])):
            exact[spelling(s)] = folded[spelling(s).casefold()] = _ABSENT_MARK
        for native, spellings in spec[table_key].items():
            if allowed is not None and native not in allowed:
                self.error("MAPPING005", f"unknown {what} '{native}'", path + (table_key, native),
                           checks.did_you_mean(native, allowed) + f"known: {', '.join(allowed)}", key=True)
            value = self.native(native, target, path + (table_key, native))
            for s in _names(spellings):
                exact.setdefault(spelling(s), value)
                folded.setdefault(spelling(s).casefold(), value)
        default = spec.get("default", _ABSENT)
        if default is not _ABSENT:
            if allowed is not None and str(default) not in allowed:
                self.error("MAPPING005", f"default '{default}' is not a known {what}", path + ("default",),
                           checks.did_you_mean(str(default), allowed) + f"known: {', '.join(allowed)}")
            default = self.native(str(default), target, path + ("default",))
        keep = spec.get("unknown") == "keep"
        drop = spec.get("unknown") == "skip"  # e.g. GA4's many automatic events: none is a lead activity
        labels = sorted(k for k, v in exact.items() if v is not _ABSENT_MARK)
        name = target.name

        def lookup(raw: Any, column: str, ctx: Context) -> Any:
            text = spelling(raw)
            found = exact.get(text, _ABSENT)
            if found is _ABSENT:
                found = folded.get(text.casefold(), _ABSENT)
            if found is _ABSENT and "/" in text:  # a `join`: fall back to fewer parts ("CALL/OUTBOUND" -> "CALL")
                parts = text.split("/")
                while found is _ABSENT and len(parts) > 1:
                    parts.pop()
                    found = exact.get("/".join(parts), folded.get("/".join(parts).casefold(), _ABSENT))
            if found is _ABSENT_MARK:
                return _ABSENT
            if found is not _ABSENT:
                return found
            if default is not _ABSENT:
                return default
            if keep:
                return text
            if drop:
                return _ABSENT
            close = difflib.get_close_matches(text, labels, n=1, cutoff=0.5)
            hint = f"; did you mean '{close[0]}'?" if close else f"; known: {', '.join(labels[:12])}"
            raise MappingError(f"{ctx.where(column)}: unknown value {_show(raw)} for {name}{hint} "
                               f"(add it to the mapping's {table_key} for {name})",
                               name, "MAP001", row=ctx.row, column=column, value=raw, closest=close[0] if close else None)
        lookup.exact = exact  # type: ignore[attr-defined]
        return lookup

    def native(self, text: str, target: Target, path: tuple[Any, ...]) -> Any:
        """A value-map key as the lead field's type (keys are written as YAML strings)."""
        try:
            if target.type == "integer":
                return to_number(text, True)
            if target.type == "number":
                return to_number(text, False)
            if target.type == "boolean":
                return to_bool(text)
        except CoerceError as exc:
            self.error("MAPPING006", f"'{text}' is not {exc.expected} ({target.name} is {target.type})", path, key=True)
        return text

    def reverse_map(self, spec: dict[str, Any]) -> dict[Any, list[tuple[tuple[str, ...], Any]]]:
        """lead value -> source spellings, over the field's map and those of its `first` alternatives (in order)."""
        out: dict[Any, list[tuple[tuple[str, ...], Any]]] = {}
        columns = tuple(_candidates(spec))
        for native, spellings in (spec.get("owners") or spec.get("values") or {}).items():
            out.setdefault(native, []).extend((columns, s) for s in _names(spellings))
        for alternative in spec.get("first", []):
            for native, spellings in self.reverse_map(alternative).items():
                out.setdefault(native, []).extend(spellings)
        return out

    def writeback(self, rules: list[FieldRule]) -> dict[str, tuple[str, str | None]]:
        from engine.crm.columns import DECISION_COLUMNS

        names = [n for n, _ in DECISION_COLUMNS]
        mapped = {r.target.name for r in rules if r.reverse}
        out: dict[str, tuple[str, str | None]] = {}
        for column, spec in (self.doc.get("writeback") or {}).items():
            if spec["column"] not in names:
                self.error("MAPPING007", f"unknown decision column '{spec['column']}'", ("writeback", column, "column"),
                           checks.did_you_mean(spec["column"], names) + "decision columns: " + ", ".join(names))
            through = spec.get("through")
            if through is not None and through not in mapped:
                self.error("MAPPING007", f"'{through}' is not a lead field with a value or owner map",
                           ("writeback", column, "through"),
                           checks.did_you_mean(through, mapped) + "fields with maps: " + ", ".join(sorted(mapped)))
            out[column] = (spec["column"], through)
        return out


def _candidates(spec: dict[str, Any]) -> list[str]:
    """The `from` names of a field, through its `first` alternatives."""
    if "from" in spec:
        return _names(spec["from"])
    return [name for alternative in spec.get("first", []) for name in _candidates(alternative)]


def _names(value: Any) -> list[Any]:
    return list(value) if isinstance(value, list) else [value]


def _show(raw: Any) -> str:
    text = repr(raw) if not isinstance(raw, str) else f"'{raw}'"
    return text if len(text) <= 80 else text[:77] + "…'"


def _reader(names: list[str]) -> Callable[[MappingABC[str, Any]], tuple[str | None, Any]]:
    """(column, value) of the first candidate with a value, or (None, None)."""
    if len(names) == 1 and "." not in names[0] and "[" not in names[0]:
        only = names[0]

        def read_one(record: MappingABC[str, Any]) -> tuple[str | None, Any]:
            value = record.get(only)
            if value is None or value == "" or (isinstance(value, str) and not value.strip()):
                return None, None
            return only, value
        return read_one

    dotted = tuple((name, "." in name or "[" in name) for name in names)

    def read(record: MappingABC[str, Any]) -> tuple[str | None, Any]:
        for name, has_dot in dotted:
            value = record.get(name)
            if value is None:
                if not has_dot:
                    continue
                value = _lookup(record, name)
                if value is _ABSENT:
                    continue
            if value is None or value == "" or (value.__class__ is str and value.isspace()):
                continue
            if value == {} or value == []:
                continue
            return name, value
        return None, None
    return read


def _joiner(readers: list[Callable[[MappingABC[str, Any]], tuple[str | None, Any]]]) -> Callable[[MappingABC[str, Any]], tuple[str | None, Any]]:
    def read(record: MappingABC[str, Any]) -> tuple[str | None, Any]:
        parts = [r(record) for r in readers]
        if all(c is None for c, _ in parts):
            return None, None
        column = "/".join(c or "" for c, _ in parts)
        return column, "/".join("" if c is None else spelling(v) for c, v in parts).rstrip("/")
    return read


# ------------------------------------------------------------------------------------------ loading


def load_mapping(spec: str | Path, policyset: Any, *, strict: bool = False, search: str | Path | None = None) -> Mapping:
    """A mapping YAML file, or a name: `search`/NAME.yaml (a policy repository's own mappings, e.g.
    policies/mappings/hubspot.yaml from `leadops init --crm hubspot`) before the preset of that name. Checked
    against `policyset`'s lead schema, stages and teams; raises engine.PolicyError with located diagnostics."""
    text = str(spec)
    path = Path(text)
    own = Path(search) / f"{text}.yaml" if search is not None and "/" not in text and not text.endswith(".yaml") else None
    if path.is_file() and (text.endswith((".yaml", ".yml")) or "/" in text):
        shown = text
    elif own is not None and own.is_file():
        path, shown = own, str(own)
    elif text in presets():
        path, shown = PRESET_DIR / f"{text}.yaml", f"preset:{text}"
    elif path.is_file():
        shown = text
    else:
        raise PolicyError([Diagnostic("MAPPING000", f"no mapping '{text}': neither a preset nor a file",
                                      Location(text), checks.did_you_mean(text, presets()) +
                                      f"presets: {', '.join(presets())}; or give a mapping YAML file")])
    return compile_mapping(path.read_bytes(), shown, policyset, strict=strict)


_PRESET_CACHE: "weakref.WeakKeyDictionary[Any, dict[str, Mapping]]" = weakref.WeakKeyDictionary()


def preset_for(policyset: Any, name: Any) -> Mapping:
    """A preset compiled once per policy set (the decision service); ValueError naming the presets otherwise."""
    if not isinstance(name, str) or name not in presets():
        close = checks.did_you_mean(str(name), presets())
        raise ValueError(f"unknown mapping {name!r}; {close}presets: {', '.join(presets())}")
    cache = _PRESET_CACHE.setdefault(policyset, {})
    if name not in cache:
        cache[name] = load_mapping(name, policyset)
    return cache[name]


def preset_text_for(name: str, policyset: Any) -> str:
    """A preset's YAML fitted to `policyset` (what `leadops init --crm NAME` writes to policies/mappings/): the
    preset itself when it validates there; else stages the set does not have are read as no stage (`skip`),
    their stage dates and the owners of reps it does not have are listed under `ignore`, with a header saying so.
    The result always validates against `policyset` (ValueError for an unknown preset)."""
    import yaml

    if name not in presets():
        raise ValueError(f"unknown CRM '{name}'; {checks.did_you_mean(name, presets())}one of: {', '.join(presets())}")
    text = (PRESET_DIR / f"{name}.yaml").read_text(encoding="utf-8").replace("../../../schemas/", "../../schemas/")
    try:
        compile_mapping(text.encode(), f"{name}.yaml", policyset)
        return text
    except PolicyError:
        pass
    doc, _ = load_yaml(text, name)
    stages = {s.id for s in (*policyset.model.stages.pipeline, *policyset.model.stages.detours)}
    reps = {m.id for team in policyset.model.teams.values() for m in team.members}
    lead, ignore, dropped = doc["lead"], doc.setdefault("ignore", []), []

    def fit(spec: dict[str, Any]) -> None:
        for stage in [k for k in spec.get("values", {}) if k not in stages]:
            spec["skip"] = _names(spec.get("skip", [])) + _names(spec["values"].pop(stage))
            dropped.append(stage)
        for alternative in spec.get("first", []):
            fit(alternative)

    fit(lead.get("stage", {}))
    dates = lead.get("stage_entered_at", {}).get("stage_dates", {})
    for stage in [k for k in dates if k not in stages]:
        ignore.extend(_names(dates.pop(stage)))
    owner = lead.get("account_owner")
    if owner and "owners" in owner:
        owner["owners"] = {rep: ids for rep, ids in owner["owners"].items() if rep in reps}
        if not owner["owners"]:
            ignore.extend(_candidates(lead.pop("account_owner")))
            doc["writeback"] = {k: v for k, v in doc.get("writeback", {}).items() if v.get("through") != "account_owner"}
    acts = doc.get("activities") or {}
    for field_name, spec in list(acts.get("fields", {}).items()):  # activity owner maps (Pipedrive's user_id)
        if isinstance(spec, dict) and "owners" in spec:
            spec["owners"] = {rep: ids for rep, ids in spec["owners"].items() if rep in reps}
            if not spec["owners"]:
                acts.setdefault("ignore", []).extend(_candidates(acts["fields"].pop(field_name)))
    header = (f"# yaml-language-server: $schema=../../schemas/mapping.schema.json\n"
              f"# The {name} preset (engine/crm/presets/{name}.yaml) fitted to this policy set by `leadops init --crm "
              f"{name}`.\n# Read as no stage (skip): the CRM stages for {', '.join(sorted(set(dropped))) or '-'}, which "
              "this policy set does not have.\n# Owners: add `account_owner: {from: ..., owners: {<rep of teams.yaml>: "
              "[<CRM owner id>, <owner name>]}}` once the reps are in teams.yaml.\n")
    out = header + yaml.safe_dump(doc, sort_keys=False, allow_unicode=True, width=110)
    compile_mapping(out.encode(), f"{name}.yaml", policyset)  # never write a mapping that does not validate
    return out


def mapping_files(policy_dir: str | Path) -> list[Path]:
    """The mapping files of a policy directory: <dir>/mappings/*.yaml (validated by `leadops validate`)."""
    folder = Path(policy_dir) / "mappings"
    return sorted(p for p in folder.glob("*.y*ml") if p.is_file()) if folder.is_dir() else []


def validate_mapping_files(policy_dir: str | Path, policyset: Any) -> list[Diagnostic]:
    """Diagnostics of every mapping file of a policy directory (empty when all are valid)."""
    out: list[Diagnostic] = []
    for path in mapping_files(policy_dir):
        try:
            compile_mapping(path.read_bytes(), str(path), policyset)
        except PolicyError as exc:
            out.extend(exc.diagnostics)
    return out


def compile_mapping(data: bytes, file: str, policyset: Any, *, strict: bool = False) -> Mapping:
    """Compile mapping bytes (the one path for files, presets and worker processes)."""
    try:
        doc, marks = load_yaml(data, file)
    except YamlError as exc:
        raise PolicyError(exc.diagnostics) from None
    from engine.compiler import schema_diagnostics

    problems = schema_diagnostics(_schema_validator(), doc, marks.key_at, marks.at)
    if problems:
        raise PolicyError(problems)
    return _Builder(doc, marks, policyset).build(doc["name"], (file, data), strict)


def is_mapping_file(data: bytes) -> bool:
    """Does this YAML declare `kind: mapping`? (cheap check used when scanning a policy directory)"""
    try:
        doc, _ = load_yaml(data, "<probe>")
    except YamlError:
        return False
    return isinstance(doc, dict) and doc.get("kind") == "mapping"


__all__ = ["Mapping", "MappingError", "compile_mapping", "is_mapping_file", "load_mapping", "mapping_files", "preset_for", "preset_text_for", "presets",
           "schema_targets", "validate_mapping_files"]
