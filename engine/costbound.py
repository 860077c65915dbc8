"""A policy's worst-case cost per lead: each rule's bound (engine.expr.cost), summed, checked against the budget.

`leadops validate` reports the bound and refuses a policy whose bound passes `guard.max_cost_per_lead` in
leadops.yaml (default `sandbox.DEFAULT_COST_BUDGET`), naming the rules that dominate (COST001). At run time the
same budget meters each lead (`sandbox.CostLimitError`, EVAL006), so the bound holds even for what the static
estimate cannot see.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

from engine.errors import Location
from engine.expr.cost import activity_index_cost, expression_cost, loop_cost, max_items
from engine.expr.sandbox import DEFAULT_COST_BUDGET
from engine.model import Expr, PolicyModel

COST_OVER_BUDGET = "COST001"
LOOP_STEP = 2  # cost of one activity-loop step before its filter (age, window)
DOMINANT_SHOWN = 3  # rules named in the COST001 message


@dataclass(frozen=True)
class RuleCost:
    """One rule's worst-case cost per lead."""

    kind: str  # scoring | stage | routing | sla | activity-index
    id: str
    cost: int
    location: Location

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "id": self.id, "cost": self.cost}


@dataclass(frozen=True)
class PolicyCost:
    """Every rule's bound, their sum (the bound per lead) and the budget it is held to."""

    rules: tuple[RuleCost, ...]
    budget: int

    @property
    def total(self) -> int:
        return sum(r.cost for r in self.rules)

    def dominant(self, n: int = DOMINANT_SHOWN) -> list[RuleCost]:
        return sorted(self.rules, key=lambda r: (-r.cost, r.kind, r.id))[:n]

    def to_dict(self) -> dict[str, Any]:
        return {"per_lead": self.total, "budget": self.budget, "within_budget": self.total <= self.budget,
                "dominant": [dict(r.to_dict(), share=round(r.cost / max(self.total, 1), 3)) for r in self.dominant()]}

    def summary(self) -> str:
        top = ", ".join(f"{r.kind} '{r.id}' {r.cost:,}" for r in self.dominant())
        return f"worst-case cost per lead {self.total:,} of a budget of {self.budget:,} units (largest: {top})"


def policy_cost(model: PolicyModel, lead_type: Any) -> PolicyCost:
    """The bound of every rule of a compiled model, against the lead schema's declared sizes."""
    activities = getattr(lead_type, "props", {}).get("activities")
    per_activity = max_items(activities) if activities is not None else 0
    rules: list[RuleCost] = []
    uses_index = False

    def cost(expr: Expr | None) -> int:
        nonlocal uses_index
        if expr is None or expr.compiled is None:
            return 0
        uses_index = uses_index or "lead.activities" in expr.compiled.paths
        return expression_cost(expr.compiled.tree, activities)

    add: Callable[[str, str, int, Location], None] = lambda kind, ident, c, loc: rules.append(
        RuleCost(kind, ident, c, loc))
    for group in model.scoring.groups:
        for rule in group.rules:
            if rule.is_activity_rule:
                cost(rule.where)  # notes whether it reads the activity index
                where = loop_cost(rule.where.compiled.tree, per_activity, activities) if (
                    rule.where is not None and rule.where.compiled is not None) else 0
                add("scoring", rule.id, per_activity * LOOP_STEP + where, rule.location)
            else:
                add("scoring", rule.id, 1 + cost(rule.when), rule.location)
    for stage in (*model.stages.pipeline, *model.stages.detours):
        if stage.entry is not None:
            add("stage", stage.id, 1 + cost(stage.entry), stage.entry.location)
    for route in model.routing:
        add("routing", route.id, 1 + cost(route.when) + cost(route.owner), route.location)
    for sla in model.slas:
        add("sla", sla.id, 1 + cost(sla.when) + (per_activity if sla.attempts else 0), sla.location)
    if activities is not None and (uses_index or any(r.is_activity_rule for g in model.scoring.groups
                                                     for r in g.rules)):
        add("activity-index", "activities", activity_index_cost(activities), Location())
    return PolicyCost(tuple(rules), model.max_cost_per_lead or DEFAULT_COST_BUDGET)


def over_budget_message(bound: PolicyCost) -> tuple[str, str]:
    """(message, hint) of COST001."""
    top = "; ".join(f"{r.kind} '{r.id}' {r.cost:,} ({r.cost * 100 // max(bound.total, 1)}%)" for r in bound.dominant())
    return (
        f"the policy's worst-case cost per lead is {bound.total:,} units, over its budget of {bound.budget:,}: {top}",
        "declare maxItems / maxLength in the lead schema for the lists and strings these rules read, move work out "
        "of per-activity filters, or raise guard.max_cost_per_lead in leadops.yaml",
    )


__all__ = ["COST_OVER_BUDGET", "PolicyCost", "RuleCost", "policy_cost", "over_budget_message"]
