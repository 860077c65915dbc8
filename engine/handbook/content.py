"""What the handbook says: a policy model turned into sections of sentences, each with a stable key.

Every statement of the agreement is an `Entry` with a key that names what it is about ("stage:sql",
"scoring:fit:has-abn"), a full sentence (what the diff between two revisions compares) and the cells of its
table row. Rendering (markdown, HTML) and diffing both read these; nothing here formats for a medium.
The calendars list the holidays of the year from `as_of`, a date the caller chooses deterministically
(the revision's commit date, or an explicit one), so the same revision always gives the same handbook.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

from engine.handbook.phrasebook import Phrasebook, join_words
from engine.model import Escalation, PolicyModel, RouteRule, ScoreGroup, ScoreRule, Sla, Stage, Team
from engine.semantic_diff import fmt_num

WEEKDAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
AREA_OF_SECTION = {"scoring": "scoring", "stages": "stages", "handbacks": "stages", "routing": "routing",
                   "teams": "routing", "slas": "slas", "calendars": "slas"}


@dataclass(frozen=True)
class Entry:
    key: str
    sentence: str
    cells: tuple[str, ...] = ()


@dataclass(frozen=True)
class Section:
    key: str
    title: str
    intro: str = ""
    notes: tuple[Entry, ...] = ()  # rendered as a list
    columns: tuple[str, ...] = ()
    rows: tuple[Entry, ...] = ()  # rendered as a table (a list when there are no columns)


@dataclass(frozen=True)
class Handbook:
    title: str
    description: str
    revision: str
    as_of: date
    sections: tuple[Section, ...]

    def entries(self) -> dict[str, tuple[str, str]]:
        """key -> (section title, sentence), every statement once: what a diff compares."""
        out: dict[str, tuple[str, str]] = {}
        for s in self.sections:
            for e in (*s.notes, *s.rows):
                out[e.key] = (s.title, e.sentence)
        return out


def build_handbook(model: PolicyModel, lead_schema: dict[str, Any], revision: str, as_of: date) -> Handbook:
    """The whole agreement for one policy model, holidays listed for the year starting at `as_of`."""
    pb = Phrasebook(lead_schema)
    sections = [_owners(model)]
    sections += [_score_group(model, g, pb) for g in model.scoring.groups]
    sections += [_stages(model, pb), _handbacks(model), _routing(model, pb), _teams(model), _slas(model)]
    sections += [_calendar(model, cid, as_of) for cid in sorted(model.calendars)]
    return Handbook(f"Rules of engagement: {model.name} {model.version}", " ".join(model.description.split()),
                    revision, as_of, tuple(_with_owner(model, s) for s in sections))


# ------------------------------------------------------------------ owners


def _approvers(model: PolicyModel, area: str) -> str:
    own = model.ownership
    if own is None or area not in own.areas:
        return ""
    return join_words(list(own.areas[area][1]), "and")


def _with_owner(model: PolicyModel, section: Section) -> Section:
    area = AREA_OF_SECTION.get(section.key.split(":")[0])
    who = _approvers(model, area) if area else ""
    if not who:
        return section
    intro = (section.intro + " " if section.intro else "") + f"Changes need the approval of {who}."
    return Section(section.key, section.title, intro, section.notes, section.columns, section.rows)


def _owners(model: PolicyModel) -> Section:
    own = model.ownership
    rows = []
    if own is not None:
        for area, (files, groups) in own.areas.items():
            people = "; ".join(f"{g}: {', '.join(own.groups.get(g, ())) or 'nobody'}" for g in groups)
            rows.append(Entry(f"owners:{area}",
                              f"Changes to {area} ({', '.join(files)}) need the approval of {join_words(list(groups), 'and')} "
                              f"({people}).", (area, ", ".join(files), join_words(list(groups), "and"), people)))
    return Section("owners", "Who owns what", "Each area of the agreement changes only with its owners' approval.",
                   columns=("Area", "Files", "Approved by", "Members"), rows=tuple(rows))


# ------------------------------------------------------------------ scoring


def _points(x: float) -> str:
    return ("+" if x > 0 else "−" if x < 0 else "") + fmt_num(abs(x))


def _rule_name(r: ScoreRule) -> str:
    return r.description or r.id.replace("-", " ")


def _score_rule(r: ScoreRule, pb: Phrasebook) -> Entry:
    if r.is_activity_rule:
        what = (r.activity or "").replace("_", " ")
        if r.where is not None:
            what += f" where {pb.phrase(r.where.source)}"
        when = f"each {what}" + (f" in the last {_days(r.within)}" if r.within else "")
        limits = [f"at most {r.limit} counted" if r.limit else "", _decay(r)]
        limits = [x for x in limits if x]
        when += f" ({'; '.join(limits)})" if limits else ""
        sentence = f"{_rule_name(r)}: {_points(r.points)} points for {when}."
    else:
        when = pb.phrase(r.when.source) if r.when is not None else "always"
        sentence = f"{_rule_name(r)}: {_points(r.points)} points when {when}."
    return Entry(f"scoring:{r.group}:{r.id}", sentence, (_rule_name(r), when, _points(r.points)))


def _days(d: timedelta | None) -> str:
    if d is None:
        return ""
    days = d.total_seconds() / 86400
    return f"{fmt_num(days)} days" if days.is_integer() else f"{fmt_num(d.total_seconds() / 3600)} hours"


def _decay(r: ScoreRule) -> str:
    if r.decay is None:
        return ""
    return f"worth ×{fmt_num(r.decay.factor)} for every {_days(r.decay.every)} of age"


def _score_group(model: PolicyModel, g: ScoreGroup, pb: Phrasebook) -> Section:
    notes = []
    bounds = [f"at most {fmt_num(g.cap)}" if g.cap is not None else "", f"at least {fmt_num(g.floor)}" if g.floor is not None else ""]
    if any(bounds):
        notes.append(Entry(f"scoring:{g.id}:bounds", f"The {g.id} score is {join_words([b for b in bounds if b], 'and')}."))
    if g.grades:
        parts = [f"{x.grade} from {fmt_num(x.min)} points" if x.min is not None else f"{x.grade} below that" for x in g.grades]
        notes.append(Entry(f"scoring:{g.id}:grades", f"{g.id.capitalize()} grades: {', '.join(parts)}."))
    intro = g.description
    title = "Who the ideal customer is: fit points" if g.id == "fit" else f"Score: {g.id} points"
    return Section(f"scoring:{g.id}", title, intro, tuple(notes), ("Rule", "When", "Points"),
                   tuple(_score_rule(r, pb) for r in g.rules))


# ------------------------------------------------------------------ stages


def stage_name(stage_id: str) -> str:
    """Business label of a stage id: 'mql' -> 'MQL', 'nurture' -> 'Nurture'."""
    return stage_id.upper() if len(stage_id) <= 3 else stage_id.replace("-", " ").capitalize()


def _stage(s: Stage, initial: str, pb: Phrasebook) -> Entry:
    desc = " ".join(s.description.split())
    if s.entry is not None:
        how = f"entered automatically when {pb.phrase(s.entry.source)}"
    elif s.manual:
        how = "entered only by hand in the CRM"
    elif s.id == initial:
        how = "where every new lead starts"
    else:
        how = "entered only by a requested transition"
    sentence = f"{stage_name(s.id)} ({s.side}): {desc + ' ' if desc else ''}It is {how}."
    return Entry(f"stage:{s.id}", sentence, (stage_name(s.id), s.side, desc, how[:1].upper() + how[1:]))


def _stages(model: PolicyModel, pb: Phrasebook) -> Section:
    st = model.stages
    intro = ("A lead moves forward to the furthest stage whose entry criteria hold, and never moves back on its own. "
             f"Every lead starts as {stage_name(st.initial)}.")
    rows = tuple(_stage(s, st.initial, pb) for s in (*st.pipeline, *st.detours))
    return Section("stages", "What makes a lead, an MQL and an SQL", intro, (), ("Stage", "Side", "Meaning", "Entry"), rows)


def _handbacks(model: PolicyModel) -> Section:
    st = model.stages
    rows = []
    for s in (*st.pipeline, *st.detours):
        for t in s.transitions:
            if t.auto:
                text = (f"A lead in {stage_name(s.id)} returns to {stage_name(t.to)} by itself as soon as it meets "
                        f"the {stage_name(t.to)} criteria.")
            else:
                text = (f"A lead in {stage_name(s.id)} may be moved to {stage_name(t.to)} on request"
                        + (", always with a reason code." if t.reason_required else "."))
            rows.append(Entry(f"transition:{s.id}:{t.to}", text))
    notes = tuple(Entry(f"reason:{code}", f"Reason code “{code}”: {desc}.", (code, desc))
                  for code, desc in st.reason_codes.items())
    return Section("handbacks", "Hand-backs and reason codes",
                   "Moves outside the forward path happen only through a request, along these transitions.",
                   rows=tuple(rows) + notes)


# ------------------------------------------------------------------ routing and teams


def _target(r: RouteRule, pb: Phrasebook) -> str:
    if r.target_kind == "owner":
        return pb.value_phrase(r.owner.source if r.owner is not None else r.target)
    return f"{'team' if r.target_kind == 'team' else 'queue'} {r.target}"


def _routing(model: PolicyModel, pb: Phrasebook) -> Section:
    rows = []
    for i, r in enumerate(model.routing, 1):
        when = "nothing above matched" if r.fallback else (pb.phrase(r.when.source) if r.when is not None else "always")
        target = _target(r, pb)
        desc = f" ({r.description.rstrip('.')})" if r.description else ""
        rows.append(Entry(f"route:{r.id}", f"Rule {i}, {r.id}{desc}: when {when}, the lead goes to {target}.",
                          (str(i), r.id, when, target)))
    intro = ("Rules are tried in order; the first that holds and has someone available wins. A team's leads are "
             "shared by weight among its available members, and the same lead always goes to the same rep.")
    return Section("routing", "Who gets which lead", intro, (), ("#", "Rule", "When", "Goes to"), tuple(rows))


def _member(m: Any) -> str:
    notes = [f"weight {m.weight}"] + ([] if m.active else ["inactive"])
    notes += [f"away {a.start.isoformat()} to {a.end.isoformat()}" for a in m.out_of_office]
    return f"{m.id} ({', '.join(notes)})"


def _team(t: Team) -> Entry:
    members = ", ".join(_member(m) for m in t.members)
    desc = f"{t.description}; " if t.description else ""
    sentence = (f"Team {t.id} ({desc}{t.calendar} hours, manager {t.manager or 'none'}): {members}.")
    return Entry(f"team:{t.id}", sentence, (t.id, t.description, t.calendar, t.manager or "—", members))


def _teams(model: PolicyModel) -> Section:
    rows = [_team(t) for t in model.teams.values()]
    for q in model.queues.values():
        desc = f"{q.description}; " if q.description else ""
        rows.append(Entry(f"queue:{q.id}", f"Queue {q.id} ({desc}{q.calendar or model.default_calendar} hours, "
                          f"manager {q.manager or 'none'}).",
                          (f"queue {q.id}", q.description, q.calendar or model.default_calendar, q.manager or "—", "")))
    return Section("teams", "Teams, members and queues", "", (), ("Team", "Covers", "Hours", "Manager", "Members"),
                   tuple(rows))


# ------------------------------------------------------------------ SLAs and calendars


def business_duration(d: timedelta) -> str:
    hours = d.total_seconds() / 3600
    if hours.is_integer():
        return f"{int(hours)} business hour{'s' if hours != 1 else ''}"
    return f"{fmt_num(round(d.total_seconds() / 60))} business minutes"


def _escalation(e: Escalation) -> str:
    when = f"at {fmt_num(e.percent)}% of the time" if e.percent is not None else (
        f"{business_duration(e.after_due or timedelta(0))} after the due time")
    to = {"owner": "the assigned rep", "manager": "the team's manager"}.get(e.to, e.to.replace(":", " "))
    return f"{when}, {e.action} {to}" if e.action == "notify" else f"{when}, {e.action} to {to}"


def _sla(model: PolicyModel, s: Sla) -> Entry:
    applies = join_words([stage_name(x) for x in s.stages], "or") + " leads" if s.stages else "leads"
    if s.routes:
        applies += f" routed by {join_words(list(s.routes), 'or')}"
    if s.when is not None:
        applies += f" when `{' '.join(s.when.source.split())}`"
    cal = (f"the assigned team's calendar ({model.default_calendar} when it has none)" if s.calendar == "assignee"
           else f"the {s.calendar} calendar")
    parts = [f"{s.description.rstrip('.') + '. ' if s.description else ''}For {applies}: respond within "
             f"{business_duration(s.respond_within)} on {cal}."]
    if s.attempts:
        a = s.attempts
        within = f" within {a.within_business_days} business days" if a.within_business_days else ""
        before = f" before moving it to {join_words([stage_name(x) for x in a.before], 'or')}" if a.before else ""
        parts.append(f"At least {a.min} {a.activity.replace('_', ' ')}s{within}{before}.")
    if s.escalations:
        parts.append("Escalations: " + "; ".join(_escalation(e) for e in s.escalations) + ".")
    return Entry(f"sla:{s.id}", " ".join(parts), (s.id, applies, business_duration(s.respond_within), " ".join(parts[1:])))


def _slas(model: PolicyModel) -> Section:
    return Section("slas", "How fast sales follows up",
                   "Clocks run in business hours only, start when the lead enters the stage, and stop while paused.",
                   (), ("SLA", "Applies to", "Respond within", "Attempts and escalations"),
                   tuple(_sla(model, s) for s in model.slas))


def weekly_hours_words(weekly: Any) -> str:
    """'Monday to Friday 08:30–17:00' (days with equal hours grouped)."""
    groups: list[tuple[list[int], str]] = []
    for day in range(7):
        spans = weekly.get(day, ())
        text = ", ".join(f"{s.strftime('%H:%M')}–{e.strftime('%H:%M') if e.hour or e.minute else '24:00'}" for s, e in spans)
        if groups and groups[-1][1] == text and groups[-1][0][-1] == day - 1:
            groups[-1][0].append(day)
        else:
            groups.append(([day], text))
    parts = []
    for days, text in groups:
        if not text:
            continue
        names = WEEKDAYS[days[0]] if len(days) == 1 else f"{WEEKDAYS[days[0]]} to {WEEKDAYS[days[-1]]}"
        parts.append(f"{names} {text}")
    return "; ".join(parts) or "never open"


def _calendar(model: PolicyModel, cid: str, as_of: date) -> Section:
    cal = model.calendars[cid]
    region = (cal.holiday_country or "") + (f"/{cal.holiday_subdivision}" if cal.holiday_subdivision else "")
    hours = Entry(f"calendar:{cid}:hours", f"Calendar {cid} ({cal.timezone}): open {weekly_hours_words(cal.weekly_hours)}"
                  + (f", closed on the public holidays of {region}" if region else "") + ".")
    notes = [hours]
    for c in cal.closures:
        if not c.whole_day and as_of <= c.day < as_of + timedelta(days=365):
            span = f"{c.start.strftime('%H:%M') if c.start else '00:00'}–{c.end.strftime('%H:%M') if c.end else '24:00'}"
            notes.append(Entry(f"calendar:{cid}:closure:{c.day.isoformat()}",
                               f"{_long_date(c.day)}: closed {span} ({c.name or 'closure'})."))
    rows = []
    for offset in range(365):
        day = as_of + timedelta(days=offset)
        name = cal.holiday_name(day)
        if name:
            rows.append(Entry(f"calendar:{cid}:{day.isoformat()}", f"{_long_date(day)}: {name} (no {cid} business hours).",
                              (day.isoformat(), WEEKDAYS[day.weekday()], name)))
    return Section(f"calendars:{cid}", f"Business hours: {cid}",
                   f"Holidays and closures from {as_of.isoformat()} for one year.", tuple(notes),
                   ("Date", "Day", "Holiday or closure"), tuple(rows))


def _long_date(day: date) -> str:
    return f"{WEEKDAYS[day.weekday()]} {day.day} {day.strftime('%B %Y')}"
