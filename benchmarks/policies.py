"""Bigger policy sets for load and throughput benchmarks, derived from the example set (policies/).

    scaled_policy_dir(10)   # the example set with every scoring and routing rule x10 (distinct expressions)
    rules_1000_dir()        # a generated set with 1,000 rules (scoring conditions/activities + routing)

Both are written to a temporary directory (with schemas/lead.schema.json next to it) and returned as the path
of the policies directory; `engine.load_policies(path)` loads them. Deterministic (no randomness).
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parent.parent


def _load(name: str) -> Any:
    return yaml.safe_load((ROOT / "policies" / name).read_text(encoding="utf-8"))


class _NoAliases(yaml.SafeDumper):
    def ignore_aliases(self, data: Any) -> bool:  # leadops rejects YAML anchors and aliases
        return True


def _write_set(overrides: dict[str, Any], tag: str) -> Path:
    base = Path(tempfile.mkdtemp(prefix=f"leadops-bench-{tag}-"))
    (base / "schemas").mkdir()
    shutil.copy(ROOT / "schemas" / "lead.schema.json", base / "schemas" / "lead.schema.json")
    policies = base / "policies"
    policies.mkdir()
    for path in sorted((ROOT / "policies").glob("*.yaml")):
        if path.name in overrides:
            (policies / path.name).write_text(yaml.dump(overrides[path.name], Dumper=_NoAliases, sort_keys=False, width=200),
                                              encoding="utf-8")
        else:
            shutil.copy(path, policies / path.name)
    return policies


def scaled_policy_dir(factor: int = 10) -> Path:
    """The example set with each scoring rule and each non-fallback routing rule repeated `factor` times."""
    scoring = _load("scoring.yaml")
    for group in scoring["groups"]:
        rules = []
        for rule in group["rules"]:
            for k in range(factor):
                copy = dict(rule, id=rule["id"] if k == 0 else f"{rule['id']}-x{k}")
                if k and "when" in rule:
                    copy["when"] = f"({rule['when']}) and coalesce(lead.employees, 0) >= {k}"
                if k and "activity" in rule:
                    copy["within"] = f"{30 + k}d"
                copy.pop("description", None)
                rules.append(copy)
        group["rules"] = rules
    routing = _load("routing.yaml")
    rules = []
    for rule in routing["rules"]:
        if rule.get("fallback"):
            rules.append(rule)
            continue
        for k in range(1, factor):  # copies first, so every lead evaluates them (they almost never match)
            rules.append(dict(rule, id=f"{rule['id']}-x{k}", when=f"({rule['when']}) and lead.employees == {123_456 + k}"))
        rules.append(rule)
    routing["rules"] = rules
    return _write_set({"scoring.yaml": scoring, "routing.yaml": routing}, f"x{factor}")


_CONDITIONS = [
    "lead.employees >= {n}",
    "lead.country in [\"AU\", \"NZ\", \"SG\"] and lead.employees < {n}",
    "present(lead.abn) and lead.employees >= {n}",
    "lead.company.industry == \"software\" and coalesce(lead.employees, 0) > {n}",
    "lead.seniority in [\"c_level\", \"vp\"] or lead.employees == {n}",
    "is_free_email(lead.email) and lead.employees > {n}",
    "startswith(lower(coalesce(lead.email, \"\")), \"a\") and lead.employees >= {n}",
    "count_activities(\"page_view\", within_days=30) >= {m}",
    "has_activity(\"webinar_attended\", within_days={m})",
    "lead.source == \"partner\" and lead.employees < {n}",
]
_ACTIVITIES = [("page_view", 'startswith(activity.url, "/p")'), ("email_click", None), ("form_fill", None),
               ("content_download", 'activity.asset_type in ["whitepaper", "ebook"]'), ("webinar_attended", None)]
_TEAMS = ["anz-enterprise", "seq-smb", "anz-mid-market", "apac", "emea", "americas"]


def rules_1000_dir() -> Path:
    """1,000 rules: 500 fit conditions, 200 engagement activity rules, 100 engagement conditions, 200 routes."""
    scoring = _load("scoring.yaml")
    fit, engagement = scoring["groups"]
    fit["rules"] = [{"id": f"fit-{i}", "when": _CONDITIONS[i % len(_CONDITIONS)].format(n=10 + 7 * i, m=1 + i % 5),
                     "points": (i % 9) - 3} for i in range(500)]
    rules: list[dict[str, Any]] = []
    for i in range(200):
        kind, where = _ACTIVITIES[i % len(_ACTIVITIES)]
        rule: dict[str, Any] = {"id": f"act-{i}", "activity": kind, "within": f"{7 + i % 90}d", "points": 1 + i % 5,
                                "limit": 1 + i % 4}
        if where:
            rule["where"] = where
        rules.append(rule)
    rules += [{"id": f"eng-{i}", "when": _CONDITIONS[(i * 3) % len(_CONDITIONS)].format(n=5 + 11 * i, m=1 + i % 7),
               "points": 1 + i % 3} for i in range(100)]
    engagement["rules"] = rules
    routing = _load("routing.yaml")
    fallback = routing["rules"][-1]
    routes = []
    for i in range(199):
        cond = _CONDITIONS[i % 7].format(n=50 + 97 * i, m=1 + i % 5)
        rid = {0: "anz-enterprise", 1: "anz-public-sector"}.get(i, f"route-{i}")  # named by slas.yaml
        routes.append({"id": rid, "when": cond, "assign": {"team": _TEAMS[i % len(_TEAMS)]}})
    routing["rules"] = routes + [fallback]
    policy_set = _load("leadops.yaml")  # 200 activity rules exceed the example's default cost budget per lead
    policy_set.setdefault("guard", {})["max_cost_per_lead"] = 50_000_000
    return _write_set({"scoring.yaml": scoring, "routing.yaml": routing, "leadops.yaml": policy_set}, "r1000")


def rule_count(ps: Any) -> int:
    info = ps.describe()
    return info["scoring_rules"] + info["routing_rules"] + info["stages"] + info["slas"]
