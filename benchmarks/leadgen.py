"""A seeded generator of realistic leads for the example lead schema (schemas/lead.schema.json).

    from benchmarks.leadgen import generate_leads, write_jsonl
    leads = list(generate_leads(10_000, seed=7, now="2026-11-23T09:00:00+10:00"))   # JSON-ready dicts
    write_jsonl("leads.jsonl", 1_000_000, seed=7)                                        # streams to disk

    python -m benchmarks.leadgen -n 1000000 --seed 7 -o /tmp/leads.jsonl [--invalid-rate 0.001]

Same (n, seed, now, options) -> the same leads, byte for byte, on every platform (only `random.Random`
with an explicit seed and integer/ISO arithmetic are used). Distributions are skewed like a real CRM export:
most leads are small companies from a few countries with a handful of activities; a long tail has thousands
of employees, dozens of activities, SLA pauses, transition requests, nulls, extra CRM fields, future-dated
activities and the occasional student, competitor or bounced address. `invalid_rate` mixes in leads that
break the schema (wrong types, unknown enum values, bad date-times, missing id) so error paths are exercised.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import Any

DEFAULT_NOW = "2026-11-23T09:00:00+10:00"

# (value, weight) tables: skewed like an ANZ-headquartered SaaS company's inbound leads
COUNTRIES = [("AU", 46), ("NZ", 7), ("US", 12), ("GB", 8), ("SG", 5), ("IN", 4), ("CA", 2), ("DE", 2), ("IE", 1),
             ("FR", 1), ("JP", 1), ("MY", 1), ("ZA", 1), ("BR", 1), ("PH", 1), ("NL", 1), ("CN", 1), ("AR", 1),
             (None, 4)]  # fmt: skip
AU_STATES = [("NSW", 34), ("VIC", 27), ("QLD", 22), ("WA", 8), ("SA", 5), ("ACT", 2), ("TAS", 1), ("NT", 1)]
US_STATES = [("CA", 4), ("NY", 3), ("TX", 2), ("WA", 1), ("MA", 1)]
SENIORITY = [("individual", 38), ("manager", 22), ("director", 12), ("vp", 5), ("c_level", 6), ("student", 4),
             ("other", 8), (None, 5)]  # fmt: skip
INDUSTRIES = [("software", 22), ("financial_services", 10), ("healthcare", 8), ("manufacturing", 9), ("retail", 10),
              ("education", 6), ("government", 5), ("mining", 4), ("professional_services", 12), ("other", 9),
              (None, 5)]  # fmt: skip
SOURCES = [("website", 40), ("webinar", 10), ("event", 6), ("referral", 7), ("partner", 6), ("paid_search", 14),
           ("social", 7), ("outbound", 6), ("import", 4)]  # fmt: skip
COMPANY_DOMAINS = ["coralsoft.com.au", "harbourbank.com", "acme.io", "northwind.co.nz", "globex.com", "initech.com",
                   "umbrella.health", "stark.industries", "wayne.co", "tyrell.com", "cyberdyne.ai", "hooli.com",
                   "piedpiper.com", "soylent.com.au", "wonka.co.uk", "gringotts.sg", "oscorp.com", "aperture.tech"]  # fmt: skip
FREE_DOMAINS = ["gmail.com", "outlook.com", "yahoo.com.au", "bigpond.com", "hotmail.com", "icloud.com"]
EDU_DOMAINS = ["uq.edu", "stanford.edu", "unimelb.edu", "mit.edu"]
FIRST = ["Olivia", "Jack", "Mia", "Noah", "Ava", "Liam", "Chloe", "Lucas", "Zara", "Wei", "Priya", "Arjun", "Sofia",
         "Mateo", "Hana", "Kenji", "Amara", "Tane", "Isla", "Finn"]  # fmt: skip
LAST = ["Hart", "Nguyen", "Smith", "Patel", "Chen", "Williams", "Brown", "Kaur", "Tanaka", "Garcia", "Okafor",
        "Walker", "Ng", "Rossi", "Müller", "O'Brien", "Singh", "Kim", "Lee", "Wilson"]  # fmt: skip
TITLES = {"individual": "Analyst", "manager": "Operations Manager", "director": "Director of Sales",
          "vp": "VP Marketing", "c_level": "Chief Executive Officer", "student": "Student", "other": "Consultant"}
URLS = [("/pricing", 14), ("/pricing/enterprise", 3), ("/product/scoring", 10), ("/product/routing", 8),
        ("/product", 6), ("/blog/lead-scoring-101", 12), ("/blog/mql-vs-sql", 8), ("/", 15), ("/careers", 3),
        ("/docs/api", 4), ("/customers", 5)]  # fmt: skip
ASSETS = [("whitepaper", 35), ("ebook", 20), ("pricing_guide", 8), ("case_study", 15), ("blog", 10), ("datasheet", 12)]
ACTIVITY_TYPES = [("page_view", 40), ("email_open", 16), ("email_click", 10), ("content_download", 9),
                  ("form_fill", 5), ("webinar_attended", 4), ("event_attended", 1), ("demo_request", 2),
                  ("discovery_call_booked", 1), ("quote_request", 1), ("call_attempt", 5), ("unsubscribe", 1)]  # fmt: skip
STAGES = [(None, 30), ("subscriber", 12), ("lead", 22), ("mql", 14), ("sal", 4), ("sql", 8), ("opportunity", 2),
          ("customer", 1), ("nurture", 4), ("recycled", 2), ("disqualified", 1)]  # fmt: skip
TRANSITION_TARGETS = ["nurture", "disqualified", "recycled", "mql", "lead", "sql", "sal", "opportunity", "customer",
                      "nowhere"]  # fmt: skip
REASON_CODES = ["no-budget", "no-authority", "no-need", "bad-timing", "unresponsive", "wrong-contact", "competitor",
                "student", "bad-data", "re-engaged", "made-up-reason"]  # fmt: skip
ACCOUNT_OWNERS = ["alice.nguyen", "ben.taylor", "raj.patel", "emma.wilson", "fatima.ali", "mia.johnson",
                  "carol.external", "zed.partner"]  # fmt: skip


class _Picker:
    """Weighted choice from a (value, weight) table with precomputed cumulative weights."""

    __slots__ = ("values", "cum", "total")

    def __init__(self, table: list[tuple[Any, int]]):
        self.values = [v for v, _ in table]
        self.cum = []
        total = 0
        for _, w in table:
            total += w
            self.cum.append(total)
        self.total = total

    def __call__(self, rng: random.Random) -> Any:
        x = rng.random() * self.total
        for value, c in zip(self.values, self.cum):
            if x < c:
                return value
        return self.values[-1]


_country = _Picker(COUNTRIES)
_au_state = _Picker(AU_STATES)
_us_state = _Picker(US_STATES)
_seniority = _Picker(SENIORITY)
_industry = _Picker(INDUSTRIES)
_source = _Picker(SOURCES)
_url = _Picker(URLS)
_asset = _Picker(ASSETS)
_activity = _Picker(ACTIVITY_TYPES)
_stage = _Picker(STAGES)


def _iso(dt: datetime) -> str:
    return dt.isoformat()


def _employees(rng: random.Random) -> int:
    # log-normal-ish: median ~ 40, a long tail into the tens of thousands
    return max(1, int(rng.lognormvariate(3.7, 1.6)))


def _activities(rng: random.Random, now: datetime, engaged: float) -> list[dict[str, Any]]:
    n = min(int(rng.expovariate(1.0 / (1 + 8 * engaged))), 80)
    out = []
    zones = ("+10:00", "+11:00", "+00:00", "-05:00", "+08:00")
    for _ in range(n):
        kind = _activity(rng)
        age_hours = rng.expovariate(1.0 / (24 * 25))  # most within a month, a tail beyond a quarter
        if rng.random() < 0.02:
            age_hours = -rng.uniform(1, 72)  # future-dated (clock skew / scheduled): ignored by scoring
        at = (now - timedelta(hours=age_hours)).replace(microsecond=0)
        zone = zones[rng.randrange(len(zones))]
        at_local = at.astimezone(datetime.fromisoformat("2000-01-01T00:00:00" + zone).tzinfo)
        item: dict[str, Any] = {"type": kind, "at": _iso(at_local)}
        if kind == "page_view":
            item["url"] = _url(rng)
        elif kind == "content_download":
            asset_type = _asset(rng)
            item["asset_type"] = asset_type
            item["asset"] = f"{asset_type.replace('_', ' ').title()} #{rng.randrange(40)}"
        elif kind == "email_click" and rng.random() < 0.5:
            item["url"] = _url(rng) + "?utm_source=newsletter"
        if rng.random() < 0.03:
            item["campaign_id"] = f"CMP-{rng.randrange(1000):04d}"  # an undeclared CRM property
        out.append(item)
    rng.shuffle(out)  # CRMs export activities in no particular order
    return out


def _invalid(lead: dict[str, Any], rng: random.Random) -> dict[str, Any]:
    kind = rng.randrange(7)
    if kind == 0:
        lead["employees"] = "lots"
    elif kind == 1:
        lead["seniority"] = "intern"
    elif kind == 2:
        lead["stage_entered_at"] = "2026-11-20 09:00"  # no offset
    elif kind == 3:
        lead.pop("id", None)
    elif kind == 4:
        lead["activities"] = [{"type": "page_view", "at": "yesterday"}]
    elif kind == 5:
        lead["country"] = "Australia"
    else:
        lead["transition_request"] = {"to": "nurture", "why": "undeclared property"}
    return lead


def generate_lead(rng: random.Random, index: int, now: datetime, invalid_rate: float = 0.0) -> dict[str, Any]:
    """One lead (JSON-ready dict)."""
    country = _country(rng)
    seniority = _seniority(rng)
    first, last = FIRST[rng.randrange(len(FIRST))], LAST[rng.randrange(len(LAST))]
    lead: dict[str, Any] = {"id": f"L-{index:07d}"}
    r = rng.random()
    if r < 0.03:
        pass  # no e-mail at all
    elif seniority == "student" or r < 0.05:
        lead["email"] = f"{first.lower()}@{EDU_DOMAINS[rng.randrange(len(EDU_DOMAINS))]}"
    elif r < 0.22:
        lead["email"] = f"{first.lower()}.{last.lower()}{rng.randrange(100)}@{FREE_DOMAINS[rng.randrange(len(FREE_DOMAINS))]}"
    else:
        domain = COMPANY_DOMAINS[rng.randrange(len(COMPANY_DOMAINS))]
        lead["email"] = f"{first.lower()}.{last.lower()}@{domain}".replace("'", "")
    lead["first_name"] = first
    if rng.random() < 0.9:
        lead["last_name"] = last
    if seniority is not None:
        lead["seniority"] = seniority
        lead["job_title"] = TITLES[seniority]
    elif rng.random() < 0.3:
        lead["seniority"] = None  # explicit null: reads as missing
    if country is not None:
        lead["country"] = country
        if country == "AU" and rng.random() < 0.93:
            lead["state"] = _au_state(rng)
        elif country == "US" and rng.random() < 0.7:
            lead["state"] = _us_state(rng)
    if rng.random() < 0.92:
        lead["employees"] = _employees(rng)
    if country == "AU" and rng.random() < 0.55:
        lead["abn"] = f"{rng.randrange(10**10, 10**11):011d}"
    lead["source"] = _source(rng)
    for flag, p in (("is_student", 0.03 if seniority != "student" else 0.6), ("is_competitor", 0.015),
                    ("unsubscribed", 0.04), ("hard_bounced", 0.015), ("requested_quote", 0.04)):
        x = rng.random()
        if x < p:
            lead[flag] = True
        elif x < p + 0.25:
            lead[flag] = False
    if rng.random() < 0.06:
        lead["account_owner"] = ACCOUNT_OWNERS[rng.randrange(len(ACCOUNT_OWNERS))]
    if rng.random() < 0.85:
        company: dict[str, Any] = {"name": f"{last} {('Pty Ltd', 'Inc', 'Ltd', 'GmbH', 'Group')[rng.randrange(5)]}"}
        industry = _industry(rng)
        if industry is not None:
            company["industry"] = industry
        if rng.random() < 0.5:
            company["domain"] = lead.get("email", "x@example.com").split("@")[-1]
        if rng.random() < 0.4:
            company["annual_revenue"] = round(rng.lognormvariate(15, 1.5), 2)
        if rng.random() < 0.05:
            company["crm_segment"] = ("smb", "mid", "ent")[rng.randrange(3)]  # undeclared
        lead["company"] = company
    engaged = rng.random() ** 2  # most leads barely engage
    activities = _activities(rng, now, engaged)
    stage = _stage(rng)
    if stage is not None:
        lead["stage"] = stage
        if rng.random() < 0.8:
            entered = now - timedelta(hours=rng.expovariate(1.0 / 60))
            lead["stage_entered_at"] = _iso(entered.replace(microsecond=0))
    if stage in ("sql", "sal", "mql") and rng.random() < 0.4:
        for k in range(rng.randrange(0, 9)):
            at = now - timedelta(hours=rng.uniform(0, 40))
            activities.append({"type": "call_attempt", "at": _iso(at.replace(microsecond=0))})
    if activities or rng.random() < 0.3:
        lead["activities"] = activities
    if rng.random() < 0.07:
        to = TRANSITION_TARGETS[rng.randrange(len(TRANSITION_TARGETS))]
        request: dict[str, Any] = {"to": to}
        if rng.random() < 0.75:
            request["reason_code"] = REASON_CODES[rng.randrange(len(REASON_CODES))]
        if rng.random() < 0.3:
            request["by"] = "rep@example.com"
        lead["transition_request"] = request
    if stage in ("sql", "mql") and rng.random() < 0.15:
        start = now - timedelta(hours=rng.uniform(0, 30))
        pause: dict[str, Any] = {"from": _iso(start.replace(microsecond=0)), "reason": "waiting on customer"}
        if rng.random() < 0.7:
            pause["to"] = _iso((start + timedelta(hours=rng.uniform(0.5, 20))).replace(microsecond=0))
        lead["sla_pauses"] = [pause]
    if rng.random() < 0.02:
        lead["utm_campaign"] = "spring-promo"  # undeclared top-level CRM property
    if invalid_rate and rng.random() < invalid_rate:
        lead = _invalid(lead, rng)
    return lead


def generate_leads(n: int, seed: int = 7, now: str | datetime = DEFAULT_NOW, invalid_rate: float = 0.0,
                   start: int = 0) -> Iterator[dict[str, Any]]:
    """`n` leads (JSON-ready dicts), deterministic for (n, seed, now, invalid_rate, start)."""
    when = datetime.fromisoformat(now) if isinstance(now, str) else now
    rng = random.Random(seed)
    for i in range(start, start + n):
        yield generate_lead(rng, i, when, invalid_rate)


def write_jsonl(path: str, n: int, seed: int = 7, now: str | datetime = DEFAULT_NOW, invalid_rate: float = 0.0,
                malformed_rate: float = 0.0) -> int:
    """Write `n` lines of JSON Lines (compact JSON; `malformed_rate` adds unparseable lines). Returns bytes written."""
    rng = random.Random(seed + 1)
    written = 0
    out = sys.stdout if path == "-" else open(path, "w", encoding="utf-8")
    try:
        buf = []
        for lead in generate_leads(n, seed, now, invalid_rate):
            if malformed_rate and rng.random() < malformed_rate:
                line = '{"id": "broken", "employees": 12,'
            else:
                line = json.dumps(lead, ensure_ascii=False, separators=(",", ":"))
            buf.append(line)
            if len(buf) >= 10_000:
                text = "\n".join(buf) + "\n"
                out.write(text)
                written += len(text)
                buf.clear()
        if buf:
            text = "\n".join(buf) + "\n"
            out.write(text)
            written += len(text)
    finally:
        if out is not sys.stdout:
            out.close()
    return written


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description="Write seeded, realistic leads as JSON Lines.")
    p.add_argument("-n", type=int, default=10_000, help="number of leads (default 10000)")
    p.add_argument("--seed", type=int, default=7)
    p.add_argument("--now", default=DEFAULT_NOW, help="activities and stage times are generated relative to this")
    p.add_argument("--invalid-rate", type=float, default=0.0, help="share of leads that violate the lead schema")
    p.add_argument("--malformed-rate", type=float, default=0.0, help="share of lines that are not JSON")
    p.add_argument("-o", "--output", default="-", help="output file (default: stdout)")
    a = p.parse_args(argv)
    write_jsonl(a.output, a.n, a.seed, a.now, a.invalid_rate, a.malformed_rate)


if __name__ == "__main__":
    main()
