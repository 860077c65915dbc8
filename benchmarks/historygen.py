"""Seeded leads WITH history for the scorecard: stage entries, owner assignments and sales activities.

    from benchmarks.historygen import generate_histories
    leads = list(generate_histories(1000, seed=11, now="2026-11-27T17:00:00+10:00"))

    python -m benchmarks.historygen -n 1000 --seed 11 --now 2026-11-27T17:00:00+10:00 -o leads.jsonl

Built on benchmarks.leadgen (the same firmographics and marketing activities), then each lead lives through a
lifecycle over the `weeks` before `now`: created (mostly in business hours), some become MQLs, sales accepts
some (SAL), some become SQLs (a few straight from a demo request), and SQLs are worked and become
opportunities, or are disqualified / handed back with a reason code, sometimes before the six required call
attempts. Owners are assigned after a short system delay (a tail of hours). Sales touches carry an actor (the
owner, now and then a teammate or someone else), a direction and an outcome; most first touches come within
hours, a tail within days, some never; reps work their own hours, so a Friday-evening SQL is called on Monday.
Some inbound activities (the lead calling us) never count as touches. Same (n, seed, now, weeks) -> same leads.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from benchmarks.leadgen import _activities, generate_lead

DEFAULT_NOW = "2026-11-27T17:00:00+10:00"
# team -> (members, time zone) as in policies/teams.yaml
TEAMS = {
    "anz-enterprise": (["alice.nguyen", "alice.nguyen", "ben.taylor", "raj.patel"], "Australia/Brisbane"),
    "seq-smb": (["chloe.smith", "dylan.jones"], "Australia/Brisbane"),
    "anz-mid-market": (["fatima.ali", "fatima.ali", "fatima.ali", "george.brown", "george.brown", "hannah.lee"],
                       "Australia/Sydney"),
    "apac": (["ivan.tan", "jia.wong"], "Asia/Singapore"),
    "emea": (["karl.schmidt", "lucy.evans"], "Europe/London"),
    "americas": (["mia.johnson", "mia.johnson", "liam.davis"], "America/New_York"),
}
OUTCOMES = [("no_answer", 50), ("voicemail", 25), ("connected", 20), ("bad_number", 5)]
REASONS_DQ = [("no-budget", 30), ("no-need", 22), ("unresponsive", 20), ("no-authority", 12), ("bad-data", 8),
              ("competitor", 4), ("student", 4)]  # fmt: skip
REASONS_BACK = [("bad-timing", 45), ("no-need", 20), ("wrong-contact", 20), ("no-budget", 15)]


def _pick(rng: random.Random, table: list[tuple[str, int]]) -> str:
    return rng.choices([v for v, _ in table], [w for _, w in table])[0]


def _team(lead: dict[str, Any]) -> str | None:
    country, state, size = lead.get("country"), lead.get("state"), lead.get("employees") or 0
    if country in ("AU", "NZ"):
        if size >= 1000:
            return "anz-enterprise"
        return "seq-smb" if state == "QLD" and size < 200 else "anz-mid-market"
    return {"SG": "apac", "IN": "apac", "MY": "apac", "PH": "apac", "JP": "apac", "CN": "apac",
            "GB": "emea", "DE": "emea", "FR": "emea", "IE": "emea", "NL": "emea", "ZA": "emea",
            "US": "americas", "CA": "americas", "BR": "americas", "AR": "americas"}.get(country or "")


def _working(at: datetime, zone: ZoneInfo, rng: random.Random) -> datetime:
    """`at`, or the next working morning in the rep's zone when it falls outside 08:30-18:00 Mon-Fri."""
    local = at.astimezone(zone)
    if local.weekday() < 5 and (8, 30) <= (local.hour, local.minute) < (18, 0):
        return at
    day = local.date() + timedelta(days=0 if (local.hour, local.minute) < (8, 30) else 1)
    while day.weekday() >= 5:
        day += timedelta(days=1)
    start = datetime(day.year, day.month, day.day, 8, 30, tzinfo=zone) + timedelta(minutes=rng.expovariate(1 / 50))
    return start.astimezone(at.tzinfo)


def _first_touch_delay(rng: random.Random) -> timedelta | None:
    r = rng.random()
    if r < 0.40:
        return timedelta(minutes=rng.expovariate(1 / 12))
    if r < 0.72:
        return timedelta(hours=rng.uniform(1, 8))
    if r < 0.88:
        return timedelta(hours=rng.uniform(24, 96))
    return None  # never touched


def _created(rng: random.Random, now: datetime, weeks: int) -> datetime:
    at = now - timedelta(seconds=rng.uniform(0, weeks * 7 * 86400))
    if rng.random() < 0.7:  # most inbound leads arrive in the working day
        local = at.astimezone(ZoneInfo("Australia/Brisbane"))
        at = local.replace(hour=rng.randrange(8, 18), minute=rng.randrange(60))
    return min(at, now - timedelta(minutes=1)).replace(microsecond=0)


def generate_history(rng: random.Random, index: int, now: datetime, weeks: int = 8,
                     extra_activities: float = 0.0) -> dict[str, Any]:
    """One lead with history; `extra_activities`: that many more page views on average (benchmark volume)."""
    lead = generate_lead(rng, index, now)
    for key in ("stage", "stage_entered_at", "transition_request", "sla_pauses", "activities"):
        lead.pop(key, None)
    created = _created(rng, now, weeks)
    lead["created_at"] = created.isoformat()
    history: list[dict[str, Any]] = [{"stage": "lead", "at": created}]
    owners: list[dict[str, Any]] = []
    acts = _activities(rng, created, rng.random() ** 2)
    for _ in range(int(rng.expovariate(1 / extra_activities)) if extra_activities else 0):
        acts.append({"type": "page_view", "at": (created - timedelta(hours=rng.uniform(0, 900))).isoformat(),
                     "url": "/product"})
    team = _team(lead)
    members, zone = TEAMS.get(team or "", ([], "Australia/Brisbane"))
    tz = ZoneInfo(zone)
    owner = members[rng.randrange(len(members))] if members else "queue:global-triage"
    mql_at = sql_at = None
    r = rng.random()
    if r < 0.06:
        sql_at = created + timedelta(minutes=rng.expovariate(1 / 30))  # a demo request: straight to SQL
        acts.append({"type": "demo_request", "at": created.isoformat()})
    elif r < 0.50:
        mql_at = created + timedelta(hours=rng.expovariate(1 / 40))
    if mql_at is not None:
        history.append({"stage": "mql", "at": mql_at})
        assigned = mql_at + timedelta(minutes=rng.expovariate(1 / 8) if rng.random() < 0.93 else rng.uniform(60, 600))
        owners.append({"owner": owner, "at": assigned})
        answer = _working(assigned + timedelta(hours=rng.expovariate(1 / 6)), tz, rng)
        s = rng.random()
        if s < 0.55:
            history.append({"stage": "sal", "at": answer, "by": owner})
            if rng.random() < 0.7:
                sql_at = answer + timedelta(hours=rng.expovariate(1 / 30))
        elif s < 0.72:
            history.append({"stage": "nurture", "at": answer, "by": owner,
                            "reason_code": _pick(rng, REASONS_BACK)})
    if sql_at is not None:
        history.append({"stage": "sql", "at": sql_at})
        if not owners:
            owners.append({"owner": owner, "at": sql_at + timedelta(minutes=rng.expovariate(1 / 6))})
        elif rng.random() < 0.05 and len(members) > 1:  # reassigned at SQL time
            owner = next(m for m in members if m != owner)
            owners.append({"owner": owner, "at": sql_at + timedelta(minutes=rng.expovariate(1 / 10))})
        _work_sql(rng, lead, history, acts, sql_at, owner, members, tz, now)
    if rng.random() < 0.04 and sql_at is not None:
        start = sql_at + timedelta(minutes=rng.uniform(10, 120))
        pause: dict[str, Any] = {"from": start.replace(microsecond=0).isoformat(), "reason": "waiting on customer"}
        if rng.random() < 0.75:
            pause["to"] = (start + timedelta(hours=rng.uniform(2, 48))).replace(microsecond=0).isoformat()
        lead["sla_pauses"] = [pause]
    history = [h for h in history if h["at"] <= now]
    lead["stage"] = history[-1]["stage"]
    lead["stage_entered_at"] = history[-1]["at"].replace(microsecond=0).isoformat()
    lead["stage_history"] = [{**h, "at": h["at"].replace(microsecond=0).isoformat()} for h in history]
    lead["owner_history"] = [{"owner": o["owner"], "at": o["at"].replace(microsecond=0).isoformat()}
                             for o in owners if o["at"] <= now]
    timed = sorted(((datetime.fromisoformat(a["at"]), a) for a in acts), key=lambda ta: ta[0])
    lead["activities"] = [a for at, a in timed if at <= now or "actor" not in a]  # marketing keeps its future-dated noise
    return lead


def _work_sql(rng: random.Random, lead: dict[str, Any], history: list[dict[str, Any]], acts: list[dict[str, Any]],
              sql_at: datetime, owner: str, members: list[str], tz: ZoneInfo, now: datetime) -> None:
    """Sales works the SQL: first touch, follow-up attempts, then an outcome (or still open at `now`)."""
    delay = _first_touch_delay(rng)
    if rng.random() < 0.08:  # the lead calls us: inbound, never a touch
        acts.append({"type": "call_attempt", "at": (sql_at + timedelta(minutes=rng.uniform(1, 90))).isoformat(),
                     "actor": owner, "direction": "inbound", "outcome": "connected"})
    attempts = 0
    at = sql_at
    if delay is not None:
        at = _working(sql_at + delay, tz, rng)
        for k in range(rng.choice((1, 2, 3, 4, 5, 6, 6, 7, 8))):
            r = rng.random()
            actor = owner if r < 0.9 else (members[rng.randrange(len(members))] if r < 0.97 and members else "sdr.pool")
            kind = "call_attempt" if k == 0 or rng.random() < 0.7 else "email_sent"
            item = {"type": kind, "at": at.replace(microsecond=0).isoformat(), "actor": actor, "direction": "outbound",
                    "outcome": _pick(rng, OUTCOMES) if kind == "call_attempt" else "sent"}
            acts.append(item)
            attempts += kind == "call_attempt"
            if item["outcome"] == "connected" and rng.random() < 0.5:
                meet = _working(at + timedelta(days=rng.uniform(1, 5)), tz, rng)
                acts.append({"type": "meeting", "at": meet.replace(microsecond=0).isoformat(), "actor": actor,
                             "direction": "outbound", "outcome": "held" if rng.random() < 0.85 else "no_show"})
                break
            at = _working(at + timedelta(hours=rng.uniform(3, 40)), tz, rng)
    s = rng.random()
    end = at + timedelta(hours=rng.uniform(2, 72))
    if s < 0.30:
        history.append({"stage": "opportunity", "at": end, "by": owner})
    elif s < 0.55:
        history.append({"stage": "disqualified", "at": end, "by": owner, "reason_code": _pick(rng, REASONS_DQ)})
    elif s < 0.65:
        history.append({"stage": "nurture", "at": end, "by": owner, "reason_code": _pick(rng, REASONS_BACK)})


def generate_histories(n: int, seed: int = 11, now: str | datetime = DEFAULT_NOW, weeks: int = 8,
                       start: int = 0, extra_activities: float = 0.0) -> Iterator[dict[str, Any]]:
    """`n` leads with history (JSON-ready dicts), deterministic for (n, seed, now, weeks, start, extra_activities)."""
    when = datetime.fromisoformat(now) if isinstance(now, str) else now
    rng = random.Random(seed)
    for i in range(start, start + n):
        yield generate_history(rng, i, when, weeks, extra_activities)


def write_histories(path: str, n: int, seed: int = 11, now: str = DEFAULT_NOW, weeks: int = 8,
                    extra_activities: float = 0.0) -> int:
    """Write `n` leads as JSON Lines; returns the number of activities written."""
    activities = 0
    out = sys.stdout if path == "-" else open(path, "w", encoding="utf-8")
    try:
        for lead in generate_histories(n, seed, now, weeks, extra_activities=extra_activities):
            activities += len(lead.get("activities", ()))
            out.write(json.dumps(lead, ensure_ascii=False, separators=(",", ":")) + "\n")
    finally:
        if out is not sys.stdout:
            out.close()
    return activities


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description="Write seeded leads with stage, owner and activity history as JSON Lines.")
    p.add_argument("-n", type=int, default=1000)
    p.add_argument("--seed", type=int, default=11)
    p.add_argument("--now", default=DEFAULT_NOW, help="the history ends here")
    p.add_argument("--weeks", type=int, default=8, help="leads are created over this many weeks before --now")
    p.add_argument("--extra-activities", type=float, default=0.0, help="more page views per lead on average")
    p.add_argument("-o", "--output", default="-")
    a = p.parse_args(argv)
    count = write_histories(a.output, a.n, a.seed, a.now, a.weeks, a.extra_activities)
    print(f"{a.n} leads, {count} activities", file=sys.stderr)


if __name__ == "__main__":
    main()
