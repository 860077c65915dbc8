"""The example policy set (policies/*.yaml) written by hand as plain Python: the speed baseline.

`decide(lead, now)` takes the same decoded-JSON lead dict leadops takes and returns the score (total, groups,
grade, fired rules with points), the stage move and the route -- what a careful engineer would write without
a rules engine: constants inlined, one pass over the activities, no explanation strings, no schema validation
beyond what the logic needs (timestamps are parsed, because the windows need them). It is held to the same
answers as leadops on every generated lead by `check()` (run by benchmarks/run.py before timing anything).

It knows nothing of other policies: change policies/*.yaml and this file must change too (check() says so).
"""

from __future__ import annotations

import hashlib
import math
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from engine.expr.functions import FREE_EMAIL_DOMAINS

DAY = timedelta(days=1)
D30, D60, D90 = timedelta(days=30), timedelta(days=60), timedelta(days=90)
DECAY_EVERY = timedelta(days=30)
PIPELINE = ("subscriber", "lead", "mql", "sal", "sql", "opportunity", "customer")
PIPELINE_INDEX = {s: i for i, s in enumerate(PIPELINE)}
MANUAL = frozenset({"sal", "opportunity", "customer"})
DETOURS = ("nurture", "recycled", "disqualified")
ALL_STAGES = PIPELINE + DETOURS
# stage -> {target: reason_required}; detour auto transitions separately
TRANSITIONS = {
    "mql": {"nurture": True, "disqualified": True},
    "sal": {"mql": True, "nurture": True, "disqualified": True},
    "sql": {"nurture": True, "recycled": True, "disqualified": True},
    "opportunity": {"recycled": True},
    "nurture": {"mql": False},
    "recycled": {"mql": False},
    "disqualified": {"lead": True},
}
AUTO = {"nurture": "mql", "recycled": "mql"}
REASON_CODES = ("no-budget", "no-authority", "no-need", "bad-timing", "unresponsive", "wrong-contact", "competitor",
                "student", "bad-data", "re-engaged")  # fmt: skip
REASON_SET = frozenset(REASON_CODES)
ANZ = ("AU", "NZ")
APAC = frozenset({"SG", "MY", "ID", "PH", "TH", "VN", "IN", "JP", "KR", "HK"})
EMEA = frozenset({"GB", "IE", "DE", "FR", "NL", "SE", "DK", "NO", "FI", "ES", "IT", "ZA", "AE"})
AMERICAS = ("US", "CA", "MX", "BR")
TARGET_INDUSTRIES = ("software", "financial_services", "healthcare", "professional_services")
BRISBANE, SYDNEY = ZoneInfo("Australia/Brisbane"), ZoneInfo("Australia/Sydney")
SINGAPORE, LONDON, NEW_YORK = ZoneInfo("Asia/Singapore"), ZoneInfo("Europe/London"), ZoneInfo("America/New_York")
# team -> (zone, [(member, weight, active, [(from, to)])])
TEAMS = {
    "anz-enterprise": (BRISBANE, [("alice.nguyen", 2, True, ()), ("ben.taylor", 1, True, ()),
                                  ("raj.patel", 1, True, ((date(2026, 12, 21), date(2027, 1, 8)),))]),
    "seq-smb": (BRISBANE, [("chloe.smith", 1, True, ()), ("dylan.jones", 1, True, ()), ("emma.wilson", 1, False, ())]),
    "anz-mid-market": (SYDNEY, [("fatima.ali", 3, True, ()), ("george.brown", 2, True, ()), ("hannah.lee", 1, True, ())]),
    "apac": (SINGAPORE, [("ivan.tan", 1, True, ()), ("jia.wong", 1, True, ())]),
    "emea": (LONDON, [("karl.schmidt", 1, True, ()), ("lucy.evans", 1, True, ())]),
    "americas": (NEW_YORK, [("mia.johnson", 2, True, ()), ("liam.davis", 1, True, ())]),
}  # fmt: skip
MEMBER_TEAM: dict[str, str] = {}
for _team, (_zone, _members) in TEAMS.items():
    for _m in _members:
        MEMBER_TEAM.setdefault(_m[0], _team)
TWO_64 = float(2**64)


def _url(a: dict[str, Any]) -> str:
    return a.get("url") or ""


# (rule, activity type, window, points, limit, decays, where)
ACTIVITY_RULES = (
    ("pricing-page", "page_view", D30, 20, 1, True, lambda a: _url(a).startswith("/pricing")),
    ("product-pages", "page_view", D30, 3, 3, True, lambda a: _url(a).startswith("/product")),
    ("whitepaper", "content_download", D90, 5, 3, True, lambda a: a.get("asset_type") in ("whitepaper", "ebook")),
    ("pricing-guide", "content_download", D90, 15, 1, True, lambda a: a.get("asset_type") == "pricing_guide"),
    ("webinar", "webinar_attended", D90, 20, 2, True, None),
    ("event", "event_attended", D90, 40, 1, True, None),
    ("form-fill", "form_fill", D90, 10, 2, True, None),
    ("email-click", "email_click", D30, 2, 5, True, None),
    ("demo-request", "demo_request", D60, 40, 1, False, None),
    ("quote-request", "quote_request", D60, 50, 1, False, None),
)


def _num(x: float) -> float | int:
    x = round(x, 2)
    return int(x) if x == int(x) else x


def _available(team: str, now: datetime) -> list[tuple[str, int]]:
    zone, members = TEAMS[team]
    today = now.astimezone(zone).date()
    return [(m, w) for m, w, active, away in members if active and not any(a <= today <= b for a, b in away)]


def _pick(lead_id: str, members: list[tuple[str, int]]) -> str:
    best, best_key = "", None
    for m, w in members:
        digest = hashlib.sha256(f"{lead_id}\x00{m}".encode()).digest()
        u = (int.from_bytes(digest[:8], "big") + 0.5) / TWO_64
        key = (-w / math.log(u), m)
        if best_key is None or key > best_key:
            best, best_key = m, key
    return best


def _route(lead: dict[str, Any], lead_id: str, now: datetime, stage: str) -> dict[str, Any]:
    g = lead.get
    country, employees = g("country"), g("employees")
    owner = g("account_owner")
    if owner is not None:
        if owner != "":
            team = MEMBER_TEAM.get(owner)
            if team is None:
                return {"rule": "existing-account-owner", "queue": None, "team": None, "owner": owner, "fallback": False}
            if owner in dict(_available(team, now)):
                return {"rule": "existing-account-owner", "queue": None, "team": team, "owner": owner, "fallback": False}
    if stage in DETOURS or g("is_competitor"):
        return {"rule": "back-to-marketing", "queue": "marketing-nurture", "team": None, "owner": None, "fallback": False}
    if g("is_student") or g("seniority") == "student":
        return {"rule": "students", "queue": "marketing-nurture", "team": None, "owner": None, "fallback": False}
    if g("source") == "partner":
        return {"rule": "partner-referrals", "queue": "partner-desk", "team": None, "owner": None, "fallback": False}
    candidates = []
    if country in ANZ:
        industry = (g("company") or {}).get("industry")
        if employees is not None and employees >= 1000:
            candidates.append(("anz-enterprise", "anz-enterprise"))
        if industry in ("government", "education"):
            candidates.append(("anz-public-sector", "anz-enterprise"))
        if country == "AU" and g("state") == "QLD" and employees is not None and employees < 101:
            candidates.append(("seq-smb", "seq-smb"))
        if employees is not None and employees >= 101:
            candidates.append(("anz-mid-market", "anz-mid-market"))
        candidates.append(("anz-smb", "anz-mid-market"))
    elif country in APAC:
        candidates.append(("apac", "apac"))
    elif country in EMEA:
        candidates.append(("emea", "emea"))
    elif country in AMERICAS:
        candidates.append(("americas", "americas"))
    for rule, team in candidates:
        members = _available(team, now)
        if members:
            return {"rule": rule, "queue": None, "team": team, "owner": _pick(lead_id, members), "fallback": False}
    return {"rule": "global-triage", "queue": "global-triage", "team": None, "owner": None, "fallback": True}


def decide(lead: dict[str, Any], now: datetime) -> dict[str, Any]:
    g = lead.get
    lead_id = str(lead["id"])
    # ---- activities: parse, drop future ones, newest first per type
    by_type: dict[str, list[tuple[datetime, dict]]] = {}
    for a in g("activities") or ():
        at = datetime.fromisoformat(a["at"])
        if at <= now:
            by_type.setdefault(a["type"], []).append((at, a))
    for items in by_type.values():
        if len(items) > 1:
            items.sort(key=lambda x: x[0], reverse=True)
    # ---- fit
    fired: list[tuple[str, str, float | int]] = []
    employees, country, seniority, email = g("employees"), g("country"), g("seniority"), g("email")
    is_student, is_competitor = g("is_student"), g("is_competitor")
    company = g("company") or {}
    fit = 0.0
    if employees is not None and employees >= 50:
        fit += 15; fired.append(("icp-employees-50-plus", "fit", 15))  # noqa: E702
    if employees is not None and employees >= 1000:
        fit += 10; fired.append(("enterprise-1000-plus", "fit", 10))  # noqa: E702
    if g("abn") is not None:
        fit += 10; fired.append(("has-abn", "fit", 10))  # noqa: E702
    if country in ANZ:
        fit += 10; fired.append(("anz-territory", "fit", 10))  # noqa: E702
    if country == "AU" and g("state") == "QLD":
        fit += 5; fired.append(("seq-territory", "fit", 5))  # noqa: E702
    if company.get("industry") in TARGET_INDUSTRIES:
        fit += 10; fired.append(("target-industry", "fit", 10))  # noqa: E702
    if seniority in ("c_level", "vp", "director"):
        fit += 15; fired.append(("decision-maker", "fit", 15))  # noqa: E702
    if seniority == "manager":
        fit += 8; fired.append(("manager", "fit", 8))  # noqa: E702
    if email is not None:
        at = email.rfind("@")
        domain = email[at + 1:].strip().lower().rstrip(".") if at >= 0 else ""
        if domain and domain in FREE_EMAIL_DOMAINS:
            fit += -10; fired.append(("free-email", "fit", -10))  # noqa: E702
    if is_student or seniority == "student" or (email is not None and email.lower().endswith(".edu")):
        fit += -40; fired.append(("student", "fit", -40))  # noqa: E702
    if is_competitor:
        fit += -100; fired.append(("competitor", "fit", -100))  # noqa: E702
    fit = min(max(fit, -100), 100) if -100 <= fit <= 100 else (100 if fit > 100 else -100)
    # ---- engagement (condition rules first, then activities; decay x0.5 per full 30 days, not demo/quote)
    engagement = 0.0

    if g("unsubscribed"):
        engagement += -100; fired.append(("unsubscribed", "engagement", -100))  # noqa: E702
    if g("hard_bounced"):
        engagement += -50; fired.append(("hard-bounce", "engagement", -50))  # noqa: E702
    if by_type:
        for rule_id, kind, window, points, limit, decays, where in ACTIVITY_RULES:
            items = by_type.get(kind)
            if not items:
                continue
            got, n = 0.0, 0
            for at, a in items:
                age = now - at
                if age > window:
                    break
                if where is not None and not where(a):
                    continue
                got += points * 0.5 ** (age // DECAY_EVERY) if decays else points
                n += 1
                if n >= limit:
                    break
            if n:
                got = round(got, 2)
                engagement += got
                fired.append((rule_id, "engagement", _num(got)))
    engagement = 100 if engagement > 100 else (0 if engagement < 0 else engagement)
    fit_n, eng_n = _num(fit), _num(engagement)
    total = _num(fit + engagement)
    fit_grade = "A" if fit >= 60 else "B" if fit >= 35 else "C" if fit >= 15 else "D"
    eng_grade = "1" if engagement >= 60 else "2" if engagement >= 30 else "3" if engagement >= 10 else "4"
    score = {"total": total, "groups": {"fit": fit_n, "engagement": eng_n}, "grade": fit_grade + eng_grade,
             "fired": fired}
    # ---- stage
    recent = now - D30

    def has(kind: str) -> bool:
        return any(at >= recent for at, _ in by_type.get(kind, ()))

    def entry(stage: str) -> bool:
        if stage == "lead":
            return email is not None and not g("unsubscribed") and not g("hard_bounced")
        if stage == "mql":
            return (total >= 30 and fit_n >= 10 and not is_competitor and not is_student
                    and not g("unsubscribed") and not g("hard_bounced"))
        if stage == "sql":
            return total >= 50 and not is_competitor and bool(
                g("requested_quote") or has("quote_request") or has("discovery_call_booked") or has("demo_request"))
        return False

    current = g("stage") or "subscriber"
    if current not in PIPELINE_INDEX and current not in TRANSITIONS:
        raise ValueError(f"unknown stage {current!r}")
    result: dict[str, Any] = {"from": current, "to": current, "changed": False, "rule": None}
    request = g("transition_request")
    if request is not None:
        to, code = request.get("to"), request.get("reason_code")
        reason = _refusal(current, to, code, entry, lead, by_type)
        if reason is None:
            result.update(to=to, changed=to != current, rule=f"transition:{current}->{to}")
            if code is not None:
                result["reason_code"] = code
            return {"score": score, "stage": result, "route": _route(lead, lead_id, now, to)}
        result["rejected"] = {"to": to, "reason_code": code, "reason": reason}
        return {"score": score, "stage": result, "route": _route(lead, lead_id, now, current)}  # refused: stays
    start, rule = current, None
    if current in AUTO:
        if entry(AUTO[current]):
            start, rule = AUTO[current], f"stage:{AUTO[current]}"
    if start in PIPELINE_INDEX:
        for stage in ("sql", "mql", "lead"):
            if PIPELINE_INDEX[stage] <= PIPELINE_INDEX[start]:
                break
            if entry(stage):
                start, rule = stage, f"stage:{stage}"
                break
    if start != current:
        result.update(to=start, changed=True, rule=rule)
    return {"score": score, "stage": result, "route": _route(lead, lead_id, now, result["to"])}


def _refusal(current: str, to: Any, code: Any, entry: Any, lead: dict[str, Any], by_type: dict) -> str | None:
    if not isinstance(to, str) or to not in ALL_STAGES:
        return f"'{to}' is not a stage of this policy (stages: {', '.join(ALL_STAGES)})"
    if to == current:
        return f"the lead is already in '{to}'"
    declared = TRANSITIONS.get(current, {})
    if to not in declared:
        if not (current in PIPELINE_INDEX and to in PIPELINE_INDEX and PIPELINE_INDEX[to] > PIPELINE_INDEX[current]):
            allowed = ", ".join(declared) or "none"
            return f"no transition from '{current}' to '{to}' is declared (allowed from {current}: {allowed})"
        if to not in MANUAL and not entry(to):
            return f"the entry criteria of '{to}' do not hold"
    elif declared[to] and not code:
        return f"moving from '{current}' to '{to}' requires a reason code (one of: {', '.join(REASON_CODES)})"
    if code is not None and code not in REASON_SET:
        return f"unknown reason code '{code}' (known: {', '.join(REASON_CODES)})"
    if current == "sql" and to in ("disqualified", "nurture", "recycled"):
        entered = lead.get("stage_entered_at")
        since = datetime.fromisoformat(entered) if entered is not None else None
        made = sum(1 for at, _ in by_type.get("call_attempt", ()) if since is None or at >= since)
        if made < 6:
            return (f"SLA 'sql-first-response' requires 6 call_attempt activities before a lead in 'sql' may move "
                    f"to '{to}'; {made} recorded")
    return None


def leadops_view(decision: dict[str, Any]) -> dict[str, Any]:
    """The parts of a leadops decision the hand-written function computes, in its shape."""
    s = decision["score"]
    return {"score": {"total": s["total"], "groups": s["groups"], "grade": s["grade"],
                      "fired": [(f["rule"], f["group"], f["points"]) for f in s["fired"]]},
            "stage": decision["stage"], "route": decision["route"]}


def check(ps: Any, leads: list[dict[str, Any]], now: datetime) -> int:
    """Assert decide() == leadops on every lead (score, groups, grade, fired rules + points, stage, route)."""
    from engine.errors import LeadError

    checked = 0
    for lead in leads:
        try:
            expected = leadops_view(ps.evaluate(lead, now).to_dict())
        except LeadError:
            continue
        got = decide(lead, now)
        if got != expected:
            raise AssertionError(f"hand-written baseline differs from leadops on lead {lead.get('id')}:\n"
                                 f"  leadops     {expected}\n  handwritten {got}")
        checked += 1
    return checked
