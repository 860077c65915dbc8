"""Score cut-offs of a policy (stage entry comparisons on `score.*`, grade minimums) and which ones a change moves.

An approver asks "how many leads sit near the line we are moving?": the impact report draws a histogram
around every cut-off returned by `changed_thresholds`. Cut-offs are read from the parsed expression tree,
so `score.total >= 50` inside any `and`/`or` of a stage's entry criteria counts; a cut-off is identified by
what it gates (stage or grade), the score it reads and its operator, and compared by value.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass

from engine.errors import ExpressionError
from engine.expr.parse import parse
from engine.model import PolicyModel

FLIPPED = {ast.Lt: ast.Gt, ast.LtE: ast.GtE, ast.Gt: ast.Lt, ast.GtE: ast.LtE}
OP_TEXT = {ast.Lt: "<", ast.LtE: "<=", ast.Gt: ">", ast.GtE: ">=", ast.Eq: "=="}


@dataclass(frozen=True)
class Threshold:
    gate: str  # "stage:sql" | "grade:fit:A"
    score: str  # "total" or a score group id
    op: str  # ">=", ">", "<", "<="
    value: float

    @property
    def key(self) -> tuple[str, str, str]:
        return (self.gate, self.score, self.op)


def _score_comparisons(source: str) -> list[tuple[str, str, float]]:
    """(score field, operator with the score on the left, number) for every `score.x OP number` in an expression."""
    try:
        tree = parse(source)
    except ExpressionError:
        return []
    out = []
    for node in ast.walk(tree):
        if not isinstance(node, ast.Compare) or len(node.ops) != 1:
            continue
        left, op, right = node.left, type(node.ops[0]), node.comparators[0]
        if _is_number(left) and _score_field(right):
            left, right, op = right, left, FLIPPED.get(op, op)
        field = _score_field(left)
        if field and _is_number(right) and op in OP_TEXT:
            out.append((field, OP_TEXT[op], float(right.value)))  # type: ignore[attr-defined]
    return out


def _is_number(node: ast.AST) -> bool:
    return isinstance(node, ast.Constant) and isinstance(node.value, (int, float)) and not isinstance(node.value, bool)


def _score_field(node: ast.AST) -> str | None:
    if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id == "score":
        return node.attr
    return None


def thresholds(model: PolicyModel) -> list[Threshold]:
    """Every score cut-off of a policy: stage entry comparisons, then grade minimums, in policy order."""
    out = []
    for stage in (*model.stages.pipeline, *model.stages.detours):
        if stage.entry is not None:
            out += [Threshold(f"stage:{stage.id}", f, op, v) for f, op, v in _score_comparisons(stage.entry.source)]
    for group in model.scoring.groups:
        out += [Threshold(f"grade:{group.id}:{g.grade}", group.id, ">=", float(g.min)) for g in group.grades if g.min is not None]
    return out


def changed_thresholds(base: PolicyModel, head: PolicyModel) -> list[tuple[Threshold, Threshold]]:
    """(old, new) for every cut-off that both revisions have with a different value."""
    old = {t.key: t for t in thresholds(base)}
    return [(old[t.key], t) for t in thresholds(head) if t.key in old and old[t.key].value != t.value]
