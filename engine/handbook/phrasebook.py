"""Expressions read as words: the parsed expression tree (engine/expr/parse.py) turned into a sentence.

Field names come from the lead schema (`title` of each property, else the field name in plain words) and
each operator or helper has one phrase here. Anything without a phrase (subscripts, exotic arithmetic in
a condition, unknown names) makes `phrase()` return the expression itself in code quotes, so a reader is
never shown a guess. Phrasing is pure: the same expression and schema give the same words.
"""

from __future__ import annotations

import ast
from collections.abc import Callable, Mapping
from typing import Any

from engine.errors import ExpressionError
from engine.expr.parse import parse


class Unphrasable(Exception):
    """Raised inside the phrasebook for a node it has no words for; `phrase` falls back to the code."""


COMPARE = {  # operator -> (positive, negated) verb phrase
    ast.Eq: ("is", "is not"),
    ast.NotEq: ("is not", "is"),
    ast.Lt: ("is less than", "is at least"),
    ast.LtE: ("is at most", "is more than"),
    ast.Gt: ("is more than", "is at most"),
    ast.GtE: ("is at least", "is less than"),
    ast.In: ("is one of", "is none of"),
    ast.NotIn: ("is none of", "is one of"),
}
ARITHMETIC = {ast.Add: "plus", ast.Sub: "minus", ast.Mult: "times", ast.Div: "divided by",
              ast.FloorDiv: "divided by (whole part)", ast.Mod: "modulo", ast.Pow: "to the power of"}
NAMES = {"now": "now", "stage": "the decided stage", "score": "the score", "lead": "the lead",
         "activity": "the activity"}
ACTIVITY_FIELDS = {"url": "page address", "asset_type": "asset type", "asset": "asset", "type": "activity type",
                   "at": "activity time"}


class Phrasebook:
    """Words for expressions over one lead schema. `phrase(source)` -> a sentence fragment (no full stop)."""

    def __init__(self, lead_schema: Mapping[str, Any] | None = None):
        self.schema = lead_schema or {}

    # -------------------------------------------------------------- entry points
    def phrase(self, source: str) -> str:
        """The expression in words, or the expression in code quotes when some part has no phrase."""
        try:
            tree = parse(source)
            return self.cond(tree.body)
        except (Unphrasable, ExpressionError):
            return code(source)

    def value_phrase(self, source: str) -> str:
        """A value expression in words ('the account owner'), or the expression in code quotes."""
        try:
            return self.value(parse(source).body)
        except (Unphrasable, ExpressionError):
            return code(source)

    def field_label(self, path: tuple[str, ...]) -> str:
        """'the number of employees' for ('employees',): the schema's title, else the field name in words."""
        node: Mapping[str, Any] = self.schema
        for part in path:
            props = node.get("properties", {}) if isinstance(node, Mapping) else {}
            node = props.get(part, {}) if isinstance(props, Mapping) else {}
        title = node.get("title") if isinstance(node, Mapping) else None
        words = title if isinstance(title, str) and title.strip() else " ".join(p.replace("_", " ") for p in path)
        return "the " + (words if words[:2].isupper() else words[:1].lower() + words[1:])

    def field_type(self, path: tuple[str, ...]) -> str | None:
        node: Mapping[str, Any] = self.schema
        for part in path:
            node = node.get("properties", {}).get(part, {}) if isinstance(node, Mapping) else {}
        value = node.get("type") if isinstance(node, Mapping) else None
        return value if isinstance(value, str) else None

    # -------------------------------------------------------------- conditions (things that hold or not)
    def cond(self, node: ast.AST, negated: bool = False) -> str:
        if isinstance(node, ast.BoolOp):
            return self._boolop(node, negated)
        if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.Not):
            return self.cond(node.operand, not negated)
        if isinstance(node, ast.Compare):
            return self._compare(node, negated)
        if isinstance(node, ast.Call):
            return self._call_cond(node, negated)
        path = _path(node)
        if path and path[0] == "lead":
            label = self.field_label(path[1:])
            return f"{label} is {'not set' if negated else 'set'}"
        if isinstance(node, ast.Constant) and isinstance(node.value, bool):
            return "never" if node.value == negated else "always"
        raise Unphrasable(ast.dump(node))

    def _boolop(self, node: ast.BoolOp, negated: bool) -> str:
        is_and = isinstance(node.op, ast.And) != negated  # De Morgan: not (a and b) = not a or not b
        parts = []
        for value in node.values:
            text = self.cond(value, negated)
            if isinstance(value, ast.BoolOp):  # a nested group reads as one unit
                inner_and = isinstance(value.op, ast.And) != negated
                text = f"({text})" if inner_and else f"either {text}"
            parts.append(text)
        return join_words(parts, "and" if is_and else "or", serial=any(p.startswith("either") for p in parts))

    def _compare(self, node: ast.Compare, negated: bool) -> str:
        left, parts = node.left, []
        for op, right in zip(node.ops, node.comparators):
            positive, negative = COMPARE[type(op)]
            verb = negative if negated else positive
            if isinstance(op, (ast.In, ast.NotIn)) and isinstance(right, (ast.List, ast.Tuple, ast.Set)):
                items = [self.value(x) for x in right.elts]
                either = "or" if "one of" in verb else "nor"
                verb_text = f"{verb} {join_words(items, either)}"
                if len(items) == 1:
                    verb_text = f"{'is not' if 'none' in verb else 'is'} {items[0]}"
                parts.append(f"{self.value(left)} {verb_text}")
            elif isinstance(op, (ast.In, ast.NotIn)):
                contains = "does not contain" if ("none" in verb) else "contains"
                parts.append(f"{self.value(right)} {contains} {self.value(left)}")
            else:
                parts.append(f"{self.value(left)} {verb} {self.value(right)}")
            left = right
        return join_words(parts, "or" if negated and len(parts) > 1 else "and")

    def _call_cond(self, node: ast.Call, negated: bool) -> str:
        name, args, kw = _call_parts(node)
        phrase = CONDITION_HELPERS.get(name)
        if phrase is None:
            raise Unphrasable(name)
        return phrase(self, args, kw, negated)

    # -------------------------------------------------------------- values (things that have a value)
    def value(self, node: ast.AST) -> str:
        if isinstance(node, ast.Constant):
            return literal(node.value)
        if isinstance(node, (ast.List, ast.Tuple, ast.Set)):
            return join_words([self.value(x) for x in node.elts], "and")
        if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub) and isinstance(node.operand, ast.Constant):
            return literal(-node.operand.value)
        if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub):
            return f"minus {self.value(node.operand)}"
        if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.UAdd):
            return self.value(node.operand)
        if isinstance(node, ast.BinOp) and type(node.op) in ARITHMETIC:
            return f"{self.value(node.left)} {ARITHMETIC[type(node.op)]} {self.value(node.right)}"
        if isinstance(node, ast.Call):
            name, args, kw = _call_parts(node)
            phrase = VALUE_HELPERS.get(name)
            if phrase is None:
                raise Unphrasable(name)
            return phrase(self, args, kw)
        path = _path(node)
        if path is None:
            raise Unphrasable(ast.dump(node))
        root, rest = path[0], path[1:]
        if root == "lead" and rest:
            return self.field_label(rest)
        if root == "score" and rest:
            return "the total score" if rest == ("total",) else f"the {' '.join(rest).replace('_', ' ')} score"
        if root == "activity" and len(rest) == 1:
            return "the " + ACTIVITY_FIELDS.get(rest[0], rest[0].replace("_", " "))
        if not rest and root in NAMES:
            return NAMES[root]
        raise Unphrasable(".".join(path))


# ------------------------------------------------------------------ helpers: one phrase each

def _not(negated: bool, yes: str, no: str) -> str:
    return no if negated else yes


def _activity_kind(pb: Phrasebook, node: ast.AST) -> str:
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value.replace("_", " ")
    raise Unphrasable("activity kind")


def _within(pb: Phrasebook, kw: dict[str, ast.AST], args: list[ast.AST], position: int) -> str:
    node = kw.get("within_days", args[position] if len(args) > position else None)
    if node is None:
        return ""
    return f" in the last {pb.value(node)} days"


Cond = Callable[[Phrasebook, list[ast.AST], dict[str, ast.AST], bool], str]
Value = Callable[[Phrasebook, list[ast.AST], dict[str, ast.AST]], str]

CONDITION_HELPERS: dict[str, Cond] = {
    "present": lambda pb, a, kw, neg: f"{pb.value(a[0])} is {_not(neg, 'known', 'unknown')}",
    "missing": lambda pb, a, kw, neg: f"{pb.value(a[0])} is {_not(neg, 'unknown', 'known')}",
    "is_free_email": lambda pb, a, kw, neg: f"{pb.value(a[0])} {_not(neg, 'is', 'is not')} a free-mail address",
    "startswith": lambda pb, a, kw, neg: f"{pb.value(a[0])} {_not(neg, 'starts', 'does not start')} with {pb.value(a[1])}",
    "endswith": lambda pb, a, kw, neg: f"{pb.value(a[0])} {_not(neg, 'ends', 'does not end')} with {pb.value(a[1])}",
    "contains": lambda pb, a, kw, neg: f"{pb.value(a[0])} {_not(neg, 'contains', 'does not contain')} {pb.value(a[1])}",
    "matches": lambda pb, a, kw, neg: f"{pb.value(a[0])} {_not(neg, 'matches', 'does not match')} the pattern {pb.value(a[1])}",
    "has_activity": lambda pb, a, kw, neg: (
        f"the lead {_not(neg, 'had a', 'had no')} {_activity_kind(pb, a[0])}{_within(pb, kw, a, 1)}"),
}
VALUE_HELPERS: dict[str, Value] = {
    "lower": lambda pb, a, kw: f"{pb.value(a[0])} (in any case)",
    "upper": lambda pb, a, kw: f"{pb.value(a[0])} (in any case)",
    "strip": lambda pb, a, kw: f"{pb.value(a[0])} (without surrounding spaces)",
    "len": lambda pb, a, kw: f"the length of {pb.value(a[0])}",
    "min": lambda pb, a, kw: f"the smallest of {join_words([pb.value(x) for x in a], 'and')}",
    "max": lambda pb, a, kw: f"the largest of {join_words([pb.value(x) for x in a], 'and')}",
    "abs": lambda pb, a, kw: f"the size of {pb.value(a[0])} (ignoring sign)",
    "round": lambda pb, a, kw: f"{pb.value(a[0])} rounded"
    + (f" to {pb.value(kw.get('ndigits', a[1] if len(a) > 1 else ast.Constant(0)))} decimals"
       if "ndigits" in kw or len(a) > 1 else ""),
    "coalesce": lambda pb, a, kw: f"{pb.value(a[0])} (or {pb.value(a[1])} when unknown)",
    "email_domain": lambda pb, a, kw: f"the domain of {pb.value(a[0])}",
    "days_since": lambda pb, a, kw: f"the days since {pb.value(a[0])}",
    "hours_since": lambda pb, a, kw: f"the hours since {pb.value(a[0])}",
    "count_activities": lambda pb, a, kw: (
        f"the number of {_activity_kind(pb, a[0])} activities{_within(pb, kw, a, 1)}"
        + (f" on {pb.value(kw.get('url', a[2] if len(a) > 2 else ast.Constant('')))}" if "url" in kw or len(a) > 2 else "")),
    "last_activity_at": lambda pb, a, kw: f"the time of the last {_activity_kind(pb, a[0])}",
}


# ------------------------------------------------------------------ small pieces

def _path(node: ast.AST) -> tuple[str, ...] | None:
    """('lead', 'company', 'industry') for lead.company.industry; None for anything else."""
    parts: list[str] = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if isinstance(node, ast.Name):
        return (node.id, *reversed(parts))
    return None


def _call_parts(node: ast.Call) -> tuple[str, list[ast.AST], dict[str, ast.AST]]:
    if not isinstance(node.func, ast.Name):
        raise Unphrasable("call")
    return node.func.id, list(node.args), {k.arg: k.value for k in node.keywords if k.arg}


def literal(value: Any) -> str:
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, str):
        return f"“{value}”"
    return str(value)


def join_words(items: list[str], conjunction: str, serial: bool = False) -> str:
    """'a', 'a or b', 'a, b or c' ('a, b, or c' with `serial`, which keeps a nested 'either' readable)."""
    if len(items) <= 1:
        return "".join(items)
    return f"{', '.join(items[:-1])}{',' if serial else ''} {conjunction} {items[-1]}"


def code(source: str) -> str:
    """An expression shown as written (one line), for what has no phrase."""
    return "`" + " ".join(source.split()).replace("`", "'") + "`"
