"""The starter policy set `leadops init` writes by default: small, valid, with every value to replace marked.

A new team should not begin by deleting someone else's company (the full Acme example stays available with
`leadops init --example`). The starter has one of each thing — a stage pipeline, two score groups, a team,
a queue, one calendar in the team's own region, one SLA — and one scenario that passes, so `leadops validate`
and `leadops test` are green from the first commit. Every line marked PLACEHOLDER is a starting value to
replace (`grep -rn PLACEHOLDER policies scenarios`).
"""

from __future__ import annotations

from dataclasses import dataclass

MARK = "PLACEHOLDER"


@dataclass(frozen=True)
class Region:
    """Where the team works: the calendar's time zone and the public holidays it observes."""

    time_zone: str = "UTC"
    country: str | None = None
    subdivision: str | None = None

    def holidays_line(self) -> str:
        if not self.country:
            return f"    # holidays: {{country: US, subdivision: NY}}   # {MARK}: your public holidays (leadops init --country)\n"
        sub = f", subdivision: {self.subdivision}" if self.subdivision else ""
        return f"    holidays: {{country: {self.country}{sub}}}\n"


LEADOPS = """\
# yaml-language-server: $schema=../schemas/leadops.schema.json
# The policy set: its name, the lead schema its expressions are checked against, and who approves what.
# Lines marked PLACEHOLDER hold starting values to replace: grep -rn PLACEHOLDER policies scenarios
kind: policy-set
name: {name}
version: "0.1.0"
description: >
  PLACEHOLDER: what these policies decide for your revenue team, in a sentence.
lead_schema: ../schemas/lead.schema.json
guard:
  # A change that moves more than this share of leads to another stage or route needs an acknowledgement.
  max_changed_percent: 10
owners:
  groups:
    marketing:
      description: Marketing approvers of scoring, stages and SLAs
      members: [replace-with-marketing-github-handle]   # PLACEHOLDER, then run `leadops codeowners`
    sales:
      description: Sales approvers of scoring, stages, routing and SLAs
      members: [replace-with-sales-github-handle]   # PLACEHOLDER, then run `leadops codeowners`
  areas:
    scoring: {{files: [scoring.yaml], approvers: [marketing, sales]}}
    stages: {{files: [stages.yaml], approvers: [marketing, sales]}}
    routing: {{files: [routing.yaml, teams.yaml], approvers: [sales]}}
    slas: {{files: [slas.yaml, calendars.yaml], approvers: [sales, marketing]}}
    policy-set: {{files: [leadops.yaml], approvers: [sales]}}
"""

STAGES = """\
# yaml-language-server: $schema=../schemas/stages.schema.json
# Lifecycle stages. A lead moves forward to the furthest pipeline stage whose entry criteria hold; detours
# and backward moves happen only through a declared transition (with a reason code when required).
kind: stages
initial: new
pipeline:
  - id: new
    side: marketing
    description: A person we can contact.
    entry: present(lead.email) and not lead.unsubscribed and not lead.hard_bounced
  - id: mql
    side: marketing
    description: Marketing qualified. PLACEHOLDER - your definition, agreed with Sales.
    entry: score.total >= 40 and not lead.is_competitor and not lead.unsubscribed   # PLACEHOLDER threshold
    transitions:
      - {to: nurture, reason_required: true}
      - {to: disqualified, reason_required: true}
  - id: sql
    side: sales
    description: Sales accepted the lead and will work it (set from the CRM).
    manual: true
    transitions:
      - {to: nurture, reason_required: true}
      - {to: disqualified, reason_required: true}
detours:
  - id: nurture
    side: marketing
    description: Not ready yet; back to MQL as soon as it qualifies again.
    transitions:
      - {to: mql, auto: true}
  - id: disqualified
    side: marketing
    description: Not a buyer.
reason_codes:
  - {code: no-budget, description: No budget this year}
  - {code: no-authority, description: Not a decision maker}
  - {code: bad-fit, description: Outside our ideal customer profile}
"""

SCORING = """\
# yaml-language-server: $schema=../schemas/scoring.schema.json
# Lead score = fit (who they are) + engagement (what they did). PLACEHOLDER rules and points: replace them
# with your ideal customer profile and the signals your team trusts.
kind: scoring
grade: [fit, engagement]
groups:
  - id: fit
    cap: 60
    floor: -100
    grades:
      - {grade: A, min: 40}
      - {grade: B, min: 20}
      - {grade: C}
    rules:
      - id: company-size
        description: PLACEHOLDER - companies the size you sell to
        when: lead.employees >= 50
        points: 20
      - id: decision-maker
        description: PLACEHOLDER - the seniority that buys
        when: lead.seniority in ["director", "vp", "c_level"]
        points: 15
      - id: free-email
        when: is_free_email(lead.email)
        points: -10
      - id: competitor
        when: lead.is_competitor
        points: -100
  - id: engagement
    cap: 50
    floor: 0
    grades:
      - {grade: "1", min: 30}
      - {grade: "2", min: 10}
      - {grade: "3"}
    rules:
      - id: pricing-page
        description: PLACEHOLDER - the pages that show buying intent
        activity: page_view
        where: startswith(activity.url, "/pricing")
        within: 30d
        points: 10
        limit: 2
      - id: demo-request
        activity: demo_request
        within: 30d
        points: 30
        limit: 1
"""

ROUTING = """\
# yaml-language-server: $schema=../schemas/routing.schema.json
# Who gets the lead: the first rule whose condition holds; the last rule is the fallback queue.
kind: routing
rules:
  - id: account-owner
    description: An existing account keeps its owner.
    when: present(lead.account_owner)
    assign: {owner: lead.account_owner}
  - id: qualified
    description: PLACEHOLDER - which leads your sales team takes
    when: stage in ["mql", "sql"]
    assign: {team: sales}
  - id: triage
    fallback: true
    assign: {queue: triage}
"""

TEAMS = """\
# yaml-language-server: $schema=../schemas/teams.schema.json
# Teams share leads by weight (2 = twice the leads of 1); inactive or out-of-office members get none.
kind: teams
teams:
  - id: sales
    description: PLACEHOLDER - your sales team
    calendar: main
    manager: replace-with-sales-manager   # PLACEHOLDER: CRM user ids
    members:
      - {{id: replace-with-rep-1, weight: 1}}   # PLACEHOLDER
      - {{id: replace-with-rep-2, weight: 1}}   # PLACEHOLDER
queues:
  - {{id: triage, calendar: main, manager: replace-with-marketing-ops, description: Leads no rule takes}}   # PLACEHOLDER manager
"""

CALENDARS = """\
# yaml-language-server: $schema=../schemas/calendars.schema.json
# Business hours for SLA clocks: an IANA time zone, weekly hours, public holidays and your own closures.
kind: calendars
calendars:
  - id: main
    timezone: {time_zone}{zone_note}
    hours: {{mon-fri: "09:00-17:00"}}   # PLACEHOLDER: your working hours
{holidays}"""

SLAS = """\
# yaml-language-server: $schema=../schemas/slas.schema.json
# How fast sales follows up, in business time of the assignee's calendar.
kind: slas
default_calendar: main
slas:
  - id: mql-first-response
    description: PLACEHOLDER - the response time Marketing and Sales agreed on
    applies_to: {stages: [mql]}
    respond_within: 8h
    calendar: assignee
    escalations:
      - {at: 50%, action: notify, to: owner}
      - {at: 100%, action: notify, to: manager}
"""

SCENARIO = """\
# yaml-language-server: $schema=../schemas/scenario.schema.json
# Scenarios are regression tests of the policies: a lead, a time, and what must be decided.
# `leadops test` runs them; `leadops record LEAD.json` turns a real lead into a new one.
kind: scenarios
defaults:
  now: 2026-11-23T09:00:00Z
scenarios:
  - name: A decision maker at a mid-size company who asked for a demo becomes an MQL for the sales team
    lead:
      id: STARTER-1
      email: jo@example-customer.com
      employees: 120
      seniority: director
      activities:
        - {type: demo_request, at: "2026-11-20T10:00:00Z"}
    expect:
      score.total: 65
      stage.to: mql
      route.team: sales
      fired: [company-size, decision-maker, demo-request, qualified]
"""


def starter_files(name: str, region: Region) -> dict[str, str]:
    """Repo-relative path -> text of the starter policy set and its scenario."""
    zone_note = "   # PLACEHOLDER: your time zone (leadops init --time-zone)" if region.time_zone == "UTC" else ""
    return {
        "policies/leadops.yaml": LEADOPS.format(name=name),
        "policies/stages.yaml": STAGES,
        "policies/scoring.yaml": SCORING,
        "policies/routing.yaml": ROUTING,
        "policies/teams.yaml": TEAMS.format(),
        "policies/calendars.yaml": CALENDARS.format(time_zone=region.time_zone, zone_note=zone_note,
                                                     holidays=region.holidays_line()),
        "policies/slas.yaml": SLAS,
        "scenarios/starter.yaml": SCENARIO,
    }
