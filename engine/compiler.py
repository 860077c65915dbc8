"""Turn a policy set's files into a runnable PolicySet through named passes, collecting every diagnostic.

Passes, in order: yaml (parse with marks) -> schema (JSON Schema per file kind) -> model (dataclasses with
locations) -> references (ids, stages, teams, queues, calendars) -> expressions (parse, check, compile once)
-> checks (semantic rules such as the mandatory fallback). A pass runs only on what earlier passes accepted,
so one broken file does not hide the errors of the others, and no error is reported twice.
"""

from __future__ import annotations

import json
import posixpath
import re
from collections.abc import Mapping
from datetime import date, time, timedelta
from functools import lru_cache
from pathlib import Path
from typing import Any

import jsonschema

from engine import checks
from engine.calendar import BusinessCalendar, Closure, parse_duration, parse_weekly_hours
from engine.costbound import COST_OVER_BUDGET, over_budget_message, policy_cost
from engine.errors import Diagnostic, ExpressionError, Location, PolicyError
from engine.expr import Scope, compile_expression
from engine.expr import types as T
from engine.leads import LeadSchema
from engine.model import (
    Absence,
    Attempts,
    Decay,
    Escalation,
    Expr,
    Grade,
    Member,
    Ownership,
    PolicyModel,
    Queue,
    RouteRule,
    ScoreGroup,
    ScoreRule,
    Scoring,
    Sla,
    Stage,
    Stages,
    Team,
    Touch,
    Transition,
)
from engine.yamlsafe import Marks, YamlError, load_yaml
from engine.zonenames import zone_hint

SCHEMA_DIR = Path(__file__).resolve().parent.parent / "schemas"
KIND_FILES = {
    "policy-set": "leadops",
    "stages": "stages",
    "scoring": "scoring",
    "routing": "routing",
    "teams": "teams",
    "calendars": "calendars",
    "slas": "slas",
}
REQUIRED_KINDS = tuple(KIND_FILES)
DEFAULT_LEAD_SCHEMA = "../schemas/lead.schema.json"


@lru_cache(maxsize=None)
def policy_schema(kind: str) -> Any:
    """The JSON Schema validator for one policy file kind (loaded once per process)."""
    path = SCHEMA_DIR / f"{KIND_FILES[kind]}.schema.json"
    schema = json.loads(path.read_text(encoding="utf-8"))
    return jsonschema.Draft202012Validator(schema)


class Source:
    """One policy file: its name as reported in diagnostics, parsed data and marks."""

    def __init__(self, name: str, data: Any, marks: Marks, text: str):
        self.name = name
        self.data = data
        self.marks = marks
        self.lines = text.splitlines()

    def at(self, *path: str | int) -> Location:
        return self.marks.at(tuple(path))

    def key_at(self, *path: str | int) -> Location:
        return self.marks.key_at(tuple(path))


class Compiler:
    """Runs the passes over one set of files. Use `compile_policy_files`; this class only holds state."""

    def __init__(self, files: Mapping[str, bytes], root: str):
        self.files = files
        self.root = root.strip("/") or "."
        self.diagnostics: list[Diagnostic] = []
        self.sources: dict[str, Source] = {}  # kind -> source
        self.unreadable: set[str] = set()  # stems of files whose YAML could not be read
        self.broken_calendars: set[str] = set()  # calendars declared but invalid (their error is reported)

    # ------------------------------------------------------------ helpers
    def error(self, code: str, message: str, location: Location, hint: str = "") -> None:
        self.diagnostics.append(Diagnostic(code, message, location, hint))

    def policy_paths(self) -> list[str]:
        prefix = "" if self.root == "." else self.root + "/"
        names = [
            p for p in self.files
            if p.startswith(prefix) and "/" not in p[len(prefix):] and p.endswith((".yaml", ".yml"))
        ]
        return sorted(names)

    # ------------------------------------------------------------ pass 1+2: yaml and schema
    def pass_yaml_and_schema(self) -> None:
        paths = self.policy_paths()
        if not paths:
            self.error("POL001", f"no policy files (*.yaml) found in '{self.root}'",
                       Location(self.root), "point --policies at the directory that holds stages.yaml, scoring.yaml …")
            return
        for path in paths:
            try:
                data, marks = load_yaml(self.files[path], path)
            except YamlError as exc:
                self.diagnostics.extend(exc.diagnostics)
                self.unreadable.add(posixpath.basename(path).rsplit(".", 1)[0])
                continue
            text = self.files[path].decode("utf-8", errors="replace")
            source = Source(path, data, marks, text)
            kind = data.get("kind") if isinstance(data, dict) else None
            if kind not in KIND_FILES:
                self.unreadable.add(posixpath.basename(path).rsplit(".", 1)[0])
                self.error("POL003", f"unknown or missing 'kind': {kind!r}",
                           source.at("kind") if isinstance(data, dict) and "kind" in data else Location(path, 1, 1),
                           checks.did_you_mean(str(kind), KIND_FILES) + "set kind to one of: " + ", ".join(KIND_FILES))
                continue
            if kind in self.sources:
                self.error("POL002", f"a second '{kind}' file (the first is {self.sources[kind].name})",
                           source.at("kind"), f"merge it into {self.sources[kind].name}: each kind is one file")
                continue
            if self.check_schema(kind, source):
                self.sources[kind] = source
            else:
                self.sources.setdefault("_invalid_" + kind, source)
        for kind in REQUIRED_KINDS:
            if KIND_FILES[kind] in self.unreadable:
                continue  # its YAML error is already reported; "missing" would mislead
            if kind not in self.sources and "_invalid_" + kind not in self.sources:
                self.error("POL001", f"the policy set has no '{kind}' file",
                           Location(posixpath.join(self.root, KIND_FILES[kind] + ".yaml")),
                           f"add {KIND_FILES[kind]}.yaml with 'kind: {kind}' (see README: policy format)")

    def check_schema(self, kind: str, source: Source) -> bool:
        found = schema_diagnostics(policy_schema(kind), source.data, lambda path: source.key_at(*path),
                                   lambda path: source.at(*path))
        self.diagnostics.extend(found)
        return not found

    # ------------------------------------------------------------ pass 3: model
    def expr(self, source: Source, path: tuple[str | int, ...], text: str) -> Expr:
        return Expr(text, self.expr_location(source, path))

    def expr_location(self, source: Source, path: tuple[str | int, ...]) -> Location:
        loc = source.at(*path)
        line = source.lines[loc.line - 1] if 0 < loc.line <= len(source.lines) else ""
        col = loc.column or 1
        if col - 1 < len(line) and line[col - 1] in "\"'":
            loc = Location(loc.file, loc.line, col + 1)  # point inside the quotes
        elif col - 1 < len(line) and line[col - 1] in ">|":
            loc = Location(loc.file, loc.line + 1, len(line[:0]) + 1)  # block scalar: text starts next line
            nxt = source.lines[loc.line - 1] if loc.line <= len(source.lines) else ""
            loc = Location(loc.file, loc.line, len(nxt) - len(nxt.lstrip()) + 1)
        return loc

    def duration(self, source: Source, path: tuple[str | int, ...], value: Any) -> timedelta:
        """A positive duration (windows, decay steps, SLA times, escalation offsets: zero is meaningless)."""
        try:
            result = parse_duration(value)
        except ValueError as exc:
            self.error("DUR001", f"invalid duration {value!r}: {exc}", source.at(*path),
                       "write durations like 4h, 30m, 1h30m or 2d (d = 24 hours)")
            return timedelta(hours=1)
        if result <= timedelta(0):
            self.error("DUR001", f"duration {value!r} is zero; it must be longer than that", source.at(*path),
                       "write a positive duration such as 30d, 4h or 30m")
            return timedelta(hours=1)
        return result

    def build_model(self) -> PolicyModel | None:
        if any(k not in self.sources for k in REQUIRED_KINDS):
            return None
        meta = self.sources["policy-set"]
        d = meta.data
        locations: dict[str, Location] = {}
        calendars = self.build_calendars(self.sources["calendars"], locations)
        teams, queues = self.build_teams(self.sources["teams"], locations)
        slas_src = self.sources["slas"]
        return PolicyModel(
            name=d["name"],
            version=str(d["version"]),
            description=d.get("description", ""),
            lead_schema_path=d.get("lead_schema", DEFAULT_LEAD_SCHEMA),
            scoring=self.build_scoring(self.sources["scoring"], locations),
            stages=self.build_stages(self.sources["stages"], locations),
            routing=self.build_routing(self.sources["routing"], locations),
            teams=teams,
            queues=queues,
            calendars=calendars,
            slas=self.build_slas(slas_src, locations),
            default_calendar=slas_src.data["default_calendar"],
            default_calendar_location=slas_src.at("default_calendar"),
            broken_calendars=frozenset(self.broken_calendars),
            max_changed_percent=(d.get("guard") or {}).get("max_changed_percent"),
            max_cost_per_lead=(d.get("guard") or {}).get("max_cost_per_lead"),
            ownership=self.build_ownership(meta),
            locations=locations,
        )

    def note_id(self, locations: dict[str, Location], kind: str, ident: str, loc: Location, what: str) -> None:
        key = f"{kind}:{ident}"
        if key in locations:
            first = locations[key]
            self.error("REF001", f"duplicate {what} id '{ident}' (first defined at {first})", loc,
                       f"give each {what} a unique id")
        else:
            locations[key] = loc

    def build_scoring(self, src: Source, locations: dict[str, Location]) -> Scoring:
        d = src.data
        groups = []
        for gi, g in enumerate(d["groups"]):
            gpath = ("groups", gi)
            self.note_id(locations, "group", g["id"], src.at(*gpath, "id"), "score group")
            group_decay = self.decay(src, (*gpath, "decay"), g.get("decay"))
            rules = []
            for ri, r in enumerate(g["rules"]):
                rpath = (*gpath, "rules", ri)
                loc = src.at(*rpath, "id")
                self.note_id(locations, "scoring", r["id"], loc, "scoring rule")
                is_activity = "activity" in r
                rule_decay = self.decay(src, (*rpath, "decay"), r["decay"]) if "decay" in r else group_decay
                rules.append(ScoreRule(
                    id=r["id"], group=g["id"], points=r["points"], location=loc,
                    description=r.get("description", ""),
                    when=self.expr(src, (*rpath, "when"), r["when"]) if "when" in r else None,
                    activity=r.get("activity"),
                    where=self.expr(src, (*rpath, "where"), r["where"]) if "where" in r else None,
                    within=self.duration(src, (*rpath, "within"), r["within"]) if "within" in r else None,
                    limit=r.get("limit"),
                    decay=rule_decay if is_activity else None,
                ))
            grades = tuple(Grade(x["grade"], x.get("min")) for x in g.get("grades", ()))
            groups.append(ScoreGroup(g["id"], src.at(*gpath, "id"), tuple(rules), g.get("cap"), g.get("floor"),
                                     grades, g.get("description", "")))
        total = d.get("total") or {}
        grade = tuple(d.get("grade", ()))
        return Scoring(tuple(groups), grade, total.get("cap"), total.get("floor"), src.at(),
                       tuple(src.at("grade", i) for i in range(len(grade))))

    def decay(self, src: Source, path: tuple[str | int, ...], value: Any) -> Decay | None:
        if not value:
            return None
        return Decay(self.duration(src, (*path, "every"), value["every"]), float(value["factor"]))

    def build_stages(self, src: Source, locations: dict[str, Location]) -> Stages:
        d = src.data

        def stage(s: dict[str, Any], path: tuple[str | int, ...], index: int | None) -> Stage:
            loc = src.at(*path, "id")
            self.note_id(locations, "stage", s["id"], loc, "stage")
            transitions = tuple(
                Transition(t["to"], src.at(*path, "transitions", ti, "to"), t.get("reason_required", False),
                           t.get("auto", False))
                for ti, t in enumerate(s.get("transitions", ()))
            )
            return Stage(s["id"], s["side"], loc, index,
                         self.expr(src, (*path, "entry"), s["entry"]) if "entry" in s else None,
                         s.get("manual", False), transitions, s.get("description", ""))

        pipeline = tuple(stage(s, ("pipeline", i), i) for i, s in enumerate(d["pipeline"]))
        detours = tuple(stage(s, ("detours", i), None) for i, s in enumerate(d.get("detours", ())))
        reasons: dict[str, str] = {}
        for i, r in enumerate(d.get("reason_codes", ())):
            self.note_id(locations, "reason", r["code"], src.at("reason_codes", i, "code"), "reason code")
            reasons[r["code"]] = r.get("description", "")
        return Stages(d["initial"], pipeline, detours, reasons, src.at(), src.at("initial"))

    def build_routing(self, src: Source, locations: dict[str, Location]) -> tuple[RouteRule, ...]:
        rules = []
        for i, r in enumerate(src.data["rules"]):
            path = ("rules", i)
            loc = src.at(*path, "id")
            self.note_id(locations, "route", r["id"], loc, "routing rule")
            (kind, target), = r["assign"].items()
            owner = self.expr(src, (*path, "assign", "owner"), target) if kind == "owner" else None
            rules.append(RouteRule(r["id"], loc, kind, target,
                                   self.expr(src, (*path, "when"), r["when"]) if "when" in r else None,
                                   owner, r.get("fallback", False), r.get("description", "")))
        return tuple(rules)

    def build_teams(self, src: Source, locations: dict[str, Location]) -> tuple[dict[str, Team], dict[str, Queue]]:
        teams: dict[str, Team] = {}
        for i, t in enumerate(src.data.get("teams", ())):
            loc = src.at("teams", i, "id")
            self.note_id(locations, "team", t["id"], loc, "team")
            members = []
            seen: set[str] = set()
            for mi, m in enumerate(t["members"]):
                mloc = src.at("teams", i, "members", mi, "id")
                if m["id"] in seen:
                    self.error("REF001", f"member '{m['id']}' is listed twice in team '{t['id']}'", mloc,
                               "list each member once; use weight to give them more leads")
                seen.add(m["id"])
                absences = []
                for ai, a in enumerate(m.get("out_of_office", ())):
                    start, end = _date(a["from"]), _date(a["to"])
                    if start is None or end is None or end < start:
                        self.error("RULE008", f"out-of-office range {a['from']} … {a['to']} is not a valid date range",
                                   src.at("teams", i, "members", mi, "out_of_office", ai),
                                   "write real dates with 'from' on or before 'to' (both inclusive)")
                        continue
                    absences.append(Absence(start, end))
                members.append(Member(m["id"], m.get("weight", 1), m.get("active", True), tuple(absences), mloc))
            teams[t["id"]] = Team(t["id"], t["calendar"], tuple(members), loc, t.get("manager"), t.get("description", ""),
                                 t.get("slack_channel"))
        queues: dict[str, Queue] = {}
        for i, q in enumerate(src.data.get("queues", ())):
            loc = src.at("queues", i, "id")
            self.note_id(locations, "queue", q["id"], loc, "queue")
            queues[q["id"]] = Queue(q["id"], loc, q.get("calendar"), q.get("manager"), q.get("description", ""),
                                   q.get("slack_channel"))
        return teams, queues

    def build_calendars(self, src: Source, locations: dict[str, Location]) -> dict[str, BusinessCalendar]:
        calendars: dict[str, BusinessCalendar] = {}
        for i, c in enumerate(src.data["calendars"]):
            loc = src.at("calendars", i, "id")
            self.note_id(locations, "calendar", c["id"], loc, "calendar")
            try:
                hours = parse_weekly_hours(c["hours"])
            except ValueError as exc:
                self.error("CAL001", f"calendar '{c['id']}': invalid hours: {exc}", src.at("calendars", i, "hours"),
                           "write hours like  mon-fri: \"08:30-17:00\"  or a list of ranges per day")
                self.broken_calendars.add(c["id"])
                continue
            closures = []
            for ci, cl in enumerate(c.get("closures", ())):
                day = _date(cl["date"])
                start = _time(cl.get("from")) if "from" in cl else None
                end = _time(cl.get("to")) if "to" in cl else None
                if day is None or ("from" in cl and start is None) or ("to" in cl and end is None) or \
                        (("from" in cl) != ("to" in cl)) or (start and end and end <= start):
                    self.error("CAL002", f"calendar '{c['id']}': invalid closure {cl}",
                               src.at("calendars", i, "closures", ci),
                               "a closure is a real date, optionally with both 'from' and 'to' (HH:MM, from < to)")
                    continue
                closures.append(Closure(day, start, end, cl.get("name", "")))
            hol = c.get("holidays") or {}
            try:
                calendars[c["id"]] = BusinessCalendar(
                    id=c["id"], timezone=c["timezone"], weekly_hours=hours,
                    holiday_country=hol.get("country"), holiday_subdivision=hol.get("subdivision"),
                    closures=tuple(closures))
            except ValueError as exc:
                self.broken_calendars.add(c["id"])
                message = str(exc) if str(exc).startswith("calendar ") else f"calendar '{c['id']}': {exc}"
                if "time zone" in message:
                    self.error("CAL001", message, src.at("calendars", i, "timezone"),
                               zone_hint(str(c["timezone"]), hol.get("country")))
                    continue
                holiday_loc = src.at("calendars", i, "holidays") if "holiday" in message else loc
                self.error("CAL001", message, holiday_loc, _holiday_hint(hol.get("country"), message))
        return calendars

    def build_slas(self, src: Source, locations: dict[str, Location]) -> tuple[Sla, ...]:
        out = []
        for i, s in enumerate(src.data["slas"]):
            path = ("slas", i)
            loc = src.at(*path, "id")
            self.note_id(locations, "sla", s["id"], loc, "SLA")
            escalations = []
            for ei, e in enumerate(s.get("escalations", ())):
                at = e["at"]
                eloc = src.at(*path, "escalations", ei)
                if at.endswith("%"):
                    escalations.append(Escalation(eloc, e["action"], e["to"], percent=float(at[:-1]), text=at))
                else:
                    escalations.append(Escalation(eloc, e["action"], e["to"],
                                                  after_due=self.duration(src, (*path, "escalations", ei, "at"), at[1:]),
                                                  text=at))
            att = s.get("attempts")
            attempts = Attempts(att["min"], att.get("activity", "call_attempt"), att.get("within_business_days"),
                                tuple(att.get("before", ()))) if att else None
            applies = s["applies_to"]
            touch = s.get("touched_by")
            touched_by = Touch(tuple(touch["types"]), touch.get("by", "team"),
                               src.at(*path, "touched_by")) if touch else None
            out.append(Sla(
                id=s["id"], location=loc,
                respond_within=self.duration(src, (*path, "respond_within"), s["respond_within"]),
                calendar=s.get("calendar", "assignee"),
                stages=tuple(applies.get("stages", ())), routes=tuple(applies.get("routes", ())),
                when=self.expr(src, (*path, "applies_to", "when"), applies["when"]) if "when" in applies else None,
                attempts=attempts, escalations=tuple(escalations), description=s.get("description", ""),
                touched_by=touched_by))
        return tuple(out)

    def build_ownership(self, src: Source) -> Ownership | None:
        owners = src.data.get("owners")
        if not owners:
            return None
        groups = {g: tuple(v["members"]) for g, v in owners["groups"].items()}
        areas = {a: (tuple(v["files"]), tuple(v["approvers"])) for a, v in owners["areas"].items()}
        for a, v in owners["areas"].items():
            for gi, g in enumerate(v["approvers"]):
                if g not in groups:
                    self.error("REF009", f"area '{a}' names unknown owner group '{g}'",
                               src.at("owners", "areas", a, "approvers", gi),
                               checks.did_you_mean(g, groups) + "declare it under owners.groups")
        teams = {g: v["github_team"] for g, v in owners["groups"].items() if "github_team" in v}
        return Ownership(groups, areas, teams)

    # ------------------------------------------------------------ lead schema
    def load_lead_schema(self, model: PolicyModel | None) -> LeadSchema | None:
        meta = self.sources.get("policy-set")
        rel = model.lead_schema_path if model else DEFAULT_LEAD_SCHEMA
        path = posixpath.normpath(posixpath.join(self.root, rel))
        loc = meta.at("lead_schema") if meta and "lead_schema" in meta.data else Location(meta.name if meta else self.root)
        if path not in self.files:
            self.error("LEADSCHEMA001", f"lead schema '{rel}' not found (looked for {path})", loc,
                       "set lead_schema in leadops.yaml to the lead JSON Schema, relative to the policies directory")
            return None
        try:
            schema = json.loads(self.files[path])
            if plainly_valid_schema(schema):  # skips jsonschema's slow meta-schema walk (see its docstring)
                try:
                    return LeadSchema.from_json_schema(schema)
                except ValueError:
                    pass  # report exactly as below
            jsonschema.Draft202012Validator.check_schema(schema)
            return LeadSchema.from_json_schema(schema)
        except (ValueError, jsonschema.SchemaError) as exc:
            msg = getattr(exc, "message", None) or str(exc)
            self.error("LEADSCHEMA002", f"lead schema {path} is not a valid JSON Schema: {msg}", Location(path, 1, 1),
                       "fix the JSON Schema (draft 2020-12) of the lead record")
            return None

    # ------------------------------------------------------------ pass 5: expressions
    def compile_expressions(self, model: PolicyModel, lead_type: Any) -> None:
        self.check_activity_types(model, lead_type)
        self.compile_parts(model.scoring, model.stages, model.routing, model.slas, lead_type)

    def compile_parts(self, scoring: Scoring | None, stages: Stages | None, routing: tuple[RouteRule, ...] | None,
                      slas: tuple[Sla, ...] | None, lead_type: Any) -> None:
        """Compile every expression of the parts given (None: that file is broken and already reported)."""
        scopes = build_scopes(scoring, lead_type, stages)
        if scoring is not None:
            for group in scoring.groups:
                for rule in group.rules:
                    if rule.when:
                        self.compile_one(rule.when, scopes["score"], T.BOOL)
                    if rule.where:
                        self.compile_one(rule.where, scopes["activity"], T.BOOL)
        if scoring is None:
            return  # the other scopes name the score groups, which only scoring.yaml declares
        for stage in (*stages.pipeline, *stages.detours) if stages else ():
            if stage.entry:
                self.compile_one(stage.entry, scopes["stage"], T.BOOL)
        for rule in routing or ():
            if rule.when:
                self.compile_one(rule.when, scopes["route"], T.BOOL)
            if rule.owner:
                self.compile_one(rule.owner, scopes["route"], T.STRING)
        for sla in slas or ():
            if sla.when:
                self.compile_one(sla.when, scopes["route"], T.BOOL)

    def check_partial(self, lead_schema: LeadSchema | None) -> None:
        """The model could not be built (a file is missing or invalid): still check the valid files' expressions,
        so one broken file does not hide the errors of the others."""
        scratch: dict[str, Location] = {}
        if "calendars" in self.sources:
            self.build_calendars(self.sources["calendars"], scratch)
        if "teams" in self.sources:
            self.build_teams(self.sources["teams"], scratch)
        if lead_schema is None:
            return
        parts: dict[str, Any] = {}
        for kind, build in (("scoring", self.build_scoring), ("stages", self.build_stages),
                            ("routing", self.build_routing), ("slas", self.build_slas)):
            if kind in self.sources:
                parts[kind] = build(self.sources[kind], scratch)
        self.compile_parts(parts.get("scoring"), parts.get("stages"), parts.get("routing"), parts.get("slas"),
                           lead_schema.type)

    def check_activity_types(self, model: PolicyModel, lead_type: Any) -> None:
        """Activity types named by rules must be values the lead schema allows (REF010)."""
        known = activity_types(lead_type)
        if known is None:
            return
        used = [(r.activity, r.location, f"scoring rule '{r.id}'") for g in model.scoring.groups for r in g.rules
                if r.activity]
        used += [(s.attempts.activity, s.location, f"SLA '{s.id}'") for s in model.slas if s.attempts]
        used += [(t, s.touched_by.location, f"SLA '{s.id}' (touched_by)") for s in model.slas if s.touched_by
                 for t in s.touched_by.types]
        for activity, loc, owner in used:
            if activity not in known:
                self.error("REF010", f"{owner} counts activity type '{activity}', which the lead schema does not allow",
                           loc, checks.did_you_mean(activity, known) + f"known activity types: {', '.join(known)}")

    def check_cost(self, model: PolicyModel, lead_type: Any) -> None:
        """COST001 when the policy's worst-case cost per lead passes its budget (engine.costbound)."""
        bound = policy_cost(model, lead_type)
        if bound.total > bound.budget:
            meta = self.sources["policy-set"]
            guard = (meta.data.get("guard") or {})
            located = [r.location for r in bound.dominant() if r.location.file]
            where = meta.at("guard", "max_cost_per_lead") if "max_cost_per_lead" in guard else (
                located[0] if located else meta.at())
            message, hint = over_budget_message(bound)
            self.error(COST_OVER_BUDGET, message, where, hint)

    def compile_one(self, expr: Expr, scope: Scope, want: Any) -> None:
        try:
            expr.compiled = compile_expression(expr.source, scope, want=want)
        except ExpressionError as exc:
            loc = expr.location.shifted(exc.column - 1) if exc.column and "\n" not in expr.source else expr.location
            hint = exc.hint or ("expressions are Python-like: check quotes, brackets and operators, "
                                "e.g. lead.employees >= 50 and lead.country in [\"AU\", \"NZ\"]")
            self.error(exc.code, f"in expression `{_short(expr.source)}`: {exc.message}", loc, hint)


def activity_types(lead_type: Any) -> tuple[str, ...] | None:
    """The activity `type` values the lead schema allows, or None when it does not restrict them."""
    activities = getattr(lead_type, "props", {}).get("activities")
    item = getattr(activities, "item", None)
    type_field = getattr(item, "props", {}).get("type")
    return getattr(type_field, "enum", None)


def build_scopes(scoring: Scoring | PolicyModel | None, lead_type: Any, stages: Stages | None = None) -> dict[str, Scope]:
    """The names each kind of expression may use, with their types (checked at load time).

    Takes the scoring part (or a whole model): the `score` object's fields are the declared score groups, and
    `stage` is one of the declared stage ids (so `stage == "SQL"` is refused with "did you mean 'sql'?").
    """
    if isinstance(scoring, PolicyModel):
        scoring, stages = scoring.scoring, stages or scoring.stages
    groups = scoring.groups if scoring is not None else ()
    score_type = T.ObjectType({
        "total": T.NUMBER, "grade": T.STRING,
        **{g.id: T.NUMBER for g in groups},
        **{f"{g.id}_grade": T.STRING for g in groups},
    }, open=False)
    stage_type = T.StringType(enum=tuple(stages.by_id())) if stages is not None else T.STRING
    activities = lead_type.props.get("activities") if hasattr(lead_type, "props") else None
    activity_type = getattr(activities, "item", T.ANY)
    base = {"lead": lead_type, "now": T.DATETIME}
    return {
        "score": Scope({**base}),
        "activity": Scope({**base, "activity": activity_type}),
        "stage": Scope({**base, "score": score_type}),
        "route": Scope({**base, "score": score_type, "stage": stage_type}),
    }


def compile_policy_files(files: Mapping[str, bytes], root: str = "policies") -> tuple[PolicyModel, LeadSchema]:
    """Run every pass; return the model (expressions compiled) and the lead schema, or raise PolicyError."""
    c = Compiler(files, root)
    c.pass_yaml_and_schema()
    model = c.build_model()
    lead_schema = c.load_lead_schema(model)
    if model is not None:
        checks.check_references(model, c.error)
        if lead_schema is not None:
            c.compile_expressions(model, lead_schema.type)
        checks.check_rules(model, c.error)
        if lead_schema is not None and not c.diagnostics:
            c.check_cost(model, lead_schema.type)
    else:
        c.check_partial(lead_schema)
    if c.diagnostics or model is None or lead_schema is None:
        raise PolicyError(_dedupe(c.diagnostics))
    return model, lead_schema


# ---------------------------------------------------------------- small pure helpers

_SIMPLE_TYPES = frozenset({"array", "boolean", "integer", "null", "number", "object", "string"})
_PLAIN_URI = re.compile(r"^https?://[A-Za-z0-9._~/-]+#?$")
_ANCHOR = re.compile(r"^[A-Za-z_][-A-Za-z0-9._]*$")


def plainly_valid_schema(schema: Any, depth: int = 0) -> bool:
    """A conservative, fast stand-in for the draft 2020-12 meta-schema check of a lead schema.

    True only for schemas built from the keywords the lead validator supports, each with a value the
    meta-schema certainly accepts (`jsonschema.Draft202012Validator.check_schema` takes ~60 ms even for a
    tiny schema). False means "not sure": the caller then runs the real check, so diagnostics never change.
    """
    if schema is True or schema is False:
        return True
    if not isinstance(schema, dict) or depth > 64:
        return False
    for key, value in schema.items():
        if key in ("properties",):
            if not isinstance(value, dict) or not all(plainly_valid_schema(v, depth + 1) for v in value.values()):
                return False
        elif key in ("items", "additionalProperties"):
            if not plainly_valid_schema(value, depth + 1):
                return False
        elif key == "type":
            names = value if isinstance(value, list) else [value]
            if not names or not all(isinstance(n, str) and n in _SIMPLE_TYPES for n in names) or \
                    len(set(names)) != len(names):
                return False
        elif key == "required":
            if not isinstance(value, list) or not all(type(v) is str for v in value) or len(set(value)) != len(value):
                return False
        elif key in ("enum", "examples"):
            if not isinstance(value, list):
                return False
        elif key in ("const", "default"):
            pass
        elif key in ("minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum"):
            if type(value) not in (int, float):
                return False
        elif key in ("minLength", "maxLength", "minItems", "maxItems"):
            if type(value) is not int or value < 0:
                return False
        elif key == "pattern":
            if type(value) is not str:
                return False
            try:
                re.compile(value)  # the meta-schema's "regex" format
            except re.error:
                return False
        elif key in ("format", "title", "description", "$comment"):
            if type(value) is not str:
                return False
        elif key in ("deprecated", "readOnly", "writeOnly", "x-leadops-pii"):
            if type(value) is not bool:
                return False
        elif key in ("$schema", "$id"):
            if type(value) is not str or not _PLAIN_URI.match(value):
                return False
        elif key == "$anchor":
            if type(value) is not str or not _ANCHOR.match(value):
                return False
        else:
            return False
    return True



def _dedupe(diags: list[Diagnostic]) -> list[Diagnostic]:
    seen: set[tuple[Any, ...]] = set()
    out = []
    for d in diags:
        key = (d.code, d.message, d.location)
        if key not in seen:
            seen.add(key)
            out.append(d)
    return out


def _short(text: str, width: int = 60) -> str:
    text = " ".join(text.split())
    return text if len(text) <= width else text[: width - 1] + "…"


def _date(value: Any) -> date | None:
    try:
        return date.fromisoformat(str(value))
    except ValueError:
        return None


def _time(value: Any) -> time | None:
    try:
        return time.fromisoformat(str(value))
    except ValueError:
        return None


def _holiday_hint(country: Any, message: str) -> str:
    """The fix for a holiday region, in the calendar's own country (its subdivisions are in the message)."""
    if isinstance(country, str) and country and "unknown holiday subdivision" in message:
        return (f"use a subdivision code of {country} from the list above (e.g. {{country: {country}, subdivision: "
                f"<code>}}), or leave out subdivision for {country}'s national holidays only")
    return "use an ISO 3166-1 country code the holidays library knows (e.g. AU, GB, US) and one of its subdivisions"


def schema_diagnostics(validator: Any, data: Any, key_at: Any, at: Any) -> list[Diagnostic]:
    """SCHEMA001 diagnostics of `data` against a JSON Schema validator, in an author's words: the most specific
    cause of each error, no echo of a typo, located by `key_at(path)` (a key) or `at(path)` (a value).
    The one wording for every YAML file kind (policy files here, mapping files in engine/crm)."""
    errors = sorted(validator.iter_errors(data), key=lambda e: list(map(str, e.absolute_path)))
    out = []
    for err in _without_typo_echoes(_leaf_errors(errors)):
        path = tuple(err.absolute_path)
        message, hint, at_key = _describe_schema_error(err)
        location = key_at(path + (at_key,)) if at_key else at(path)
        out.append(Diagnostic("SCHEMA001", f"{'/'.join(map(str, path)) or '(top level)'}: {message}", location, hint))
    return out


def _without_typo_echoes(errors: list[jsonschema.ValidationError]) -> list[jsonschema.ValidationError]:
    """Drop "'points' is a required property" when the same object has an unknown 'pionts': the typo is the one
    mistake, reported (with "did you mean 'points'?") by the unknown-property error."""
    import difflib

    unknown: dict[tuple[Any, ...], list[str]] = {}
    for err in errors:
        if err.validator == "additionalProperties" and isinstance(err.instance, dict):
            extra = set(err.instance) - set(err.schema.get("properties", {}))
            unknown.setdefault(tuple(err.absolute_path), []).extend(map(str, extra))
    out = []
    for err in errors:
        if err.validator == "required" and isinstance(err.instance, dict):
            missing = [r for r in err.validator_value if r not in err.instance]
            typos = unknown.get(tuple(err.absolute_path), [])
            if missing and all(difflib.get_close_matches(m, typos, n=1) for m in missing):
                continue
        out.append(err)
    return out


def _leaf_errors(errors: list[jsonschema.ValidationError]) -> list[jsonschema.ValidationError]:
    """Report the most specific cause of each error (jsonschema nests oneOf/anyOf failures in `context`)."""
    out = []
    for err in errors:
        if _is_described_scalar(err):
            out.append(err)  # e.g. a duration: "what a duration looks like" beats the first branch's complaint
        elif err.context:
            best = jsonschema.exceptions.best_match(err.context)
            out.append(best if best is not None else err)
        else:
            out.append(err)
    return out


def _is_described_scalar(err: jsonschema.ValidationError) -> bool:
    """A scalar that matched none of a described oneOf/anyOf (a duration, a percentage): the description says
    what the value looks like, which helps more than the complaint of whichever branch came closest."""
    return (err.validator in ("oneOf", "anyOf") and not isinstance(err.instance, (dict, list))
            and isinstance(err.schema, dict) and bool(err.schema.get("description")))


def _type_hint(err: jsonschema.ValidationError) -> str:
    """How to fix a value of the wrong type: quotes around a number or boolean, or a nesting mistake."""
    expected = err.validator_value if isinstance(err.validator_value, list) else [err.validator_value]
    value = err.instance
    if isinstance(value, str) and ("number" in expected or "integer" in expected):
        try:
            float(value.strip())
        except ValueError:
            return "write a number here"
        return f"remove the quotes: write {value.strip()}, not \"{value}\" (quoted, YAML reads it as text)"
    if isinstance(value, str) and "boolean" in expected:
        if value.strip().lower() in ("true", "false"):
            return f"remove the quotes: write {value.strip().lower()}, not \"{value}\""
        return "write true or false"
    if "object" in expected or "array" in expected:
        return "check the indentation: the entries under this key must be indented below it"
    return f"write a value of type {' or '.join(map(str, expected))} here"


def _pattern_hint_for(err: jsonschema.ValidationError) -> str:
    """An id in the wrong case gets "did you mean 'sql'?" before the pattern's description."""
    value = err.instance
    if isinstance(value, str) and value != value.lower() and re.fullmatch(str(err.validator_value), value.lower()):
        return f"did you mean '{value.lower()}'? ids are lower-case"
    return _pattern_hint(err)


def _describe_schema_error(err: jsonschema.ValidationError) -> tuple[str, str, str | None]:
    """(message, hint, key) in words a policy author understands; key locates unknown/missing properties."""
    v = err.validator
    if v == "additionalProperties":
        extra = sorted(set(err.instance) - set(err.schema.get("properties", {})))
        allowed = ", ".join(err.schema.get("properties", {}))
        name = extra[0] if extra else "?"
        return (f"unknown property '{name}'",
                checks.did_you_mean(name, err.schema.get("properties", {})) + f"allowed here: {allowed}", name)
    if v == "required":
        return (err.message, "add the missing property", None)
    if v == "enum":
        return (f"{err.instance!r} is not one of {err.validator_value}", "use one of the listed values", None)
    if v == "const":
        return (f"expected {err.validator_value!r}, got {err.instance!r}", "", None)
    if v == "pattern":
        return (f"{err.instance!r} does not have the expected form", _pattern_hint_for(err), None)
    if v == "type":
        return (f"expected {err.validator_value}, got {type(err.instance).__name__} {err.instance!r}"[:200],
                _type_hint(err), None)
    if _is_described_scalar(err):
        desc = str(err.schema["description"])
        noun = re.match(r"(?i)(an? [a-z ]+?)(?: such as|:|,| \()", desc)
        what = noun.group(1)[0].lower() + noun.group(1)[1:] if noun else "a valid value here"
        return (f"{err.instance!r} is not {what}"[:200], desc, None)
    if v in ("minItems", "minProperties", "maxProperties"):
        return (err.message, "see the schema's description of this field", None)
    if v in ("oneOf", "not"):
        return ("this combination of properties is not allowed here",
                "a scoring rule has either `when` (a condition) or `activity` (+ where/within/limit), not both", None)
    return (err.message[:300], err.schema.get("description", "") if isinstance(err.schema, dict) else "", None)


def _pattern_hint(err: jsonschema.ValidationError) -> str:
    desc = err.schema.get("description") if isinstance(err.schema, dict) else None
    return desc or f"it must match {err.validator_value}"
