"""A decision: the one explained answer for one lead, shaped by schemas/decision.schema.json."""

from __future__ import annotations

from typing import Any


class Decision:
    """Read-only view over the decision data; `to_dict()` is the JSON the CLI, service and SDK emit."""

    __slots__ = ("_data",)

    def __init__(self, data: dict[str, Any]):
        self._data = data

    @property
    def lead_id(self) -> str:
        return self._data["lead_id"]

    @property
    def score(self) -> dict[str, Any]:
        return self._data["score"]

    @property
    def stage(self) -> dict[str, Any]:
        return self._data["stage"]

    @property
    def route(self) -> dict[str, Any]:
        return self._data["route"]

    @property
    def slas(self) -> list[dict[str, Any]]:
        return self._data["slas"]

    @property
    def trace(self) -> list[dict[str, Any]] | None:
        return self._data.get("trace")

    def fired_rules(self) -> list[str]:
        """Ids of every rule that fired: scoring rules, the stage rule, the route rule and applied SLAs."""
        out = [f["rule"] for f in self._data["score"]["fired"]]
        if self._data["stage"].get("rule"):
            out.append(self._data["stage"]["rule"])
        out.append(self._data["route"]["rule"])
        out.extend(s["id"] for s in self._data["slas"])
        return out

    def to_dict(self) -> dict[str, Any]:
        """The decision as plain JSON data (callers must not mutate it)."""
        return self._data

    def __repr__(self) -> str:
        s, r = self._data["stage"], self._data["route"]
        return (f"Decision(lead={self.lead_id!r}, score={self._data['score']['total']}, "
                f"stage={s['from']}->{s['to']}, route={r['rule']})")
