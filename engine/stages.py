"""Lifecycle stages: forward progression by entry criteria, requested transitions with reason codes.

Semantics:
* A lead's current stage is `lead.stage`, or the policy's `initial` stage when absent.
* A requested move (`lead.transition_request: {to, reason_code}`) is honoured when it is a forward move along
  the pipeline to a manual stage or to one whose entry criteria hold, or when the current stage declares a
  transition to the target; a declared transition marked `reason_required` needs a reason code from the
  policy's list, and an SLA's minimum attempts must have been made first. A refused request keeps the stage
  where it was and says why. Either way the request decides the evaluation: no automatic move follows (a lead
  handed back to marketing does not bounce straight back, and a refused hand-back does not quietly promote it).
* Otherwise the lead moves forward to the furthest pipeline stage past its current one whose entry criteria
  hold (manual stages are skipped, never entered automatically). Stages are a high-water mark: nothing moves a
  lead backwards on its own. From a detour, an `auto` transition re-enters the pipeline when the target's
  entry criteria hold, and progression continues from there.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any

from engine.errors import LeadError
from engine.expr import MISSING
from engine.model import Stage, Stages
from engine.trace import Trace, describe_values, guarded

AttemptCheck = Callable[[str, str], str | None]


class StageEngine:
    def __init__(self, stages: Stages):
        self.stages = stages
        self.by_id = stages.by_id()
        self.pipeline = stages.pipeline
        # furthest first: the first stage whose criteria hold is the destination
        self.forward_order = [s for s in reversed(stages.pipeline) if s.entry is not None and not s.manual]
        self.fast_forward = build_fast_forward(self.forward_order)

    def current_stage(self, lead: Mapping[str, Any]) -> Stage:
        value = lead.get("stage", MISSING)
        if value is MISSING or value is None:
            return self.by_id[self.stages.initial]
        stage = self.by_id.get(value)
        if stage is None:
            known = ", ".join(self.by_id)
            raise LeadError(f"unknown stage '{value}' (this policy's stages: {known})", field="stage")
        return stage

    def evaluate(self, lead: Mapping[str, Any], now: datetime, score: Mapping[str, Any], attempts: AttemptCheck,
                 trace: Trace | None, warnings: list[dict[str, str]]) -> dict[str, Any]:
        current = self.current_stage(lead)
        result: dict[str, Any] = {"from": current.id, "to": current.id, "changed": False, "rule": None}
        request = lead.get("transition_request", MISSING)
        if request is not MISSING and request is not None:
            self.requested(current, request, lead, now, score, attempts, trace, warnings, result)
            return result  # accepted or refused, a request decides this evaluation
        target, rule = self.automatic(current, lead, now, score, trace, warnings)
        if target is not current:
            result.update(to=target.id, changed=True, rule=rule)
        return result

    def holds(self, stage: Stage, lead: Mapping[str, Any], now: datetime, score: Mapping[str, Any],
              trace: Trace | None, warnings: list[dict[str, str]], why: str = "") -> bool:
        ok = bool(guarded(stage.entry.fn, f"stage:{stage.id}", warnings, lead, now, score))
        if trace is not None:
            trace.rule("stage", f"stage:{stage.id}", ok, None,
                       (why or "entry criteria") + (" hold" if ok else " do not hold"),
                       describe_values(stage.entry.compiled, lead, now, score))
        return ok

    def automatic(self, current: Stage, lead: Mapping[str, Any], now: datetime, score: Mapping[str, Any],
                  trace: Trace | None, warnings: list[dict[str, str]]) -> tuple[Stage, str | None]:
        if trace is None and current.pipeline_index is not None:
            found = self.fast_forward(lead, now, score, current.pipeline_index, warnings)
            return (current, None) if found is None else (found, f"stage:{found.id}")
        rule = None
        start = current
        if current.pipeline_index is None:  # a detour: only `auto` transitions lead back into the pipeline
            for t in current.transitions:
                target = self.by_id[t.to]
                if t.auto and target.entry is not None and self.holds(target, lead, now, score, trace, warnings,
                                                                       f"auto transition {current.id} -> {t.to}: entry criteria of {t.to}"):
                    start, rule = target, f"stage:{target.id}"
                    break
            if start.pipeline_index is None:
                return current, None
        for stage in self.forward_order:
            if stage.pipeline_index <= start.pipeline_index:
                break
            if self.holds(stage, lead, now, score, trace, warnings):
                return stage, f"stage:{stage.id}"
        return start, rule

    def requested(self, current: Stage, request: Mapping[str, Any], lead: Mapping[str, Any], now: datetime,
                  score: Mapping[str, Any], attempts: AttemptCheck, trace: Trace | None,
                  warnings: list[dict[str, str]], result: dict[str, Any]) -> bool:
        to = request.get("to")
        code = request.get("reason_code", MISSING)
        code = None if code is MISSING else code
        rule = f"transition:{current.id}->{to}"
        reason = self.refusal(current, to, code, lead, now, score, attempts, trace, warnings)
        if trace is not None:
            trace.rule("stage", rule, reason is None, None, reason or "requested transition allowed", {})
        if reason is not None:
            result["rejected"] = {"to": to, "reason_code": code, "reason": reason}
            return False
        result.update(to=to, changed=to != current.id, rule=rule)
        if code is not None:
            result["reason_code"] = code
        return True

    def refusal(self, current: Stage, to: Any, code: str | None, lead: Mapping[str, Any], now: datetime,
                score: Mapping[str, Any], attempts: AttemptCheck, trace: Trace | None,
                warnings: list[dict[str, str]]) -> str | None:
        """Why a requested transition is not allowed, or None when it is."""
        target = self.by_id.get(to) if isinstance(to, str) else None
        if target is None:
            return f"'{to}' is not a stage of this policy (stages: {', '.join(self.by_id)})"
        if target is current:
            return f"the lead is already in '{to}'"
        declared = next((t for t in current.transitions if t.to == to), None)
        if declared is None:
            forward = (current.pipeline_index is not None and target.pipeline_index is not None
                       and target.pipeline_index > current.pipeline_index)
            if not forward:
                allowed = ", ".join(t.to for t in current.transitions) or "none"
                return (f"no transition from '{current.id}' to '{to}' is declared "
                        f"(allowed from {current.id}: {allowed})")
            if not target.manual and not self.holds(target, lead, now, score, trace, warnings):
                return f"the entry criteria of '{to}' do not hold"
        elif declared.reason_required and not code:
            return (f"moving from '{current.id}' to '{to}' requires a reason code "
                    f"(one of: {', '.join(self.stages.reason_codes)})")
        if code is not None and code not in self.stages.reason_codes:
            return f"unknown reason code '{code}' (known: {', '.join(self.stages.reason_codes)})"
        return attempts(current.id, to)


# The fast path for the common case (no trace, the lead in the pipeline): the forward walk as one generated
# function, each entry criterion's verified expression source inlined (as `engine.scoring.build_fast_scorer`
# and `engine.routing.build_fast_router` do); on an exception the stage's own compiled function runs again
# through `guarded`, so warnings and errors are exactly the walk's.


def _rerun_entry(stage: Stage, lead: Any, now: datetime, score: Any, warnings: list[dict[str, str]]) -> Any:
    return guarded(stage.entry.fn, f"stage:{stage.id}", warnings, lead, now, score)


def build_fast_forward(forward_order: list[Stage]) -> Callable[..., Stage | None]:
    """(lead, now, score, start pipeline index, warnings) -> the furthest stage past the start whose entry
    criteria hold, or None; equal to `StageEngine.automatic`'s pipeline walk."""
    from engine.expr import RUNTIME_GLOBALS
    from engine.scoring import _fragment, exec_generated

    namespace: dict[str, Any] = {"__builtins__": {}, **RUNTIME_GLOBALS, "lo_Exception": Exception,
                                 "lo_rerun": _rerun_entry}
    code = ["def lo_forward(lead, now, score, lo_start, lo_warnings):", "    activity = stage = None"]
    for k, st in enumerate(forward_order):
        namespace[f"lo_stage{k}"] = st
        code += [f"    if lo_start < {int(st.pipeline_index)!r}:",
                 "        try:",
                 f"            lo_hit = {_fragment(st.entry)}",
                 "        except lo_Exception:",
                 f"            lo_hit = lo_rerun(lo_stage{k}, lead, now, score, lo_warnings)",
                 "        if lo_hit:",
                 f"            return lo_stage{k}"]
    code.append("    return None")
    return exec_generated(code, namespace, "<leadops-stages>", "lo_forward")
